//! What producing an answer deals in, shared by its start ([`super::generate`])
//! and its committed phase ([`super::relay`]): where events go, how an answer
//! ended and what it produced, the relay's timing, and the expansion of
//! provider events through the `<thinking>` splitter.

use std::time::Duration;

use crate::config::Config;
use crate::http::ApiError;
use crate::llm::fallback::{Attempt, Failure};
use crate::sse::think::ThinkSplitter;
use crate::sse::{LlmEvent, StopReason};

/// Where encoded events go: the client's stream, or nowhere (non-stream).
pub trait Sink {
    /// Delivers one encoded event; false when the client has gone away.
    fn send(&mut self, event: String) -> bool;

    /// Delivers the closing events of a finished answer (`message_delta`,
    /// `message_stop`); a sink may hold them until the answer is stored.
    fn end(&mut self, events: String) -> bool {
        self.send(events)
    }

    /// A provider started answering with `model` (watchers learn of the
    /// message being produced).
    fn answering(&mut self, _model: &str, _provider: &str) {}

    /// A piece of the answer's text (`thinking` false) or reasoning, as
    /// sent to the client (watchers get it too).
    fn delta(&mut self, _thinking: bool, _text: &str) {}

    /// Whether anyone still reads (false once the client has gone away).
    fn is_open(&self) -> bool {
        true
    }

    /// Sends what was delivered so far now, rather than joined with what
    /// follows (the opening and the first content of an answer).
    fn flush(&mut self) {}
}

/// A sink that drops everything (the non-streaming route still runs the
/// encoder to collect the text).
pub struct Discard;

impl Sink for Discard {
    fn send(&mut self, _event: String) -> bool {
        true
    }
}

/// How the answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The model finished.
    Complete,
    /// The upstream broke off, or the client left, mid-answer.
    Incomplete,
    /// No provider produced a first token.
    Failed,
}

impl Ending {
    /// The stored `status` of the assistant message.
    pub fn status(self) -> &'static str {
        match self {
            Ending::Complete => "complete",
            Ending::Incomplete => "incomplete",
            Ending::Failed => "error",
        }
    }
}

/// What an answer produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How it ended.
    pub ending: Ending,
    /// The attempt that answered (`None` when all failed).
    pub answered_by: Option<Attempt>,
    /// Answer text.
    pub text: String,
    /// Reasoning, if any.
    pub thinking: String,
    /// Prompt tokens as reported by the provider.
    pub input_tokens: Option<u32>,
    /// Answer tokens as reported (reasoning included).
    pub output_tokens: Option<u32>,
    /// Answer tokens without reasoning, when the provider told them apart.
    pub content_tokens: Option<u32>,
    /// Why the model stopped.
    pub stop: StopReason,
    /// Every failed attempt, in order.
    pub failures: Vec<(Attempt, Failure)>,
}

/// What a send answers when every provider failed (its user message stays).
pub const ALL_FAILED: &str = "every model provider failed; your message was saved, try again";

impl Outcome {
    /// The error of an answer that never started ([`Ending::Failed`]): 400
    /// `invalid_request_error` when the last provider refused the request
    /// itself (a 4xx no fallback can fix, such as a prompt too long for the
    /// model), else 502 `overloaded_error`. Never the provider's own text.
    pub fn failed_error(&self) -> ApiError {
        match self.failures.last().and_then(|(_, f)| f.refusal()) {
            Some(message) => ApiError::InvalidRequest(message.into()),
            None => ApiError::ProvidersFailed(ALL_FAILED.into()),
        }
    }
}

/// Timing of the relay.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Longest wait for response headers and then for the first token.
    pub first_token: Duration,
    /// Silence after which a `ping` event is sent.
    pub ping_every: Duration,
    /// Silence after which the upstream counts as lost.
    pub idle_limit: Duration,
    /// Longest an answer may stream once its first token came; a longer one
    /// is cut off and stored `incomplete` (so that an `Idempotency-Key`'s
    /// lease can cover every legitimate answer).
    pub answer_limit: Duration,
}

/// [`Timing::answer_limit`]: five minutes, several times what the longest
/// answer the catalogue allows takes at the providers' speeds.
pub const ANSWER_LIMIT: Duration = Duration::from_secs(300);

impl Timing {
    /// The timing configured for this deployment.
    pub fn from_config(config: &Config) -> Timing {
        let first = Duration::from_millis(config.first_token_timeout_ms);
        Timing {
            first_token: first,
            ping_every: Duration::from_millis(config.stream_ping_interval_ms),
            idle_limit: first.saturating_mul(4).max(Duration::from_secs(60)),
            answer_limit: ANSWER_LIMIT,
        }
    }
}

/// Routes text through the `<thinking>` splitter (models without native
/// reasoning) and drops reasoning nobody asked for.
pub fn expand(
    events: Vec<LlmEvent>,
    splitter: Option<&mut ThinkSplitter>,
    thinking: bool,
) -> Vec<LlmEvent> {
    let mut out = Vec::with_capacity(events.len());
    let mut splitter = splitter;
    for event in events {
        match (event, splitter.as_deref_mut()) {
            (LlmEvent::Text(t), Some(s)) => out.extend(s.push(&t)),
            (done @ (LlmEvent::Done | LlmEvent::Finish(_)), Some(s)) => {
                out.extend(s.finish());
                out.push(done);
            }
            (LlmEvent::Thinking(_), _) if !thinking => {}
            (event, _) => out.push(event),
        }
    }
    out
}
