//! Conversations and messages: paths, thin API wrappers, shape checks, and
//! direct database writes for states the API cannot make yet (messages,
//! conversations sharing one `updated_at`).

use reqwest::Method;
use serde_json::{json, Value};
use tokio_postgres::Client;

use super::*;

/// `/api/v1/conversations`.
pub const CONVERSATIONS: &str = "/api/v1/conversations";
/// `/api/v1/models`.
pub const MODELS: &str = "/api/v1/models";
/// The model a conversation gets when it names none.
pub const DEFAULT_MODEL: &str = "openai/gpt-oss-20b";
/// The model tried on the other provider.
pub const FALLBACK_MODEL: &str = "gemini-2.5-flash-lite";
/// A Groq model whose window the test worker shrinks (`MODEL_LIMITS`).
pub const SMALL_WINDOW_MODEL: &str = "openai/gpt-oss-120b";

/// `(context_window, max_output_tokens)` the test worker sets for `model`
/// through `MODEL_LIMITS` (`harness::TEST_MODEL_LIMITS`).
pub fn test_limits(model: &str) -> Option<(u32, u32)> {
    harness::TEST_MODEL_LIMITS.split(';').find_map(|entry| {
        let (id, limits) = entry.rsplit_once('=')?;
        let (window, output) = limits.split_once('/')?;
        if id != model {
            return None;
        }
        Some((window.parse().ok()?, output.parse().ok()?))
    })
}

/// `/api/v1/conversations/{id}` (`id` inserted as given).
pub fn conversation_path(id: &str) -> String {
    format!("{CONVERSATIONS}/{id}")
}

/// `/api/v1/conversations/{id}/messages` (`id` inserted as given).
pub fn messages_path(id: &str) -> String {
    format!("{CONVERSATIONS}/{id}/messages")
}

/// Percent-encodes `s` for a query string value (UTF-8, RFC 3986 unreserved
/// characters kept).
pub fn query_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sends `method path` with these credentials and a raw body with the given
/// `Content-Type` (none when `None`).
pub async fn send_raw_as(
    method: Method,
    path: &str,
    auth: Auth<'_>,
    content_type: Option<&str>,
    body: String,
) -> Reply {
    let mut headers: Vec<(&str, String)> = Vec::new();
    match auth {
        Auth::None => {}
        Auth::Bearer(token) => headers.push(("Authorization", format!("Bearer {token}"))),
        Auth::ApiKey(key) => headers.push(("X-API-Key", key.to_string())),
        Auth::Authorization(value) => headers.push(("Authorization", value.to_string())),
    }
    if let Some(ct) = content_type {
        headers.push(("Content-Type", ct.to_string()));
    }
    let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    send(method, path, &refs, Some(body)).await
}

/// `POST /api/v1/conversations` with this body.
pub async fn create_conversation_reply(auth: Auth<'_>, body: &Value) -> Reply {
    call(Method::POST, CONVERSATIONS, auth, Some(body)).await
}

/// Creates a conversation as the owner of `access` (asserting 201 and the
/// shape); returns the Conversation.
pub async fn create_conversation(access: &str, body: &Value) -> Value {
    let r = create_conversation_reply(Auth::Bearer(access), body).await;
    assert_eq!(r.status, 201, "create conversation {body}: {}", r.text);
    assert_conversation(&r.json);
    r.json
}

/// Creates a conversation titled `title`; returns its id.
pub async fn create_titled(access: &str, title: &str) -> String {
    let c = create_conversation(access, &serde_json::json!({ "title": title })).await;
    id_of(&c)
}

/// `GET /api/v1/conversations/{id}`.
pub async fn get_conversation(auth: Auth<'_>, id: &str) -> Reply {
    get_as(&conversation_path(id), auth).await
}

/// `PATCH /api/v1/conversations/{id}` with this body.
pub async fn patch_conversation(auth: Auth<'_>, id: &str, body: &Value) -> Reply {
    call(Method::PATCH, &conversation_path(id), auth, Some(body)).await
}

/// `DELETE /api/v1/conversations/{id}`.
pub async fn delete_conversation(auth: Auth<'_>, id: &str) -> Reply {
    delete_as(&conversation_path(id), auth).await
}

/// `GET /api/v1/conversations?{query}` (`query` already encoded, may be "").
pub async fn list_conversations(auth: Auth<'_>, query: &str) -> Reply {
    let path = if query.is_empty() {
        CONVERSATIONS.to_string()
    } else {
        format!("{CONVERSATIONS}?{query}")
    };
    get_as(&path, auth).await
}

