//! The usage ledger and `GET /api/v1/usage/stats`: one row per model call
//! (failed fallback attempts included, with zero tokens), totals equal to
//! the ledger's sum, costs from the catalogue's prices.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{
    call, cost, db, marker, new_user, script, stream_path, user_with_conversation, Auth, Reply,
};

/// A titled conversation: no automatic-title call adds ledger rows.
fn titled() -> Value {
    json!({"title": "usage"})
}

async fn stats(access: &str, query: &str) -> Reply {
    call(
        Method::GET,
        &format!("/api/v1/usage/stats{query}"),
        Auth::Bearer(access),
        None,
    )
    .await
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// Today's UTC date as the database sees it.
async fn today() -> String {
    db().await
        .query_one(
            "SELECT to_char((now() AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD')",
            &[],
        )
        .await
        .expect("today")
        .get(0)
}

async fn send(access: &str, id: &str, content: &str) -> Value {
    let r = call(
        Method::POST,
        &format!("/api/v1/conversations/{id}/messages"),
        Auth::Bearer(access),
        Some(&json!({ "content": content })),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json
}

#[tokio::test]
async fn a_new_user_has_zero_usage() {
    let s = new_user().await;
    let r = stats(&s.access, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["total_requests"], 0);
    assert_eq!(r.json["total_input_tokens"], 0);
    assert_eq!(r.json["total_output_tokens"], 0);
    assert_eq!(r.json["total_cost_usd"], 0.0);
    assert_eq!(r.json["by_model"], json!([]));
    assert_eq!(r.json["by_day"], json!([]));
}

#[tokio::test]
async fn totals_match_the_calls_and_catalogue_prices() {
    let (s, id) = user_with_conversation(&titled()).await;
    let mk = marker();
    script(
        &mk,
        Some("groq"),
        json!({"text": "one two", "usage": {"input_tokens": 1000, "output_tokens": 500}}),
        0,
    )
    .await;
    send(&s.access, &id, &format!("{mk} first")).await;
    send(&s.access, &id, &format!("{mk} second")).await;
    let r = stats(&s.access, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let want = 2.0 * cost(1000, 500, 0.075, 0.30);
    assert_eq!(r.json["total_requests"], 2);
    assert_eq!(r.json["total_input_tokens"], 2000);
    assert_eq!(r.json["total_output_tokens"], 1000);
    assert!(
        close(r.json["total_cost_usd"].as_f64().unwrap(), want),
        "{}",
        r.text
    );
    let by_model = r.json["by_model"].as_array().expect("by_model");
    assert_eq!(by_model.len(), 1, "{}", r.text);
    assert_eq!(by_model[0]["model"], "openai/gpt-oss-20b");
    assert_eq!(by_model[0]["provider"], "groq");
    assert_eq!(by_model[0]["requests"], 2);
    let by_day = r.json["by_day"].as_array().expect("by_day");
    assert_eq!(by_day.len(), 1);
    assert_eq!(by_day[0]["date"], today().await);
    assert_eq!(by_day[0]["requests"], 2);
    assert!(close(by_day[0]["cost_usd"].as_f64().unwrap(), want));
}

#[tokio::test]
async fn a_failed_attempt_counts_as_a_request_with_zero_tokens() {
    let (s, id) = user_with_conversation(&titled()).await;
    let mk = marker();
    script(&mk, Some("groq"), json!({"status": 500}), 1).await;
    script(
        &mk,
        Some("gemini"),
        json!({"text": "ok", "usage": {"input_tokens": 10, "output_tokens": 20}}),
        1,
    )
    .await;
    send(&s.access, &id, &mk).await;
    let r = stats(&s.access, "").await;
    assert_eq!(r.json["total_requests"], 2, "{}", r.text);
    assert_eq!(r.json["total_input_tokens"], 10);
    assert_eq!(r.json["total_output_tokens"], 20);
    let rows: Vec<(String, i32, bool)> = db()
        .await
        .query(
            "SELECT provider, input_tokens, success FROM app.usage_ledger
              WHERE user_id = $1::text::uuid ORDER BY created_at, success",
            &[&s.user_id],
        )
        .await
        .expect("ledger")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("groq".to_string(), 0, false),
            ("gemini".to_string(), 10, true)
        ]
    );
    let by_model = r.json["by_model"].as_array().expect("by_model");
    let groq = by_model
        .iter()
        .find(|m| m["provider"] == "groq")
        .expect("groq row");
    assert_eq!(
        (groq["requests"].as_i64(), groq["input_tokens"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(groq["cost_usd"], 0.0);
    let gemini = by_model
        .iter()
        .find(|m| m["provider"] == "gemini")
        .expect("gemini row");
    assert!(close(
        gemini["cost_usd"].as_f64().unwrap(),
        cost(10, 20, 0.10, 0.40)
    ));
}

#[tokio::test]
async fn streamed_answers_are_in_the_ledger_too() {
    let (s, id) = user_with_conversation(&titled()).await;
    let mk = marker();
    script(
        &mk,
        None,
        json!({"text": "streamed", "usage": {"input_tokens": 7, "output_tokens": 3}}),
        1,
    )
    .await;
    let resp = reqwest::Client::new()
        .post(format!(
            "{}{}",
            crate::support::stack().base_url,
            stream_path(&id)
        ))
        .bearer_auth(&s.access)
        .json(&json!({ "content": mk }))
        .send()
        .await
        .expect("stream");
    let _ = resp.text().await;
    let mut total = Value::Null;
    for _ in 0..50 {
        total = stats(&s.access, "").await.json;
        if total["total_requests"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(total["total_requests"], 1, "{total}");
    assert_eq!(total["total_output_tokens"], 3);
}

#[tokio::test]
async fn stats_are_per_user() {
    let (a, id) = user_with_conversation(&titled()).await;
    send(&a.access, &id, &marker()).await;
    let b = new_user().await;
    assert_eq!(stats(&b.access, "").await.json["total_requests"], 0);
    assert_eq!(stats(&a.access, "").await.json["total_requests"], 1);
}

#[tokio::test]
async fn date_filters_are_inclusive_utc_days() {
    let (s, id) = user_with_conversation(&titled()).await;
    send(&s.access, &id, &marker()).await;
    let day = today().await;
    let r = stats(&s.access, &format!("?from={day}&to={day}")).await;
    assert_eq!(r.json["total_requests"], 1, "{}", r.text);
    let r = stats(&s.access, "?to=2000-01-01").await;
    assert_eq!(r.json["total_requests"], 0, "{}", r.text);
    let r = stats(&s.access, "?from=2999-01-01").await;
    assert_eq!(r.json["total_requests"], 0, "{}", r.text);
}

#[tokio::test]
async fn bad_dates_are_422() {
    let s = new_user().await;
    for q in [
        "?from=yesterday",
        "?to=2026-13-01",
        "?from=2026-02-30",
        "?from=2026-11-26&to=2026-11-25",
    ] {
        let r = stats(&s.access, q).await;
        r.assert_error(422, "invalid_request_error");
        assert!(
            r.json["error"]["details"]
                .as_array()
                .is_some_and(|d| !d.is_empty()),
            "{q}"
        );
    }
}

#[tokio::test]
async fn stats_need_credentials() {
    let r = call(Method::GET, "/api/v1/usage/stats", Auth::None, None).await;
    r.assert_error(401, "authentication_error");
}
