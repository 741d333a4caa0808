//! Before the first upstream byte of a send: validation, then one database
//! round trip (`send_prepare`: ownership, the `Idempotency-Key` claim, the
//! user message stored, the context candidates), then the fallback plan
//! with a context window per attempt. A send refused after that round trip
//! (a body invalid for the conversation's model, a message too long, no
//! provider) undoes it with `send_abort`.

use serde_json::{Map, Value};
use uuid::Uuid;
use worker::{console_warn, Request};

use super::answer::{Outcome, Sink, Timing};
use super::context;
use super::generate::{generate, Planned};
use super::idempotency;
use super::input::{send_input, SendInput};
use super::repo::{self, ContextMessage, Prepare};
use crate::auth::Principal;
use crate::config::Config;
use crate::conversations::owned::conversation_id;
use crate::conversations::repo as conversations;
use crate::db::Database;
use crate::http::context::RequestContext;
use crate::http::request::{header, read_object};
use crate::http::ApiError;
use crate::llm::catalogue;
use crate::llm::chat::{system_prompt, Call};
use crate::llm::client;
use crate::llm::fallback::plan;
use crate::llm::limits;
use crate::runtime::now_ms;

/// Everything decided before the first upstream byte.
pub(super) struct Prepared {
    pub(super) owner: Uuid,
    pub(super) conversation: Uuid,
    /// The stored user message.
    pub(super) user_message_id: Uuid,
    /// It as a Message object (for `message.created`).
    pub(super) user_message: Value,
    /// The user's text (for the title).
    pub(super) question: String,
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

/// The largest prompt budget any model of this deployment could give the
/// send: how much history is worth reading.
fn history_budget(config: &Config, max_tokens: Option<u32>) -> u32 {
    catalogue::MODELS
        .iter()
        .map(|m| limits::budget(config.limits(m.id), max_tokens))
        .max()
        .unwrap_or(0)
}

/// The body validated against the conversation's model. Before the
/// database is asked, the conversation's model is not known: a body
/// invalid for the default model costs one more round trip to answer 404
/// before 422, as for every other route.
async fn validate_before(
    rc: &RequestContext,
    p: &Principal,
    id: Uuid,
    body: &Map<String, Value>,
    db: &dyn Database,
) -> Result<SendInput, ApiError> {
    let config = rc.config;
    let max_output = |m: &str| config.limits(m).max_output_tokens;
    match send_input(body.clone(), &config.default_model, max_output) {
        Ok(input) => Ok(input),
        Err(invalid) => {
            let Some(conversation) = conversations::get(db, p.user_id, id).await? else {
                return Err(ApiError::NotFound("conversation not found".into()));
            };
            let model = conversation["model"].as_str().unwrap_or_default();
            send_input(body.clone(), model, max_output).map_err(|_| invalid)
        }
    }
}

/// Leaves out messages before the first user message when the candidates
/// do not reach back to the start (the window begins with an exchange).
fn from_an_exchange(mut candidates: Vec<ContextMessage>, complete: bool) -> Vec<ContextMessage> {
    if !complete {
        let first_user = candidates
            .iter()
            .position(|m| m.role == "user")
            .unwrap_or(candidates.len());
        candidates.drain(..first_user);
    }
    candidates
}

/// Undoes a prepared send that will not go ahead.
struct Undo<'a> {
    rc: &'a RequestContext,
    db: &'a dyn Database,
    owner: Uuid,
    message: Uuid,
    key: Option<&'a str>,
}

impl Undo<'_> {
    /// Runs `send_abort` and hands back why the send stopped.
    async fn run(&self, why: ApiError) -> ApiError {
        if let Err(e) = repo::abort(self.db, self.owner, self.message, self.key).await {
            console_warn!("[{}] send not undone: {e:?}", self.rc.request_id);
        }
        why
    }
}

