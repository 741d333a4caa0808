//! The one error type of the API and its JSON envelope.
//!
//! Handlers return `Result<_, ApiError>`; the envelope is
//! `{"type":"error","error":{"type","message","details"?},"request_id"}`.
//! Internal details (SQL, upstream bodies, keys) are logged by the caller
//! and never reach the client: [`ApiError::Internal`] always answers a fixed
//! message.

use serde::Serialize;

/// `Retry-After` of a refused event stream: a closed stream frees its slot at once.
const STREAM_RETRY_AFTER: &str = "5";

/// One failed validation rule, listed in `error.details` of a 422.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The request field, e.g. `email` or `metadata.color`.
    pub field: String,
    /// What is wrong with it, for a human.
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The error envelope, serialised in the contract's key order.
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    /// Always `"error"`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The error itself.
    pub error: ErrorBody<'a>,
    /// The request's id, as in `X-Request-Id`.
    pub request_id: &'a str,
}

/// The `error` object of the envelope.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    /// `error.type`, e.g. `not_found_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// A message for a human; never internals.
    pub message: String,
    /// Per-field problems, on 422 only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<&'a [FieldError]>,
}

/// Every error the API answers with, mapped to a status and an `error.type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400: malformed JSON, wrong content type, bad query parameter.
    InvalidRequest(String),
    /// 401: missing/invalid/expired credentials.
    Authentication(String),
    /// 403: authenticated but not allowed.
    Permission(String),
    /// 404: no such route or resource (or someone else's).
    NotFound(String),
    /// 405: the path exists without this method; `allow` lists its methods.
    MethodNotAllowed { allow: Vec<&'static str> },
    /// 409: conflicts such as a registered e-mail or a reused idempotency key.
    Conflict(String),
    /// 413: body over the limit.
    TooLarge,
    /// 422: validation failures, one per field.
    Validation(Vec<FieldError>),
    /// 429: rate limited; retry after this many seconds.
    RateLimited { retry_after: u64 },
    /// 429: the user already holds this many open event streams.
    TooManyStreams { limit: u32 },
    /// 429: too many login attempts for one account; retry after this many seconds.
    TooManyLogins { retry_after: u64 },
    /// 500: unexpected; the string is for the log only.
    Internal(String),
    /// 500: the deployment's configuration is invalid; the message names the
    /// variables (never their values) so an operator can fix them.
    Misconfigured(String),
    /// 502: every LLM provider failed.
    ProvidersFailed(String),
    /// 503: a dependency (the database) is unreachable.
    Unavailable(String),
    /// 504: the database did not answer in time.
    TimedOut(String),
}

impl ApiError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::InvalidRequest(_) => 400,
            ApiError::Authentication(_) => 401,
            ApiError::Permission(_) => 403,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::Conflict(_) => 409,
            ApiError::TooLarge => 413,
            ApiError::Validation(_) => 422,
            ApiError::RateLimited { .. }
            | ApiError::TooManyStreams { .. }
            | ApiError::TooManyLogins { .. } => 429,
            ApiError::Internal(_) | ApiError::Misconfigured(_) => 500,
            ApiError::ProvidersFailed(_) => 502,
            ApiError::Unavailable(_) => 503,
            ApiError::TimedOut(_) => 504,
        }
    }

    /// The `error.type` of the envelope.
    pub fn error_type(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_)
            | ApiError::MethodNotAllowed { .. }
            | ApiError::Validation(_) => "invalid_request_error",
            ApiError::Authentication(_) => "authentication_error",
            ApiError::Permission(_) => "permission_error",
            ApiError::NotFound(_) => "not_found_error",
            ApiError::Conflict(_) => "conflict_error",
            ApiError::TooLarge => "request_too_large",
            ApiError::RateLimited { .. }
            | ApiError::TooManyStreams { .. }
            | ApiError::TooManyLogins { .. } => "rate_limit_error",
            ApiError::Internal(_) | ApiError::Misconfigured(_) => "api_error",
            ApiError::ProvidersFailed(_) | ApiError::Unavailable(_) | ApiError::TimedOut(_) => {
                "overloaded_error"
            }
        }
    }

    /// The message shown to the client.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::InvalidRequest(m)
            | ApiError::Authentication(m)
            | ApiError::Permission(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::Misconfigured(m)
            | ApiError::ProvidersFailed(m)
            | ApiError::Unavailable(m)
            | ApiError::TimedOut(m) => m.clone(),
            ApiError::MethodNotAllowed { allow } => {
                format!("method not allowed; this path accepts {}", allow.join(", "))
            }
            ApiError::TooLarge => "request body is larger than 1 MiB".into(),
            ApiError::Validation(details) => match details.as_slice() {
                [one] => format!("{}: {}", one.field, one.message),
                _ => "the request has invalid fields; see details".into(),
            },
            ApiError::RateLimited { retry_after } => {
                format!("rate limit exceeded; retry in {retry_after} s")
            }
            ApiError::TooManyStreams { limit } => format!(
                "too many open event streams: at most {limit} per user at once; close one and retry"
            ),
            ApiError::TooManyLogins { retry_after } => {
                format!("too many login attempts for this account; retry in {retry_after} s")
            }
            ApiError::Internal(_) => "internal server error".into(),
        }
    }

    /// What the log should say about this error, if anything beyond the status.
    pub fn log_detail(&self) -> Option<&str> {
        match self {
            ApiError::Internal(m) | ApiError::Misconfigured(m) => Some(m),
            _ => None,
        }
    }

    /// The JSON envelope for this error.
    pub fn envelope<'a>(&'a self, request_id: &'a str) -> Envelope<'a> {
        Envelope {
            kind: "error",
            error: ErrorBody {
                kind: self.error_type(),
                message: self.public_message(),
                details: match self {
                    ApiError::Validation(details) => Some(details),
                    _ => None,
                },
            },
            request_id,
        }
    }

    /// Extra headers this error needs (`Allow` on 405, `Retry-After` on 429).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            ApiError::MethodNotAllowed { allow } => vec![("Allow", allow.join(", "))],
            ApiError::RateLimited { retry_after } | ApiError::TooManyLogins { retry_after } => {
                vec![("Retry-After", retry_after.to_string())]
            }
            ApiError::TooManyStreams { .. } => vec![("Retry-After", STREAM_RETRY_AFTER.into())],
            _ => Vec::new(),
        }
    }
}

