//! Rate limits, run only in the `ratelimit` phase: a worker with
//! `RATE_LIMIT_STANDARD=10`, `RATE_LIMIT_AI=3`, `RATE_LIMIT_AUTH=5`,
//! `RATE_LIMIT_IP=20`, `RATE_LIMIT_LOGIN=3` and a 3-second window, and these
//! tests one at a time (they share the client IP).
//! Users are made directly in the database with a crafted access token, so
//! making them spends no budget.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::{
    access_claims, call, db, hs256_header, hs256_token, jwt_secret, post_json, random_uuid, stack,
    unique_email, Auth, Reply,
};

const STANDARD: u32 = 10;
const AI: u32 = 3;
const AUTH: u32 = 5;
const IP: u32 = 20;
const LOGIN: u32 = 3;
const WINDOW: Duration = Duration::from_secs(3);

/// A user made in the database, with an access token and an API key.
struct User {
    id: String,
    access: String,
    key: String,
}

async fn user() -> User {
    let c = db().await;
    let id: String = c
        .query_one(
            "INSERT INTO app.users (email, password_hash) VALUES ($1, 'x') RETURNING id::text",
            &[&unique_email("rl")],
        )
        .await
        .expect("insert user")
        .get(0);
    // `cak_` + 43 base64url characters, the shape the worker accepts.
    let key = format!("cak_{}{}", "A".repeat(11), random_uuid().replace('-', ""));
    let hash: String = Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    c.execute(
        "INSERT INTO app.api_keys (user_id, name, prefix, key_hash) VALUES ($1::text::uuid, 'rl', $2, $3)",
        &[&id, &&key[..12], &hash],
    )
    .await
    .expect("insert key");
    let access = hs256_token(jwt_secret(), &hs256_header(), &access_claims(&id));
    User { id, access, key }
}

fn limit_headers(r: &Reply) -> (u32, u32, u64) {
    let n = |name: &str| -> u64 {
        r.header(name).parse().unwrap_or_else(|_| {
            panic!(
                "{name} missing or not a number on {}: {:?}",
                r.status, r.headers
            )
        })
    };
    (
        n("x-ratelimit-limit") as u32,
        n("x-ratelimit-remaining") as u32,
        n("x-ratelimit-reset"),
    )
}

async fn me(auth: Auth<'_>) -> Reply {
    call(Method::GET, "/api/v1/auth/me", auth, None).await
}

async fn fresh_window() {
    tokio::time::sleep(WINDOW + Duration::from_millis(300)).await;
}

#[tokio::test]
async fn the_request_over_the_limit_is_429_with_headers() {
    let u = user().await;
    for i in 0..STANDARD {
        let r = me(Auth::Bearer(&u.access)).await;
        assert_eq!(r.status, 200, "request {i}: {}", r.text);
        let (limit, remaining, reset) = limit_headers(&r);
        assert_eq!((limit, remaining), (STANDARD, STANDARD - 1 - i));
        assert!((1..=3).contains(&reset), "reset {reset}");
    }
    let r = me(Auth::Bearer(&u.access)).await;
    r.assert_error(429, "rate_limit_error");
    let (limit, remaining, reset) = limit_headers(&r);
    assert_eq!((limit, remaining), (STANDARD, 0));
    let retry: u64 = r.header("retry-after").parse().expect("Retry-After");
    assert!((1..=3).contains(&retry), "retry-after {retry}");
    assert!(reset >= 1);
}

