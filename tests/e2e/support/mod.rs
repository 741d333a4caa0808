//! Shared helpers: where the stack is, and a small HTTP client that returns
//! status, headers and the JSON body in one value.

use std::sync::OnceLock;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Where the stack started by the test runner lives.
pub struct Stack {
    /// The worker, e.g. `http://127.0.0.1:8788`.
    pub base_url: String,
    /// The provider stand-in (empty in phases without one).
    #[allow(dead_code)]
    pub standin_url: String,
    /// The origin listed in the worker's `ALLOWED_ORIGINS`.
    pub origin: String,
    /// The database behind the worker, for checks the API cannot show.
    pub database_url: String,
    /// The worker's `JWT_SECRET`, to craft access tokens (empty when unknown).
    #[allow(dead_code)]
    pub jwt_secret: String,
}

/// The stack of this run; panics with instructions when run outside `npm test`.
pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        let base_url = var("E2E_BASE_URL");
        assert!(
            !base_url.is_empty(),
            "E2E_BASE_URL is not set: the end-to-end tests run through `npm test`, which starts the stack"
        );
        Stack {
            base_url,
            standin_url: var("E2E_STANDIN_URL"),
            origin: var("E2E_ORIGIN"),
            jwt_secret: var("E2E_JWT_SECRET"),
            database_url: var("E2E_DATABASE_URL"),
        }
    })
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as JSON (`Value::Null` when empty or not JSON).
    pub json: Value,
    /// The raw body text.
    pub text: String,
}

impl Reply {
    /// A header's value as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Asserts the contract's error envelope with this status and `error.type`.
    pub fn assert_error(&self, status: u16, kind: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(self.json["type"], "error", "body: {}", self.text);
        assert_eq!(self.json["error"]["type"], kind, "body: {}", self.text);
        assert!(
            self.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error.message missing: {}",
            self.text
        );
        assert_eq!(
            self.json["request_id"].as_str(),
            Some(self.header("x-request-id")),
            "request_id must equal X-Request-Id"
        );
        assert_eq!(self.header("content-type"), "application/json");
    }

    /// Asserts the headers every response carries, `Server-Timing` included.
    pub fn assert_common_headers(&self) {
        self.assert_security_headers();
        assert!(
            self.server_timing("total").is_some(),
            "Server-Timing total missing: {:?}",
            self.headers
        );
    }

    /// Asserts the request id and security headers (all but `Server-Timing`,
    /// which the credential routes leave out).
    pub fn assert_security_headers(&self) {
        assert!(
            !self.header("x-request-id").is_empty(),
            "X-Request-Id missing"
        );
        assert_eq!(self.header("x-content-type-options"), "nosniff");
        assert_eq!(self.header("x-frame-options"), "DENY");
        assert_eq!(self.header("referrer-policy"), "no-referrer");
        assert!(self
            .header("strict-transport-security")
            .starts_with("max-age="));
    }

    /// The `dur` of a `Server-Timing` entry, if the response has it.
    pub fn server_timing(&self, name: &str) -> Option<f64> {
        harness::server_timing::find(&self.headers, name)?.dur
    }
}

