//! Reading a fetched response body chunk by chunk, with one pair of
//! callbacks for the whole body.
//!
//! A provider's answer arrives as hundreds or thousands of small chunks,
//! and each is one read. Turning every read's promise into a Rust future
//! the usual way creates two callbacks per read (handed to JavaScript and
//! released again); this reader makes them once per body and only files
//! each result where the waiting future finds it.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use worker::js_sys::{Reflect, Uint8Array};
use worker::wasm_bindgen::closure::Closure;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::web_sys::{ReadableStream, ReadableStreamDefaultReader};

/// One read in progress: its result once settled, and who waits for it.
#[derive(Default)]
struct ReadState {
    /// A read has been started and its result not yet taken.
    pending: bool,
    result: Option<Result<JsValue, JsValue>>,
    waker: Option<Waker>,
}

type Callback = Closure<dyn FnMut(JsValue)>;

/// A dropped reader's read still in progress, with the callbacks it may call.
type Settling = (Rc<RefCell<ReadState>>, (Callback, Callback));

/// The reading end of a response body.
pub struct BodyReader {
    reader: ReadableStreamDefaultReader,
    state: Rc<RefCell<ReadState>>,
    /// Called by the runtime when a read settles; `None` once dropped.
    callbacks: Option<(Callback, Callback)>,
}

thread_local! {
    /// The property names of a read's result, made once.
    static KEYS: (JsValue, JsValue) = (JsValue::from_str("done"), JsValue::from_str("value"));
    /// Callbacks of readers dropped while a read was still in progress: they
    /// may yet be called, so they are kept until their read settles.
    static SETTLING: RefCell<Vec<Settling>> =
        const { RefCell::new(Vec::new()) };
}

impl BodyReader {
    /// Locks `stream` and reads it from here on.
    pub fn new(stream: &ReadableStream) -> BodyReader {
        // Releases what earlier readers left behind, once settled.
        SETTLING.with(|s| {
            s.borrow_mut()
                .retain(|(state, _)| state.borrow().result.is_none())
        });
        let reader: ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
        let state = Rc::new(RefCell::new(ReadState::default()));
        let settle = |ok: bool| {
            let state = state.clone();
            Closure::wrap(Box::new(move |value: JsValue| {
                let mut s = state.borrow_mut();
                s.result = Some(if ok { Ok(value) } else { Err(value) });
                if let Some(waker) = s.waker.take() {
                    waker.wake();
                }
            }) as Box<dyn FnMut(JsValue)>)
        };
        let callbacks = Some((settle(true), settle(false)));
        BodyReader {
            reader,
            state,
            callbacks,
        }
    }

    /// The next chunk; `None` at the end of the body.
    pub async fn next(&mut self) -> Option<Result<Vec<u8>, String>> {
        let result = poll_fn(|cx| {
            let mut s = self.state.borrow_mut();
            if let Some(result) = s.result.take() {
                s.pending = false;
                return Poll::Ready(result);
            }
            if !s.pending {
                s.pending = true;
                if let Some((ok, err)) = &self.callbacks {
                    let _ = self.reader.read().then2(ok, err);
                }
            }
            s.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        match result {
            Ok(read) => chunk(&read),
            Err(e) => Some(Err(describe(&e))),
        }
    }
}

/// A settled read's chunk (`None` when the body is done).
fn chunk(read: &JsValue) -> Option<Result<Vec<u8>, String>> {
    KEYS.with(|(done, value)| {
        let got = |key| Reflect::get(read, key).map_err(|e| describe(&e));
        match got(done) {
            Ok(d) if d.as_bool() == Some(true) => return None,
            Ok(_) => {}
            Err(e) => return Some(Err(e)),
        }
        Some(got(value).and_then(|v| match v.dyn_into::<Uint8Array>() {
            Ok(bytes) => Ok(bytes.to_vec()),
            Err(_) => Err("a body chunk that is not bytes".to_string()),
        }))
    })
}

/// A read's error as text.
fn describe(e: &JsValue) -> String {
    e.dyn_ref::<worker::js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

impl Drop for BodyReader {
    /// The upstream's owner aborts the request first, so a read still in
    /// progress settles (rejected); its callbacks are kept until then.
    fn drop(&mut self) {
        let Some(callbacks) = self.callbacks.take() else {
            return;
        };
        let s = self.state.borrow();
        if s.pending && s.result.is_none() {
            drop(s);
            SETTLING.with(|l| l.borrow_mut().push((self.state.clone(), callbacks)));
        }
    }
}
