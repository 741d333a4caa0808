//! A streamed answer that cannot be stored must not be reported as a
//! success: the stream ends with an `error` event, never `message_delta`
//! / `message_stop`. Runs in the PostgreSQL phase.
//!
//! The database goes away exactly while the answer is being stored: the
//! test holds a lock on the conversation's row (storing the answer waits on
//! it), then terminates the worker's connection that waits, as a database
//! restart or a dropped network path would. This state is made directly in
//! PostgreSQL because no API call can time an outage to that moment.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{
    db, db_message_count, marker, messages_of, script, stream_message, user_with_conversation,
};

#[tokio::test]
async fn a_stream_whose_answer_cannot_be_stored_ends_with_an_error() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(
        &mk,
        None,
        json!({"chunks": ["one ", "two ", "three ", "four"], "chunk_delay_ms": 400}),
        0,
    )
    .await;
    let content = format!("Keep this? {mk}");
    let (access, conversation, body) =
        (s.access.clone(), id.clone(), json!({ "content": content }));
    let streaming =
        tokio::spawn(async move { stream_message(&access, &conversation, &body).await });

    // The user message is stored before the model is called; then lock the
    // conversation so that storing the answer has to wait.
    let started = Instant::now();
    while db_message_count(&id).await < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no user message"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut locker = db().await;
    let tx = locker.transaction().await.expect("begin");
    tx.execute(
        "SELECT 1 FROM app.conversations WHERE id = $1::text::uuid FOR UPDATE",
        &[&id],
    )
    .await
    .expect("lock the conversation");
    let me: i32 = tx
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0);

    // The worker's connection that waits on the lock is storing the answer:
    // cut it.
    let admin = db().await;
    let mut cut = 0;
    while cut == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the answer was never stored"
        );
        let rows = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE $1 = ANY(pg_blocking_pids(pid))",
                &[&me],
            )
            .await
            .expect("terminate");
        cut = rows.len();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tx.rollback().await.expect("rollback");

    let r = streaming.await.expect("stream task");
    assert_eq!(r.text(), "one two three four", "{}", r.dump());
    r.assert_ends_with_error(None);
    assert!(
        r.of("message_delta").is_empty(),
        "no success reported: {}",
        r.dump()
    );
    let message = r.events.last().map(|e| e.data["error"]["message"].clone());
    assert!(
        message
            .as_ref()
            .and_then(|m| m.as_str())
            .is_some_and(|m| m.contains("could not be stored")),
        "{}",
        r.dump()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = messages_of(&s.access, &id).await;
    assert_eq!(all.len(), 1, "only the user message is stored: {all:?}");
    assert_eq!(all[0]["content"], content.as_str());
}
