//! `POST …/messages` (the whole answer, 201) and `POST …/messages/stream`
//! (Anthropic-format Server-Sent Events). Both store the user message before
//! the model is called; the answer is stored with the status it ended in, so
//! nothing produced is lost and nothing partial is marked complete. A stream
//! ends (`message_stop`) only once its answer is stored, and with an `error`
//! event when it could not be.

use std::future::Future;
use std::time::Duration;

use futures::channel::oneshot;
use serde_json::Value;
use worker::{console_error, console_warn, Env, Response};

use super::answer::{Discard, Ending, Outcome, Sink};
use super::idempotency;
use super::prepare::{prepare_send, Prepared, Start};
use super::repo::{self, Finish, NewAnswer};
use super::store;
use super::title;
use crate::config::Config;
use crate::db::{self, Database};
use crate::events::publish::Publisher;
use crate::events::sink::Tee;
use crate::http::body_writer::BodyOut;
use crate::http::ctx::Ctx;
use crate::http::respond::{self, event_stream};
use crate::http::ApiError;
use crate::llm::catalogue;
use crate::runtime::{now_ms, timeout};
use crate::sse::anthropic::Encoder;
use crate::usage::ledger::{self, Answered};

/// The assistant message to store, when a provider answered.
fn new_answer<'a>(prep: &Prepared, outcome: &'a Outcome) -> Option<NewAnswer<'a>> {
    let attempt = outcome.answered_by.as_ref()?;
    let spec = catalogue::find(&attempt.model);
    let tokens = |n: Option<u32>| n.and_then(|n| i32::try_from(n).ok());
    Some(NewAnswer {
        id: prep.answer_id,
        content: &outcome.text,
        thinking: Some(outcome.thinking.as_str()).filter(|t| !t.is_empty()),
        model: &attempt.model,
        provider: attempt.provider.as_str(),
        status: outcome.ending.status(),
        input_tokens: tokens(outcome.input_tokens),
        output_tokens: tokens(outcome.output_tokens),
        // A model without reasoning, not asked to think, reports only answer
        // tokens; otherwise only a separate count of the reasoning tells the
        // answer's size.
        content_tokens: tokens(
            outcome.content_tokens.or(outcome
                .output_tokens
                .filter(|_| !prep.call.thinking && spec.is_some_and(|m| !m.supports_thinking))),
        )
        .filter(|_| outcome.ending == Ending::Complete),
        input_price: spec.map_or("0".into(), |m| m.input_price_per_mtok.to_string()),
        output_price: spec.map_or("0".into(), |m| m.output_price_per_mtok.to_string()),
        latency_ms: i32::try_from(now_ms().saturating_sub(prep.started_ms)).unwrap_or(i32::MAX),
    })
}

/// After a completed first exchange of an untitled conversation, generates
/// its title (callers run this off the response path, after the answer is
/// stored) and publishes it. Failures are logged.
async fn title_if_needed(
    env: &Env,
    config: &'static Config,
    prep: &Prepared,
    outcome: &Outcome,
    events: &Publisher,
) {
    if !prep.needs_title || outcome.ending != Ending::Complete {
        return;
    }
    let question = &prep.question;
    let titled = db::with_db(env, &config.database, |c| async move {
        title::entitle(
            &c,
            config,
            prep.owner,
            prep.conversation,
            question,
            &outcome.text,
        )
        .await
    })
    .await;
    match titled {
        Ok(Some(conversation)) => events.updated(&conversation),
        Ok(None) => {}
        Err(e) => console_warn!("title for conversation {} failed: {e:?}", prep.conversation),
    }
}

/// Stores the answer, the token counts, the usage ledger and, under an
/// `Idempotency-Key`, the result (or frees the key when no provider
/// answered): one round trip, tried again through a short database outage
/// ([`store::retrying`]). Returns the response body.
async fn store(
    env: &Env,
    config: &'static Config,
    prep: &Prepared,
    outcome: &Outcome,
) -> StoreResult {
    let what = format!("storing answer {}", prep.answer_id);
    store::retrying(env, &config.database, &what, |c| async move {
        finish(&c, prep, outcome).await
    })
    .await
}

/// What storing an answer gave: `send_finish`'s response body.
type StoreResult = Result<Option<Value>, ApiError>;

/// One try of storing the answer (see [`store`]).
async fn finish(
    db: &dyn Database,
    prep: &Prepared,
    outcome: &Outcome,
) -> Result<Option<Value>, ApiError> {
    let answer = new_answer(prep, outcome);
    let answered = outcome
        .answered_by
        .as_ref()
        .zip(answer.as_ref())
        .map(|(attempt, a)| Answered {
            attempt,
            message_id: Some(a.id),
            input_tokens: a.input_tokens.unwrap_or(0),
            output_tokens: a.output_tokens.unwrap_or(0),
            latency_ms: Some(a.latency_ms),
            success: true,
        });
    let usage = ledger::entries("answer", &outcome.failures, answered);
    repo::finish(
        db,
        &Finish {
            owner: prep.owner,
            conversation: prep.conversation,
            user_message: prep.user_message_id,
            send_id: prep.answer_id,
            idempotency_key: prep.idempotency_key.as_deref(),
            stop_reason: outcome.stop.as_str(),
            answer,
            token_counts: &prep.counted,
            usage,
        },
    )
    .await
}

