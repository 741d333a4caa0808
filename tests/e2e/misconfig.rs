//! Run only against a worker started with a 9-character `JWT_SECRET`.

use crate::support::get;

#[tokio::test]
async fn health_says_only_not_ok() {
    for path in ["/health", "/health?deep=1"] {
        let r = get(path).await;
        r.assert_error(500, "api_error");
        r.assert_common_headers();
        assert_eq!(r.json["error"]["message"], "not ok", "{}", r.text);
        for leak in ["JWT_SECRET", "too-short", "short", "characters"] {
            assert!(!r.text.contains(leak), "{leak:?} leaked: {}", r.text);
        }
    }
}

#[tokio::test]
async fn unknown_routes_are_still_404() {
    get("/nope").await.assert_error(404, "not_found_error");
}

#[tokio::test]
async fn documentation_is_served_whatever_the_configuration() {
    for path in ["/openapi.json", "/docs", "/redoc"] {
        let r = get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        r.assert_common_headers();
    }
}

#[tokio::test]
async fn other_routes_refuse_to_serve_without_telling_internals() {
    for path in ["/api/v1/models", "/api/v1/auth/me", "/api/v1/conversations"] {
        let r = get(path).await;
        r.assert_error(500, "api_error");
        let message = r.json["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("misconfigured"), "{path}: {message}");
        assert!(!r.text.contains("too-short"), "{path}: {}", r.text);
    }
}
