//! Run only in the HTTP phase (the worker on Supabase's HTTP API through
//! the test gateway and `postrust`): what the public anon key can reach
//! (nothing), and how the transport's failures reach clients: a 503 or 504
//! envelope saying nothing of the cause, the cause in the worker's log.
//!
//! Failures are provoked through the gateway's faults, armed for calls
//! that carry one test user's id; the answers are the server's own.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{db, logged, me, new_user, Auth, Reply};

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run in the HTTP phase"))
}

/// Calls the gateway directly; `profile` is sent as `Content-Profile` on
/// POST and `Accept-Profile` on GET.
async fn gateway(
    method: reqwest::Method,
    path: &str,
    apikey: Option<&str>,
    profile: &str,
) -> (StatusCode, Value) {
    let client = reqwest::Client::new();
    let header = if method == reqwest::Method::GET {
        "accept-profile"
    } else {
        "content-profile"
    };
    let mut req = client
        .request(
            method.clone(),
            format!("{}/rest/v1{path}", var("E2E_GATEWAY_URL")),
        )
        .header(header, profile);
    if let Some(key) = apikey {
        req = req.header("apikey", key);
    }
    if method != reqwest::Method::GET {
        req = req.json(&json!({}));
    }
    let resp = req.send().await.expect("the gateway answers");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Names in a schema, from the catalogs.
async fn names(sql: &str) -> Vec<String> {
    db().await
        .query(sql, &[])
        .await
        .expect("catalog query")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn the_anon_key_reaches_no_table_and_no_function() {
    let anon = var("E2E_ANON_KEY");
    let functions = names(
        "SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname IN ('api', 'app') ORDER BY 1",
    )
    .await;
    assert!(functions.len() > 20, "{functions:?}");
    // The channel works: the server key calls the API.
    let (status, body) = gateway(
        reqwest::Method::POST,
        "/rpc/health",
        Some(&var("E2E_SERVICE_KEY")),
        "api",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for f in &functions {
        for profile in ["api", "app", "public"] {
            let (status, body) = gateway(
                reqwest::Method::POST,
                &format!("/rpc/{f}"),
                Some(&anon),
                profile,
            )
            .await;
            assert!(
                matches!(status.as_u16(), 401 | 403 | 404 | 406),
                "anon called {profile}.{f}: {status} {body}"
            );
        }
    }
    let tables = names(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname IN ('app', 'public') AND c.relkind IN ('r', 'v', 'm', 'p') ORDER BY 1",
    )
    .await;
    assert!(
        tables.contains(&"schema_migrations".to_string()),
        "{tables:?}"
    );
    assert!(tables.contains(&"users".to_string()), "{tables:?}");
    for t in &tables {
        for profile in ["app", "public", "api"] {
            let (status, body) =
                gateway(reqwest::Method::GET, &format!("/{t}"), Some(&anon), profile).await;
            assert!(
                matches!(status.as_u16(), 401 | 403 | 404 | 406),
                "anon read {profile}.{t}: {status} {body}"
            );
        }
    }
    // Without a key the gateway answers itself, as Supabase's does.
    let (status, body) = gateway(reqwest::Method::POST, "/rpc/health", None, "api").await;
    assert_eq!(status, 401, "{body}");
}

/// Arms a gateway fault for the calls carrying `needle`.
async fn arm(needle: &str, fault: &str, ms: u64) {
    let r = reqwest::Client::new()
        .post(format!("{}/__faults", var("E2E_GATEWAY_URL")))
        .json(&json!({"needle": needle, "fault": fault, "ms": ms}))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
}

/// A fresh user whose calls meet `fault`; returns `GET /auth/me`'s reply.
async fn me_with(fault: &str, ms: u64) -> (Reply, String) {
    let user = new_user().await;
    arm(&user.user_id, fault, ms).await;
    (me(Auth::Bearer(&user.access)).await, user.user_id)
}

/// The envelope says only that the database is unavailable.
fn assert_quiet(r: &Reply, status: u16) {
    r.assert_error(status, "overloaded_error");
    for leak in [
        "PGRST",
        "postrust",
        "schema",
        "api.",
        "permission",
        "JWT",
        "key",
    ] {
        assert!(!r.text.contains(leak), "{leak:?} leaked: {}", r.text);
    }
}

#[tokio::test]
async fn an_unknown_function_is_a_503_and_the_log_says_to_migrate() {
    let (r, _) = me_with("unknown_function", 0).await;
    assert_quiet(&r, 503);
    let line = logged(&["api.me", "PGRST202", "npm run migrate"]).await;
    assert!(line.contains("reload schema"), "{line}");
}

#[tokio::test]
async fn a_schema_not_exposed_is_a_503_and_the_log_says_to_expose_it() {
    let (r, _) = me_with("hidden_schema", 0).await;
    assert_quiet(&r, 503);
    logged(&["api.me", "PGRST106", "expose the schema `api`"]).await;
}

#[tokio::test]
async fn a_refused_key_is_a_503_and_the_log_names_the_setting() {
    let (r, _) = me_with("bad_token", 0).await;
    assert_quiet(&r, 503);
    logged(&["api.me", "PGRST30", "SUPABASE_SECRET_KEY"]).await;
}

#[tokio::test]
async fn a_lost_connection_is_a_503() {
    let (r, _) = me_with("drop", 0).await;
    assert_quiet(&r, 503);
    logged(&["database unreachable: api.me"]).await;
}

#[tokio::test]
async fn a_database_too_slow_is_a_504_after_the_call_timeout() {
    let started = Instant::now();
    let (r, _) = me_with("stall", 12_000).await;
    let took = started.elapsed();
    assert_quiet(&r, 504);
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(12),
        "answered after {took:?}"
    );
    logged(&["database too slow: api.me"]).await;
}
