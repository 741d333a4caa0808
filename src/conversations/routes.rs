//! `/api/v1/conversations` handlers.

use serde_json::{json, Value};
use worker::Response;

use super::input;
use super::owned::{conversation_id, not_found, owned};
use super::repo::{self, Conversation};
use crate::http::ctx::Ctx;
use crate::http::pagination::{parse_limit, parse_time_cursor, split_page, time_cursor};
use crate::http::request::{query, read_object};
use crate::http::{respond, ApiError};
use crate::messages::repo as messages;

/// Longest `q` search string, in characters.
pub const MAX_QUERY: usize = 200;

fn json(status: u16, body: &Value) -> Result<Response, ApiError> {
    Ok(respond::json(status, body)?)
}

/// `POST /api/v1/conversations`.
pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (config, p, c) = (ctx.config()?, ctx.principal()?, ctx.take_db()?);
    let new = input::new_conversation(read_object(&mut ctx.req).await?, &config.default_model)?;
    let conversation = repo::insert(&c, p.user_id, &new).await?;
    json(201, &conversation.to_json())
}

/// `GET /api/v1/conversations`.
pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (p, c) = (ctx.principal()?, ctx.take_db()?);
    let params = query(&ctx.req)?;
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
    let rows = repo::list(&c, p.user_id, after, q, limit).await?;
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
pub async fn get(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (p, c) = (ctx.principal()?, ctx.take_db()?);
    let conversation = owned(&c, &p, conversation_id(&ctx.param(0))?).await?;
    let history = messages::all(&c, p.user_id, conversation.id).await?;
    let mut body = conversation.to_json();
    body["messages"] = history.iter().map(messages::Message::to_json).collect();
    json(200, &body)
}

/// `PATCH /api/v1/conversations/{id}`.
pub async fn update(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (p, c) = (ctx.principal()?, ctx.take_db()?);
    let id = conversation_id(&ctx.param(0))?;
    let patch = input::patch(read_object(&mut ctx.req).await?)?;
    let conversation = repo::update(&c, p.user_id, id, &patch)
        .await?
        .ok_or_else(not_found)?;
    json(200, &conversation.to_json())
}

/// `DELETE /api/v1/conversations/{id}`: its messages go in the same statement.
pub async fn delete(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (p, c) = (ctx.principal()?, ctx.take_db()?);
    if repo::delete(&c, p.user_id, conversation_id(&ctx.param(0))?).await? {
        Ok(respond::empty(204)?)
    } else {
        Err(not_found())
    }
}
