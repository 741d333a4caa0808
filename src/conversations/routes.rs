//! `/api/v1/conversations` handlers.

use serde_json::{json, Value};
use tokio_postgres::Client;
use uuid::Uuid;
use worker::{Request, Response};

use super::input;
use super::repo::{self, Conversation};
use crate::auth::Principal;
use crate::http::context::RequestContext;
use crate::http::pagination::{parse_limit, parse_time_cursor, split_page, time_cursor};
use crate::http::request::{query, read_object};
use crate::http::{respond, ApiError};
use crate::messages::repo as messages;

/// Longest `q` search string, in characters.
pub const MAX_QUERY: usize = 200;

fn not_found() -> ApiError {
    ApiError::NotFound("conversation not found".into())
}

fn json(status: u16, body: &Value) -> Result<Response, ApiError> {
    respond::json(status, body).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Parses a path id; anything but a UUID is simply not found.
pub fn conversation_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| not_found())
}

/// The caller's conversation, or 404 (also when it is someone else's).
pub async fn owned(c: &Client, p: &Principal, id: Uuid) -> Result<Conversation, ApiError> {
    repo::get(c, p.user_id, id).await?.ok_or_else(not_found)
}

/// `POST /api/v1/conversations`.
pub async fn create(
    rc: &RequestContext,
    p: &Principal,
    mut req: Request,
    c: &Client,
) -> Result<Response, ApiError> {
    let new = input::new_conversation(read_object(&mut req).await?, &rc.config.default_model)?;
    let conversation = repo::insert(c, p.user_id, &new).await?;
    json(201, &conversation.to_json())
}

/// `GET /api/v1/conversations`.
pub async fn list(p: &Principal, req: &Request, c: &Client) -> Result<Response, ApiError> {
    let params = query(req)?;
    let limit = parse_limit(params.get("limit").map(String::as_str))?;
    let after = params
        .get("cursor")
        .map(|raw| parse_time_cursor(raw))
        .transpose()?;
    let q = params.get("q").map(|q| q.trim()).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > MAX_QUERY) {
        return Err(ApiError::Validation(vec![crate::http::FieldError::new(
            "q",
            "must be at most 200 characters",
        )]));
    }
    let rows = repo::list(c, p.user_id, after, q, limit).await?;
    let (page, has_more) = split_page(rows, limit);
    let next = has_more
        .then(|| page.last().map(|c| time_cursor(&c.updated_at, &c.id)))
        .flatten();
    let data: Vec<Value> = page.iter().map(Conversation::to_json).collect();
    json(
        200,
        &json!({"data": data, "has_more": has_more, "next_cursor": next}),
    )
}

/// `GET /api/v1/conversations/{id}`: the conversation with its messages.
pub async fn get(p: &Principal, id: &str, c: &Client) -> Result<Response, ApiError> {
    let conversation = owned(c, p, conversation_id(id)?).await?;
    let history = messages::all(c, p.user_id, conversation.id).await?;
    let mut body = conversation.to_json();
    body["messages"] = history.iter().map(messages::Message::to_json).collect();
    json(200, &body)
}

/// `PATCH /api/v1/conversations/{id}`.
pub async fn update(
    p: &Principal,
    mut req: Request,
    id: &str,
    c: &Client,
) -> Result<Response, ApiError> {
    let id = conversation_id(id)?;
    let patch = input::patch(read_object(&mut req).await?)?;
    let conversation = repo::update(c, p.user_id, id, &patch)
        .await?
        .ok_or_else(not_found)?;
    json(200, &conversation.to_json())
}

/// `DELETE /api/v1/conversations/{id}`: its messages go in the same statement.
pub async fn delete(p: &Principal, id: &str, c: &Client) -> Result<Response, ApiError> {
    if repo::delete(c, p.user_id, conversation_id(id)?).await? {
        respond::empty(204).map_err(|e| ApiError::Internal(e.to_string()))
    } else {
        Err(not_found())
    }
}
