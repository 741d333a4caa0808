//! Groq (or any OpenAI-compatible server): `POST {GROQ_BASE_URL}/chat/completions`
//! with `stream: true`. The stream is decoded by [`crate::sse::openai`].

use serde_json::{json, Value};

use super::catalogue::Provider;
use super::chat::{Call, Role, UpstreamRequest};

/// Builds the streaming chat-completions request for `call`.
pub fn request(base_url: &str, api_key: &str, call: &Call) -> UpstreamRequest {
    let mut messages: Vec<Value> = Vec::with_capacity(call.turns.len() + 1);
    if let Some(system) = call.effective_system() {
        messages.push(json!({"role": "system", "content": system}));
    }
    for turn in &call.turns {
        let role = match turn.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        messages.push(json!({"role": role, "content": turn.content}));
    }
    let mut body = json!({
        "model": call.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if let Some(max) = call.max_tokens {
        body["max_completion_tokens"] = json!(max);
    }
    if let Some(t) = call.temperature {
        body["temperature"] = json!(t);
    }
    if call.native_thinking {
        body["include_reasoning"] = json!(call.thinking);
        if call.thinking {
            body["reasoning_effort"] = json!("medium");
        }
    }
    UpstreamRequest {
        provider: Provider::Groq,
        url: format!("{base_url}/chat/completions"),
        headers: vec![
            ("Authorization", format!("Bearer {api_key}")),
            ("Content-Type", "application/json".into()),
            ("Accept", "text/event-stream".into()),
        ],
        body: body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::chat::sample_call;

    fn call(thinking: bool, native: bool) -> Call {
        Call {
            max_tokens: Some(100),
            temperature: Some(0.5),
            thinking,
            native_thinking: native,
            ..sample_call("openai/gpt-oss-20b")
        }
    }

    #[test]
    fn builds_a_streaming_request_with_history() {
        let r = request("http://x/openai/v1", "k", &call(false, true));
        assert_eq!(r.url, "http://x/openai/v1/chat/completions");
        assert!(r.headers.contains(&("Authorization", "Bearer k".into())));
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["stream"], true);
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "Be brief."})
        );
        assert_eq!(body["messages"][2]["role"], "assistant");
        assert_eq!(body["messages"][3]["content"], "Why?");
        assert_eq!(body["max_completion_tokens"], 100);
        assert_eq!(body["temperature"], 0.5);
        assert_eq!(body["include_reasoning"], false);
        assert!(body.get("reasoning_effort").is_none());
    }

    #[test]
    fn thinking_asks_for_reasoning() {
        let body: Value = serde_json::from_str(&request("b", "k", &call(true, true)).body).unwrap();
        assert_eq!(body["include_reasoning"], true);
        assert_eq!(body["reasoning_effort"], "medium");
    }

    #[test]
    fn models_without_native_reasoning_get_the_tag_instruction() {
        let body: Value =
            serde_json::from_str(&request("b", "k", &call(true, false)).body).unwrap();
        assert!(body.get("include_reasoning").is_none());
        let system = body["messages"][0]["content"].as_str().unwrap();
        assert!(system.starts_with("Be brief."));
        assert!(system.contains("<thinking>"));
    }
}
