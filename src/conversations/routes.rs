//! `/api/v1/conversations` handlers.

use serde_json::{json, Value};
use worker::Response;

use super::input;
use super::owned::{conversation_id, not_found};
use super::repo;
use crate::events::announce;
use crate::http::ctx::Ctx;
use crate::http::pagination::{parse_limit, parse_time_cursor, time_cursor};
use crate::http::request::{query, read_object};
use crate::http::{respond, ApiError};

/// Longest `q` search string, in characters.
pub const MAX_QUERY: usize = 200;

fn json(status: u16, body: &Value) -> Result<Response, ApiError> {
    Ok(respond::json(status, body)?)
}

/// `POST /api/v1/conversations`.
pub async fn create(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (config, p, c) = (ctx.config()?, ctx.principal()?, ctx.take_db()?);
    let new = input::new_conversation(read_object(&mut ctx.req).await?, &config.default_model)?;
    json(201, &repo::insert(&c, p.user_id, &new).await?)
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
    // PostgreSQL text cannot hold U+0000, so no title can contain it.
    if q.is_some_and(|q| q.contains('\0')) {
        return Err(ApiError::Validation(vec![crate::http::FieldError::new(
            "q",
            "must not contain the NUL character",
        )]));
    }
    let page = repo::list(&c, p.user_id, after, q, limit).await?;
    let next = page
        .last
        .filter(|_| page.has_more)
        .map(|(at, id)| time_cursor(&at, &id));
    json(
        200,
        &json!({"data": page.items, "has_more": page.has_more, "next_cursor": next}),
    )
}

/// `GET /api/v1/conversations/{id}`: the conversation with its newest
/// messages (at most [`repo::MAX_EMBEDDED`], oldest first; one round trip);
/// `messages_truncated` says whether older ones are only on `messages_url`,
/// the paginated route.
pub async fn get(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (p, c) = (ctx.principal()?, ctx.take_db()?);
    let id = conversation_id(&ctx.param(0))?;
    let (mut body, truncated) = repo::get_with_messages(&c, p.user_id, id)
        .await?
        .ok_or_else(not_found)?;
    body["messages_truncated"] = Value::Bool(truncated);
    body["messages_url"] = Value::String(format!("/api/v1/conversations/{id}/messages"));
    json(200, &body)
}

/// `PATCH /api/v1/conversations/{id}` (watchers get `conversation.updated`).
pub async fn update(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (rc, p, c) = (ctx.rc()?, ctx.principal()?, ctx.take_db()?);
    let id = conversation_id(&ctx.param(0))?;
    let patch = input::patch(read_object(&mut ctx.req).await?)?;
    let conversation = repo::update(&c, p.user_id, id, &patch)
        .await?
        .ok_or_else(not_found)?;
    let resp = json(200, &conversation);
    announce::conversation_updated(&rc, id, &conversation);
    resp
}

/// `DELETE /api/v1/conversations/{id}`: its messages go in the same
/// statement; watchers get `conversation.deleted` and its events are cleared.
pub async fn delete(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (rc, p, c) = (ctx.rc()?, ctx.principal()?, ctx.take_db()?);
    let id = conversation_id(&ctx.param(0))?;
    if repo::delete(&c, p.user_id, id).await? {
        announce::conversation_deleted(&rc, id);
        Ok(respond::empty(204)?)
    } else {
        Err(not_found())
    }
}
