//! Request bodies: `Content-Type` and size checks, JSON parsing, and a
//! small field reader that collects every validation problem at once.
//!
//! Unknown fields are ignored (like most JSON APIs, so clients can send
//! fields a newer version understands).

use futures::{Stream, StreamExt};
use serde_json::{Map, Value};

use super::error::{ApiError, FieldError};

/// Largest accepted body (1 MiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Checks the `Content-Type` and a declared `Content-Length` before reading.
pub fn check_headers(
    content_type: Option<&str>,
    content_length: Option<&str>,
) -> Result<(), ApiError> {
    if let Some(len) = content_length.and_then(|l| l.trim().parse::<u64>().ok()) {
        if len > MAX_BODY_BYTES as u64 {
            return Err(ApiError::TooLarge);
        }
    }
    let is_json = content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if is_json {
        Ok(())
    } else {
        Err(ApiError::InvalidRequest(
            "Content-Type must be application/json".into(),
        ))
    }
}

/// Collects a body from its chunks, giving up with 413 as soon as more than
/// [`MAX_BODY_BYTES`] have arrived — whatever the framing (a chunked body
/// has no `Content-Length` to check up front), so no more than the cap plus
/// one chunk is ever held.
pub async fn collect_capped<S, E>(mut chunks: S) -> Result<Vec<u8>, ApiError>
where
    S: Stream<Item = Result<Vec<u8>, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut body = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::InvalidRequest(format!("cannot read the body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Parses a body that must be a JSON object. No string in it (key or
/// value) may contain U+0000: PostgreSQL text cannot hold it, so such a
/// body could never be stored (400 rather than a failed write).
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::TooLarge);
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) if has_nul(&value) => Err(ApiError::InvalidRequest(
            "strings must not contain the NUL character (\\u0000)".into(),
        )),
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::InvalidRequest(
            "the body must be a JSON object".into(),
        )),
        Err(e) => Err(ApiError::InvalidRequest(format!("malformed JSON: {e}"))),
    }
}

/// Whether any string in `value` (object keys included) contains U+0000.
/// Recursion is bounded by serde_json's nesting limit (128).
fn has_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}

/// Reads fields out of a JSON object, remembering every problem.
pub struct Fields {
    map: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Fields {
    /// Wraps a parsed object.
    pub fn new(map: Map<String, Value>) -> Self {
        Fields {
            map,
            errors: Vec::new(),
        }
    }

    /// Records a problem with `field`.
    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Removes and returns a field's raw value (`Some(Null)` for an explicit null).
    pub fn take(&mut self, field: &str) -> Option<Value> {
        self.map.remove(field)
    }

    /// Whether no problem has been recorded so far.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
    }

    /// A required string; `None` (and a recorded error) when missing or not a string.
    pub fn required_str(&mut self, field: &str) -> Option<String> {
        match self.map.remove(field) {
            Some(Value::String(s)) => Some(s),
            None | Some(Value::Null) => {
                self.error(field, "is required");
                None
            }
            Some(_) => {
                self.error(field, "must be a string");
                None
            }
        }
    }

    /// An optional string: `Ok(None)` when absent or null.
    pub fn optional_str(&mut self, field: &str) -> Option<String> {
        match self.map.remove(field) {
            Some(Value::String(s)) => Some(s),
            None | Some(Value::Null) => None,
            Some(_) => {
                self.error(field, "must be a string");
                None
            }
        }
    }

