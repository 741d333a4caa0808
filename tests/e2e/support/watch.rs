//! A client of `GET …/events`: keeps the stream open while the test acts,
//! reads it until a condition holds, and checks what it read against the
//! OpenAPI document.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;

/// One conversation event as read.
#[derive(Debug, Clone)]
pub struct Event {
    /// The `id:` (`None` when the frame had none).
    pub id: Option<i64>,
    /// The `event:` name.
    pub name: String,
    /// The `data:` as JSON.
    pub data: Value,
}

/// An open event stream.
pub struct Watch {
    resp: reqwest::Response,
    path: String,
    buffer: Vec<u8>,
    /// Everything read so far.
    pub raw: String,
    /// The events read so far, in order.
    pub events: Vec<Event>,
    /// The server ended the stream.
    pub ended: bool,
}

/// `…/events` of conversation `id`.
pub fn events_path(id: &str) -> String {
    format!("{}/events", conversation_path(id))
}

/// Opens `path` (an events URL, with any query) with these credentials and
/// `Last-Event-ID`; a refusal comes back as the error reply.
pub async fn watch_at(path: &str, auth: Auth<'_>, last: Option<i64>) -> Result<Watch, Reply> {
    let mut req = reqwest::Client::new().get(format!("{}{path}", stack().base_url));
    match auth {
        Auth::Bearer(t) => req = req.header("Authorization", format!("Bearer {t}")),
        Auth::ApiKey(k) => req = req.header("X-API-Key", k),
        Auth::Authorization(v) => req = req.header("Authorization", v),
        Auth::None => {}
    }
    if let Some(last) = last {
        req = req.header("Last-Event-ID", last.to_string());
    }
    let resp = req.send().await.expect("the worker answers");
    if resp.status() != 200 {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        conform("GET", path, status.as_u16(), &headers, &text);
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        return Err(Reply {
            status,
            headers,
            json,
            text,
        });
    }
    let ct = resp.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .to_string();
    assert!(ct.starts_with("text/event-stream"), "content-type {ct}");
    Ok(Watch {
        resp,
        path: path.to_string(),
        buffer: Vec::new(),
        raw: String::new(),
        events: Vec::new(),
        ended: false,
    })
}

/// Opens the events of conversation `id` (asserting 200).
pub async fn watch(access: &str, id: &str, last: Option<i64>) -> Watch {
    match watch_at(&events_path(id), Auth::Bearer(access), last).await {
        Ok(w) => w,
        Err(r) => panic!("events of {id}: {} {}", r.status, r.text),
    }
}

impl Watch {
    /// Reads until `done` holds for the events so far, the stream ends, or
    /// `within` passes; returns whether `done` held.
    pub async fn until(&mut self, within: Duration, done: impl Fn(&[Event]) -> bool) -> bool {
        let started = Instant::now();
        while !done(&self.events) && !self.ended {
            let left = within.saturating_sub(started.elapsed());
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Err(_) => break,
                Ok(Err(e)) => panic!("reading the event stream failed: {e}"),
                Ok(Ok(None)) => self.ended = true,
                Ok(Ok(Some(bytes))) => self.take(&bytes),
            }
        }
        let headers = self.resp.headers().clone();
        conform("GET", &self.path, 200, &headers, &self.raw);
        done(&self.events)
    }

    /// Reads until a heartbeat comment has come (at most 5 s).
    pub async fn until_heartbeat(&mut self) -> bool {
        let started = Instant::now();
        while !self.raw.contains(": heartbeat") && !self.ended {
            let left = Duration::from_secs(5).saturating_sub(started.elapsed());
            match tokio::time::timeout(left, self.resp.chunk()).await {
                Ok(Ok(Some(bytes))) => self.take(&bytes),
                Ok(Ok(None)) => self.ended = true,
                _ => break,
            }
        }
        self.raw.contains(": heartbeat")
    }

    /// Reads until an event named `name` has come (at most 15 s).
    pub async fn until_event(&mut self, name: &str) -> Event {
        let found = self
            .until(Duration::from_secs(15), |e| {
                e.iter().any(|e| e.name == name)
            })
            .await;
        assert!(found, "no {name} event; read: {}", self.raw);
        self.events
            .iter()
            .find(|e| e.name == name)
            .cloned()
            .unwrap()
    }

    fn take(&mut self, bytes: &[u8]) {
        self.raw.push_str(&String::from_utf8_lossy(bytes));
        self.buffer
            .extend(bytes.iter().copied().filter(|b| *b != b'\r'));
        while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = self.buffer.drain(..end + 2).collect();
            let (mut id, mut name, mut data) = (None, None, Vec::new());
            for line in String::from_utf8_lossy(&frame).lines() {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value).to_string();
                match field {
                    "id" => id = value.parse().ok(),
                    "event" => name = Some(value),
                    "data" => data.push(value),
                    _ => {}
                }
            }
            if let Some(name) = name {
                let data = serde_json::from_str(&data.join("\n")).unwrap_or(Value::Null);
                self.events.push(Event { id, name, data });
            }
        }
    }

    /// The events named `name`.
    pub fn named(&self, name: &str) -> Vec<&Event> {
        self.events.iter().filter(|e| e.name == name).collect()
    }

    /// The id of the last event read.
    pub fn last_id(&self) -> i64 {
        self.events
            .last()
            .and_then(|e| e.id)
            .expect("an event with an id")
    }

    /// Asserts every event has an id, ids increase strictly, and `data.type`
    /// repeats the name.
    pub fn assert_well_formed(&self) {
        let mut last = 0;
        for e in &self.events {
            let id = e.id.unwrap_or_else(|| panic!("an event without id: {e:?}"));
            assert!(
                id > last,
                "ids must increase: {id} after {last}\n{}",
                self.raw
            );
            last = id;
            assert_eq!(e.data["type"], e.name.as_str(), "{e:?}");
        }
    }

    /// The text of the `message.delta` events of `message_id` (of `kind`).
    pub fn delta_text(&self, message_id: &str, kind: &str) -> String {
        self.named("message.delta")
            .iter()
            .filter(|e| e.data["message_id"] == message_id && e.data["delta"]["type"] == kind)
            .map(|e| e.data["delta"]["text"].as_str().unwrap_or_default())
            .collect()
    }
}