/// Sends a request to the worker; `headers` are added as given.
pub async fn send(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Reply {
    send_to(&stack().base_url, method, path, headers, body).await
}

/// [`send`] to the worker at `base_url` (a phase may run more than one).
pub async fn send_to(
    base_url: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Reply {
    // One client per call: each #[tokio::test] has its own runtime, and a
    // pooled connection dies with the runtime that opened it.
    let client = reqwest::Client::new();
    let mut req = client.request(method.clone(), format!("{base_url}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req.body(body);
    }
    let resp = req.send().await.expect("the worker answers");
    let status = resp.status();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    conform(method.as_str(), path, status.as_u16(), &headers, &text);
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        json,
        text,
    }
}

/// Asserts that a response is what the OpenAPI document promises for its
/// operation and status (the error envelope for unknown paths and methods),
/// and records a validated 2xx for the runner's coverage check.
pub fn conform(method: &str, path: &str, status: u16, headers: &HeaderMap, body: &str) {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let checked = harness::openapi::spec().check_response(
        method,
        path,
        status,
        content_type,
        |name| headers.contains_key(name),
        body,
    );
    match checked {
        Ok(Some(operation)) if (200..300).contains(&status) => {
            harness::openapi::record_seen(&operation, status)
        }
        Ok(_) => {}
        Err(e) => panic!("the response does not match the OpenAPI document: {e}"),
    }
}

/// `GET path`.
pub async fn get(path: &str) -> Reply {
    send(Method::GET, path, &[], None).await
}

// ---------------------------------------------------------------------------
// Authentication helpers (accounts, tokens, API keys, crafted JWTs).
// ---------------------------------------------------------------------------

/// A valid password for accounts the tests create (letters and digits).
pub const PASSWORD: &str = "correct-horse-42";

/// How a request authenticates.
#[derive(Clone, Copy, Debug)]
pub enum Auth<'a> {
    /// No credentials.
    None,
    /// `Authorization: Bearer <token>` (an access JWT or an API key).
    Bearer(&'a str),
    /// `X-API-Key: <key>`.
    ApiKey(&'a str),
    /// A raw `Authorization` header value, e.g. `Basic …`.
    Authorization(&'a str),
}

/// Sends `method path` with these credentials and, when given, a JSON body
/// (with `Content-Type: application/json`).
pub async fn call(method: Method, path: &str, auth: Auth<'_>, body: Option<&Value>) -> Reply {
    let mut headers: Vec<(&str, String)> = Vec::new();
    match auth {
        Auth::None => {}
        Auth::Bearer(token) => headers.push(("Authorization", format!("Bearer {token}"))),
        Auth::ApiKey(key) => headers.push(("X-API-Key", key.to_string())),
        Auth::Authorization(value) => headers.push(("Authorization", value.to_string())),
    }
    if body.is_some() {
        headers.push(("Content-Type", "application/json".to_string()));
    }
    let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    send(method, path, &refs, body.map(Value::to_string)).await
}

/// `POST path` with a JSON body, optionally with `Authorization: Bearer <auth>`.
pub async fn post_json(path: &str, body: &Value, auth: Option<&str>) -> Reply {
    let auth = auth.map_or(Auth::None, Auth::Bearer);
    call(Method::POST, path, auth, Some(body)).await
}

/// `POST path` with a raw body and the given `Content-Type` (none when `None`).
pub async fn post_raw(path: &str, content_type: Option<&str>, body: String) -> Reply {
    let headers: Vec<(&str, &str)> = content_type
        .map(|ct| vec![("Content-Type", ct)])
        .unwrap_or_default();
    send(Method::POST, path, &headers, Some(body)).await
}

/// `GET path` with these credentials.
pub async fn get_as(path: &str, auth: Auth<'_>) -> Reply {
    call(Method::GET, path, auth, None).await
}

/// `DELETE path` with these credentials.
pub async fn delete_as(path: &str, auth: Auth<'_>) -> Reply {
    call(Method::DELETE, path, auth, None).await
}

/// `GET /api/v1/auth/me` with these credentials.
pub async fn me(auth: Auth<'_>) -> Reply {
    get_as("/api/v1/auth/me", auth).await
}

/// Hex text of `bytes` fresh-looking bytes, unique within this run.
pub fn random_hex(bytes: usize) -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut out = String::new();
    while out.len() < bytes * 2 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let digest = Sha256::new()
            .chain_update(nanos.to_le_bytes())
            .chain_update(n.to_le_bytes())
            .chain_update(std::process::id().to_le_bytes())
            .finalize();
        for b in digest {
            out.push_str(&format!("{b:02x}"));
        }
    }
    out.truncate(bytes * 2);
    out
}

/// A random version-4 UUID (lower-case hyphenated text).
pub fn random_uuid() -> String {
    let h = random_hex(16);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// An e-mail no other test uses: `prefix-<nanos>-<counter>@example.com`.
pub fn unique_email(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{}-{nanos}-{n}-{}@example.com",
        prefix.to_lowercase(),
        std::process::id()
    )
}

/// Whether `s` is a hyphenated UUID.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Whether `s` looks like an RFC 3339 UTC time (`YYYY-MM-DDTHH:MM:SS…Z|+00:00`).
pub fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b't')
        && b[13] == b':'
        && b[16] == b':'
        && (s.ends_with('Z') || s.ends_with('z') || s.ends_with("+00:00"))
}

