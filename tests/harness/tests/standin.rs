//! Tests of the LLM provider stand-in, started in-process on port 0 (and once
//! as the `provider-standin` binary).

use std::time::{Duration, Instant};

use harness::standin::{serve, StandIn, CANNED_ANSWER, CANNED_THINKING};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};

const GROQ_MODEL: &str = "openai/gpt-oss-20b";
const GEMINI_MODEL: &str = "gemini-2.5-flash-lite";

async fn start() -> StandIn {
    serve(([127, 0, 0, 1], 0).into())
        .await
        .expect("the stand-in starts")
}

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client builds")
}

/// Registers a script; returns its id.
async fn script(standin: &StandIn, spec: Value) -> u64 {
    let response = client()
        .post(format!("{}/_control/scripts", standin.url()))
        .json(&spec)
        .send()
        .await
        .expect("script request");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("script answer");
    body["id"].as_u64().expect("script id")
}

async fn recorded(standin: &StandIn, marker: &str) -> Vec<Value> {
    let body: Value = client()
        .get(format!("{}/_control/requests", standin.url()))
        .query(&[("contains", marker)])
        .send()
        .await
        .expect("requests request")
        .json()
        .await
        .expect("requests answer");
    body["data"].as_array().expect("data array").clone()
}

/// Polls the request log until `check` holds for the only request with
/// `marker`, for at most 5 s.
async fn wait_for_record(standin: &StandIn, marker: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let records = recorded(standin, marker).await;
        assert_eq!(records.len(), 1, "one request with {marker}");
        if check(&records[0]) {
            return records[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "record never matched: {}",
            records[0]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn groq_body(model: &str, text: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "messages": [
            { "role": "system", "content": "You are terse." },
            { "role": "user", "content": text },
        ],
        "stream": stream,
        "max_completion_tokens": 1024,
        "temperature": 0.7,
    })
}

async fn groq(standin: &StandIn, body: &Value) -> Response {
    client()
        .post(format!("{}/chat/completions", standin.groq_base_url()))
        .bearer_auth("test-key")
        .json(body)
        .send()
        .await
        .expect("groq request")
}

fn gemini_body(text: &str, thoughts: bool) -> Value {
    json!({
        "contents": [{ "role": "user", "parts": [{ "text": text }] }],
        "systemInstruction": { "parts": [{ "text": "You are terse." }] },
        "generationConfig": {
            "temperature": 0.7,
            "maxOutputTokens": 1024,
            "thinkingConfig": { "includeThoughts": thoughts, "thinkingBudget": -1 },
        },
    })
}

async fn gemini(standin: &StandIn, model: &str, stream: bool, body: &Value) -> Response {
    let method = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    client()
        .post(format!(
            "{}/models/{model}:{method}",
            standin.gemini_base_url()
        ))
        .header("x-goog-api-key", "test-key")
        .json(body)
        .send()
        .await
        .expect("gemini request")
}

/// The `data:` payloads of an SSE body whose events end with `separator`.
fn sse_data(text: &str, separator: &str) -> Vec<String> {
    assert!(
        text.ends_with(separator),
        "body ends with an event: {text:?}"
    );
    text.split(separator)
        .filter(|event| !event.is_empty())
        .map(|event| {
            event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data line: {event:?}"))
                .to_owned()
        })
        .collect()
}

fn parse(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or_else(|err| panic!("bad JSON {data:?}: {err}"))
}

fn content_type(response: &Response) -> String {
    response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Reads the body chunk by chunk until it ends or fails; returns the text
/// read and whether it ended cleanly.
async fn read_until_end(mut response: Response) -> (String, bool) {
    let mut text = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => text.extend_from_slice(&chunk),
            Ok(None) => return (String::from_utf8_lossy(&text).into_owned(), true),
            Err(_) => return (String::from_utf8_lossy(&text).into_owned(), false),
        }
    }
}

