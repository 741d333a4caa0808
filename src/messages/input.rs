//! The body of a send (`POST …/messages` and `…/messages/stream`), validated.

use serde_json::{Map, Value};

use crate::http::body::Fields;
use crate::http::ApiError;
use crate::llm::catalogue;

/// Longest message, in characters after trimming.
pub const MAX_CONTENT: usize = 32_000;

/// A validated send.
#[derive(Debug, Clone, PartialEq)]
pub struct SendInput {
    /// The user's message, trimmed.
    pub content: String,
    /// Ask for the model's reasoning.
    pub thinking: bool,
    /// The model for this answer (the request's, else the conversation's).
    pub model: String,
    /// Answer budget.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
}

/// Validates a send body; `conversation_model` is used when the body names
/// none; `max_output` gives a model's answer limit in this deployment.
pub fn send_input(
    body: Map<String, Value>,
    conversation_model: &str,
    max_output: impl Fn(&str) -> u32,
) -> Result<SendInput, ApiError> {
    let mut f = Fields::new(body);
    let content = f.required_str("content").map(|c| c.trim().to_string());
    let content = match content {
        Some(c) if c.is_empty() => {
            f.error("content", "must not be empty");
            None
        }
        Some(c) if c.chars().count() > MAX_CONTENT => {
            f.error("content", "must be at most 32000 characters");
            None
        }
        other => other,
    };
    let thinking = match f.take("thinking") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => {
            f.error("thinking", "must be true or false");
            false
        }
    };
    let model = match f.take("model") {
        None | Some(Value::Null) => conversation_model.to_string(),
        Some(Value::String(id)) if catalogue::find(&id).is_some() => id,
        Some(_) => {
            f.error("model", "must be a model listed by /api/v1/models");
            conversation_model.to_string()
        }
    };
    let max_output = max_output(&model);
    let max_tokens = match f.take("max_tokens") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 && n <= u64::from(max_output) => u32::try_from(n).ok(),
            _ => {
                f.error(
                    "max_tokens",
                    format!("must be an integer from 1 to {max_output}"),
                );
                None
            }
        },
    };
    let temperature = match f.take("temperature") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_f64() {
            Some(t) if (0.0..=2.0).contains(&t) => Some(t),
            _ => {
                f.error("temperature", "must be a number from 0 to 2");
                None
            }
        },
    };
    let built = content.map(|content| SendInput {
        content,
        thinking,
        model,
        max_tokens,
        temperature,
    });
    f.finish(built)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const M: &str = "openai/gpt-oss-20b";

    fn parse(v: Value) -> Result<SendInput, ApiError> {
        match v {
            Value::Object(m) => send_input(m, M, |id| {
                catalogue::find(id).map_or(1, |m| m.max_output_tokens)
            }),
            _ => unreachable!(),
        }
    }

    fn fields(e: ApiError) -> Vec<String> {
        match e {
            ApiError::Validation(d) => d.into_iter().map(|d| d.field).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn minimal_send() {
        let s = parse(json!({"content": "  hi  "})).unwrap();
        assert_eq!(s.content, "hi");
        assert_eq!(s.model, M);
        assert!(!s.thinking);
        assert_eq!((s.max_tokens, s.temperature), (None, None));
    }

    #[test]
    fn every_field_is_checked() {
        let e = parse(json!({
            "content": "   ",
            "thinking": "yes",
            "model": "gpt-9",
            "max_tokens": 0,
            "temperature": 2.5,
        }))
        .unwrap_err();
        assert_eq!(
            fields(e),
            ["content", "thinking", "model", "max_tokens", "temperature"]
        );
    }

    #[test]
    fn limits() {
        assert!(parse(json!({"content": "x".repeat(32_000)})).is_ok());
        assert!(parse(json!({"content": "x".repeat(32_001)})).is_err());
        assert!(parse(json!({"content": "x", "max_tokens": 65_536})).is_ok());
        assert!(parse(json!({"content": "x", "max_tokens": 65_537})).is_err());
        assert!(parse(json!({"content": "x", "max_tokens": 1.5})).is_err());
        assert!(parse(json!({"content": "x", "temperature": 0})).is_ok());
        assert!(parse(json!({"content": "x", "temperature": -0.1})).is_err());
        assert!(parse(json!({"content": 5})).is_err());
        assert!(parse(json!({})).is_err());
    }
}
