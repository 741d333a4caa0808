//! `Idempotency-Key` leases: a key whose send never finished (on the
//! platform, a request cancelled with its client leaves its key
//! `in_progress`) answers 409 only while its lease runs; after it lapses, a
//! retry with the same key and body takes the key over and gets an answer.
//! Runs in the PostgreSQL phase.
//!
//! `wrangler dev` runs an abandoned request to completion, so the state a
//! cancelled request leaves (its user message stored, its key held, no
//! answer) is made directly in PostgreSQL.

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::{
    db, marker, messages_of, random_uuid, requests, script, send, user_with_conversation, Reply,
};

/// The fingerprint the worker keeps for a send: SHA-256 of the
/// conversation id, a newline and the body with its keys sorted.
fn fingerprint(conversation: &str, body: &Value) -> String {
    Sha256::digest(format!("{conversation}\n{body}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What a cancelled keyed send leaves behind: its user message and its key
/// `in_progress`, held until `locked_until` (SQL).
async fn abandoned_send(user: &str, conversation: &str, key: &str, body: &Value, until: &str) {
    let c = db().await;
    let row = c
        .query_one(
            "INSERT INTO app.messages (conversation_id, user_id, role, content) \
             VALUES ($1::text::uuid, $2::text::uuid, 'user', $3) RETURNING id::text",
            &[
                &conversation,
                &user,
                &body["content"].as_str().unwrap_or_default(),
            ],
        )
        .await
        .expect("the abandoned user message");
    let message: String = row.get(0);
    let sql = format!(
        "INSERT INTO app.idempotency_keys \
           (user_id, key, request_hash, conversation_id, state, locked_until, user_message_id) \
         VALUES ($1::text::uuid, $2, $3, $4::text::uuid, 'in_progress', {until}, $5::text::uuid)"
    );
    c.execute(
        &sql,
        &[
            &user,
            &key,
            &fingerprint(conversation, body),
            &conversation,
            &message,
        ],
    )
    .await
    .expect("the abandoned key");
}

async fn send_keyed(access: &str, id: &str, key: &str, body: &Value) -> Reply {
    let auth = format!("Bearer {access}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Idempotency-Key", key),
        ("Content-Type", "application/json"),
    ];
    let path = format!("/api/v1/conversations/{id}/messages");
    send(Method::POST, &path, &headers, Some(body.to_string())).await
}

#[tokio::test]
async fn a_key_held_by_a_live_lease_is_409() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let key = random_uuid();
    let body = json!({ "content": format!("Still running? {}", marker()) });
    abandoned_send(&s.user_id, &id, &key, &body, "now() + interval '1 hour'").await;
    let r = send_keyed(&s.access, &id, &key, &body).await;
    r.assert_error(409, "conflict_error");
    assert!(r.text.contains("in progress"), "{}", r.text);
}

#[tokio::test]
async fn a_retry_takes_over_a_key_whose_lease_lapsed() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(&mk, None, json!({"text": "Answered at last."}), 0).await;
    let key = random_uuid();
    let body = json!({ "content": format!("Anyone? {mk}") });
    abandoned_send(&s.user_id, &id, &key, &body, "now() - interval '1 second'").await;

    let r = send_keyed(&s.access, &id, &key, &body).await;
    assert_eq!(r.status, 201, "the retry runs: {}", r.text);
    assert_eq!(r.header("idempotent-replayed"), "");
    assert_eq!(r.json["assistant_message"]["content"], "Answered at last.");
    assert_eq!(requests(&mk).await.len(), 1, "one model call");
    let all = messages_of(&s.access, &id).await;
    let roles: Vec<&str> = all.iter().filter_map(|m| m["role"].as_str()).collect();
    assert_eq!(
        roles,
        ["user", "assistant"],
        "the abandoned user message is replaced, not doubled: {all:?}"
    );

    // The key now holds the answer: the next retry replays it.
    let again = send_keyed(&s.access, &id, &key, &body).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.header("idempotent-replayed"), "true");
    assert_eq!(again.json, r.json);
    assert_eq!(requests(&mk).await.len(), 1);
}
