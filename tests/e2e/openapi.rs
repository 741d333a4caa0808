//! `GET /openapi.json` serves the committed document, and the documentation
//! pages answer HTML. (Every response of these tests is also checked against
//! the document by `support::send`; these make sure the three routes get a
//! validated response of their own.)

use serde_json::Value;

use crate::support::get;

#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    let r = get("/openapi.json").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("content-type").starts_with("application/json"));
    r.assert_common_headers();
    let committed: Value = serde_json::from_str(harness::openapi::DOCUMENT).expect("JSON");
    assert_eq!(r.json, committed);
    assert!(r.json["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1.")));
}

#[tokio::test]
async fn the_documentation_pages_are_html() {
    for path in ["/docs", "/redoc"] {
        let r = get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert!(
            r.header("content-type").starts_with("text/html"),
            "{path}: {:?}",
            r.header("content-type")
        );
        assert!(r.text.contains("/openapi.json"), "{path}: {}", r.text);
        r.assert_common_headers();
    }
}
