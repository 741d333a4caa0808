//! `POST /api/v1/conversations/{id}/messages` (the whole answer): what is
//! returned and stored, what goes upstream (the context, the options), and
//! every way a send is refused before the model is called. Runs in the
//! PostgreSQL phase against the provider stand-in; every test makes its own
//! user and marks its messages with its own marker.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{
    assert_cost, assert_invalid_field, assert_invalid_fields, assert_message, call, cost,
    create_titled, db, db_message_count, get_conversation, marker, messages_of, messages_path,
    new_user, random_uuid, requests, script, send_message, send_ok, send_raw_as, stream_path,
    user_with_conversation, Auth, Session, DEFAULT_MODEL, FALLBACK_MODEL,
};

/// Asserts the worker sent nothing upstream for `mk`.
async fn assert_no_upstream(mk: &str) {
    // A request the worker made would already be recorded when it answered;
    // a short pause also covers a late, detached one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = requests(mk).await;
    assert!(
        seen.is_empty(),
        "the model was called for a refused send: {seen:?}"
    );
}

/// `(role, content)` of each chat message in a Groq request body.
fn groq_turns(body: &Value) -> Vec<(String, String)> {
    body["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("messages is a list: {body}"))
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap_or_default().to_string(),
                m["content"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn turn(role: &str, content: &str) -> (String, String) {
    (role.to_string(), content.to_string())
}

/// A user and a conversation whose system prompt carries a fresh marker,
/// so that any upstream request for it carries the marker too.
async fn marked_conversation() -> (Session, String, String) {
    let mk = marker();
    let (s, id) =
        user_with_conversation(&json!({ "system_prompt": format!("Be helpful. {mk}") })).await;
    (s, id, mk)
}

#[tokio::test]
async fn a_send_returns_and_stores_both_messages_with_usage_and_cost() {
    let (s, id) = user_with_conversation(&json!({"title": "send"})).await;
    let mk = marker();
    let answer = "The stand-in says hello, and \"quotes\" survive.";
    script(
        &mk,
        Some("groq"),
        json!({"text": answer, "usage": {"input_tokens": 1234, "output_tokens": 567}}),
        1,
    )
    .await;
    let content = format!("Hello there {mk}");
    let started = Instant::now();
    let r = send_message(Auth::Bearer(&s.access), &id, &json!({ "content": content })).await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    assert_eq!(r.status, 201, "{}", r.text);
    r.assert_common_headers();
    assert!(
        r.header("content-type").starts_with("application/json"),
        "content-type: {}",
        r.header("content-type")
    );

    let user = &r.json["user_message"];
    let assistant = &r.json["assistant_message"];
    assert_message(user);
    assert_message(assistant);
    assert_eq!(user["role"], "user", "{user}");
    assert_eq!(user["content"], content.as_str(), "{user}");
    assert_eq!(user["conversation_id"], id.as_str(), "{user}");
    assert_eq!(user["provider"], Value::Null, "{user}");
    assert_eq!(user["status"], "complete", "{user}");

    assert_eq!(assistant["role"], "assistant", "{assistant}");
    assert_eq!(assistant["content"], answer, "{assistant}");
    assert_eq!(assistant["conversation_id"], id.as_str(), "{assistant}");
    assert_eq!(assistant["provider"], "groq", "{assistant}");
    assert_eq!(assistant["model"], DEFAULT_MODEL, "{assistant}");
    assert_eq!(assistant["status"], "complete", "{assistant}");
    assert_eq!(assistant["thinking"], Value::Null, "{assistant}");
    assert_eq!(assistant["input_tokens"], 1234, "{assistant}");
    assert_eq!(assistant["output_tokens"], 567, "{assistant}");
    assert_cost(assistant, cost(1234, 567, 0.075, 0.30));
    let latency = assistant["latency_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("latency_ms is a non-negative integer: {assistant}"));
    assert!(
        latency <= elapsed_ms + 50,
        "latency_ms {latency} exceeds the request's {elapsed_ms} ms"
    );
    assert_ne!(user["id"], assistant["id"]);

    // Both are listed, oldest first, exactly as returned.
    let listed = messages_of(&s.access, &id).await;
    assert_eq!(listed, vec![user.clone(), assistant.clone()]);
    let c = get_conversation(Auth::Bearer(&s.access), &id).await;
    assert_eq!(c.json["message_count"], 2, "{}", c.text);

    // One upstream call, to the default model, ending with the new message.
    let seen = requests(&mk).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["provider"], "groq");
    assert_eq!(seen[0]["model"], DEFAULT_MODEL);
    let turns = groq_turns(&seen[0]["body"]);
    assert_eq!(turns.last(), Some(&turn("user", &content)), "{turns:?}");
}

#[tokio::test]
async fn the_context_is_the_system_prompt_then_the_history_in_order() {
    let system = "You are a terse assistant. Answer in one line.";
    let (s, id) = user_with_conversation(&json!({"system_prompt": system})).await;
    let (mk1, mk2) = (marker(), marker());
    let first_answer = "First answer, from the stand-in.";
    script(&mk1, Some("groq"), json!({ "text": first_answer }), 1).await;
    script(&mk2, Some("groq"), json!({"text": "Second answer."}), 1).await;
    let first = format!("First question {mk1}");
    let second = format!("Second question {mk2}");
    let a1 = send_ok(&s.access, &id, &json!({ "content": first })).await;
    assert_eq!(a1["assistant_message"]["content"], first_answer);
    send_ok(&s.access, &id, &json!({ "content": second })).await;

    let seen = requests(&mk2).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(
        groq_turns(&seen[0]["body"]),
        vec![
            turn("system", system),
            turn("user", &first),
            turn("assistant", first_answer),
            turn("user", &second),
        ]
    );
    assert_eq!(messages_of(&s.access, &id).await.len(), 4);
}

#[tokio::test]
async fn a_gemini_conversation_sends_the_history_as_contents() {
    let system = "Reply briefly.";
    let (s, id) = user_with_conversation(&json!({
        "system_prompt": system,
        "model": FALLBACK_MODEL,
    }))
    .await;
    let (mk1, mk2) = (marker(), marker());
    let first_answer = "Gemini's first answer.";
    script(&mk1, Some("gemini"), json!({ "text": first_answer }), 1).await;
    let first = format!("One {mk1}");
    let second = format!("Two {mk2}");
    let a1 = send_ok(&s.access, &id, &json!({ "content": first })).await;
    assert_eq!(a1["assistant_message"]["provider"], "gemini");
    assert_eq!(a1["assistant_message"]["model"], FALLBACK_MODEL);
    send_ok(&s.access, &id, &json!({ "content": second })).await;

    let seen = requests(&mk2).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["provider"], "gemini");
    assert_eq!(seen[0]["model"], FALLBACK_MODEL);
    let body = &seen[0]["body"];
    assert_eq!(
        body["systemInstruction"]["parts"][0]["text"], system,
        "{body}"
    );
    let contents: Vec<(String, String)> = body["contents"]
        .as_array()
        .unwrap_or_else(|| panic!("contents is a list: {body}"))
        .iter()
        .map(|c| {
            let text: String = c["parts"]
                .as_array()
                .map(|parts| parts.iter().filter_map(|p| p["text"].as_str()).collect())
                .unwrap_or_default();
            (c["role"].as_str().unwrap_or_default().to_string(), text)
        })
        .collect();
    assert_eq!(
        contents,
        vec![
            turn("user", &first),
            turn("model", first_answer),
            turn("user", &second),
        ]
    );
}

#[tokio::test]
async fn a_model_in_the_body_answers_this_send() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(
        &mk,
        Some("gemini"),
        json!({"text": "Answered by Gemini."}),
        1,
    )
    .await;
    let r = send_ok(
        &s.access,
        &id,
        &json!({"content": format!("Which model? {mk}"), "model": FALLBACK_MODEL}),
    )
    .await;
    let a = &r["assistant_message"];
    assert_eq!(a["content"], "Answered by Gemini.", "{a}");
    assert_eq!(a["provider"], "gemini", "{a}");
    assert_eq!(a["model"], FALLBACK_MODEL, "{a}");
    let seen = requests(&mk).await;
    assert_eq!(seen.len(), 1, "only the named model is called: {seen:?}");
    assert_eq!(seen[0]["provider"], "gemini");
    assert_eq!(seen[0]["model"], FALLBACK_MODEL);
}

#[tokio::test]
async fn max_tokens_and_temperature_reach_the_model_and_a_cut_answer_is_complete() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    script(
        &mk,
        Some("groq"),
        json!({"text": "one two three four five six seven eight"}),
        1,
    )
    .await;
    let r = send_ok(
        &s.access,
        &id,
        &json!({"content": format!("Count {mk}"), "max_tokens": 3, "temperature": 0.25}),
    )
    .await;
    let a = &r["assistant_message"];
    assert_eq!(a["content"], "one two three", "{a}");
    assert_eq!(a["status"], "complete", "{a}");
    assert_eq!(a["output_tokens"], 3, "{a}");
    let seen = requests(&mk).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let body = &seen[0]["body"];
    let budget = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"));
    assert_eq!(budget, Some(&json!(3)), "{body}");
    assert_eq!(body["temperature"].as_f64(), Some(0.25), "{body}");
}

