//! Gemini's `generateContent` / `streamGenerateContent` wire format.

use hyper::HeaderMap;
use serde::Serialize;
use serde_json::Value;

use super::exchange::Call;
use super::plan::{count_words, Frame, FrameKind, PlanRequest, ReplyPlan, TokenUsage, WireFormat};
use super::query;
use super::script::FinishReason;

/// The path prefix (under the Gemini base URL `/gemini/v1beta`).
pub const PREFIX: &str = "/gemini/v1beta/models/";

/// True when the request carries a non-empty `x-goog-api-key` header (or
/// `key` query parameter, which Gemini also accepts).
pub fn authorized(headers: &HeaderMap, query: Option<&str>) -> bool {
    let header = headers
        .get("x-goog-api-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    header
        .or_else(|| query::param(query, "key"))
        .is_some_and(|key| !key.trim().is_empty())
}

/// Reads `{model}:{method}` after [`PREFIX`]: the model and whether the
/// method streams; `None` for an unknown method.
pub fn parse_path(rest: &str) -> Option<(String, bool)> {
    let (model, method) = rest.rsplit_once(':')?;
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" => true,
        _ => return None,
    };
    (!model.is_empty()).then(|| (query::decode(model), stream))
}

/// True for a model id Gemini answers with 404 `NOT_FOUND`.
pub fn is_retired(model: &str) -> bool {
    model.starts_with("gemini-1.5") || model == "gemini-2.0-flash"
}

/// Reads a `GenerateContentRequest`; the error is the 400 message.
pub fn parse(body: &Value, model: String, stream: bool) -> Result<Call, String> {
    let body = body
        .as_object()
        .ok_or("Invalid JSON payload received. Expected an object.")?;
    let contents = body
        .get("contents")
        .and_then(Value::as_array)
        .filter(|contents| !contents.is_empty())
        .ok_or("* GenerateContentRequest.contents: contents is not specified")?;
    let mut words = 0;
    for content in contents {
        match content.get("role").map(|role| role.as_str()) {
            None | Some(Some("user" | "model")) => {}
            Some(_) => return Err("Please use a valid role: user, model.".into()),
        }
        let parts = content.get("parts").and_then(Value::as_array).ok_or(
            "* GenerateContentRequest.contents[].parts: contents.parts must not be empty.",
        )?;
        words += parts_words(parts);
    }
    if let Some(parts) = body
        .get("systemInstruction")
        .and_then(|instruction| instruction.get("parts"))
        .and_then(Value::as_array)
    {
        words += parts_words(parts);
    }
    let config = body.get("generationConfig");
    let max_tokens = config
        .and_then(|config| config.get("maxOutputTokens"))
        .and_then(Value::as_u64);
    let thinking = config.and_then(|config| config.get("thinkingConfig"));
    let setting = |name: &str| thinking.and_then(|thinking| thinking.get(name));
    if setting("thinkingBudget").is_some() && setting("thinkingLevel").is_some() {
        return Err("You can only set only one of thinking budget and thinking level.".into());
    }
    let wants_thinking = setting("includeThoughts").and_then(Value::as_bool) == Some(true)
        && setting("thinkingBudget").and_then(Value::as_i64) != Some(0);
    Ok(Call {
        model,
        stream,
        include_usage: true,
        request: PlanRequest {
            prompt_tokens: words.max(1),
            wants_thinking,
            max_tokens,
        },
    })
}

fn parts_words(parts: &[Value]) -> u64 {
    parts
        .iter()
        .filter_map(|part| part.get("text").and_then(Value::as_str))
        .map(count_words)
        .sum()
}

