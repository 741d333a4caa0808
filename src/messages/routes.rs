//! `GET /api/v1/conversations/{id}/messages`.

use serde_json::json;
use worker::Response;

use super::repo;
use crate::conversations::owned::conversation_id;
use crate::http::ctx::Ctx;
use crate::http::pagination::{parse_limit, parse_seq_cursor, seq_cursor};
use crate::http::request::query;
use crate::http::{respond, ApiError};

/// Lists a conversation's messages, oldest first, with cursor pagination.
pub async fn list(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (p, c) = (ctx.principal()?, ctx.take_db()?);
    let params = query(&ctx.req)?;
    let limit = parse_limit(params.get("limit").map(String::as_str))?;
    let after = params
        .get("cursor")
        .map(|raw| parse_seq_cursor(raw))
        .transpose()?;
    let id = conversation_id(&ctx.param(0))?;
    let page = repo::page(&c, p.user_id, id, after, limit).await?;
    let next = page.last_seq.filter(|_| page.has_more).map(seq_cursor);
    Ok(respond::json(
        200,
        &json!({"data": page.items, "has_more": page.has_more, "next_cursor": next}),
    )?)
}
