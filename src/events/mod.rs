//! Conversation events: what happens to a conversation (messages stored,
//! answers as they are produced, title changes, deletion), published to the
//! conversation's Durable Object and streamed to its owner's watchers as
//! Server-Sent Events, with replay after a `Last-Event-ID`.
//!
//! Postgres stays the source of truth: events are best-effort. Publishing
//! never fails or delays the request that causes it: sends queue events in
//! memory and one task per send carries them, batched, over one WebSocket
//! to the object ([`publish`]); other changes send theirs the same way,
//! off the response path ([`announce`]).
//!
//! - [`frame`], [`batch`]: the wire formats (pure).
//! - [`object`], [`log`]: the Durable Object and its SQLite log.
//! - [`route`]: `GET …/events` (the bridge from the object's socket to
//!   SSE) and `POST …/events/token`; [`token`]: browser event tokens.
//! - [`sink`]: the send's event sink that also publishes.

pub mod announce;
pub mod batch;
pub mod frame;
pub mod log;
pub mod object;
pub mod publish;
pub mod route;
pub mod sink;
pub mod token;

use uuid::Uuid;
use worker::{Env, Headers, Request, RequestInit, WebSocket};

/// Name of the Durable Object binding in `wrangler.toml`.
pub const BINDING: &str = "CONVERSATION_EVENTS";

/// The object's URL for `path` (never resolved: a stub receives it directly).
fn url(path: &str) -> String {
    format!("https://conversation-events.internal{path}")
}

/// Opens a WebSocket to the object of `conversation` at `path` (the caller
/// listens, then accepts it).
async fn socket(env: &Env, conversation: Uuid, path: &str) -> worker::Result<WebSocket> {
    let headers = Headers::new();
    headers.set("Upgrade", "websocket")?;
    let req = Request::new_with_init(&url(path), RequestInit::new().with_headers(headers))?;
    let resp = env
        .durable_object(BINDING)?
        .get_by_name(&conversation.to_string())?
        .fetch_with_request(req)
        .await?;
    let status = resp.status_code();
    resp.websocket()
        .ok_or_else(|| worker::Error::RustError(format!("the events object answered {status}")))
}

/// The retention to tell the object, from the configuration.
fn retention_query(config: &crate::config::Config) -> String {
    format!(
        "retention_ms={}",
        u64::from(config.event_retention_seconds) * 1000
    )
}