/// What the non-streaming route's answer task hands to its response.
struct Handover {
    /// `send_finish`'s response body (see [`store`]).
    body: StoreResult,
    /// How the answer ended.
    ending: Ending,
    /// The error to answer when no provider answered.
    failed: ApiError,
}

/// `POST /api/v1/conversations/{id}/messages`. The answer is produced and
/// stored in `wait_until`, and the response waits for it: a client that
/// leaves does not cancel the model call half-way, so the answer (and its
/// usage) is stored all the same, within the platform's limit on work after
/// a disconnect.
pub async fn send(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (rc, p, c) = (ctx.rc()?, ctx.principal()?, ctx.take_db()?);
    let (rc, c) = (&*rc, &c);
    let id = ctx.param(0);
    let prep = match prepare_send(rc, &p, ctx.req, &id, c).await? {
        Start::Replay(stored) => {
            let resp = respond::json(201, &idempotency::replay_body(&stored))?;
            return replayed(resp);
        }
        Start::Fresh(prep) => prep,
    };
    let events = Publisher::start(rc, prep.conversation, prep.answer_id);
    events.created(&prep.user_message);
    let (tx, rx) = oneshot::channel::<Handover>();
    let (env, config, rid) = (rc.env.clone(), rc.config, rc.request_id.clone());
    rc.spawn(async move {
        let mut sink = Tee {
            inner: &mut Discard,
            events: &events,
        };
        let outcome = prep.answer(config, &rid, &mut sink).await;
        let body = store(&env, config, &prep, &outcome).await;
        if let Err(e) = &body {
            console_error!("[{rid}] could not store the answer: {e:?}");
        }
        events.completed(body.as_ref().ok().and_then(Option::as_ref));
        let stored = matches!(body, Ok(Some(_)));
        let _ = tx.send(Handover {
            body,
            ending: outcome.ending,
            failed: outcome.failed_error(),
        });
        if stored {
            title_if_needed(&env, config, &prep, &outcome, &events).await;
        }
    });
    let answered = rx.await.map_err(|_| {
        ApiError::Unavailable("database unreachable; the answer could not be stored".into())
    })?;
    let body = answered.body.map_err(|e| match e {
        ApiError::Unavailable(_) => {
            ApiError::Unavailable("database unreachable; the answer could not be stored".into())
        }
        e => e,
    })?;
    match body {
        Some(body) if answered.ending != Ending::Failed => Ok(respond::json(201, &body)?),
        None if answered.ending == Ending::Failed => Err(answered.failed),
        _ => Err(ApiError::NotFound("conversation not found".into())),
    }
}

/// Awaits `fut`, sending a `ping` to the client after each `every` it
/// takes while the stream's closing events wait for it (a stream that
/// already ended with an `error` event gets nothing more).
async fn pinging<F: Future, W: BodyOut>(
    fut: F,
    every: Duration,
    sink: &mut ChannelSink<W>,
) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Some(out) = timeout(every, fut.as_mut()).await {
            return out;
        }
        if sink.held.is_some() && sink.is_open() {
            sink.send(Encoder::ping());
        }
    }
}

/// Marks a replayed result (`Idempotent-Replayed: true`).
fn replayed(resp: Response) -> Result<Response, ApiError> {
    resp.headers().set("Idempotent-Replayed", "true")?;
    Ok(resp)
}

/// Sends encoded events to the client's response stream, holding back the
/// closing events (`message_delta`, `message_stop`) until the answer is
/// stored ([`ChannelSink::stored`]). A sink dropped with them still held
/// (storing failed, or the database could not be reached) ends the stream
/// with an `error` event instead: a client is never told an answer
/// succeeded that was not kept.
struct ChannelSink<W: BodyOut> {
    tx: W,
    held: Option<String>,
}

/// What a stream ends with when its finished answer could not be stored.
pub const NOT_STORED: &str =
    "the answer could not be stored and is lost; your message was saved, send it again";

impl<W: BodyOut> ChannelSink<W> {
    fn new(tx: W) -> Self {
        ChannelSink { tx, held: None }
    }

    /// The answer is stored: sends what was held back.
    fn stored(&mut self) {
        if let Some(end) = self.held.take() {
            let _ = self.tx.write(end.into_bytes());
        }
    }

    /// The answer was not stored: drops the closing events and ends the
    /// stream with an `error` event of this type.
    fn not_stored(&mut self, error_type: &str) {
        if self.held.take().is_some() {
            let _ = self
                .tx
                .write(Encoder::error_event(error_type, NOT_STORED).into_bytes());
        }
    }
}

