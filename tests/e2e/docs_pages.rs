//! `/openapi.json`, `/docs` and `/redoc`: the pages' headers, the static
//! files they load, and both pages in headless Chromium
//! (`tests/browser/docs.test.mjs`). Runs in the PostgreSQL phase.

use std::process::Command;

use serde_json::Value;

use crate::support::{create_api_key, get, new_user, stack};

/// The checks every documentation page's policy must pass.
fn assert_strict_csp(csp: &str, path: &str) {
    for want in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(want), "{path}: {want} missing from {csp:?}");
    }
    assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
}

#[tokio::test]
async fn docs_pages_are_html_with_a_strict_csp() {
    for (path, loads) in [
        ("/docs", "/docs/swagger-init.js"),
        ("/redoc", "/docs/redoc/redoc.standalone.js"),
    ] {
        let r = get(path).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(
            r.header("content-type"),
            "text/html; charset=utf-8",
            "{path}"
        );
        assert_strict_csp(r.header("content-security-policy"), path);
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(r.header("x-frame-options"), "DENY", "{path}");
        assert!(!r.header("x-request-id").is_empty(), "{path}");
        assert!(r.text.contains(loads), "{path} loads {loads}");
    }
}

#[tokio::test]
async fn docs_static_files_are_served_with_security_headers() {
    for (path, kind) in [
        ("/docs/swagger-ui/swagger-ui-bundle.js", "javascript"),
        ("/docs/swagger-ui/swagger-ui.css", "text/css"),
        ("/docs/swagger-init.js", "javascript"),
        ("/docs/redoc/redoc.standalone.js", "javascript"),
    ] {
        let r = get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type").contains(kind),
            "{path}: {:?}",
            r.headers
        );
        assert_eq!(r.header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(r.header("referrer-policy"), "no-referrer", "{path}");
        assert_strict_csp_of_a_file(r.header("content-security-policy"), path);
        let last_line = r.text.trim_end().rsplit('\n').next().unwrap_or_default();
        assert!(
            !last_line.contains("sourceMappingURL="),
            "{path}: source maps are not served"
        );
    }
    let init = get("/docs/swagger-init.js").await.text;
    assert!(init.contains("url: \"/openapi.json\""), "{init}");
    assert!(init.contains("validatorUrl: null"), "{init}");
    assert!(init.contains("persistAuthorization: false"), "{init}");
    let redoc = get("/docs/redoc/redoc.standalone.js").await.text;
    assert!(
        !redoc.contains("cdn.redoc.ly"),
        "ReDoc's CDN logo is patched out"
    );
}

/// The `_headers` policy of the static files: they render nothing and are never framed.
fn assert_strict_csp_of_a_file(csp: &str, path: &str) {
    assert!(csp.contains("default-src 'none'"), "{path}: {csp:?}");
    assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp:?}");
}

#[tokio::test]
async fn openapi_document_is_served_as_json() {
    let r = get("/openapi.json").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("content-type").starts_with("application/json"));
    assert!(r.json["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1")));
    let paths = r.json["paths"].as_object().expect("paths");
    for path in ["/docs", "/redoc", "/openapi.json", "/api/v1/models"] {
        assert!(paths.get(path).is_some_and(Value::is_object), "{path}");
    }
}

/// Swagger UI and ReDoc in headless Chromium; see `tests/browser/docs.test.mjs`.
/// Without Chromium it is skipped, and `npm test` says so at the end.
#[tokio::test]
async fn docs_pages_work_in_a_real_browser() {
    let chromium = match harness::browser::chromium() {
        Ok(path) => path,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let user = new_user().await;
    let key = create_api_key(&user.access, "docs browser test").await;
    let root = harness::stack::repo_root();
    let out = Command::new("node")
        .args([
            "--test",
            "--test-reporter=spec",
            "tests/browser/docs.test.mjs",
        ])
        .current_dir(&root)
        .env("PATH", harness::stack::node_path(&root))
        .env("DOCS_BASE_URL", &stack().base_url)
        .env("DOCS_ACCESS_TOKEN", &user.access)
        .env("DOCS_API_KEY", &key.key)
        .env("CHROMIUM_PATH", chromium)
        .env("SCREENSHOT_DIR", std::env::temp_dir())
        .output()
        .expect("node runs");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "browser test failed:\n{report}");
    assert!(
        report.contains("pass 2"),
        "both browser tests ran:\n{report}"
    );
}
