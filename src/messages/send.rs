//! `POST …/messages` (the whole answer, 201) and `POST …/messages/stream`
//! (Anthropic-format Server-Sent Events). Both store the user message first;
//! the answer is stored with the status it ended in, so nothing produced is
//! lost and nothing partial is marked complete.

use futures::channel::mpsc::{unbounded, UnboundedSender};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio_postgres::Client;
use uuid::Uuid;
use worker::{console_error, console_warn, Request, Response};

use super::generate::{generate, Discard, Ending, Outcome, Planned, Sink, Timing};
use super::idempotency::{self, Claim};
use super::input::{send_input, SendInput};
use super::repo::{self, Message, NewAnswer};
use super::title;
use crate::auth::Principal;
use crate::config::Config;
use crate::conversations::routes::{conversation_id, owned};
use crate::db;
use crate::http::context::RequestContext;
use crate::http::error::FieldError;
use crate::http::request::{header, read_object};
use crate::http::{respond, ApiError};
use crate::llm::catalogue;
use crate::llm::chat::{Call, Role, Turn};
use crate::llm::client;
use crate::llm::fallback::{plan, Attempt};
use crate::llm::tokens;
use crate::llm::window::{self, Context, Earlier};
use crate::runtime::now_ms;
use crate::sse::anthropic::Encoder;
use crate::usage::ledger::{self, Answered};

/// Everything decided before the first upstream byte.
struct Prepared {
    owner: Uuid,
    conversation: Uuid,
    user_message: Message,
    /// What every attempt shares (the turns are per attempt).
    call: Call,
    attempts: Vec<Planned>,
    answer_id: Uuid,
    started_ms: u64,
    /// Token counts made while planning, to store: (message, tokens).
    counted: Vec<(Uuid, i32)>,
    /// The claimed `Idempotency-Key`, if the request had one.
    idempotency_key: Option<String>,
    /// First exchange of an untitled conversation: a title is generated after it.
    needs_title: bool,
}

/// What `prepare` decided.
enum Start {
    /// Run the model.
    Fresh(Box<Prepared>),
    /// A retry of a finished send: its stored `{user_message, assistant_message}`.
    Replay(Value),
}

/// The context windows of a send: one per attempt (re-planned for each
/// model's window), the counts made, and the new message's tokens.
struct Windows {
    attempts: Vec<Planned>,
    counted: Vec<(Uuid, i32)>,
    new_tokens: Option<i32>,
}

/// Plans the context of every attempt: the system prompt and the new
/// message always, then the newest whole exchanges of `history` that fit
/// the model's budget. 422 when the new message
/// does not fit the first model at all; a fallback it does not fit is skipped.
fn plan_windows(
    config: &Config,
    system: Option<&str>,
    earlier: &[repo::ContextMessage],
    input: &SendInput,
    attempts: Vec<Attempt>,
) -> Result<Windows, ApiError> {
    let role = |m: &repo::ContextMessage| {
        if m.role == "assistant" {
            Role::Assistant
        } else {
            Role::User
        }
    };
    let sizes: Vec<Earlier<'_>> = earlier
        .iter()
        .map(|m| Earlier {
            role: role(m),
            text: &m.content,
            tokens: m.content_tokens.and_then(|n| u32::try_from(n).ok()),
        })
        .collect();
    let mut context = Context::new(system, &sizes, &input.content);
    let mut planned = Vec::new();
    for (i, attempt) in attempts.into_iter().enumerate() {
        let limits = config.limits(&attempt.model);
        let budget = window::budget(limits, input.max_tokens);
        match context.plan(budget, &mut tokens::count) {
            Ok(w) => {
                let mut turns: Vec<Turn> = earlier[w.first..]
                    .iter()
                    .map(|m| Turn {
                        role: role(m),
                        content: m.content.clone(),
                    })
                    .collect();
                turns.push(Turn {
                    role: Role::User,
                    content: input.content.clone(),
                });
                planned.push(Planned {
                    attempt,
                    turns,
                    input_estimate: w.estimate,
                    max_output_tokens: limits.max_output_tokens,
                });
            }
            Err(e) if i == 0 => {
                let with = if system.is_some() {
                    " with the system prompt"
                } else {
                    ""
                };
                return Err(ApiError::Validation(vec![FieldError::new(
                    "content",
                    format!(
                        "too long for {}: this message{with} needs about {} tokens, the \
                         model's context leaves {} for the prompt (shorten it, or ask for \
                         fewer max_tokens)",
                        attempt.model, e.tokens, e.budget
                    ),
                )]));
            }
            Err(e) => console_warn!(
                "fallback {} skipped: the message needs {} tokens, its budget is {}",
                attempt.model,
                e.tokens,
                e.budget
            ),
        }
    }
    let tokens = |n: u32| i32::try_from(n).ok();
    Ok(Windows {
        counted: context
            .counted()
            .iter()
            .filter_map(|&(i, n)| Some((earlier[i].id, tokens(n)?)))
            .collect(),
        new_tokens: context.new_tokens().and_then(tokens),
        attempts: planned,
    })
}

