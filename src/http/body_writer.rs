//! A streamed response body written as it is produced, coalescing what
//! arrives together into one write.
//!
//! Every write to a response stream costs the runtime a pass through its
//! stream machinery and the connection (about 80 µs each under `wrangler
//! dev`, far more than reading an upstream chunk), so a relay that writes
//! once per upstream chunk spends most of its time there. Pieces are
//! therefore gathered and written by a zero-delay timer: the runtime runs
//! it once the reads that were already possible have been processed, so
//! whatever the upstream had already delivered leaves as one write, while
//! a piece that arrives alone (any token after a pause) leaves on the very
//! next turn of the event loop. The relay flushes an answer's opening and
//! its first content itself ([`BodyOut::flush`]), so they leave before the
//! rest of a burst. Nothing waits longer than [`MAX_HOLD_MS`] or beyond
//! [`MAX_PENDING`] bytes, even while the upstream keeps the event loop busy.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use worker::js_sys::{Function, Promise, Uint8Array};
use worker::wasm_bindgen::closure::Closure;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::web_sys::{
    ReadableStream, TransformStream, WorkerGlobalScope, WritableStreamDefaultWriter,
};

/// Longest a piece waits for others, in ms.
pub const MAX_HOLD_MS: u64 = 10;
/// Most bytes gathered before they are written at once.
pub const MAX_PENDING: usize = 64 * 1024;

/// Where a streamed response's pieces go.
pub trait BodyOut {
    /// Hands `piece` to the client's stream; false once the client has gone.
    fn write(&mut self, piece: Vec<u8>) -> bool;
    /// Whether the client's stream is still open.
    fn is_open(&self) -> bool;
    /// Writes what is pending now instead of on the timer.
    fn flush(&mut self) {}
}

/// What the writer and its timer share.
struct Shared {
    writer: WritableStreamDefaultWriter,
    /// Pieces not written yet.
    pending: RefCell<Vec<u8>>,
    /// When the oldest pending piece arrived (ms since the epoch).
    since: Cell<u64>,
    /// The armed timer's id.
    timer: Cell<Option<i32>>,
}

impl Shared {
    /// Writes what is pending as one chunk.
    fn flush(&self) {
        let pending = std::mem::take(&mut *self.pending.borrow_mut());
        if !pending.is_empty() {
            let chunk = Uint8Array::from(pending.as_slice());
            settle(self.writer.write_with_chunk(&chunk));
        }
    }

    fn disarm(&self) {
        if let Some(id) = self.timer.take() {
            global().clear_timeout_with_handle(id);
        }
    }
}

/// The writing end of a streamed response body. Dropping it writes what
/// is pending and ends the body.
pub struct BodyWriter {
    shared: Rc<Shared>,
    /// The timer's callback (kept alive while the timer may ring).
    on_timer: Closure<dyn FnMut()>,
}

fn global() -> WorkerGlobalScope {
    worker::js_sys::global().unchecked_into()
}

thread_local! {
    /// Swallows the rejection of a write that the client will never read
    /// (it left): the next write sees the stream closed instead. One per
    /// isolate, never dropped, as a write may settle after its writer is gone.
    static IGNORE: Closure<dyn FnMut(JsValue)> =
        Closure::wrap(Box::new(|_: JsValue| {}) as Box<dyn FnMut(JsValue)>);
}

fn settle(promise: Promise) {
    IGNORE.with(|ignore| {
        let _ = promise.catch(ignore);
    });
}

impl BodyWriter {
    /// A new body: the writer, and the stream to answer with.
    pub fn new() -> worker::Result<(BodyWriter, ReadableStream)> {
        let pipe = TransformStream::new().map_err(worker::Error::from)?;
        let writer = pipe.writable().get_writer().map_err(worker::Error::from)?;
        let shared = Rc::new(Shared {
            writer,
            pending: RefCell::new(Vec::new()),
            since: Cell::new(0),
            timer: Cell::new(None),
        });
        let on_timer = {
            let shared = shared.clone();
            Closure::wrap(Box::new(move || {
                shared.timer.set(None);
                shared.flush();
            }) as Box<dyn FnMut()>)
        };
        Ok((BodyWriter { shared, on_timer }, pipe.readable()))
    }
}

/// Whether pending bytes must be written now rather than by the timer.
pub fn must_flush(pending: usize, held_ms: u64) -> bool {
    pending >= MAX_PENDING || held_ms >= MAX_HOLD_MS
}

impl BodyOut for BodyWriter {
    fn write(&mut self, piece: Vec<u8>) -> bool {
        if !self.is_open() {
            return false;
        }
        let now = crate::runtime::now_ms();
        let shared = &self.shared;
        let pending = {
            let mut pending = shared.pending.borrow_mut();
            if pending.is_empty() {
                shared.since.set(now);
            }
            pending.extend_from_slice(&piece);
            pending.len()
        };
        if must_flush(pending, now.saturating_sub(shared.since.get())) {
            shared.disarm();
            shared.flush();
        } else if shared.timer.get().is_none() {
            let callback: &Function = self.on_timer.as_ref().unchecked_ref();
            match global().set_timeout_with_callback_and_timeout_and_arguments_0(callback, 0) {
                Ok(id) => shared.timer.set(Some(id)),
                Err(_) => shared.flush(),
            }
        }
        true
    }

    fn is_open(&self) -> bool {
        // `desiredSize` is null once the stream errored (the client
        // cancelled the body) and 0 once closed.
        matches!(self.shared.writer.desired_size(), Ok(Some(_)))
    }

    fn flush(&mut self) {
        self.shared.disarm();
        self.shared.flush();
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        // The timer is cleared before its callback goes.
        self.shared.disarm();
        self.shared.flush();
        settle(self.shared.writer.close());
    }
}

/// A channel stands in for the body in unit tests.
#[cfg(test)]
impl BodyOut for futures::channel::mpsc::UnboundedSender<Vec<u8>> {
    fn write(&mut self, piece: Vec<u8>) -> bool {
        self.unbounded_send(piece).is_ok()
    }

    fn is_open(&self) -> bool {
        !self.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_wait_for_the_timer_within_the_bounds() {
        assert!(!must_flush(1, 0));
        assert!(!must_flush(MAX_PENDING - 1, MAX_HOLD_MS - 1));
    }

    #[test]
    fn a_long_hold_or_a_large_batch_is_written_at_once() {
        assert!(must_flush(1, MAX_HOLD_MS));
        assert!(must_flush(MAX_PENDING, 0));
    }
}