    /// Finishes: the value built by `build` when no problem was recorded,
    /// else a 422 listing them all.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, ApiError> {
        match value {
            Some(v) if self.errors.is_empty() => Ok(v),
            _ if self.errors.is_empty() => Err(ApiError::Validation(vec![FieldError::new(
                "body",
                "is invalid",
            )])),
            _ => Err(ApiError::Validation(self.errors)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        match v {
            Value::Object(m) => Fields::new(m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn content_type_must_be_json() {
        assert!(check_headers(Some("application/json"), None).is_ok());
        assert!(check_headers(Some("Application/JSON; charset=utf-8"), None).is_ok());
        for bad in [None, Some("text/plain"), Some("application/jsonx")] {
            assert_eq!(check_headers(bad, None).unwrap_err().status(), 400);
        }
    }

    #[test]
    fn declared_length_over_the_limit_is_413() {
        let err = check_headers(Some("application/json"), Some("1048577")).unwrap_err();
        assert_eq!(err.status(), 413);
        assert!(check_headers(Some("application/json"), Some("1048576")).is_ok());
    }

    #[test]
    fn bodies_must_be_objects() {
        assert!(parse_object(br#"{"a":1}"#).is_ok());
        for bad in [&b"[]"[..], b"\"x\"", b"{", b"", b"null"] {
            assert_eq!(parse_object(bad).unwrap_err().status(), 400);
        }
        assert_eq!(
            parse_object(&vec![b' '; MAX_BODY_BYTES + 1])
                .unwrap_err()
                .status(),
            413
        );
    }

    #[test]
    fn nul_characters_are_refused_anywhere_in_the_body() {
        for bad in [
            &br#"{"title":"a\u0000b"}"#[..],
            br#"{"metadata":{"k\u0000":"v"}}"#,
            br#"{"x":[{"y":["\u0000"]}]}"#,
            br#"{"\u0000":1}"#,
        ] {
            let err = parse_object(bad).unwrap_err();
            assert_eq!(err.status(), 400, "{}", String::from_utf8_lossy(bad));
            assert!(err.public_message().contains("NUL"));
        }
        // Other control characters are stored as they are.
        assert!(parse_object(br#"{"title":"a\u0001\u001fb","n":0}"#).is_ok());
    }

    /// A stream of `n` chunks of `size` bytes that counts how many were pulled.
    fn counted_chunks(
        n: usize,
        size: usize,
        pulled: &std::cell::Cell<usize>,
    ) -> impl Stream<Item = Result<Vec<u8>, String>> + Unpin + '_ {
        futures::stream::iter((0..n).map(move |_| {
            pulled.set(pulled.get() + 1);
            Ok(vec![b' '; size])
        }))
    }

    #[tokio::test]
    async fn streamed_bodies_stop_at_the_cap() {
        let pulled = std::cell::Cell::new(0);
        // 64 chunks of 64 KiB = 4 MiB offered; reading stops at the 17th.
        let err = collect_capped(counted_chunks(64, 64 * 1024, &pulled))
            .await
            .unwrap_err();
        assert_eq!(err.status(), 413);
        assert_eq!(pulled.get(), 17);
        // Exactly the cap is accepted, one byte more is not.
        let exact = collect_capped(counted_chunks(16, 64 * 1024, &pulled)).await;
        assert_eq!(exact.map(|b| b.len()).ok(), Some(MAX_BODY_BYTES));
        let over = futures::stream::iter([Ok::<_, String>(vec![0; MAX_BODY_BYTES]), Ok(vec![0])]);
        assert_eq!(collect_capped(over).await.unwrap_err().status(), 413);
        let broken = futures::stream::iter([Ok(vec![b'{']), Err("reset".to_string())]);
        assert_eq!(collect_capped(broken).await.unwrap_err().status(), 400);
    }

    #[test]
    fn every_problem_is_reported() {
        let mut f = fields(json!({"a": 1, "c": "ok"}));
        let a = f.required_str("a");
        let b = f.required_str("b");
        let c = f.optional_str("c");
        let built = a.zip(b).map(|_| ());
        assert_eq!(c.as_deref(), Some("ok"));
        match f.finish(built) {
            Err(ApiError::Validation(d)) => {
                assert_eq!(d.len(), 2);
                assert_eq!(d[0], FieldError::new("a", "must be a string"));
                assert_eq!(d[1], FieldError::new("b", "is required"));
            }
            other => panic!("{other:?}"),
        }
    }
}
