//! Property-based tests (proptest) of everything that reads input the
//! service does not control: the upstream stream decoders and our event
//! encoder (arbitrary bytes, arbitrary chunk splits, unicode), the request
//! validators (arbitrary JSON, huge numbers, deep nesting, arbitrary header
//! and query text), credentials, pagination cursors and the context window.
//!
//! The properties: nothing panics; a stream decodes to the same events
//! however it is split into chunks; an error is well-formed (a 4xx/5xx
//! status, an envelope type and a non-empty message, every 422 naming its
//! fields); what an encoder writes decodes back to what it was given.
//!
//! Case counts are small ([`CASES`]) so the whole unit run stays fast;
//! `PROPTEST_CASES=N` raises them for a longer local run.

mod auth;
mod bodies;
mod sse;
mod strategies;
mod window;

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::http::ApiError;

/// Cases per property unless `PROPTEST_CASES` says otherwise.
pub const CASES: u32 = 64;

/// The configuration every property here runs with: [`CASES`] cases (or
/// `PROPTEST_CASES`), no failure files written (a failure found becomes a
/// named regression test instead).
pub fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Checks that `e` is an error a client can act on: a status in `allowed`,
/// an envelope with `type:"error"`, a non-empty `error.type` and message,
/// and, on a 422, a non-empty list of fields each with a message.
pub fn well_formed(e: &ApiError, allowed: &[u16]) -> Result<(), TestCaseError> {
    let status = e.status();
    prop_assert!(allowed.contains(&status), "status {status} for {e:?}");
    let envelope = serde_json::to_value(e.envelope("req-1"))
        .map_err(|err| TestCaseError::fail(format!("envelope not serialisable: {err}")))?;
    prop_assert_eq!(&envelope["type"], "error");
    prop_assert_eq!(&envelope["request_id"], "req-1");
    let kind = envelope["error"]["type"].as_str().unwrap_or_default();
    prop_assert!(!kind.is_empty(), "no error.type: {envelope}");
    let message = envelope["error"]["message"].as_str().unwrap_or_default();
    prop_assert!(!message.trim().is_empty(), "no message: {envelope}");
    if let ApiError::Validation(details) = e {
        prop_assert!(!details.is_empty());
        for d in details {
            prop_assert!(!d.field.is_empty() && !d.message.is_empty(), "{d:?}");
        }
        prop_assert_eq!(
            envelope["error"]["details"].as_array().map(Vec::len),
            Some(details.len())
        );
    }
    Ok(())
}
