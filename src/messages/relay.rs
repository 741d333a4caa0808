//! The committed phase of an answer: one provider's stream relayed event
//! by event to the sink, ending complete, broken off, or abandoned.

use std::time::Duration;

use futures::future::{select, Either};
use worker::Delay;

use super::answer::{expand, Ending, Outcome, Sink, Timing};
use crate::llm::client::{self, Upstream};
use crate::llm::fallback::{Attempt, Failure};
use crate::runtime::{now_ms, yield_now};
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

/// What a silence of the upstream calls for.
#[derive(Debug, PartialEq, Eq)]
enum Silence {
    /// Not yet a whole ping interval: wait on.
    Wait,
    /// Keep the client's connection alive.
    Ping,
    /// Silent for too long: the upstream counts as lost.
    GiveUp,
}

/// Sends what the sink holds now and gives the event loop two turns (one
/// to write it, one for the response to pass it to the connection), so
/// that the opening and the first content leave before the rest of a
/// burst is relayed. Without them, an upstream that delivered a long answer
/// at once kept the runtime busy relaying all of it before the first token
/// reached the client (45–50 ms later for 1,000 deltas).
async fn out_now(sink: &mut dyn Sink) {
    sink.flush();
    yield_now().await;
    yield_now().await;
}

/// Clock granularity allowed for when the alarm rings a little early.
const SLACK: Duration = Duration::from_millis(5);

/// Decides on a silence of `quiet` since the last upstream chunk, and when
/// to look again.
fn on_silence(quiet: Duration, timing: Timing) -> (Silence, Duration) {
    if quiet >= timing.idle_limit {
        (Silence::GiveUp, timing.ping_every)
    } else if quiet + SLACK >= timing.ping_every {
        (Silence::Ping, timing.ping_every)
    } else {
        (Silence::Wait, timing.ping_every - quiet)
    }
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
        sink.answering(&attempt.model, attempt.provider.as_str());
        let mut opening = self.encoder.start();
        let mut step = self.encode(first, &mut opening, sink);
        if !sink.send(opening) {
            step = Step::ClientGone;
        }
        out_now(sink).await;
        // One alarm for the silence, re-armed only when it rings: arming a
        // timer per upstream chunk would cost a timer per chunk.
        let mut last_data = now_ms();
        let deadline = last_data
            .saturating_add(u64::try_from(timing.answer_limit.as_millis()).unwrap_or(u64::MAX));
        let mut alarm = Box::pin(Delay::from(timing.ping_every));
        while matches!(step, Step::Continue) {
            let next = std::pin::pin!(upstream.next());
            match select(next, alarm.as_mut()).await {
                Either::Right(((), _)) => {
                    let now = now_ms();
                    let quiet = Duration::from_millis(now.saturating_sub(last_data));
                    let (action, rearm) = on_silence(quiet, timing);
                    step = match action {
                        _ if now >= deadline => {
                            Step::Broken("the answer reached the time limit of an answer".into())
                        }
                        Silence::Wait => Step::Continue,
                        Silence::Ping if sink.send(Encoder::ping()) => Step::Continue,
                        Silence::Ping => Step::ClientGone,
                        Silence::GiveUp => Step::Broken("the provider stopped sending".into()),
                    };
                    alarm.set(Delay::from(rearm));
                }
                // No yield after a chunk: the body reader hands over
                // everything read so far at once, and the body writer sends
                // what was written on its own timer.
                Either::Left((Some(Ok(bytes)), _)) => {
                    last_data = now_ms();
                    let events = decoder.push(&bytes);
                    let events = expand(events, self.splitter.as_mut(), self.thinking);
                    let before = self.has_content();
                    step = self.apply(events, sink);
                    if !before && self.has_content() {
                        out_now(sink).await;
                    }
                }
                Either::Left((Some(Err(e)), _)) => {
                    worker::console_warn!("{}: upstream connection lost: {e}", attempt.model);
                    step = Step::Broken("the connection to the model provider was lost".into());
                }
                Either::Left((None, _)) => {
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

    /// Whether any text or thinking has been relayed yet.
    fn has_content(&self) -> bool {
        !self.encoder.text_so_far().is_empty() || !self.encoder.thinking_so_far().is_empty()
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
        let step = self.encode(events, &mut out, sink);
        if !out.is_empty() && !sink.send(out) {
            return Step::ClientGone;
        }
        step
    }

    fn encode(&mut self, events: Vec<LlmEvent>, out: &mut String, sink: &mut dyn Sink) -> Step {
        let mut finished = false;
        for event in events {
            let encoded = match event {
                LlmEvent::Text(t) => {
                    sink.delta(false, &t);
                    self.encoder.text(&t)
                }
                LlmEvent::Thinking(t) => {
                    sink.delta(true, &t);
                    self.encoder.thinking(&t)
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: Timing = Timing {
        first_token: Duration::from_secs(2),
        ping_every: Duration::from_secs(1),
        idle_limit: Duration::from_secs(60),
        answer_limit: Duration::from_secs(300),
    };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_whole_interval_of_silence_pings_and_rearms_a_whole_interval() {
        assert_eq!(on_silence(ms(1000), TIMING), (Silence::Ping, ms(1000)));
        assert_eq!(on_silence(ms(2400), TIMING), (Silence::Ping, ms(1000)));
        // The clock may read a hair under the interval when the alarm rings.
        assert_eq!(on_silence(ms(997), TIMING), (Silence::Ping, ms(1000)));
    }

    #[test]
    fn data_since_the_alarm_was_set_waits_for_the_rest_of_the_interval() {
        assert_eq!(on_silence(ms(300), TIMING), (Silence::Wait, ms(700)));
        assert_eq!(on_silence(ms(0), TIMING), (Silence::Wait, ms(1000)));
    }

    #[test]
    fn silence_past_the_idle_limit_gives_up() {
        assert_eq!(on_silence(ms(60_000), TIMING).0, Silence::GiveUp);
        assert_eq!(on_silence(ms(59_999), TIMING).0, Silence::Ping);
    }
}
