//! The committed phase of an answer: one provider's stream relayed event
//! by event to the sink, ending complete, broken off, or abandoned.

use std::time::Duration;

use super::answer::{expand, Ending, Outcome, Sink, Timing};
use crate::llm::client::{self, Upstream};
use crate::llm::fallback::{Attempt, Failure};
use crate::runtime::{timeout, yield_now};
use crate::sse::anthropic::Encoder;
use crate::sse::think::ThinkSplitter;
use crate::sse::{LlmEvent, StopReason};

/// The committed phase: relays one provider's stream to the sink.
pub(super) struct Relay {
    pub(super) encoder: Encoder,
    pub(super) splitter: Option<ThinkSplitter>,
    pub(super) thinking: bool,
    /// Reported (input, output, content) tokens.
    pub(super) usage: Option<(u32, u32, Option<u32>)>,
    pub(super) stop: StopReason,
}

enum Step {
    Continue,
    Finished,
    Broken(String),
    ClientGone,
}

impl Relay {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run(
        mut self,
        mut upstream: Upstream,
        mut decoder: Box<dyn client::Decoder>,
        first: Vec<LlmEvent>,
        timing: Timing,
        sink: &mut dyn Sink,
        attempt: &Attempt,
        failures: Vec<(Attempt, Failure)>,
    ) -> Outcome {
        let mut opening = self.encoder.start();
        let mut step = self.encode(first, &mut opening);
        if !sink.send(opening) {
            step = Step::ClientGone;
        }
        yield_now().await;
        let mut silent = Duration::ZERO;
        while matches!(step, Step::Continue) {
            match timeout(timing.ping_every, upstream.next()).await {
                None => {
                    silent += timing.ping_every;
                    step = if silent >= timing.idle_limit {
                        Step::Broken("the provider stopped sending".into())
                    } else if sink.send(Encoder::ping()) {
                        Step::Continue
                    } else {
                        Step::ClientGone
                    };
                }
                Some(Some(Ok(bytes))) => {
                    silent = Duration::ZERO;
                    let events = decoder.push(&bytes);
                    let events = expand(events, self.splitter.as_mut(), self.thinking);
                    step = self.apply(events, sink);
                    // Let the response stream write what was just sent before
                    // reading on: upstream data already buffered would
                    // otherwise be drained in one chain of microtasks, and the
                    // client would get the whole answer at the end.
                    yield_now().await;
                }
                Some(Some(Err(e))) => {
                    worker::console_warn!("{}: upstream connection lost: {e}", attempt.model);
                    step = Step::Broken("the connection to the model provider was lost".into());
                }
                Some(None) => {
                    let mut events = decoder.finish();
                    events.push(LlmEvent::Done);
                    let events = expand(events, self.splitter.as_mut(), self.thinking);
                    step = self.apply(events, sink);
                    if matches!(step, Step::Continue) {
                        step = Step::Broken("the provider closed the stream early".into());
                    }
                }
            }
        }
        drop(upstream);
        let ending = match step {
            Step::Finished => {
                let out = self.output_tokens();
                sink.end(self.encoder.finish(self.stop, out));
                Ending::Complete
            }
            Step::Broken(reason) => {
                sink.send(self.encoder.error("api_error", &reason));
                Ending::Incomplete
            }
            Step::ClientGone | Step::Continue => Ending::Incomplete,
        };
        Outcome {
            ending,
            answered_by: Some(attempt.clone()),
            text: self.encoder.text_so_far().to_string(),
            thinking: self.encoder.thinking_so_far().to_string(),
            input_tokens: self.usage.map(|u| u.0),
            output_tokens: self.usage.map(|u| u.1),
            content_tokens: self.usage.and_then(|u| u.2),
            stop: self.stop,
            failures,
        }
    }

    /// Output tokens for `message_delta`: as reported, else estimated.
    fn output_tokens(&self) -> u32 {
        self.usage.map(|u| u.1).unwrap_or_else(|| {
            let chars = self.encoder.text_so_far().len() + self.encoder.thinking_so_far().len();
            u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX)
        })
    }

    /// Encodes one upstream chunk's events and delivers them to the sink as
    /// one write (a long answer often arrives as few chunks of many deltas).
    fn apply(&mut self, events: Vec<LlmEvent>, sink: &mut dyn Sink) -> Step {
        let mut out = String::new();
        let step = self.encode(events, &mut out);
        if !out.is_empty() && !sink.send(out) {
            return Step::ClientGone;
        }
        step
    }

    fn encode(&mut self, events: Vec<LlmEvent>, out: &mut String) -> Step {
        let mut finished = false;
        for event in events {
            let encoded = match event {
                LlmEvent::Text(t) => self.encoder.text(&t),
                LlmEvent::Thinking(t) => self.encoder.thinking(&t),
                LlmEvent::Usage {
                    input_tokens,
                    output_tokens,
                    content_tokens,
                } => {
                    self.usage = Some((input_tokens, output_tokens, content_tokens));
                    self.encoder.report_input_tokens(input_tokens);
                    continue;
                }
                LlmEvent::Finish(reason) => {
                    self.stop = reason;
                    finished = true;
                    continue;
                }
                LlmEvent::Done => {
                    if finished || self.usage.is_some() {
                        return Step::Finished;
                    }
                    return Step::Broken("the provider ended without finishing".into());
                }
                LlmEvent::Error(m) => {
                    worker::console_warn!("provider error mid-answer: {m}");
                    return Step::Broken("the model provider reported an error mid-answer".into());
                }
            };
            out.push_str(&encoded);
        }
        Step::Continue
    }
}
