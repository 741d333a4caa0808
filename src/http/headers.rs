//! Header policy, as pure functions: request ids, security headers, CORS.

use crate::config::AllowedOrigins;

/// Longest incoming `X-Request-Id` that is echoed back.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Headers on every response.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Strict-Transport-Security",
        "max-age=63072000; includeSubDomains",
    ),
];

/// Methods a cross-origin caller may use.
pub const CORS_ALLOW_METHODS: &str = "GET, POST, PATCH, DELETE, OPTIONS";
/// Request headers a cross-origin caller may send.
pub const CORS_ALLOW_HEADERS: &str =
    "Authorization, Content-Type, X-API-Key, Idempotency-Key, Last-Event-ID, X-Request-Id";
/// Response headers a cross-origin caller may read.
pub const CORS_EXPOSE_HEADERS: &str =
    "X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After";
/// How long a browser may cache a preflight answer, in seconds.
pub const CORS_MAX_AGE: &str = "86400";

/// The request id for this request: a sane incoming `X-Request-Id`
/// (1–128 characters of `A-Z a-z 0-9 - _ . :`) is echoed, anything else is
/// replaced by `fresh()`.
pub fn request_id(incoming: Option<&str>, fresh: impl FnOnce() -> String) -> String {
    match incoming {
        Some(id) if is_sane_request_id(id) => id.to_string(),
        _ => fresh(),
    }
}

fn is_sane_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// CORS headers for an ordinary response to a request with this `Origin`.
/// Empty when the origin is absent or not allowed.
pub fn cors_headers(allowed: &AllowedOrigins, origin: Option<&str>) -> Vec<(&'static str, String)> {
    let Some(origin) = origin.filter(|o| allowed.allows(o)) else {
        return Vec::new();
    };
    let mut headers = vec![(
        "Access-Control-Expose-Headers",
        CORS_EXPOSE_HEADERS.to_string(),
    )];
    match allowed {
        AllowedOrigins::Any => headers.push(("Access-Control-Allow-Origin", "*".to_string())),
        AllowedOrigins::List(_) => {
            headers.push(("Access-Control-Allow-Origin", origin.to_string()));
            headers.push(("Vary", "Origin".to_string()));
        }
    }
    headers
}

/// Headers for a preflight (`OPTIONS`) answer: the ordinary CORS headers plus
/// the allowed methods, headers and max age. Empty when the origin is not allowed,
/// so the browser refuses the cross-origin call.
pub fn preflight_headers(
    allowed: &AllowedOrigins,
    origin: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut headers = cors_headers(allowed, origin);
    if !headers.is_empty() {
        headers.push((
            "Access-Control-Allow-Methods",
            CORS_ALLOW_METHODS.to_string(),
        ));
        headers.push((
            "Access-Control-Allow-Headers",
            CORS_ALLOW_HEADERS.to_string(),
        ));
        headers.push(("Access-Control-Max-Age", CORS_MAX_AGE.to_string()));
    }
    headers
}

/// Whether a response to `path` must go without `Server-Timing`: the
/// routes that check a password or a refresh token (register, login,
/// refresh, logout), whose timing would make that work measurable from
/// outside.
pub fn hides_timing(path: &str) -> bool {
    matches!(
        path,
        "/api/v1/auth/register"
            | "/api/v1/auth/login"
            | "/api/v1/auth/refresh"
            | "/api/v1/auth/logout"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> String {
        "fresh".to_string()
    }

    #[test]
    fn sane_request_ids_are_echoed() {
        assert_eq!(request_id(Some("abc-123_x.y:z"), fresh), "abc-123_x.y:z");
        assert_eq!(request_id(Some(&"a".repeat(128)), fresh), "a".repeat(128));
    }

    #[test]
    fn hostile_request_ids_are_replaced() {
        for bad in [
            "",
            "a b",
            "<script>",
            "x\r\nSet-Cookie: a=b",
            "é",
            &"a".repeat(129),
        ] {
            assert_eq!(request_id(Some(bad), fresh), "fresh", "{bad:?}");
        }
        assert_eq!(request_id(None, fresh), "fresh");
    }

    #[test]
    fn cors_only_for_allowed_origins() {
        let list = AllowedOrigins::List(vec!["https://app.example".into()]);
        assert!(cors_headers(&list, Some("https://evil.example")).is_empty());
        assert!(cors_headers(&list, None).is_empty());
        let h = cors_headers(&list, Some("https://app.example"));
        assert!(h.contains(&("Access-Control-Allow-Origin", "https://app.example".into())));
        assert!(h.contains(&("Vary", "Origin".into())));
        let any = cors_headers(&AllowedOrigins::Any, Some("https://x.example"));
        assert!(any.contains(&("Access-Control-Allow-Origin", "*".into())));
    }

    #[test]
    fn preflight_adds_methods_and_headers() {
        let list = AllowedOrigins::List(vec!["https://app.example".into()]);
        let h = preflight_headers(&list, Some("https://app.example"));
        assert!(h
            .iter()
            .any(|(k, v)| *k == "Access-Control-Allow-Methods" && v.contains("PATCH")));
        assert!(h
            .iter()
            .any(|(k, v)| *k == "Access-Control-Allow-Headers" && v.contains("X-API-Key")));
        assert!(preflight_headers(&list, Some("https://evil.example")).is_empty());
    }

    #[test]
    fn only_the_credential_routes_hide_their_timing() {
        for path in [
            "/api/v1/auth/register",
            "/api/v1/auth/login",
            "/api/v1/auth/refresh",
            "/api/v1/auth/logout",
        ] {
            assert!(hides_timing(path), "{path}");
        }
        for path in [
            "/health",
            "/api/v1/auth/me",
            "/api/v1/conversations",
            "/api/v1/auth/api-keys",
        ] {
            assert!(!hides_timing(path), "{path}");
        }
    }
}
