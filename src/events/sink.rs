//! The sink of a send that also publishes: events go to the client's sink
//! as before; the start of the answer and its pieces go to the
//! conversation's watchers too.

use super::publish::Publisher;
use crate::messages::answer::Sink;

/// `inner`, with the answer published through `events`.
pub struct Tee<'a> {
    /// Where the client's events go.
    pub inner: &'a mut dyn Sink,
    /// Where the watchers' events go.
    pub events: &'a Publisher,
}

impl Sink for Tee<'_> {
    fn send(&mut self, event: String) -> bool {
        self.inner.send(event)
    }

    fn end(&mut self, events: String) -> bool {
        self.inner.end(events)
    }

    fn is_open(&self) -> bool {
        self.inner.is_open()
    }

    fn flush(&mut self) {
        self.inner.flush();
    }

    fn answering(&mut self, model: &str, provider: &str) {
        self.events.answering(model, provider);
    }

    fn delta(&mut self, thinking: bool, text: &str) {
        self.events.delta(thinking, text);
    }
}
