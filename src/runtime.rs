//! Small helpers over the Workers runtime: timeouts and the clock.

use std::future::Future;
use std::time::Duration;

use futures::future::{select, Either};
use worker::Delay;

/// Runs `fut`, giving up after `limit`; `None` means the time ran out.
pub async fn timeout<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    let fut = std::pin::pin!(fut);
    let delay = std::pin::pin!(Delay::from(limit));
    match select(fut, delay).await {
        Either::Left((out, _)) => Some(out),
        Either::Right(_) => None,
    }
}

/// Yields to the runtime's event loop (a zero-delay timer), so that I/O such
/// as writing a response stream can run between bursts of work that would
/// otherwise complete as one chain of microtasks.
pub async fn yield_now() {
    Delay::from(Duration::ZERO).await;
}

/// Milliseconds since the Unix epoch, from the JS clock.
pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

/// The current time as a UTC timestamp, from the JS clock.
pub fn now_utc() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(now_ms() as i64).unwrap_or_default()
}
