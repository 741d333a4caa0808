//! Server-sent events: decoding upstream LLM streams and encoding ours.
//!
//! Everything here is pure Rust (no Workers runtime) and unit-tested natively:
//!
//! - [`lines`]: incremental SSE framing (`data:` / `event:` lines, blank-line
//!   dispatch) over arbitrary byte chunks.
//! - [`openai`]: Groq / OpenAI-compatible chat completion chunks → [`LlmEvent`].
//! - [`gemini`]: Gemini `streamGenerateContent?alt=sse` responses → [`LlmEvent`].
//! - [`think`]: splits `<thinking>…</thinking>` out of plain answer text.
//! - [`anthropic`]: encodes our output as Anthropic's Messages stream.

pub mod anthropic;
pub mod gemini;
pub mod lines;
pub mod openai;
pub mod think;

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model finished its answer (or stopped for any reason other than
    /// the token limit).
    EndTurn,
    /// The output token limit was reached.
    MaxTokens,
}

impl StopReason {
    /// The Anthropic wire name: `"end_turn"` or `"max_tokens"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::EndTurn => "end_turn",
            StopReason::MaxTokens => "max_tokens",
        }
    }
}

/// One decoded upstream event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LlmEvent {
    /// An answer text delta (never empty).
    Text(String),
    /// A reasoning delta (never empty).
    Thinking(String),
    /// Token usage as reported upstream; `output_tokens` includes reasoning
    /// tokens.
    Usage {
        /// Prompt tokens.
        input_tokens: u32,
        /// Completion tokens, reasoning included.
        output_tokens: u32,
        /// Answer tokens without reasoning, when the provider tells them
        /// apart (stored as the answer's size for the context window).
        content_tokens: Option<u32>,
    },
    /// The model stopped, and why.
    Finish(StopReason),
    /// An explicit end marker (`[DONE]` in OpenAI-compatible streams).
    Done,
    /// An error object inside the stream, or a data line that is not valid
    /// JSON.
    Error(String),
}

/// Reads a JSON number as `u32`, saturating; anything else counts as 0.
pub(crate) fn json_u32(value: Option<&serde_json::Value>) -> u32 {
    value
        .and_then(serde_json::Value::as_u64)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

/// Extracts the message of an `{"error":{"message":…}}` object, if `value`
/// is one. A bare string error or an error without a message is still
/// reported (with a generic text).
pub(crate) fn error_message(value: &serde_json::Value) -> Option<String> {
    let error = value.get("error")?;
    if error.is_null() {
        return None;
    }
    let message = match error {
        serde_json::Value::String(s) => s.clone(),
        _ => error
            .get("message")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("upstream error: {error}")),
    };
    Some(message)
}

/// A text or reasoning delta as it can be stored: PostgreSQL text cannot
/// hold U+0000, so a model's NUL characters are dropped; `None` when
/// nothing else is left.
pub(crate) fn storable(text: &str) -> Option<String> {
    let kept = text.replace('\0', "");
    (!kept.is_empty()).then_some(kept)
}

/// Shortens `s` to at most `max` bytes (on a char boundary) for messages.
pub(crate) fn snippet(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Incremental stream decoding: bytes in, events out (one per provider format).
pub trait Decoder {
    /// Feeds a chunk, split anywhere.
    fn push(&mut self, bytes: &[u8]) -> Vec<LlmEvent>;
    /// The body ended: flushes what is left.
    fn finish(&mut self) -> Vec<LlmEvent>;
}

/// A provider's stream format: what one Server-Sent Events frame means.
pub trait Format {
    /// Appends the events of one frame to `out`.
    fn frame(frame: &lines::SseFrame, out: &mut Vec<LlmEvent>);
}

/// The [`Decoder`] of a format `F`: the body is split into frames
/// ([`lines::LineDecoder`]) and each frame decoded by `F`.
#[derive(Debug)]
pub struct FrameDecoder<F> {
    lines: lines::LineDecoder,
    format: std::marker::PhantomData<F>,
}

impl<F: Format> FrameDecoder<F> {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        FrameDecoder {
            lines: lines::LineDecoder::new(),
            format: std::marker::PhantomData,
        }
    }

    /// Feeds a chunk of the response body; returns the events it completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<LlmEvent> {
        Self::decode(self.lines.push(bytes))
    }

    /// Ends the body: decodes a final frame not followed by a blank line
    /// (a format's own end marker, such as `[DONE]`, is its only `Done`).
    pub fn finish(&mut self) -> Vec<LlmEvent> {
        Self::decode(self.lines.finish())
    }

    fn decode(frames: Vec<lines::SseFrame>) -> Vec<LlmEvent> {
        let mut out = Vec::new();
        for frame in &frames {
            F::frame(frame, &mut out);
        }
        out
    }
}

