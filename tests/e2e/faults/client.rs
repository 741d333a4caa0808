//! The client going away at each phase of a send: before the response
//! headers (the non-streaming route answers only at the end), after the
//! stream's headers but before the first token, after the first delta, and
//! while the finished answer is being stored. The answer is produced to
//! completion or stored `incomplete` without the client (within the
//! platform's limits on work after a disconnect; `wrangler dev` does not
//! cancel an abandoned request at all, so the attempts stop only once the
//! worker notices), and a keyed retry replays what was stored.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use super::{assert_one_paid_answer, ledger, ledger_settled, shared};
use crate::support::{
    db, is_text_delta, marker, messages_of, messages_path, random_uuid, requests, script, send,
    stack, stored_answer, stream_path, stream_until, stream_with, user_with_conversation,
    wait_for_messages, wait_for_requests, Reply,
};

/// `POST …/messages` with an `Idempotency-Key`.
async fn send_keyed(access: &str, id: &str, key: &str, body: &Value) -> Reply {
    let auth = format!("Bearer {access}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Idempotency-Key", key),
        ("Content-Type", "application/json"),
    ];
    send(
        Method::POST,
        &messages_path(id),
        &headers,
        Some(body.to_string()),
    )
    .await
}

/// Asserts a keyed retry replays `stored` (the assistant message as stored).
async fn assert_replayed(access: &str, id: &str, key: &str, body: &Value, stored: &Value) {
    let again = send_keyed(access, id, key, body).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(&again.json["assistant_message"], stored, "{}", again.text);
}

#[tokio::test]
async fn a_client_gone_before_the_response_headers_gets_its_answer_stored_and_replayed() {
    let _gate = shared().await;
    let (s, id) = user_with_conversation(&json!({"title": "faults"})).await;
    let mk = marker();
    script(
        &mk,
        None,
        json!({"chunks": ["slow ", "but ", "sure"], "chunk_delay_ms": 700}),
        0,
    )
    .await;
    let key = random_uuid();
    let body = json!({ "content": format!("Take your time {mk}") });
    let gave_up = reqwest::Client::new()
        .post(format!("{}{}", stack().base_url, messages_path(&id)))
        .timeout(Duration::from_millis(500))
        .header("Authorization", format!("Bearer {}", s.access))
        .header("Idempotency-Key", &key)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    assert!(gave_up.is_err(), "the client gave up before the answer");

    let stored = stored_answer(&s.access, &id, Duration::from_secs(15)).await;
    assert_eq!(stored["content"], "slow but sure", "{stored}");
    assert_eq!(stored["status"], "complete", "{stored}");
    assert_one_paid_answer(
        &ledger_settled(&id, 1, Duration::from_secs(5)).await,
        &stored,
    );
    assert_replayed(&s.access, &id, &key, &body, &stored).await;
    assert_eq!(requests(&mk).await.len(), 1, "one model call");
}

#[tokio::test]
async fn a_client_gone_before_the_first_token_stops_the_attempts_and_each_is_recorded() {
    let _gate = shared().await;
    let (s, id) = user_with_conversation(&json!({"title": "faults"})).await;
    let mk = marker();
    // Neither provider ever answers: each attempt waits for its first-token
    // timeout (2 s) unless the client's leaving is noticed.
    script(&mk, None, json!({"stall_before_headers": true}), 0).await;
    let content = format!("Anyone? {mk}");
    // Leave as soon as the stream's headers arrive.
    let resp = reqwest::Client::new()
        .post(format!("{}{}", stack().base_url, stream_path(&id)))
        .header("Authorization", format!("Bearer {}", s.access))
        .header("Content-Type", "application/json")
        .body(json!({ "content": content }).to_string())
        .send()
        .await
        .expect("the worker answers");
    assert_eq!(resp.status(), 200);
    drop(resp);
    // What happened is stored: the user message, and each attempt made in
    // the ledger.
    let started = Instant::now();
    let mut rows = ledger(&id).await;
    while rows.is_empty() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        rows = ledger(&id).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rows = ledger(&id).await;
    let seen = requests(&mk).await;
    assert!(!rows.is_empty() && rows.len() <= 2, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| !r.success && (r.input_tokens, r.output_tokens) == (0, 0)),
        "{rows:?}"
    );
    assert_eq!(
        seen.len(),
        rows.len(),
        "every call is in the ledger: {seen:?}"
    );
    assert!(
        seen.iter().all(|r| r["client_disconnected"] == true),
        "every upstream request was closed: {seen:?}"
    );
    // The leaving is noticed when the platform cancels the response stream
    // (under `wrangler dev`, a few seconds late): from then on, the attempt
    // running is abandoned and no other starts. Without the client noticed,
    // both attempts would wait out their first-token timeouts.
    let timed_out = |e: &Option<String>| e.as_deref().is_some_and(|e| e.contains("timed out"));
    assert!(
        !(rows.len() == 2 && rows.iter().all(|r| timed_out(&r.error))),
        "both attempts were waited out: {rows:?}"
    );
    if rows.len() == 2 {
        let last = rows[1].error.as_deref().unwrap_or_default();
        assert!(last.contains("client left"), "{rows:?}");
    }
    let all = messages_of(&s.access, &id).await;
    assert_eq!(all.len(), 1, "only the user message: {all:?}");
    assert_eq!(all[0]["content"], content.as_str());
}