impl<W: BodyOut> Drop for ChannelSink<W> {
    fn drop(&mut self) {
        // Dropped before `stored`: the database was not reached.
        self.not_stored("overloaded_error");
    }
}

impl<W: BodyOut> Sink for ChannelSink<W> {
    fn send(&mut self, event: String) -> bool {
        self.tx.write(event.into_bytes())
    }

    fn end(&mut self, events: String) -> bool {
        self.held = Some(events);
        self.tx.is_open()
    }

    fn is_open(&self) -> bool {
        self.tx.is_open()
    }

    fn flush(&mut self) {
        self.tx.flush();
    }
}

/// `POST /api/v1/conversations/{id}/messages/stream`: the response starts at
/// once; the answer is produced in `wait_until`, relayed chunk by chunk, and
/// stored when it ends, however it ends (finished, upstream lost, client gone).
pub async fn stream(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (rc, p, c) = (ctx.rc()?, ctx.principal()?, ctx.take_db()?);
    let (rc, c) = (&*rc, &c);
    let id = ctx.param(0);
    let prep = match prepare_send(rc, &p, ctx.req, &id, c).await? {
        Start::Replay(stored) => {
            let resp = Response::from_bytes(idempotency::replay_events(&stored).into_bytes())?;
            return replayed(event_stream(resp)?);
        }
        Start::Fresh(prep) => prep,
    };
    let (tx, resp) = respond::written_event_stream()?;
    let config: &'static Config = rc.config;
    let env = rc.env.clone();
    let rid = rc.request_id.clone();
    let events = Publisher::start(rc, prep.conversation, prep.answer_id);
    events.created(&prep.user_message);
    rc.spawn(async move {
        let mut sink = ChannelSink::new(tx);
        let mut tee = Tee {
            inner: &mut sink,
            events: &events,
        };
        let outcome = prep.answer(config, &rid, &mut tee).await;
        let answer_id = prep.answer_id.to_string();
        if outcome.ending == Ending::Failed {
            let estimate = prep.attempts.first().map_or(0, |a| a.input_estimate);
            let mut encoder = Encoder::new(&answer_id, &prep.call.model, estimate);
            let failed = outcome.failed_error();
            sink.send(encoder.error(failed.error_type(), &failed.public_message()));
        }
        // The closing events (`message_delta`, `message_stop`) go out once
        // the answer is stored, so a client that sends its next message at
        // once finds this answer in place (in order, and in the next context).
        // Pings keep the stream alive while storing waits out an outage.
        let every = Duration::from_millis(config.stream_ping_interval_ms);
        let body = pinging(store(&env, config, &prep, &outcome), every, &mut sink).await;
        match &body {
            Ok(Some(_)) => sink.stored(),
            Ok(None) => sink.not_stored("not_found_error"),
            Err(e) => {
                console_error!("[{rid}] could not store the answer: {e:?}");
                sink.not_stored(e.error_type());
            }
        }
        drop(sink);
        events.completed(body.as_ref().ok().and_then(Option::as_ref));
        if matches!(body, Ok(Some(_))) {
            title_if_needed(&env, config, &prep, &outcome, &events).await;
        }
    });
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use futures::channel::mpsc::unbounded;

    use super::*;

    fn drain(rx: &mut futures::channel::mpsc::UnboundedReceiver<Vec<u8>>) -> String {
        let mut out = String::new();
        while let Ok(bytes) = rx.try_recv() {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
        out
    }

    #[test]
    fn the_closing_events_go_out_only_once_stored() {
        let (tx, mut rx) = unbounded();
        let mut sink = ChannelSink::new(tx);
        assert!(sink.end("event: message_stop\n\n".into()));
        assert_eq!(drain(&mut rx), "", "held until stored");
        sink.stored();
        drop(sink);
        assert_eq!(drain(&mut rx), "event: message_stop\n\n");
    }

    #[test]
    fn an_answer_not_stored_ends_with_an_error_event() {
        let (tx, mut rx) = unbounded();
        let mut sink = ChannelSink::new(tx);
        sink.end("event: message_stop\n\n".into());
        sink.not_stored("api_error");
        drop(sink);
        let out = drain(&mut rx);
        assert!(out.starts_with("event: error\n"), "{out}");
        assert!(out.contains(r#""type":"api_error""#), "{out}");
        assert!(!out.contains("message_stop"), "{out}");
    }

    #[test]
    fn a_sink_dropped_before_storing_ends_with_an_error_event() {
        let (tx, mut rx) = unbounded();
        let mut sink = ChannelSink::new(tx);
        sink.end("event: message_stop\n\n".into());
        drop(sink);
        let out = drain(&mut rx);
        assert!(out.contains(r#""type":"overloaded_error""#), "{out}");
        assert!(!out.contains("message_stop"), "{out}");
    }
}