#[tokio::test]
async fn groq_non_stream_has_the_chat_completion_shape() {
    let standin = start().await;
    let response = groq(&standin, &groq_body(GROQ_MODEL, "ns-1 hello there", false)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(content_type(&response).starts_with("application/json"));
    let text = response.text().await.expect("body");
    assert!(
        text.starts_with(r#"{"id":"chatcmpl-"#),
        "field order: {text}"
    );
    let body = parse(&text);
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], GROQ_MODEL);
    assert!(body["created"]
        .as_u64()
        .is_some_and(|created| created > 1_700_000_000));
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(
        choice["message"],
        json!({ "role": "assistant", "content": CANNED_ANSWER })
    );
    assert_eq!(choice["logprobs"], Value::Null);
    assert_eq!(choice["finish_reason"], "stop");
    let usage = &body["usage"];
    // "You are terse." + "ns-1 hello there": 6 words; the canned answer: 10 chunks.
    assert_eq!(usage["prompt_tokens"], 6);
    assert_eq!(usage["completion_tokens"], 10);
    assert_eq!(usage["total_tokens"], 16);
    assert!(usage["queue_time"].is_number() && usage["prompt_time"].is_number());
    assert!(usage["completion_time"].is_number());
    assert_eq!(body["system_fingerprint"], "fp_standin");
    assert!(body["x_groq"]["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("req_")));
}

#[tokio::test]
async fn groq_stream_sends_the_exact_chunk_sequence() {
    let standin = start().await;
    script(
        &standin,
        json!({ "contains": "gs-1", "reply": { "chunks": ["Hel", "lo", "!"] } }),
    )
    .await;
    let mut body = groq_body(GROQ_MODEL, "gs-1", true);
    body["stream_options"] = json!({ "include_usage": true });
    let response = groq(&standin, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "text/event-stream");
    let text = response.text().await.expect("body");
    let data = sse_data(&text, "\n\n");
    assert_eq!(data.len(), 1 + 3 + 1 + 1 + 1, "{text}");
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| parse(d)).collect();

    let first = &chunks[0];
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["model"], GROQ_MODEL);
    assert_eq!(first["system_fingerprint"], "fp_standin");
    assert_eq!(
        first["choices"],
        json!([{ "index": 0, "delta": { "role": "assistant", "content": "" },
                 "logprobs": null, "finish_reason": null }])
    );
    let request_id = first["x_groq"]["id"]
        .as_str()
        .expect("x_groq.id")
        .to_owned();
    let id = first["id"].as_str().expect("id").to_owned();
    for chunk in &chunks {
        assert_eq!(chunk["id"], id.as_str());
    }

    let pieces: Vec<&str> = chunks[1..4]
        .iter()
        .map(|chunk| {
            assert_eq!(chunk["choices"][0]["finish_reason"], Value::Null);
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .expect("content delta")
        })
        .collect();
    assert_eq!(pieces, ["Hel", "lo", "!"]);

    let finish = &chunks[4];
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["x_groq"]["id"], request_id.as_str());
    let usage = &finish["x_groq"]["usage"];
    assert_eq!(usage["prompt_tokens"], 4);
    assert_eq!(usage["completion_tokens"], 3);
    assert_eq!(usage["total_tokens"], 7);

    let trailing = &chunks[5];
    assert_eq!(trailing["choices"], json!([]));
    assert_eq!(&trailing["usage"], usage);

    // Without include_usage: no trailing usage chunk.
    let response = groq(&standin, &groq_body(GROQ_MODEL, "gs-2", true)).await;
    let text = response.text().await.expect("body");
    let data = sse_data(&text, "\n\n");
    assert_eq!(data.len(), 1 + 10 + 1 + 1);
    let finish = parse(&data[data.len() - 2]);
    assert_eq!(finish["x_groq"]["usage"]["completion_tokens"], 10);
    assert!(finish.get("usage").is_none());
    let answer: String = data[1..11]
        .iter()
        .map(|d| {
            parse(d)["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(answer, CANNED_ANSWER);
}

#[tokio::test]
async fn groq_reasoning_deltas_when_asked() {
    let standin = start().await;
    let mut body = groq_body(GROQ_MODEL, "gr-1", true);
    body["include_reasoning"] = json!(true);
    body["reasoning_effort"] = json!("low");
    let text = groq(&standin, &body).await.text().await.expect("body");
    let data = sse_data(&text, "\n\n");
    let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| parse(d)).collect();
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning"].as_str())
        .collect();
    assert_eq!(reasoning, CANNED_THINKING);
    let first_content = chunks
        .iter()
        .position(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        })
        .expect("content");
    let last_reasoning = chunks
        .iter()
        .rposition(|c| c["choices"][0]["delta"]["reasoning"].is_string())
        .expect("reasoning");
    assert!(last_reasoning < first_content, "reasoning comes first");
    let usage = &chunks.last().expect("finish")["x_groq"]["usage"];
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 12);
    assert_eq!(usage["completion_tokens"], 22);

    // A non-reasoning model gives none, even when asked.
    let mut body = groq_body("meta-llama/llama-4-scout-17b-16e-instruct", "gr-2", false);
    body["include_reasoning"] = json!(true);
    let body: Value = groq(&standin, &body).await.json().await.expect("json");
    assert!(body["choices"][0]["message"].get("reasoning").is_none());

    // Scripted thinking is sent whatever the request asked.
    script(
        &standin,
        json!({ "contains": "gr-3", "reply": { "text": "Yes.", "thinking": "Let me see." } }),
    )
    .await;
    let body: Value = groq(&standin, &groq_body(GROQ_MODEL, "gr-3", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["choices"][0]["message"]["reasoning"], "Let me see.");
    assert_eq!(body["choices"][0]["message"]["content"], "Yes.");
}

