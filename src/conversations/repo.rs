//! Conversations' calls to the database API. Every call names the owner,
//! so a handler that forgot a check still cannot read or change someone
//! else's rows; results are the contract's objects, built in SQL.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::input::{NewConversation, Patch};
use crate::db::call::call;
use crate::db::Database;
use crate::http::ApiError;

/// Most messages `GET /conversations/{id}` embeds: the newest ones, oldest
/// first; the rest are on `GET /conversations/{id}/messages`.
pub const MAX_EMBEDDED: u32 = 100;

#[derive(Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Out {
    Created {
        conversation: Value,
    },
    Updated {
        conversation: Value,
    },
    Found {
        conversation: Value,
        messages_truncated: bool,
    },
    Ok {
        items: Vec<Value>,
        has_more: bool,
        last: Option<Last>,
    },
    Deleted,
    NotFound,
    Unauthenticated,
}

/// The sort key of the last conversation of a page.
#[derive(Deserialize)]
struct Last {
    at_us: i64,
    id: Uuid,
}

fn unauthenticated() -> ApiError {
    ApiError::Authentication("invalid or expired access token".into())
}

fn unexpected(op: &str) -> ApiError {
    ApiError::Internal(format!("api.{op}: unexpected outcome"))
}

/// Creates a conversation for `owner`; the Conversation object.
pub async fn insert(
    db: &dyn Database,
    owner: Uuid,
    new: &NewConversation,
) -> Result<Value, ApiError> {
    let args = json!({"user_id": owner, "title": new.title, "model": new.model,
                      "system_prompt": new.system_prompt, "metadata": new.metadata});
    match call(db, "create_conversation", args).await? {
        Out::Created { conversation } => Ok(conversation),
        Out::Unauthenticated => Err(unauthenticated()),
        _ => Err(unexpected("create_conversation")),
    }
}

/// One of `owner`'s conversations with its newest [`MAX_EMBEDDED`]
/// messages (oldest first) and whether older ones were left out (one
/// round trip). `None` when it is not theirs.
pub async fn get_with_messages(
    db: &dyn Database,
    owner: Uuid,
    id: Uuid,
) -> Result<Option<(Value, bool)>, ApiError> {
    let args = json!({"user_id": owner, "id": id, "max_messages": MAX_EMBEDDED});
    match call(db, "get_conversation", args).await? {
        Out::Found {
            conversation,
            messages_truncated,
        } => Ok(Some((conversation, messages_truncated))),
        Out::NotFound => Ok(None),
        Out::Unauthenticated => Err(unauthenticated()),
        _ => Err(unexpected("get_conversation")),
    }
}

/// One of `owner`'s conversations without its messages (one round trip);
/// `None` when it is not theirs.
pub async fn get(db: &dyn Database, owner: Uuid, id: Uuid) -> Result<Option<Value>, ApiError> {
    let args = json!({"user_id": owner, "id": id, "max_messages": 0});
    match call(db, "get_conversation", args).await? {
        Out::Found { conversation, .. } => Ok(Some(conversation)),
        Out::NotFound => Ok(None),
        Out::Unauthenticated => Err(unauthenticated()),
        _ => Err(unexpected("get_conversation")),
    }
}

/// A page of conversations: the items, whether more exist, and the sort
/// key of the last item (for the next cursor).
pub struct Page {
    /// Conversation objects, newest `updated_at` first.
    pub items: Vec<Value>,
    /// Whether another page follows.
    pub has_more: bool,
    /// `(updated_at, id)` of the last item.
    pub last: Option<(DateTime<Utc>, Uuid)>,
}

/// A page of `owner`'s conversations after `after` (the last item of the
/// previous page), titles containing `q` (one round trip).
pub async fn list(
    db: &dyn Database,
    owner: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
    q: Option<&str>,
    limit: i64,
) -> Result<Page, ApiError> {
    let after = after.map(|(at, id)| json!({"at_us": at.timestamp_micros(), "id": id}));
    let args = json!({"user_id": owner, "limit": limit, "after": after,
                      "q": q.map(like_pattern)});
    match call(db, "list_conversations", args).await? {
        Out::Ok {
            items,
            has_more,
            last,
        } => Ok(Page {
            items,
            has_more,
            last: last.and_then(|l| Some((DateTime::from_timestamp_micros(l.at_us)?, l.id))),
        }),
        Out::Unauthenticated => Err(unauthenticated()),
        _ => Err(unexpected("list_conversations")),
    }
}

/// The patch as the database API takes it: only the keys that change.
fn patch_json(p: &Patch) -> Value {
    let mut out = Map::new();
    if let Some(title) = &p.title {
        out.insert("title".into(), json!(title));
    }
    if let Some(model) = &p.model {
        out.insert("model".into(), json!(model));
    }
    if let Some(prompt) = &p.system_prompt {
        out.insert("system_prompt".into(), json!(prompt));
    }
    if let Some(metadata) = &p.metadata {
        out.insert("metadata".into(), metadata.clone());
    }
    Value::Object(out)
}

/// Applies a validated patch to one of `owner`'s conversations; the
/// Conversation object, `None` when it is not theirs.
pub async fn update(
    db: &dyn Database,
    owner: Uuid,
    id: Uuid,
    p: &Patch,
) -> Result<Option<Value>, ApiError> {
    let args = json!({"user_id": owner, "id": id, "patch": patch_json(p)});
    match call(db, "update_conversation", args).await? {
        Out::Updated { conversation } => Ok(Some(conversation)),
        Out::NotFound => Ok(None),
        Out::Unauthenticated => Err(unauthenticated()),
        _ => Err(unexpected("update_conversation")),
    }
}

/// Deletes one of `owner`'s conversations and (by cascade, in the same
/// statement) its messages. False when there was no such conversation.
pub async fn delete(db: &dyn Database, owner: Uuid, id: Uuid) -> Result<bool, ApiError> {
    match call(
        db,
        "delete_conversation",
        json!({"user_id": owner, "id": id}),
    )
    .await?
    {
        Out::Deleted => Ok(true),
        Out::NotFound => Ok(false),
        Out::Unauthenticated => Err(unauthenticated()),
        _ => Err(unexpected("delete_conversation")),
    }
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

    #[test]
    fn patches_carry_only_what_changes() {
        let p = Patch {
            title: Some(None),
            model: None,
            system_prompt: Some(Some("Be brief".into())),
            metadata: None,
        };
        assert_eq!(
            patch_json(&p),
            json!({"title": null, "system_prompt": "Be brief"})
        );
        assert_eq!(patch_json(&Patch::default()), json!({}));
    }
}
