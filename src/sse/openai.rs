//! Decoding Groq / OpenAI-compatible chat completion streams.
//!
//! Each `data:` frame is a `chat.completion.chunk` JSON object (or the
//! `[DONE]` marker). Per chunk, events come out in this order:
//! `Thinking` (from `choices[0].delta.reasoning` or
//! `delta.reasoning_content`), `Text` (`delta.content`), `Usage` (from
//! top-level `usage`, else `x_groq.usage`), `Finish`
//! (`choices[0].finish_reason`).

use serde_json::Value;

use super::lines::SseFrame;
use super::{
    error_message, json_u32, snippet, storable, Format, FrameDecoder, LlmEvent, StopReason,
};

/// Streaming decoder for OpenAI-compatible `chat/completions` SSE bodies:
/// a [`FrameDecoder`] of [`OpenAi`].
pub type OpenAiDecoder = FrameDecoder<OpenAi>;

/// OpenAI-compatible `chat/completions` SSE bodies, frame by frame.
#[derive(Debug)]
pub struct OpenAi;

impl Format for OpenAi {
    fn frame(frame: &SseFrame, out: &mut Vec<LlmEvent>) {
        decode_frame(frame, out);
    }
}

/// Decodes a whole non-stream `chat.completion` JSON body: `Thinking` from
/// `choices[0].message.reasoning` (or `reasoning_content`), `Text` from
/// `message.content`, `Usage` from `usage` (or `x_groq.usage`), `Finish` from
/// `finish_reason`. An error object or invalid JSON gives one `Error`.
/// No `Done` is emitted (a non-stream body has no end marker).
pub fn decode_completion(body: &[u8]) -> Vec<LlmEvent> {
    let mut out = Vec::new();
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => decode_object(&value, "message", &mut out),
        Err(err) => out.push(invalid_json(&String::from_utf8_lossy(body), &err)),
    }
    out
}

fn decode_frame(frame: &SseFrame, out: &mut Vec<LlmEvent>) {
    let data = frame.data.trim();
    if data.is_empty() {
        return;
    }
    if data == "[DONE]" {
        out.push(LlmEvent::Done);
        return;
    }
    match serde_json::from_str::<Value>(data) {
        Ok(value) => {
            if frame.event.as_deref() == Some("error") && error_message(&value).is_none() {
                out.push(LlmEvent::Error(format!(
                    "upstream error: {}",
                    snippet(data, 200)
                )));
            } else {
                decode_object(&value, "delta", out);
            }
        }
        Err(_) if frame.event.as_deref() == Some("error") => {
            out.push(LlmEvent::Error(snippet(data, 200).to_string()));
        }
        Err(err) => out.push(invalid_json(data, &err)),
    }
}

fn invalid_json(data: &str, err: &serde_json::Error) -> LlmEvent {
    LlmEvent::Error(format!(
        "invalid JSON from upstream ({err}): {}",
        snippet(data, 200)
    ))
}

/// Decodes one chunk (`part` = "delta") or completion (`part` = "message").
fn decode_object(value: &Value, part: &str, out: &mut Vec<LlmEvent>) {
    if let Some(message) = error_message(value) {
        out.push(LlmEvent::Error(message));
        return;
    }
    let choice = value
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|choices| choices.first());
    let content = choice.and_then(|c| c.get(part));
    if let Some(content) = content {
        let reasoning = non_empty_str(content.get("reasoning"))
            .or_else(|| non_empty_str(content.get("reasoning_content")));
        if let Some(reasoning) = reasoning.and_then(storable) {
            out.push(LlmEvent::Thinking(reasoning));
        }
        if let Some(text) = non_empty_str(content.get("content")).and_then(storable) {
            out.push(LlmEvent::Text(text));
        }
    }
    let usage = value.get("usage").filter(|u| u.is_object()).or_else(|| {
        value
            .get("x_groq")
            .and_then(|x| x.get("usage"))
            .filter(|u| u.is_object())
    });
    if let Some(usage) = usage {
        let output_tokens = json_u32(usage.get("completion_tokens"));
        let reasoning = usage
            .get("completion_tokens_details")
            .and_then(|d| d.get("reasoning_tokens"))
            .filter(|r| r.is_u64());
        out.push(LlmEvent::Usage {
            input_tokens: json_u32(usage.get("prompt_tokens")),
            output_tokens,
            content_tokens: reasoning.map(|r| output_tokens.saturating_sub(json_u32(Some(r)))),
        });
    }
    if let Some(reason) = choice
        .and_then(|c| c.get("finish_reason"))
        .and_then(Value::as_str)
    {
        out.push(LlmEvent::Finish(finish_reason(reason)));
    }
}