/// Gemini's error body for `status`, as JSON text.
pub fn error_body(
    status: u16,
    model: &str,
    retry_after: Option<u64>,
    message: Option<&str>,
) -> String {
    let (default_message, name) = match status {
        400 => (
            "Request contains an invalid argument.".to_owned(),
            "INVALID_ARGUMENT",
        ),
        401 => (
            "API key not valid. Please pass a valid API key.".to_owned(),
            "UNAUTHENTICATED",
        ),
        403 => (
            "The caller does not have permission".to_owned(),
            "PERMISSION_DENIED",
        ),
        404 => (
            format!(
                "models/{model} is not found for API version v1beta, or is not supported for \
                 generateContent."
            ),
            "NOT_FOUND",
        ),
        429 => (
            "You exceeded your current quota, please check your plan and billing details."
                .to_owned(),
            "RESOURCE_EXHAUSTED",
        ),
        500 => (
            "An internal error has occurred. Please retry or report in \
             https://developers.generativeai.google/guide/troubleshooting"
                .to_owned(),
            "INTERNAL",
        ),
        503 => (
            "The model is overloaded. Please try again later.".to_owned(),
            "UNAVAILABLE",
        ),
        504 => (
            "The request timed out. Please try again.".to_owned(),
            "DEADLINE_EXCEEDED",
        ),
        other if other < 500 => (
            format!("Request failed with status {other}."),
            "FAILED_PRECONDITION",
        ),
        other => (format!("Server error with status {other}."), "UNKNOWN"),
    };
    let details = retry_after.map(|seconds| {
        vec![RetryInfo {
            kind: "type.googleapis.com/google.rpc.RetryInfo",
            retry_delay: format!("{seconds}s"),
        }]
    });
    to_json(&ErrorBody {
        error: ErrorDetail {
            code: status,
            message: message.map_or(default_message, str::to_owned),
            status: name,
            details,
        },
    })
}

#[derive(Serialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize)]
struct ErrorDetail {
    code: u16,
    message: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Vec<RetryInfo>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RetryInfo {
    #[serde(rename = "@type")]
    kind: &'static str,
    retry_delay: String,
}

/// One `GenerateContentResponse`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateContentResponse<'a> {
    candidates: [Candidate<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_metadata: Option<UsageMetadata>,
    model_version: &'a str,
    response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    content: Content<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
}

#[derive(Serialize)]
struct Content<'a> {
    parts: Vec<Part<'a>>,
    role: &'static str,
}

