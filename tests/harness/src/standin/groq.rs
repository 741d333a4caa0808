//! Groq's OpenAI-compatible chat completions wire format.

use hyper::header::AUTHORIZATION;
use hyper::HeaderMap;
use serde::Serialize;
use serde_json::Value;

use super::exchange::Call;
use super::plan::{count_words, Frame, FrameKind, PlanRequest, ReplyPlan, TokenUsage, WireFormat};
use super::script::FinishReason;

/// The request path (under the Groq base URL `/groq/openai/v1`).
pub const PATH: &str = "/groq/openai/v1/chat/completions";

/// Model ids Groq has shut down.
const RETIRED: &[&str] = &["llama-3.1-8b-instant", "llama-3.3-70b-versatile"];

/// True when the request carries `Authorization: Bearer <non-empty>`.
pub fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .is_some_and(|key| !key.trim().is_empty())
}

/// True for a model id Groq answers with 404 `model_not_found`.
pub fn is_retired(model: &str) -> bool {
    RETIRED.contains(&model)
}

/// Models that stream `delta.reasoning`.
fn is_reasoning_model(model: &str) -> bool {
    model.starts_with("openai/gpt-oss") || model.starts_with("qwen/")
}

/// Reads a chat completions request; the error is the 400 message.
pub fn parse(body: &Value) -> Result<Call, String> {
    let body = body
        .as_object()
        .ok_or("the request body must be a JSON object")?;
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or("'model' : property 'model' is missing")?
        .to_owned();
    let messages = body
        .get("messages")
        .and_then(Value::as_array)
        .filter(|messages| !messages.is_empty())
        .ok_or("'messages' : property 'messages' is missing or empty")?;
    let mut words = 0;
    for message in messages {
        let message = message
            .as_object()
            .ok_or("'messages' : each message must be an object")?;
        if !message.get("role").is_some_and(Value::is_string) {
            return Err("'messages.role' : property 'role' is missing".into());
        }
        words += content_words(message.get("content"));
    }
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|key| body.get(*key).and_then(Value::as_u64));
    let include_reasoning = body.get("include_reasoning").and_then(Value::as_bool);
    let effort_set = body
        .get("reasoning_effort")
        .is_some_and(|effort| !effort.is_null());
    let wants_thinking = is_reasoning_model(&model)
        && (include_reasoning == Some(true) || (effort_set && include_reasoning != Some(false)));
    let include_usage = body
        .get("stream_options")
        .and_then(|options| options.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(Call {
        model,
        stream,
        include_usage,
        request: PlanRequest {
            prompt_tokens: words.max(1),
            wants_thinking,
            max_tokens,
        },
    })
}

/// Words in a message's `content`: a string or a list of text parts.
fn content_words(content: Option<&Value>) -> u64 {
    match content {
        Some(Value::String(text)) => count_words(text),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .map(count_words)
            .sum(),
        _ => 0,
    }
}

/// Groq's error body for `status`, as JSON text.
pub fn error_body(
    status: u16,
    model: &str,
    retry_after: Option<u64>,
    message: Option<&str>,
) -> String {
    let wait = retry_after.unwrap_or(1);
    let (default_message, kind, code) = match status {
        400 => (
            "The request is invalid.".to_owned(),
            "invalid_request_error",
            None,
        ),
        401 => (
            "Invalid API Key".to_owned(),
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        404 => (
            format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            Some("model_not_found"),
        ),
        429 => (
            format!(
                "Rate limit reached for model `{model}` in organization `org_standin` service \
                 tier `on_demand` on tokens per minute (TPM): Limit 6000, Used 6000, Requested \
                 100. Please try again in {wait}s."
            ),
            "tokens",
            Some("rate_limit_exceeded"),
        ),
        498 => (
            "Capacity exceeded for the flex tier. Please try again later.".to_owned(),
            "capacity_exceeded",
            Some("capacity_exceeded"),
        ),
        500 => (
            "Internal Server Error".to_owned(),
            "internal_server_error",
            Some("internal_server_error"),
        ),
        502 => (
            "Bad Gateway".to_owned(),
            "internal_server_error",
            Some("bad_gateway"),
        ),
        503 => (
            "Service Unavailable".to_owned(),
            "internal_server_error",
            Some("service_unavailable"),
        ),
        other if other < 500 => (
            format!("Request failed with status {other}."),
            "invalid_request_error",
            None,
        ),
        other => (
            format!("Server error with status {other}."),
            "internal_server_error",
            None,
        ),
    };
    let error = ErrorDetail {
        message: message.map_or(default_message, str::to_owned),
        kind,
        code,
    };
    to_json(&ErrorBody { error })
}

#[derive(Serialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize)]
struct ErrorDetail {
    message: String,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
}

/// A non-streamed answer.
#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [CompletionChoice; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    system_fingerprint: &'static str,
    x_groq: XGroq<'a>,
}

