//! The `RateLimiter` Durable Object: one instance per principal
//! (`user:<id>` or `ip:<addr>`), deciding from its in-memory log.
//!
//! - **Decides from memory.** A request is counted and decided in one
//!   synchronous step on the [`Log`], with no `await` in between, so no
//!   other request to the same object can run between the count and the
//!   record: two concurrent requests cannot both take the last slot.
//! - **Persists without holding the answer.** Any storage write, including
//!   `setAlarm`, closes the object's output gate: a response sent after it
//!   waits until the write is durable (`allowUnconfirmed` is not honoured by
//!   SQLite-backed objects). So `fetch` writes nothing: admitted requests are
//!   queued in memory and saved by one batch [`FLUSH_AFTER`] later, from a
//!   timer started by the first request of the batch. A response is held only
//!   if it happens to be sent while such a batch is being confirmed.
//! - **Rebuilt from storage** when the object starts. If the object dies
//!   before a batch is saved, at most the last [`FLUSH_AFTER`] of counts is
//!   lost.
//! - **Bounded storage.** Each batch deletes rows past the window and moves
//!   an alarm to one window after itself; the alarm deletes what is left.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use serde::Deserialize;
use worker::{
    console_error, durable_object, DurableObject, Env, Request, Response, Result, SqlStorage,
    State, Storage,
};

use super::log::{Log, Row};
use super::streams::Leases;
use super::window::Check;

/// How long admitted requests wait in memory before being saved in one batch.
pub const FLUSH_AFTER: Duration = Duration::from_secs(1);

/// The Durable Object class (binding `RATE_LIMITER`). Only `fetch` and
/// `alarm` are bound: the WebSocket and socket handlers it never gets would
/// only add code to the script.
#[durable_object(alarm)]
pub struct RateLimiter {
    state: State,
    shared: Rc<Shared>,
    /// The principal's open event streams (in memory: after a restart the
    /// live streams take their leases back when they renew).
    streams: RefCell<Leases>,
}

/// What the request handler and the flush timer share.
struct Shared {
    sql: SqlStorage,
    log: RefCell<Log>,
    /// The window of the latest request (unknown until one arrives).
    window_ms: Cell<Option<i64>>,
    /// Whether a flush timer is running.
    flush_scheduled: Cell<bool>,
}

#[derive(Deserialize)]
struct StoredRow {
    bucket: String,
    at: i64,
}

#[derive(Deserialize)]
struct Named {
    n: u32,
}

fn now_ms() -> i64 {
    i64::try_from(crate::runtime::now_ms()).unwrap_or(i64::MAX)
}

/// The rows saved by earlier instances of this object (none if its table
/// does not exist yet: creating it is left to the first flush, so that
/// starting an object writes nothing).
fn load(sql: &SqlStorage) -> Result<Vec<Row>> {
    let table: Named = sql
        .exec(
            "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'hits'",
            None,
        )?
        .one()?;
    if table.n == 0 {
        return Ok(Vec::new());
    }
    let rows: Vec<StoredRow> = sql.exec("SELECT bucket, at FROM hits", None)?.to_array()?;
    Ok(rows.into_iter().map(|r| (r.bucket, r.at)).collect())
}

impl Shared {
    /// Saves the queued rows and deletes the expired ones, in one
    /// synchronous batch. Returns, when rows were saved, in how many ms the
    /// cleanup alarm should fire (one window: then they have all expired).
    fn flush(&self, now: i64) -> Result<Option<i64>> {
        let rows = self.log.borrow_mut().take_unsaved();
        // Without a known window (an object woken only by its alarm), every
        // stored row predates the alarm, which fires one window after them.
        let window = self.window_ms.get().unwrap_or(0);
        self.log.borrow_mut().prune(now - window);
        self.sql.exec(
            "CREATE TABLE IF NOT EXISTS hits (bucket TEXT NOT NULL, at INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS hits_bucket_at ON hits (bucket, at);",
            None,
        )?;
        for (bucket, at) in &rows {
            self.sql.exec(
                "INSERT INTO hits (bucket, at) VALUES (?, ?)",
                vec![bucket.as_str().into(), (*at).into()],
            )?;
        }
        self.sql.exec(
            "DELETE FROM hits WHERE at <= ?",
            vec![(now - window).into()],
        )?;
        Ok((!rows.is_empty()).then_some(window))
    }
}