/// Validates, checks ownership (404 before any upstream call), plans the
/// context of each attempt (422 when the message cannot fit) and stores the
/// user message.
async fn prepare_send(
    rc: &RequestContext,
    p: &Principal,
    mut req: Request,
    id: &str,
    c: &Client,
) -> Result<Start, ApiError> {
    let started_ms = now_ms();
    let id = conversation_id(id)?;
    let key = header(&req, "Idempotency-Key")
        .map(|k| idempotency::check_key(&k))
        .transpose()?;
    let body = read_object(&mut req).await?;
    let fingerprint = idempotency::request_hash(id, &body);
    // Both queries are owner-scoped, so they can go down the connection
    // together (pipelined) before the ownership answer is known.
    let (conversation, history) = futures::join!(owned(c, p, id), repo::context(c, p.user_id, id));
    let conversation = conversation?;
    let config = rc.config;
    let input = send_input(body, &conversation.model, |m| {
        config.limits(m).max_output_tokens
    })?;
    let attempts = plan(
        &input.model,
        &config.fallback_model,
        &config.default_model,
        |provider| client::api(config, provider).is_some(),
    );
    if attempts.is_empty() {
        return Err(ApiError::Unavailable(
            "no model provider is configured (set GROQ_API_KEY or GOOGLE_AI_API_KEY)".into(),
        ));
    }
    let history = history?;
    let needs_title = conversation.message_count == 0 && conversation.title.is_none();
    let planning_started = now_ms();
    let windows = plan_windows(
        config,
        conversation.system_prompt.as_deref(),
        &history,
        &input,
        attempts,
    )?;
    rc.limit_headers.borrow_mut().push((
        "Server-Timing",
        format!(
            "context;dur={};desc=\"{} counted\"",
            now_ms().saturating_sub(planning_started),
            windows.counted.len() + usize::from(windows.new_tokens.is_some())
        ),
    ));
    if let Some(key) = &key {
        let claim = idempotency::claim(c, p.user_id, key, &fingerprint, conversation.id).await?;
        if let Claim::Replay(stored) = claim {
            return Ok(Start::Replay(stored));
        }
    }
    let inserted = repo::insert_user_message(
        c,
        p.user_id,
        conversation.id,
        &input.content,
        windows.new_tokens,
    )
    .await;
    let user_message = match inserted {
        Ok(Some(m)) => m,
        failed => {
            if let Some(key) = &key {
                let _ = idempotency::release(c, p.user_id, key).await;
            }
            failed?;
            return Err(ApiError::NotFound("conversation not found".into()));
        }
    };
    Ok(Start::Fresh(Box::new(Prepared {
        owner: p.user_id,
        conversation: conversation.id,
        user_message,
        call: Call {
            model: input.model,
            system: conversation.system_prompt,
            turns: Vec::new(),
            max_tokens: input.max_tokens,
            temperature: input.temperature,
            thinking: input.thinking,
            native_thinking: true,
        },
        attempts: windows.attempts,
        answer_id: Uuid::new_v4(),
        started_ms,
        counted: windows.counted,
        idempotency_key: key,
        needs_title,
    })))
}

impl Prepared {
    /// Produces the answer into `sink` and logs the attempts that failed.
    async fn answer(&self, config: &Config, rid: &str, sink: &mut dyn Sink) -> Outcome {
        let outcome = generate(
            config,
            &self.call,
            &self.attempts,
            &self.answer_id.to_string(),
            Timing::from_config(config),
            sink,
        )
        .await;
        log_failures(rid, &outcome);
        outcome
    }
}

