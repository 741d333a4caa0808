//! Decoding Gemini `streamGenerateContent?alt=sse` bodies.
//!
//! Each `data:` frame is a whole `GenerateContentResponse`. Per response,
//! events come out in this order: one `Thinking` / `Text` per part of
//! `candidates[0].content.parts` (in order; `"thought": true` parts are
//! thinking), then `Usage` (from `usageMetadata`), then `Finish` (from
//! `candidates[0].finishReason`). There is no `[DONE]`: the end of the body
//! ends the stream.
//!
//! A response with no candidates whose `promptFeedback.blockReason` is set
//! (the prompt was blocked) gives `Finish(EndTurn)`.

use serde_json::Value;

use super::lines::SseFrame;
use super::{
    error_message, json_u32, snippet, storable, Format, FrameDecoder, LlmEvent, StopReason,
};

/// Streaming decoder for Gemini `streamGenerateContent?alt=sse` bodies: a
/// [`FrameDecoder`] of [`Gemini`].
pub type GeminiDecoder = FrameDecoder<Gemini>;

/// Gemini `streamGenerateContent?alt=sse` bodies, frame by frame.
#[derive(Debug)]
pub struct Gemini;

impl Format for Gemini {
    fn frame(frame: &SseFrame, out: &mut Vec<LlmEvent>) {
        decode_frame(frame, out);
    }
}

/// Decodes a whole non-stream `generateContent` body: one response object,
/// or a JSON array of them (as `streamGenerateContent` without `alt=sse`
/// returns). An error object or invalid JSON gives an `Error`.
pub fn decode_response(body: &[u8]) -> Vec<LlmEvent> {
    let mut out = Vec::new();
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => {
            for item in &items {
                decode_object(item, &mut out);
            }
        }
        Ok(value) => decode_object(&value, &mut out),
        Err(err) => out.push(invalid_json(&String::from_utf8_lossy(body), &err)),
    }
    out
}

fn decode_frame(frame: &SseFrame, out: &mut Vec<LlmEvent>) {
    let data = frame.data.trim();
    if data.is_empty() {
        return;
    }
    let is_error_event = frame.event.as_deref() == Some("error");
    match serde_json::from_str::<Value>(data) {
        Ok(value) if is_error_event && error_message(&value).is_none() => {
            out.push(LlmEvent::Error(format!(
                "upstream error: {}",
                snippet(data, 200)
            )));
        }
        Ok(value) => decode_object(&value, out),
        Err(_) if is_error_event => out.push(LlmEvent::Error(snippet(data, 200).to_string())),
        Err(err) => out.push(invalid_json(data, &err)),
    }
}

fn invalid_json(data: &str, err: &serde_json::Error) -> LlmEvent {
    LlmEvent::Error(format!(
        "invalid JSON from upstream ({err}): {}",
        snippet(data, 200)
    ))
}

/// Decodes one `GenerateContentResponse` (or error object).
fn decode_object(value: &Value, out: &mut Vec<LlmEvent>) {
    if let Some(message) = error_message(value) {
        out.push(LlmEvent::Error(message));
        return;
    }
    let candidate = value
        .get("candidates")
        .and_then(Value::as_array)
        .and_then(|c| c.first());
    let parts = candidate
        .and_then(|c| c.get("content"))
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array);
    for part in parts.into_iter().flatten() {
        let Some(text) = part.get("text").and_then(Value::as_str).and_then(storable) else {
            continue;
        };
        if part.get("thought").and_then(Value::as_bool) == Some(true) {
            out.push(LlmEvent::Thinking(text));
        } else {
            out.push(LlmEvent::Text(text));
        }
    }
    if let Some(usage) = value.get("usageMetadata").filter(|u| u.is_object()) {
        let candidates = usage.get("candidatesTokenCount").filter(|c| c.is_u64());
        let thoughts = json_u32(usage.get("thoughtsTokenCount"));
        out.push(LlmEvent::Usage {
            input_tokens: json_u32(usage.get("promptTokenCount")),
            output_tokens: json_u32(candidates).saturating_add(thoughts),
            content_tokens: candidates.map(|c| json_u32(Some(c))),
        });
    }
    let finish = candidate
        .and_then(|c| c.get("finishReason"))
        .and_then(Value::as_str);
    if let Some(reason) = finish {
        out.push(LlmEvent::Finish(finish_reason(reason)));
    } else if candidate.is_none()
        && value
            .get("promptFeedback")
            .and_then(|f| f.get("blockReason"))
            .is_some_and(|r| !r.is_null())
    {
        out.push(LlmEvent::Finish(StopReason::EndTurn));
    }
}

