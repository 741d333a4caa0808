//! Producing one answer: try the planned models in order until one starts
//! answering, then relay its stream event by event (never buffering the
//! whole answer) as Anthropic events into a [`Sink`], and report what came
//! out for storage.

use std::time::Duration;

use super::answer::{expand, Ending, Outcome, Sink, Timing};
use super::relay::Relay;
use crate::config::Config;
use crate::llm::chat::{Call, Turn};
use crate::llm::client::{self, Upstream};
use crate::llm::fallback::{Attempt, Failure};
use crate::runtime::timeout;
use crate::sse::anthropic::Encoder;
use crate::sse::think::ThinkSplitter;
use crate::sse::{LlmEvent, StopReason};

/// One attempt with the context planned for its model.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The model to try.
    pub attempt: Attempt,
    /// The earlier turns and the new one that fit its window.
    pub turns: Vec<Turn>,
    /// Prompt tokens, as estimated for `message_start` before the provider reports.
    pub input_estimate: u32,
    /// Its answer limit (the request's `max_tokens` is capped to it).
    pub max_output_tokens: u32,
}

/// Runs the attempts; see the module docs. `base` carries what every
/// attempt shares (system prompt, sampling, thinking); each [`Planned`]
/// brings its model and turns.
pub async fn generate(
    config: &Config,
    base: &Call,
    attempts: &[Planned],
    message_id: &str,
    timing: Timing,
    sink: &mut dyn Sink,
) -> Outcome {
    let mut failures = Vec::new();
    for planned in attempts {
        let attempt = &planned.attempt;
        let Some(api) = client::api(config, attempt.provider) else {
            continue;
        };
        if !sink.is_open() {
            // The client left during the previous attempt: start no other.
            break;
        }
        let call = Call {
            model: attempt.model.clone(),
            native_thinking: attempt.spec.is_none_or(|m| m.supports_thinking),
            turns: planned.turns.clone(),
            max_tokens: base.max_tokens.map(|n| n.min(planned.max_output_tokens)),
            ..base.clone()
        };
        let started = start(&api.request(&call), timing, api.decoder(), &call, sink).await;
        let (upstream, decoder, first) = match started {
            Ok(s) => s,
            Err(failure) => {
                let go_on = failure.allows_fallback();
                failures.push((attempt.clone(), failure));
                if go_on {
                    continue;
                }
                break;
            }
        };
        let encoder = Encoder::new(message_id, &attempt.model, planned.input_estimate);
        let relay = Relay {
            encoder,
            splitter: first.splitter,
            thinking: call.thinking,
            usage: None,
            stop: StopReason::EndTurn,
        };
        return relay
            .run(
                upstream,
                decoder,
                first.events,
                timing,
                sink,
                attempt,
                failures,
            )
            .await;
    }
    Outcome {
        ending: Ending::Failed,
        answered_by: None,
        text: String::new(),
        thinking: String::new(),
        input_tokens: None,
        output_tokens: None,
        content_tokens: None,
        stop: StopReason::EndTurn,
        failures,
    }
}

/// Events read before the answer was committed to a provider.
struct FirstEvents {
    events: Vec<LlmEvent>,
    splitter: Option<ThinkSplitter>,
}

/// Opens the upstream and reads until the first token (or fails).
/// While waiting, `ping` events keep the client's connection alive.
async fn start(
    req: &crate::llm::chat::UpstreamRequest,
    timing: Timing,
    mut decoder: Box<dyn client::Decoder>,
    call: &Call,
    sink: &mut dyn Sink,
) -> Result<(Upstream, Box<dyn client::Decoder>, FirstEvents), Failure> {
    // `open` gives up (and aborts the request) at `first_token`; the margin
    // lets it do so before this wait ends.
    let opening = client::open(req, timing.first_token);
    let margin = timing.first_token + Duration::from_secs(1);
    let mut upstream = wait_pinging(opening, margin, timing, sink).await??;
    let mut splitter = (call.thinking && !call.native_thinking).then(ThinkSplitter::new);
    let mut events = Vec::new();
    loop {
        let chunk = wait_pinging(upstream.next(), timing.first_token, timing, sink).await?;
        let decoded = match chunk {
            Some(Ok(bytes)) => decoder.push(&bytes),
            Some(Err(e)) => return Err(Failure::Stream(e)),
            None => {
                let mut rest = decoder.finish();
                rest.push(LlmEvent::Done);
                rest
            }
        };
        for event in expand(decoded, splitter.as_mut(), call.thinking) {
            match &event {
                LlmEvent::Error(m) => return Err(Failure::Stream(m.clone())),
                LlmEvent::Done if !events.iter().any(is_token) => {
                    return Err(Failure::Stream("the answer ended before any text".into()))
                }
                _ => {}
            }
            events.push(event);
        }
        if events.iter().any(is_token) {
            return Ok((upstream, decoder, FirstEvents { events, splitter }));
        }
    }
}

/// How often the wait for a first token looks whether the client is still there.
const LOOK_EVERY: Duration = Duration::from_millis(500);

/// Awaits `fut` for at most `limit`, sending a `ping` after each
/// `ping_every` of silence. Gives up with [`Failure::Timeout`] when the time
/// runs out, and with [`Failure::ClientGone`] once the client has left (the
/// platform cancels its response stream; looked at every [`LOOK_EVERY`]):
/// an answer nobody waits for is not started, and no further attempt
/// outlives the platform's grace after a disconnect.
async fn wait_pinging<F: std::future::Future>(
    fut: F,
    limit: Duration,
    timing: Timing,
    sink: &mut dyn Sink,
) -> Result<F::Output, Failure> {
    let mut fut = std::pin::pin!(fut);
    let mut waited = Duration::ZERO;
    let mut quiet = Duration::ZERO;
    loop {
        let step = LOOK_EVERY
            .min(timing.ping_every.saturating_sub(quiet))
            .min(limit.saturating_sub(waited));
        if step.is_zero() {
            return Err(Failure::Timeout);
        }
        if let Some(out) = timeout(step, fut.as_mut()).await {
            return Ok(out);
        }
        waited += step;
        quiet += step;
        if !sink.is_open() {
            return Err(Failure::ClientGone);
        }
        if waited >= limit {
            return Err(Failure::Timeout);
        }
        if quiet >= timing.ping_every {
            quiet = Duration::ZERO;
            if !sink.send(Encoder::ping()) {
                return Err(Failure::ClientGone);
            }
        }
    }
}

fn is_token(e: &LlmEvent) -> bool {
    matches!(e, LlmEvent::Text(_) | LlmEvent::Thinking(_))
}
