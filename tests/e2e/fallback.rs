//! Fallback between providers: Groq failing before its first token (429,
//! 498, 5xx, a retired model's 404; no headers within the first-token
//! timeout and a connection dropped before any token are in `faults::`)
//! makes Gemini answer, on both send routes; a failing Gemini primary falls back to Groq; both
//! failing is `overloaded_error` with the user message kept. Runs in the
//! PostgreSQL phase against the provider stand-in (`FIRST_TOKEN_TIMEOUT_MS`
//! is 2000 there).

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{
    assert_cost, cost, db, marker, messages_of, providers_called, requests, script, send_message,
    send_ok, stored_answer, stream_message, user_with_conversation, wait_for_messages, Auth,
    Session, DEFAULT_MODEL, FALLBACK_MODEL,
};

/// The answer Gemini gives in these tests.
const GEMINI_ANSWER: &str = "Gemini stepped in for Groq.";

/// A user, a conversation on the default model, a marker, and scripts:
/// Groq gets `groq_reply`, Gemini answers [`GEMINI_ANSWER`] with known usage.
async fn setup(groq_reply: Value) -> (Session, String, String) {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(&mk, Some("groq"), groq_reply, 1).await;
    script(
        &mk,
        Some("gemini"),
        json!({"text": GEMINI_ANSWER, "usage": {"input_tokens": 200, "output_tokens": 50}}),
        1,
    )
    .await;
    (s, id, mk)
}

/// Asserts an assistant message answered by the fallback model.
fn assert_gemini_answer(m: &Value) {
    assert_eq!(m["content"], GEMINI_ANSWER, "{m}");
    assert_eq!(m["provider"], "gemini", "{m}");
    assert_eq!(m["model"], FALLBACK_MODEL, "{m}");
    assert_eq!(m["status"], "complete", "{m}");
    assert_eq!(m["input_tokens"], 200, "{m}");
    assert_eq!(m["output_tokens"], 50, "{m}");
    assert_cost(m, cost(200, 50, 0.10, 0.40));
}

/// Asserts the stand-in saw one Groq request (answered with `groq_status`,
/// `None` when it never answered) and then one Gemini request.
async fn assert_groq_then_gemini(mk: &str, groq_model: &str, groq_status: Option<u16>) {
    let seen = requests(mk).await;
    assert_eq!(providers_called(mk).await, ["groq", "gemini"], "{seen:?}");
    assert_eq!(seen[0]["model"], groq_model, "{}", seen[0]);
    assert_eq!(seen[0]["status"], json!(groq_status), "{}", seen[0]);
    assert_eq!(seen[1]["model"], FALLBACK_MODEL, "{}", seen[1]);
    assert_eq!(seen[1]["status"], 200, "{}", seen[1]);
}

/// Sends (non-stream) and checks Gemini's answer, returned and stored.
async fn send_expecting_fallback(s: &Session, id: &str, mk: &str) {
    let r = send_ok(&s.access, id, &json!({"content": format!("Hi {mk}")})).await;
    let a = &r["assistant_message"];
    assert_gemini_answer(a);
    let all = messages_of(&s.access, id).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(&all[1], a);
}

/// Streams and checks Gemini's answer, streamed and stored.
async fn stream_expecting_fallback(s: &Session, id: &str, mk: &str) {
    let r = stream_message(&s.access, id, &json!({"content": format!("Hi {mk}")})).await;
    r.assert_complete();
    assert_eq!(r.start_message()["model"], FALLBACK_MODEL, "{}", r.dump());
    assert_eq!(r.text(), GEMINI_ANSWER, "{}", r.dump());
    let stored = stored_answer(&s.access, id, Duration::from_secs(5)).await;
    assert_eq!(stored["id"], r.start_message()["id"], "{stored}");
    assert_gemini_answer(&stored);
}

#[tokio::test]
async fn groq_rate_limited_falls_back_to_gemini() {
    let (s, id, mk) = setup(json!({"status": 429, "retry_after": 7})).await;
    send_expecting_fallback(&s, &id, &mk).await;
    assert_groq_then_gemini(&mk, DEFAULT_MODEL, Some(429)).await;
}

#[tokio::test]
async fn groq_rate_limited_falls_back_to_gemini_in_the_stream() {
    let (s, id, mk) = setup(json!({"status": 429, "retry_after": 7})).await;
    stream_expecting_fallback(&s, &id, &mk).await;
    assert_groq_then_gemini(&mk, DEFAULT_MODEL, Some(429)).await;
}

