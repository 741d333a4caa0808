//! Groq failing and Gemini stepping in: the scripts and the checks shared
//! by the fallback tests and the provider faults.

use std::time::Duration;

use serde_json::{json, Value};

use super::{
    assert_cost, cost, marker, messages_of, providers_called, requests, script, send_ok,
    stored_answer, stream_message, user_with_conversation, Session, FALLBACK_MODEL,
};

/// The answer Gemini gives when it steps in.
pub const GEMINI_ANSWER: &str = "Gemini stepped in for Groq.";

/// A user, a conversation made with `conversation` (on the default model),
/// a marker, and scripts: Groq gets `groq_reply`, Gemini answers
/// [`GEMINI_ANSWER`] with known usage.
pub async fn fallback_setup(conversation: &Value, groq_reply: Value) -> (Session, String, String) {
    let (s, id) = user_with_conversation(conversation).await;
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

/// Asserts an assistant message answered by the fallback model, and its price.
pub fn assert_gemini_answer(m: &Value) {
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
pub async fn assert_groq_then_gemini(mk: &str, groq_model: &str, groq_status: Option<u16>) {
    let seen = requests(mk).await;
    assert_eq!(providers_called(mk).await, ["groq", "gemini"], "{seen:?}");
    assert_eq!(seen[0]["model"], groq_model, "{}", seen[0]);
    assert_eq!(seen[0]["status"], json!(groq_status), "{}", seen[0]);
    assert_eq!(seen[1]["model"], FALLBACK_MODEL, "{}", seen[1]);
    assert_eq!(seen[1]["status"], 200, "{}", seen[1]);
}

/// Sends (non-stream) and checks Gemini's answer, returned and stored
/// once; returns it.
pub async fn send_expecting_fallback(s: &Session, id: &str, mk: &str) -> Value {
    let r = send_ok(&s.access, id, &json!({"content": format!("Hi {mk}")})).await;
    let a = r["assistant_message"].clone();
    assert_gemini_answer(&a);
    let all = messages_of(&s.access, id).await;
    assert_eq!(all.len(), 2, "stored once: {all:?}");
    assert_eq!(all[1], a);
    a
}

/// Streams and checks Gemini's answer, streamed and stored; returns the
/// stored answer.
pub async fn stream_expecting_fallback(s: &Session, id: &str, mk: &str) -> Value {
    let r = stream_message(&s.access, id, &json!({"content": format!("Hi {mk}")})).await;
    r.assert_complete();
    assert_eq!(r.start_message()["model"], FALLBACK_MODEL, "{}", r.dump());
    assert_eq!(r.text(), GEMINI_ANSWER, "{}", r.dump());
    let stored = stored_answer(&s.access, id, Duration::from_secs(5)).await;
    assert_eq!(stored["id"], r.start_message()["id"], "{stored}");
    assert_gemini_answer(&stored);
    stored
}