/// Validates, asks the database (one round trip), and plans the context of
/// each attempt (422 when the message cannot fit).
pub(super) async fn prepare_send(
    rc: &RequestContext,
    p: &Principal,
    mut req: Request,
    id: &str,
    db: &dyn Database,
) -> Result<Start, ApiError> {
    let started_ms = now_ms();
    let id = conversation_id(id)?;
    let key = header(&req, "Idempotency-Key")
        .map(|k| idempotency::check_key(&k))
        .transpose()?;
    let body = read_object(&mut req).await?;
    let fingerprint = idempotency::request_hash(id, &body);
    let config = rc.config;
    let early = validate_before(rc, p, id, &body, db).await?;
    let names_model = body.get("model").is_some_and(|m| !m.is_null());
    let prepare_started = now_ms();
    let prepared = repo::prepare(
        db,
        &Prepare {
            owner: p.user_id,
            conversation: id,
            content: &early.content,
            idempotency: key.as_deref().map(|k| (k, fingerprint.as_str())),
            budget_tokens: history_budget(config, early.max_tokens),
            lease_seconds: idempotency::lease(Timing::from_config(config)).as_secs(),
        },
    )
    .await?;
    rc.timing("prepare", now_ms().saturating_sub(prepare_started), None);
    let (settings, needs_title, user_message, candidates, complete) = match prepared {
        repo::Prepared::Prepared {
            conversation,
            needs_title,
            user_message,
            candidates,
            complete,
        } => (
            conversation,
            needs_title,
            user_message,
            candidates,
            complete,
        ),
        repo::Prepared::Replay { response } => return Ok(Start::Replay(response)),
        _ => {
            return Err(ApiError::Internal(
                "api.send_prepare: unexpected outcome".into(),
            ))
        }
    };
    let user_message_id = user_message["id"]
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(|| ApiError::Internal("api.send_prepare: user message without id".into()))?;
    let undo = Undo {
        rc,
        db,
        owner: p.user_id,
        message: user_message_id,
        key: key.as_deref(),
    };
    let input = if names_model {
        early
    } else {
        match send_input(body, &settings.model, |m| {
            config.limits(m).max_output_tokens
        }) {
            Ok(input) => input,
            Err(e) => return Err(undo.run(e).await),
        }
    };
    let attempts = plan(
        &input.model,
        &config.fallback_model,
        &config.default_model,
        |provider| client::api(config, provider).is_some(),
    );
    if attempts.is_empty() {
        return Err(undo
            .run(ApiError::Unavailable(
                "no model provider is configured (set GROQ_API_KEY or GOOGLE_AI_API_KEY)".into(),
            ))
            .await);
    }
    let history = from_an_exchange(candidates, complete);
    let planning_started = now_ms();
    // Planned with the reasoning instruction when thinking is asked for:
    // a model without native reasoning gets it in its system prompt.
    let system = system_prompt(settings.system_prompt.as_deref(), input.thinking);
    let planned = context::plan_windows(rc, system.as_deref(), &history, &input, attempts).await;
    let windows = match planned {
        Ok(w) => w,
        Err(e) => return Err(undo.run(e).await),
    };
    let counted = windows.counted.len() + usize::from(windows.new_tokens.is_some());
    rc.timing(
        "context",
        now_ms().saturating_sub(planning_started),
        Some(&format!("{counted} counted")),
    );
    let mut counts = windows.counted;
    if let Some(n) = windows.new_tokens {
        counts.push((user_message_id, n));
    }
    Ok(Start::Fresh(Box::new(Prepared {
        owner: p.user_id,
        conversation: id,
        user_message_id,
        user_message,
        question: input.content,
        call: Call {
            model: input.model,
            system: settings.system_prompt,
            turns: Vec::new(),
            max_tokens: input.max_tokens,
            temperature: input.temperature,
            thinking: input.thinking,
            native_thinking: true,
        },
        attempts: windows.attempts,
        answer_id: Uuid::new_v4(),
        started_ms,
        counted: counts,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn m(role: &str, content: &str) -> ContextMessage {
        ContextMessage {
            id: Uuid::nil(),
            role: role.into(),
            content: content.into(),
            content_tokens: None,
        }
    }

    #[test]
    fn a_cut_history_starts_at_a_user_message() {
        let cut = vec![m("assistant", "a1"), m("user", "u2"), m("assistant", "a2")];
        let kept: Vec<String> = from_an_exchange(cut.clone(), false)
            .into_iter()
            .map(|m| m.content)
            .collect();
        assert_eq!(kept, ["u2", "a2"]);
        assert_eq!(
            from_an_exchange(cut, true).len(),
            3,
            "a whole history is kept"
        );
        assert!(from_an_exchange(vec![m("assistant", "a")], false).is_empty());
    }
}
