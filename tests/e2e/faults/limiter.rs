//! The rate limiter failing: a second worker of the `faults` phase
//! (`E2E_LIMITER_DOWN_URL`, same database and secret) has its
//! `RATE_LIMITER` binding pointed at another Durable Object class, which
//! answers every call of the limiter with an error. As documented:
//! ordinary requests are let through (fail open); sends and logins are
//! refused with 503 `overloaded_error` (fail closed), and a refused send
//! stores nothing, calls no model and costs nothing.

use reqwest::Method;
use serde_json::{json, Value};

use super::{ledger, shared};
use crate::support::{
    db_message_count, id_of, marker, messages_path, requests, send_to, stream_path, unique_email,
    Reply, PASSWORD,
};

/// The worker whose limiter fails.
fn limiter_down() -> String {
    std::env::var("E2E_LIMITER_DOWN_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .expect("E2E_LIMITER_DOWN_URL: set by the faults phase")
}

/// `method path` on that worker, with a bearer token and a JSON body when given.
async fn call(method: Method, path: &str, bearer: Option<&str>, body: Option<&Value>) -> Reply {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    send_to(
        &limiter_down(),
        method,
        path,
        &headers,
        body.map(Value::to_string),
    )
    .await
}

#[tokio::test]
async fn a_failing_limiter_lets_ordinary_requests_through_and_refuses_sends_and_logins() {
    let _gate = shared().await;
    // Registering counts per IP: let through.
    let email = unique_email("limiter-down");
    let credentials = json!({"email": email, "password": PASSWORD});
    let r = call(
        Method::POST,
        "/api/v1/auth/register",
        None,
        Some(&credentials),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let access = r.json["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // Logging in counts per account too: refused.
    let r = call(Method::POST, "/api/v1/auth/login", None, Some(&credentials)).await;
    r.assert_error(503, "overloaded_error");
    assert!(r.text.contains("rate limiter"), "{}", r.text);

    // Ordinary authenticated requests: let through.
    let r = call(
        Method::POST,
        "/api/v1/conversations",
        Some(&access),
        Some(&json!({"title": "faults"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = id_of(&r.json);
    let r = call(Method::GET, "/api/v1/conversations", Some(&access), None).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Sends, on both routes: refused before anything is stored or spent.
    let mk = marker();
    let body = json!({ "content": format!("Costly {mk}") });
    for path in [messages_path(&id), stream_path(&id)] {
        let r = call(Method::POST, &path, Some(&access), Some(&body)).await;
        r.assert_error(503, "overloaded_error");
        assert!(r.text.contains("rate limiter"), "{path}: {}", r.text);
    }
    assert_eq!(db_message_count(&id).await, 0, "nothing stored");
    assert_eq!(ledger(&id).await, [], "nothing recorded");
    assert_eq!(requests(&mk).await, Vec::<Value>::new(), "no model call");
}
