//! The SQL of messages. Reads are always scoped to the owner.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use crate::db::query_error;
use crate::db::time::rfc3339;
use crate::http::ApiError;

const COLUMNS: &str = "id, seq, conversation_id, role, content, thinking, model, provider, status,
     input_tokens, output_tokens, cost_usd::float8 AS cost_usd, latency_ms, created_at,
     content_tokens";

/// A stored message.
#[derive(Debug, Clone)]
pub struct Message {
    /// Message id.
    pub id: Uuid,
    /// Position in the whole table (orders a conversation's history).
    pub seq: i64,
    /// Its conversation.
    pub conversation_id: Uuid,
    /// `user` or `assistant`.
    pub role: String,
    /// Text.
    pub content: String,
    /// The model's reasoning, if it gave any.
    pub thinking: Option<String>,
    /// Model that answered (assistant messages).
    pub model: Option<String>,
    /// Provider that answered (assistant messages).
    pub provider: Option<String>,
    /// `complete`, `incomplete` or `error`.
    pub status: String,
    /// Prompt tokens billed for this answer.
    pub input_tokens: Option<i32>,
    /// Answer tokens billed.
    pub output_tokens: Option<i32>,
    /// Cost in USD.
    pub cost_usd: f64,
    /// Time to the full answer.
    pub latency_ms: Option<i32>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// Tokens of `content` (provider-reported or counted), for the context
    /// window; not part of the contract's Message.
    pub content_tokens: Option<i32>,
}

impl Message {
    fn from_row(row: &Row) -> Message {
        Message {
            id: row.get("id"),
            seq: row.get("seq"),
            conversation_id: row.get("conversation_id"),
            role: row.get("role"),
            content: row.get("content"),
            thinking: row.get("thinking"),
            model: row.get("model"),
            provider: row.get("provider"),
            status: row.get("status"),
            input_tokens: row.get("input_tokens"),
            output_tokens: row.get("output_tokens"),
            cost_usd: row.get("cost_usd"),
            latency_ms: row.get("latency_ms"),
            created_at: row.get("created_at"),
            content_tokens: row.get("content_tokens"),
        }
    }

    /// The contract's Message object.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "conversation_id": self.conversation_id,
            "role": self.role,
            "content": self.content,
            "thinking": self.thinking,
            "model": self.model,
            "provider": self.provider,
            "status": self.status,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "latency_ms": self.latency_ms,
            "created_at": rfc3339(&self.created_at),
        })
    }
}

/// Stores a user message (with its token count when it was counted) in
/// one of `owner`'s conversations (the schema's trigger keeps
/// `message_count` and `updated_at`). `None` when the conversation is not
/// the owner's.
pub async fn insert_user_message(
    c: &Client,
    owner: Uuid,
    conversation: Uuid,
    content: &str,
    content_tokens: Option<i32>,
) -> Result<Option<Message>, ApiError> {
    let sql = format!(
        "INSERT INTO messages (conversation_id, user_id, role, content, content_tokens)
         SELECT id, user_id, 'user', $3, $4 FROM conversations WHERE id = $1 AND user_id = $2
         RETURNING {COLUMNS}"
    );
    c.query_typed_opt(
        &sql,
        &[
            (&conversation, Type::UUID),
            (&owner, Type::UUID),
            (&content, Type::TEXT),
            (&content_tokens, Type::INT4),
        ],
    )
    .await
    .map(|r| r.as_ref().map(Message::from_row))
    .map_err(query_error)
}

/// Every message of one of `owner`'s conversations, oldest first (one round trip).
pub async fn all(c: &Client, owner: Uuid, conversation: Uuid) -> Result<Vec<Message>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM messages WHERE conversation_id = $1 AND user_id = $2 ORDER BY seq"
    );
    c.query_typed(&sql, &[(&conversation, Type::UUID), (&owner, Type::UUID)])
        .await
        .map(|rows| rows.iter().map(Message::from_row).collect())
        .map_err(query_error)
}

