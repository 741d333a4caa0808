//! The limiter's in-memory log: authoritative while its object lives.
//!
//! The object decides every request from this log, synchronously, so two
//! requests can never both take the last slot of a bucket. Admitted
//! requests are also queued as *unsaved* rows, which the object writes to
//! its SQLite table a moment later (see `object.rs`); when the object starts
//! again, the log is rebuilt from that table.

use std::collections::HashMap;

use super::window::{decide, Check, Decision, Usage};

/// One admitted request in one bucket, as stored: `(bucket, at_ms)`.
pub type Row = (String, i64);

/// Timestamps of the admitted requests, per bucket, plus the rows not yet
/// written to storage.
#[derive(Debug, Default)]
pub struct Log {
    hits: HashMap<String, Vec<i64>>,
    unsaved: Vec<Row>,
}

impl Log {
    /// The log as stored (rows already saved: nothing is queued).
    pub fn from_rows(rows: impl IntoIterator<Item = Row>) -> Self {
        let mut log = Self::default();
        for (bucket, at) in rows {
            log.hits.entry(bucket).or_default().push(at);
        }
        log
    }

    /// Decides one request against `checks` at `now_ms` and, when it is
    /// admitted, records it in every bucket (and queues the rows to save).
    pub fn admit(&mut self, checks: &[Check], now_ms: i64, window_ms: i64) -> Decision {
        let cutoff = now_ms - window_ms;
        let counted: Vec<(Check, Usage)> = checks
            .iter()
            .map(|check| {
                let times = self.hits.entry(check.bucket.clone()).or_default();
                times.retain(|&at| at > cutoff);
                let usage = Usage {
                    count: u32::try_from(times.len()).unwrap_or(u32::MAX),
                    oldest_ms: times.iter().min().copied(),
                };
                (check.clone(), usage)
            })
            .collect();
        let decision = decide(&counted, now_ms, window_ms);
        if decision.allowed {
            for check in checks {
                self.hits
                    .entry(check.bucket.clone())
                    .or_default()
                    .push(now_ms);
                self.unsaved.push((check.bucket.clone(), now_ms));
            }
        }
        self.hits.retain(|_, times| !times.is_empty());
        decision
    }

    /// Forgets every timestamp at or before `cutoff_ms` (they no longer
    /// count in any window ending now).
    pub fn prune(&mut self, cutoff_ms: i64) {
        self.hits.retain(|_, times| {
            times.retain(|&at| at > cutoff_ms);
            !times.is_empty()
        });
    }

    /// Hands over the rows admitted since the last call, to be saved.
    pub fn take_unsaved(&mut self) -> Vec<Row> {
        std::mem::take(&mut self.unsaved)
    }

    /// Number of timestamps held for `bucket`.
    pub fn count(&self, bucket: &str) -> usize {
        self.hits.get(bucket).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: i64 = 3_000;

    fn checks(spec: &[(&str, u32)]) -> Vec<Check> {
        spec.iter()
            .map(|&(bucket, limit)| Check {
                bucket: bucket.into(),
                limit,
            })
            .collect()
    }

    #[test]
    fn admits_up_to_the_limit_then_refuses() {
        let mut log = Log::default();
        let c = checks(&[("standard", 3)]);
        let remaining: Vec<u32> = (0..3)
            .map(|i| {
                let d = log.admit(&c, 1_000 + i, W);
                assert!(d.allowed, "request {i}");
                d.remaining
            })
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = log.admit(&c, 1_500, W);
        assert!(!refused.allowed);
        // Refusals are not recorded: three rows, all queued for storage.
        assert_eq!(log.count("standard"), 3);
        assert_eq!(log.take_unsaved().len(), 3);
        assert!(log.take_unsaved().is_empty(), "handed over only once");
    }

    #[test]
    fn the_window_slides() {
        let mut log = Log::default();
        let c = checks(&[("standard", 2)]);
        assert!(log.admit(&c, 0, W).allowed);
        assert!(log.admit(&c, 1_000, W).allowed);
        assert!(!log.admit(&c, 2_999, W).allowed);
        // At W the first hit is exactly one window old and no longer counts.
        let d = log.admit(&c, W, W);
        assert!(d.allowed);
        assert_eq!((d.remaining, d.reset_secs), (0, 1));
        assert!(!log.admit(&c, W + 500, W).allowed);
    }

    #[test]
    fn a_send_counts_in_both_buckets_or_neither() {
        let mut log = Log::default();
        let send = checks(&[("standard", 5), ("ai", 1)]);
        assert!(log.admit(&send, 10, W).allowed);
        assert!(!log.admit(&send, 20, W).allowed);
        assert_eq!((log.count("standard"), log.count("ai")), (1, 1));
        let d = log.admit(&checks(&[("standard", 5)]), 30, W);
        assert_eq!((d.allowed, d.remaining), (true, 3));
    }

    #[test]
    fn a_rebuilt_log_keeps_counting_where_the_stored_one_stopped() {
        let mut before = Log::default();
        let c = checks(&[("standard", 4)]);
        for at in [100, 200, 300] {
            assert!(before.admit(&c, at, W).allowed);
        }
        let mut after = Log::from_rows(before.take_unsaved());
        assert!(
            after.take_unsaved().is_empty(),
            "stored rows are not saved again"
        );
        let d = after.admit(&c, 400, W);
        assert_eq!((d.allowed, d.remaining), (true, 0));
        assert!(!after.admit(&c, 500, W).allowed);
        // Rows past the window (e.g. stored long ago) do not count.
        let mut stale = Log::from_rows([("standard".to_string(), 100)]);
        assert_eq!(stale.admit(&c, 100 + W, W).remaining, 3);
    }

    #[test]
    fn pruning_drops_only_expired_timestamps() {
        let mut log = Log::from_rows([
            ("standard".to_string(), 100),
            ("standard".to_string(), 900),
            ("ai".to_string(), 200),
        ]);
        log.prune(500);
        assert_eq!((log.count("standard"), log.count("ai")), (1, 0));
    }
}