/// A Workers runtime failure (building a response, setting a header) is
/// unexpected: 500, with the error's text for the log only.
impl From<worker::Error> for ApiError {
    fn from(e: worker::Error) -> Self {
        ApiError::Internal(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_types_follow_the_contract() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (
                ApiError::InvalidRequest("x".into()),
                400,
                "invalid_request_error",
            ),
            (
                ApiError::Authentication("x".into()),
                401,
                "authentication_error",
            ),
            (ApiError::Permission("x".into()), 403, "permission_error"),
            (ApiError::NotFound("x".into()), 404, "not_found_error"),
            (
                ApiError::MethodNotAllowed { allow: vec!["GET"] },
                405,
                "invalid_request_error",
            ),
            (ApiError::Conflict("x".into()), 409, "conflict_error"),
            (ApiError::TooLarge, 413, "request_too_large"),
            (ApiError::Validation(vec![]), 422, "invalid_request_error"),
            (
                ApiError::RateLimited { retry_after: 3 },
                429,
                "rate_limit_error",
            ),
            (
                ApiError::TooManyStreams { limit: 5 },
                429,
                "rate_limit_error",
            ),
            (ApiError::Internal("x".into()), 500, "api_error"),
            (
                ApiError::ProvidersFailed("x".into()),
                502,
                "overloaded_error",
            ),
            (ApiError::Unavailable("x".into()), 503, "overloaded_error"),
            (ApiError::TimedOut("x".into()), 504, "overloaded_error"),
        ];
        for (err, status, kind) in cases {
            assert_eq!(err.status(), status, "{err:?}");
            assert_eq!(err.error_type(), kind, "{err:?}");
        }
    }

    #[test]
    fn internal_details_never_reach_the_envelope() {
        let err = ApiError::Internal("db error: relation \"users\" SELECT * FROM".into());
        let body = serde_json::to_string(&err.envelope("rid")).unwrap();
        assert!(!body.contains("SELECT"), "{body}");
        assert!(body.contains("internal server error"));
        assert_eq!(
            err.log_detail(),
            Some("db error: relation \"users\" SELECT * FROM")
        );
    }

    #[test]
    fn envelope_shape() {
        let err = ApiError::Validation(vec![FieldError::new("email", "is not a valid e-mail")]);
        let v = serde_json::to_value(err.envelope("req-1")).unwrap();
        assert!(serde_json::to_string(&err.envelope("r"))
            .unwrap()
            .starts_with(r#"{"type":"error","error":{"type":"invalid_request_error""#));
        assert_eq!(v["type"], "error");
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["message"], "email: is not a valid e-mail");
        assert_eq!(v["error"]["details"][0]["field"], "email");
        let not_found = serde_json::to_value(ApiError::NotFound("x".into()).envelope("r")).unwrap();
        assert!(not_found["error"].get("details").is_none());
    }

    #[test]
    fn runtime_errors_are_internal_and_keep_their_text_for_the_log() {
        let err = ApiError::from(worker::Error::RustError("header value invalid".into()));
        assert_eq!(err.status(), 500);
        assert_eq!(err.public_message(), "internal server error");
        assert_eq!(err.log_detail(), Some("header value invalid"));
    }

    #[test]
    fn extra_headers() {
        assert_eq!(
            ApiError::MethodNotAllowed {
                allow: vec!["GET", "OPTIONS"]
            }
            .headers(),
            vec![("Allow", "GET, OPTIONS".to_string())]
        );
        assert_eq!(
            ApiError::RateLimited { retry_after: 7 }.headers(),
            vec![("Retry-After", "7".to_string())]
        );
        let capped = ApiError::TooManyStreams { limit: 3 };
        assert_eq!(capped.headers()[0].0, "Retry-After");
        assert!(capped.public_message().contains("at most 3"));
    }
}