#[derive(Serialize)]
struct CompletionChoice {
    index: u32,
    message: Message,
    logprobs: (),
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message {
    role: &'static str,
    content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<String>,
}

/// One streamed `chat.completion.chunk`.
#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: Vec<ChunkChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x_groq: Option<XGroq<'a>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: (),
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<&'a str>,
}

#[derive(Serialize)]
struct XGroq<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct Usage {
    queue_time: f64,
    prompt_tokens: u64,
    prompt_time: f64,
    completion_tokens: u64,
    completion_time: f64,
    total_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Serialize)]
struct CompletionDetails {
    reasoning_tokens: u64,
}

impl Usage {
    /// Groq counts reasoning in `completion_tokens`.
    fn of(usage: &TokenUsage) -> Self {
        let completion = usage.output + usage.thinking;
        Usage {
            queue_time: 0.01,
            prompt_tokens: usage.input,
            prompt_time: 0.001,
            completion_tokens: completion,
            completion_time: 0.01,
            total_tokens: usage.input + completion,
            completion_tokens_details: (usage.thinking > 0).then_some(CompletionDetails {
                reasoning_tokens: usage.thinking,
            }),
        }
    }
}

fn to_json(value: &impl Serialize) -> String {
    // Serializing these plain structs cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

fn sse(chunk: &Chunk<'_>) -> String {
    format!("data: {}\n\n", to_json(chunk))
}

fn finish_reason(finish: FinishReason) -> &'static str {
    match finish {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

/// Encodes plans as Groq chat completions.
pub struct Encoder {
    model: String,
    id: String,
    request_id: String,
    created: u64,
    include_usage: bool,
}

impl Encoder {
    /// An encoder for `call`; `unique` makes the ids, `created` is Unix seconds.
    pub fn new(call: &Call, unique: &str, created: u64) -> Self {
        Encoder {
            model: call.model.clone(),
            id: format!("chatcmpl-standin-{unique}"),
            request_id: format!("req_standin_{unique}"),
            created,
            include_usage: call.include_usage,
        }
    }

    fn x_groq(&self, usage: Option<Usage>) -> XGroq<'_> {
        XGroq {
            id: &self.request_id,
            usage,
        }
    }

    fn chunk<'a>(&'a self, choices: Vec<ChunkChoice<'a>>) -> Chunk<'a> {
        Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            system_fingerprint: "fp_standin",
            choices,
            usage: None,
            x_groq: None,
        }
    }

    fn delta_chunk<'a>(&'a self, delta: Delta<'a>, finish: Option<&'static str>) -> Chunk<'a> {
        self.chunk(vec![ChunkChoice {
            index: 0,
            delta,
            logprobs: (),
            finish_reason: finish,
        }])
    }
}

