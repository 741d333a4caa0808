//! API keys: create, list, delete, authenticate with them, and what they
//! may not do. Runs in the PostgreSQL phase; every test makes its own users.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    create_api_key, create_api_key_reply, delete_as, detail_fields, get_as, is_rfc3339_utc,
    is_uuid, list_api_keys, me, new_user, random_uuid, Auth,
};

const KEYS: &str = "/api/v1/auth/api-keys";

fn key_path(id: &str) -> String {
    format!("{KEYS}/{id}")
}

/// Asserts `/auth/me` with `auth` answers 401 in the envelope.
async fn assert_refused(auth: Auth<'_>, what: &str) {
    let r = me(auth).await;
    assert_eq!(r.status, 401, "{what}: {}", r.text);
    r.assert_error(401, "authentication_error");
}

#[tokio::test]
async fn create_returns_the_key_once_with_its_prefix() {
    let s = new_user().await;
    let r = create_api_key_reply(Auth::Bearer(&s.access), &Value::from("laptop")).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.assert_common_headers();
    let j = &r.json;
    assert!(is_uuid(j["id"].as_str().unwrap_or_default()), "{}", r.text);
    assert_eq!(j["name"], "laptop");
    let key = j["key"].as_str().unwrap_or_default();
    let prefix = j["prefix"].as_str().unwrap_or_default();
    assert!(key.starts_with("cak_"), "key: {key}");
    assert!(key.len() >= 32, "key too short to be secret: {key}");
    assert_eq!(prefix.len(), 12, "prefix: {prefix}");
    assert!(prefix.starts_with("cak_"), "prefix: {prefix}");
    assert!(key.starts_with(prefix), "{key} starts with {prefix}");
    assert!(
        is_rfc3339_utc(j["created_at"].as_str().unwrap_or_default()),
        "{}",
        r.text
    );
    // Two keys never collide.
    let other = create_api_key(&s.access, "laptop").await;
    assert_ne!(other.key, key);
    assert_ne!(other.id, j["id"].as_str().unwrap());
}

#[tokio::test]
async fn invalid_names_are_422() {
    let s = new_user().await;
    for bad in [
        Value::from(""),
        Value::from("   "),
        Value::from("k".repeat(101)),
    ] {
        let r = create_api_key_reply(Auth::Bearer(&s.access), &bad).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        r.assert_error(422, "invalid_request_error");
        assert!(detail_fields(&r).iter().any(|f| f == "name"), "{}", r.text);
    }
    // A body without a name.
    let r = crate::support::call(
        reqwest::Method::POST,
        KEYS,
        Auth::Bearer(&s.access),
        Some(&serde_json::json!({})),
    )
    .await;
    r.assert_error(422, "invalid_request_error");
    assert!(detail_fields(&r).iter().any(|f| f == "name"), "{}", r.text);
    assert!(list_api_keys(&s.access).await.is_empty());
}

#[tokio::test]
async fn name_length_is_counted_after_trimming() {
    let s = new_user().await;
    let r = create_api_key_reply(Auth::Bearer(&s.access), &Value::from("k".repeat(100))).await;
    assert_eq!(r.status, 201, "100 characters: {}", r.text);
    let padded = format!("  {}  ", "p".repeat(100));
    let r = create_api_key_reply(Auth::Bearer(&s.access), &Value::from(padded)).await;
    assert_eq!(r.status, 201, "100 characters once trimmed: {}", r.text);
    let r = create_api_key_reply(Auth::Bearer(&s.access), &Value::from(" x ")).await;
    assert_eq!(r.status, 201, "1 character once trimmed: {}", r.text);
}