/// `GET /api/v1/conversations/{id}/messages?{query}` (`query` already encoded).
pub async fn list_messages(auth: Auth<'_>, id: &str, query: &str) -> Reply {
    let path = if query.is_empty() {
        messages_path(id)
    } else {
        format!("{}?{query}", messages_path(id))
    };
    get_as(&path, auth).await
}

/// One page of a list: `{data, has_more, next_cursor}`.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Value>,
    pub ids: Vec<String>,
    pub has_more: bool,
    pub next_cursor: Option<String>,
}

/// Asserts a 200 page envelope (a `next_cursor` string exactly when
/// `has_more`) and returns it.
pub fn page_of(r: &Reply) -> Page {
    assert_eq!(r.status, 200, "list: {}", r.text);
    let items = r.json["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data is a list: {}", r.text))
        .clone();
    let has_more = r.json["has_more"]
        .as_bool()
        .unwrap_or_else(|| panic!("has_more is a boolean: {}", r.text));
    let next_cursor = match &r.json["next_cursor"] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => panic!("next_cursor is a string or null, got {other}: {}", r.text),
    };
    assert!(
        r.json
            .as_object()
            .is_some_and(|o| o.contains_key("next_cursor")),
        "next_cursor present (null when there is no more): {}",
        r.text
    );
    if has_more {
        assert!(
            next_cursor.as_deref().is_some_and(|c| !c.is_empty()),
            "has_more without a next_cursor: {}",
            r.text
        );
    } else {
        assert!(
            next_cursor.is_none(),
            "next_cursor must be null without has_more: {}",
            r.text
        );
    }
    let ids = items.iter().map(id_of).collect();
    Page {
        items,
        ids,
        has_more,
        next_cursor,
    }
}

/// Follows `next_cursor` from the first page to the last with this `limit`
/// (plus `extra` query parameters, encoded, may be ""); returns every page.
pub async fn all_conversation_pages(auth: Auth<'_>, limit: u32, extra: &str) -> Vec<Page> {
    let mut pages: Vec<Page> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = format!("limit={limit}");
        if !extra.is_empty() {
            query.push('&');
            query.push_str(extra);
        }
        if let Some(c) = &cursor {
            query.push_str(&format!("&cursor={}", query_encode(c)));
        }
        let p = page_of(&list_conversations(auth, &query).await);
        assert!(p.items.len() <= limit as usize, "page over the limit");
        cursor = p.next_cursor.clone();
        let more = p.has_more;
        pages.push(p);
        if !more {
            return pages;
        }
        assert!(pages.len() < 200, "pagination does not end");
    }
}

/// Follows `next_cursor` through a conversation's messages with this `limit`.
pub async fn all_message_pages(auth: Auth<'_>, id: &str, limit: u32) -> Vec<Page> {
    let mut pages: Vec<Page> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = format!("limit={limit}");
        if let Some(c) = &cursor {
            query.push_str(&format!("&cursor={}", query_encode(c)));
        }
        let p = page_of(&list_messages(auth, id, &query).await);
        assert!(p.items.len() <= limit as usize, "page over the limit");
        cursor = p.next_cursor.clone();
        let more = p.has_more;
        pages.push(p);
        if !more {
            return pages;
        }
        assert!(pages.len() < 200, "pagination does not end");
    }
}

/// The `id` of an object as text ("" when absent).
pub fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

/// The fields of a Conversation object.
pub const CONVERSATION_FIELDS: [&str; 8] = [
    "id",
    "title",
    "model",
    "system_prompt",
    "metadata",
    "message_count",
    "created_at",
    "updated_at",
];

/// Asserts a 200 list response with no items, no more pages and no cursor.
pub fn assert_empty_page(r: &Reply) {
    assert_eq!(r.status, 200, "{}", r.text);
    r.assert_common_headers();
    assert_eq!(r.json["data"], json!([]), "{}", r.text);
    assert_eq!(r.json["has_more"], false, "{}", r.text);
    assert!(r.json["next_cursor"].is_null(), "{}", r.text);
    page_of(r);
}

