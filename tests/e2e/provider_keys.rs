//! The provider keys (`GROQ_API_KEY`, `GOOGLE_AI_API_KEY`) live only in
//! the worker: each travels to its own provider in a header (never in a
//! URL), and no response, streamed or not, carries a key or the
//! provider's own error text, even when the provider echoes the key back.
//! Runs in the PostgreSQL and HTTP phases, whose workers have the keys
//! `test-groq-key` and `test-gemini-key` and the provider stand-in.

use serde_json::{json, Value};

use crate::support::{
    marker, requests, script, send_message, stream_message, user_with_conversation, Auth, Reply,
};

const GROQ_KEY: &str = "test-groq-key";
const GEMINI_KEY: &str = "test-gemini-key";

/// A provider's 401 that repeats the key it was sent, as some do.
fn key_refused(key: &str) -> Value {
    json!({"status": 401, "error_body": {"error": {
        "message": format!("Invalid API Key {key} UPSTREAM-WORDS"),
        "type": "invalid_request_error", "code": "invalid_api_key"}}})
}

/// Asserts a response (status line aside) names no key and no upstream text.
fn assert_no_secret(what: &str, r: &Reply) {
    let headers = format!("{:?}", r.headers);
    for secret in [GROQ_KEY, GEMINI_KEY, "UPSTREAM-WORDS"] {
        assert!(
            !r.text.contains(secret),
            "{what}: body has {secret}: {}",
            r.text
        );
        assert!(!headers.contains(secret), "{what}: headers have {secret}");
    }
}

#[tokio::test]
async fn each_key_goes_only_to_its_provider_in_a_header() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(&mk, Some("groq"), json!({"status": 503}), 1).await;
    script(&mk, Some("gemini"), json!({"text": "Gemini here."}), 1).await;
    let body = json!({"content": format!("Who holds the keys? {mk}")});
    let r = send_message(Auth::Bearer(&s.access), &id, &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_no_secret("send", &r);
    let seen = requests(&mk).await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    let (groq, gemini) = (&seen[0], &seen[1]);
    assert_eq!(groq["provider"], "groq", "{groq}");
    assert_eq!(
        groq["headers"]["authorization"],
        format!("Bearer {GROQ_KEY}")
    );
    assert!(groq["headers"].get("x-goog-api-key").is_none(), "{groq}");
    assert_eq!(gemini["provider"], "gemini", "{gemini}");
    assert_eq!(gemini["headers"]["x-goog-api-key"], GEMINI_KEY);
    assert!(gemini["headers"].get("authorization").is_none(), "{gemini}");
    for r in [groq, gemini] {
        let path = r["path"].as_str().unwrap_or_default();
        assert!(!path.contains("key"), "a key in the URL: {path}");
        assert!(
            !r["body"].to_string().contains("-key"),
            "a key in the body: {r}"
        );
    }
}

#[tokio::test]
async fn a_refused_key_is_an_overloaded_error_naming_neither_key_nor_provider_text() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(&mk, Some("groq"), key_refused(GROQ_KEY), 2).await;
    script(&mk, Some("gemini"), key_refused(GEMINI_KEY), 2).await;
    let body = json!({"content": format!("Let me through {mk}")});
    let r = send_message(Auth::Bearer(&s.access), &id, &body).await;
    r.assert_error(502, "overloaded_error");
    assert_no_secret("send", &r);
    let streamed = stream_message(&s.access, &id, &body).await;
    streamed.assert_ends_with_error(Some("overloaded_error"));
    for secret in [GROQ_KEY, GEMINI_KEY, "UPSTREAM-WORDS"] {
        assert!(!streamed.raw.contains(secret), "{}", streamed.raw);
    }
    let seen = requests(&mk).await;
    assert_eq!(seen.len(), 4, "both providers, both routes: {seen:?}");
    assert!(seen.iter().all(|r| r["status"] == 401), "{seen:?}");
}
