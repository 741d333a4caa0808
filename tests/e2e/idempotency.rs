//! `Idempotency-Key` on both send routes: a retry returns the first result
//! without a new model call; another body under the same key, or a retry
//! while the first still runs, is a 409; concurrent duplicates make exactly
//! one upstream call; a send that got no answer releases its key.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{
    db_message_count, marker, random_uuid, requests, script, send, user_with_conversation, Reply,
};

/// Sends with an `Idempotency-Key` (`stream` picks the route).
async fn send_keyed(access: &str, id: &str, key: &str, body: &Value, stream: bool) -> Reply {
    let suffix = if stream { "/stream" } else { "" };
    let auth = format!("Bearer {access}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Idempotency-Key", key),
        ("Content-Type", "application/json"),
    ];
    let path = format!("/api/v1/conversations/{id}/messages{suffix}");
    send(Method::POST, &path, &headers, Some(body.to_string())).await
}

/// `(event name, data)` pairs of an SSE body.
fn events(text: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut name = String::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("event: ") {
            name = n.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            out.push((name.clone(), serde_json::from_str(d).expect("data is JSON")));
        }
    }
    out
}

fn text_of(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(_, d)| d["delta"]["type"] == "text_delta")
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect()
}

#[tokio::test]
async fn a_retry_returns_the_first_result_without_a_new_model_call() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    let key = random_uuid();
    let body = json!({ "content": mk });
    let first = send_keyed(&s.access, &id, &key, &body, false).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = send_keyed(&s.access, &id, &key, &body, false).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(again.json, first.json);
    assert_eq!(requests(&mk).await.len(), 1, "one upstream call");
    assert_eq!(db_message_count(&id).await, 2, "no second exchange stored");
}

#[tokio::test]
async fn one_users_key_is_nothing_to_another_user() {
    // Keys belong to their user: the same key from someone else runs a
    // send of their own, never replays (or blocks on) the first one's.
    let (a, a_id) = user_with_conversation(&json!({"title": "a"})).await;
    let (b, b_id) = user_with_conversation(&json!({"title": "b"})).await;
    let (mk_a, mk_b) = (marker(), marker());
    script(
        &mk_a,
        None,
        json!({"text": "First user's private answer."}),
        1,
    )
    .await;
    script(&mk_b, None, json!({"text": "Second user's own answer."}), 1).await;
    let key = random_uuid();
    let first = send_keyed(&a.access, &a_id, &key, &json!({ "content": mk_a }), false).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let theirs = send_keyed(&b.access, &b_id, &key, &json!({ "content": mk_b }), false).await;
    assert_eq!(theirs.status, 201, "{}", theirs.text);
    assert_eq!(theirs.header("idempotent-replayed"), "");
    assert_eq!(
        theirs.json["assistant_message"]["content"],
        "Second user's own answer."
    );
    assert_eq!(
        theirs.json["user_message"]["conversation_id"],
        b_id.as_str()
    );
    // On the first user's conversation, with the first user's body: a 404,
    // not a replay of their answer.
    let r = send_keyed(&b.access, &a_id, &key, &json!({ "content": mk_a }), false).await;
    r.assert_error(404, "not_found_error");
    assert!(!r.text.contains("private"), "{}", r.text);
    assert_eq!(requests(&mk_a).await.len(), 1);
    assert_eq!(requests(&mk_b).await.len(), 1);
    assert_eq!(db_message_count(&a_id).await, 2);
    assert_eq!(db_message_count(&b_id).await, 2);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_409() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let key = random_uuid();
    let first = send_keyed(&s.access, &id, &key, &json!({"content": marker()}), false).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let other = send_keyed(&s.access, &id, &key, &json!({"content": marker()}), false).await;
    other.assert_error(409, "conflict_error");
    assert_eq!(db_message_count(&id).await, 2);
}

#[tokio::test]
async fn a_retry_while_the_first_runs_is_409() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(
        &mk,
        None,
        json!({"chunks": ["a ", "b ", "c ", "d ", "e "], "chunk_delay_ms": 400}),
        0,
    )
    .await;
    let key = random_uuid();
    let body = json!({ "content": mk });
    let (access, conversation, k, b) = (s.access.clone(), id.clone(), key.clone(), body.clone());
    let first =
        tokio::spawn(async move { send_keyed(&access, &conversation, &k, &b, false).await });
    tokio::time::sleep(Duration::from_millis(600)).await;
    let second = send_keyed(&s.access, &id, &key, &body, false).await;
    second.assert_error(409, "conflict_error");
    let first = first.await.expect("first send");
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(requests(&mk).await.len(), 1);
}

