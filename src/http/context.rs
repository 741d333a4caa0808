//! What a handler gets besides the request: the bindings, the event context
//! (for `wait_until`), the validated configuration and the request id.

use std::cell::RefCell;
use std::rc::Rc;

use worker::{Context, Env};

use crate::config::Config;

/// Per-request context handed to every route handler.
pub struct RequestContext {
    /// Bindings, vars and secrets.
    pub env: Env,
    /// The fetch event's context: `wait_until` lives here.
    pub ctx: Context,
    /// The validated configuration (routes other than `/health` only run with one).
    pub config: &'static Config,
    /// This request's id, as echoed in `X-Request-Id` and error envelopes.
    pub request_id: String,
    /// `X-RateLimit-*` headers to put on the response, whatever it is.
    pub limit_headers: Rc<RefCell<Vec<(&'static str, String)>>>,
}