#[tokio::test]
async fn another_user_is_unaffected() {
    let a = user().await;
    let b = user().await;
    for _ in 0..=STANDARD {
        me(Auth::Bearer(&a.access)).await;
    }
    me(Auth::Bearer(&a.access))
        .await
        .assert_error(429, "rate_limit_error");
    let r = me(Auth::Bearer(&b.access)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(limit_headers(&r).1, STANDARD - 1);
}

#[tokio::test]
async fn api_key_and_access_token_share_one_budget() {
    let u = user().await;
    for _ in 0..STANDARD / 2 {
        assert_eq!(me(Auth::Bearer(&u.access)).await.status, 200);
    }
    for _ in 0..STANDARD / 2 {
        let r = me(Auth::ApiKey(&u.key)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["id"], u.id);
    }
    me(Auth::ApiKey(&u.key))
        .await
        .assert_error(429, "rate_limit_error");
    me(Auth::Bearer(&u.access))
        .await
        .assert_error(429, "rate_limit_error");
}

#[tokio::test]
async fn requests_succeed_again_after_the_window() {
    let u = user().await;
    for _ in 0..STANDARD {
        me(Auth::Bearer(&u.access)).await;
    }
    me(Auth::Bearer(&u.access))
        .await
        .assert_error(429, "rate_limit_error");
    fresh_window().await;
    let r = me(Auth::Bearer(&u.access)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(limit_headers(&r).1, STANDARD - 1);
}

#[tokio::test]
async fn twenty_concurrent_requests_admit_exactly_the_limit() {
    let u = user().await;
    let access = u.access.clone();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let access = access.clone();
            tokio::spawn(async move { me(Auth::Bearer(&access)).await.status.as_u16() })
        })
        .collect();
    let mut ok = 0;
    let mut limited = 0;
    for t in tasks {
        match t.await.expect("task") {
            200 => ok += 1,
            429 => limited += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((ok, limited), (STANDARD, 20 - STANDARD));
}

#[tokio::test]
async fn the_ai_limit_applies_to_sends_only_and_refusals_reach_no_model() {
    let u = user().await;
    let conversation: Value = call(
        Method::POST,
        "/api/v1/conversations",
        Auth::Bearer(&u.access),
        Some(&json!({"title": "titled, so no title call is counted"})),
    )
    .await
    .json;
    let id = conversation["id"]
        .as_str()
        .expect("conversation id")
        .to_string();
    let marker = format!("rl-{}", random_uuid());
    let path = format!("/api/v1/conversations/{id}/messages");
    for i in 0..AI {
        let r = call(
            Method::POST,
            &path,
            Auth::Bearer(&u.access),
            Some(&json!({"content": format!("{marker} {i}")})),
        )
        .await;
        assert_eq!(r.status, 201, "send {i}: {}", r.text);
        assert_eq!(limit_headers(&r).0, AI, "sends report the AI limit");
    }
    let r = call(
        Method::POST,
        &path,
        Auth::Bearer(&u.access),
        Some(&json!({"content": format!("{marker} over")})),
    )
    .await;
    r.assert_error(429, "rate_limit_error");
    assert_eq!(limit_headers(&r).0, AI);
    let stream = call(
        Method::POST,
        &format!("{path}/stream"),
        Auth::Bearer(&u.access),
        Some(&json!({"content": format!("{marker} stream")})),
    )
    .await;
    stream.assert_error(429, "rate_limit_error");
    let r = me(Auth::Bearer(&u.access)).await;
    assert_eq!(r.status, 200, "non-send requests still pass: {}", r.text);
    let seen: Value = reqwest::get(format!(
        "{}/_control/requests?contains={marker}",
        stack().standin_url
    ))
    .await
    .expect("stand-in")
    .json()
    .await
    .expect("json");
    assert_eq!(
        seen["data"].as_array().map(Vec::len),
        Some(AI as usize),
        "refused sends never reached a provider"
    );
}

#[tokio::test]
async fn errors_of_limited_routes_carry_the_headers_too() {
    let u = user().await;
    let r = call(
        Method::GET,
        &format!("/api/v1/conversations/{}", random_uuid()),
        Auth::Bearer(&u.access),
        None,
    )
    .await;
    r.assert_error(404, "not_found_error");
    assert_eq!(limit_headers(&r).0, STANDARD);
}

#[tokio::test]
async fn login_brute_force_from_one_ip_is_limited() {
    fresh_window().await;
    let email = unique_email("brute");
    for i in 0..AUTH {
        // Another account each time: the per-account limit stays out of it.
        let email = format!("{i}-{email}");
        let r = post_json(
            "/api/v1/auth/login",
            &json!({"email": email, "password": format!("guess-{i}-a1")}),
            None,
        )
        .await;
        r.assert_error(401, "authentication_error");
        assert_eq!(limit_headers(&r).0, AUTH);
    }
    let r = post_json(
        "/api/v1/auth/login",
        &json!({"email": email, "password": "one-more-a1"}),
        None,
    )
    .await;
    r.assert_error(429, "rate_limit_error");
    assert!(!r.header("retry-after").is_empty());
    let r = post_json(
        "/api/v1/auth/register",
        &json!({"email": unique_email("x"), "password": "password123"}),
        None,
    )
    .await;
    r.assert_error(429, "rate_limit_error");
    fresh_window().await;
}

#[tokio::test]
async fn api_key_lookups_are_limited_per_ip_before_any_lookup() {
    fresh_window().await;
    // Keys of the right shape that exist nowhere: each would cost a lookup.
    let bogus = || format!("cak_{}{}", "B".repeat(11), random_uuid().replace('-', ""));
    for _ in 0..IP {
        let r = me(Auth::ApiKey(&bogus())).await;
        r.assert_error(401, "authentication_error");
    }
    let r = me(Auth::ApiKey(&bogus())).await;
    r.assert_error(429, "rate_limit_error");
    assert!(!r.header("retry-after").is_empty(), "{:?}", r.headers);
    assert_eq!(limit_headers(&r).0, IP);
    // The deep health check counts against the same per-IP budget…
    let r = call(Method::GET, "/health?deep=1", Auth::None, None).await;
    r.assert_error(429, "rate_limit_error");
    // …the shallow one does not, and access tokens need no lookup.
    let r = call(Method::GET, "/health", Auth::None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let u = user().await;
    assert_eq!(me(Auth::Bearer(&u.access)).await.status, 200);
    fresh_window().await;
}

#[tokio::test]
async fn the_deep_health_check_is_limited_per_ip() {
    fresh_window().await;
    for _ in 0..IP {
        let r = call(Method::GET, "/health?deep=1", Auth::None, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = call(Method::GET, "/health?deep=1", Auth::None, None).await;
    r.assert_error(429, "rate_limit_error");
    assert!(!r.header("retry-after").is_empty());
    fresh_window().await;
}

/// `POST /api/v1/auth/login` with this e-mail and password.
async fn login_as(email: &str, password: &str) -> Reply {
    let body = json!({"email": email, "password": password});
    post_json("/api/v1/auth/login", &body, None).await
}

#[tokio::test]
async fn logins_are_limited_per_account_with_a_clear_429() {
    fresh_window().await;
    let (email, other) = (unique_email("guessed"), unique_email("other"));
    for e in [&email, &other] {
        let body = json!({"email": e, "password": "password123"});
        let r = post_json("/api/v1/auth/register", &body, None).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    fresh_window().await;
    for i in 0..LOGIN {
        login_as(&email, &format!("guess-{i}-a1"))
            .await
            .assert_error(401, "authentication_error");
    }
    // The right password, the address written differently: the account is
    // throttled whoever asks (its e-mail is normalised).
    let r = login_as(&format!("  {}", email.to_uppercase()), "password123").await;
    r.assert_error(429, "rate_limit_error");
    let message = r.json["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("login attempts for this account"),
        "{}",
        r.text
    );
    let retry: u64 = r.header("retry-after").parse().expect("Retry-After");
    assert!((1..=3).contains(&retry), "{retry}");
    // Another account from the same address still logs in (the IP's own
    // limit, 5, is just reached).
    let r = login_as(&other, "password123").await;
    assert_eq!(r.status, 200, "another account: {}", r.text);
    fresh_window().await;
    let r = login_as(&email, "password123").await;
    assert_eq!(
        r.status, 200,
        "the account logs in after the window: {}",
        r.text
    );
}
