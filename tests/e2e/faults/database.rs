//! PostgreSQL going away while an answer is produced: stopped (`pg_ctl
//! stop -m fast`, what a restart does) and started again within the
//! worker's retry window for storing an answer (10 s), or not; and the one
//! connection that stores the answer cut. Runs only in the `faults` phase:
//! the database is that phase's private cluster.

use std::time::{Duration, Instant};

use harness::cluster::{Cluster, Stop};
use serde_json::{json, Value};

use super::{assert_one_paid_answer, exclusive, ledger, ledger_settled, shared};
use crate::support::{
    db, db_message_count, is_text_delta, marker, messages_of, requests, script, send_message,
    stored_answer, stream_message, user_with_conversation, wait_for_messages, Auth, SseReply,
};

/// How long the worker keeps trying to store an answer (`RETRY_WINDOW`).
const RETRY_WINDOW: Duration = Duration::from_secs(10);

/// The four-chunk answer these tests script, about 1.5 s long.
const CHUNKS: [&str; 4] = ["one ", "two ", "three ", "four"];

/// The database stopped; dropping this (even in a panic) starts it again.
struct Down(Cluster);

impl Down {
    /// Stops the phase's cluster.
    async fn stop() -> Down {
        let cluster = Cluster::from_env().expect("E2E_PG_*: the faults phase's cluster");
        cluster.stop(Stop::Fast).await.expect("stop PostgreSQL");
        Down(cluster)
    }

    /// Starts it again.
    async fn restart(self) {
        self.0.start().await.expect("start PostgreSQL");
    }
}

impl Drop for Down {
    fn drop(&mut self) {
        if let Err(e) = self.0.ensure_running_blocking() {
            eprintln!("could not start PostgreSQL again: {e}");
        }
    }
}

/// A titled conversation (no title call) whose next message gets
/// [`CHUNKS`], 500 ms apart, with known usage; returns the marker too.
async fn setup() -> (crate::support::Session, String, String) {
    let (s, id) = user_with_conversation(&json!({"title": "faults"})).await;
    let mk = marker();
    script(
        &mk,
        Some("groq"),
        json!({"chunks": CHUNKS, "chunk_delay_ms": 500,
               "usage": {"input_tokens": 40, "output_tokens": 4}}),
        1,
    )
    .await;
    (s, id, mk)
}