#[tokio::test]
async fn gemini_non_stream_has_the_generate_content_shape() {
    let standin = start().await;
    let response = gemini(
        &standin,
        GEMINI_MODEL,
        false,
        &gemini_body("gn-1 hi", false),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.expect("body");
    assert!(text.starts_with(r#"{"candidates":"#), "field order: {text}");
    let body = parse(&text);
    let candidate = &body["candidates"][0];
    assert_eq!(
        candidate["content"],
        json!({ "parts": [{ "text": CANNED_ANSWER }], "role": "model" })
    );
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(candidate["index"], 0);
    let usage = &body["usageMetadata"];
    assert_eq!(usage["promptTokenCount"], 5);
    assert_eq!(usage["candidatesTokenCount"], 10);
    assert_eq!(usage["totalTokenCount"], 15);
    assert!(usage.get("thoughtsTokenCount").is_none());
    assert_eq!(body["modelVersion"], GEMINI_MODEL);
    assert!(body["responseId"].as_str().is_some_and(|id| !id.is_empty()));

    // With thoughts asked for: a thought part first, and thoughtsTokenCount.
    let body: Value = gemini(&standin, GEMINI_MODEL, false, &gemini_body("gn-2", true))
        .await
        .json()
        .await
        .expect("json");
    let parts = &body["candidates"][0]["content"]["parts"];
    assert_eq!(
        parts[0],
        json!({ "text": CANNED_THINKING, "thought": true })
    );
    assert_eq!(parts[1], json!({ "text": CANNED_ANSWER }));
    assert_eq!(body["usageMetadata"]["thoughtsTokenCount"], 12);
    assert_eq!(body["usageMetadata"]["totalTokenCount"], 4 + 10 + 12);
}

#[tokio::test]
async fn gemini_stream_uses_sse_with_crlf_and_ends_without_done() {
    let standin = start().await;
    script(
        &standin,
        json!({ "contains": "gst-1", "provider": "gemini",
                "reply": { "chunks": ["One", " two"], "thinking_chunks": ["Hmm", "."] } }),
    )
    .await;
    let response = gemini(&standin, GEMINI_MODEL, true, &gemini_body("gst-1", true)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "text/event-stream");
    let text = response.text().await.expect("body");
    assert!(!text.contains("[DONE]"));
    assert!(
        !text.replace("\r\n\r\n", "").contains('\n'),
        "CRLF only: {text:?}"
    );
    let events: Vec<Value> = sse_data(&text, "\r\n\r\n")
        .iter()
        .map(|d| parse(d))
        .collect();
    assert_eq!(events.len(), 4);
    let parts: Vec<&Value> = events
        .iter()
        .map(|event| &event["candidates"][0]["content"]["parts"][0])
        .collect();
    assert_eq!(parts[0], &json!({ "text": "Hmm", "thought": true }));
    assert_eq!(parts[1], &json!({ "text": ".", "thought": true }));
    assert_eq!(parts[2], &json!({ "text": "One" }));
    assert_eq!(parts[3], &json!({ "text": " two" }));
    for event in &events[..3] {
        assert!(event["candidates"][0].get("finishReason").is_none());
        assert!(event.get("usageMetadata").is_none());
        assert_eq!(event["candidates"][0]["content"]["role"], "model");
    }
    let last = &events[3];
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(last["usageMetadata"]["promptTokenCount"], 4);
    assert_eq!(last["usageMetadata"]["candidatesTokenCount"], 2);
    assert_eq!(last["usageMetadata"]["thoughtsTokenCount"], 2);
    assert_eq!(last["usageMetadata"]["totalTokenCount"], 8);
    assert_eq!(last["modelVersion"], GEMINI_MODEL);

    // Without alt=sse: one streamed JSON array of the same responses.
    let response = client()
        .post(format!(
            "{}/models/{GEMINI_MODEL}:streamGenerateContent",
            standin.gemini_base_url()
        ))
        .header("x-goog-api-key", "k")
        .json(&gemini_body("gst-2", false))
        .send()
        .await
        .expect("request");
    let array: Value = response.json().await.expect("a JSON array");
    assert_eq!(array.as_array().map(Vec::len), Some(10));
}

#[tokio::test]
async fn missing_keys_get_the_providers_auth_errors() {
    let standin = start().await;
    let url = format!("{}/chat/completions", standin.groq_base_url());
    let body = groq_body(GROQ_MODEL, "auth-1", false);
    for auth in [None, Some("Bearer "), Some("Basic abc")] {
        let mut request = client().post(&url).json(&body);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let error: Value = response.json().await.expect("json");
        assert_eq!(
            error,
            json!({ "error": { "message": "Invalid API Key",
                               "type": "invalid_request_error", "code": "invalid_api_key" } })
        );
    }

    let url = format!(
        "{}/models/{GEMINI_MODEL}:generateContent",
        standin.gemini_base_url()
    );
    let response = client()
        .post(&url)
        .json(&gemini_body("auth-2", false))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let error: Value = response.json().await.expect("json");
    assert_eq!(
        error,
        json!({ "error": { "code": 401,
                           "message": "API key not valid. Please pass a valid API key.",
                           "status": "UNAUTHENTICATED" } })
    );
    // Gemini also takes the key as a query parameter.
    let response = client()
        .post(format!("{url}?key=k"))
        .json(&gemini_body("auth-3", false))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn retired_models_answer_404() {
    let standin = start().await;
    for model in ["llama-3.1-8b-instant", "llama-3.3-70b-versatile"] {
        let response = groq(&standin, &groq_body(model, "ret-1", true)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let error: Value = response.json().await.expect("json");
        assert_eq!(
            error,
            json!({ "error": {
                "message": format!("The model `{model}` does not exist or you do not have access to it."),
                "type": "invalid_request_error", "code": "model_not_found" } })
        );
    }
    for model in ["gemini-1.5-flash", "gemini-1.5-pro-002", "gemini-2.0-flash"] {
        let response = gemini(&standin, model, true, &gemini_body("ret-2", false)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let error: Value = response.json().await.expect("json");
        assert_eq!(
            error,
            json!({ "error": { "code": 404,
                "message": format!("models/{model} is not found for API version v1beta, or is not supported for generateContent."),
                "status": "NOT_FOUND" } })
        );
    }
    // Retired-model rejections do not use up scripts.
    script(
        &standin,
        json!({ "contains": "ret-3", "reply": { "text": "alive" } }),
    )
    .await;
    let response = groq(&standin, &groq_body("llama-3.1-8b-instant", "ret-3", false)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = groq(&standin, &groq_body(GROQ_MODEL, "ret-3", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "alive");
}

#[tokio::test]
async fn scripted_429_carries_retry_after() {
    let standin = start().await;
    script(
        &standin,
        json!({ "contains": "rl-1", "reply": { "status": 429, "retry_after": 7 } }),
    )
    .await;
    let response = groq(&standin, &groq_body(GROQ_MODEL, "rl-1", true)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "7");
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");
    assert!(error["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("try again in 7s")));

    script(
        &standin,
        json!({ "contains": "rl-2", "reply": { "status": 429, "retry_after": 3 } }),
    )
    .await;
    let response = gemini(&standin, GEMINI_MODEL, true, &gemini_body("rl-2", false)).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "3");
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["code"], 429);
    assert_eq!(error["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(
        error["error"]["details"],
        json!([{ "@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s" }])
    );

    // The script was used once; the next request gets the canned answer.
    let response = groq(&standin, &groq_body(GROQ_MODEL, "rl-1", false)).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn scripted_server_errors_and_raw_error_bodies() {
    let standin = start().await;
    script(
        &standin,
        json!({ "contains": "e5-1", "reply": { "status": 500 } }),
    )
    .await;
    let response = groq(&standin, &groq_body(GROQ_MODEL, "e5-1", true)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["type"], "internal_server_error");

    script(
        &standin,
        json!({ "contains": "e5-2", "reply": { "status": 500 } }),
    )
    .await;
    let response = gemini(&standin, GEMINI_MODEL, false, &gemini_body("e5-2", false)).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["status"], "INTERNAL");
    assert_eq!(error["error"]["code"], 500);

    script(
        &standin,
        json!({ "contains": "e5-3", "reply": { "status": 498 } }),
    )
    .await;
    let response = groq(&standin, &groq_body(GROQ_MODEL, "e5-3", true)).await;
    assert_eq!(response.status().as_u16(), 498);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["code"], "capacity_exceeded");

    script(
        &standin,
        json!({ "contains": "e5-4", "reply": { "status": 503 } }),
    )
    .await;
    let response = gemini(&standin, GEMINI_MODEL, true, &gemini_body("e5-4", false)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["status"], "UNAVAILABLE");

    let raw =
        json!({ "error": { "message": "model decommissioned", "code": "model_decommissioned" } });
    script(
        &standin,
        json!({ "contains": "e5-5", "reply": { "status": 400, "error_body": raw } }),
    )
    .await;
    let response = groq(&standin, &groq_body(GROQ_MODEL, "e5-5", false)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.json::<Value>().await.expect("json"), raw);
}

#[tokio::test]
async fn invalid_request_bodies_get_400() {
    let standin = start().await;
    let response = client()
        .post(format!("{}/chat/completions", standin.groq_base_url()))
        .bearer_auth("k")
        .body("{not json bad-1")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["type"], "invalid_request_error");

    let response = groq(&standin, &json!({ "model": GROQ_MODEL, "marker": "bad-2" })).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let response = gemini(
        &standin,
        GEMINI_MODEL,
        false,
        &json!({ "contents": "bad-3" }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["status"], "INVALID_ARGUMENT");

    // The bad requests are recorded all the same.
    let records = recorded(&standin, "bad-1").await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["body"], "{not json bad-1");
    assert_eq!(records[0]["status"], 400);
}

#[tokio::test]
async fn output_budget_cuts_the_answer_with_length() {
    let standin = start().await;
    let mut body = groq_body(GROQ_MODEL, "len-1", false);
    body["max_completion_tokens"] = json!(3);
    let body: Value = groq(&standin, &body).await.json().await.expect("json");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["choices"][0]["message"]["content"], "This is a");

    script(
        &standin,
        json!({ "contains": "len-2", "reply": { "text": "Complete answer.", "finish_reason": "length" } }),
    )
    .await;
    let text = gemini(&standin, GEMINI_MODEL, true, &gemini_body("len-2", false))
        .await
        .text()
        .await
        .expect("body");
    let events = sse_data(&text, "\r\n\r\n");
    let last = parse(events.last().expect("events"));
    assert_eq!(last["candidates"][0]["finishReason"], "MAX_TOKENS");
}

#[tokio::test]
async fn usage_overrides_and_omission() {
    let standin = start().await;
    script(
        &standin,
        json!({ "contains": "use-1", "times": 2, "reply": {
            "text": "ok", "thinking": "hm",
            "usage": { "input_tokens": 100, "output_tokens": 20, "thinking_tokens": 5 } } }),
    )
    .await;
    let body: Value = groq(&standin, &groq_body(GROQ_MODEL, "use-1", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["usage"]["prompt_tokens"], 100);
    assert_eq!(body["usage"]["completion_tokens"], 25);
    assert_eq!(
        body["usage"]["completion_tokens_details"]["reasoning_tokens"],
        5
    );
    let body: Value = gemini(&standin, GEMINI_MODEL, false, &gemini_body("use-1", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["usageMetadata"],
        json!({ "promptTokenCount": 100, "candidatesTokenCount": 20, "totalTokenCount": 125,
                "promptTokensDetails": [{ "modality": "TEXT", "tokenCount": 100 }],
                "thoughtsTokenCount": 5 })
    );

    script(
        &standin,
        json!({ "contains": "use-2", "times": 2, "reply": { "omit_usage": true } }),
    )
    .await;
    let mut request = groq_body(GROQ_MODEL, "use-2", true);
    request["stream_options"] = json!({ "include_usage": true });
    let text = groq(&standin, &request).await.text().await.expect("body");
    assert!(!text.contains("usage"), "{text}");
    let text = gemini(&standin, GEMINI_MODEL, true, &gemini_body("use-2", false))
        .await
        .text()
        .await
        .expect("body");
    assert!(!text.contains("usageMetadata"), "{text}");
}

#[tokio::test]
async fn chunk_delay_really_streams() {
    let standin = start().await;
    script(
        &standin,
        json!({ "contains": "cd-1", "reply": {
            "chunks": ["a", "b", "c", "d", "e"], "chunk_delay_ms": 150, "first_byte_delay_ms": 200 } }),
    )
    .await;
    let started = Instant::now();
    let mut response = groq(&standin, &groq_body(GROQ_MODEL, "cd-1", true)).await;
    let headers_at = started.elapsed();
    assert!(
        headers_at >= Duration::from_millis(200),
        "first byte delay: {headers_at:?}"
    );
    let mut text = String::new();
    let mut first_content_at = None;
    while let Some(chunk) = response.chunk().await.expect("chunk") {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if first_content_at.is_none() && text.contains(r#""content":"a""#) {
            first_content_at = Some(Instant::now());
        }
    }
    let spread = first_content_at.expect("first chunk seen").elapsed();
    // Four delays of 150 ms lie between the first and the last answer chunk.
    assert!(
        spread >= Duration::from_millis(500),
        "chunks spread over {spread:?}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn drop_after_chunks_truncates_the_body() {
    let standin = start().await;
    script(
        &standin,
        json!({ "contains": "drop-1", "reply": { "chunks": ["a", "b", "c", "d"], "drop_after_chunks": 2 } }),
    )
    .await;
    let response = groq(&standin, &groq_body(GROQ_MODEL, "drop-1", true)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (text, clean) = read_until_end(response).await;
    assert!(!clean, "the body must fail, not end cleanly");
    assert!(text.contains(r#""content":"b""#), "{text}");
    assert!(!text.contains(r#""content":"c""#));
    assert!(!text.contains("finish_reason\":\"stop"));
    assert!(!text.contains("[DONE]"));

    script(
        &standin,
        json!({ "contains": "drop-2", "reply": { "chunks": ["a", "b", "c"], "drop_after_chunks": 1 } }),
    )
    .await;
    let response = gemini(&standin, GEMINI_MODEL, true, &gemini_body("drop-2", false)).await;
    let (text, clean) = read_until_end(response).await;
    assert!(!clean);
    assert_eq!(sse_data(&text, "\r\n\r\n").len(), 1);
    assert!(!text.contains("finishReason"));

    // A whole (non-streamed) body is cut in the middle.
    script(
        &standin,
        json!({ "contains": "drop-3", "reply": { "drop_after_chunks": 0 } }),
    )
    .await;
    let response = groq(&standin, &groq_body(GROQ_MODEL, "drop-3", false)).await;
    assert!(response.json::<Value>().await.is_err());
    let record = wait_for_record(&standin, "drop-3", |r| r["status"] == 200).await;
    assert_eq!(record["completed"], false);
}

#[tokio::test]
async fn stall_after_chunks_goes_quiet_and_a_dropped_client_is_recorded() {
    let standin = start().await;
    script(
        &standin,
        json!({ "contains": "stall-1", "reply": { "chunks": ["a", "b", "c"], "stall_after_chunks": 1 } }),
    )
    .await;
    let mut response = groq(&standin, &groq_body(GROQ_MODEL, "stall-1", true)).await;
    let mut text = String::new();
    while !text.contains(r#""content":"a""#) {
        let chunk = response.chunk().await.expect("chunk").expect("more body");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let more = tokio::time::timeout(Duration::from_millis(400), response.chunk()).await;
    assert!(more.is_err(), "no further bytes while stalled: {more:?}");
    let record = recorded(&standin, "stall-1").await;
    assert_eq!(record[0]["client_disconnected"], false);
    assert_eq!(record[0]["completed"], false);

    drop(response);
    let record = wait_for_record(&standin, "stall-1", |r| r["client_disconnected"] == true).await;
    assert_eq!(record["completed"], false);
}

#[tokio::test]
async fn stall_before_headers_never_answers() {
    let standin = start().await;
    script(
        &standin,
        json!({ "contains": "sbh-1", "reply": { "stall_before_headers": true } }),
    )
    .await;
    let request = client()
        .post(format!(
            "{}/models/{GEMINI_MODEL}:generateContent",
            standin.gemini_base_url()
        ))
        .header("x-goog-api-key", "k")
        .json(&gemini_body("sbh-1", false))
        .timeout(Duration::from_millis(400))
        .send();
    let error = request.await.expect_err("no answer");
    assert!(error.is_timeout(), "{error}");
    let record = wait_for_record(&standin, "sbh-1", |r| r["client_disconnected"] == true).await;
    assert_eq!(record["status"], Value::Null);
    assert_eq!(record["completed"], false);
}

#[tokio::test]
async fn scripts_match_by_marker_fifo_with_times_and_filters() {
    let standin = start().await;
    let first = script(
        &standin,
        json!({ "contains": "fifo-1", "times": 2, "reply": { "text": "first" } }),
    )
    .await;
    let second = script(
        &standin,
        json!({ "contains": "fifo-1", "reply": { "text": "second" } }),
    )
    .await;
    assert!(second > first);
    let mut answers = Vec::new();
    for _ in 0..4 {
        let body: Value = groq(&standin, &groq_body(GROQ_MODEL, "say fifo-1 now", false))
            .await
            .json()
            .await
            .expect("json");
        answers.push(
            body["choices"][0]["message"]["content"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        );
    }
    assert_eq!(answers, ["first", "first", "second", CANNED_ANSWER]);

    // Provider and model filters.
    script(
        &standin,
        json!({ "contains": "filt-1", "provider": "gemini", "times": 0, "reply": { "text": "gem" } }),
    )
    .await;
    script(
        &standin,
        json!({ "contains": "filt-1", "model": "openai/gpt-oss-120b", "times": 0, "reply": { "text": "big" } }),
    )
    .await;
    let groq_text = |body: Value| {
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let gemini_text = |body: Value| {
        body["candidates"][0]["content"]["parts"][0]["text"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let small: Value = groq(&standin, &groq_body(GROQ_MODEL, "filt-1", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(groq_text(small), CANNED_ANSWER);
    let big: Value = groq(&standin, &groq_body("openai/gpt-oss-120b", "filt-1", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(groq_text(big), "big");
    for _ in 0..3 {
        let body: Value = gemini(&standin, GEMINI_MODEL, false, &gemini_body("filt-1", false))
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(gemini_text(body), "gem");
    }

    // Listing and deleting by marker.
    let listed: Value = client()
        .get(format!(
            "{}/_control/scripts?contains=filt-1",
            standin.url()
        ))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(2));
    let deleted: Value = client()
        .delete(format!(
            "{}/_control/scripts?contains=filt-1",
            standin.url()
        ))
        .send()
        .await
        .expect("delete")
        .json()
        .await
        .expect("json");
    assert_eq!(deleted["deleted"], 2);
    let body: Value = gemini(&standin, GEMINI_MODEL, false, &gemini_body("filt-1", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(gemini_text(body), CANNED_ANSWER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_tests_are_isolated_by_marker() {
    let standin = start().await;
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let url = standin.url();
            let groq_url = standin.groq_base_url();
            let gemini_url = standin.gemini_base_url();
            tokio::spawn(async move {
                let marker = format!("par-{i}-x");
                let text = format!("answer number {i}");
                let spec = json!({ "contains": marker, "times": 2,
                                   "reply": { "text": text, "chunk_delay_ms": 5 } });
                let response = client()
                    .post(format!("{url}/_control/scripts"))
                    .json(&spec)
                    .send()
                    .await
                    .expect("script");
                assert_eq!(response.status(), StatusCode::CREATED);
                let groq_answer = client()
                    .post(format!("{groq_url}/chat/completions"))
                    .bearer_auth("k")
                    .json(&groq_body(GROQ_MODEL, &marker, true))
                    .send()
                    .await
                    .expect("groq")
                    .text()
                    .await
                    .expect("body");
                let streamed: String = sse_data(&groq_answer, "\n\n")
                    .iter()
                    .filter(|d| d.as_str() != "[DONE]")
                    .filter_map(|d| {
                        parse(d)["choices"][0]["delta"]["content"]
                            .as_str()
                            .map(str::to_owned)
                    })
                    .collect();
                assert_eq!(streamed, text);
                let gemini_answer: Value = client()
                    .post(format!(
                        "{gemini_url}/models/{GEMINI_MODEL}:generateContent"
                    ))
                    .header("x-goog-api-key", "k")
                    .json(&gemini_body(&marker, false))
                    .send()
                    .await
                    .expect("gemini")
                    .json()
                    .await
                    .expect("json");
                assert_eq!(
                    gemini_answer["candidates"][0]["content"]["parts"][0]["text"],
                    text
                );
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task succeeded");
    }
    for i in 0..16 {
        assert_eq!(recorded(&standin, &format!("par-{i}-x")).await.len(), 2);
    }
}

#[tokio::test]
async fn requests_are_recorded_with_a_contains_filter() {
    let standin = start().await;
    let mut body = groq_body(GROQ_MODEL, "rec-1 first", true);
    body["include_reasoning"] = json!(true);
    groq(&standin, &body).await.text().await.expect("body");
    gemini(
        &standin,
        GEMINI_MODEL,
        true,
        &gemini_body("rec-1 second", false),
    )
    .await
    .text()
    .await
    .expect("body");
    groq(&standin, &groq_body(GROQ_MODEL, "rec-2 other", false))
        .await
        .text()
        .await
        .expect("body");

    let records = wait_for_record_count(&standin, "rec-1", 2).await;
    let groq_record = &records[0];
    assert_eq!(groq_record["provider"], "groq");
    assert_eq!(groq_record["path"], "/groq/openai/v1/chat/completions");
    assert_eq!(groq_record["model"], GROQ_MODEL);
    assert_eq!(groq_record["stream"], true);
    assert_eq!(groq_record["headers"]["authorization"], "Bearer test-key");
    assert_eq!(groq_record["headers"]["content-type"], "application/json");
    assert_eq!(groq_record["body"], body);
    assert_eq!(groq_record["status"], 200);
    assert_eq!(groq_record["completed"], true);
    assert_eq!(groq_record["client_disconnected"], false);
    assert!(groq_record["received_at_ms"]
        .as_u64()
        .is_some_and(|ms| ms > 1_700_000_000_000));

    let gemini_record = &records[1];
    assert_eq!(gemini_record["provider"], "gemini");
    assert_eq!(
        gemini_record["path"],
        format!("/gemini/v1beta/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse")
    );
    assert_eq!(gemini_record["model"], GEMINI_MODEL);
    assert_eq!(gemini_record["stream"], true);
    assert_eq!(gemini_record["headers"]["x-goog-api-key"], "test-key");
    assert!(gemini_record["received_at_ms"].as_u64() >= groq_record["received_at_ms"].as_u64());

    assert_eq!(recorded(&standin, "rec-2").await.len(), 1);
    assert_eq!(recorded(&standin, "rec-").await.len(), 3);
    assert!(recorded(&standin, "rec-3").await.is_empty());
}

/// Polls until `count` requests with `marker` are recorded and completed.
async fn wait_for_record_count(standin: &StandIn, marker: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let records = recorded(standin, marker).await;
        if records.len() == count && records.iter().all(|r| r["completed"] == true) {
            return records;
        }
        assert!(Instant::now() < deadline, "records: {records:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn control_api_validates_scripts() {
    let standin = start().await;
    let health: Value = client()
        .get(format!("{}/_control/health", standin.url()))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health, json!({ "status": "ok" }));
    for bad in [
        json!({ "reply": {} }),
        json!({ "contains": "x", "reply": { "txt": "typo" } }),
        json!({ "contains": "x", "reply": { "status": 1000 } }),
        json!({ "contains": "x", "provider": "openai" }),
        json!({ "contains": "x", "reply": { "finish_reason": "done" } }),
    ] {
        let response = client()
            .post(format!("{}/_control/scripts", standin.url()))
            .json(&bad)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let response = client()
        .get(format!("{}/nowhere", standin.url()))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn binary_announces_its_port_and_stops_on_sigterm() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_provider-standin"))
        .args(["--port", "0"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .expect("announces in time")
    .expect("reads the line");
    let url = line
        .trim_end()
        .strip_prefix("provider-standin listening on ")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let port: u16 = url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    assert_ne!(port, 0);
    let health = client()
        .get(format!("{url}/_control/health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), StatusCode::OK);

    let pid = child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits in time")
        .expect("exit status");
    assert!(status.success(), "{status}");
}
