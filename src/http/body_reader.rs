//! Reading a fetched response body: the runtime reads it chunk by chunk on
//! its own, and the Rust side takes everything read so far at once.
//!
//! A provider's answer arrives as hundreds or thousands of small chunks.
//! Each read is cheap for the runtime, but handing every one to Rust costs
//! a promise callback into wasm, a wake-up of the answer's task, a poll
//! and a copy. Here a small JavaScript loop reads the body and queues the
//! chunks; the answer's task is woken only when it waits and something
//! arrives, and takes the queued chunks joined into one. A chunk that
//! arrives alone (the first token, any token after a pause) is handed over
//! at once, so nothing is held back.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use wasm_bindgen::prelude::*;
use worker::js_sys::{Object, Uint8Array};
use worker::web_sys::ReadableStream;

#[wasm_bindgen(inline_js = "
export function pump(stream) {
  const reader = stream.getReader();
  const state = { chunks: [], done: false, error: null, notify: null };
  const wake = () => {
    const notify = state.notify;
    state.notify = null;
    if (notify) notify();
  };
  (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        state.chunks.push(value);
        wake();
      }
    } catch (e) {
      state.error = String((e && e.message) || e);
    }
    state.done = true;
    wake();
  })();
  return state;
}
export function take(state) {
  const chunks = state.chunks;
  if (chunks.length === 0) return null;
  state.chunks = [];
  if (chunks.length === 1) return chunks[0];
  let size = 0;
  for (const c of chunks) size += c.length;
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) { all.set(c, at); at += c.length; }
  return all;
}
export function finished(state) { return state.done; }
export function failure(state) { return state.error; }
export function notify_on(state, f) { state.notify = f; }
export function release(state) { state.notify = null; }
")]
extern "C" {
    fn pump(stream: &ReadableStream) -> Object;
    fn take(state: &Object) -> Option<Uint8Array>;
    fn finished(state: &Object) -> bool;
    fn failure(state: &Object) -> Option<String>;
    fn notify_on(state: &Object, f: &Closure<dyn FnMut()>);
    fn release(state: &Object);
}

/// The reading end of a response body.
pub struct BodyReader {
    state: Object,
    waker: Rc<RefCell<Option<Waker>>>,
    /// Wakes the waiting task; the JavaScript side forgets it on drop.
    notify: Closure<dyn FnMut()>,
}

impl BodyReader {
    /// Locks `stream` and starts reading it.
    pub fn new(stream: &ReadableStream) -> BodyReader {
        let waker: Rc<RefCell<Option<Waker>>> = Rc::default();
        let notify = {
            let waker = waker.clone();
            Closure::wrap(Box::new(move || {
                if let Some(w) = waker.borrow_mut().take() {
                    w.wake();
                }
            }) as Box<dyn FnMut()>)
        };
        BodyReader {
            state: pump(stream),
            waker,
            notify,
        }
    }

    /// Everything read since the last call, as one chunk; `None` at the
    /// end of the body.
    pub async fn next(&mut self) -> Option<Result<Vec<u8>, String>> {
        poll_fn(|cx| {
            if let Some(bytes) = take(&self.state) {
                return Poll::Ready(Some(Ok(bytes.to_vec())));
            }
            if finished(&self.state) {
                return Poll::Ready(failure(&self.state).map(Err));
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            notify_on(&self.state, &self.notify);
            Poll::Pending
        })
        .await
    }
}

impl Drop for BodyReader {
    fn drop(&mut self) {
        // The reading loop ends by itself: the request is aborted by its
        // owner, or the body ends.
        release(&self.state);
    }
}
