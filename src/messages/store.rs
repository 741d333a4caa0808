//! Storing a finished answer through a short database outage: the call is
//! tried again, with a bounded backoff, while the database is unreachable
//! or the connection is lost ([`ApiError::Unavailable`]), for at most
//! [`RETRY_WINDOW`]. Each try opens a new connection. Trying again is safe
//! because `api.send_finish` is idempotent per send (a first try that
//! committed but whose reply was lost is not stored twice).

use std::future::Future;
use std::time::Duration;

use worker::{console_warn, Delay, Env};

use crate::db::{self, Db, Transport};
use crate::http::ApiError;
use crate::runtime::now_ms;

/// How long storing an answer keeps trying after its first failure: well
/// inside the 30 s the platform lets `wait_until` work run after the client
/// has gone.
pub const RETRY_WINDOW: Duration = Duration::from_secs(10);

/// The wait before try `n + 1` after `n` failed tries (1-based): 250 ms,
/// doubling, at most 2 s.
pub fn backoff(failed_tries: u32) -> Duration {
    let doubled = 250u64.saturating_mul(1 << failed_tries.saturating_sub(1).min(8));
    Duration::from_millis(doubled.min(2_000))
}

/// Whether a failure is the database being out of reach (worth another
/// try), rather than a refusal that would repeat.
fn retryable(e: &ApiError) -> bool {
    matches!(e, ApiError::Unavailable(_))
}

/// Runs `work` with a fresh connection until it succeeds, fails for a
/// reason other than the database being unreachable, or [`RETRY_WINDOW`]
/// has passed since the first failure (then the last failure is returned).
pub async fn retrying<T, F, Fut>(
    env: &Env,
    transport: &'static Transport,
    what: &str,
    mut work: F,
) -> Result<T, ApiError>
where
    F: FnMut(Db) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let mut failed = 0u32;
    let mut first_failure = None;
    loop {
        let result = db::with_db(env, transport, &mut work).await;
        let e = match result {
            Err(e) if retryable(&e) => e,
            done => return done,
        };
        failed += 1;
        let since = *first_failure.get_or_insert_with(now_ms);
        let wait = backoff(failed);
        let spent = Duration::from_millis(now_ms().saturating_sub(since));
        if spent + wait > RETRY_WINDOW {
            console_warn!("{what}: giving up after {failed} tries in {spent:?}: {e:?}");
            return Err(e);
        }
        console_warn!("{what}: try {failed} failed ({e:?}); again in {wait:?}");
        Delay::from(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_two_seconds() {
        let waits: Vec<u64> = (1..=7).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 2000, 2000, 2000]);
        assert_eq!(backoff(u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn the_waits_fit_the_window_several_times() {
        let mut total = Duration::ZERO;
        let mut tries = 0;
        while total + backoff(tries + 1) <= RETRY_WINDOW {
            tries += 1;
            total += backoff(tries);
        }
        assert!(tries >= 6, "only {tries} tries in the window");
        assert!(total <= RETRY_WINDOW);
    }

    #[test]
    fn only_an_unreachable_database_is_tried_again() {
        assert!(retryable(&ApiError::Unavailable("x".into())));
        assert!(!retryable(&ApiError::Internal("x".into())));
        assert!(!retryable(&ApiError::TimedOut("x".into())));
        assert!(!retryable(&ApiError::NotFound("x".into())));
    }
}
