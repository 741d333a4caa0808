//! A provider's 4xx that no fallback can fix (the prompt too long for the
//! model, an invalid argument) is the client's to act on: 400
//! `invalid_request_error` with a message of ours (never the provider's
//! text), on both send routes; the user message stays. Runs in the
//! PostgreSQL phase against the provider stand-in.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{
    marker, messages_of, providers_called, script, send_message, stream_message,
    user_with_conversation, wait_for_messages, Auth,
};

/// Groq's answer to a prompt over the model's context window.
fn groq_too_long() -> Value {
    json!({"status": 400, "error_body": {"error": {
        "message": "Please reduce the length of the messages or completion. SECRET-UPSTREAM-TEXT",
        "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}})
}

/// Groq refusing an argument (nothing about the model or the length).
fn groq_invalid() -> Value {
    json!({"status": 400, "error_body": {"error": {
        "message": "'temperature' must be at most 2 SECRET-UPSTREAM-TEXT",
        "type": "invalid_request_error"}}})
}

async fn assert_only_the_user_message(access: &str, id: &str, content: &str) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = wait_for_messages(access, id, 1, Duration::from_secs(5)).await;
    assert_eq!(all.len(), 1, "only the user message is stored: {all:?}");
    assert_eq!(all[0]["role"], "user");
    assert_eq!(all[0]["content"], content);
}

#[tokio::test]
async fn a_prompt_too_long_for_the_model_is_400_not_502() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(&mk, Some("groq"), groq_too_long(), 1).await;
    let content = format!("A very long question {mk}");
    let r = send_message(Auth::Bearer(&s.access), &id, &json!({ "content": content })).await;
    r.assert_error(400, "invalid_request_error");
    let message = r.json["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("too long"), "{}", r.text);
    assert!(!r.text.contains("SECRET-UPSTREAM-TEXT"), "{}", r.text);
    assert_eq!(
        providers_called(&mk).await,
        ["groq"],
        "no fallback for the request's own fault"
    );
    assert_only_the_user_message(&s.access, &id, &content).await;
}

#[tokio::test]
async fn an_invalid_request_refused_by_the_provider_is_400() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(&mk, Some("groq"), groq_invalid(), 1).await;
    let content = format!("Question {mk}");
    let r = send_message(Auth::Bearer(&s.access), &id, &json!({ "content": content })).await;
    r.assert_error(400, "invalid_request_error");
    assert!(!r.text.contains("SECRET-UPSTREAM-TEXT"), "{}", r.text);
    assert_ne!(
        r.json["error"]["message"],
        "every model provider failed; your message was saved, try again"
    );
    assert_only_the_user_message(&s.access, &id, &content).await;
}

#[tokio::test]
async fn a_too_long_prompt_after_a_fallback_is_400_too() {
    // Groq fails in a way another provider may cure; Gemini then finds
    // the prompt too long: the last word is the request's fault.
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(&mk, Some("groq"), json!({"status": 503}), 1).await;
    script(
        &mk,
        Some("gemini"),
        json!({"status": 400, "error_body": {"error": {"code": 400,
            "message": "The input token count (2000000) exceeds the maximum number of tokens allowed (1048576).",
            "status": "INVALID_ARGUMENT"}}}),
        1,
    )
    .await;
    let content = format!("Long one {mk}");
    let r = send_message(Auth::Bearer(&s.access), &id, &json!({ "content": content })).await;
    r.assert_error(400, "invalid_request_error");
    assert_eq!(providers_called(&mk).await, ["groq", "gemini"]);
    assert!(!r.text.contains("input token count"), "{}", r.text);
}

#[tokio::test]
async fn a_prompt_too_long_ends_the_stream_with_invalid_request_error() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(&mk, Some("groq"), groq_too_long(), 1).await;
    let content = format!("A very long question {mk}");
    let r = stream_message(&s.access, &id, &json!({ "content": content })).await;
    r.assert_ends_with_error(Some("invalid_request_error"));
    assert!(!r.raw.contains("SECRET-UPSTREAM-TEXT"), "{}", r.raw);
    assert!(r.raw.contains("too long"), "{}", r.raw);
    assert_eq!(providers_called(&mk).await, ["groq"]);
    assert_only_the_user_message(&s.access, &id, &content).await;
    assert_eq!(messages_of(&s.access, &id).await.len(), 1);
}