/// Logs the attempts that failed before one answered (or all failed).
fn log_failures(rid: &str, outcome: &Outcome) {
    for (attempt, failure) in &outcome.failures {
        console_warn!(
            "[{rid}] {} ({}) failed: {}",
            attempt.model,
            attempt.provider.as_str(),
            failure.describe()
        );
    }
}

/// Stores the answer (when a provider produced one) and the usage ledger.
async fn store(
    c: &Client,
    prep: &Prepared,
    outcome: &Outcome,
) -> Result<Option<Message>, ApiError> {
    let (answer, counts) = futures::join!(
        store_answer(c, prep, outcome),
        repo::store_token_counts(c, prep.owner, &prep.counted)
    );
    let answer = answer?;
    if let Err(e) = counts {
        console_warn!("token counts not stored: {e:?}");
    }
    let answered = outcome
        .answered_by
        .as_ref()
        .zip(answer.as_ref())
        .map(|(attempt, m)| Answered {
            attempt,
            message_id: Some(m.id),
            input_tokens: m.input_tokens.unwrap_or(0),
            output_tokens: m.output_tokens.unwrap_or(0),
            latency_ms: m.latency_ms,
            success: true,
        });
    ledger::record_outcome(
        c,
        prep.owner,
        prep.conversation,
        "answer",
        &outcome.failures,
        answered,
    )
    .await?;
    Ok(answer)
}

/// Stores the assistant message.
async fn store_answer(
    c: &Client,
    prep: &Prepared,
    outcome: &Outcome,
) -> Result<Option<Message>, ApiError> {
    let Some(attempt) = &outcome.answered_by else {
        return Ok(None);
    };
    let spec = catalogue::find(&attempt.model);
    let tokens = |n: Option<u32>| n.and_then(|n| i32::try_from(n).ok());
    let answer = NewAnswer {
        id: prep.answer_id,
        content: &outcome.text,
        thinking: Some(outcome.thinking.as_str()).filter(|t| !t.is_empty()),
        model: &attempt.model,
        provider: attempt.provider.as_str(),
        status: outcome.ending.status(),
        input_tokens: tokens(outcome.input_tokens),
        output_tokens: tokens(outcome.output_tokens),
        // A model without reasoning reports only answer tokens; otherwise
        // only a separate count of the reasoning tells the answer's size.
        content_tokens: tokens(
            outcome.content_tokens.or(outcome
                .output_tokens
                .filter(|_| spec.is_some_and(|m| !m.supports_thinking))),
        )
        .filter(|_| outcome.ending == Ending::Complete),
        input_price: spec.map_or("0".into(), |m| m.input_price_per_mtok.to_string()),
        output_price: spec.map_or("0".into(), |m| m.output_price_per_mtok.to_string()),
        latency_ms: i32::try_from(now_ms().saturating_sub(prep.started_ms)).unwrap_or(i32::MAX),
    };
    repo::insert_answer(c, prep.owner, prep.conversation, &answer).await
}

/// After a completed first exchange of an untitled conversation, generates
/// its title (callers run this off the response path). Failures are logged.
async fn title_if_needed(c: &Client, config: &Config, prep: &Prepared, outcome: &Outcome) {
    if !prep.needs_title || outcome.ending != Ending::Complete {
        return;
    }
    let question = &prep.user_message.content;
    if let Err(e) = title::entitle(
        c,
        config,
        prep.owner,
        prep.conversation,
        question,
        &outcome.text,
    )
    .await
    {
        console_warn!("title for conversation {} failed: {e:?}", prep.conversation);
    }
}

/// Stores the answer and, under an `Idempotency-Key`, the result (or
/// releases the key when no provider answered). Returns the response body.
async fn finish(c: &Client, prep: &Prepared, outcome: &Outcome) -> Result<Option<Value>, ApiError> {
    let answer = store(c, prep, outcome).await?;
    let body = answer.map(|assistant| {
        json!({
            "user_message": prep.user_message.to_json(),
            "assistant_message": assistant.to_json(),
        })
    });
    if let Some(key) = &prep.idempotency_key {
        match &body {
            Some(body) => idempotency::complete(c, prep.owner, key, body).await?,
            None => idempotency::release(c, prep.owner, key).await?,
        }
    }
    Ok(body)
}

