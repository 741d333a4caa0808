//! The `ConversationEvents` Durable Object: one per conversation, holding
//! its event log (SQLite) and its watchers.
//!
//! Watchers and publishers are WebSockets accepted with the Hibernation
//! API: between messages the object can sleep (and is not billed for
//! duration) however long a watcher stays connected; the worker bridges
//! each watcher's socket to the client's Server-Sent Events.
//!
//! - `GET /subscribe?after=N` (WebSocket): a watcher. The replay after
//!   event N (or the reload notice) is queued on the socket in the same
//!   synchronous step that accepts it, so no live event can slip between.
//! - `GET /publish?retention_ms=N` (WebSocket): events, one message per
//!   batch (see [`super::batch`]); N sets how long events are kept, and an
//!   alarm drops what is older. After `conversation.deleted` the watchers'
//!   sockets are closed and the storage cleared.

use std::cell::Cell;
use std::time::Duration;

use serde_json::Value;
use worker::{
    console_error, console_log, durable_object, DurableObject, Env, Request, Response, Result,
    State, WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

use super::announce::DELETED;
use super::log::Log;

/// Tag of watchers' sockets.
const WATCHER: &str = "watch";
/// Tag of publishers' sockets.
const PUBLISHER: &str = "publish";
/// Retention until a publication says otherwise (the worker's default).
const DEFAULT_RETENTION_MS: i64 = 3_600_000;

/// The Durable Object class (binding `CONVERSATION_EVENTS`).
#[durable_object]
pub struct ConversationEvents {
    state: State,
    log: Option<Log>,
    /// Whether an alarm is known to be set (unknown after a restart).
    alarm_set: Cell<bool>,
}

fn now_ms() -> i64 {
    i64::try_from(crate::runtime::now_ms()).unwrap_or(i64::MAX)
}

impl ConversationEvents {
    fn log(&self) -> Result<&Log> {
        self.log
            .as_ref()
            .ok_or_else(|| worker::Error::RustError("the event log cannot be opened".into()))
    }

    /// Sends `text` to every watcher (a watcher that is gone is skipped).
    fn broadcast(&self, text: &str) {
        for ws in self.state.get_websockets_with_tag(WATCHER) {
            let _ = ws.send_with_str(text);
        }
    }

    /// Appends a batch, sends its frames to the watchers as one message,
    /// and makes sure the retention alarm is set.
    async fn publish(&self, batch: &str) -> Result<()> {
        let Ok(Value::Array(events)) = serde_json::from_str::<Value>(batch) else {
            console_error!("events: a batch that is not a JSON array was dropped");
            return Ok(());
        };
        let (log, now) = (self.log()?, now_ms());
        let mut frames = String::new();
        let mut deleted = false;
        for event in &events {
            let (Some(name), Some(data)) = (event[0].as_str(), event.get(2)) else {
                continue;
            };
            frames.push_str(&log.append(now, name, event[1].as_str(), &data.to_string())?);
            deleted |= name == DELETED;
        }
        if !frames.is_empty() {
            self.broadcast(&frames);
        }
        if deleted {
            return self.forget().await;
        }
        if !self.alarm_set.replace(true) {
            let storage = self.state.storage();
            if storage.get_alarm().await?.is_none() {
                let ms = log.retention_ms(DEFAULT_RETENTION_MS)?;
                storage
                    .set_alarm(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
                    .await?;
            }
        }
        Ok(())
    }

    /// Accepts a hibernatable socket with `tag`, first queueing `text` on it.
    fn accept(&self, tag: &str, text: &str) -> Result<Response> {
        let pair = WebSocketPair::new()?;
        self.state.accept_websocket_with_tags(&pair.server, &[tag]);
        if !text.is_empty() {
            pair.server.send_with_str(text)?;
        }
        Response::from_websocket(pair.client)
    }

    /// After `conversation.deleted`: every socket closed, nothing kept.
    async fn forget(&self) -> Result<()> {
        for ws in self.state.get_websockets() {
            let _ = ws.close(Some(1000), Some("conversation deleted"));
        }
        let storage = self.state.storage();
        storage.delete_alarm().await?;
        storage.delete_all().await?;
        self.alarm_set.set(false);
        Ok(())
    }
}

impl DurableObject for ConversationEvents {
    fn new(state: State, _env: Env) -> Self {
        // Also says when an object wakes from hibernation (its sockets kept).
        console_log!(
            "events: object {} starts with {} sockets",
            state.id(),
            state.get_websockets().len()
        );
        let log = Log::open(state.storage().sql())
            .map_err(|e| console_error!("events: cannot open the log: {e}"))
            .ok();
        Self {
            state,
            log,
            alarm_set: Cell::new(false),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let url = req.url()?;
        let param = |name: &str| {
            url.query_pairs()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.parse::<i64>().ok())
        };
        if let Some(ms) = param("retention_ms") {
            self.log()?.set_retention_ms(ms)?;
        }
        match (req.method().to_string().as_str(), url.path()) {
            ("GET", "/subscribe") => {
                let replay = match param("after") {
                    Some(after) => self.log()?.replay(after)?,
                    None => String::new(),
                };
                self.accept(WATCHER, &replay)
            }
            ("GET", "/publish") => self.accept(PUBLISHER, ""),
            _ => Ok(Response::empty()?.with_status(404)),
        }
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let is_publisher = self.state.get_tags(&ws).iter().any(|t| t == PUBLISHER);
        match message {
            WebSocketIncomingMessage::String(batch) if is_publisher => self.publish(&batch).await,
            _ => Ok(()),
        }
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        _code: usize,
        _reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        let _ = ws.close(Some(1000), Some("closed"));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        let _ = ws.close(Some(1011), Some("error"));
        Ok(())
    }

    /// Drops the events older than the retention and sets the next alarm
    /// for when the oldest left expires.
    async fn alarm(&self) -> Result<Response> {
        let log = self.log()?;
        let retention = log.retention_ms(DEFAULT_RETENTION_MS)?;
        let now = now_ms();
        let oldest = log.expire(now - retention)?;
        self.alarm_set.set(oldest.is_some());
        if let Some(at) = oldest {
            let wait = (at + retention - now).max(1_000);
            self.state
                .storage()
                .set_alarm(Duration::from_millis(u64::try_from(wait).unwrap_or(1_000)))
                .await?;
        }
        Response::empty()
    }
}
