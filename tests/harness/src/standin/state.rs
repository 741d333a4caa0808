//! The state one stand-in shares between its connections.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::record::{now_ms, RequestLog};
use super::script::ScriptStore;

/// Scripts, the request log and an id counter.
#[derive(Debug, Default)]
pub struct State {
    /// Registered scripts.
    pub scripts: ScriptStore,
    /// Recorded provider requests.
    pub log: Arc<RequestLog>,
    next_id: AtomicU64,
}

impl State {
    /// A fresh id fragment, unique within this process run (hex).
    pub fn unique_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{:x}{n:06x}", now_ms())
    }
}
