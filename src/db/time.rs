//! Timestamps as the API shows them: RFC 3339 UTC with milliseconds.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats a database timestamp for a response body.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Formats an optional timestamp (`null` when absent).
pub fn rfc3339_opt(t: &Option<DateTime<Utc>>) -> Option<String> {
    t.as_ref().map(rfc3339)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_z_and_millis() {
        let t = DateTime::from_timestamp(1_800_000_000, 5_000_000).unwrap();
        assert_eq!(rfc3339(&t), "2027-01-15T08:00:00.005Z");
        assert_eq!(rfc3339_opt(&None), None);
    }
}
