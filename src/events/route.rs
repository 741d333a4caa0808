//! `GET /api/v1/conversations/{id}/events`: the owner's Server-Sent Events
//! stream of a conversation. The worker holds the client's response and
//! bridges it to a hibernatable WebSocket on the conversation's object:
//! the object sends the replay and then each batch of live frames; the
//! worker adds the `retry:` hint and comment heartbeats, and ends the
//! stream when the object closes the socket (the conversation was deleted)
//! or the client goes away.
//!
//! Each open stream holds a lease in its user's limiter object, so a user
//! holds at most `EVENT_STREAMS_PER_USER` streams at once (429 beyond).

use std::time::Duration;

use futures::future::{select, Either};
use futures::StreamExt;
use uuid::Uuid;
use worker::{console_warn, Delay, Env, Response, WebSocket, WebsocketEvent};

use super::frame::{self, HEARTBEAT, LAST_EVENT_ID_PARAM};
use crate::conversations::owned::{conversation_id, not_found};
use crate::conversations::repo;
use crate::http::body_writer::{BodyOut, BodyWriter};
use crate::http::ctx::Ctx;
use crate::http::request::{header, query};
use crate::http::respond::written_event_stream;
use crate::http::ApiError;
use crate::rate_limit::client::stream_lease;
use crate::rate_limit::streams::RENEW_EVERY_MS;
use crate::runtime::now_ms;

/// A watcher's lease on one of its user's stream slots.
struct Lease {
    env: Env,
    key: String,
    id: String,
    max: u32,
}

impl Lease {
    /// Takes or renews the lease; false when the user has no slot left.
    async fn take(&self) -> bool {
        stream_lease(&self.env, &self.key, &self.id, self.max, false).await
    }

    async fn give_back(&self) {
        stream_lease(&self.env, &self.key, &self.id, self.max, true).await;
    }
}

/// Opens the stream; see the module docs.
pub async fn stream(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (rc, p, c) = (ctx.rc()?, ctx.principal()?, ctx.take_db()?);
    let id = conversation_id(&ctx.param(0))?;
    let params = query(&ctx.req)?;
    let after = frame::last_event_id(
        header(&ctx.req, "Last-Event-ID").as_deref(),
        params.get(LAST_EVENT_ID_PARAM).map(String::as_str),
    )
    .map_err(ApiError::InvalidRequest)?;
    repo::get(&c, p.user_id, id).await?.ok_or_else(not_found)?;
    drop(c);
    let config = rc.config;
    let lease = Lease {
        env: rc.env.clone(),
        key: format!("user:{}", p.user_id),
        id: Uuid::new_v4().to_string(),
        max: config.event_streams_per_user,
    };
    if !lease.take().await {
        return Err(ApiError::TooManyStreams { limit: lease.max });
    }
    let path = after.map_or("/subscribe".into(), |n| format!("/subscribe?after={n}"));
    let ws = match super::socket(&rc.env, id, &path).await {
        Ok(ws) => ws,
        Err(e) => {
            lease.give_back().await;
            console_warn!("[{}] events of {id} unavailable: {e}", rc.request_id);
            return Err(ApiError::Unavailable(
                "conversation events are unavailable; try again shortly".into(),
            ));
        }
    };
    let (mut tx, resp) = written_event_stream()?;
    tx.write(frame::opening().into_bytes());
    let ping = Duration::from_millis(config.stream_ping_interval_ms);
    rc.spawn(bridge(ws, tx, lease, ping));
    Ok(resp)
}

/// Relays the object's frames to the client, with a heartbeat after each
/// `ping` of silence, until either side goes; then gives the lease back.
async fn bridge(ws: WebSocket, mut tx: BodyWriter, lease: Lease, ping: Duration) {
    match ws.events() {
        Ok(mut events) if ws.accept().is_ok() => {
            let mut renewed = now_ms();
            loop {
                let tick = std::pin::pin!(Delay::from(ping));
                let out = match select(events.next(), tick).await {
                    Either::Left((Some(Ok(WebsocketEvent::Message(m))), _)) => {
                        m.text().map(String::into_bytes)
                    }
                    Either::Left(_) => break,
                    Either::Right(_) => Some(HEARTBEAT.as_bytes().to_vec()),
                };
                if out.is_some_and(|bytes| !tx.write(bytes)) {
                    break;
                }
                if now_ms().saturating_sub(renewed) >= RENEW_EVERY_MS {
                    renewed = now_ms();
                    lease.take().await;
                }
            }
        }
        _ => console_warn!("an event stream could not listen to its object"),
    }
    let _ = ws.close(Some(1000), Some("watcher gone"));
    drop(tx);
    lease.give_back().await;
}