#[tokio::test]
async fn content_of_32000_characters_after_trimming_is_accepted() {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    // Characters, not bytes: 'é' is two bytes in UTF-8.
    let head = format!("{mk} ");
    let body = format!("{head}{}", "é".repeat(32_000 - head.chars().count()));
    assert_eq!(body.chars().count(), 32_000);
    let r = send_message(
        Auth::Bearer(&s.access),
        &id,
        &json!({ "content": format!("  \n{body}\t ") }),
    )
    .await;
    assert_eq!(
        r.status,
        201,
        "{}",
        r.text.chars().take(500).collect::<String>()
    );
    assert_eq!(r.json["user_message"]["content"], body.as_str());
    assert_eq!(requests(&mk).await.len(), 1);
}

#[tokio::test]
async fn empty_blank_or_missing_content_is_422() {
    let (s, id, mk) = marked_conversation().await;
    for body in [
        json!({"content": ""}),
        json!({"content": " \n\t  "}),
        json!({"thinking": false}),
        json!({"content": null}),
        json!({"content": 42}),
    ] {
        let r = send_message(Auth::Bearer(&s.access), &id, &body).await;
        assert_invalid_fields(&r, &["content"]);
    }
    assert_eq!(db_message_count(&id).await, 0, "nothing is stored");
    assert_no_upstream(&mk).await;
}

