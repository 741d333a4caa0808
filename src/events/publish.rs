//! Publishing a send's events: the handler queues them (no I/O, no
//! waiting); one task in `wait_until` opens one WebSocket to the
//! conversation's object once the first batch is due (the answer's first
//! piece gone to the client and [`FLUSH_AFTER`] passed), and sends them in
//! batches, a batch leaving [`FLUSH_AFTER`] after its first delta, at
//! [`MAX_DELTAS`] deltas, or at once for any other event. If the object
//! cannot be reached the events are dropped and logged; the send goes on
//! regardless.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use futures::future::select;
use serde_json::Value;
use uuid::Uuid;
use worker::{console_warn, Delay, Env};

#[cfg(doc)]
use super::batch::MAX_DELTAS;
use super::batch::{self, FLUSH_AFTER};
use crate::http::context::RequestContext;

/// What the publishing task waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    /// Any item.
    Anything,
    /// The answer's first piece.
    Piece,
    /// A batch that must leave now ([`batch::full`]).
    Full,
    /// Only the end of the send.
    End,
}

/// The queue between a send and its publishing task. Queuing an item wakes
/// the task only when the task would act on it (a delta in the middle of a
/// batch just waits there): a fast answer costs one wake-up per batch, not
/// one per piece.
#[derive(Default)]
struct Queue {
    items: Vec<Vec<u8>>,
    /// An answer piece has been queued since the send started.
    has_piece: bool,
    /// The send has dropped its [`Publisher`]: nothing more will come.
    closed: bool,
    want: Option<Want>,
    waker: Option<Waker>,
}

impl Queue {
    fn satisfied(&self, want: Want) -> bool {
        self.closed
            || match want {
                Want::Anything => !self.items.is_empty(),
                Want::Piece => self.has_piece,
                Want::Full => batch::full(&self.items),
                Want::End => false,
            }
    }

    fn push(&mut self, item: Vec<u8>) {
        self.has_piece |= matches!(item.first(), Some(b'T' | b'R'));
        self.items.push(item);
        self.wake_if_wanted();
    }

    fn wake_if_wanted(&mut self) {
        if self.want.is_some_and(|w| self.satisfied(w)) {
            self.want = None;
            if let Some(waker) = self.waker.take() {
                waker.wake();
            }
        }
    }
}

/// The task's end of a [`Queue`].
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Queue>>);

impl Shared {
    fn push(&self, item: Vec<u8>) {
        self.0.borrow_mut().push(item);
    }

    fn close(&self) {
        let mut q = self.0.borrow_mut();
        q.closed = true;
        q.wake_if_wanted();
    }

    fn closed(&self) -> bool {
        self.0.borrow().closed
    }

    /// Everything queued, leaving the queue empty.
    fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.0.borrow_mut().items)
    }

    /// Resolves once `want` holds or the queue is closed.
    fn wait(&self, want: Want) -> Wait<'_> {
        Wait { queue: self, want }
    }

    /// Waits until the batch must leave (`want`: see [`batch::full`]), the
    /// queue closes, or [`FLUSH_AFTER`] has passed.
    async fn gather(&self, want: Want) {
        let deadline = std::pin::pin!(Delay::from(FLUSH_AFTER));
        let _ = select(self.wait(want), deadline).await;
    }
}

/// See [`Shared::wait`].
struct Wait<'a> {
    queue: &'a Shared,
    want: Want,
}

impl Future for Wait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut q = self.queue.0.borrow_mut();
        if q.satisfied(self.want) {
            q.want = None;
            return Poll::Ready(());
        }
        q.want = Some(self.want);
        q.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// The events of one send: its user message, the answer being produced,
/// the stored answer, and the title it may give the conversation.
pub struct Publisher {
    queue: Shared,
    conversation: Uuid,
    answer: String,
}

impl Publisher {
    /// Starts the publishing task of a send whose answer will be `answer`.
    pub fn start(rc: &RequestContext, conversation: Uuid, answer: Uuid) -> Publisher {
        let queue = Shared::default();
        let path = format!("/publish?{}", super::retention_query(rc.config));
        let answer = answer.to_string();
        rc.spawn(run(
            rc.env.clone(),
            conversation,
            path,
            answer.clone(),
            queue.clone(),
        ));
        Publisher {
            queue,
            conversation,
            answer,
        }
    }