#[tokio::test]
async fn concurrent_duplicates_make_exactly_one_upstream_call() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(
        &mk,
        None,
        json!({"chunks": ["x ", "y ", "z "], "chunk_delay_ms": 300}),
        0,
    )
    .await;
    let key = random_uuid();
    let body = json!({ "content": mk });
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (access, conversation, k, b) =
                (s.access.clone(), id.clone(), key.clone(), body.clone());
            tokio::spawn(async move {
                send_keyed(&access, &conversation, &k, &b, false)
                    .await
                    .status
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert_eq!(requests(&mk).await.len(), 1, "exactly one upstream call");
    assert_eq!(db_message_count(&id).await, 2);
}

#[tokio::test]
async fn a_stream_retry_replays_the_stored_answer_as_a_whole_sequence() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(&mk, None, json!({"chunks": ["Hello ", "again"]}), 0).await;
    let key = random_uuid();
    let body = json!({ "content": mk });
    let first = send_keyed(&s.access, &id, &key, &body, true).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let first_events = events(&first.text);
    let answer_id = first_events[0].1["message"]["id"].clone();
    // The answer is stored when the stream ends; wait for it.
    for _ in 0..50 {
        if db_message_count(&id).await == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut again = send_keyed(&s.access, &id, &key, &body, true).await;
    for _ in 0..20 {
        if again.status == 200 {
            break;
        }
        // The first stream may still be storing its result.
        tokio::time::sleep(Duration::from_millis(200)).await;
        again = send_keyed(&s.access, &id, &key, &body, true).await;
    }
    assert_eq!(again.status, 200, "{}", again.text);
    assert!(again
        .header("content-type")
        .starts_with("text/event-stream"));
    assert_eq!(again.header("idempotent-replayed"), "true");
    let replay = events(&again.text);
    let names: Vec<&str> = replay.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    for (name, data) in &replay {
        assert_eq!(data["type"], name.as_str());
    }
    assert_eq!(replay[0].1["message"]["id"], answer_id);
    assert_eq!(text_of(&replay), "Hello again");
    assert_eq!(text_of(&first_events), "Hello again");
    assert_eq!(requests(&mk).await.len(), 1);
}

#[tokio::test]
async fn a_send_without_an_answer_releases_its_key() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(&mk, Some("groq"), json!({"status": 500}), 1).await;
    script(&mk, Some("gemini"), json!({"status": 500}), 1).await;
    let key = random_uuid();
    let body = json!({ "content": mk });
    let failed = send_keyed(&s.access, &id, &key, &body, false).await;
    failed.assert_error(502, "overloaded_error");
    let retry = send_keyed(&s.access, &id, &key, &body, false).await;
    assert_eq!(retry.status, 201, "the retry runs again: {}", retry.text);
    assert_eq!(retry.header("idempotent-replayed"), "");
    assert_eq!(
        requests(&mk).await.len(),
        3,
        "groq, gemini, then groq again"
    );
}

#[tokio::test]
async fn malformed_keys_are_400() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let long = "k".repeat(256);
    let r = send_keyed(&s.access, &id, &long, &json!({"content": "hi"}), false).await;
    r.assert_error(400, "invalid_request_error");
    assert_eq!(db_message_count(&id).await, 0, "nothing stored");
}

/// Sends under `key` on the stream route, waits until the answer is stored,
/// then returns the first stream and a stream replay.
async fn stream_then_replay(access: &str, id: &str, key: &str, body: &Value) -> (Reply, Reply) {
    let first = send_keyed(access, id, key, body, true).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let mut again = send_keyed(access, id, key, body, true).await;
    for _ in 0..50 {
        if again.status == 200 {
            break;
        }
        // The first stream may still be storing its result.
        tokio::time::sleep(Duration::from_millis(200)).await;
        again = send_keyed(access, id, key, body, true).await;
    }
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.header("idempotent-replayed"), "true");
    (first, again)
}

/// The `stop_reason` of a stream's `message_delta`, if it has one.
fn stop_reason(events: &[(String, Value)]) -> Option<String> {
    events
        .iter()
        .find(|(n, _)| n == "message_delta")
        .and_then(|(_, d)| d["delta"]["stop_reason"].as_str().map(str::to_string))
}

#[tokio::test]
async fn a_replay_of_an_answer_cut_by_length_says_max_tokens() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(
        &mk,
        None,
        json!({"chunks": ["a", " b", " c", " d", " e", " f"]}),
        0,
    )
    .await;
    let body = json!({ "content": mk, "max_tokens": 3 });
    let (first, again) = stream_then_replay(&s.access, &id, &random_uuid(), &body).await;
    let first = events(&first.text);
    let replay = events(&again.text);
    assert_eq!(stop_reason(&first).as_deref(), Some("max_tokens"));
    assert_eq!(stop_reason(&replay), stop_reason(&first), "{}", again.text);
    assert_eq!(text_of(&replay), text_of(&first));
    assert_eq!(requests(&mk).await.len(), 1);
}

#[tokio::test]
async fn a_replay_of_an_answer_cut_off_upstream_ends_like_the_original() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(
        &mk,
        Some("groq"),
        json!({"chunks": ["One", " two", " three", " four"], "drop_after_chunks": 2}),
        1,
    )
    .await;
    let key = random_uuid();
    let body = json!({ "content": mk });
    let (first, again) = stream_then_replay(&s.access, &id, &key, &body).await;
    let first = events(&first.text);
    let replay = events(&again.text);
    let last = |e: &[(String, Value)]| e.last().map(|(n, _)| n.clone());
    assert_eq!(last(&first).as_deref(), Some("error"), "{first:?}");
    assert_eq!(last(&replay).as_deref(), Some("error"), "{}", again.text);
    assert!(
        replay.iter().all(|(n, _)| n != "message_stop"),
        "{}",
        again.text
    );
    assert_eq!(text_of(&replay), "One two");
    // The JSON replay shows the stored status.
    let json_replay = send_keyed(&s.access, &id, &key, &body, false).await;
    assert_eq!(json_replay.status, 201, "{}", json_replay.text);
    assert_eq!(json_replay.header("idempotent-replayed"), "true");
    let answer = &json_replay.json["assistant_message"];
    assert_eq!(answer["status"], "incomplete", "{}", json_replay.text);
    assert_eq!(answer["content"], "One two");
    assert!(json_replay.json.get("stop_reason").is_none());
    assert_eq!(requests(&mk).await.len(), 1);
}
