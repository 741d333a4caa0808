//! The fault-injection suite: for each fault, what the client sees (status,
//! event sequence), what is stored (messages and their statuses, exactly
//! once) and what the usage ledger holds. Nothing is lost that the design
//! can keep, and nothing is reported to the client that is not so.
//!
//! | fault | client sees | stored | ledger (`kind = answer`) |
//! |---|---|---|---|
//! | database stopped mid-stream, back within the retry window | whole answer, `message_stop` after the restart | answer once, `complete` | one row, success, reported tokens |
//! | the same on the non-streaming route | 201 with the answer | answer once, `complete` | one row |
//! | database stopped, not back within the window | `error` (`overloaded_error`, "could not be stored") | user message only | nothing (the call's usage is lost with it) |
//! | connection cut while storing | `message_stop` | answer once | one row |
//! | provider drops mid-answer | partial text, `error` (`api_error`) | partial answer, `incomplete` | one row, tokens 0 (none reported) |
//! | provider drops before the first byte | the fallback's whole answer | fallback's answer once | failed row (0 tokens) + success row |
//! | provider sends nothing past the first-token timeout | the fallback's whole answer | fallback's answer once | failed row "timed out" + success row |
//! | rate limiter failing | sends and logins 503, the rest served | nothing for a refused send | nothing |
//! | client gone before the response headers | (nothing) | answer once, `complete`; a keyed retry replays it | one row |
//! | client gone before the first token | (nothing) | user message only | each attempt made |
//! | client gone after the first delta | (nothing) | partial answer, `incomplete`; a keyed retry replays it so | one row |
//! | client gone while the answer is stored | (nothing) | answer once, `complete` | one row |
//!
//! `database::` and `limiter::` run only in the `faults` phase of `npm test`
//! (a private PostgreSQL cluster the tests stop and start, and a worker
//! whose rate-limiter binding fails); `provider::` and `client::` run there
//! and again over Supabase's HTTP API. Tests that stop the database hold
//! the suite's gate exclusively ([`exclusive`]); every other one shares it
//! ([`shared`]), so no test sees an outage it did not cause.

mod client;
mod database;
mod limiter;
mod provider;

use std::time::{Duration, Instant};

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::support::db;

/// Taken shared by each test of the suite, exclusively by those that stop
/// the database.
static GATE: RwLock<()> = RwLock::const_new(());

/// The gate for a test that does not stop the database.
pub async fn shared() -> RwLockReadGuard<'static, ()> {
    GATE.read().await
}

/// The gate for a test that stops the database.
pub async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    GATE.write().await
}

/// One row of the usage ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub provider: String,
    pub model: String,
    pub input_tokens: i32,
    pub output_tokens: i32,
    pub success: bool,
    pub error: Option<String>,
    /// The stored answer it paid for, if any.
    pub message_id: Option<String>,
}

/// The ledger rows of a conversation's answers, oldest first.
pub async fn ledger(conversation: &str) -> Vec<Entry> {
    db().await
        .query(
            "SELECT provider, model, input_tokens, output_tokens, success, error, \
                    message_id::text \
               FROM app.usage_ledger \
              WHERE conversation_id = $1::text::uuid AND kind = 'answer' \
              ORDER BY created_at, success",
            &[&conversation],
        )
        .await
        .expect("read the ledger")
        .iter()
        .map(|r| Entry {
            provider: r.get(0),
            model: r.get(1),
            input_tokens: r.get(2),
            output_tokens: r.get(3),
            success: r.get(4),
            error: r.get(5),
            message_id: r.get(6),
        })
        .collect()
}

/// The ledger of `conversation` once it has at least `n` rows (waiting up
/// to `within`), then a little longer so that a row too many would show.
pub async fn ledger_settled(conversation: &str, n: usize, within: Duration) -> Vec<Entry> {
    let started = Instant::now();
    while ledger(conversation).await.len() < n && started.elapsed() < within {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    ledger(conversation).await
}

/// Asserts one successful ledger row for the stored answer `answer`.
pub fn assert_one_paid_answer(rows: &[Entry], answer: &serde_json::Value) {
    assert_eq!(rows.len(), 1, "one ledger row: {rows:?}");
    let row = &rows[0];
    assert!(row.success, "{row:?}");
    assert_eq!(row.error, None, "{row:?}");
    assert_eq!(
        row.message_id.as_deref(),
        answer["id"].as_str(),
        "the row pays for the stored answer: {row:?} {answer}"
    );
    assert_eq!(row.provider, answer["provider"], "{row:?} {answer}");
    assert_eq!(row.model, answer["model"], "{row:?} {answer}");
    let tokens = |v: &serde_json::Value| v.as_i64().unwrap_or(0) as i32;
    assert_eq!(row.input_tokens, tokens(&answer["input_tokens"]), "{row:?}");
    assert_eq!(
        row.output_tokens,
        tokens(&answer["output_tokens"]),
        "{row:?}"
    );
}
