//! Accounts and tokens: register, login, refresh (rotation and reuse
//! detection), logout, `/auth/me`, and what access tokens are refused.
//! Runs in the PostgreSQL phase; every test makes its own users.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{
    access_claims, assert_invalid_fields, assert_token_pair, assert_user, b64, b64url, call,
    create_api_key, get, hs256_header, hs256_token, hs512_token, jwt_part, jwt_secret, login,
    login_session, me, new_user, now_secs, past_refresh_grace, post_json, post_raw, random_hex,
    random_uuid, refresh, refresh_session, register, register_reply, unique_email, Auth, Reply,
    PASSWORD,
};

const REGISTER: &str = "/api/v1/auth/register";
const LOGIN: &str = "/api/v1/auth/login";
const REFRESH: &str = "/api/v1/auth/refresh";
const LOGOUT: &str = "/api/v1/auth/logout";

/// Asserts `/auth/me` with `auth` answers 401 in the envelope.
async fn assert_me_refused(auth: Auth<'_>, what: &str) {
    let r = me(auth).await;
    assert_eq!(r.status, 401, "{what}: {}", r.text);
    r.assert_error(401, "authentication_error");
}

/// Asserts `/auth/me` with `auth` answers 200 for `user_id`.
async fn assert_me_is(auth: Auth<'_>, user_id: &str) -> Reply {
    let r = me(auth).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["id"], user_id, "{}", r.text);
    r
}

async fn logout(refresh_token: &str, auth: Auth<'_>) -> Reply {
    call(
        Method::POST,
        LOGOUT,
        auth,
        Some(&json!({ "refresh_token": refresh_token })),
    )
    .await
}

// ---------------------------------------------------------------- register

#[tokio::test]
async fn register_returns_201_with_the_user_and_a_token_pair() {
    let email = unique_email("reg");
    let r = register_reply(&email, PASSWORD).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.assert_security_headers();
    assert_token_pair(&r, &email);
    let access = r.json["access_token"].as_str().unwrap();
    assert_me_is(Auth::Bearer(access), r.json["user"]["id"].as_str().unwrap()).await;
}

#[tokio::test]
async fn register_trims_and_lowercases_the_email() {
    let email = unique_email("bob");
    let sent = format!("  {}  ", email.to_uppercase());
    let r = register_reply(&sent, PASSWORD).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["user"]["email"], email.as_str());
    let m = me(Auth::Bearer(r.json["access_token"].as_str().unwrap())).await;
    assert_eq!(m.json["email"], email.as_str(), "{}", m.text);
}

#[tokio::test]
async fn duplicate_email_is_409() {
    let s = new_user().await;
    let r = register_reply(&s.email, "another-pass-7").await;
    r.assert_error(409, "conflict_error");
}

#[tokio::test]
async fn duplicate_email_differing_only_in_case_is_409() {
    let s = new_user().await;
    let r = register_reply(&s.email.to_uppercase(), PASSWORD).await;
    r.assert_error(409, "conflict_error");
}

#[tokio::test]
async fn invalid_emails_are_422_naming_the_email() {
    for bad in [
        "",
        "plainaddress",
        "@example.com",
        "user@",
        "two@@example.com",
    ] {
        let r = register_reply(bad, PASSWORD).await;
        assert_eq!(r.status, 422, "{bad:?}: {}", r.text);
        assert_invalid_fields(&r, &["email"]);
    }
}

#[tokio::test]
async fn weak_passwords_are_422_naming_the_password() {
    for bad in ["abc1234", "abcdefghij", "1234567890", ""] {
        let r = register_reply(&unique_email("weak"), bad).await;
        assert_eq!(r.status, 422, "{bad:?}: {}", r.text);
        assert_invalid_fields(&r, &["password"]);
    }
}

#[tokio::test]
async fn both_bad_fields_are_listed() {
    let r = register_reply("not-an-email", "short").await;
    assert_invalid_fields(&r, &["email", "password"]);
}

#[tokio::test]
async fn missing_fields_are_422_naming_them() {
    let r = post_json(REGISTER, &json!({}), None).await;
    assert_invalid_fields(&r, &["email", "password"]);
    let r = post_json(REGISTER, &json!({"email": unique_email("nopw")}), None).await;
    assert_invalid_fields(&r, &["password"]);
    let r = post_json(REGISTER, &json!({"password": PASSWORD}), None).await;
    assert_invalid_fields(&r, &["email"]);
}