/// `"MAX_TOKENS"` → `MaxTokens`; anything else (`"STOP"`, `"SAFETY"`,
/// `"RECITATION"`, …) → `EndTurn`.
fn finish_reason(reason: &str) -> StopReason {
    match reason {
        "MAX_TOKENS" => StopReason::MaxTokens,
        _ => StopReason::EndTurn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::test_support::{assert_split_invariant, decode_with, text, thinking};
    use LlmEvent::*;

    fn decode(chunks: &[&[u8]]) -> Vec<LlmEvent> {
        decode_with(GeminiDecoder::new(), chunks)
    }

    const GEMINI_STREAM: &str = concat!(
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Considering the question\",\"thought\": true}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"totalTokenCount\": 30,\"thoughtsTokenCount\": 22},\"modelVersion\": \"gemini-2.5-flash-lite\"}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"héllo 😀\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"candidatesTokenCount\": 3,\"totalTokenCount\": 33,\"thoughtsTokenCount\": 22}}\r\n\r\n",
        "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" world\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"candidatesTokenCount\": 5,\"totalTokenCount\": 35,\"thoughtsTokenCount\": 22}}\r\n\r\n",
    );

    fn usage(input_tokens: u32, output_tokens: u32, content_tokens: Option<u32>) -> LlmEvent {
        Usage {
            input_tokens,
            output_tokens,
            content_tokens,
        }
    }

    #[test]
    fn gemini_stream_crlf_every_split() {
        let events = assert_split_invariant(GEMINI_STREAM.as_bytes(), decode);
        assert_eq!(
            events,
            vec![
                thinking("Considering the question"),
                usage(8, 22, None),
                text("héllo 😀"),
                usage(8, 25, Some(3)),
                text(" world"),
                usage(8, 27, Some(5)),
                Finish(StopReason::EndTurn),
            ]
        );
    }

    #[test]
    fn comments_max_tokens_and_mixed_parts_every_split() {
        let input = concat!(
            ": keep-alive\n\n",
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\",\"thought\":true},{\"text\":\"b\"},{\"thoughtSignature\":\"sig\"},{\"text\":\"\"}]}}]}\n\n",
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"c\",\"thought\":false}]},\"finishReason\":\"MAX_TOKENS\"}],\"usageMetadata\":{\"promptTokenCount\":4}}",
        );
        let events = assert_split_invariant(input.as_bytes(), decode);
        assert_eq!(
            events,
            vec![
                thinking("a"),
                text("b"),
                text("c"),
                usage(4, 0, None),
                Finish(StopReason::MaxTokens),
            ]
        );
    }

    #[test]
    fn error_object_and_invalid_json_every_split() {
        let input = concat!(
            "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}]}\r\n\r\n",
            "data: {\"candidates\": [\r\n\r\n",
            "data: {\"error\":{\"code\":429,\"message\":\"Resource exhausted\",\"status\":\"RESOURCE_EXHAUSTED\"}}\r\n\r\n",
        );
        let events = assert_split_invariant(input.as_bytes(), decode);
        assert_eq!(events.len(), 3);
        assert_eq!(events[0], text("x"));
        assert!(matches!(&events[1], Error(m) if m.contains("invalid JSON")));
        assert_eq!(events[2], Error("Resource exhausted".to_string()));
    }

    #[test]
    fn other_finish_reasons_are_end_turn() {
        for reason in ["SAFETY", "RECITATION", "OTHER", "STOP"] {
            let line = format!("data: {{\"candidates\":[{{\"finishReason\":\"{reason}\"}}]}}\n\n");
            assert_eq!(
                decode(&[line.as_bytes()]),
                vec![Finish(StopReason::EndTurn)]
            );
        }
    }

    #[test]
    fn blocked_prompt_finishes() {
        let line = b"data: {\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":{\"promptTokenCount\":6}}\n\n";
        assert_eq!(
            decode(&[line]),
            vec![usage(6, 0, None), Finish(StopReason::EndTurn)]
        );
    }

    #[test]
    fn finish_emits_nothing_special() {
        let mut d = GeminiDecoder::new();
        assert_eq!(d.finish(), vec![]);
    }

    #[test]
    fn non_stream_response_object_and_array() {
        let one = br#"{"candidates":[{"content":{"parts":[{"text":"why","thought":true},{"text":"Answer"}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":2,"thoughtsTokenCount":5}}"#;
        let want = vec![
            thinking("why"),
            text("Answer"),
            usage(10, 7, Some(2)),
            Finish(StopReason::EndTurn),
        ];
        assert_eq!(decode_response(one), want);
        let array = br#"[{"candidates":[{"content":{"parts":[{"text":"A"}]}}]},{"candidates":[{"content":{"parts":[{"text":"B"}]},"finishReason":"MAX_TOKENS"}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":2}}]"#;
        assert_eq!(
            decode_response(array),
            vec![
                text("A"),
                text("B"),
                usage(1, 2, Some(2)),
                Finish(StopReason::MaxTokens)
            ]
        );
    }

    #[test]
    fn non_stream_errors() {
        assert_eq!(
            decode_response(
                br#"{"error":{"code":400,"message":"bad model","status":"INVALID_ARGUMENT"}}"#
            ),
            vec![Error("bad model".to_string())]
        );
        assert!(matches!(&decode_response(b"")[..], [Error(_)]));
    }
}