#[tokio::test]
async fn a_client_gone_after_the_first_delta_gets_the_partial_answer_stored_and_replayed() {
    let _gate = shared().await;
    let (s, id) = user_with_conversation(&json!({"title": "faults"})).await;
    let mk = marker();
    let full: String = (1..=20)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    script(
        &mk,
        Some("groq"),
        json!({"text": full, "chunk_delay_ms": 300}),
        1,
    )
    .await;
    let key = random_uuid();
    let body = json!({"content": format!("Long answer {mk}")});
    let r = stream_with(
        &s.access,
        &id,
        &body,
        &[("Idempotency-Key", key.as_str())],
        |events| events.iter().any(is_text_delta),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.raw);
    assert!(
        !r.ended,
        "the stream ended before the client left{}",
        r.dump()
    );

    // Within a few seconds (well before the 6 s answer would end) the
    // partial answer is stored as incomplete.
    let all = wait_for_messages(&s.access, &id, 2, Duration::from_secs(8)).await;
    assert_eq!(all.len(), 2, "the partial answer is stored: {all:?}");
    let stored = &all[1];
    assert_eq!(stored["id"], r.start_message()["id"], "{stored}");
    assert_eq!(stored["role"], "assistant", "{stored}");
    assert_eq!(stored["status"], "incomplete", "{stored}");
    let partial = stored["content"].as_str().unwrap_or_default();
    assert!(!partial.is_empty(), "the partial answer is empty: {stored}");
    assert!(
        full.starts_with(partial) && partial.len() < full.len(),
        "stored {partial:?} is not a strict prefix of {full:?}"
    );
    assert_one_paid_answer(
        &ledger_settled(&id, 1, Duration::from_secs(5)).await,
        stored,
    );

    // The worker closed its upstream request instead of reading it to the end.
    let seen = wait_for_requests(&mk, Duration::from_secs(8), |found| {
        found.len() == 1 && found[0]["client_disconnected"] == true
    })
    .await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["client_disconnected"], true, "{}", seen[0]);
    assert_eq!(seen[0]["completed"], false, "{}", seen[0]);
    // A retry with the key gets what was stored, marked incomplete.
    assert_replayed(&s.access, &id, &key, &body, stored).await;
}

#[tokio::test]
async fn a_client_gone_while_the_answer_is_stored_gets_it_stored_once() {
    let _gate = shared().await;
    let (s, id) = user_with_conversation(&json!({"title": "faults"})).await;
    let mk = marker();
    script(
        &mk,
        Some("groq"),
        json!({"text": "stored without you", "first_byte_delay_ms": 800,
               "usage": {"input_tokens": 30, "output_tokens": 3}}),
        1,
    )
    .await;
    let (access, conversation) = (s.access.clone(), id.clone());
    let body = json!({ "content": format!("Hold the end {mk}") });
    // The client reads the whole answer, then leaves before the end.
    let streaming = tokio::spawn(async move {
        stream_until(&access, &conversation, &body, |events| {
            events
                .iter()
                .filter(|e| is_text_delta(e))
                .map(|e| e.data["delta"]["text"].as_str().unwrap_or_default())
                .collect::<String>()
                == "stored without you"
        })
        .await
    });
    // Once the user message is in, lock the conversation row: storing the
    // answer (its insert updates the row) has to wait for the lock.
    wait_for_messages(&s.access, &id, 1, Duration::from_secs(5)).await;
    let mut client = db().await;
    let tx = client.transaction().await.expect("begin");
    tx.execute(
        "SELECT 1 FROM app.conversations WHERE id = $1::text::uuid FOR UPDATE",
        &[&id],
    )
    .await
    .expect("lock the conversation");
    let r = streaming.await.expect("the stream task");
    assert!(
        !r.ended,
        "the stream ended while storing waited{}",
        r.dump()
    );
    assert!(r.of("message_stop").is_empty(), "{}", r.dump());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        messages_of(&s.access, &id).await.len(),
        1,
        "storing waits on the lock"
    );
    tx.commit().await.expect("unlock");

    let stored = stored_answer(&s.access, &id, Duration::from_secs(5)).await;
    assert_eq!(stored["content"], "stored without you", "{stored}");
    assert_eq!(stored["status"], "complete", "{stored}");
    assert_eq!(stored["id"], r.start_message()["id"], "{stored}");
    assert_one_paid_answer(
        &ledger_settled(&id, 1, Duration::from_secs(5)).await,
        &stored,
    );
}