#[tokio::test]
async fn password_length_boundaries() {
    let r = register_reply(&unique_email("pw8"), "abcdefg1").await;
    assert_eq!(r.status, 201, "8 characters: {}", r.text);
    let r = register_reply(&unique_email("pw128"), &"a1".repeat(64)).await;
    assert_eq!(r.status, 201, "128 characters: {}", r.text);
    let r = register_reply(&unique_email("pw129"), &format!("{}b", "a1".repeat(64))).await;
    assert_invalid_fields(&r, &["password"]);
}

#[tokio::test]
async fn email_over_254_characters_is_422() {
    let email = format!(
        "{}@{}example.com",
        "a".repeat(50),
        format!("{}.", "b".repeat(50)).repeat(4)
    );
    assert!(email.len() > 254);
    let r = register_reply(&email, PASSWORD).await;
    assert_invalid_fields(&r, &["email"]);
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let email = unique_email("extra");
    let forced_id = random_uuid();
    let r = post_json(
        REGISTER,
        &json!({"email": email, "password": PASSWORD, "id": forced_id, "is_admin": true}),
        None,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_token_pair(&r, &email);
    assert_ne!(r.json["user"]["id"], forced_id.as_str());
    assert!(r.json["user"].get("is_admin").is_none(), "{}", r.text);
}

// ------------------------------------------------------ request body rules

#[tokio::test]
async fn malformed_json_is_400() {
    for path in [REGISTER, LOGIN, REFRESH] {
        for body in [r#"{"email": "a@b.com""#, "{email: 1}", "", "{'a': 1}"] {
            let r = post_raw(path, Some("application/json"), body.to_string()).await;
            assert_eq!(r.status, 400, "{path} {body:?}: {}", r.text);
            r.assert_error(400, "invalid_request_error");
        }
    }
}

#[tokio::test]
async fn a_body_that_is_not_a_json_object_is_400() {
    for path in [REGISTER, LOGIN, REFRESH] {
        for body in ["[]", r#""x""#, "42", "null", r#"[{"email":"a@b.com"}]"#] {
            let r = post_raw(path, Some("application/json"), body.to_string()).await;
            assert_eq!(r.status, 400, "{path} {body:?}: {}", r.text);
            r.assert_error(400, "invalid_request_error");
        }
    }
}

#[tokio::test]
async fn missing_or_non_json_content_type_is_400() {
    let body = json!({"email": unique_email("ctype"), "password": PASSWORD}).to_string();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let r = post_raw(REGISTER, ct, body.clone()).await;
        assert_eq!(r.status, 400, "{ct:?}: {}", r.text);
        r.assert_error(400, "invalid_request_error");
    }
    // The same body with a JSON content type (and a charset) registers.
    let r = post_raw(REGISTER, Some("application/json; charset=utf-8"), body).await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn a_body_over_1_mib_is_413() {
    let body = json!({
        "email": unique_email("big"),
        "password": PASSWORD,
        "padding": "x".repeat(1024 * 1024 + 16),
    })
    .to_string();
    let r = post_raw(REGISTER, Some("application/json"), body).await;
    r.assert_error(413, "request_too_large");
}

/// `POST path` with `body` sent chunked (no `Content-Length`); `Err` when
/// the connection fails before a response is read.
async fn post_chunked(
    path: &str,
    chunks: impl futures::Stream<Item = Vec<u8>> + Send + Sync + 'static,
) -> Result<Reply, reqwest::Error> {
    use futures::StreamExt;
    let body = reqwest::Body::wrap_stream(chunks.map(Ok::<_, std::io::Error>));
    let resp = reqwest::Client::new()
        .post(format!("{}{}", crate::support::stack().base_url, path))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await?;
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Reply {
        status,
        headers,
        json,
        text,
    })
}

