//! Fallback between providers: Groq failing before its first token (429,
//! 498, 5xx, a retired model's 404; no headers within the first-token
//! timeout and a connection dropped before any token are in `faults::`)
//! makes Gemini answer, on both send routes; a failing Gemini primary falls back to Groq; both
//! failing is `overloaded_error` with the user message kept. Runs in the
//! PostgreSQL phase against the provider stand-in (`FIRST_TOKEN_TIMEOUT_MS`
//! is 2000 there).

use std::time::Duration;

use serde_json::json;

use crate::support::{
    assert_groq_then_gemini, db, fallback_setup, marker, messages_of, providers_called, requests,
    script, send_expecting_fallback, send_message, send_ok, stream_expecting_fallback,
    stream_message, user_with_conversation, wait_for_messages, Auth, DEFAULT_MODEL, FALLBACK_MODEL,
};

#[tokio::test]
async fn groq_rate_limited_falls_back_to_gemini() {
    let (s, id, mk) = fallback_setup(&json!({}), json!({"status": 429, "retry_after": 7})).await;
    send_expecting_fallback(&s, &id, &mk).await;
    assert_groq_then_gemini(&mk, DEFAULT_MODEL, Some(429)).await;
}

#[tokio::test]
async fn groq_rate_limited_falls_back_to_gemini_in_the_stream() {
    let (s, id, mk) = fallback_setup(&json!({}), json!({"status": 429, "retry_after": 7})).await;
    stream_expecting_fallback(&s, &id, &mk).await;
    assert_groq_then_gemini(&mk, DEFAULT_MODEL, Some(429)).await;
}

#[tokio::test]
async fn groq_capacity_exceeded_498_falls_back_to_gemini() {
    let (s, id, mk) = fallback_setup(&json!({}), json!({"status": 498})).await;
    send_expecting_fallback(&s, &id, &mk).await;
    assert_groq_then_gemini(&mk, DEFAULT_MODEL, Some(498)).await;
}

#[tokio::test]
async fn groq_500_falls_back_to_gemini() {
    let (s, id, mk) = fallback_setup(&json!({}), json!({"status": 500})).await;
    send_expecting_fallback(&s, &id, &mk).await;
    assert_groq_then_gemini(&mk, DEFAULT_MODEL, Some(500)).await;
}

#[tokio::test]
async fn groq_503_falls_back_to_gemini_in_the_stream() {
    let (s, id, mk) = fallback_setup(&json!({}), json!({"status": 503})).await;
    stream_expecting_fallback(&s, &id, &mk).await;
    assert_groq_then_gemini(&mk, DEFAULT_MODEL, Some(503)).await;
}

#[tokio::test]
async fn a_retired_groq_model_falls_back_to_gemini() {
    // The stand-in answers 404 model_not_found for retired ids by itself.
    let (s, id, mk) = fallback_setup(&json!({}), json!({"text": "never sent"})).await;
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
