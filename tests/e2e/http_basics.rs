//! Behaviour every response shares: request ids, security headers, CORS,
//! 404 and 405 envelopes, hostile request lines.

use reqwest::Method;

use crate::support::{get, send, stack};

#[tokio::test]
async fn sane_request_ids_are_echoed() {
    let r = send(
        Method::GET,
        "/health",
        &[("X-Request-Id", "client-abc_123.4:5")],
        None,
    )
    .await;
    assert_eq!(r.header("x-request-id"), "client-abc_123.4:5");
}

#[tokio::test]
async fn hostile_request_ids_are_replaced_by_a_uuid() {
    let long = "a".repeat(200);
    for bad in ["<script>alert(1)</script>", long.as_str(), "has space"] {
        let r = send(Method::GET, "/nope", &[("X-Request-Id", bad)], None).await;
        let id = r.header("x-request-id");
        assert_ne!(id, bad);
        assert_eq!(id.len(), 36, "a UUID: {id}");
        assert_eq!(r.json["request_id"], id);
    }
}

#[tokio::test]
async fn each_request_gets_its_own_id() {
    let a = get("/health").await;
    let b = get("/health").await;
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    for method in [Method::POST, Method::DELETE, Method::PATCH, Method::PUT] {
        let r = send(method.clone(), "/health", &[], Some("{}".into())).await;
        r.assert_error(405, "invalid_request_error");
        r.assert_common_headers();
        assert_eq!(r.header("allow"), "GET, OPTIONS", "{method}");
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_are_404() {
    for path in [
        "/",
        "/api/v1",
        "/health/",
        "/HEALTH",
        "/api/v1/../../etc/passwd",
        "/%00",
        "/api/v2/conversations",
        "/api/v1/conversations/x/y/z",
    ] {
        let r = get(path).await;
        r.assert_error(404, "not_found_error");
    }
    let r = send(Method::PUT, "/coffee", &[], Some("{}".into())).await;
    r.assert_error(404, "not_found_error");
}

#[tokio::test]
async fn a_very_long_path_is_a_clean_404() {
    let path = format!("/{}", "x".repeat(8000));
    let r = get(&path).await;
    r.assert_error(404, "not_found_error");
}

#[tokio::test]
async fn bad_query_parameter_is_400() {
    let r = get("/health?deep=perhaps").await;
    r.assert_error(400, "invalid_request_error");
}

#[tokio::test]
async fn preflight_from_an_allowed_origin_is_204_with_cors() {
    let origin = stack().origin.as_str();
    let r = send(
        Method::OPTIONS,
        "/health",
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "authorization"),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    r.assert_common_headers();
    assert_eq!(r.header("access-control-allow-origin"), origin);
    assert!(r.header("access-control-allow-methods").contains("POST"));
    assert!(r
        .header("access-control-allow-headers")
        .contains("Authorization"));
    assert_eq!(r.header("access-control-max-age"), "86400");
    assert_eq!(r.header("vary"), "Origin");
}

#[tokio::test]
async fn preflight_from_another_origin_gets_no_cors_headers() {
    let r = send(
        Method::OPTIONS,
        "/health",
        &[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "GET"),
        ],
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), "");
    assert_eq!(r.header("access-control-allow-methods"), "");
}

#[tokio::test]
async fn preflight_on_an_unknown_path_is_404() {
    let origin = stack().origin.as_str();
    let r = send(Method::OPTIONS, "/nope", &[("Origin", origin)], None).await;
    r.assert_error(404, "not_found_error");
}

#[tokio::test]
async fn ordinary_responses_carry_cors_for_allowed_origins_only() {
    let origin = stack().origin.as_str();
    let r = send(Method::GET, "/health", &[("Origin", origin)], None).await;
    assert_eq!(r.header("access-control-allow-origin"), origin);
    assert!(r
        .header("access-control-expose-headers")
        .contains("X-Request-Id"));
    let r = send(Method::GET, "/nope", &[("Origin", origin)], None).await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        origin,
        "errors carry CORS too"
    );
    let r = send(
        Method::GET,
        "/health",
        &[("Origin", "https://evil.example")],
        None,
    )
    .await;
    assert_eq!(r.header("access-control-allow-origin"), "");
}

/// The documentation routes and their content types.
const DOC_ROUTES: [(&str, &str); 3] = [
    ("/openapi.json", "application/json"),
    ("/docs", "text/html; charset=utf-8"),
    ("/redoc", "text/html; charset=utf-8"),
];

#[tokio::test]
async fn documentation_routes_serve_their_content_types() {
    for (path, content_type) in DOC_ROUTES {
        let r = get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(r.header("content-type"), content_type, "{path}");
        r.assert_common_headers();
    }
    let doc = get("/openapi.json").await;
    let version = doc.json["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "{}", doc.text);
    let page = get("/docs").await;
    assert!(page.text.contains("/openapi.json"), "{}", page.text);
}

#[tokio::test]
async fn documentation_routes_answer_405_with_allow_and_the_envelope() {
    for (path, _) in DOC_ROUTES {
        for method in [Method::POST, Method::PUT, Method::DELETE] {
            let r = send(method.clone(), path, &[], Some("{}".into())).await;
            r.assert_error(405, "invalid_request_error");
            r.assert_common_headers();
            assert_eq!(r.header("allow"), "GET, OPTIONS", "{method} {path}");
        }
        let r = get(&format!("{path}/")).await;
        r.assert_error(404, "not_found_error");
    }
}

#[tokio::test]
async fn documentation_routes_answer_preflight_with_cors() {
    let origin = stack().origin.as_str();
    for (path, _) in DOC_ROUTES {
        let r = send(
            Method::OPTIONS,
            path,
            &[("Origin", origin), ("Access-Control-Request-Method", "GET")],
            None,
        )
        .await;
        assert_eq!(r.status, 204, "{path}: {}", r.text);
        r.assert_common_headers();
        assert_eq!(r.header("access-control-allow-origin"), origin, "{path}");
        let r = send(Method::GET, path, &[("Origin", origin)], None).await;
        assert_eq!(r.header("access-control-allow-origin"), origin, "{path}");
    }
}
