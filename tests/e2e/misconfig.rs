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