    fn push(&self, item: Vec<u8>) {
        self.queue.push(item);
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

impl Drop for Publisher {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// Publishes one event of `conversation` after the response, over the
/// same path as a send's events.
pub fn publish_once(rc: &RequestContext, conversation: Uuid, item: Vec<u8>) {
    let queue = Shared::default();
    queue.push(item);
    queue.close();
    let path = format!("/publish?{}", super::retention_query(rc.config));
    rc.spawn(run(
        rc.env.clone(),
        conversation,
        path,
        String::new(),
        queue,
    ));
}

/// The publishing task: connects, then sends batches until the send drops
/// its [`Publisher`].
async fn run(env: Env, conversation: Uuid, path: String, answer: String, queue: Shared) {
    // A send connects only once its first batch is due: its answer's first
    // piece has gone to the client and the batch has gathered for
    // [`FLUSH_AFTER`] (or the send has ended; it waits its whole time even
    // when full). Waking the conversation's object (locally: in the process
    // that serves the stream) then never competes with the first token nor
    // with a fast answer's first hundred milliseconds, and the first batch
    // leaves no later than when connecting came first. What came before the
    // first piece (the user message, the answer starting) leaves in it.
    if !answer.is_empty() {
        queue.wait(Want::Piece).await;
        queue.gather(Want::End).await;
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
        let items = queue.take();
        if items.is_empty() {
            if queue.closed() {
                break;
            }
            queue.wait(Want::Anything).await;
            queue.gather(Want::Full).await;
            continue;
        }
        if let Err(e) = ws.send_with_str(batch::encode(&answer, &items)) {
            console_warn!("events of conversation {conversation}: publishing stopped: {e}");
            return;
        }
    }
    let _ = ws.close(Some(1000), Some("done"));
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    use super::*;

    /// Counts its wake-ups.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn poll(wait: &mut Wait<'_>, counter: &Arc<Counter>) -> Poll<()> {
        let waker = Waker::from(counter.clone());
        Pin::new(wait).poll(&mut Context::from_waker(&waker))
    }

    #[test]
    fn waiting_for_the_first_piece_ignores_other_events_and_keeps_them_queued() {
        let queue = Shared::default();
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let mut wait = queue.wait(Want::Piece);
        assert!(poll(&mut wait, &counter).is_pending());
        queue.push(batch::event("message.created", None, "\"message\":{}"));
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            0,
            "not a piece: no wake-up"
        );
        queue.push(batch::delta(true, "hm"));
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut wait, &counter).is_ready());
        assert_eq!(
            queue.take().len(),
            2,
            "the event and the piece wait together"
        );
    }

    #[test]
    fn deltas_in_a_batch_wake_the_task_only_when_it_is_full() {
        let queue = Shared::default();
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let mut wait = queue.wait(Want::Full);
        assert!(poll(&mut wait, &counter).is_pending());
        for _ in 0..batch::MAX_DELTAS - 1 {
            queue.push(batch::delta(false, "a"));
        }
        assert_eq!(counter.0.load(Ordering::SeqCst), 0, "no wake-up per delta");
        queue.push(batch::delta(false, "a"));
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            1,
            "one when the batch is full"
        );
        assert!(poll(&mut wait, &counter).is_ready());
    }

    #[test]
    fn another_event_or_the_end_of_the_send_ends_the_wait() {
        let queue = Shared::default();
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let mut wait = queue.wait(Want::Full);
        assert!(poll(&mut wait, &counter).is_pending());
        queue.push(batch::delta(false, "a"));
        queue.push(batch::event("message.completed", None, "\"message\":{}"));
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(poll(&mut wait, &counter).is_ready());

        queue.take();
        let mut wait = queue.wait(Want::Anything);
        assert!(poll(&mut wait, &counter).is_pending());
        queue.close();
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            2,
            "a send that ends wakes the task"
        );
        assert!(poll(&mut wait, &counter).is_ready());
        assert!(queue.closed());
    }
}