#[tokio::test]
async fn a_chunked_body_that_never_ends_is_413_at_the_cap() {
    // An endless body: only a reader that stops at the cap can answer. The
    // server may close the connection while the client still writes, which
    // can reset it before the answer is read, and `wrangler dev`'s local
    // proxy may lose its connection to the runtime then (it answers a
    // plain-text 503 of its own, "Your worker restarted mid-request", not
    // the worker's envelope, and the next try or two may find the
    // connection to the runtime still being re-established); a few tries,
    // a moment apart, must show a 413.
    let mut outcomes = Vec::new();
    for attempt in 0..6 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        let endless = futures::stream::repeat(vec![b' '; 64 * 1024]);
        let r = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            post_chunked(LOGIN, endless),
        )
        .await
        .expect("answered without reading the whole body");
        match r {
            Ok(r) if r.status == 503 && r.text.contains("restarted mid-request") => {
                outcomes.push(r.text)
            }
            Ok(r) => {
                r.assert_error(413, "request_too_large");
                return;
            }
            Err(e) => outcomes.push(e.to_string()),
        }
    }
    panic!("no answer read: {outcomes:?}");
}

#[tokio::test]
async fn a_chunked_body_just_under_the_cap_is_read() {
    let s = new_user().await;
    let head = json!({"email": s.email, "password": PASSWORD}).to_string();
    // `{"email":…,"password":…}` padded with spaces to 1 MiB - 1 byte.
    let mut body = head.into_bytes();
    let last = body.pop();
    body.resize(1024 * 1024 - 2, b' ');
    body.extend(last);
    assert_eq!(body.len(), 1024 * 1024 - 1);
    let chunks: Vec<Vec<u8>> = body.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
    let r = post_chunked(LOGIN, futures::stream::iter(chunks))
        .await
        .expect("the worker answers");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["user"]["id"], s.user_id.as_str());
}

#[tokio::test]
async fn credential_routes_answer_without_server_timing() {
    let s = new_user().await;
    let replies = [
        (
            "register",
            register_reply(&unique_email("timing"), PASSWORD).await,
        ),
        ("login", login(&s.email, PASSWORD).await),
        ("failed login", login(&s.email, "wrong-password-1").await),
        ("refresh", refresh(&s.refresh).await),
        ("logout", logout(&s.refresh, Auth::Bearer(&s.access)).await),
    ];
    for (what, r) in &replies {
        assert!(r.status.as_u16() < 500, "{what}: {}", r.text);
        r.assert_security_headers();
        assert!(
            r.headers.get("server-timing").is_none(),
            "{what}: {:?}",
            r.headers
        );
    }
    // Elsewhere the timing stays.
    me(Auth::Bearer(&s.access)).await.assert_common_headers();
}

// ---------------------------------------------------------- hostile input

#[tokio::test]
async fn sql_looking_email_is_422_and_the_api_still_works() {
    let r = register_reply("a'; DROP TABLE users;--@x.com", PASSWORD).await;
    assert_invalid_fields(&r, &["email"]);
    let s = new_user().await;
    assert_eq!(login(&s.email, PASSWORD).await.status, 200);
    let h = get("/health?deep=1").await;
    assert_eq!(h.status, 200, "{}", h.text);
}

#[tokio::test]
async fn sql_looking_password_is_just_a_password() {
    let email = unique_email("sqlpw");
    let password = "' OR '1'='1' --a1";
    let s = register(&email, password).await;
    let r = login(&email, password).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["user"]["id"], s.user_id.as_str());
    let r = login(&email, "' OR '1'='1' --b2").await;
    r.assert_error(401, "authentication_error");
    let r = login(&email, "' OR 1=1 --").await;
    r.assert_error(401, "authentication_error");
}

#[tokio::test]
async fn unicode_passwords_work() {
    let email = unique_email("uni");
    let password = "pässwörd-日本語-🔑-42";
    let s = register(&email, password).await;
    let r = login(&email, password).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["user"]["id"], s.user_id.as_str());
    let r = login(&email, "passwörd-日本語-🔑-42").await;
    r.assert_error(401, "authentication_error");
}

// ------------------------------------------------------------------ login

