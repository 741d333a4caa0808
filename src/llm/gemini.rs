//! Gemini: `POST {GEMINI_BASE_URL}/models/{model}:streamGenerateContent?alt=sse`.
//! The stream is decoded by [`crate::sse::gemini`].

use serde_json::{json, Value};

use super::catalogue::Provider;
use super::chat::{Call, Role, UpstreamRequest};

/// Builds the streaming generateContent request for `call`.
pub fn request(base_url: &str, api_key: &str, call: &Call) -> UpstreamRequest {
    let contents: Vec<Value> = call
        .turns
        .iter()
        .map(|turn| {
            let role = match turn.role {
                Role::User => "user",
                Role::Assistant => "model",
            };
            json!({"role": role, "parts": [{"text": turn.content}]})
        })
        .collect();
    let mut config = json!({});
    if let Some(max) = call.max_tokens {
        config["maxOutputTokens"] = json!(max);
    }
    if let Some(t) = call.temperature {
        config["temperature"] = json!(t);
    }
    if call.native_thinking {
        config["thinkingConfig"] = if call.thinking {
            json!({"includeThoughts": true, "thinkingBudget": -1})
        } else {
            json!({"thinkingBudget": 0})
        };
    }
    let mut body = json!({"contents": contents, "generationConfig": config});
    if let Some(system) = call.effective_system() {
        body["systemInstruction"] = json!({"parts": [{"text": system}]});
    }
    UpstreamRequest {
        provider: Provider::Gemini,
        url: format!(
            "{base_url}/models/{}:streamGenerateContent?alt=sse",
            encode_segment(&call.model)
        ),
        headers: vec![
            ("x-goog-api-key", api_key.to_string()),
            ("Content-Type", "application/json".into()),
            ("Accept", "text/event-stream".into()),
        ],
        body: body.to_string(),
    }
}

/// Percent-encodes a model id for use as one URL path segment.
fn encode_segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::chat::sample_call;

    fn call(thinking: bool) -> Call {
        Call {
            max_tokens: Some(64),
            thinking,
            ..sample_call("gemini-2.5-flash-lite")
        }
    }

    #[test]
    fn builds_a_streaming_request_with_history() {
        let r = request("http://x/v1beta", "k", &call(false));
        assert_eq!(
            r.url,
            "http://x/v1beta/models/gemini-2.5-flash-lite:streamGenerateContent?alt=sse"
        );
        assert!(r.headers.contains(&("x-goog-api-key", "k".into())));
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["contents"][1]["role"], "model");
        assert_eq!(body["contents"][2]["parts"][0]["text"], "Why?");
        assert_eq!(body["systemInstruction"]["parts"][0]["text"], "Be brief.");
        assert_eq!(body["generationConfig"]["maxOutputTokens"], 64);
        assert_eq!(
            body["generationConfig"]["thinkingConfig"]["thinkingBudget"],
            0
        );
    }

    #[test]
    fn thinking_asks_for_thoughts() {
        let body: Value = serde_json::from_str(&request("b", "k", &call(true)).body).unwrap();
        let tc = &body["generationConfig"]["thinkingConfig"];
        assert_eq!(tc["includeThoughts"], true);
        assert_eq!(tc["thinkingBudget"], -1);
    }

    #[test]
    fn model_ids_are_path_safe() {
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