impl WireFormat for Encoder {
    fn complete(&self, plan: &ReplyPlan) -> String {
        let thinking = (!plan.thinking.is_empty()).then(|| plan.thinking_text());
        to_json(&Completion {
            id: &self.id,
            object: "chat.completion",
            created: self.created,
            model: &self.model,
            choices: [CompletionChoice {
                index: 0,
                message: Message {
                    role: "assistant",
                    content: plan.content_text(),
                    reasoning: thinking,
                },
                logprobs: (),
                finish_reason: finish_reason(plan.finish),
            }],
            usage: plan.usage.as_ref().map(Usage::of),
            system_fingerprint: "fp_standin",
            x_groq: self.x_groq(None),
        })
    }

    fn stream(&self, plan: &ReplyPlan) -> Vec<Frame> {
        let mut frames = Vec::with_capacity(plan.thinking.len() + plan.content.len() + 4);
        let role = Delta {
            role: Some("assistant"),
            content: Some(""),
            ..Delta::default()
        };
        let mut first = self.delta_chunk(role, None);
        first.x_groq = Some(self.x_groq(None));
        frames.push(Frame::new(FrameKind::Preamble, sse(&first)));
        for text in &plan.thinking {
            let delta = Delta {
                reasoning: Some(text),
                ..Delta::default()
            };
            let chunk = self.delta_chunk(delta, None);
            frames.push(Frame::new(FrameKind::Thinking, sse(&chunk)));
        }
        for text in &plan.content {
            let delta = Delta {
                content: Some(text),
                ..Delta::default()
            };
            let chunk = self.delta_chunk(delta, None);
            frames.push(Frame::new(FrameKind::Content, sse(&chunk)));
        }
        let mut finish = self.delta_chunk(Delta::default(), Some(finish_reason(plan.finish)));
        finish.x_groq = Some(self.x_groq(plan.usage.as_ref().map(Usage::of)));
        frames.push(Frame::new(FrameKind::Trailer, sse(&finish)));
        if let (true, Some(usage)) = (self.include_usage, &plan.usage) {
            let mut trailing = self.chunk(Vec::new());
            trailing.usage = Some(Usage::of(usage));
            frames.push(Frame::new(FrameKind::Trailer, sse(&trailing)));
        }
        frames.push(Frame::new(FrameKind::Trailer, "data: [DONE]\n\n"));
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reasoning_only_for_reasoning_models_when_asked() {
        let call = |body: Value| parse(&body).map(|call| call.request.wants_thinking);
        let messages = json!([{ "role": "user", "content": "hi" }]);
        assert_eq!(
            call(
                json!({"model": "openai/gpt-oss-20b", "messages": messages, "include_reasoning": true})
            ),
            Ok(true)
        );
        assert_eq!(
            call(
                json!({"model": "qwen/qwen3-32b", "messages": messages, "reasoning_effort": "low"})
            ),
            Ok(true)
        );
        assert_eq!(
            call(
                json!({"model": "openai/gpt-oss-20b", "messages": messages, "reasoning_effort": "low", "include_reasoning": false})
            ),
            Ok(false)
        );
        assert_eq!(
            call(json!({"model": "other", "messages": messages, "include_reasoning": true})),
            Ok(false)
        );
        assert_eq!(
            call(json!({"model": "openai/gpt-oss-20b", "messages": messages})),
            Ok(false)
        );
    }

    #[test]
    fn rejects_malformed_requests() {
        assert!(parse(&json!([])).is_err());
        assert!(parse(&json!({"messages": [{"role": "user", "content": "x"}]})).is_err());
        assert!(parse(&json!({"model": "m", "messages": []})).is_err());
        assert!(parse(&json!({"model": "m", "messages": ["x"]})).is_err());
    }

    #[test]
    fn counts_prompt_words_across_messages_and_parts() {
        let body = json!({
            "model": "m",
            "messages": [
                { "role": "system", "content": "be brief" },
                { "role": "user", "content": [{ "type": "text", "text": "one two three" }] },
            ],
        });
        assert_eq!(parse(&body).map(|call| call.request.prompt_tokens), Ok(5));
    }
}