#[tokio::test]
async fn login_returns_a_token_pair_and_the_user() {
    let s = new_user().await;
    let r = login(&s.email, PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_token_pair(&r, &s.email);
    assert_eq!(r.json["user"]["id"], s.user_id.as_str());
    assert_ne!(r.json["refresh_token"], s.refresh.as_str());
    assert_me_is(
        Auth::Bearer(r.json["access_token"].as_str().unwrap()),
        &s.user_id,
    )
    .await;
}

#[tokio::test]
async fn login_email_is_case_insensitive() {
    let s = new_user().await;
    let r = login(&s.email.to_uppercase(), PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["user"]["id"], s.user_id.as_str());
    assert_eq!(r.json["user"]["email"], s.email.as_str());
}

#[tokio::test]
async fn wrong_password_and_unknown_email_give_the_same_401() {
    let s = new_user().await;
    let wrong = login(&s.email, "wrong-password-1").await;
    wrong.assert_error(401, "authentication_error");
    let unknown = login(&unique_email("nobody"), PASSWORD).await;
    unknown.assert_error(401, "authentication_error");
    assert_eq!(
        wrong.json["error"]["message"], unknown.json["error"]["message"],
        "the messages must not tell which one was wrong"
    );
    assert!(!wrong.text.contains(&s.email), "{}", wrong.text);
}

// ---------------------------------------------------------------- refresh

#[tokio::test]
async fn refresh_returns_a_new_working_pair() {
    let s = new_user().await;
    let r = refresh(&s.refresh).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_token_pair(&r, &s.email);
    assert_eq!(r.json["user"]["id"], s.user_id.as_str());
    let new_refresh = r.json["refresh_token"].as_str().unwrap();
    let new_access = r.json["access_token"].as_str().unwrap();
    assert_ne!(new_refresh, s.refresh);
    assert_ne!(new_access, s.access);
    assert_me_is(Auth::Bearer(new_access), &s.user_id).await;
    // The rotated token rotates in turn.
    let again = refresh(new_refresh).await;
    assert_eq!(again.status, 200, "{}", again.text);
}

#[tokio::test]
async fn a_used_refresh_token_is_refused() {
    let s = new_user().await;
    refresh_session(&s.refresh).await;
    past_refresh_grace(&s.refresh).await;
    let r = refresh(&s.refresh).await;
    r.assert_error(401, "authentication_error");
}

#[tokio::test]
async fn reusing_a_refresh_token_revokes_the_whole_family() {
    let s = new_user().await;
    let second = refresh_session(&s.refresh).await;
    past_refresh_grace(&s.refresh).await;
    refresh(&s.refresh)
        .await
        .assert_error(401, "authentication_error");
    let r = refresh(&second.refresh).await;
    assert_eq!(
        r.status, 401,
        "the newest token of a reused family must die: {}",
        r.text
    );
    r.assert_error(401, "authentication_error");
}

#[tokio::test]
async fn reuse_revokes_only_that_family() {
    let s = new_user().await;
    let other = login_session(&s.email, PASSWORD).await;
    refresh_session(&s.refresh).await;
    past_refresh_grace(&s.refresh).await;
    refresh(&s.refresh)
        .await
        .assert_error(401, "authentication_error");
    let r = refresh(&other.refresh).await;
    assert_eq!(
        r.status, 200,
        "another login's family stays alive: {}",
        r.text
    );
}

#[tokio::test]
async fn access_token_as_refresh_token_is_403() {
    let s = new_user().await;
    let r = refresh(&s.access).await;
    r.assert_error(403, "permission_error");
}

#[tokio::test]
async fn garbage_refresh_tokens_are_401() {
    for bad in [
        "garbage".to_string(),
        format!("crt_{}", random_hex(32)),
        "crt_' OR '1'='1".to_string(),
    ] {
        let r = refresh(&bad).await;
        assert_eq!(r.status, 401, "{bad:?}: {}", r.text);
        r.assert_error(401, "authentication_error");
    }
}

// ----------------------------------------------------------------- logout

#[tokio::test]
async fn logout_is_204_and_kills_the_refresh_token() {
    let s = new_user().await;
    let r = logout(&s.refresh, Auth::Bearer(&s.access)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty(), "204 has no body: {}", r.text);
    r.assert_security_headers();
    refresh(&s.refresh)
        .await
        .assert_error(401, "authentication_error");
}

#[tokio::test]
async fn logout_without_credentials_is_401_and_revokes_nothing() {
    let s = new_user().await;
    let r = logout(&s.refresh, Auth::None).await;
    r.assert_error(401, "authentication_error");
    let r = refresh(&s.refresh).await;
    assert_eq!(r.status, 200, "the token must still work: {}", r.text);
}

#[tokio::test]
async fn logout_accepts_an_api_key() {
    let s = new_user().await;
    let key = create_api_key(&s.access, "logout").await;
    let r = logout(&s.refresh, Auth::ApiKey(&key.key)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    refresh(&s.refresh)
        .await
        .assert_error(401, "authentication_error");
}

#[tokio::test]
async fn logout_cannot_end_another_users_login() {
    let victim = new_user().await;
    let intruder = new_user().await;
    let r = logout(&victim.refresh, Auth::Bearer(&intruder.access)).await;
    assert_eq!(r.status, 204, "logout never tells: {}", r.text);
    let r = refresh(&victim.refresh).await;
    assert_eq!(r.status, 200, "the victim's login must live on: {}", r.text);
}

// --------------------------------------------------------------------- me

#[tokio::test]
async fn me_returns_the_current_user() {
    let email = unique_email("me");
    let reg = register_reply(&email, PASSWORD).await;
    assert_eq!(reg.status, 201, "{}", reg.text);
    let r = me(Auth::Bearer(reg.json["access_token"].as_str().unwrap())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.assert_common_headers();
    assert_user(&r.json, &email);
    assert_eq!(r.json["id"], reg.json["user"]["id"]);
    assert_eq!(r.json["created_at"], reg.json["user"]["created_at"]);
}

#[tokio::test]
async fn me_without_credentials_is_401() {
    assert_me_refused(Auth::None, "no credentials").await;
}

// ---------------------------------------------------------- access tokens

#[tokio::test]
async fn access_token_claims_follow_the_contract() {
    let s = new_user().await;
    let header = jwt_part(&s.access, 0);
    assert_eq!(header["alg"], "HS256", "{header}");
    let claims = jwt_part(&s.access, 1);
    assert_eq!(claims["sub"], s.user_id.as_str(), "{claims}");
    assert_eq!(claims["typ"], "access", "{claims}");
    assert!(
        claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "{claims}"
    );
    let iat = claims["iat"].as_i64().expect("iat is a number");
    let exp = claims["exp"].as_i64().expect("exp is a number");
    assert_eq!(exp - iat, 1800, "{claims}");
    assert!((iat - now_secs()).abs() < 300, "iat is now: {claims}");
    // Two logins never share a jti.
    let again = login_session(&s.email, PASSWORD).await;
    assert_ne!(jwt_part(&again.access, 1)["jti"], claims["jti"]);
}

#[tokio::test]
async fn a_token_crafted_with_the_secret_is_accepted() {
    // The control for the refusals below: the crafting itself is right.
    let s = new_user().await;
    let token = hs256_token(jwt_secret(), &hs256_header(), &access_claims(&s.user_id));
    assert_me_is(Auth::Bearer(&token), &s.user_id).await;
}

#[tokio::test]
async fn a_tampered_payload_is_401() {
    let victim = new_user().await;
    let attacker = new_user().await;
    let mut parts: Vec<String> = attacker.access.split('.').map(str::to_string).collect();
    let mut claims = jwt_part(&attacker.access, 1);
    claims["sub"] = Value::from(victim.user_id.as_str());
    parts[1] = b64url(claims.to_string().as_bytes());
    let forged = parts.join(".");
    assert_me_refused(Auth::Bearer(&forged), "payload swapped").await;
    // The untouched token still works.
    assert_me_is(Auth::Bearer(&attacker.access), &attacker.user_id).await;
}

#[tokio::test]
async fn a_tampered_signature_is_401() {
    let s = new_user().await;
    let (input, sig) = s.access.rsplit_once('.').unwrap();
    let mut sig: Vec<char> = sig.chars().collect();
    sig[0] = if sig[0] == 'A' { 'B' } else { 'A' };
    let forged = format!("{input}.{}", sig.iter().collect::<String>());
    assert_me_refused(Auth::Bearer(&forged), "signature changed").await;
    assert_me_refused(Auth::Bearer(&format!("{input}.")), "signature removed").await;
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_401() {
    let s = new_user().await;
    let other = "another-secret-of-at-least-32-characters!";
    let token = hs256_token(other, &hs256_header(), &access_claims(&s.user_id));
    assert_me_refused(Auth::Bearer(&token), "foreign secret").await;
}

#[tokio::test]
async fn alg_none_is_401() {
    let s = new_user().await;
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "JWT"});
        let token = format!(
            "{}.{}.",
            b64url(header.to_string().as_bytes()),
            b64url(access_claims(&s.user_id).to_string().as_bytes())
        );
        assert_me_refused(Auth::Bearer(&token), alg).await;
    }
}

#[tokio::test]
async fn other_algorithms_in_the_header_are_401() {
    let s = new_user().await;
    let claims = access_claims(&s.user_id);
    let rs256 = hs256_token(
        jwt_secret(),
        &json!({"alg": "RS256", "typ": "JWT"}),
        &claims,
    );
    assert_me_refused(Auth::Bearer(&rs256), "RS256 header").await;
    let hs512 = hs512_token(
        jwt_secret(),
        &json!({"alg": "HS512", "typ": "JWT"}),
        &claims,
    );
    assert_me_refused(Auth::Bearer(&hs512), "HS512 (correctly signed)").await;
    let mislabelled = hs256_token(
        jwt_secret(),
        &json!({"alg": "HS512", "typ": "JWT"}),
        &claims,
    );
    assert_me_refused(Auth::Bearer(&mislabelled), "HS512 header, HS256 MAC").await;
}

#[tokio::test]
async fn an_expired_token_is_401() {
    let s = new_user().await;
    let now = now_secs();
    let mut claims = access_claims(&s.user_id);
    claims["iat"] = Value::from(now - 1920);
    claims["exp"] = Value::from(now - 120);
    let token = hs256_token(jwt_secret(), &hs256_header(), &claims);
    assert_me_refused(Auth::Bearer(&token), "expired two minutes ago").await;
}

#[tokio::test]
async fn a_typ_other_than_access_is_401() {
    let s = new_user().await;
    for typ in [json!("refresh"), json!("id"), json!(""), json!(null)] {
        let mut claims = access_claims(&s.user_id);
        claims["typ"] = typ.clone();
        let token = hs256_token(jwt_secret(), &hs256_header(), &claims);
        assert_me_refused(Auth::Bearer(&token), &format!("typ {typ}")).await;
    }
    let mut claims = access_claims(&s.user_id);
    claims.as_object_mut().unwrap().remove("typ");
    let token = hs256_token(jwt_secret(), &hs256_header(), &claims);
    assert_me_refused(Auth::Bearer(&token), "no typ").await;
}

#[tokio::test]
async fn a_token_without_exp_is_401() {
    let s = new_user().await;
    let mut claims = access_claims(&s.user_id);
    claims.as_object_mut().unwrap().remove("exp");
    let token = hs256_token(jwt_secret(), &hs256_header(), &claims);
    assert_me_refused(Auth::Bearer(&token), "no exp").await;
}

#[tokio::test]
async fn a_sub_that_is_not_a_known_user_is_401() {
    for sub in [
        json!("not-a-uuid"),
        json!("' OR '1'='1"),
        json!(12345),
        json!(random_uuid()),
    ] {
        let mut claims = access_claims("placeholder");
        claims["sub"] = sub.clone();
        let token = hs256_token(jwt_secret(), &hs256_header(), &claims);
        assert_me_refused(Auth::Bearer(&token), &format!("sub {sub}")).await;
    }
}

#[tokio::test]
async fn basic_authorization_is_401() {
    let s = new_user().await;
    let basic = format!(
        "Basic {}",
        b64(format!("{}:{PASSWORD}", s.email).as_bytes())
    );
    assert_me_refused(Auth::Authorization(&basic), "Basic").await;
}

#[tokio::test]
async fn an_empty_bearer_is_401() {
    for value in ["Bearer ", "Bearer", "Bearer    "] {
        assert_me_refused(Auth::Authorization(value), value).await;
    }
}

#[tokio::test]
async fn a_refresh_token_as_bearer_is_401() {
    let s = new_user().await;
    assert_me_refused(Auth::Bearer(&s.refresh), "refresh token").await;
    // And it was not consumed by the attempt.
    let r = refresh(&s.refresh).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn garbage_bearer_tokens_are_401() {
    for token in ["abc", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..", "cak_nothing"] {
        assert_me_refused(Auth::Bearer(token), token).await;
    }
}
