//! `GET /health`: liveness, and with `?deep=1` a `SELECT 1` through Hyperdrive.

use serde_json::{json, Value};
use worker::Response;

use crate::db;
use crate::http::ctx::Ctx;
use crate::http::{respond, ApiError};

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

/// Answers `/health`. An invalid configuration is reported here (500 with
/// the list of problems) rather than by a panic.
pub async fn handle(ctx: Ctx) -> Result<Response, ApiError> {
    let url = ctx
        .req
        .url()
        .map_err(|e| ApiError::InvalidRequest(format!("bad URL: {e}")))?;
    let deep = wants_deep(url.query())?;
    if let Some(problems) = ctx.config_problems() {
        return Err(ApiError::Misconfigured(problems.to_string()));
    }
    if deep {
        // `api.health`: the database answers and its API is installed.
        db::with_client(ctx.env(), |client| async move {
            db::call::call::<Value>(&client, "health", json!({}))
                .await
                .map(|_| ())
        })
        .await?;
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
}