/// Asserts a Conversation object: every field with its type.
pub fn assert_conversation(c: &Value) {
    let obj = c
        .as_object()
        .unwrap_or_else(|| panic!("a conversation is an object: {c}"));
    for k in CONVERSATION_FIELDS {
        assert!(obj.contains_key(k), "conversation lacks {k}: {c}");
    }
    assert!(is_uuid(c["id"].as_str().unwrap_or_default()), "id: {c}");
    assert!(
        c["title"].is_null() || c["title"].is_string(),
        "title is a string or null: {c}"
    );
    assert!(
        c["model"].as_str().is_some_and(|m| !m.is_empty()),
        "model: {c}"
    );
    assert!(
        c["system_prompt"].is_null() || c["system_prompt"].is_string(),
        "system_prompt is a string or null: {c}"
    );
    assert!(c["metadata"].is_object(), "metadata is an object: {c}");
    assert!(
        c["message_count"].as_u64().is_some(),
        "message_count is a non-negative integer: {c}"
    );
    for k in ["created_at", "updated_at"] {
        assert!(
            is_rfc3339_utc(c[k].as_str().unwrap_or_default()),
            "{k} is RFC 3339 UTC: {c}"
        );
    }
}

/// Asserts a Message object: every field with its type.
pub fn assert_message(m: &Value) {
    let obj = m
        .as_object()
        .unwrap_or_else(|| panic!("a message is an object: {m}"));
    for k in [
        "id",
        "conversation_id",
        "role",
        "content",
        "thinking",
        "model",
        "provider",
        "status",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "latency_ms",
        "created_at",
    ] {
        assert!(obj.contains_key(k), "message lacks {k}: {m}");
    }
    assert!(is_uuid(m["id"].as_str().unwrap_or_default()), "id: {m}");
    assert!(
        is_uuid(m["conversation_id"].as_str().unwrap_or_default()),
        "conversation_id: {m}"
    );
    assert!(
        matches!(m["role"].as_str(), Some("user" | "assistant")),
        "role: {m}"
    );
    assert!(m["content"].is_string(), "content: {m}");
    assert!(
        matches!(
            m["status"].as_str(),
            Some("complete" | "incomplete" | "error")
        ),
        "status: {m}"
    );
    for k in ["thinking", "model", "provider"] {
        assert!(m[k].is_null() || m[k].is_string(), "{k}: {m}");
    }
    for k in ["input_tokens", "output_tokens", "latency_ms"] {
        assert!(m[k].is_null() || m[k].as_u64().is_some(), "{k}: {m}");
    }
    assert!(m["cost_usd"].is_number(), "cost_usd is a number: {m}");
    assert!(
        is_rfc3339_utc(m["created_at"].as_str().unwrap_or_default()),
        "created_at is RFC 3339 UTC: {m}"
    );
}

/// Asserts a 422 `invalid_request_error` whose details name `field` (or a
/// part of it, such as `metadata.key`).
pub fn assert_invalid_field(r: &Reply, field: &str) {
    r.assert_error(422, "invalid_request_error");
    let fields = detail_fields(r);
    let dotted = format!("{field}.");
    let indexed = format!("{field}[");
    assert!(
        fields
            .iter()
            .any(|f| f == field || f.starts_with(&dotted) || f.starts_with(&indexed)),
        "details name {field}: {}",
        r.text
    );
}

/// An RFC 3339 UTC time as a comparable value: (`YYYY-MM-DDTHH:MM:SS`,
/// nanoseconds).
pub fn instant(s: &str) -> (String, u32) {
    assert!(is_rfc3339_utc(s), "not an RFC 3339 UTC time: {s:?}");
    let seconds = s[..19].to_uppercase();
    let rest = &s[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(|c| c.is_ascii_digit()).collect();
        let mut padded = digits.chars().take(9).collect::<String>();
        while padded.len() < 9 {
            padded.push('0');
        }
        nanos = padded.parse().unwrap_or(0);
    }
    (seconds, nanos)
}

// ---------------------------------------------------------------------------
// Direct database access.
// ---------------------------------------------------------------------------

/// Inserts a message straight into the database (the schema's trigger keeps
/// the conversation's `message_count` and `updated_at`); returns its id.
pub async fn insert_message(
    conversation_id: &str,
    user_id: &str,
    role: &str,
    content: &str,
) -> String {
    let client = db().await;
    insert_message_with(&client, conversation_id, user_id, role, content).await
}

/// [`insert_message`] on an open connection.
pub async fn insert_message_with(
    client: &Client,
    conversation_id: &str,
    user_id: &str,
    role: &str,
    content: &str,
) -> String {
    let row = client
        .query_one(
            "INSERT INTO app.messages (conversation_id, user_id, role, content) \
             VALUES ($1::text::uuid, $2::text::uuid, $3, $4) RETURNING id::text",
            &[&conversation_id, &user_id, &role, &content],
        )
        .await
        .expect("insert a message");
    row.get(0)
}

