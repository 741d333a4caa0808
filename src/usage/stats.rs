//! `GET /api/v1/usage/stats?from&to`: totals, per model and per UTC day,
//! straight from the ledger (so they always equal its sum).

use chrono::NaiveDate;
use serde_json::{json, Value};
use tokio_postgres::Row;
use worker::Response;

use crate::db::query_error;
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

const WHERE: &str = "user_id = $1
    AND ($2::date IS NULL OR created_at >= ($2::date)::timestamp AT TIME ZONE 'UTC')
    AND ($3::date IS NULL OR created_at < ($3::date + 1)::timestamp AT TIME ZONE 'UTC')";

fn sums(row: &Row, first: usize) -> (i64, i64, i64, f64) {
    (
        row.get(first),
        row.get(first + 1),
        row.get(first + 2),
        row.get(first + 3),
    )
}

/// The handler.
pub async fn stats(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (p, c) = (ctx.principal()?, ctx.take_db()?);
    let params = query(&ctx.req)?;
    let (from, to) = date_range(
        params.get("from").map(String::as_str),
        params.get("to").map(String::as_str),
    )?;
    let totals = "count(*)::int8, coalesce(sum(input_tokens), 0)::int8,
                  coalesce(sum(output_tokens), 0)::int8, coalesce(sum(cost_usd), 0)::float8";
    let args: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&p.user_id, &from, &to];
    let total = c
        .query_one(
            &format!("SELECT {totals} FROM usage_ledger WHERE {WHERE}"),
            &args,
        )
        .await
        .map_err(query_error)?;
    let by_model = c
        .query(
            &format!(
                "SELECT model, provider, {totals} FROM usage_ledger WHERE {WHERE}
                  GROUP BY model, provider ORDER BY model, provider"
            ),
            &args,
        )
        .await
        .map_err(query_error)?;
    let by_day = c
        .query(
            &format!(
                "SELECT to_char((created_at AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD'), {totals}
                   FROM usage_ledger WHERE {WHERE} GROUP BY 1 ORDER BY 1"
            ),
            &args,
        )
        .await
        .map_err(query_error)?;
    let (requests, input, output, cost) = sums(&total, 0);
    let models: Vec<Value> = by_model
        .iter()
        .map(|r| {
            let (n, i, o, c) = sums(r, 2);
            json!({
                "model": r.get::<_, String>(0),
                "provider": r.get::<_, String>(1),
                "requests": n, "input_tokens": i, "output_tokens": o, "cost_usd": c,
            })
        })
        .collect();
    let days: Vec<Value> = by_day
        .iter()
        .map(|r| {
            let (n, i, o, c) = sums(r, 1);
            json!({
                "date": r.get::<_, String>(0),
                "requests": n, "input_tokens": i, "output_tokens": o, "cost_usd": c,
            })
        })
        .collect();
    respond::json(
        200,
        &json!({
            "total_requests": requests,
            "total_input_tokens": input,
            "total_output_tokens": output,
            "total_cost_usd": cost,
            "by_model": models,
            "by_day": days,
        }),
    )
    .map_err(ApiError::from)
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
