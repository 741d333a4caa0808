//! A streaming client for `POST …/messages/stream`: reads the body as it
//! arrives, parses the Server-Sent Events and notes when each one came; and
//! checks of the Anthropic Messages event sequence the contract promises.

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::*;

/// The longest a streamed answer may take in these tests.
const STREAM_LIMIT: Duration = Duration::from_secs(60);

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    /// The `event:` name (`message` when the frame had none).
    pub event: String,
    /// The `data:` lines joined, as JSON (a JSON string when not JSON).
    pub data: Value,
    /// When its last byte arrived, counted from the request's start.
    pub at: Duration,
}

/// A streamed response: status, headers and the events read.
#[derive(Debug)]
pub struct SseReply {
    pub status: u16,
    pub headers: HeaderMap,
    pub events: Vec<SseEvent>,
    /// Everything read of the body, as text.
    pub raw: String,
    /// The server ended the body (false when the client stopped reading).
    pub ended: bool,
}

impl SseReply {
    /// A header's value as text ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The event names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.event.as_str()).collect()
    }

    /// The events with this name.
    pub fn of(&self, name: &str) -> Vec<&SseEvent> {
        self.events.iter().filter(|e| e.event == name).collect()
    }

    /// The first event with this name (panics when there is none).
    pub fn first(&self, name: &str) -> &SseEvent {
        self.events
            .iter()
            .find(|e| e.event == name)
            .unwrap_or_else(|| panic!("no {name} event in {:?}", self.names()))
    }

    /// The `text_delta`s, in order.
    pub fn text_deltas(&self) -> Vec<String> {
        self.deltas("text_delta", "text")
    }

    /// The `thinking_delta`s, in order.
    pub fn thinking_deltas(&self) -> Vec<String> {
        self.deltas("thinking_delta", "thinking")
    }

    /// All answer text streamed.
    pub fn text(&self) -> String {
        self.text_deltas().concat()
    }

    /// All reasoning streamed.
    pub fn thinking(&self) -> String {
        self.thinking_deltas().concat()
    }

    fn deltas(&self, kind: &str, field: &str) -> Vec<String> {
        self.of("content_block_delta")
            .iter()
            .filter(|e| e.data["delta"]["type"] == kind)
            .map(|e| {
                e.data["delta"][field]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    /// `message_start.message`.
    pub fn start_message(&self) -> &Value {
        &self.first("message_start").data["message"]
    }

    /// Asserts a 200 `text/event-stream` response with the common headers.
    pub fn assert_event_stream(&self) {
        assert_eq!(self.status, 200, "stream status; body: {}", self.raw);
        assert!(
            self.header("content-type").starts_with("text/event-stream"),
            "content-type: {:?}",
            self.header("content-type")
        );
        assert!(!self.header("x-request-id").is_empty(), "X-Request-Id");
        assert_eq!(self.header("x-content-type-options"), "nosniff");
    }

    /// Asserts the whole Anthropic sequence: `message_start`, one or more
    /// blocks (start, deltas, stop), `message_delta`, `message_stop` last,
    /// `ping` anywhere; returns the `message_delta` data.
    pub fn assert_complete(&self) -> Value {
        self.assert_event_stream();
        if let Err(e) = check_sequence(&self.events, false) {
            panic!("{e}\nevents: {}", self.dump());
        }
        assert!(self.ended, "the stream did not end");
        self.first("message_delta").data.clone()
    }

    /// Asserts a stream that ends with `event: error` (of this `error.type`
    /// when given), what came before being a valid prefix, no `message_stop`.
    pub fn assert_ends_with_error(&self, kind: Option<&str>) {
        self.assert_event_stream();
        if let Err(e) = check_sequence(&self.events, true) {
            panic!("{e}\nevents: {}", self.dump());
        }
        let last = self
            .events
            .last()
            .unwrap_or_else(|| panic!("no events; body: {}", self.raw));
        assert_eq!(last.event, "error", "last event: {}", self.dump());
        let got = last.data["error"]["type"].as_str();
        assert!(
            got.is_some_and(|t| !t.is_empty()),
            "error.type: {}",
            self.dump()
        );
        if let Some(kind) = kind {
            assert_eq!(got, Some(kind), "{}", self.dump());
        }
        assert!(
            last.data["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "error.message: {}",
            self.dump()
        );
        assert!(self.of("message_stop").is_empty(), "{}", self.dump());
        assert!(self.ended, "the stream did not end after the error");
    }

    /// The events as `at name data` lines, for failure messages.
    pub fn dump(&self) -> String {
        self.events
            .iter()
            .map(|e| format!("\n  {:>6} ms {} {}", e.at.as_millis(), e.event, e.data))
            .collect()
    }
}

/// Whether this is a `content_block_delta` carrying answer text.
pub fn is_text_delta(e: &SseEvent) -> bool {
    e.event == "content_block_delta" && e.data["delta"]["type"] == "text_delta"
}

/// Streams a send and reads it to the end (at most a minute).
pub async fn stream_message(access: &str, id: &str, body: &Value) -> SseReply {
    stream_until(access, id, body, |_| false).await
}

/// Streams a send and reads until `stop` holds for the events so far; then
/// drops the response (the client goes away). `stop` never holding reads
/// to the end.
pub async fn stream_until(
    access: &str,
    id: &str,
    body: &Value,
    stop: impl Fn(&[SseEvent]) -> bool,
) -> SseReply {
    stream_with(access, id, body, &[], stop).await
}

/// [`stream_until`] with `headers` added to the request (e.g. an
/// `Idempotency-Key`).
pub async fn stream_with(
    access: &str,
    id: &str,
    body: &Value,
    headers: &[(&str, &str)],
    stop: impl Fn(&[SseEvent]) -> bool,
) -> SseReply {
    let url = format!("{}{}", stack().base_url, stream_path(id));
    let started = Instant::now();
    let mut req = reqwest::Client::new()
        .post(url)
        .header("Authorization", format!("Bearer {access}"))
        .header("Content-Type", "application/json")
        .header("Accept", "text/event-stream");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = req
        .body(body.to_string())
        .send()
        .await
        .expect("the worker answers");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let mut buffer: Vec<u8> = Vec::new();
    let mut raw: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let mut ended = false;
    loop {
        let left = STREAM_LIMIT.saturating_sub(started.elapsed());
        let chunk = match tokio::time::timeout(left, resp.chunk()).await {
            Err(_) => panic!(
                "the stream did not end within {STREAM_LIMIT:?}; read so far:\n{}",
                String::from_utf8_lossy(&raw)
            ),
            Ok(Err(e)) => panic!("reading the stream failed: {e}"),
            Ok(Ok(None)) => {
                ended = true;
                break;
            }
            Ok(Ok(Some(bytes))) => bytes,
        };
        let at = started.elapsed();
        raw.extend_from_slice(&chunk);
        buffer.extend(chunk.iter().copied().filter(|b| *b != b'\r'));
        let mut stopped = false;
        while let Some(end) = find_blank_line(&buffer) {
            let frame: Vec<u8> = buffer.drain(..end + 2).collect();
            if let Some(event) = parse_frame(&String::from_utf8_lossy(&frame), at) {
                events.push(event);
                if stop(&events) {
                    stopped = true;
                    break;
                }
            }
        }
        if stopped {
            break;
        }
    }
    drop(resp);
    let raw = String::from_utf8_lossy(&raw).into_owned();
    conform("POST", &stream_path(id), status, &headers, &raw);
    SseReply {
        status,
        headers,
        events,
        raw,
        ended,
    }
}

/// The offset of the first `\n\n` in `buf`.
fn find_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\n\n")
}

/// One event from a frame's lines; `None` for a frame of only comments.
fn parse_frame(frame: &str, at: Duration) -> Option<SseEvent> {
    let mut name: Option<String> = None;
    let mut data: Vec<&str> = Vec::new();
    for line in frame.split('\n') {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => name = Some(value.to_string()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if name.is_none() && data.is_empty() {
        return None;
    }
    let text = data.join("\n");
    let data = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Some(SseEvent {
        event: name.unwrap_or_else(|| "message".into()),
        data,
        at,
    })
}

/// Checks the Anthropic Messages event grammar. With `error_end`, the
/// sequence must end with an `error` event (possibly with no `message_start`
/// before it) and may stop anywhere before that; without it, it must run
/// to `message_stop`.
pub fn check_sequence(events: &[SseEvent], error_end: bool) -> Result<(), String> {
    #[derive(PartialEq)]
    enum Phase {
        Start,
        Message,
        Delta,
        Stopped,
        Errored,
    }
    let mut phase = Phase::Start;
    // The open block: index, kind, content deltas, whether it is signed.
    let mut open: Option<(u64, String, usize, bool)> = None;
    let mut next_index = 0u64;
    for (i, e) in events.iter().enumerate() {
        let what = format!("event #{i} ({})", e.event);
        if e.data["type"] != e.event.as_str() {
            return Err(format!("{what}: data.type is {} ", e.data["type"]));
        }
        if phase == Phase::Stopped || phase == Phase::Errored {
            return Err(format!("{what} after the end of the message"));
        }
        match e.event.as_str() {
            "ping" => {}
            "error" => {
                if !error_end {
                    return Err(format!("{what}: unexpected error {}", e.data));
                }
                phase = Phase::Errored;
            }
            "message_start" => {
                if phase != Phase::Start {
                    return Err(format!("{what}: message_start not first"));
                }
                phase = Phase::Message;
            }
            "content_block_start" => {
                if phase != Phase::Message || open.is_some() {
                    return Err(format!("{what}: a block starts out of place"));
                }
                let index = e.data["index"].as_u64();
                if index != Some(next_index) {
                    return Err(format!("{what}: index {index:?}, expected {next_index}"));
                }
                let block = &e.data["content_block"];
                let kind = block["type"].as_str().unwrap_or_default().to_string();
                if !matches!(kind.as_str(), "text" | "thinking") {
                    return Err(format!("{what}: content_block {block}"));
                }
                if block[kind.as_str()] != "" {
                    return Err(format!("{what}: a block starts empty: {block}"));
                }
                if kind == "thinking" && !block["signature"].is_string() {
                    return Err(format!(
                        "{what}: a thinking block without signature: {block}"
                    ));
                }
                open = Some((next_index, kind, 0, false));
                next_index += 1;
            }
            "content_block_delta" => {
                let Some((index, kind, deltas, signed)) = open.as_mut() else {
                    return Err(format!("{what}: a delta outside a block"));
                };
                if e.data["index"].as_u64() != Some(*index) {
                    return Err(format!("{what}: index {}, open {index}", e.data["index"]));
                }
                let delta = &e.data["delta"];
                if *signed {
                    return Err(format!("{what}: delta {delta} after the signature"));
                }
                if delta["type"] == "signature_delta" {
                    if kind != "thinking" || !delta["signature"].is_string() {
                        return Err(format!("{what}: delta {delta} in a {kind} block"));
                    }
                    *signed = true;
                    continue;
                }
                if delta["type"] != format!("{kind}_delta").as_str()
                    || !delta[kind.as_str()].is_string()
                {
                    return Err(format!("{what}: delta {delta} in a {kind} block"));
                }
                *deltas += 1;
            }
            "content_block_stop" => {
                let Some((index, kind, deltas, signed)) = open.take() else {
                    return Err(format!("{what}: no open block"));
                };
                if e.data["index"].as_u64() != Some(index) {
                    return Err(format!("{what}: index {}, open {index}", e.data["index"]));
                }
                if kind == "thinking" && !signed {
                    return Err(format!(
                        "{what}: thinking block {index} has no signature_delta"
                    ));
                }
                if deltas == 0 && !error_end {
                    return Err(format!("{what}: block {index} had no delta"));
                }
            }
            "message_delta" => {
                if phase != Phase::Message || open.is_some() || next_index == 0 {
                    return Err(format!("{what}: message_delta out of place"));
                }
                let reason = &e.data["delta"]["stop_reason"];
                if !matches!(reason.as_str(), Some("end_turn" | "max_tokens")) {
                    return Err(format!("{what}: stop_reason {reason}"));
                }
                if e.data["usage"]["output_tokens"].as_u64().is_none() {
                    return Err(format!("{what}: usage.output_tokens {}", e.data));
                }
                phase = Phase::Delta;
            }
            "message_stop" => {
                if phase != Phase::Delta {
                    return Err(format!("{what}: message_stop before message_delta"));
                }
                phase = Phase::Stopped;
            }
            other => return Err(format!("{what}: unknown event {other}")),
        }
    }
    match phase {
        Phase::Stopped if !error_end => Ok(()),
        Phase::Errored if error_end => Ok(()),
        _ if error_end => Err("the stream does not end with an error event".into()),
        _ => Err("the stream does not end with message_stop".into()),
    }
}

/// The checks above, on hand-made sequences (no stack needed).
#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ev(name: &str, data: Value) -> SseEvent {
        SseEvent {
            event: name.into(),
            data,
            at: Duration::ZERO,
        }
    }

    fn good() -> Vec<SseEvent> {
        vec![
            ev(
                "message_start",
                json!({"type": "message_start", "message": {}}),
            ),
            ev("ping", json!({"type": "ping"})),
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                       "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
            ),
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                       "delta": {"type": "thinking_delta", "thinking": "hm"}}),
            ),
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                       "delta": {"type": "signature_delta", "signature": ""}}),
            ),
            ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ),
            ev(
                "content_block_start",
                json!({"type": "content_block_start", "index": 1,
                       "content_block": {"type": "text", "text": ""}}),
            ),
            ev(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 1,
                       "delta": {"type": "text_delta", "text": "Hi"}}),
            ),
            ev(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 1}),
            ),
            ev(
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                       "usage": {"output_tokens": 2}}),
            ),
            ev("message_stop", json!({"type": "message_stop"})),
        ]
    }

    #[test]
    fn the_grammar_accepts_a_whole_message() {
        assert_eq!(check_sequence(&good(), false), Ok(()));
    }

    #[test]
    fn the_grammar_rejects_broken_sequences() {
        let mut missing_stop = good();
        missing_stop.pop();
        assert!(check_sequence(&missing_stop, false).is_err());
        let mut wrong_type = good();
        wrong_type[1].data = json!({"type": "pong"});
        assert!(check_sequence(&wrong_type, false).is_err());
        let mut wrong_index = good();
        wrong_index[7].data["index"] = json!(0);
        assert!(check_sequence(&wrong_index, false).is_err());
        let mut wrong_delta = good();
        wrong_delta[3].data["delta"] = json!({"type": "text_delta", "text": "x"});
        assert!(check_sequence(&wrong_delta, false).is_err());
        let mut after_stop = good();
        after_stop.push(ev("ping", json!({"type": "ping"})));
        assert!(check_sequence(&after_stop, false).is_err());
        let mut bad_reason = good();
        bad_reason[9].data["delta"]["stop_reason"] = json!("stop");
        assert!(check_sequence(&bad_reason, false).is_err());
        // A thinking block starts with a signature and is signed last.
        let mut unsigned_start = good();
        unsigned_start[2].data["content_block"] = json!({"type": "thinking", "thinking": ""});
        assert!(check_sequence(&unsigned_start, false).is_err());
        let mut unsigned = good();
        unsigned.remove(4);
        assert!(check_sequence(&unsigned, false).is_err());
        let mut after_signature = good();
        after_signature.swap(3, 4);
        assert!(check_sequence(&after_signature, false).is_err());
        let mut signed_text = good();
        signed_text[7].data["delta"] = json!({"type": "signature_delta", "signature": ""});
        assert!(check_sequence(&signed_text, false).is_err());
        // An error is only allowed, and then required, at the end.
        let mut errored: Vec<SseEvent> = good().into_iter().take(4).collect();
        errored.push(ev(
            "error",
            json!({"type": "error", "error": {"type": "api_error", "message": "x"}}),
        ));
        assert_eq!(check_sequence(&errored, true), Ok(()));
        assert!(check_sequence(&errored, false).is_err());
        assert!(check_sequence(&good(), true).is_err());
    }

    #[test]
    fn frames_parse_names_data_and_comments() {
        let e = parse_frame(
            ": keep-alive\nevent: ping\ndata: {\"type\":\"ping\"}\n\n",
            Duration::ZERO,
        )
        .expect("an event");
        assert_eq!(
            (e.event.as_str(), e.data),
            ("ping", json!({"type": "ping"}))
        );
        let e = parse_frame("data: a\ndata: b\n\n", Duration::ZERO).expect("an event");
        assert_eq!((e.event.as_str(), e.data), ("message", json!("a\nb")));
        assert!(parse_frame(": only a comment\n\n", Duration::ZERO).is_none());
        assert_eq!(find_blank_line(b"data: x\n\nrest"), Some(7));
    }
}
