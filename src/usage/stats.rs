//! `GET /api/v1/usage/stats?from&to`: totals, per model and per UTC day,
//! straight from the ledger (so they always equal its sum).

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Value};
use worker::Response;

use crate::db::call::call;
use crate::http::ctx::Ctx;
use crate::http::request::query;
use crate::http::{respond, ApiError, FieldError};

/// Reads `from` and `to` (inclusive UTC dates, `YYYY-MM-DD`); 422 when
/// malformed or when `from` is after `to`.
pub fn date_range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<NaiveDate>, Option<NaiveDate>), ApiError> {
    let mut errors = Vec::new();
    let mut parse = |field: &str, raw: Option<&str>| {
        raw.and_then(|r| match NaiveDate::parse_from_str(r.trim(), "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                errors.push(FieldError::new(field, "must be a date like 2026-11-25"));
                None
            }
        })
    };
    let from = parse("from", from);
    let to = parse("to", to);
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            errors.push(FieldError::new("from", "must not be after to"));
        }
    }
    if errors.is_empty() {
        Ok((from, to))
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// The handler.
pub async fn stats(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (p, c) = (ctx.principal()?, ctx.take_db()?);
    let params = query(&ctx.req)?;
    let (from, to) = date_range(
        params.get("from").map(String::as_str),
        params.get("to").map(String::as_str),
    )?;
    let args = json!({"user_id": p.user_id, "from": from.map(|d| d.to_string()),
                      "to": to.map(|d| d.to_string())});
    let stats = match call(&c, "usage_stats", args).await? {
        Stats::Ok { stats } => stats,
        Stats::Unauthenticated => {
            return Err(ApiError::Authentication(
                "invalid or expired access token".into(),
            ))
        }
    };
    Ok(respond::json(200, &stats)?)
}

#[derive(Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Stats {
    Ok { stats: Value },
    Unauthenticated,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_and_order() {
        assert_eq!(date_range(None, None).unwrap(), (None, None));
        let (f, t) = date_range(Some("2026-11-01"), Some("2026-11-25")).unwrap();
        assert_eq!(f.unwrap().to_string(), "2026-11-01");
        assert_eq!(t.unwrap().to_string(), "2026-11-25");
        assert!(date_range(Some("2026-11-25"), Some("2026-11-25")).is_ok());
    }

    #[test]
    fn bad_dates_are_422() {
        for (f, t) in [
            (Some("yesterday"), None),
            (None, Some("2026-13-01")),
            (Some("2026-02-30"), None),
            (Some("2026-11-26"), Some("2026-11-25")),
        ] {
            assert_eq!(date_range(f, t).unwrap_err().status(), 422, "{f:?} {t:?}");
        }
    }
}
