//! `GET /api/v1/conversations/{id}/messages`.

use serde_json::{json, Value};
use worker::Response;

use super::repo;
use crate::conversations::owned::{conversation_id, owned};
use crate::http::ctx::Ctx;
use crate::http::pagination::{parse_limit, parse_seq_cursor, seq_cursor, split_page};
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
    let conversation = owned(&c, &p, conversation_id(&ctx.param(0))?).await?;
    let rows = repo::page(&c, p.user_id, conversation.id, after, limit).await?;
    let (page, has_more) = split_page(rows, limit);
    let next = has_more
        .then(|| page.last().map(|m| seq_cursor(m.seq)))
        .flatten();
    let data: Vec<Value> = page.iter().map(repo::Message::to_json).collect();
    Ok(respond::json(
        200,
        &json!({"data": data, "has_more": has_more, "next_cursor": next}),
    )?)
}
