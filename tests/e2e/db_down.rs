//! Run only after the test runner stopped the database under the worker.

use crate::support::get;

#[tokio::test]
async fn deep_health_is_503_in_the_envelope() {
    let r = get("/health?deep=1").await;
    r.assert_error(503, "overloaded_error");
    r.assert_common_headers();
    assert_eq!(
        r.json["error"]["message"], "not ok",
        "only ok / not ok: {}",
        r.text
    );
}

#[tokio::test]
async fn shallow_health_stays_up() {
    let r = get("/health").await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn models_and_documentation_need_no_database() {
    for path in ["/api/v1/models", "/openapi.json", "/docs", "/redoc"] {
        let r = get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        r.assert_common_headers();
    }
}