/// Inserts `n` user messages `"{prefix} 1"…` in one statement, so they share
/// one `created_at`; returns their ids oldest first.
pub async fn insert_messages_at_once(
    conversation_id: &str,
    user_id: &str,
    n: i32,
    prefix: &str,
) -> Vec<String> {
    let client = db().await;
    client
        .execute(
            "INSERT INTO app.messages (conversation_id, user_id, role, content) \
             SELECT $1::text::uuid, $2::text::uuid, 'user', $4::text || ' ' || g::text \
               FROM generate_series(1, $3::int) AS g ORDER BY g",
            &[&conversation_id, &user_id, &n, &prefix],
        )
        .await
        .expect("insert messages");
    db_message_order(conversation_id).await
}

/// Inserts `n` conversations titled `"{prefix} 1"…` for `user_id` in one
/// statement, so they share one `updated_at`; returns their ids.
pub async fn insert_conversations_at_once(user_id: &str, n: i32, prefix: &str) -> Vec<String> {
    let client = db().await;
    let rows = client
        .query(
            "INSERT INTO app.conversations (user_id, model, title) \
             SELECT $1::text::uuid, $4::text, $3::text || ' ' || g::text FROM generate_series(1, $2::int) AS g \
             RETURNING id::text",
            &[&user_id, &n, &prefix, &DEFAULT_MODEL],
        )
        .await
        .expect("insert conversations");
    rows.iter().map(|r| r.get(0)).collect()
}

/// The user's conversation ids as the contract orders them: newest
/// `updated_at` first, ties by id (descending, like the listing index).
pub async fn db_conversation_order(user_id: &str) -> Vec<String> {
    let client = db().await;
    let rows = client
        .query(
            "SELECT id::text FROM app.conversations WHERE user_id = $1::text::uuid \
             ORDER BY updated_at DESC, id DESC",
            &[&user_id],
        )
        .await
        .expect("read conversations");
    rows.iter().map(|r| r.get(0)).collect()
}

/// A conversation's message ids, oldest first (by `seq`).
pub async fn db_message_order(conversation_id: &str) -> Vec<String> {
    let client = db().await;
    let rows = client
        .query(
            "SELECT id::text FROM app.messages WHERE conversation_id = $1::text::uuid ORDER BY seq",
            &[&conversation_id],
        )
        .await
        .expect("read messages");
    rows.iter().map(|r| r.get(0)).collect()
}

/// How many `messages` rows a conversation has in the database.
pub async fn db_message_count(conversation_id: &str) -> i64 {
    let client = db().await;
    client
        .query_one(
            "SELECT count(*) FROM app.messages WHERE conversation_id = $1::text::uuid",
            &[&conversation_id],
        )
        .await
        .expect("count messages")
        .get(0)
}

/// Whether a `conversations` row with this id exists.
pub async fn db_conversation_exists(conversation_id: &str) -> bool {
    let client = db().await;
    client
        .query_one(
            "SELECT count(*) FROM app.conversations WHERE id = $1::text::uuid",
            &[&conversation_id],
        )
        .await
        .expect("count conversations")
        .get::<_, i64>(0)
        == 1
}

/// How many conversations a user has in the database.
pub async fn db_conversation_count(user_id: &str) -> i64 {
    let client = db().await;
    client
        .query_one(
            "SELECT count(*) FROM app.conversations WHERE user_id = $1::text::uuid",
            &[&user_id],
        )
        .await
        .expect("count conversations")
        .get(0)
}

/// The owner of a conversation row, as text.
pub async fn db_conversation_owner(conversation_id: &str) -> String {
    let client = db().await;
    client
        .query_one(
            "SELECT user_id::text FROM app.conversations WHERE id = $1::text::uuid",
            &[&conversation_id],
        )
        .await
        .expect("read the conversation's owner")
        .get(0)
}

/// A conversation's `updated_at` in microseconds since the epoch (database
/// precision, independent of how the API formats it).
pub async fn db_updated_at_micros(conversation_id: &str) -> i64 {
    let client = db().await;
    client
        .query_one(
            "SELECT (extract(epoch FROM updated_at) * 1000000)::bigint \
               FROM app.conversations WHERE id = $1::text::uuid",
            &[&conversation_id],
        )
        .await
        .expect("read updated_at")
        .get(0)
}