/// Asserts `{id, email, created_at}` of a user (no password material).
pub fn assert_user(user: &Value, email: &str) {
    assert!(
        is_uuid(user["id"].as_str().unwrap_or_default()),
        "user.id: {user}"
    );
    assert_eq!(user["email"], email, "user: {user}");
    assert!(
        is_rfc3339_utc(user["created_at"].as_str().unwrap_or_default()),
        "user.created_at: {user}"
    );
    let obj = user.as_object().expect("user is an object");
    for k in obj.keys() {
        assert!(!k.contains("password"), "user carries {k}: {user}");
        assert!(!k.contains("hash"), "user carries {k}: {user}");
    }
}

/// Asserts a token pair response (register, login, refresh) for `email`.
pub fn assert_token_pair(r: &Reply, email: &str) {
    let j = &r.json;
    assert_eq!(j["token_type"], "bearer", "{}", r.text);
    assert_eq!(j["expires_in"], 1800, "{}", r.text);
    let access = j["access_token"].as_str().unwrap_or_default();
    assert_eq!(
        access.split('.').count(),
        3,
        "access token is a JWT: {access}"
    );
    let refresh = j["refresh_token"].as_str().unwrap_or_default();
    assert!(refresh.starts_with("crt_"), "refresh token: {refresh}");
    assert!(refresh.len() > 20, "refresh token too short: {refresh}");
    assert_user(&j["user"], email);
    assert!(
        !r.text.contains(PASSWORD),
        "the password is echoed: {}",
        r.text
    );
}

/// The `field`s of `error.details`, asserting each entry has a message.
pub fn detail_fields(r: &Reply) -> Vec<String> {
    let details = r.json["error"]["details"]
        .as_array()
        .unwrap_or_else(|| panic!("error.details is a list: {}", r.text));
    details
        .iter()
        .map(|d| {
            assert!(
                d["message"].as_str().is_some_and(|m| !m.is_empty()),
                "detail without message: {}",
                r.text
            );
            d["field"]
                .as_str()
                .unwrap_or_else(|| panic!("detail without field: {}", r.text))
                .to_string()
        })
        .collect()
}

/// Asserts a 422 `invalid_request_error` whose details name exactly `fields`
/// (in any order, each at least once).
pub fn assert_invalid_fields(r: &Reply, fields: &[&str]) {
    r.assert_error(422, "invalid_request_error");
    let mut got = detail_fields(r);
    got.sort();
    got.dedup();
    let mut want: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
    want.sort();
    assert_eq!(got, want, "details: {}", r.text);
}

mod accounts;
mod conversations;
mod db;
mod fallback;
mod jwt;
mod object_storage;
mod sse;
mod standin;
mod watch;

pub use accounts::*;
pub use conversations::*;
pub use db::*;
pub use fallback::*;
pub use jwt::*;
pub use object_storage::*;
pub use sse::*;
pub use standin::*;
pub use watch::*;

/// Waits (briefly) until the worker's log (`E2E_WORKER_LOG`) has a line
/// with all of `words`; returns that line.
pub async fn logged(words: &[&str]) -> String {
    let path = std::env::var("E2E_WORKER_LOG").expect("E2E_WORKER_LOG is set");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(&path).unwrap_or_default();
        if let Some(line) = log.lines().find(|l| words.iter().all(|w| l.contains(w))) {
            return line.to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log line with {words:?} in {path}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
