//! `thinking: true`: the model's reasoning is asked for upstream, streamed
//! as a `thinking` block (index 0) before the text block (index 1), and
//! stored in the message's `thinking`; `thinking: false` has none. Runs in
//! the PostgreSQL phase against the provider stand-in.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{
    marker, requests, script, send_ok, stored_answer, stream_message, user_with_conversation,
    SseReply, FALLBACK_MODEL,
};

const THINKING: &str = "The user asks a question. Let me think it through step by step.";
const ANSWER: &str = "After some thought: forty-two.";

/// Asserts a thinking block at index 0 followed by a text block at index 1.
fn assert_thinking_then_text(r: &SseReply) {
    r.assert_complete();
    let starts = r.of("content_block_start");
    assert_eq!(starts.len(), 2, "{}", r.dump());
    assert_eq!(starts[0].data["index"], 0, "{}", r.dump());
    assert_eq!(
        starts[0].data["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""}),
        "{}",
        r.dump()
    );
    assert_eq!(starts[1].data["index"], 1, "{}", r.dump());
    assert_eq!(
        starts[1].data["content_block"],
        json!({"type": "text", "text": ""}),
        "{}",
        r.dump()
    );
    // The thinking block is signed (empty signature) once, after its text.
    let signatures: Vec<&Value> = r
        .of("content_block_delta")
        .into_iter()
        .filter(|e| e.data["delta"]["type"] == "signature_delta")
        .map(|e| &e.data)
        .collect();
    assert_eq!(
        signatures,
        [&json!({"type": "content_block_delta", "index": 0,
                 "delta": {"type": "signature_delta", "signature": ""}})],
        "{}",
        r.dump()
    );
    // Every reasoning delta (index 0) comes before every text delta (index 1).
    let deltas: Vec<_> = r
        .of("content_block_delta")
        .into_iter()
        .filter(|e| e.data["delta"]["type"] != "signature_delta")
        .collect();
    let kinds: Vec<(&Value, &Value)> = deltas
        .iter()
        .map(|e| (&e.data["index"], &e.data["delta"]["type"]))
        .collect();
    let split = kinds
        .iter()
        .position(|(_, t)| *t == "text_delta")
        .unwrap_or_else(|| panic!("no text delta{}", r.dump()));
    assert!(split > 0, "no thinking delta before the text{}", r.dump());
    for (i, (index, kind)) in kinds.iter().enumerate() {
        let want = if i < split {
            (json!(0), json!("thinking_delta"))
        } else {
            (json!(1), json!("text_delta"))
        };
        assert_eq!(
            (*index, *kind),
            (&want.0, &want.1),
            "delta #{i}{}",
            r.dump()
        );
    }
    assert_eq!(r.thinking(), THINKING, "{}", r.dump());
    assert_eq!(r.text(), ANSWER, "{}", r.dump());
}

#[tokio::test]
async fn groq_reasoning_streams_as_a_thinking_block_before_the_text() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(
        &mk,
        Some("groq"),
        json!({"thinking": THINKING, "text": ANSWER}),
        1,
    )
    .await;
    let r = stream_message(
        &s.access,
        &id,
        &json!({"content": format!("Think {mk}"), "thinking": true}),
    )
    .await;
    assert_thinking_then_text(&r);
    let stored = stored_answer(&s.access, &id, Duration::from_secs(5)).await;
    assert_eq!(stored["thinking"], THINKING, "{stored}");
    assert_eq!(stored["content"], ANSWER, "{stored}");
    assert_eq!(stored["provider"], "groq", "{stored}");
    let seen = requests(&mk).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0]["body"]["include_reasoning"], true,
        "{}",
        seen[0]["body"]
    );
}

#[tokio::test]
async fn gemini_thoughts_stream_as_a_thinking_block_before_the_text() {
    let (s, id) = user_with_conversation(&json!({ "model": FALLBACK_MODEL })).await;
    let mk = marker();
    script(
        &mk,
        Some("gemini"),
        json!({"thinking": THINKING, "text": ANSWER}),
        1,
    )
    .await;
    let r = stream_message(
        &s.access,
        &id,
        &json!({"content": format!("Think {mk}"), "thinking": true}),
    )
    .await;
    assert_thinking_then_text(&r);
    assert_eq!(r.start_message()["model"], FALLBACK_MODEL);
    let stored = stored_answer(&s.access, &id, Duration::from_secs(5)).await;
    assert_eq!(stored["thinking"], THINKING, "{stored}");
    assert_eq!(stored["content"], ANSWER, "{stored}");
    assert_eq!(stored["provider"], "gemini", "{stored}");
    let seen = requests(&mk).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["provider"], "gemini");
    let config = &seen[0]["body"]["generationConfig"];
    assert_eq!(
        config["thinkingConfig"]["includeThoughts"], true,
        "{}",
        seen[0]["body"]
    );
}

#[tokio::test]
async fn without_thinking_there_is_no_thinking_block_and_thinking_is_null() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(&mk, Some("groq"), json!({ "text": ANSWER }), 1).await;
    let r = stream_message(
        &s.access,
        &id,
        &json!({"content": format!("Quick {mk}"), "thinking": false}),
    )
    .await;
    r.assert_complete();
    let starts = r.of("content_block_start");
    assert_eq!(starts.len(), 1, "{}", r.dump());
    assert_eq!(starts[0].data["content_block"]["type"], "text");
    assert_eq!(starts[0].data["index"], 0);
    assert!(r.thinking_deltas().is_empty(), "{}", r.dump());
    assert_eq!(r.text(), ANSWER);
    let stored = stored_answer(&s.access, &id, Duration::from_secs(5)).await;
    assert_eq!(stored["thinking"], Value::Null, "{stored}");
    let seen = requests(&mk).await;
    assert_ne!(
        seen[0]["body"]["include_reasoning"], true,
        "{}",
        seen[0]["body"]
    );
}

#[tokio::test]
async fn a_non_stream_send_returns_and_stores_the_thinking() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(
        &mk,
        Some("groq"),
        json!({"thinking": THINKING, "text": ANSWER}),
        1,
    )
    .await;
    let r = send_ok(
        &s.access,
        &id,
        &json!({"content": format!("Think {mk}"), "thinking": true}),
    )
    .await;
    let a = &r["assistant_message"];
    assert_eq!(a["thinking"], THINKING, "{a}");
    assert_eq!(a["content"], ANSWER, "{a}");
    let stored = stored_answer(&s.access, &id, Duration::from_secs(1)).await;
    assert_eq!(&stored, a);
}

#[tokio::test]
async fn gemini_without_thinking_does_not_ask_for_thoughts() {
    let (s, id) = user_with_conversation(&json!({ "model": FALLBACK_MODEL })).await;
    let mk = marker();
    let r = send_ok(&s.access, &id, &json!({"content": format!("Quick {mk}")})).await;
    let a = &r["assistant_message"];
    assert_eq!(a["provider"], "gemini", "{a}");
    assert_eq!(a["thinking"], Value::Null, "{a}");
    assert!(a["content"].as_str().is_some_and(|c| !c.is_empty()), "{a}");
    let seen = requests(&mk).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let config = &seen[0]["body"]["generationConfig"];
    assert_ne!(
        config["thinkingConfig"]["includeThoughts"], true,
        "{}",
        seen[0]["body"]
    );
}
