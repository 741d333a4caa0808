//! The reply plan: what to answer, as chunk lists, independent of the wire
//! format; and the [`WireFormat`] trait the Groq and Gemini encoders implement.

use std::time::Duration;

use super::script::{FinishReason, Reply};
use bytes::Bytes;

/// The answer given when no script matches.
pub const CANNED_ANSWER: &str = "This is a canned answer from the local provider stand-in.";

/// The reasoning given when reasoning is asked for and no script sets one.
pub const CANNED_THINKING: &str =
    "The user wants an answer. I will give the canned stand-in answer.";

/// Token counts of one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input: u64,
    /// Answer tokens.
    pub output: u64,
    /// Reasoning tokens.
    pub thinking: u64,
}

/// What the request contributes to the plan.
#[derive(Debug, Clone, Default)]
pub struct PlanRequest {
    /// Words in the request's message texts (at least 1).
    pub prompt_tokens: u64,
    /// The request asked for reasoning and the model gives it.
    pub wants_thinking: bool,
    /// The request's output token budget, if any.
    pub max_tokens: Option<u64>,
}

/// A successful answer, ready to be encoded.
#[derive(Debug, Clone)]
pub struct ReplyPlan {
    /// Reasoning chunks, sent before the answer.
    pub thinking: Vec<String>,
    /// Answer chunks.
    pub content: Vec<String>,
    /// How the answer ends.
    pub finish: FinishReason,
    /// Token counts; `None` sends no usage.
    pub usage: Option<TokenUsage>,
    /// Pause before each streamed reasoning/answer chunk but the first frame.
    pub chunk_delay: Duration,
    /// Abort the connection after this many answer chunks.
    pub drop_after: Option<usize>,
    /// Stop sending after this many answer chunks.
    pub stall_after: Option<usize>,
}

impl ReplyPlan {
    /// Plans the answer to `request`, following `reply` when a script matched.
    ///
    /// Each chunk counts as one token. Unless the script forces a finish
    /// reason, the request's output budget (which reasoning counts against)
    /// cuts the chunks and makes the finish reason `length`.
    pub fn build(request: &PlanRequest, reply: Option<&Reply>) -> Self {
        let empty = Reply::default();
        let reply = reply.unwrap_or(&empty);
        let mut content = chunks_of(reply.chunks.as_ref(), reply.text.as_deref())
            .unwrap_or_else(|| split_words(CANNED_ANSWER));
        let mut thinking = chunks_of(reply.thinking_chunks.as_ref(), reply.thinking.as_deref())
            .or_else(|| request.wants_thinking.then(|| split_words(CANNED_THINKING)))
            .unwrap_or_default();

        let mut finish = FinishReason::Stop;
        if let Some(forced) = reply.finish_reason {
            finish = forced;
        } else if let Some(budget) = request.max_tokens {
            let budget = usize::try_from(budget).unwrap_or(usize::MAX);
            if thinking.len() + content.len() > budget {
                finish = FinishReason::Length;
                thinking.truncate(budget);
                content.truncate(budget - thinking.len());
            }
        }

        let overrides = reply.usage.clone().unwrap_or_default();
        let usage = (!reply.omit_usage).then(|| TokenUsage {
            input: overrides.input_tokens.unwrap_or(request.prompt_tokens),
            output: overrides.output_tokens.unwrap_or(content.len() as u64),
            thinking: overrides.thinking_tokens.unwrap_or(thinking.len() as u64),
        });

        ReplyPlan {
            thinking,
            content,
            finish,
            usage,
            chunk_delay: Duration::from_millis(reply.chunk_delay_ms.unwrap_or(0)),
            drop_after: reply.drop_after_chunks,
            stall_after: reply.stall_after_chunks,
        }
    }

    /// All reasoning text.
    pub fn thinking_text(&self) -> String {
        self.thinking.concat()
    }

    /// All answer text.
    pub fn content_text(&self) -> String {
        self.content.concat()
    }
}

fn chunks_of(chunks: Option<&Vec<String>>, text: Option<&str>) -> Option<Vec<String>> {
    chunks.cloned().or_else(|| text.map(split_words))
}

/// Splits text into about one word per chunk, each chunk but the first
/// starting with the whitespace before its word; the chunks concatenate back
/// to `text`.
pub fn split_words(text: &str) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() && in_word {
            chunks.push(std::mem::take(&mut current));
            in_word = false;
        } else if !c.is_whitespace() {
            in_word = true;
        }
        current.push(c);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// Whitespace-separated words in `text`.
pub fn count_words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// The role of a streamed frame, which decides pacing and where a scripted
/// drop or stall cuts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Before any text (Groq's role chunk).
    Preamble,
    /// Carries a reasoning chunk.
    Thinking,
    /// Carries an answer chunk.
    Content,
    /// After the text (finish, usage, `[DONE]`).
    Trailer,
}

/// Bytes to write as one unit of a streamed body.
#[derive(Debug, Clone)]
pub struct Frame {
    /// What the frame carries.
    pub kind: FrameKind,
    /// The encoded bytes.
    pub data: Bytes,
}

impl Frame {
    /// A frame of `kind` holding `data`.
    pub fn new(kind: FrameKind, data: impl Into<Bytes>) -> Self {
        Frame {
            kind,
            data: data.into(),
        }
    }
}

/// A provider's encoding of a [`ReplyPlan`].
pub trait WireFormat: Send {
    /// The whole (non-streamed) answer body, as JSON text.
    fn complete(&self, plan: &ReplyPlan) -> String;
    /// The streamed answer, frame by frame.
    fn stream(&self, plan: &ReplyPlan) -> Vec<Frame>;
    /// The content type of the streamed answer.
    fn stream_content_type(&self) -> &'static str {
        "text/event-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standin::script::UsageOverride;

    #[test]
    fn split_words_round_trips() {
        let text = "  Hello,  world!\nNext line ";
        let chunks = split_words(text);
        assert_eq!(chunks.concat(), text);
        assert_eq!(chunks, vec!["  Hello,", "  world!", "\nNext", " line", " "]);
        assert_eq!(split_words(CANNED_ANSWER).len(), 10);
        assert!(split_words("").is_empty());
    }

    #[test]
    fn budget_cuts_thinking_first() {
        let request = PlanRequest {
            prompt_tokens: 3,
            wants_thinking: true,
            max_tokens: Some(12),
        };
        let plan = ReplyPlan::build(&request, None);
        assert_eq!(plan.thinking.len(), 12);
        assert!(plan.content.is_empty());
        assert_eq!(plan.finish, FinishReason::Length);
    }

    #[test]
    fn scripted_values_win() {
        let reply = Reply {
            chunks: Some(vec!["a".into(), "b".into()]),
            thinking: Some("t u".into()),
            finish_reason: Some(FinishReason::Stop),
            usage: Some(UsageOverride {
                output_tokens: Some(40),
                ..UsageOverride::default()
            }),
            ..Reply::default()
        };
        let request = PlanRequest {
            prompt_tokens: 7,
            wants_thinking: false,
            max_tokens: Some(1),
        };
        let plan = ReplyPlan::build(&request, Some(&reply));
        assert_eq!(plan.content_text(), "ab");
        assert_eq!(plan.thinking_text(), "t u");
        assert_eq!(plan.finish, FinishReason::Stop);
        assert_eq!(
            plan.usage,
            Some(TokenUsage {
                input: 7,
                output: 40,
                thinking: 2
            })
        );
    }
}
