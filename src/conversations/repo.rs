//! The SQL of conversations. Every statement names the owner, so a handler
//! that forgot a check still cannot read or change someone else's rows.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use super::input::{NewConversation, Patch};
use crate::db::query_error;
use crate::db::time::rfc3339;
use crate::http::ApiError;

const COLUMNS: &str =
    "id, title, model, system_prompt, metadata, message_count, created_at, updated_at";

/// A conversation row.
#[derive(Debug, Clone)]
pub struct Conversation {
    /// Conversation id.
    pub id: Uuid,
    /// Title, if any.
    pub title: Option<String>,
    /// Model id used for answers.
    pub model: String,
    /// System prompt, if any.
    pub system_prompt: Option<String>,
    /// Client metadata (an object of strings).
    pub metadata: Value,
    /// Messages stored in it.
    pub message_count: i32,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change (including a new message).
    pub updated_at: DateTime<Utc>,
}

impl Conversation {
    fn from_row(row: &Row) -> Conversation {
        Conversation {
            id: row.get("id"),
            title: row.get("title"),
            model: row.get("model"),
            system_prompt: row.get("system_prompt"),
            metadata: row.get("metadata"),
            message_count: row.get("message_count"),
            created_at: row.get("created_at"),
            updated_at: row.get("updated_at"),
        }
    }

    /// The contract's Conversation object.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "title": self.title,
            "model": self.model,
            "system_prompt": self.system_prompt,
            "metadata": self.metadata,
            "message_count": self.message_count,
            "created_at": rfc3339(&self.created_at),
            "updated_at": rfc3339(&self.updated_at),
        })
    }
}

/// Creates a conversation for `owner`.
pub async fn insert(
    c: &Client,
    owner: Uuid,
    new: &NewConversation,
) -> Result<Conversation, ApiError> {
    let sql = format!(
        "INSERT INTO conversations (user_id, title, model, system_prompt, metadata)
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    );
    c.query_one(
        &sql,
        &[
            &owner,
            &new.title,
            &new.model,
            &new.system_prompt,
            &new.metadata,
        ],
    )
    .await
    .map(|r| Conversation::from_row(&r))
    .map_err(query_error)
}

/// One of `owner`'s conversations (one round trip).
pub async fn get(c: &Client, owner: Uuid, id: Uuid) -> Result<Option<Conversation>, ApiError> {
    let sql = format!("SELECT {COLUMNS} FROM conversations WHERE id = $1 AND user_id = $2");
    c.query_typed_opt(&sql, &[(&id, Type::UUID), (&owner, Type::UUID)])
        .await
        .map(|r| r.as_ref().map(Conversation::from_row))
        .map_err(query_error)
}

/// A page of `owner`'s conversations, newest `updated_at` first, after
/// `after` (the last item of the previous page), titles containing `q`.
/// Fetches `limit + 1` rows so the caller can tell whether more exist.
pub async fn list(
    c: &Client,
    owner: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    q: Option<&str>,
    limit: i64,
) -> Result<Vec<Conversation>, ApiError> {
    let (after_at, after_id) = after.unzip();
    let pattern = q.map(like_pattern);
    let sql = format!(
        "SELECT {COLUMNS} FROM conversations
          WHERE user_id = $1
            AND ($2::timestamptz IS NULL OR (updated_at, id) < ($2, $3))
            AND ($4::text IS NULL OR title ILIKE $4 ESCAPE '\\')
          ORDER BY updated_at DESC, id DESC
          LIMIT $5"
    );
    c.query(
        &sql,
        &[&owner, &after_at, &after_id, &pattern, &(limit + 1)],
    )
    .await
    .map(|rows| rows.iter().map(Conversation::from_row).collect())
    .map_err(query_error)
}

/// Applies a validated patch to one of `owner`'s conversations.
pub async fn update(
    c: &Client,
    owner: Uuid,
    id: Uuid,
    p: &Patch,
) -> Result<Option<Conversation>, ApiError> {
    if p.is_empty() {
        return get(c, owner, id).await;
    }
    let sql = format!(
        "UPDATE conversations SET
            title = CASE WHEN $3 THEN $4 ELSE title END,
            model = COALESCE($5, model),
            system_prompt = CASE WHEN $6 THEN $7 ELSE system_prompt END,
            metadata = COALESCE($8, metadata)
          WHERE id = $1 AND user_id = $2
          RETURNING {COLUMNS}"
    );
    let title = p.title.clone().flatten();
    let prompt = p.system_prompt.clone().flatten();
    c.query_opt(
        &sql,
        &[
            &id,
            &owner,
            &p.title.is_some(),
            &title,
            &p.model,
            &p.system_prompt.is_some(),
            &prompt,
            &p.metadata,
        ],
    )
    .await
    .map(|r| r.as_ref().map(Conversation::from_row))
    .map_err(query_error)
}

/// Deletes one of `owner`'s conversations and (by cascade, in the same
/// statement) its messages. False when there was no such conversation.
pub async fn delete(c: &Client, owner: Uuid, id: Uuid) -> Result<bool, ApiError> {
    c.execute(
        "DELETE FROM conversations WHERE id = $1 AND user_id = $2",
        &[&id, &owner],
    )
    .await
    .map(|n| n == 1)
    .map_err(query_error)
}

/// `%q%` with `\`, `%` and `_` in `q` escaped, so they match literally.
pub fn like_pattern(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for ch in q.chars() {
        if matches!(ch, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(ch);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("abc"), "%abc%");
        assert_eq!(like_pattern("100%"), "%100\\%%");
        assert_eq!(like_pattern("a_b"), "%a\\_b%");
        assert_eq!(like_pattern("c:\\x"), "%c:\\\\x%");
    }
}
