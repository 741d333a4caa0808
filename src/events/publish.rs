//! Publishing a send's events: the handler queues them (no I/O, no
//! waiting); one task in `wait_until` opens one WebSocket to the
//! conversation's object once the answer's first piece has gone to the
//! client, and sends them in batches, a batch leaving
//! [`FLUSH_AFTER`] after its first delta, at [`MAX_DELTAS`] deltas, or at
//! once for any other event. If the object cannot be reached the events are
//! dropped and logged; the send goes on regardless.

use futures::channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures::future::{select, Either};
use futures::StreamExt;
use serde_json::Value;
use uuid::Uuid;
use worker::{console_warn, Delay, Env};

#[cfg(doc)]
use super::batch::MAX_DELTAS;
use super::batch::{self, FLUSH_AFTER};
use crate::http::context::RequestContext;

/// The events of one send: its user message, the answer being produced,
/// the stored answer, and the title it may give the conversation.
pub struct Publisher {
    tx: UnboundedSender<Vec<u8>>,
    conversation: Uuid,
    answer: String,
}

impl Publisher {
    /// Starts the publishing task of a send whose answer will be `answer`.
    pub fn start(rc: &RequestContext, conversation: Uuid, answer: Uuid) -> Publisher {
        let (tx, rx) = unbounded();
        let path = format!("/publish?{}", super::retention_query(rc.config));
        let answer = answer.to_string();
        rc.spawn(run(rc.env.clone(), conversation, path, answer.clone(), rx));
        Publisher {
            tx,
            conversation,
            answer,
        }
    }

    fn push(&self, item: Vec<u8>) {
        let _ = self.tx.unbounded_send(item);
    }

    /// `message.created` for a stored message.
    pub fn created(&self, message: &Value) {
        let fields = format!("\"message\":{message}");
        self.push(batch::event("message.created", None, &fields));
    }

    /// `message.created` for the answer a provider started producing.
    pub fn answering(&self, model: &str, provider: &str) {
        let fields = format!(
            "\"message\":{{\"id\":\"{}\",\"conversation_id\":\"{}\",\"role\":\"assistant\",\
             \"content\":\"\",\"thinking\":null,\"model\":{},\"provider\":{},\
             \"status\":\"in_progress\"}}",
            self.answer,
            self.conversation,
            Value::from(model),
            Value::from(provider)
        );
        self.push(batch::event("message.created", None, &fields));
    }

    /// A piece of the answer (or of its reasoning).
    pub fn delta(&self, thinking: bool, text: &str) {
        self.push(batch::delta(thinking, text));
    }

    /// `message.completed` for the stored answer, from the send's result
    /// (`{user_message, assistant_message}`; nothing when none was stored).
    pub fn completed(&self, result: Option<&Value>) {
        let Some(message) = result.map(|r| &r["assistant_message"]) else {
            return;
        };
        if message.is_object() {
            let fields = format!("\"message\":{message}");
            let event = batch::event("message.completed", Some(&self.answer), &fields);
            self.push(event);
        }
    }

    /// `conversation.updated` (a title given after the answer).
    pub fn updated(&self, conversation: &Value) {
        self.push(super::announce::updated(conversation));
    }
}

/// Publishes one event of `conversation` after the response, over the
/// same path as a send's events.
pub fn publish_once(rc: &RequestContext, conversation: Uuid, item: Vec<u8>) {
    let (tx, rx) = unbounded();
    let _ = tx.unbounded_send(item);
    let path = format!("/publish?{}", super::retention_query(rc.config));
    rc.spawn(run(rc.env.clone(), conversation, path, String::new(), rx));
}

/// The publishing task: connects, then sends batches until the send drops
/// its [`Publisher`].
async fn run(
    env: Env,
    conversation: Uuid,
    path: String,
    answer: String,
    mut rx: UnboundedReceiver<Vec<u8>>,
) {
    // A send connects only once its answer's first piece is on its way to
    // the client (or the send has ended): waking the conversation's object
    // then never competes with the time to first token. What came before
    // (the user message, the answer starting) leaves in the first batch.
    let mut early = Vec::new();
    if !answer.is_empty() {
        while let Some(item) = rx.next().await {
            let piece = matches!(item.first(), Some(b'T' | b'R'));
            early.push(item);
            if piece {
                break;
            }
        }
    }
    let ws = match super::socket(&env, conversation, &path).await {
        Ok(ws) if ws.accept().is_ok() => ws,
        Ok(_) => {
            console_warn!("events of conversation {conversation} not published: no socket");
            return;
        }
        Err(e) => {
            console_warn!("events of conversation {conversation} not published: {e}");
            return;
        }
    };
    let mut open = true;
    while open {
        let mut items = std::mem::take(&mut early);
        if items.is_empty() {
            let Some(first) = rx.next().await else {
                break;
            };
            items.push(first);
        }
        let mut deadline = std::pin::pin!(Delay::from(FLUSH_AFTER));
        while !batch::full(&items) {
            match select(rx.next(), deadline.as_mut()).await {
                Either::Left((Some(item), _)) => items.push(item),
                Either::Left((None, _)) => {
                    open = false;
                    break;
                }
                Either::Right(_) => break,
            }
        }
        if let Err(e) = ws.send_with_str(batch::encode(&answer, &items)) {
            console_warn!("events of conversation {conversation}: publishing stopped: {e}");
            return;
        }
    }
    let _ = ws.close(Some(1000), Some("done"));
}