/// An earlier message as the context window needs it.
#[derive(Debug, Clone)]
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

/// The messages of one of `owner`'s conversations that can go into a
/// context (complete, with text), oldest first: only the columns the
/// window needs (one round trip; reasoning and billing columns stay behind).
pub async fn context(
    c: &Client,
    owner: Uuid,
    conversation: Uuid,
) -> Result<Vec<ContextMessage>, ApiError> {
    c.query_typed(
        "SELECT id, role, content, content_tokens FROM messages
          WHERE conversation_id = $1 AND user_id = $2 AND status = 'complete' AND content <> ''
          ORDER BY seq",
        &[(&conversation, Type::UUID), (&owner, Type::UUID)],
    )
    .await
    .map(|rows| {
        rows.iter()
            .map(|row| ContextMessage {
                id: row.get("id"),
                role: row.get("role"),
                content: row.get("content"),
                content_tokens: row.get("content_tokens"),
            })
            .collect()
    })
    .map_err(query_error)
}

/// A page of a conversation's messages, oldest first, after sequence
/// number `after`; `limit + 1` rows so the caller can tell whether more exist.
pub async fn page(
    c: &Client,
    owner: Uuid,
    conversation: Uuid,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<Message>, ApiError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM messages
          WHERE conversation_id = $1 AND user_id = $2 AND ($3::int8 IS NULL OR seq > $3)
          ORDER BY seq LIMIT $4"
    );
    c.query(&sql, &[&conversation, &owner, &after, &(limit + 1)])
        .await
        .map(|rows| rows.iter().map(Message::from_row).collect())
        .map_err(query_error)
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

/// Stores an assistant answer in one of `owner`'s conversations; the cost is
/// computed in `numeric` from the prices. `None` when the conversation is
/// gone (deleted meanwhile) or not the owner's.
pub async fn insert_answer(
    c: &Client,
    owner: Uuid,
    conversation: Uuid,
    a: &NewAnswer<'_>,
) -> Result<Option<Message>, ApiError> {
    let sql = format!(
        "INSERT INTO messages (id, conversation_id, user_id, role, content, thinking, model,
                               provider, status, input_tokens, output_tokens, cost_usd, latency_ms,
                               content_tokens)
         SELECT $1, id, user_id, 'assistant', $4, $5, $6, $7, $8, $9, $10,
                (coalesce($9, 0)::numeric * $11::text::numeric
                 + coalesce($10, 0)::numeric * $12::text::numeric) / 1000000,
                $13, $14
           FROM conversations WHERE id = $2 AND user_id = $3
         RETURNING {COLUMNS}"
    );
    c.query_opt(
        &sql,
        &[
            &a.id,
            &conversation,
            &owner,
            &a.content,
            &a.thinking,
            &a.model,
            &a.provider,
            &a.status,
            &a.input_tokens,
            &a.output_tokens,
            &a.input_price,
            &a.output_price,
            &a.latency_ms,
            &a.content_tokens,
        ],
    )
    .await
    .map(|r| r.as_ref().map(Message::from_row))
    .map_err(query_error)
}

/// Stores token counts made while planning a context window, so the same
/// texts are not tokenised again (owner-scoped, one statement).
pub async fn store_token_counts(
    c: &Client,
    owner: Uuid,
    counts: &[(Uuid, i32)],
) -> Result<(), ApiError> {
    if counts.is_empty() {
        return Ok(());
    }
    let (ids, tokens): (Vec<Uuid>, Vec<i32>) = counts.iter().copied().unzip();
    c.query_typed(
        "UPDATE messages SET content_tokens = t.n
           FROM unnest($1::uuid[], $2::int4[]) AS t(id, n)
          WHERE messages.id = t.id AND messages.user_id = $3
            AND messages.content_tokens IS NULL",
        &[
            (&ids, Type::UUID_ARRAY),
            (&tokens, Type::INT4_ARRAY),
            (&owner, Type::UUID),
        ],
    )
    .await
    .map(|_| ())
    .map_err(query_error)
}
