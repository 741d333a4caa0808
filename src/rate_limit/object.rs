//! The `RateLimiter` Durable Object: one instance per principal
//! (`user:<id>` or `ip:<addr>`), a SQLite log of admitted requests.
//!
//! One request to the object decides and records atomically: SQLite calls
//! are synchronous, so no other request to the same object runs between the
//! count and the insert. Rows older than the window are deleted on every
//! access, and an alarm one window after the last access deletes the rest,
//! so storage never grows with traffic.

use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorage, State};

use super::window::{decide, Check, Usage};

/// The Durable Object class (binding `RATE_LIMITER`).
#[durable_object]
pub struct RateLimiter {
    state: State,
    sql: SqlStorage,
}

#[derive(Deserialize)]
struct Counted {
    n: u32,
    oldest: Option<i64>,
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        let sql = state.storage().sql();
        if let Err(e) = sql.exec(
            "CREATE TABLE IF NOT EXISTS hits (bucket TEXT NOT NULL, at INTEGER NOT NULL);
             CREATE INDEX IF NOT EXISTS hits_bucket_at ON hits (bucket, at);",
            None,
        ) {
            worker::console_error!("rate limiter: cannot create its table: {e}");
        }
        Self { state, sql }
    }

    /// `GET /check?window_ms=N&bucket=NAME:LIMIT&bucket=…` → a `Decision`.
    async fn fetch(&self, req: Request) -> Result<Response> {
        let url = req.url()?;
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
        let now = worker::Date::now().as_millis() as i64;
        self.sql.exec(
            "DELETE FROM hits WHERE at <= ?",
            vec![(now - window_ms).into()],
        )?;
        let mut counted = Vec::with_capacity(checks.len());
        for check in checks {
            let c: Counted = self
                .sql
                .exec(
                    "SELECT count(*) AS n, min(at) AS oldest FROM hits WHERE bucket = ?",
                    vec![check.bucket.as_str().into()],
                )?
                .one()?;
            counted.push((
                check,
                Usage {
                    count: c.n,
                    oldest_ms: c.oldest,
                },
            ));
        }
        let decision = decide(&counted, now, window_ms);
        if decision.allowed {
            for (check, _) in &counted {
                self.sql.exec(
                    "INSERT INTO hits (bucket, at) VALUES (?, ?)",
                    vec![check.bucket.as_str().into(), now.into()],
                )?;
            }
        }
        self.state.storage().set_alarm(window_ms).await?;
        Response::from_json(&decision)
    }

    /// One window after the last access: nothing in the log can still count.
    async fn alarm(&self) -> Result<Response> {
        self.sql.exec("DELETE FROM hits", None)?;
        Response::empty()
    }
}
