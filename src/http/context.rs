//! What the pipeline and a handler share besides the request: the bindings,
//! the event context (for `wait_until`), the validated configuration, the
//! request id and the headers every response gets.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use worker::{Context, Env};

use crate::config::Config;

/// Per-request context shared by the pipeline and the handler.
pub struct RequestContext {
    /// Bindings, vars and secrets.
    pub env: Env,
    /// The fetch event's context: `wait_until` lives here.
    pub ctx: Context,
    /// The validated configuration (routes other than `/health` only run with one).
    pub config: &'static Config,
    /// This request's id, as echoed in `X-Request-Id` and error envelopes.
    pub request_id: String,
    /// Headers to put on the response, whatever it is: `X-RateLimit-*`
    /// and `Server-Timing` entries.
    pub response_headers: Rc<RefCell<Vec<(&'static str, String)>>>,
}

/// Work that goes on after the response (see [`RequestContext::spawn`]).
pub type Background = Pin<Box<dyn Future<Output = ()>>>;

impl RequestContext {
    /// Runs `work` in `wait_until`, after (or alongside) the response. Boxed,
    /// so every caller shares one instantiation of the runtime's promise glue
    /// (each distinct future type would add its own copy to the script).
    pub fn spawn(&self, work: impl Future<Output = ()> + 'static) {
        self.ctx.wait_until(Box::pin(work) as Background);
    }

    /// Adds a `Server-Timing` entry (`name;dur=ms`, with `desc` when given).
    pub fn timing(&self, name: &str, ms: u64, desc: Option<&str>) {
        let entry = match desc {
            Some(d) => format!("{name};dur={ms};desc=\"{d}\""),
            None => format!("{name};dur={ms}"),
        };
        self.response_headers
            .borrow_mut()
            .push(("Server-Timing", entry));
    }
}