#[derive(Serialize)]
struct Part<'a> {
    text: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    thought: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: u64,
    candidates_token_count: u64,
    total_token_count: u64,
    prompt_tokens_details: [ModalityTokenCount; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    thoughts_token_count: Option<u64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ModalityTokenCount {
    modality: &'static str,
    token_count: u64,
}

impl UsageMetadata {
    fn of(usage: &TokenUsage) -> Self {
        UsageMetadata {
            prompt_token_count: usage.input,
            candidates_token_count: usage.output,
            total_token_count: usage.input + usage.output + usage.thinking,
            prompt_tokens_details: [ModalityTokenCount {
                modality: "TEXT",
                token_count: usage.input,
            }],
            thoughts_token_count: (usage.thinking > 0).then_some(usage.thinking),
        }
    }
}

fn to_json(value: &impl Serialize) -> String {
    // Serializing these plain structs cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

fn finish_reason(finish: FinishReason) -> &'static str {
    match finish {
        FinishReason::Stop => "STOP",
        FinishReason::Length => "MAX_TOKENS",
    }
}

/// Encodes plans as `GenerateContentResponse`s.
pub struct Encoder {
    model: String,
    response_id: String,
    sse: bool,
}

impl Encoder {
    /// An encoder for `call`; `sse` picks `alt=sse` over a streamed JSON array.
    pub fn new(call: &Call, unique: &str, sse: bool) -> Self {
        Encoder {
            model: call.model.clone(),
            response_id: format!("standin{unique}"),
            sse,
        }
    }

    /// A response holding `parts`; the last one (`end`) also carries the
    /// finish reason and usage.
    fn response(&self, parts: Vec<Part<'_>>, end: Option<&ReplyPlan>) -> String {
        to_json(&GenerateContentResponse {
            candidates: [Candidate {
                content: Content {
                    parts,
                    role: "model",
                },
                finish_reason: end.map(|plan| finish_reason(plan.finish)),
                index: 0,
            }],
            usage_metadata: end
                .and_then(|plan| plan.usage.as_ref())
                .map(UsageMetadata::of),
            model_version: &self.model,
            response_id: &self.response_id,
        })
    }

    /// Frames the `index`th streamed response: an SSE event, or an element
    /// of the streamed JSON array.
    fn frame(&self, index: usize, response: &str) -> String {
        match (self.sse, index) {
            (true, _) => format!("data: {response}\r\n\r\n"),
            (false, 0) => format!("[{response}"),
            (false, _) => format!("\n,\r\n{response}"),
        }
    }
}

impl WireFormat for Encoder {
    fn complete(&self, plan: &ReplyPlan) -> String {
        let thinking = plan.thinking_text();
        let content = plan.content_text();
        let mut parts = Vec::with_capacity(2);
        if !plan.thinking.is_empty() {
            parts.push(Part {
                text: &thinking,
                thought: true,
            });
        }
        parts.push(Part {
            text: &content,
            thought: false,
        });
        self.response(parts, Some(plan))
    }

    fn stream(&self, plan: &ReplyPlan) -> Vec<Frame> {
        let pieces: Vec<(FrameKind, Part<'_>)> = plan
            .thinking
            .iter()
            .map(|text| {
                (
                    FrameKind::Thinking,
                    Part {
                        text,
                        thought: true,
                    },
                )
            })
            .chain(plan.content.iter().map(|text| {
                let part = Part {
                    text,
                    thought: false,
                };
                (FrameKind::Content, part)
            }))
            .collect();
        let mut frames = Vec::with_capacity(pieces.len() + 1);
        let last = pieces.len().saturating_sub(1);
        for (index, (kind, part)) in pieces.into_iter().enumerate() {
            let response = self.response(vec![part], (index == last).then_some(plan));
            frames.push(Frame::new(kind, self.frame(index, &response)));
        }
        if frames.is_empty() {
            let empty = Part {
                text: "",
                thought: false,
            };
            let response = self.response(vec![empty], Some(plan));
            frames.push(Frame::new(FrameKind::Trailer, self.frame(0, &response)));
        }
        if !self.sse {
            frames.push(Frame::new(FrameKind::Trailer, "]"));
        }
        frames
    }

    fn stream_content_type(&self) -> &'static str {
        if self.sse {
            "text/event-stream"
        } else {
            "application/json"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_model_and_method_from_the_path() {
        assert_eq!(
            parse_path("gemini-2.5-flash-lite:streamGenerateContent"),
            Some(("gemini-2.5-flash-lite".into(), true))
        );
        assert_eq!(
            parse_path("gemini-3.1-flash-lite:generateContent"),
            Some(("gemini-3.1-flash-lite".into(), false))
        );
        assert_eq!(parse_path("gemini-2.5-flash:countTokens"), None);
        assert_eq!(parse_path(":generateContent"), None);
        assert_eq!(parse_path("nocolon"), None);
    }

    #[test]
    fn thinking_settings() {
        let wants = |config: Value| {
            let body = json!({
                "contents": [{ "role": "user", "parts": [{ "text": "a b" }] }],
                "systemInstruction": { "parts": [{ "text": "c" }] },
                "generationConfig": config,
            });
            parse(&body, "m".into(), false)
                .map(|call| (call.request.wants_thinking, call.request.prompt_tokens))
        };
        assert_eq!(wants(json!({})), Ok((false, 3)));
        assert_eq!(
            wants(json!({"thinkingConfig": {"includeThoughts": true}})),
            Ok((true, 3))
        );
        assert_eq!(
            wants(json!({"thinkingConfig": {"includeThoughts": true, "thinkingBudget": 0}})),
            Ok((false, 3))
        );
        assert!(
            wants(json!({"thinkingConfig": {"thinkingBudget": 10, "thinkingLevel": "low"}}))
                .is_err()
        );
    }

    #[test]
    fn rejects_bad_roles_and_missing_contents() {
        let call = |body: Value| parse(&body, "m".into(), false).is_ok();
        assert!(!call(json!({})));
        assert!(!call(json!({"contents": []})));
        assert!(!call(
            json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]})
        ));
        assert!(call(json!({"contents": [{"parts": [{"text": "x"}]}]})));
    }
}