/// Waits until the send's user message is stored (the model is called after).
async fn user_message_stored(id: &str) {
    let started = Instant::now();
    while db_message_count(id).await < 1 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no user message"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asserts pings between the last text delta and `message_delta` (or the
/// final `error`): the stream was kept alive while storing waited.
fn assert_pinged_while_storing(r: &SseReply) {
    let last_delta = r
        .events
        .iter()
        .rposition(is_text_delta)
        .expect("text deltas");
    let pings = r.events[last_delta..]
        .iter()
        .filter(|e| e.event == "ping")
        .count();
    assert!(pings >= 1, "no ping while storing waited:{}", r.dump());
}

#[tokio::test]
async fn a_restart_within_the_retry_window_mid_stream_loses_nothing() {
    let _gate = exclusive().await;
    let (s, id, mk) = setup().await;
    let body = json!({ "content": format!("Through a restart {mk}") });
    let (access, conversation) = (s.access.clone(), id.clone());
    let streaming =
        tokio::spawn(async move { stream_message(&access, &conversation, &body).await });
    user_message_stored(&id).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let down = Down::stop().await;
    // The answer ends about a second later, while the database is down.
    tokio::time::sleep(Duration::from_secs(3)).await;
    down.restart().await;

    let r = streaming.await.expect("the stream task");
    r.assert_complete();
    assert_eq!(r.text(), CHUNKS.concat(), "{}", r.dump());
    assert_pinged_while_storing(&r);
    let stored = stored_answer(&s.access, &id, Duration::from_secs(5)).await;
    assert_eq!(stored["id"], r.start_message()["id"], "{stored}");
    assert_eq!(stored["status"], "complete", "{stored}");
    assert_eq!(stored["content"], CHUNKS.concat(), "{stored}");
    assert_eq!(stored["input_tokens"], 40, "{stored}");
    assert_one_paid_answer(
        &ledger_settled(&id, 1, Duration::from_secs(5)).await,
        &stored,
    );
    assert_eq!(requests(&mk).await.len(), 1, "one model call");
}

#[tokio::test]
async fn a_restart_within_the_retry_window_during_a_send_loses_nothing() {
    let _gate = exclusive().await;
    let (s, id, mk) = setup().await;
    let body = json!({ "content": format!("Through a restart {mk}") });
    let (access, conversation) = (s.access.clone(), id.clone());
    let sending =
        tokio::spawn(
            async move { send_message(Auth::Bearer(&access), &conversation, &body).await },
        );
    user_message_stored(&id).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let down = Down::stop().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    down.restart().await;

    let r = sending.await.expect("the send task");
    assert_eq!(r.status, 201, "{}", r.text);
    let answer = &r.json["assistant_message"];
    assert_eq!(answer["status"], "complete", "{answer}");
    assert_eq!(answer["content"], CHUNKS.concat(), "{answer}");
    let stored = stored_answer(&s.access, &id, Duration::from_secs(5)).await;
    assert_eq!(&stored, answer);
    assert_one_paid_answer(
        &ledger_settled(&id, 1, Duration::from_secs(5)).await,
        &stored,
    );
    assert_eq!(requests(&mk).await.len(), 1, "one model call");
}

#[tokio::test]
async fn a_database_not_back_within_the_retry_window_ends_the_stream_with_an_error() {
    let _gate = exclusive().await;
    let (s, id, mk) = setup().await;
    let content = format!("Nobody stores this {mk}");
    let body = json!({ "content": content });
    let (access, conversation) = (s.access.clone(), id.clone());
    let streaming =
        tokio::spawn(async move { stream_message(&access, &conversation, &body).await });
    user_message_stored(&id).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let down = Down::stop().await;
    let r = streaming.await.expect("the stream task");
    down.restart().await;

    // The client saw the whole answer, then an error instead of the end.
    r.assert_ends_with_error(Some("overloaded_error"));
    assert_eq!(r.text(), CHUNKS.concat(), "{}", r.dump());
    let error = &r.events.last().expect("events").data["error"]["message"];
    assert!(
        error
            .as_str()
            .is_some_and(|m| m.contains("could not be stored")),
        "{}",
        r.dump()
    );
    assert_pinged_while_storing(&r);
    // The worker kept trying for its whole window before giving up.
    let last_delta = r.events.iter().rposition(is_text_delta).expect("deltas");
    let waited = r.events.last().expect("events").at - r.events[last_delta].at;
    assert!(
        waited >= RETRY_WINDOW - Duration::from_secs(2),
        "gave up after {waited:?}:{}",
        r.dump()
    );
    // Stored: the user message only. The ledger has no row for the call:
    // its usage would have been stored with the answer, in one transaction.
    let all = messages_of(&s.access, &id).await;
    assert_eq!(all.len(), 1, "only the user message: {all:?}");
    assert_eq!(all[0]["content"], content.as_str());
    assert_eq!(ledger(&id).await, [], "nothing is recorded as paid for");
    let seen = requests(&mk).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        seen[0]["completed"], true,
        "the provider answered: {seen:?}"
    );
}

#[tokio::test]
async fn a_connection_cut_while_the_answer_is_stored_is_tried_again() {
    // The connection storing the answer is terminated, as a restart or a
    // dropped network path would: the test holds a lock on the
    // conversation's row (storing the answer waits on it), cuts the waiting
    // connection, then lets go. This state is made directly in PostgreSQL
    // because no API call can time an outage to that moment.
    let _gate = shared().await;
    let (s, id, mk) = setup().await;
    let (access, conversation) = (s.access.clone(), id.clone());
    let body = json!({ "content": format!("Keep this {mk}") });
    let streaming =
        tokio::spawn(async move { stream_message(&access, &conversation, &body).await });
    user_message_stored(&id).await;
    let started = Instant::now();
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
    let admin = db().await;
    let mut cut = 0;
    while cut == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the answer was never stored"
        );
        cut = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE $1 = ANY(pg_blocking_pids(pid))",
                &[&me],
            )
            .await
            .expect("terminate")
            .len();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tx.rollback().await.expect("unlock");

    let r = streaming.await.expect("the stream task");
    r.assert_complete();
    assert_eq!(r.text(), CHUNKS.concat(), "{}", r.dump());
    let stored = stored_answer(&s.access, &id, Duration::from_secs(5)).await;
    assert_eq!(stored["status"], "complete", "{stored}");
    assert_eq!(stored["id"], r.start_message()["id"], "{stored}");
    let all: Vec<Value> = wait_for_messages(&s.access, &id, 3, Duration::from_secs(1)).await;
    assert_eq!(all.len(), 2, "stored once: {all:?}");
    assert_one_paid_answer(
        &ledger_settled(&id, 1, Duration::from_secs(5)).await,
        &stored,
    );
}
