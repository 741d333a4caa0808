//! The request log: every provider request, in arrival order, bounded.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::script::ProviderKind;

/// At most this many requests are kept; older ones are forgotten.
const MAX_REQUESTS: usize = 10_000;

/// One provider request as received, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// The provider the path addressed.
    pub provider: ProviderKind,
    /// The request path with its query string.
    pub path: String,
    /// The model id (from the body for Groq, from the path for Gemini).
    pub model: Option<String>,
    /// Whether a streamed answer was asked for.
    pub stream: bool,
    /// Request headers, names lowercased, values verbatim (keys included).
    pub headers: BTreeMap<String, String>,
    /// The request body as JSON (a JSON string when it was not JSON).
    pub body: Value,
    /// Arrival time, Unix milliseconds.
    pub received_at_ms: u64,
    /// The HTTP status answered, once the headers were decided.
    pub status: Option<u16>,
    /// The id of the script that answered, if any.
    pub script_id: Option<u64>,
    /// The stand-in finished sending its whole answer.
    pub completed: bool,
    /// The client went away before the answer was finished.
    pub client_disconnected: bool,
    #[serde(skip)]
    raw: String,
    #[serde(skip)]
    seq: u64,
}

impl RecordedRequest {
    /// A new record; `raw` is the request body as text, used for filtering.
    pub fn new(
        provider: ProviderKind,
        path: String,
        headers: BTreeMap<String, String>,
        raw: String,
    ) -> Self {
        let body = serde_json::from_str(&raw).unwrap_or_else(|_| Value::String(raw.clone()));
        RecordedRequest {
            provider,
            path,
            model: None,
            stream: false,
            headers,
            body,
            received_at_ms: now_ms(),
            status: None,
            script_id: None,
            completed: false,
            client_disconnected: false,
            raw,
            seq: 0,
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

#[derive(Debug, Default)]
struct Inner {
    next_seq: u64,
    requests: VecDeque<RecordedRequest>,
}

/// The bounded, in-memory request log.
#[derive(Debug, Default)]
pub struct RequestLog {
    inner: Mutex<Inner>,
}

impl RequestLog {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores a request and returns a tracker to report its outcome with.
    pub fn record(self: &Arc<Self>, mut request: RecordedRequest) -> Tracker {
        let mut inner = self.lock();
        inner.next_seq += 1;
        request.seq = inner.next_seq;
        let seq = request.seq;
        if inner.requests.len() >= MAX_REQUESTS {
            inner.requests.pop_front();
        }
        inner.requests.push_back(request);
        Tracker {
            log: Arc::clone(self),
            seq,
            settled: false,
        }
    }

    fn update(&self, seq: u64, change: impl FnOnce(&mut RecordedRequest)) {
        let mut inner = self.lock();
        let index = inner.requests.partition_point(|request| request.seq < seq);
        if let Some(request) = inner.requests.get_mut(index).filter(|r| r.seq == seq) {
            change(request);
        }
    }

    /// The requests whose raw body contains `marker` (all when `None`).
    pub fn find(&self, marker: Option<&str>) -> Vec<RecordedRequest> {
        self.lock()
            .requests
            .iter()
            .filter(|request| marker.is_none_or(|m| request.raw.contains(m)))
            .cloned()
            .collect()
    }

    /// Forgets the requests whose raw body contains `marker` (all when
    /// `None`); returns how many.
    pub fn remove(&self, marker: Option<&str>) -> usize {
        let mut inner = self.lock();
        let before = inner.requests.len();
        inner
            .requests
            .retain(|request| marker.is_some_and(|m| !request.raw.contains(m)));
        before - inner.requests.len()
    }
}

/// Reports what became of one recorded request. Dropped without being
/// settled (the handler future was cancelled because the connection closed),
/// it marks the request `client_disconnected`.
#[derive(Debug)]
pub struct Tracker {
    log: Arc<RequestLog>,
    seq: u64,
    settled: bool,
}

impl Tracker {
    /// Records the model and stream flag once known.
    pub fn describe(&self, model: Option<&str>, stream: bool) {
        let model = model.map(str::to_owned);
        self.log.update(self.seq, |request| {
            request.model = model;
            request.stream = stream;
        });
    }

    /// Records the answering script.
    pub fn script(&self, id: u64) {
        self.log
            .update(self.seq, |request| request.script_id = Some(id));
    }

    /// Records the HTTP status answered.
    pub fn status(&self, status: u16) {
        self.log
            .update(self.seq, |request| request.status = Some(status));
    }

    /// The whole answer was handed to the connection.
    pub fn completed(mut self) {
        self.settle(|request| request.completed = true);
    }

    /// The client went away first.
    pub fn disconnected(mut self) {
        self.settle(|request| request.client_disconnected = true);
    }

    /// The stand-in itself cut the answer short (as scripted).
    pub fn aborted(mut self) {
        self.settle(|_| {});
    }

    fn settle(&mut self, change: impl FnOnce(&mut RecordedRequest)) {
        self.settled = true;
        self.log.update(self.seq, change);
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if !self.settled {
            self.settle(|request| request.client_disconnected = true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(raw: &str) -> RecordedRequest {
        RecordedRequest::new(ProviderKind::Groq, "/p".into(), BTreeMap::new(), raw.into())
    }

    #[test]
    fn trackers_settle_their_own_request() {
        let log = Arc::new(RequestLog::default());
        let first = log.record(request(r#"{"a":"m1"}"#));
        let second = log.record(request("not json m2"));
        second.completed();
        drop(first);
        let found = log.find(None);
        assert!(found[0].client_disconnected && !found[0].completed);
        assert!(found[1].completed && !found[1].client_disconnected);
        assert_eq!(found[1].body, Value::String("not json m2".into()));
        assert_eq!(log.find(Some("m1")).len(), 1);
        assert_eq!(log.remove(Some("m2")), 1);
        assert_eq!(log.find(None).len(), 1);
    }
}
