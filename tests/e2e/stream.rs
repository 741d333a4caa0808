//! `POST /api/v1/conversations/{id}/messages/stream`: the Anthropic event
//! sequence, incremental delivery, keep-alive pings, the stop reasons, and
//! the end held until the answer is stored (the upstream or the client
//! going away mid-answer: `faults::`).
//! Runs in the PostgreSQL phase against the provider stand-in (the worker
//! has `FIRST_TOKEN_TIMEOUT_MS=2000`, `STREAM_PING_INTERVAL_MS=1000`).

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{
    assert_cost, cost, db, is_text_delta, is_uuid, marker, messages_of, requests, script,
    stored_answer, stream_message, stream_until, user_with_conversation, wait_for_messages,
    wait_for_requests, DEFAULT_MODEL, FALLBACK_MODEL,
};

/// How long storing a streamed answer may take after the stream ends.
const STORE_WITHIN: Duration = Duration::from_secs(5);

/// `n` words `w1 w2 …`.
fn words(n: usize) -> String {
    (1..=n)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn a_stream_is_the_anthropic_event_sequence_and_its_answer_is_stored() {
    let (s, id) = user_with_conversation(&json!({"title": "stream"})).await;
    let mk = marker();
    let answer = "Streaming works, one word at a time.";
    script(
        &mk,
        Some("groq"),
        json!({"text": answer, "usage": {"input_tokens": 321, "output_tokens": 45}}),
        1,
    )
    .await;
    let content = format!("Stream please {mk}");
    let r = stream_message(&s.access, &id, &json!({ "content": content })).await;
    let message_delta = r.assert_complete();

    let start = r.start_message();
    let answer_id = start["id"].as_str().unwrap_or_default().to_string();
    assert!(is_uuid(&answer_id), "message_start.message.id: {start}");
    assert_eq!(start["type"], "message", "{start}");
    assert_eq!(start["role"], "assistant", "{start}");
    assert_eq!(start["model"], DEFAULT_MODEL, "{start}");
    assert_eq!(start["content"], json!([]), "{start}");
    assert_eq!(start["stop_reason"], Value::Null, "{start}");
    assert!(
        start["usage"]["input_tokens"].as_u64().is_some(),
        "usage.input_tokens: {start}"
    );

    // One text block at index 0 carrying the whole answer.
    let starts = r.of("content_block_start");
    assert_eq!(starts.len(), 1, "{}", r.dump());
    assert_eq!(starts[0].data["index"], 0);
    assert_eq!(
        starts[0].data["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(r.text(), answer, "{}", r.dump());
    assert!(r.thinking_deltas().is_empty(), "{}", r.dump());
    assert_eq!(message_delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(message_delta["usage"]["output_tokens"], 45);
    // The reported prompt tokens replace message_start's estimate.
    assert_eq!(message_delta["usage"]["input_tokens"], 321);

    // Stored as streamed, under the announced id.
    let stored = stored_answer(&s.access, &id, STORE_WITHIN).await;
    assert_eq!(stored["id"], answer_id.as_str(), "{stored}");
    assert_eq!(stored["content"], answer, "{stored}");
    assert_eq!(stored["status"], "complete", "{stored}");
    assert_eq!(stored["provider"], "groq", "{stored}");
    assert_eq!(stored["model"], DEFAULT_MODEL, "{stored}");
    assert_eq!(stored["thinking"], Value::Null, "{stored}");
    assert_eq!(stored["input_tokens"], 321, "{stored}");
    assert_eq!(stored["output_tokens"], 45, "{stored}");
    assert_cost(&stored, cost(321, 45, 0.075, 0.30));
    assert!(stored["latency_ms"].as_u64().is_some(), "{stored}");
    let all = messages_of(&s.access, &id).await;
    assert_eq!(all[0]["content"], content.as_str(), "{all:?}");
    assert_eq!(all[0]["provider"], Value::Null, "{all:?}");
    assert_eq!(requests(&mk).await.len(), 1);
}

#[tokio::test]
async fn each_upstream_chunk_becomes_one_text_delta_with_its_exact_text() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    let chunks = [
        "Hé",
        "llo \"wor",
        "ld\"\n",
        "🙂 <b>&amp;</b>",
        " back\\slash",
        "\ttab",
    ];
    script(&mk, Some("groq"), json!({ "chunks": chunks }), 1).await;
    let r = stream_message(&s.access, &id, &json!({"content": format!("Echo {mk}")})).await;
    r.assert_complete();
    assert_eq!(r.text_deltas(), chunks, "{}", r.dump());
    let stored = stored_answer(&s.access, &id, STORE_WITHIN).await;
    assert_eq!(stored["content"], chunks.concat(), "{stored}");
}

#[tokio::test]
async fn deltas_are_delivered_as_they_arrive_not_buffered() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(
        &mk,
        Some("groq"),
        json!({"text": words(8), "chunk_delay_ms": 400}),
        1,
    )
    .await;
    let r = stream_message(&s.access, &id, &json!({"content": format!("Slowly {mk}")})).await;
    r.assert_complete();
    let deltas: Vec<_> = r.events.iter().filter(|e| is_text_delta(e)).collect();
    assert_eq!(deltas.len(), 8, "{}", r.dump());
    let (first, last) = (deltas[0].at, deltas[7].at);
    assert!(
        last.saturating_sub(first) >= Duration::from_secs(2),
        "the first delta came at {first:?} and the last at {last:?}: buffered?{}",
        r.dump()
    );
    let start = r.first("message_start").at;
    assert!(
        r.first("message_stop").at.saturating_sub(start) >= Duration::from_secs(2),
        "message_start was not sent ahead of the answer{}",
        r.dump()
    );
    assert_eq!(r.text(), words(8));
}

#[tokio::test]
async fn pings_keep_a_silent_stream_alive() {
    // Gemini sends its first chunk at once (Groq's role chunk would make the
    // first delay count against the first-token timeout).
    let (s, id) = user_with_conversation(&json!({ "model": FALLBACK_MODEL })).await;
    let mk = marker();
    script(
        &mk,
        Some("gemini"),
        json!({"chunks": ["Slow", " and", " steady"], "chunk_delay_ms": 2500}),
        1,
    )
    .await;
    let r = stream_message(&s.access, &id, &json!({"content": format!("Wait {mk}")})).await;
    r.assert_complete();
    assert_eq!(r.text(), "Slow and steady", "{}", r.dump());
    let names = r.names();
    let first = names
        .iter()
        .position(|n| *n == "content_block_delta")
        .unwrap_or_else(|| panic!("no delta{}", r.dump()));
    let last = names
        .iter()
        .rposition(|n| *n == "content_block_delta")
        .unwrap_or_else(|| panic!("no delta{}", r.dump()));
    let pings = names[first..last].iter().filter(|n| **n == "ping").count();
    assert!(
        pings >= 1,
        "no ping during 2.5 s silences (ping interval 1 s){}",
        r.dump()
    );
    for p in r.of("ping") {
        assert_eq!(p.data, json!({"type": "ping"}));
    }
    assert_eq!(
        stored_answer(&s.access, &id, STORE_WITHIN).await["status"],
        "complete"
    );
}

#[tokio::test]
async fn a_cut_answer_stops_with_max_tokens() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(
        &mk,
        Some("groq"),
        json!({"text": "one two three four five six seven eight"}),
        1,
    )
    .await;
    let r = stream_message(
        &s.access,
        &id,
        &json!({"content": format!("Count {mk}"), "max_tokens": 3}),
    )
    .await;
    let message_delta = r.assert_complete();
    assert_eq!(
        message_delta["delta"]["stop_reason"],
        "max_tokens",
        "{}",
        r.dump()
    );
    assert_eq!(message_delta["usage"]["output_tokens"], 3, "{}", r.dump());
    assert_eq!(r.text(), "one two three");
    let stored = stored_answer(&s.access, &id, STORE_WITHIN).await;
    assert_eq!(stored["content"], "one two three", "{stored}");
    assert_eq!(stored["status"], "complete", "{stored}");
}

#[tokio::test]
async fn pings_keep_the_connection_alive_before_the_first_token() {
    // The provider takes 1.5 s to answer (under the 2 s first-token limit);
    // pings every second must reach the client meanwhile.
    let (s, id) = user_with_conversation(&json!({"title": "stream"})).await;
    let mk = marker();
    script(
        &mk,
        Some("groq"),
        json!({"text": "late but fine", "first_byte_delay_ms": 1500}),
        1,
    )
    .await;
    let reply = stream_message(&s.access, &id, &json!({ "content": mk })).await;
    assert_eq!(reply.status, 200);
    let first_start = reply
        .events
        .iter()
        .position(|e| e.event == "message_start")
        .expect("a message_start");
    assert!(
        reply.events[..first_start]
            .iter()
            .any(|e| e.event == "ping"),
        "a ping before message_start: {:?}",
        reply
            .events
            .iter()
            .map(|e| e.event.as_str())
            .collect::<Vec<_>>()
    );
    for e in &reply.events {
        assert_eq!(e.data["type"], e.event.as_str());
    }
    assert_eq!(reply.start_message()["model"], DEFAULT_MODEL, "no fallback");
    assert_eq!(reply.text(), "late but fine");
}

#[tokio::test]
async fn message_stop_comes_only_once_the_answer_is_stored() {
    let (s, id) = user_with_conversation(&json!({"title": "stop after store"})).await;
    let mk = marker();
    script(
        &mk,
        Some("groq"),
        json!({"text": "stored before the end", "first_byte_delay_ms": 800}),
        1,
    )
    .await;
    let (access, conversation) = (s.access.clone(), id.clone());
    let content = format!("Hold the end {mk}");
    // Clients act on `message_stop` (the body may end later): read until it.
    let streaming = tokio::spawn(async move {
        let body = json!({ "content": content });
        stream_until(&access, &conversation, &body, |events| {
            events.last().is_some_and(|e| e.event == "message_stop")
        })
        .await
    });
    // Once the user message is in, lock the conversation row: storing the
    // answer (its insert updates the row) has to wait for the lock.
    wait_for_messages(&s.access, &id, 1, STORE_WITHIN).await;
    let mut client = db().await;
    let tx = client.transaction().await.expect("begin");
    tx.execute(
        "SELECT 1 FROM app.conversations WHERE id = $1::text::uuid FOR UPDATE",
        &[&id],
    )
    .await
    .expect("lock the conversation");
    let done = wait_for_requests(&mk, Duration::from_secs(10), |r| {
        r.first().is_some_and(|r| r["completed"] == true)
    })
    .await;
    assert_eq!(
        done[0]["completed"], true,
        "the stand-in finished: {done:?}"
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !streaming.is_finished(),
        "the stream ended while its answer could not be stored"
    );
    tx.commit().await.expect("unlock");
    let r = streaming.await.expect("the stream task");
    assert!(r.events.last().is_some_and(|e| e.event == "message_stop"));
    let stored = messages_of(&s.access, &id).await;
    assert_eq!(
        stored.len(),
        2,
        "the answer is there at message_stop: {stored:?}"
    );
    assert_eq!(stored[1]["content"], "stored before the end");
}
