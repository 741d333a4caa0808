//! The provider stand-in's control API (scripts selected by a marker in the
//! request body, the log of what the worker sent upstream), and the
//! non-streaming send route with the waits a stored answer needs.
//!
//! Tests run in parallel against one stand-in: every test puts a fresh
//! [`marker`] in its message text, scripts replies for that marker only and
//! reads back only the requests that carry it.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use super::*;

/// A marker no other test uses, to put in a message's `content`.
pub fn marker() -> String {
    format!("mk-{}", random_uuid())
}

/// `{standin}/_control/{rest}`.
fn control_url(rest: &str) -> String {
    let base = &stack().standin_url;
    assert!(
        !base.is_empty(),
        "E2E_STANDIN_URL is not set: this phase has no provider stand-in"
    );
    format!("{}/_control/{rest}", base.trim_end_matches('/'))
}

/// Registers a script: the next `times` requests (0 = unlimited) whose body
/// contains `marker`, to `provider` ("groq" | "gemini", any when `None`),
/// get `reply` (the stand-in's `Reply`: text, chunks, status, delays, …).
pub async fn script(marker: &str, provider: Option<&str>, reply: Value, times: u32) {
    let mut body = json!({ "contains": marker, "times": times, "reply": reply });
    if let Some(p) = provider {
        body["provider"] = json!(p);
    }
    let resp = reqwest::Client::new()
        .post(control_url("scripts"))
        .json(&body)
        .send()
        .await
        .expect("the stand-in answers");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(status, 201, "register script {body}: {text}");
}

/// The answer requests whose body contains `marker`, in arrival order
/// (`provider`, `model`, `body`, `headers`, `status`, `completed`,
/// `client_disconnected`, …). The title request that follows the first
/// exchange of an untitled conversation also carries the marker; it is left
/// out here (see [`title_requests`]).
pub async fn requests(marker: &str) -> Vec<Value> {
    all_requests(marker)
        .await
        .into_iter()
        .filter(|r| !is_title_request(r))
        .collect()
}

/// The automatic-title requests carrying `marker`.
pub async fn title_requests(marker: &str) -> Vec<Value> {
    all_requests(marker)
        .await
        .into_iter()
        .filter(is_title_request)
        .collect()
}

fn is_title_request(r: &Value) -> bool {
    r["body"].to_string().contains("Write a short title")
}

/// Every provider request whose body contains `marker`, titles included.
pub async fn all_requests(marker: &str) -> Vec<Value> {
    let url = control_url(&format!("requests?contains={}", query_encode(marker)));
    let resp = reqwest::get(url).await.expect("the stand-in answers");
    assert_eq!(resp.status(), 200, "list stand-in requests");
    let json: Value = resp.json().await.expect("JSON list of requests");
    json["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data is a list: {json}"))
        .clone()
}

/// The providers of the requests carrying `marker`, in order.
pub async fn providers_called(marker: &str) -> Vec<String> {
    requests(marker)
        .await
        .iter()
        .map(|r| r["provider"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Polls the requests carrying `marker` until `done` holds (at most
/// `within`); returns the last list seen, whether or not `done` held.
pub async fn wait_for_requests(
    marker: &str,
    within: Duration,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let started = Instant::now();
    loop {
        let found = requests(marker).await;
        if done(&found) || started.elapsed() >= within {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------
// Sending and reading back messages.
// ---------------------------------------------------------------------------

/// `/api/v1/conversations/{id}/messages/stream`.
pub fn stream_path(id: &str) -> String {
    format!("{}/stream", messages_path(id))
}

/// `POST /api/v1/conversations/{id}/messages` with this body.
pub async fn send_message(auth: Auth<'_>, id: &str, body: &Value) -> Reply {
    call(Method::POST, &messages_path(id), auth, Some(body)).await
}

/// Sends (asserting 201) and returns `{user_message, assistant_message}`.
pub async fn send_ok(access: &str, id: &str, body: &Value) -> Value {
    let r = send_message(Auth::Bearer(access), id, body).await;
    assert_eq!(r.status, 201, "send {body}: {}", r.text);
    r.json
}

/// A user with a conversation made with `body` (e.g. a system prompt).
pub async fn user_with_conversation(body: &Value) -> (Session, String) {
    let s = new_user().await;
    let c = create_conversation(&s.access, body).await;
    let id = id_of(&c);
    (s, id)
}

/// Every message of a conversation (first page of up to 100, asserting 200).
pub async fn messages_of(access: &str, id: &str) -> Vec<Value> {
    let r = list_messages(Auth::Bearer(access), id, "limit=100").await;
    page_of(&r).items
}

/// Waits (polling the database, which spends no rate-limit budget) until
/// the conversation has `n` messages, at most `within`; then returns them
/// as the API lists them.
pub async fn wait_for_messages(access: &str, id: &str, n: usize, within: Duration) -> Vec<Value> {
    let started = Instant::now();
    while (db_message_count(id).await as usize) < n && started.elapsed() < within {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    messages_of(access, id).await
}

/// The stored assistant message of a conversation with one exchange,
/// waiting up to `within` for it to be stored (streams store it at the end).
pub async fn stored_answer(access: &str, id: &str, within: Duration) -> Value {
    let all = wait_for_messages(access, id, 2, within).await;
    assert_eq!(
        all.len(),
        2,
        "one user and one assistant message within {within:?}: {all:?}"
    );
    assert_eq!(all[0]["role"], "user", "{all:?}");
    assert_eq!(all[1]["role"], "assistant", "{all:?}");
    assert_message(&all[1]);
    all[1].clone()
}

/// USD for `input` and `output` tokens at these prices per million tokens.
pub fn cost(input: u64, output: u64, input_price: f64, output_price: f64) -> f64 {
    (input as f64 * input_price + output as f64 * output_price) / 1e6
}

/// Asserts `m.cost_usd` equals `want` within 1e-12.
pub fn assert_cost(m: &Value, want: f64) {
    let got = m["cost_usd"]
        .as_f64()
        .unwrap_or_else(|| panic!("cost_usd is a number: {m}"));
    assert!(
        (got - want).abs() < 1e-12,
        "cost_usd: expected {want}, got {got}: {m}"
    );
}
