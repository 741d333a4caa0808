//! Smoke tests: run in every phase with a database (PostgreSQL and PGlite).

use crate::support::get;

#[tokio::test]
async fn health_answers_ok_with_version() {
    let r = get("/health").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "ok");
    assert_eq!(r.json["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r.header("cache-control"), "no-store");
    r.assert_common_headers();
}

#[tokio::test]
async fn deep_health_reaches_the_database() {
    let r = get("/health?deep=1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "ok");
    assert_eq!(r.json["database"], "ok");
    r.assert_common_headers();
}

#[tokio::test]
async fn unknown_route_is_a_404_envelope() {
    let r = get("/nope").await;
    r.assert_error(404, "not_found_error");
    r.assert_common_headers();
}
