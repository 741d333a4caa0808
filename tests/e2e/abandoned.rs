//! Answers whose client leaves: both send routes produce the answer to
//! completion (or store what happened) without the client. Runs in the
//! PostgreSQL phase.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{
    db, marker, messages_of, messages_path, requests, script, stack, stream_path,
    user_with_conversation, wait_for_messages,
};

/// `(provider, success, error)` of the ledger rows of a conversation.
async fn ledger(conversation: &str) -> Vec<(String, bool, Option<String>)> {
    db().await
        .query(
            "SELECT provider, success, error FROM app.usage_ledger \
             WHERE conversation_id = $1::text::uuid AND kind = 'answer' ORDER BY created_at",
            &[&conversation],
        )
        .await
        .expect("ledger")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

#[tokio::test]
async fn a_client_leaving_before_the_first_token_stops_the_attempts_and_is_recorded() {
    let (s, id) = user_with_conversation(&json!({})).await;
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
    let seen = requests(&mk).await;
    assert!(!rows.is_empty() && rows.len() <= 2, "{rows:?}");
    assert!(rows.iter().all(|r| !r.1), "{rows:?}");
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
    let timed_out = |r: &(String, bool, Option<String>)| {
        r.2.as_deref().is_some_and(|e| e.contains("timed out"))
    };
    assert!(
        !(rows.len() == 2 && rows.iter().all(timed_out)),
        "both attempts were waited out: {rows:?}"
    );
    if rows.len() == 2 {
        let last = rows[1].2.as_deref().unwrap_or_default();
        assert!(last.contains("client left"), "{rows:?}");
    }
    let all = messages_of(&s.access, &id).await;
    assert_eq!(all.len(), 1, "only the user message: {all:?}");
    assert_eq!(all[0]["content"], content.as_str());
}

#[tokio::test]
async fn a_non_streamed_answer_is_stored_after_its_client_gave_up() {
    // Under `wrangler dev` an abandoned request is not cancelled; on the
    // platform it is, and only the answer's run in `wait_until` keeps it
    // going. This checks the outcome both must reach: the whole answer,
    // stored `complete`, with its usage.
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(
        &mk,
        None,
        json!({"chunks": ["slow ", "but ", "sure"], "chunk_delay_ms": 700}),
        0,
    )
    .await;
    let url = format!("{}{}", stack().base_url, messages_path(&id));
    let gave_up = reqwest::Client::new()
        .post(url)
        .timeout(Duration::from_millis(500))
        .header("Authorization", format!("Bearer {}", s.access))
        .header("Content-Type", "application/json")
        .body(json!({ "content": format!("Take your time {mk}") }).to_string())
        .send()
        .await;
    assert!(gave_up.is_err(), "the client gave up before the answer");
    let all = wait_for_messages(&s.access, &id, 2, Duration::from_secs(15)).await;
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[1]["content"], "slow but sure");
    assert_eq!(all[1]["status"], "complete");
    let rows = ledger(&id).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].1, "{rows:?}");
}
