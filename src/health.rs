//! `GET /health`: liveness, and with `?deep=1` a call of `api.health`
//! over whichever transport is configured (named in the log only; limited
//! per client IP, as it is public).
//!
//! Publicly it says only ok or not ok: which setting is wrong, or why the
//! database cannot be reached, goes to the log, never to the client.

use serde_json::{json, Value};
use worker::{console_error, Response};

use crate::db;
use crate::http::ctx::Ctx;
use crate::http::{respond, ApiError};
use crate::rate_limit::{self, client::Kind};

/// The version reported by `/health`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Reads the `deep` query parameter: `1`/`true` or `0`/`false` (400 otherwise).
pub fn wants_deep(query: Option<&str>) -> Result<bool, ApiError> {
    let mut deep = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "deep" {
            deep = match value {
                "1" | "true" => true,
                "0" | "false" => false,
                _ => {
                    return Err(ApiError::InvalidRequest(
                        "query parameter deep must be 0, 1, true or false".into(),
                    ))
                }
            };
        }
    }
    Ok(deep)
}

/// The only thing `/health` says about a failed check.
pub const NOT_OK: &str = "not ok";

/// What a failed check answers publicly: 500 for an invalid configuration,
/// 503 for an unreachable database, both saying only [`NOT_OK`].
pub fn not_ok(database: bool) -> ApiError {
    if database {
        ApiError::Unavailable(NOT_OK.into())
    } else {
        ApiError::Misconfigured(NOT_OK.into())
    }
}

/// Answers `/health`. An invalid configuration is reported here (a bare
/// 500, the problems in the log) rather than by a panic.
pub async fn handle(ctx: Ctx) -> Result<Response, ApiError> {
    let url = ctx
        .req
        .url()
        .map_err(|e| ApiError::InvalidRequest(format!("bad URL: {e}")))?;
    let deep = wants_deep(url.query())?;
    if let Some(problems) = ctx.config_problems() {
        console_error!("/health: the configuration is invalid: {problems}");
        return Err(not_ok(false));
    }
    if deep {
        // Public and costing a database round trip: limited per client IP
        // (`RATE_LIMIT_IP`) before it runs.
        let rc = ctx.rc()?;
        rate_limit::enforce(&rc, &rate_limit::ip_key(&ctx.req), Kind::Ip).await?;
        // `api.health`: the database answers and its API is installed.
        let transport = &ctx.config()?.database;
        db::with_db(ctx.env(), transport, |db| async move {
            db::call::call::<Value>(&db, "health", json!({}))
                .await
                .map(|_| ())
        })
        .await
        .map_err(|e| {
            let detail = e
                .log_detail()
                .map_or_else(|| e.public_message(), str::to_string);
            console_error!(
                "/health?deep=1: the database check ({}) failed: {detail}",
                transport.name()
            );
            not_ok(true)
        })?;
    }
    let mut body = json!({"status": "ok", "version": VERSION});
    if deep {
        body["database"] = json!("ok");
    }
    Ok(respond::json(200, &body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_flag_parsing() {
        assert!(!wants_deep(None).unwrap());
        assert!(wants_deep(Some("deep=1")).unwrap());
        assert!(wants_deep(Some("x=2&deep=true")).unwrap());
        assert!(!wants_deep(Some("deep=0")).unwrap());
        assert!(wants_deep(Some("deep=yes")).is_err());
        assert!(wants_deep(Some("deep")).is_err());
    }

    #[test]
    fn failures_say_only_not_ok() {
        for (database, status) in [(false, 500), (true, 503)] {
            let err = not_ok(database);
            assert_eq!(err.status(), status);
            assert_eq!(err.public_message(), "not ok");
        }
    }
}