#[tokio::test]
async fn groq_capacity_exceeded_498_falls_back_to_gemini() {
    let (s, id, mk) = setup(json!({"status": 498})).await;
    send_expecting_fallback(&s, &id, &mk).await;
    assert_groq_then_gemini(&mk, DEFAULT_MODEL, Some(498)).await;
}

#[tokio::test]
async fn groq_500_falls_back_to_gemini() {
    let (s, id, mk) = setup(json!({"status": 500})).await;
    send_expecting_fallback(&s, &id, &mk).await;
    assert_groq_then_gemini(&mk, DEFAULT_MODEL, Some(500)).await;
}

#[tokio::test]
async fn groq_503_falls_back_to_gemini_in_the_stream() {
    let (s, id, mk) = setup(json!({"status": 503})).await;
    stream_expecting_fallback(&s, &id, &mk).await;
    assert_groq_then_gemini(&mk, DEFAULT_MODEL, Some(503)).await;
}

#[tokio::test]
async fn a_retired_groq_model_falls_back_to_gemini() {
    // The stand-in answers 404 model_not_found for retired ids by itself.
    let (s, id, mk) = setup(json!({"text": "never sent"})).await;
    let retired = "llama-3.1-8b-instant";
    db().await
        .execute(
            "UPDATE app.conversations SET model = $2 WHERE id = $1::text::uuid",
            &[&id, &retired],
        )
        .await
        .expect("retire the conversation's model");
    send_expecting_fallback(&s, &id, &mk).await;
    assert_groq_then_gemini(&mk, retired, Some(404)).await;
}

#[tokio::test]
async fn a_failing_gemini_primary_falls_back_to_groq() {
    let (s, id) = user_with_conversation(&json!({ "model": FALLBACK_MODEL })).await;
    let mk = marker();
    script(&mk, Some("gemini"), json!({"status": 503}), 1).await;
    script(&mk, Some("groq"), json!({"text": "Groq stepped in."}), 1).await;
    let r = send_ok(&s.access, &id, &json!({"content": format!("Hi {mk}")})).await;
    let a = &r["assistant_message"];
    assert_eq!(a["content"], "Groq stepped in.", "{a}");
    assert_eq!(a["provider"], "groq", "{a}");
    assert_eq!(a["model"], DEFAULT_MODEL, "{a}");
    assert_eq!(providers_called(&mk).await, ["gemini", "groq"]);
}

/// Scripts both providers to fail with 500 for `mk`.
async fn both_fail(mk: &str) {
    script(mk, Some("groq"), json!({"status": 500}), 1).await;
    script(mk, Some("gemini"), json!({"status": 500}), 1).await;
}

#[tokio::test]
async fn every_provider_failing_is_502_and_keeps_the_user_message() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    both_fail(&mk).await;
    let content = format!("Anyone there? {mk}");
    let r = send_message(Auth::Bearer(&s.access), &id, &json!({ "content": content })).await;
    r.assert_error(502, "overloaded_error");
    assert!(
        !r.text.contains("Internal Server Error") && !r.text.contains("test-groq-key"),
        "upstream details leak: {}",
        r.text
    );
    let all = messages_of(&s.access, &id).await;
    assert_eq!(all.len(), 1, "only the user message is stored: {all:?}");
    assert_eq!(all[0]["role"], "user");
    assert_eq!(all[0]["content"], content.as_str());
    let seen = requests(&mk).await;
    assert_eq!(seen.len(), 2, "both providers were tried: {seen:?}");
}

#[tokio::test]
async fn every_provider_failing_in_the_stream_ends_with_overloaded_error() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    both_fail(&mk).await;
    let content = format!("Anyone there? {mk}");
    let r = stream_message(&s.access, &id, &json!({ "content": content })).await;
    r.assert_ends_with_error(Some("overloaded_error"));
    assert!(r.text_deltas().is_empty(), "{}", r.dump());
    // Give a (wrong) late answer time to be stored, then check.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all = wait_for_messages(&s.access, &id, 1, Duration::from_secs(5)).await;
    assert_eq!(all.len(), 1, "only the user message is stored: {all:?}");
    assert_eq!(all[0]["role"], "user");
    assert_eq!(all[0]["content"], content.as_str());
    assert_eq!(requests(&mk).await.len(), 2);
}
