//! Browser event tokens: `EventSource` cannot send an `Authorization`
//! header, so `POST …/events/token` (with an access token or an API key)
//! mints a short-lived token that opens the event stream of that one
//! conversation, passed as `?token=`. It is an HS256 JWT with
//! `typ:"events"` and the conversation in `cid`: useless as an access
//! token, for another conversation, or after [`TTL_SECONDS`].

use serde_json::json;
use worker::{console_warn, Request, Response};

use crate::auth::token::{issue_events, verify_events};
use crate::auth::Verified;
use crate::conversations::owned::{conversation_id, not_found};
use crate::conversations::repo;
use crate::http::context::RequestContext;
use crate::http::ctx::Ctx;
use crate::http::{respond, ApiError};
use crate::runtime::now_utc;

/// Lifetime of an event token, in seconds.
pub const TTL_SECONDS: i64 = 300;
/// The query parameter carrying it.
pub const PARAM: &str = "token";

/// The event token in the query string, if any.
pub fn from_query(req: &Request) -> Option<String> {
    let url = req.url().ok()?;
    let found = url.query_pairs().find(|(k, _)| k == PARAM);
    found.map(|(_, v)| v.into_owned())
}

/// Checks an event token against the conversation in the path (`params[0]`).
pub fn verify(rc: &RequestContext, token: &str, params: &[String]) -> Result<Verified, ApiError> {
    let conversation = params.first().map_or("", String::as_str);
    verify_events(&rc.config.jwt_secret, token, conversation, now_utc())
        .map(Verified::Jwt)
        .map_err(|e| {
            console_warn!("[{}] event token refused: {}", rc.request_id, e.0);
            ApiError::Authentication("invalid or expired event token".into())
        })
}

/// `POST /api/v1/conversations/{id}/events/token` → 201 `{token,
/// token_type:"events", expires_in, url}`.
pub async fn mint(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (rc, p, c) = (ctx.rc()?, ctx.principal()?, ctx.take_db()?);
    let id = conversation_id(&ctx.param(0))?;
    repo::get(&c, p.user_id, id).await?.ok_or_else(not_found)?;
    let token = issue_events(&rc.config.jwt_secret, p.user_id, id, now_utc(), TTL_SECONDS)
        .map_err(|e| ApiError::Internal(e.0))?;
    let url = format!("/api/v1/conversations/{id}/events?{PARAM}={token}");
    let body = json!({"token": token, "token_type": "events", "expires_in": TTL_SECONDS,
                      "url": url});
    Ok(respond::json(201, &body)?)
}