#[tokio::test]
async fn content_over_32000_characters_is_422() {
    let (s, id, mk) = marked_conversation().await;
    let head = format!("{mk} ");
    let content = format!("{head}{}", "x".repeat(32_001 - head.len()));
    assert_eq!(content.chars().count(), 32_001);
    let r = send_message(Auth::Bearer(&s.access), &id, &json!({ "content": content })).await;
    assert_invalid_fields(&r, &["content"]);
    assert_eq!(db_message_count(&id).await, 0, "nothing is stored");
    assert_no_upstream(&mk).await;
}

#[tokio::test]
async fn max_tokens_outside_1_to_the_models_maximum_is_422() {
    let (s, id, mk) = marked_conversation().await;
    let content = format!("Budget {mk}");
    for bad in [json!(0), json!(65_537), json!(-1), json!(1.5), json!("10")] {
        let r = send_message(
            Auth::Bearer(&s.access),
            &id,
            &json!({"content": content, "max_tokens": bad}),
        )
        .await;
        assert_invalid_fields(&r, &["max_tokens"]);
    }
    assert_eq!(db_message_count(&id).await, 0, "nothing is stored");
    assert_no_upstream(&mk).await;

    // The model's maximum itself is fine.
    let r = send_message(
        Auth::Bearer(&s.access),
        &id,
        &json!({"content": content, "max_tokens": 65_536}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

#[tokio::test]
async fn temperature_outside_0_to_2_is_422() {
    let (s, id, mk) = marked_conversation().await;
    let content = format!("Temperature {mk}");
    for bad in [json!(-0.1), json!(2.1), json!("warm")] {
        let r = send_message(
            Auth::Bearer(&s.access),
            &id,
            &json!({"content": content, "temperature": bad}),
        )
        .await;
        assert_invalid_fields(&r, &["temperature"]);
    }
    assert_eq!(db_message_count(&id).await, 0, "nothing is stored");
    assert_no_upstream(&mk).await;

    for ok in [0.0, 2.0] {
        let r = send_message(
            Auth::Bearer(&s.access),
            &id,
            &json!({"content": content, "temperature": ok}),
        )
        .await;
        assert_eq!(r.status, 201, "temperature {ok}: {}", r.text);
    }
}

#[tokio::test]
async fn thinking_must_be_a_boolean() {
    let (s, id, mk) = marked_conversation().await;
    for bad in [json!("yes"), json!(1), json!({})] {
        let r = send_message(
            Auth::Bearer(&s.access),
            &id,
            &json!({"content": format!("Think {mk}"), "thinking": bad}),
        )
        .await;
        assert_invalid_fields(&r, &["thinking"]);
    }
    assert_eq!(db_message_count(&id).await, 0, "nothing is stored");
    assert_no_upstream(&mk).await;
}

#[tokio::test]
async fn an_unknown_or_retired_model_is_422() {
    let (s, id, mk) = marked_conversation().await;
    for bad in [
        json!("gpt-9"),
        json!("llama-3.1-8b-instant"),
        json!(""),
        json!(7),
    ] {
        let r = send_message(
            Auth::Bearer(&s.access),
            &id,
            &json!({"content": format!("Model {mk}"), "model": bad}),
        )
        .await;
        assert_invalid_fields(&r, &["model"]);
    }
    assert_eq!(db_message_count(&id).await, 0, "nothing is stored");
    assert_no_upstream(&mk).await;
}

#[tokio::test]
async fn every_invalid_field_is_reported_at_once_on_both_routes() {
    let (s, id, mk) = marked_conversation().await;
    let body = json!({
        "content": "   ",
        "thinking": "yes",
        "model": "gpt-9",
        "max_tokens": 0,
        "temperature": 2.5,
    });
    let fields = ["content", "thinking", "model", "max_tokens", "temperature"];
    let r = send_message(Auth::Bearer(&s.access), &id, &body).await;
    assert_invalid_fields(&r, &fields);
    // The stream route refuses with the same JSON error, not a stream.
    let r = call(
        Method::POST,
        &stream_path(&id),
        Auth::Bearer(&s.access),
        Some(&body),
    )
    .await;
    assert_invalid_fields(&r, &fields);
    let r = call(
        Method::POST,
        &stream_path(&id),
        Auth::Bearer(&s.access),
        Some(&json!({"content": "ok", "max_tokens": 70_000})),
    )
    .await;
    assert_invalid_field(&r, "max_tokens");
    assert_eq!(db_message_count(&id).await, 0, "nothing is stored");
    assert_no_upstream(&mk).await;
}

#[tokio::test]
async fn malformed_json_or_a_wrong_content_type_is_400() {
    let (s, id, mk) = marked_conversation().await;
    for path in [messages_path(&id), stream_path(&id)] {
        let r = send_raw_as(
            Method::POST,
            &path,
            Auth::Bearer(&s.access),
            Some("application/json"),
            format!("{{\"content\": \"{mk}\""),
        )
        .await;
        r.assert_error(400, "invalid_request_error");
        let r = send_raw_as(
            Method::POST,
            &path,
            Auth::Bearer(&s.access),
            Some("text/plain"),
            json!({ "content": mk }).to_string(),
        )
        .await;
        r.assert_error(400, "invalid_request_error");
    }
    assert_eq!(db_message_count(&id).await, 0, "nothing is stored");
    assert_no_upstream(&mk).await;
}

#[tokio::test]
async fn a_send_without_credentials_is_401() {
    let (_, id, mk) = marked_conversation().await;
    let body = json!({ "content": format!("Anyone? {mk}") });
    for path in [messages_path(&id), stream_path(&id)] {
        let r = call(Method::POST, &path, Auth::None, Some(&body)).await;
        r.assert_error(401, "authentication_error");
        let r = call(
            Method::POST,
            &path,
            Auth::Bearer("not-a-token"),
            Some(&body),
        )
        .await;
        r.assert_error(401, "authentication_error");
    }
    assert_eq!(db_message_count(&id).await, 0, "nothing is stored");
    assert_no_upstream(&mk).await;
}

#[tokio::test]
async fn another_users_conversation_is_404_and_the_model_is_not_called() {
    let (_owner, id, mk) = marked_conversation().await;
    let intruder = new_user().await;
    let body = json!({ "content": format!("Let me in {mk}") });
    for path in [messages_path(&id), stream_path(&id)] {
        let r = call(
            Method::POST,
            &path,
            Auth::Bearer(&intruder.access),
            Some(&body),
        )
        .await;
        r.assert_error(404, "not_found_error");
    }
    assert_no_upstream(&mk).await;
    assert_eq!(db_message_count(&id).await, 0, "nothing is stored");
    // And the intruder's own conversation stays empty too.
    let own = create_titled(&intruder.access, "own").await;
    assert_eq!(db_message_count(&own).await, 0);
}

#[tokio::test]
async fn an_unknown_or_malformed_conversation_id_is_404() {
    let s = new_user().await;
    let mk = marker();
    let body = json!({ "content": format!("Nowhere {mk}") });
    let unknown = random_uuid();
    for id in [unknown.as_str(), "not-a-uuid", "12345"] {
        for path in [messages_path(id), stream_path(id)] {
            let r = call(Method::POST, &path, Auth::Bearer(&s.access), Some(&body)).await;
            r.assert_error(404, "not_found_error");
        }
    }
    assert_no_upstream(&mk).await;
    let c = db().await;
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM app.messages WHERE user_id = $1::text::uuid",
            &[&s.user_id],
        )
        .await
        .expect("count messages")
        .get(0);
    assert_eq!(n, 0, "nothing is stored");
}
