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

    /// Asserts the headers every response carries.
    pub fn assert_common_headers(&self) {
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
}

/// Sends a request to the worker; `headers` are added as given.
pub async fn send(
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Reply {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    let client = CLIENT.get_or_init(reqwest::Client::new);
    let mut req = client.request(method, format!("{}{}", stack().base_url, path));
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
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        json,
        text,
    }
}

/// `GET path`.
pub async fn get(path: &str) -> Reply {
    send(Method::GET, path, &[], None).await
}