impl<F: Format> Default for FrameDecoder<F> {
    fn default() -> Self {
        FrameDecoder::new()
    }
}

impl<F: Format> Decoder for FrameDecoder<F> {
    fn push(&mut self, bytes: &[u8]) -> Vec<LlmEvent> {
        FrameDecoder::push(self, bytes)
    }
    fn finish(&mut self) -> Vec<LlmEvent> {
        FrameDecoder::finish(self)
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::fmt::Debug;

    use super::{Decoder, LlmEvent};

    /// A text event.
    pub fn text(s: &str) -> LlmEvent {
        LlmEvent::Text(s.to_string())
    }

    /// A thinking event.
    pub fn thinking(s: &str) -> LlmEvent {
        LlmEvent::Thinking(s.to_string())
    }

    /// Feeds `chunks` to a fresh decoder and returns every event, `finish` included.
    pub fn decode_with<D: Decoder>(mut decoder: D, chunks: &[&[u8]]) -> Vec<LlmEvent> {
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(decoder.push(chunk));
        }
        out.extend(decoder.finish());
        out
    }

    /// Runs `run` on `input` whole, split in two at every offset, and one
    /// byte at a time; asserts every result equals the whole-input one and
    /// returns it.
    pub fn assert_split_invariant<T, F>(input: &[u8], run: F) -> T
    where
        T: PartialEq + Debug,
        F: Fn(&[&[u8]]) -> T,
    {
        let whole = run(&[input]);
        for i in 0..=input.len() {
            let (a, b) = input.split_at(i);
            assert_eq!(run(&[a, b]), whole, "split at byte {i}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(&bytes), whole, "one byte at a time");
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stop_reason_names() {
        assert_eq!(StopReason::EndTurn.as_str(), "end_turn");
        assert_eq!(StopReason::MaxTokens.as_str(), "max_tokens");
    }

    #[test]
    fn json_u32_saturates_and_defaults() {
        assert_eq!(json_u32(Some(&json!(5))), 5);
        assert_eq!(json_u32(Some(&json!(u64::MAX))), u32::MAX);
        assert_eq!(json_u32(Some(&json!("5"))), 0);
        assert_eq!(json_u32(None), 0);
    }

    #[test]
    fn error_message_shapes() {
        assert_eq!(
            error_message(&json!({"error": {"message": "boom"}})),
            Some("boom".to_string())
        );
        assert_eq!(
            error_message(&json!({"error": "bad"})),
            Some("bad".to_string())
        );
        assert!(error_message(&json!({"error": {"code": 1}})).is_some());
        assert_eq!(error_message(&json!({"error": null})), None);
        assert_eq!(error_message(&json!({"choices": []})), None);
    }

    #[test]
    fn deltas_lose_nul_characters() {
        assert_eq!(storable("a\0b\0"), Some("ab".to_string()));
        assert_eq!(storable("\0"), None);
        assert_eq!(storable(""), None);
        assert_eq!(storable("\u{1}é"), Some("\u{1}é".to_string()));
    }

    #[test]
    fn snippet_respects_char_boundaries() {
        assert_eq!(snippet("héllo", 2), "h");
        assert_eq!(snippet("abc", 10), "abc");
        assert_eq!(snippet("abc", 2), "ab");
    }
}
