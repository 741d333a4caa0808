//! Per-user and per-IP rate limits, kept in a Durable Object.

pub mod client;
pub mod log;
pub mod object;
pub mod streams;
pub mod window;

use worker::Request;

use crate::http::context::RequestContext;
use crate::http::request::header;
use crate::http::ApiError;
use crate::runtime::now_ms;
use client::Kind;

/// Counts the request against `key`'s limits, records the headers for the
/// response (with the limiter's round trip as `Server-Timing: ratelimit`),
/// and refuses with 429 when a limit is reached.
pub async fn enforce(rc: &RequestContext, key: &str, kind: Kind) -> Result<(), ApiError> {
    let started = now_ms();
    let counted = client::count(&rc.env, rc.config, key, kind).await;
    let took = now_ms().saturating_sub(started);
    let Some(decision) = counted? else {
        return Ok(());
    };
    if !decision.allowed || kind.reports_admission() {
        rc.response_headers.borrow_mut().extend(decision.headers());
    }
    rc.timing("ratelimit", took, None);
    match (decision.allowed, kind) {
        (true, _) => Ok(()),
        (false, Kind::Login) => Err(ApiError::TooManyLogins {
            retry_after: decision.reset_secs,
        }),
        (false, _) => Err(ApiError::RateLimited {
            retry_after: decision.reset_secs,
        }),
    }
}

/// The limiter key of the client's IP (`CF-Connecting-IP`).
pub fn ip_key(req: &Request) -> String {
    let ip = header(req, "CF-Connecting-IP").unwrap_or_else(|| "unknown".into());
    format!("ip:{ip}")
}
