//! Publishing a send's events: the handler queues them (no I/O, no
//! waiting); one task in `wait_until` opens one WebSocket to the
//! conversation's object once the first batch is due (the answer's first
//! piece gone to the client and [`FLUSH_AFTER`] passed), and sends them in
//! batches, a batch leaving [`FLUSH_AFTER`] after its first delta, at
//! [`MAX_DELTAS`] deltas, or at once for any other event. If the object cannot be reached the events are
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
    // A send connects only once its first batch is due: its answer's first
    // piece has gone to the client and the batch has gathered for
    // [`FLUSH_AFTER`] (or filled, or the send has ended). Waking the
    // conversation's object (locally: in the process that serves the
    // stream) then never competes with the first token, and the first batch
    // leaves no later than when connecting came first. What came before the
    // first piece (the user message, the answer starting) leaves in it.
    let mut items = Vec::new();
    let mut open = true;
    if !answer.is_empty() {
        open = until_first_piece(&mut rx, &mut items).await && gather(&mut rx, &mut items).await;
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
    loop {
        if items.is_empty() {
            if !open {
                break;
            }
            let Some(first) = rx.next().await else {
                break;
            };
            items.push(first);
            open = gather(&mut rx, &mut items).await;
        }
        if let Err(e) = ws.send_with_str(batch::encode(&answer, &items)) {
            console_warn!("events of conversation {conversation}: publishing stopped: {e}");
            return;
        }
        items.clear();
    }
    let _ = ws.close(Some(1000), Some("done"));
}

/// Queues into `items` what arrives up to and including the answer's first
/// piece; false when the send ended before one.
async fn until_first_piece(rx: &mut UnboundedReceiver<Vec<u8>>, items: &mut Vec<Vec<u8>>) -> bool {
    while let Some(item) = rx.next().await {
        let piece = matches!(item.first(), Some(b'T' | b'R'));
        items.push(item);
        if piece {
            return true;
        }
    }
    false
}

/// Adds to `items` what arrives until the batch must leave (see
/// [`batch::full`]) or [`FLUSH_AFTER`] has passed; false once the send has
/// dropped its [`Publisher`] (nothing more will come).
async fn gather(rx: &mut UnboundedReceiver<Vec<u8>>, items: &mut Vec<Vec<u8>>) -> bool {
    let mut deadline = std::pin::pin!(Delay::from(FLUSH_AFTER));
    while !batch::full(items) {
        match select(rx.next(), deadline.as_mut()).await {
            Either::Left((Some(item), _)) => items.push(item),
            Either::Left((None, _)) => return false,
            Either::Right(_) => break,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(f)
    }

    #[test]
    fn what_precedes_the_first_piece_waits_with_it_and_later_items_stay_queued() {
        let (tx, mut rx) = unbounded();
        for item in [
            batch::event("message.created", None, "\"message\":{}"),
            batch::delta(true, "hm"),
            batch::delta(false, "late"),
        ] {
            tx.unbounded_send(item).expect("queued");
        }
        let mut items = Vec::new();
        assert!(block_on(until_first_piece(&mut rx, &mut items)));
        assert_eq!(items.len(), 2, "up to and with the first piece");
        assert_eq!(items[1], batch::delta(true, "hm"));
        assert_eq!(rx.try_recv().ok(), Some(batch::delta(false, "late")));
    }

    #[test]
    fn a_send_that_ends_before_a_piece_keeps_its_events() {
        let (tx, mut rx) = unbounded();
        let created = batch::event("message.created", None, "\"message\":{}");
        tx.unbounded_send(created.clone()).expect("queued");
        drop(tx);
        let mut items = Vec::new();
        assert!(!block_on(until_first_piece(&mut rx, &mut items)));
        assert_eq!(items, [created]);
    }
}
