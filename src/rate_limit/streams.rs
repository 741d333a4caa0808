//! The open event streams of one user, as leases the user's limiter object
//! holds in memory (pure). A stream takes a lease when it opens, renews it
//! while it lives and gives it back when it ends; a lease not renewed
//! within [`LEASE_MS`] (a stream whose worker died) lapses by itself.

/// How long a lease lives without renewal.
pub const LEASE_MS: i64 = 90_000;
/// How often a live stream renews its lease.
pub const RENEW_EVERY_MS: u64 = 30_000;

/// Live leases: (lease id, expiry in ms).
#[derive(Debug, Default)]
pub struct Leases {
    held: Vec<(String, i64)>,
}

impl Leases {
    /// Takes (or renews) lease `id` if fewer than `max` others are live.
    pub fn open(&mut self, id: &str, max: usize, now: i64) -> bool {
        self.held.retain(|(_, until)| *until > now);
        if let Some(lease) = self.held.iter_mut().find(|(held, _)| held == id) {
            lease.1 = now + LEASE_MS;
            return true;
        }
        if self.held.len() >= max {
            return false;
        }
        self.held.push((id.to_string(), now + LEASE_MS));
        true
    }

    /// Gives lease `id` back.
    pub fn close(&mut self, id: &str) {
        self.held.retain(|(held, _)| held != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_leases_live_at_once() {
        let mut l = Leases::default();
        assert!(l.open("a", 2, 0));
        assert!(l.open("b", 2, 0));
        assert!(!l.open("c", 2, 0), "full");
        assert!(l.open("a", 2, 10), "a renewal is not a new stream");
        l.close("b");
        assert!(l.open("c", 2, 10));
    }

    #[test]
    fn leases_not_renewed_lapse() {
        let mut l = Leases::default();
        assert!(l.open("a", 1, 0));
        assert!(!l.open("b", 1, LEASE_MS - 1));
        assert!(l.open("b", 1, LEASE_MS));
    }
}
