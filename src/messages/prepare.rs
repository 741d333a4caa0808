//! Before the first upstream byte of a send: validation, ownership, the
//! fallback plan with a context window per attempt, the `Idempotency-Key`
//! claim; and the user message waiting to be stored.

use tokio_postgres::Client;
use uuid::Uuid;
use worker::{console_warn, Request};

use super::answer::{Outcome, Sink, Timing};
use super::context;
use super::generate::{generate, Planned};
use super::idempotency::{self, Claim};
use super::input::send_input;
use super::repo::{self, Message};
use crate::auth::Principal;
use crate::config::Config;
use crate::conversations::owned::{conversation_id, owned};
use crate::http::context::RequestContext;
use crate::http::request::{header, read_object};
use crate::http::ApiError;
use crate::llm::chat::{system_prompt, Call};
use crate::llm::client;
use crate::llm::fallback::plan;
use crate::runtime::now_ms;
use serde_json::Value;

/// Everything decided before the first upstream byte.
pub(super) struct Prepared {
    pub(super) owner: Uuid,
    pub(super) conversation: Uuid,
    /// The user message, stored by the route before the model is called.
    pub(super) user: PendingUser,
    /// What every attempt shares (the turns are per attempt).
    pub(super) call: Call,
    pub(super) attempts: Vec<Planned>,
    pub(super) answer_id: Uuid,
    pub(super) started_ms: u64,
    /// Token counts made while planning, to store: (message, tokens).
    pub(super) counted: Vec<(Uuid, i32)>,
    /// The claimed `Idempotency-Key`, if the request had one.
    pub(super) idempotency_key: Option<String>,
    /// First exchange of an untitled conversation: a title is generated after it.
    pub(super) needs_title: bool,
}

/// What `prepare` decided.
pub(super) enum Start {
    /// Run the model.
    Fresh(Box<Prepared>),
    /// A retry of a finished send: its stored `{user_message, assistant_message}`.
    Replay(Value),
}

/// The user message of a send, not stored yet.
pub(super) struct PendingUser {
    pub(super) owner: Uuid,
    pub(super) conversation: Uuid,
    pub(super) content: String,
    pub(super) tokens: Option<i32>,
    pub(super) idempotency_key: Option<String>,
}

impl PendingUser {
    /// Stores it; on failure the `Idempotency-Key` is released (404 when the
    /// conversation vanished meanwhile).
    pub(super) async fn store(&self, c: &Client) -> Result<Message, ApiError> {
        let inserted =
            repo::insert_user_message(c, self.owner, self.conversation, &self.content, self.tokens)
                .await;
        match inserted {
            Ok(Some(m)) => Ok(m),
            failed => {
                if let Some(key) = &self.idempotency_key {
                    let _ = idempotency::release(c, self.owner, key).await;
                }
                failed?;
                Err(ApiError::NotFound("conversation not found".into()))
            }
        }
    }
}

/// Validates, checks ownership (404 before any upstream call), plans the
/// context of each attempt (422 when the message cannot fit) and claims the
/// `Idempotency-Key`. The route then stores the user message.
pub(super) async fn prepare_send(
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
    // A retry of a finished send is answered from the stored result, before
    // any planning (whatever changed since).
    if let Some(key) = &key {
        let claim = idempotency::claim(c, p.user_id, key, &fingerprint, conversation.id).await?;
        if let Claim::Replay(stored) = claim {
            return Ok(Start::Replay(stored));
        }
    }
    let planning_started = now_ms();
    // Planned with the reasoning instruction when thinking is asked for:
    // a model without native reasoning gets it in its system prompt.
    let system = system_prompt(conversation.system_prompt.as_deref(), input.thinking);
    let planned = context::plan_windows(rc, system.as_deref(), &history, &input, attempts).await;
    let windows = match planned {
        Ok(w) => w,
        Err(e) => {
            if let Some(key) = &key {
                let _ = idempotency::release(c, p.user_id, key).await;
            }
            return Err(e);
        }
    };
    let counted = windows.counted.len() + usize::from(windows.new_tokens.is_some());
    rc.timing(
        "context",
        now_ms().saturating_sub(planning_started),
        Some(&format!("{counted} counted")),
    );
    Ok(Start::Fresh(Box::new(Prepared {
        owner: p.user_id,
        conversation: conversation.id,
        user: PendingUser {
            owner: p.user_id,
            conversation: conversation.id,
            content: input.content,
            tokens: windows.new_tokens,
            idempotency_key: key.clone(),
        },
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
    pub(super) async fn answer(&self, config: &Config, rid: &str, sink: &mut dyn Sink) -> Outcome {
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