/// `POST /api/v1/conversations/{id}/messages`.
pub async fn send(
    rc: &RequestContext,
    p: &Principal,
    req: Request,
    id: &str,
    c: &Client,
) -> Result<Response, ApiError> {
    let prep = match prepare_send(rc, p, req, id, c).await? {
        Start::Replay(stored) => {
            let resp =
                respond::json(201, &stored).map_err(|e| ApiError::Internal(e.to_string()))?;
            return replayed(resp);
        }
        Start::Fresh(prep) => prep,
    };
    let outcome = prep.answer(rc.config, &rc.request_id, &mut Discard).await;
    let body = finish(c, &prep, &outcome).await?;
    let ending = outcome.ending;
    if prep.needs_title && ending == Ending::Complete {
        let (env, config) = (rc.env.clone(), rc.config);
        rc.ctx.wait_until(async move {
            let _ = db::with_client(&env, |c| async move {
                title_if_needed(&c, config, &prep, &outcome).await;
                Ok(())
            })
            .await;
        });
    }
    match body {
        Some(body) if ending != Ending::Failed => {
            respond::json(201, &body).map_err(|e| ApiError::Internal(e.to_string()))
        }
        None if ending == Ending::Failed => Err(ApiError::ProvidersFailed(
            "every model provider failed; your message was saved, try again".into(),
        )),
        _ => Err(ApiError::NotFound("conversation not found".into())),
    }
}

/// Marks a replayed result (`Idempotent-Replayed: true`).
fn replayed(resp: Response) -> Result<Response, ApiError> {
    resp.headers()
        .set("Idempotent-Replayed", "true")
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(resp)
}

/// Sets the headers of an event stream.
fn event_stream(resp: Response) -> Result<Response, ApiError> {
    let headers = resp.headers();
    for (name, value) in [
        ("Content-Type", "text/event-stream; charset=utf-8"),
        ("Cache-Control", "no-cache, no-store"),
        ("X-Accel-Buffering", "no"),
    ] {
        headers
            .set(name, value)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    Ok(resp)
}

/// Sends encoded events to the client's response stream.
struct ChannelSink(UnboundedSender<Vec<u8>>);

impl Sink for ChannelSink {
    fn send(&mut self, event: String) -> bool {
        self.0.unbounded_send(event.into_bytes()).is_ok()
    }
}

/// `POST /api/v1/conversations/{id}/messages/stream`: the response starts at
/// once; the answer is produced in `wait_until`, relayed chunk by chunk, and
/// stored when it ends, however it ends (finished, upstream lost, client gone).
pub async fn stream(
    rc: &RequestContext,
    p: &Principal,
    req: Request,
    id: &str,
    c: &Client,
) -> Result<Response, ApiError> {
    let prep = match prepare_send(rc, p, req, id, c).await? {
        Start::Replay(stored) => {
            let resp = Response::from_bytes(idempotency::replay_events(&stored).into_bytes())
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            return replayed(event_stream(resp)?);
        }
        Start::Fresh(prep) => prep,
    };
    let (tx, rx) = unbounded::<Vec<u8>>();
    let config: &'static Config = rc.config;
    let env = rc.env.clone();
    let rid = rc.request_id.clone();
    rc.ctx.wait_until(async move {
        let mut sink = ChannelSink(tx);
        let outcome = prep.answer(config, &rid, &mut sink).await;
        let answer_id = prep.answer_id.to_string();
        if outcome.ending == Ending::Failed {
            let estimate = prep.attempts.first().map_or(0, |a| a.input_estimate);
            let mut encoder = Encoder::new(&answer_id, &prep.call.model, estimate);
            sink.send(encoder.error(
                "overloaded_error",
                "every model provider failed; your message was saved, try again",
            ));
        }
        drop(sink);
        let stored = db::with_client(&env, |c| async move {
            let body = finish(&c, &prep, &outcome).await?;
            title_if_needed(&c, config, &prep, &outcome).await;
            Ok(body)
        })
        .await;
        if let Err(e) = stored {
            console_error!("[{rid}] could not store the answer: {e:?}");
        }
    });
    let body = rx.map(Ok::<Vec<u8>, worker::Error>);
    event_stream(Response::from_stream(body).map_err(|e| ApiError::Internal(e.to_string()))?)
}