fn non_empty_str(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// `"length"` → `MaxTokens`; anything else (`"stop"`, `"tool_calls"`,
/// `"content_filter"`, …) → `EndTurn`.
fn finish_reason(reason: &str) -> StopReason {
    match reason {
        "length" => StopReason::MaxTokens,
        _ => StopReason::EndTurn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::test_support::{assert_split_invariant, decode_with, text, thinking};
    use LlmEvent::*;

    fn decode(chunks: &[&[u8]]) -> Vec<LlmEvent> {
        decode_with(OpenAiDecoder::new(), chunks)
    }

    const GROQ_STREAM: &str = concat!(
        ": keep-alive\n\n",
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
        "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\"Let me think\"},\"finish_reason\":null}]}\n\n",
        ": ping\n\n",
        "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"héllo 😀\"},\"finish_reason\":null}]}\n\n",
        "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" \\\"quoted\\\"\\n\"},\"finish_reason\":null}]}\n\n",
        "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"x_groq\":{\"id\":\"req_1\",\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34,\"total_tokens\":46}}}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn groq_stream_every_split() {
        let events = assert_split_invariant(GROQ_STREAM.as_bytes(), decode);
        assert_eq!(
            events,
            vec![
                thinking("Let me think"),
                text("héllo 😀"),
                text(" \"quoted\"\n"),
                Usage {
                    input_tokens: 12,
                    output_tokens: 34,
                    content_tokens: None
                },
                Finish(StopReason::EndTurn),
                Done,
            ]
        );
    }

    #[test]
    fn crlf_trailing_usage_chunk_and_reasoning_content_every_split() {
        let input = concat!(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"r1\"}}]}\r\n\r\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":null}],\"usage\":null}\r\n\r\n",
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}],\"usage\":null}\r\n\r\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\r\n\r\n",
            "data: [DONE]\r\n\r\n",
        );
        let events = assert_split_invariant(input.as_bytes(), decode);
        assert_eq!(
            events,
            vec![
                thinking("r1"),
                text("ok"),
                Finish(StopReason::MaxTokens),
                Usage {
                    input_tokens: 5,
                    output_tokens: 7,
                    content_tokens: None
                },
                Done,
            ]
        );
    }

    #[test]
    fn error_object_and_invalid_json_every_split() {
        let input = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
            "data: {not json\n\n",
            "data: {\"error\":{\"message\":\"Rate limit reached\",\"type\":\"tokens\",\"code\":\"rate_limit_exceeded\"}}\n\n",
        );
        let events = assert_split_invariant(input.as_bytes(), decode);
        assert_eq!(events.len(), 3);
        assert_eq!(events[0], text("a"));
        assert!(
            matches!(&events[1], Error(m) if m.contains("invalid JSON") && m.contains("{not json"))
        );
        assert_eq!(events[2], Error("Rate limit reached".to_string()));
    }

    #[test]
    fn error_event_with_plain_text() {
        assert_eq!(
            decode(&[b"event: error\ndata: upstream exploded\n\n"]),
            vec![Error("upstream exploded".to_string())]
        );
    }

    #[test]
    fn finish_reasons_map() {
        for (reason, want) in [
            ("stop", StopReason::EndTurn),
            ("length", StopReason::MaxTokens),
            ("tool_calls", StopReason::EndTurn),
            ("content_filter", StopReason::EndTurn),
        ] {
            let line = format!(
                "data: {{\"choices\":[{{\"delta\":{{}},\"finish_reason\":\"{reason}\"}}]}}\n\n"
            );
            assert_eq!(decode(&[line.as_bytes()]), vec![Finish(want)]);
        }
    }

    #[test]
    fn usage_in_both_places_gives_one_event() {
        let line = b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2},\"x_groq\":{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}}\n\n";
        assert_eq!(
            decode(&[line]),
            vec![Usage {
                input_tokens: 1,
                output_tokens: 2,
                content_tokens: None
            }]
        );
    }

    #[test]
    fn reasoning_tokens_are_told_apart_from_the_answer() {
        let line = b"data: {\"choices\":[],\"x_groq\":{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":30,\"completion_tokens_details\":{\"reasoning_tokens\":21}}}}\n\n";
        assert_eq!(
            decode(&[line]),
            vec![Usage {
                input_tokens: 1,
                output_tokens: 30,
                content_tokens: Some(9)
            }]
        );
    }

    #[test]
    fn final_frame_without_blank_line() {
        assert_eq!(decode(&[b"data: [DONE]"]), vec![Done]);
    }

    #[test]
    fn non_stream_completion() {
        let body = br#"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there","reasoning":"thought"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":9,"total_tokens":12}}"#;
        assert_eq!(
            decode_completion(body),
            vec![
                thinking("thought"),
                text("Hi there"),
                Usage {
                    input_tokens: 3,
                    output_tokens: 9,
                    content_tokens: None
                },
                Finish(StopReason::EndTurn),
            ]
        );
    }

    #[test]
    fn non_stream_errors() {
        assert_eq!(
            decode_completion(
                br#"{"error":{"message":"model decommissioned","code":"model_decommissioned"}}"#
            ),
            vec![Error("model decommissioned".to_string())]
        );
        assert!(matches!(&decode_completion(b"<html>")[..], [Error(_)]));
    }
}
