//! Per-user and per-IP rate limits, kept in a Durable Object.

pub mod client;
pub mod log;
pub mod object;
pub mod window;

use crate::app::Route;
use crate::http::context::RequestContext;
use crate::http::ApiError;
use crate::runtime::now_ms;
use client::Kind;

/// Which limits a route counts against.
pub fn kind_of(route: Route) -> Kind {
    match route {
        Route::Register | Route::Login | Route::Refresh => Kind::Auth,
        Route::SendMessage | Route::StreamMessage => Kind::Ai,
        _ => Kind::Standard,
    }
}

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
    rc.response_headers.borrow_mut().extend(decision.headers());
    rc.timing("ratelimit", took, None);
    if decision.allowed {
        Ok(())
    } else {
        Err(ApiError::RateLimited {
            retry_after: decision.reset_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_count_against_their_limits() {
        for route in [Route::Register, Route::Login, Route::Refresh] {
            assert_eq!(kind_of(route), Kind::Auth);
        }
        for route in [Route::SendMessage, Route::StreamMessage] {
            assert_eq!(kind_of(route), Kind::Ai);
        }
        for route in [Route::Me, Route::ListConversations, Route::Logout] {
            assert_eq!(kind_of(route), Kind::Standard);
        }
    }
}
