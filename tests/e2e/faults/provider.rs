//! The model provider failing: the connection dropped mid-answer (no
//! fallback once text reached the client: the partial answer is kept) or
//! before the first byte, and no bytes at all past the first-token timeout
//! (`FIRST_TOKEN_TIMEOUT_MS` is 2000 in the test worker): both fall back to
//! the other provider, on both send routes.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{assert_one_paid_answer, ledger_settled, shared, Entry};
use crate::support::{
    assert_groq_then_gemini, fallback_setup, marker, requests, script, send_expecting_fallback,
    stored_answer, stream_expecting_fallback, stream_message, user_with_conversation,
    DEFAULT_MODEL,
};

/// How long storing a streamed answer may take after the stream ends.
const STORE_WITHIN: Duration = Duration::from_secs(5);

/// Asserts the ledger of a fallback: Groq's failed attempt (no tokens,
/// an error naming `why`), then Gemini's answer.
fn assert_fallback_ledger(rows: &[Entry], answer: &Value, why: &str) {
    assert_eq!(rows.len(), 2, "{rows:?}");
    let failed = &rows[0];
    assert_eq!(
        (failed.provider.as_str(), failed.model.as_str()),
        ("groq", DEFAULT_MODEL)
    );
    assert!(!failed.success, "{failed:?}");
    assert_eq!(
        (failed.input_tokens, failed.output_tokens),
        (0, 0),
        "{failed:?}"
    );
    assert_eq!(failed.message_id, None, "{failed:?}");
    assert!(
        failed.error.as_deref().is_some_and(|e| e.contains(why)),
        "the failure says {why:?}: {failed:?}"
    );
    assert_one_paid_answer(&rows[1..], answer);
}

/// Streams, then sends: both fall back to Gemini. Checks what the client
/// saw, what is stored (once) and the ledger, per route; `groq_status` is
/// the status the stand-in answered Groq's request with.
async fn assert_falls_back(groq_reply: Value, groq_status: Option<u16>, why: &str) {
    let titled = json!({"title": "faults"});
    // The streaming route.
    let (s, id, mk) = fallback_setup(&titled, groq_reply.clone()).await;
    let stored = stream_expecting_fallback(&s, &id, &mk).await;
    assert_fallback_ledger(&ledger_settled(&id, 2, STORE_WITHIN).await, &stored, why);
    assert_groq_then_gemini(&mk, DEFAULT_MODEL, groq_status).await;

    // The non-streaming route.
    let (s, id, mk) = fallback_setup(&titled, groq_reply).await;
    let started = Instant::now();
    let answer = send_expecting_fallback(&s, &id, &mk).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(12), "the fallback took {took:?}");
    assert_fallback_ledger(&ledger_settled(&id, 2, STORE_WITHIN).await, &answer, why);
    assert_groq_then_gemini(&mk, DEFAULT_MODEL, groq_status).await;
}

#[tokio::test]
async fn a_drop_mid_answer_keeps_the_partial_answer_and_says_so() {
    let _gate = shared().await;
    let (s, id) = user_with_conversation(&json!({"title": "faults"})).await;
    let mk = marker();
    script(
        &mk,
        Some("groq"),
        json!({
            "chunks": ["One", " two", " three", " four", " five", " six"],
            "chunk_delay_ms": 100,
            "drop_after_chunks": 3,
        }),
        1,
    )
    .await;
    let r = stream_message(&s.access, &id, &json!({"content": format!("Drop {mk}")})).await;
    r.assert_ends_with_error(Some("api_error"));
    assert_eq!(r.start_message()["model"], DEFAULT_MODEL);
    assert_eq!(r.text(), "One two three", "{}", r.dump());

    let stored = stored_answer(&s.access, &id, STORE_WITHIN).await;
    assert_eq!(stored["id"], r.start_message()["id"], "{stored}");
    assert_eq!(stored["status"], "incomplete", "{stored}");
    assert_eq!(stored["content"], "One two three", "{stored}");
    assert_eq!(stored["provider"], "groq", "{stored}");
    // The provider reports usage only at the end: none came, so the
    // stored answer has no counts and its ledger row no tokens.
    assert_eq!(stored["output_tokens"], Value::Null, "{stored}");
    let rows = ledger_settled(&id, 1, STORE_WITHIN).await;
    assert_one_paid_answer(&rows, &stored);
    assert_eq!((rows[0].input_tokens, rows[0].output_tokens), (0, 0));

    // No fallback once text has gone to the client.
    let seen = requests(&mk).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["provider"], "groq");
}

#[tokio::test]
async fn a_drop_before_the_first_byte_falls_back() {
    let _gate = shared().await;
    let drop_at_once = json!({"text": "lost words", "drop_after_chunks": 0});
    assert_falls_back(drop_at_once, Some(200), "stream failed").await;
}

#[tokio::test]
async fn no_bytes_past_the_first_token_timeout_falls_back() {
    let _gate = shared().await;
    let silent = json!({ "stall_before_headers": true });
    assert_falls_back(silent, None, "timed out").await;
}
