//! Accounts, sessions and API keys made through the API.

use reqwest::Method;
use serde_json::Value;

use super::*;

/// A registered user with live tokens.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub email: String,
    pub access: String,
    pub refresh: String,
}

impl Session {
    fn from_reply(r: &Reply) -> Session {
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        Session {
            user_id: s(&r.json["user"]["id"]),
            email: s(&r.json["user"]["email"]),
            access: s(&r.json["access_token"]),
            refresh: s(&r.json["refresh_token"]),
        }
    }
}

/// `POST /api/v1/auth/register` with this e-mail and password, as sent.
pub async fn register_reply(email: &str, password: &str) -> Reply {
    post_json(
        "/api/v1/auth/register",
        &serde_json::json!({"email": email, "password": password}),
        None,
    )
    .await
}

/// Registers (asserting 201) and returns the session.
pub async fn register(email: &str, password: &str) -> Session {
    let r = register_reply(email, password).await;
    assert_eq!(r.status, 201, "register {email}: {}", r.text);
    Session::from_reply(&r)
}

/// A fresh user with a unique e-mail and [`PASSWORD`].
pub async fn new_user() -> Session {
    register(&unique_email("user"), PASSWORD).await
}

/// `POST /api/v1/auth/login`.
pub async fn login(email: &str, password: &str) -> Reply {
    post_json(
        "/api/v1/auth/login",
        &serde_json::json!({"email": email, "password": password}),
        None,
    )
    .await
}

/// Logs in (asserting 200) and returns the new session.
pub async fn login_session(email: &str, password: &str) -> Session {
    let r = login(email, password).await;
    assert_eq!(r.status, 200, "login {email}: {}", r.text);
    Session::from_reply(&r)
}

/// `POST /api/v1/auth/refresh` with this refresh token.
pub async fn refresh(token: &str) -> Reply {
    post_json(
        "/api/v1/auth/refresh",
        &serde_json::json!({"refresh_token": token}),
        None,
    )
    .await
}

/// Refreshes (asserting 200) and returns the rotated session.
pub async fn refresh_session(token: &str) -> Session {
    let r = refresh(token).await;
    assert_eq!(r.status, 200, "refresh: {}", r.text);
    Session::from_reply(&r)
}

/// Moves the rotation of a used refresh token a minute into the past,
/// beyond the grace window in which repeating it is not reuse (set in
/// PostgreSQL: waiting the window out would only slow the tests).
pub async fn past_refresh_grace(token: &str) {
    use sha2::{Digest, Sha256};
    let hash: String = Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let n = db()
        .await
        .execute(
            "UPDATE app.refresh_tokens SET used_at = used_at - interval '1 minute' \
             WHERE token_hash = $1 AND used_at IS NOT NULL",
            &[&hash],
        )
        .await
        .expect("backdate the rotation");
    assert_eq!(n, 1, "a used refresh token");
}

/// An API key as created (the only time `key` is shown).
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub id: String,
    pub key: String,
    pub prefix: String,
}

/// `POST /api/v1/auth/api-keys` `{name}` with these credentials.
pub async fn create_api_key_reply(auth: Auth<'_>, name: &Value) -> Reply {
    call(
        Method::POST,
        "/api/v1/auth/api-keys",
        auth,
        Some(&serde_json::json!({ "name": name })),
    )
    .await
}

/// Creates an API key for the owner of `access` (asserting 201).
pub async fn create_api_key(access: &str, name: &str) -> ApiKey {
    let r = create_api_key_reply(Auth::Bearer(access), &Value::from(name)).await;
    assert_eq!(r.status, 201, "create API key: {}", r.text);
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    ApiKey {
        id: s(&r.json["id"]),
        key: s(&r.json["key"]),
        prefix: s(&r.json["prefix"]),
    }
}

/// `GET /api/v1/auth/api-keys` as the owner of `access` (asserting 200):
/// the `data` list.
pub async fn list_api_keys(access: &str) -> Vec<Value> {
    let r = get_as("/api/v1/auth/api-keys", Auth::Bearer(access)).await;
    assert_eq!(r.status, 200, "list API keys: {}", r.text);
    r.json["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data is a list: {}", r.text))
        .clone()
}
