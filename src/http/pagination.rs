//! Cursor pagination: `limit` parsing and opaque cursors.
//!
//! A cursor is the sort key of the last item of a page, base64url-encoded
//! with a version tag, so clients treat it as opaque and the format can
//! change. Keyset cursors stay stable when rows are inserted between pages.

use base64ct::{Base64UrlUnpadded, Encoding};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::error::{ApiError, FieldError};

/// Items per page when `limit` is absent.
pub const DEFAULT_LIMIT: i64 = 20;
/// Largest `limit`.
pub const MAX_LIMIT: i64 = 100;

/// Parses `limit`: an integer from 1 to 100 (422 otherwise), default 20.
pub fn parse_limit(raw: Option<&str>) -> Result<i64, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    match raw.trim().parse::<i64>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::Validation(vec![FieldError::new(
            "limit",
            "must be an integer from 1 to 100",
        )])),
    }
}

fn bad_cursor() -> ApiError {
    ApiError::InvalidRequest("cursor is not valid; use next_cursor from a previous page".into())
}

fn decode(raw: &str) -> Result<String, ApiError> {
    let bytes = Base64UrlUnpadded::decode_vec(raw.trim()).map_err(|_| bad_cursor())?;
    String::from_utf8(bytes).map_err(|_| bad_cursor())
}

/// Cursor after an item sorted by `(updated_at, id)`.
pub fn time_cursor(at: &DateTime<Utc>, id: &Uuid) -> String {
    Base64UrlUnpadded::encode_string(format!("t1:{}:{id}", at.timestamp_micros()).as_bytes())
}

/// Reads a [`time_cursor`].
pub fn parse_time_cursor(raw: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let text = decode(raw)?;
    let mut parts = text.splitn(3, ':');
    let (Some("t1"), Some(micros), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad_cursor());
    };
    let micros: i64 = micros.parse().map_err(|_| bad_cursor())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(bad_cursor)?;
    let id = Uuid::parse_str(id).map_err(|_| bad_cursor())?;
    Ok((at, id))
}

/// Cursor after an item with sequence number `seq`.
pub fn seq_cursor(seq: i64) -> String {
    Base64UrlUnpadded::encode_string(format!("s1:{seq}").as_bytes())
}

/// Reads a [`seq_cursor`].
pub fn parse_seq_cursor(raw: &str) -> Result<i64, ApiError> {
    decode(raw)?
        .strip_prefix("s1:")
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad_cursor)
}

/// Splits a fetch of `limit + 1` rows into the page and whether more exist.
pub fn split_page<T>(mut rows: Vec<T>, limit: i64) -> (Vec<T>, bool) {
    let limit = usize::try_from(limit).unwrap_or(0);
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    (rows, has_more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None).unwrap(), 20);
        assert_eq!(parse_limit(Some("1")).unwrap(), 1);
        assert_eq!(parse_limit(Some("100")).unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", "", "1.5", "99999999999999999999"] {
            assert_eq!(parse_limit(Some(bad)).unwrap_err().status(), 422, "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip() {
        let at = DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        let id = Uuid::new_v4();
        assert_eq!(parse_time_cursor(&time_cursor(&at, &id)).unwrap(), (at, id));
        assert_eq!(parse_seq_cursor(&seq_cursor(42)).unwrap(), 42);
    }

    #[test]
    fn malformed_cursors_are_400() {
        for bad in ["", "!!", "dDE6", "czE6eA", "not base64 at all"] {
            assert_eq!(parse_time_cursor(bad).unwrap_err().status(), 400, "{bad}");
            assert_eq!(parse_seq_cursor(bad).unwrap_err().status(), 400, "{bad}");
        }
        let seq = seq_cursor(5);
        assert!(parse_time_cursor(&seq).is_err(), "kinds do not mix");
    }

    #[test]
    fn pages_split() {
        assert_eq!(split_page(vec![1, 2, 3], 2), (vec![1, 2], true));
        assert_eq!(split_page(vec![1, 2], 2), (vec![1, 2], false));
    }
}
