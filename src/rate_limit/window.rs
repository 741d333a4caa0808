//! The sliding-window decision, as a pure function.
//!
//! The limiter keeps a **sliding-window log**: one timestamp per admitted
//! request, per bucket, for the last window. A request is admitted when
//! every bucket it counts against has fewer than its limit of timestamps in
//! the window. Chosen over the two-bucket weighted counter because it is
//! exact (no burst of up to 2× the limit at window edges, no estimate), and
//! its cost is bounded: at most `limit` rows per bucket are ever kept.

use serde::{Deserialize, Serialize};

/// One limit a request counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Bucket name, e.g. `standard` or `ai`.
    pub bucket: String,
    /// Requests allowed per window.
    pub limit: u32,
}

/// What the log holds for a bucket right now (inside the window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Admitted requests in the window.
    pub count: u32,
    /// Time of the oldest of them, in ms.
    pub oldest_ms: Option<i64>,
}

/// The limiter's answer, reported in the `X-RateLimit-*` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// The limit of the bucket reported (the tightest one).
    pub limit: u32,
    /// Requests left in that bucket after this one.
    pub remaining: u32,
    /// Seconds until that bucket frees a slot.
    pub reset_secs: u64,
}

impl Decision {
    /// The headers every limited response carries; `Retry-After` on refusals.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("X-RateLimit-Limit", self.limit.to_string()),
            ("X-RateLimit-Remaining", self.remaining.to_string()),
            ("X-RateLimit-Reset", self.reset_secs.to_string()),
        ];
        if !self.allowed {
            h.push(("Retry-After", self.reset_secs.to_string()));
        }
        h
    }
}

/// Decides one request against every bucket it counts against.
pub fn decide(checks: &[(Check, Usage)], now_ms: i64, window_ms: i64) -> Decision {
    let allowed = checks.iter().all(|(c, u)| u.count < c.limit);
    let secs_until = |at_ms: i64| -> u64 {
        let ms = (at_ms + window_ms - now_ms).max(0);
        u64::try_from(ms).unwrap_or(0).div_ceil(1000).max(1)
    };
    let mut best: Option<Decision> = None;
    for (check, usage) in checks {
        let used = usage.count + u32::from(allowed);
        let remaining = check.limit.saturating_sub(used);
        // The slot that frees next is the oldest hit's (or this request's).
        let reset_secs = secs_until(usage.oldest_ms.unwrap_or(now_ms));
        let candidate = Decision {
            allowed,
            limit: check.limit,
            remaining,
            reset_secs,
        };
        let refused_here = usage.count >= check.limit;
        best = match best {
            None => Some(candidate),
            Some(b) if refused_here && b.remaining > 0 => Some(candidate),
            Some(b) if candidate.remaining < b.remaining => Some(candidate),
            keep => keep,
        };
    }
    best.unwrap_or(Decision {
        allowed: true,
        limit: 0,
        remaining: 0,
        reset_secs: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: i64 = 60_000;

    fn check(bucket: &str, limit: u32) -> Check {
        Check {
            bucket: bucket.into(),
            limit,
        }
    }

    fn usage(count: u32, oldest_ms: Option<i64>) -> Usage {
        Usage { count, oldest_ms }
    }

    #[test]
    fn under_the_limit_is_allowed_and_counts_itself() {
        let d = decide(&[(check("standard", 60), usage(0, None))], 1_000, W);
        assert_eq!(
            d,
            Decision {
                allowed: true,
                limit: 60,
                remaining: 59,
                reset_secs: 60
            }
        );
        let d = decide(&[(check("standard", 60), usage(59, Some(0)))], 30_000, W);
        assert!(d.allowed);
        assert_eq!((d.remaining, d.reset_secs), (0, 30));
    }

    #[test]
    fn at_the_limit_is_refused_with_retry_after() {
        let d = decide(&[(check("standard", 3), usage(3, Some(10_000)))], 40_500, W);
        assert!(!d.allowed);
        assert_eq!((d.remaining, d.reset_secs), (0, 30));
        assert!(d.headers().contains(&("Retry-After", "30".into())));
    }

    #[test]
    fn the_tightest_bucket_is_reported() {
        let d = decide(
            &[
                (check("standard", 60), usage(5, Some(0))),
                (check("ai", 10), usage(8, Some(1_000))),
            ],
            2_000,
            W,
        );
        assert!(d.allowed);
        assert_eq!((d.limit, d.remaining), (10, 1));
    }

    #[test]
    fn a_full_ai_bucket_refuses_even_with_standard_room() {
        let d = decide(
            &[
                (check("standard", 60), usage(5, Some(0))),
                (check("ai", 10), usage(10, Some(1_000))),
            ],
            2_000,
            W,
        );
        assert!(!d.allowed);
        assert_eq!((d.limit, d.remaining, d.reset_secs), (10, 0, 59));
    }

    #[test]
    fn reset_is_at_least_one_second() {
        let d = decide(&[(check("s", 1), usage(1, Some(0)))], 59_999, W);
        assert_eq!(d.reset_secs, 1);
    }
}
