//! Messages' calls to the database API: pages, and the two calls of a
//! send (`send_prepare` before the model, `send_finish` after it). Every
//! call names the owner; results are the contract's objects, built in SQL.

use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::db::call::call;
use crate::db::Database;
use crate::http::ApiError;

fn unauthenticated() -> ApiError {
    ApiError::Authentication("invalid or expired access token".into())
}

fn not_found() -> ApiError {
    ApiError::NotFound("conversation not found".into())
}

#[derive(Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum PageOut {
    Ok {
        items: Vec<Value>,
        has_more: bool,
        last_seq: Option<i64>,
    },
    NotFound,
    Unauthenticated,
}

/// A page of a conversation's messages, oldest first.
pub struct Page {
    /// Message objects.
    pub items: Vec<Value>,
    /// Whether another page follows.
    pub has_more: bool,
    /// Sequence number of the last item (for the next cursor).
    pub last_seq: Option<i64>,
}

/// A page of one of `owner`'s conversations after sequence number `after`
/// (one round trip, ownership included); 404 when it is not theirs.
pub async fn page(
    db: &dyn Database,
    owner: Uuid,
    conversation: Uuid,
    after: Option<i64>,
    limit: i64,
) -> Result<Page, ApiError> {
    let args = json!({"user_id": owner, "conversation_id": conversation, "limit": limit,
                      "after_seq": after});
    match call(db, "list_messages", args).await? {
        PageOut::Ok {
            items,
            has_more,
            last_seq,
        } => Ok(Page {
            items,
            has_more,
            last_seq,
        }),
        PageOut::NotFound => Err(not_found()),
        PageOut::Unauthenticated => Err(unauthenticated()),
    }
}

/// An earlier message as the context window needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct ContextMessage {
    /// Message id (to store a token count against).
    pub id: Uuid,
    /// `user` or `assistant`.
    pub role: String,
    /// Text.
    pub content: String,
    /// Stored token count of `content`, if known.
    pub content_tokens: Option<i32>,
}

/// The conversation's settings a send needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Conversation id.
    pub id: Uuid,
    /// Default model of its answers.
    pub model: String,
    /// Its system prompt, if any.
    pub system_prompt: Option<String>,
}

/// What `send_prepare` found.
#[derive(Debug, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Prepared {
    /// The user message is stored; here is what the model call needs.
    Prepared {
        /// The conversation's settings.
        conversation: Settings,
        /// First exchange of an untitled conversation.
        needs_title: bool,
        /// The stored user message (a Message object).
        user_message: Value,
        /// Earlier messages that may go into the context, oldest first.
        candidates: Vec<ContextMessage>,
        /// Whether `candidates` reach back to the first message.
        complete: bool,
    },
    /// A retry of a finished send: its stored `{user_message, assistant_message}`.
    Replay {
        /// The kept result.
        response: Value,
    },
    /// The `Idempotency-Key` is taken.
    Conflict {
        /// `different_request`, `in_progress` or `concurrent`.
        reason: String,
    },
    /// Not the caller's conversation.
    NotFound,
    /// The caller's account is gone.
    Unauthenticated,
}

/// What a send asks of `send_prepare`.
pub struct Prepare<'a> {
    /// The caller.
    pub owner: Uuid,
    /// The conversation.
    pub conversation: Uuid,
    /// The new user message.
    pub content: &'a str,
    /// `(key, request fingerprint)` when the request had an `Idempotency-Key`.
    pub idempotency: Option<(&'a str, &'a str)>,
    /// Tokens of history worth reading (the largest prompt budget of the plan).
    pub budget_tokens: u32,
    /// How long a claimed key stays held before a retry may take it over
    /// (see [`super::idempotency::lease`]).
    pub lease_seconds: u64,
}

/// Bytes per token assumed for messages without a stored count when
/// choosing candidates (an estimate; the planner counts exactly).
pub const BYTES_PER_TOKEN: u32 = 4;
/// Most earlier messages a send reads.
pub const MAX_CANDIDATES: u32 = 2000;