#[tokio::test]
async fn malformed_json_on_create_is_400() {
    let s = new_user().await;
    let auth = format!("Bearer {}", s.access);
    let r = crate::support::send(
        reqwest::Method::POST,
        KEYS,
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        Some(r#"{"name": "#.to_string()),
    )
    .await;
    r.assert_error(400, "invalid_request_error");
}

#[tokio::test]
async fn list_is_newest_first_and_never_shows_secrets() {
    let s = new_user().await;
    let first = create_api_key(&s.access, "first").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = create_api_key(&s.access, "second").await;
    let r = get_as(KEYS, Auth::Bearer(&s.access)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.assert_common_headers();
    let data = r.json["data"].as_array().expect("data is a list");
    assert_eq!(data.len(), 2, "{}", r.text);
    assert_eq!(
        data[0]["id"],
        second.id.as_str(),
        "newest first: {}",
        r.text
    );
    assert_eq!(data[1]["id"], first.id.as_str(), "{}", r.text);
    assert_eq!(data[0]["name"], "second");
    assert_eq!(data[0]["prefix"], second.prefix.as_str());
    assert_eq!(data[1]["prefix"], first.prefix.as_str());
    for item in data {
        for field in ["id", "name", "prefix", "created_at", "last_used_at"] {
            assert!(item.get(field).is_some(), "{field} missing: {item}");
        }
        assert!(item["last_used_at"].is_null(), "unused key: {item}");
        for k in item.as_object().unwrap().keys() {
            assert!(
                k != "key" && !k.contains("hash") && !k.contains("secret"),
                "list shows {k}: {item}"
            );
        }
    }
    assert!(!r.text.contains(&first.key), "a key is shown: {}", r.text);
    assert!(!r.text.contains(&second.key), "a key is shown: {}", r.text);
}

#[tokio::test]
async fn list_shows_only_the_callers_keys() {
    let alice = new_user().await;
    let bob = new_user().await;
    create_api_key(&alice.access, "alice's").await;
    assert!(list_api_keys(&bob.access).await.is_empty());
    assert_eq!(list_api_keys(&alice.access).await.len(), 1);
}

#[tokio::test]
async fn a_key_authenticates_with_x_api_key() {
    let s = new_user().await;
    let key = create_api_key(&s.access, "header").await;
    let r = me(Auth::ApiKey(&key.key)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["id"], s.user_id.as_str());
    assert_eq!(r.json["email"], s.email.as_str());
}

#[tokio::test]
async fn a_key_authenticates_as_a_bearer_token() {
    let s = new_user().await;
    let key = create_api_key(&s.access, "bearer").await;
    let r = me(Auth::Bearer(&key.key)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["id"], s.user_id.as_str());
}

#[tokio::test]
async fn keys_cannot_manage_keys() {
    let s = new_user().await;
    let key = create_api_key(&s.access, "limited").await;
    for auth in [Auth::ApiKey(&key.key), Auth::Bearer(&key.key)] {
        let r = create_api_key_reply(auth, &Value::from("child")).await;
        r.assert_error(403, "permission_error");
        let r = get_as(KEYS, auth).await;
        r.assert_error(403, "permission_error");
        let r = delete_as(&key_path(&key.id), auth).await;
        r.assert_error(403, "permission_error");
    }
    // Nothing changed: still exactly one key, and it still works.
    assert_eq!(list_api_keys(&s.access).await.len(), 1);
    assert_eq!(me(Auth::ApiKey(&key.key)).await.status, 200);
}

#[tokio::test]
async fn key_management_needs_credentials() {
    let s = new_user().await;
    let key = create_api_key(&s.access, "x").await;
    let r = create_api_key_reply(Auth::None, &Value::from("anon")).await;
    r.assert_error(401, "authentication_error");
    get_as(KEYS, Auth::None)
        .await
        .assert_error(401, "authentication_error");
    delete_as(&key_path(&key.id), Auth::None)
        .await
        .assert_error(401, "authentication_error");
    assert_eq!(me(Auth::ApiKey(&key.key)).await.status, 200);
}

#[tokio::test]
async fn deleting_a_key_revokes_it_at_once() {
    let s = new_user().await;
    let key = create_api_key(&s.access, "doomed").await;
    let keep = create_api_key(&s.access, "kept").await;
    assert_eq!(me(Auth::ApiKey(&key.key)).await.status, 200);
    let r = delete_as(&key_path(&key.id), Auth::Bearer(&s.access)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty(), "204 has no body: {}", r.text);
    assert_refused(Auth::ApiKey(&key.key), "deleted key (X-API-Key)").await;
    assert_refused(Auth::Bearer(&key.key), "deleted key (Bearer)").await;
    let left = list_api_keys(&s.access).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["id"], keep.id.as_str());
    assert_eq!(me(Auth::ApiKey(&keep.key)).await.status, 200);
}

#[tokio::test]
async fn deleting_twice_is_404() {
    let s = new_user().await;
    let key = create_api_key(&s.access, "once").await;
    let r = delete_as(&key_path(&key.id), Auth::Bearer(&s.access)).await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = delete_as(&key_path(&key.id), Auth::Bearer(&s.access)).await;
    r.assert_error(404, "not_found_error");
}

#[tokio::test]
async fn another_users_key_is_404_and_keeps_working() {
    let owner = new_user().await;
    let intruder = new_user().await;
    let key = create_api_key(&owner.access, "mine").await;
    let r = delete_as(&key_path(&key.id), Auth::Bearer(&intruder.access)).await;
    r.assert_error(404, "not_found_error");
    let r = me(Auth::ApiKey(&key.key)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["id"], owner.user_id.as_str());
    assert_eq!(list_api_keys(&owner.access).await.len(), 1);
}

#[tokio::test]
async fn malformed_and_unknown_key_ids_are_404() {
    let s = new_user().await;
    let key = create_api_key(&s.access, "stays").await;
    let unknown = random_uuid();
    for id in [
        "not-a-uuid",
        "12345",
        "%27%20OR%20%271%27%3D%271",
        unknown.as_str(),
    ] {
        let r = delete_as(&key_path(id), Auth::Bearer(&s.access)).await;
        assert_eq!(r.status, 404, "{id}: {}", r.text);
        r.assert_error(404, "not_found_error");
    }
    assert_eq!(me(Auth::ApiKey(&key.key)).await.status, 200);
}

#[tokio::test]
async fn a_wrong_key_with_the_right_prefix_is_401() {
    let s = new_user().await;
    let key = create_api_key(&s.access, "real").await;
    let mut chars: Vec<char> = key.key.chars().collect();
    let last = chars.len() - 1;
    chars[last] = if chars[last] == 'a' { 'b' } else { 'a' };
    let forged: String = chars.into_iter().collect();
    assert!(forged.starts_with(&key.prefix));
    assert_refused(Auth::ApiKey(&forged), "forged (X-API-Key)").await;
    assert_refused(Auth::Bearer(&forged), "forged (Bearer)").await;
    assert_refused(Auth::ApiKey(&key.prefix), "the prefix alone").await;
    assert_eq!(me(Auth::ApiKey(&key.key)).await.status, 200);
}

#[tokio::test]
async fn garbage_api_keys_are_401() {
    for bad in ["nope", "cak_", "cak_nope", "cak_' OR '1'='1", ""] {
        assert_refused(Auth::ApiKey(bad), bad).await;
    }
}

#[tokio::test]
async fn last_used_at_is_set_after_use() {
    let s = new_user().await;
    let key = create_api_key(&s.access, "tracked").await;
    let listed = list_api_keys(&s.access).await;
    assert!(listed[0]["last_used_at"].is_null(), "{listed:?}");
    assert_eq!(me(Auth::ApiKey(&key.key)).await.status, 200);
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let listed = list_api_keys(&s.access).await;
        let used = &listed[0]["last_used_at"];
        if !used.is_null() {
            assert!(
                is_rfc3339_utc(used.as_str().unwrap_or_default()),
                "last_used_at: {used}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "last_used_at still null 6 s after use: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