/// Saves the queued rows after [`FLUSH_AFTER`], then moves the cleanup alarm.
async fn flush_later(shared: Rc<Shared>, storage: Storage) {
    worker::Delay::from(FLUSH_AFTER).await;
    shared.flush_scheduled.set(false);
    match shared.flush(now_ms()) {
        Ok(Some(alarm_in)) => {
            if let Err(e) = storage.set_alarm(alarm_in).await {
                console_error!("rate limiter: cannot set its cleanup alarm: {e}");
            }
        }
        Ok(None) => {}
        Err(e) => console_error!("rate limiter: cannot save its log (counts kept in memory): {e}"),
    }
}

/// The buckets and window named in a `/check` URL.
fn parse_check(url: &worker::Url) -> (i64, Vec<Check>) {
    let mut window_ms: i64 = 60_000;
    let mut checks = Vec::new();
    for (key, value) in url.query_pairs() {
        match key.as_ref() {
            "window_ms" => window_ms = value.parse().unwrap_or(60_000).clamp(1_000, 3_600_000),
            "bucket" => {
                if let Some((bucket, limit)) = value.split_once(':') {
                    if let Ok(limit) = limit.parse() {
                        checks.push(Check {
                            bucket: bucket.to_string(),
                            limit,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    (window_ms, checks)
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        let rows = load(&sql).unwrap_or_else(|e| {
            console_error!("rate limiter: cannot read its saved log, starting empty: {e}");
            Vec::new()
        });
        let shared = Rc::new(Shared {
            sql,
            log: RefCell::new(Log::from_rows(rows)),
            window_ms: Cell::new(None),
            flush_scheduled: Cell::new(false),
        });
        Self {
            state,
            shared,
            streams: RefCell::default(),
        }
    }

    /// `GET /check?window_ms=N&bucket=NAME:LIMIT&bucket=…` → a `Decision`;
    /// `GET /streams?lease=ID&max=N` takes or renews an event stream's
    /// lease (204, or 429 when `max` are live), `&close=1` gives it back.
    async fn fetch(&self, req: Request) -> Result<Response> {
        let url = req.url()?;
        if url.path() == "/streams" {
            let q = |name: &str| {
                url.query_pairs()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            let (lease, max) = (q("lease"), q("max").parse().unwrap_or(0));
            let mut streams = self.streams.borrow_mut();
            let granted = if q("close").is_empty() {
                streams.open(&lease, max, now_ms())
            } else {
                streams.close(&lease);
                true
            };
            return Ok(Response::empty()?.with_status(if granted { 204 } else { 429 }));
        }
        let (window_ms, checks) = parse_check(&url);
        self.shared.window_ms.set(Some(window_ms));
        let decision = self
            .shared
            .log
            .borrow_mut()
            .admit(&checks, now_ms(), window_ms);
        if decision.allowed && !self.shared.flush_scheduled.replace(true) {
            let storage = self.state.storage();
            self.state
                .wait_until(flush_later(self.shared.clone(), storage));
        }
        Response::from_json(&decision)
    }

    /// One window after the last batch: saves anything queued and deletes
    /// what can no longer count.
    async fn alarm(&self) -> Result<Response> {
        if let Some(alarm_in) = self.shared.flush(now_ms())? {
            self.state.storage().set_alarm(alarm_in).await?;
        }
        Response::empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_urls_are_parsed_and_the_window_clamped() {
        let url = |q: &str| worker::Url::parse(&format!("https://x/check?{q}")).expect("url");
        let (window, checks) = parse_check(&url("window_ms=3000&bucket=standard:10&bucket=ai:3"));
        assert_eq!(window, 3_000);
        assert_eq!(
            checks
                .iter()
                .map(|c| (c.bucket.as_str(), c.limit))
                .collect::<Vec<_>>(),
            [("standard", 10), ("ai", 3)]
        );
        assert_eq!(parse_check(&url("window_ms=5")).0, 1_000);
        assert_eq!(parse_check(&url("window_ms=x")).0, 60_000);
        assert!(parse_check(&url("bucket=standard&bucket=ai:many"))
            .1
            .is_empty());
    }
}