/// Ownership, the `Idempotency-Key` claim, the user message and the
/// context candidates, in one round trip. Errors: 404, 401, 409.
pub async fn prepare(db: &dyn Database, p: &Prepare<'_>) -> Result<Prepared, ApiError> {
    let idempotency = p.idempotency.map(
        |(key, hash)| json!({"key": key, "request_hash": hash, "lease_seconds": p.lease_seconds}),
    );
    let args = json!({
        "user_id": p.owner, "conversation_id": p.conversation, "content": p.content,
        "idempotency": idempotency,
        "budget": {"tokens": p.budget_tokens, "bytes_per_token": BYTES_PER_TOKEN,
                   "max_messages": MAX_CANDIDATES},
    });
    match call(db, "send_prepare", args).await? {
        Prepared::NotFound => Err(not_found()),
        Prepared::Unauthenticated => Err(unauthenticated()),
        Prepared::Conflict { reason } => Err(ApiError::Conflict(
            match reason.as_str() {
                "different_request" => {
                    "this Idempotency-Key was already used with a different request"
                }
                "in_progress" => "a request with this Idempotency-Key is still in progress",
                _ => "this Idempotency-Key is being claimed concurrently; retry",
            }
            .into(),
        )),
        other => Ok(other),
    }
}

/// Undoes a prepared send that will not call the model: removes the user
/// message and frees the `Idempotency-Key`.
pub async fn abort(
    db: &dyn Database,
    owner: Uuid,
    message: Uuid,
    key: Option<&str>,
) -> Result<(), ApiError> {
    let args = json!({"user_id": owner, "message_id": message, "idempotency_key": key});
    call::<Value>(db, "send_abort", args).await.map(|_| ())
}

/// What to store for an assistant answer.
pub struct NewAnswer<'a> {
    /// The id announced in `message_start`.
    pub id: Uuid,
    /// Answer text (possibly partial).
    pub content: &'a str,
    /// Reasoning, if any.
    pub thinking: Option<&'a str>,
    /// Model that answered.
    pub model: &'a str,
    /// `groq` or `gemini`.
    pub provider: &'a str,
    /// `complete`, `incomplete` or `error`.
    pub status: &'a str,
    /// Prompt tokens reported.
    pub input_tokens: Option<i32>,
    /// Answer tokens reported.
    pub output_tokens: Option<i32>,
    /// Tokens of `content` alone, when known (complete answers only).
    pub content_tokens: Option<i32>,
    /// USD per million prompt tokens, as decimal text (exact in SQL).
    pub input_price: String,
    /// USD per million answer tokens, as decimal text.
    pub output_price: String,
    /// Milliseconds from the request to the end of the answer.
    pub latency_ms: i32,
}

impl NewAnswer<'_> {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id, "content": self.content, "thinking": self.thinking,
            "model": self.model, "provider": self.provider, "status": self.status,
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "content_tokens": self.content_tokens, "input_price": self.input_price,
            "output_price": self.output_price, "latency_ms": self.latency_ms,
        })
    }
}

/// Everything a send stores after the model call.
pub struct Finish<'a> {
    /// The caller.
    pub owner: Uuid,
    /// The conversation.
    pub conversation: Uuid,
    /// The user message stored by `prepare`.
    pub user_message: Uuid,
    /// The send's id (the answer's id, made before the model was called):
    /// a repeated `finish` of the same send stores nothing twice.
    pub send_id: Uuid,
    /// The claimed `Idempotency-Key`, if any.
    pub idempotency_key: Option<&'a str>,
    /// Why the model stopped, kept with the key's result so that a replay
    /// ends as the original did.
    pub stop_reason: &'static str,
    /// The answer, when a provider produced one.
    pub answer: Option<NewAnswer<'a>>,
    /// Token counts made while planning: (message, tokens).
    pub token_counts: &'a [(Uuid, i32)],
    /// Usage ledger entries (see `usage::ledger`).
    pub usage: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Stored {
    Stored { response: Option<Value> },
}

/// Stores the answer, token counts, ledger and the key's result in one
/// round trip. The response body `{user_message, assistant_message}`, or
/// `None` when there was no answer or the conversation is gone. Safe to
/// call again for the same send (e.g. after a lost reply): what the first
/// call stored is answered, nothing is stored twice.
pub async fn finish(db: &dyn Database, f: &Finish<'_>) -> Result<Option<Value>, ApiError> {
    let counts: Vec<Value> = f
        .token_counts
        .iter()
        .map(|(id, tokens)| json!({"id": id, "tokens": tokens}))
        .collect();
    let args = json!({
        "user_id": f.owner, "conversation_id": f.conversation,
        "user_message_id": f.user_message, "send_id": f.send_id,
        "idempotency_key": f.idempotency_key,
        "stop_reason": f.stop_reason,
        "answer": f.answer.as_ref().map(NewAnswer::to_json),
        "token_counts": counts, "usage": f.usage,
    });
    let Stored::Stored { response } = call(db, "send_finish", args).await?;
    Ok(response)
}
