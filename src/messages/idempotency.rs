//! `Idempotency-Key` on sends: the first request's result is kept for 24 h
//! against (user, key); a retry with the same body gets it back without a
//! new model call, the same key with another body is a 409, and so is a
//! retry while the first is still running. The claim, the kept result and
//! the release are done by the database API (`api.send_prepare`,
//! `api.send_finish`, `api.send_abort`): claiming is one atomic
//! `INSERT … ON CONFLICT DO NOTHING`, so of concurrent duplicates exactly
//! one proceeds, and a send that produced no answer frees its key, so a
//! retry runs again. A claimed key is held for a [`lease`]: a send that
//! never finished (cancelled by the platform) stops blocking its key once
//! the lease lapses, and a retry takes the key over. Here: the key's
//! syntax, the lease, the request fingerprint and the replay of a kept result.

use std::time::Duration;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::answer::Timing;
use crate::http::ApiError;
use crate::sse::anthropic::Encoder;
use crate::sse::StopReason;

/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

/// Time allowed for storing an answer after it ended, in a key's lease.
pub const STORE_MARGIN: Duration = Duration::from_secs(60);

/// How long a claimed key is held by its send before a retry may take it
/// over: the longest a send can legitimately run (two attempts, each
/// waiting at most the first-token timeout and a second for the abort, then
/// the answer's time limit) plus [`STORE_MARGIN`]. With the default 15 s
/// first-token timeout: 392 s.
pub fn lease(timing: Timing) -> Duration {
    (timing.first_token + Duration::from_secs(1)) * 2 + timing.answer_limit + STORE_MARGIN
}

/// Checks a key: 1–255 printable ASCII characters.
pub fn check_key(raw: &str) -> Result<String, ApiError> {
    let ok =
        (1..=MAX_KEY_LEN).contains(&raw.len()) && raw.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if ok {
        Ok(raw.to_string())
    } else {
        Err(ApiError::InvalidRequest(
            "Idempotency-Key must be 1 to 255 printable ASCII characters".into(),
        ))
    }
}

/// Fingerprint of a send: the conversation and the body (object keys are
/// kept sorted, so equal bodies hash equally whatever their key order).
pub fn request_hash(conversation: Uuid, body: &Map<String, Value>) -> String {
    let canonical = serde_json::to_string(body).unwrap_or_default();
    Sha256::digest(format!("{conversation}\n{canonical}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Where a stored result keeps why the model stopped (not part of the
/// response body: the stream replay needs it, the JSON replay drops it).
const STOP_FIELD: &str = "stop_reason";

/// What a replay of an answer stored `incomplete` ends with, as the original
/// stream did (an `error` event, never `message_stop`).
pub const CUT_OFF: &str =
    "the answer was cut off before it finished; it is stored with status incomplete";

/// The stored form of a send's response `body` whose model stopped for `stop`.
pub fn record(body: &Value, stop: StopReason) -> Value {
    let mut stored = body.clone();
    if let Some(map) = stored.as_object_mut() {
        map.insert(STOP_FIELD.into(), Value::from(stop.as_str()));
    }
    stored
}

/// The response body of a JSON replay: the stored result as first answered.
pub fn replay_body(stored: &Value) -> Value {
    let mut body = stored.clone();
    if let Some(map) = body.as_object_mut() {
        map.remove(STOP_FIELD);
    }
    body
}

/// A stored result as the Anthropic event sequence the original stream
/// sent: a complete answer ends with its stop reason and `message_stop`, an
/// `incomplete` one with an `error` event.
pub fn replay_events(stored: &Value) -> String {
    let a = &stored["assistant_message"];
    let tokens = |v: &Value| u32::try_from(v.as_u64().unwrap_or(0)).unwrap_or(u32::MAX);
    let mut e = Encoder::new(
        a["id"].as_str().unwrap_or_default(),
        a["model"].as_str().unwrap_or_default(),
        tokens(&a["input_tokens"]),
    );
    let mut out = e.start();
    if let Some(thinking) = a["thinking"].as_str() {
        out.push_str(&e.thinking(thinking));
    }
    out.push_str(&e.text(a["content"].as_str().unwrap_or_default()));
    if a["status"] == "incomplete" {
        out.push_str(&e.error("api_error", CUT_OFF));
        return out;
    }
    let stop = match stored[STOP_FIELD].as_str() {
        Some("max_tokens") => StopReason::MaxTokens,
        _ => StopReason::EndTurn,
    };
    out.push_str(&e.finish(stop, tokens(&a["output_tokens"])));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_stored_result_replays_as_a_whole_event_sequence() {
        let stored = json!({"assistant_message": {
            "id": "m1", "model": "openai/gpt-oss-20b", "content": "Hi there",
            "thinking": "Hmm", "input_tokens": 5, "output_tokens": 7,
        }});
        let events = replay_events(&stored);
        let names: Vec<&str> = events
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert!(events.contains(r#""id":"m1""#));
        assert!(events.contains(r#""text":"Hi there""#));
        assert!(events.contains(r#""output_tokens":7"#));
        assert!(events.contains(r#""delta":{"type":"signature_delta","signature":""}"#));
    }

    fn event_names(events: &str) -> Vec<&str> {
        events
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect()
    }

    #[test]
    fn a_replay_keeps_the_stop_reason() {
        let body = json!({"user_message": {"id": "u1"}, "assistant_message": {
            "id": "m1", "model": "m", "content": "cut by length", "status": "complete",
            "input_tokens": 5, "output_tokens": 3,
        }});
        let stored = record(&body, StopReason::MaxTokens);
        let events = replay_events(&stored);
        assert!(events.contains(r#""stop_reason":"max_tokens""#), "{events}");
        assert!(!events.contains("end_turn"), "{events}");
        assert_eq!(event_names(&events).last(), Some(&"message_stop"));
        // The JSON replay is the body as first answered.
        assert_eq!(replay_body(&stored), body);
        let events = replay_events(&record(&body, StopReason::EndTurn));
        assert!(events.contains(r#""stop_reason":"end_turn""#), "{events}");
    }

    #[test]
    fn an_incomplete_answer_replays_as_a_cut_off_stream() {
        let body = json!({"assistant_message": {
            "id": "m1", "model": "m", "content": "One two", "status": "incomplete",
        }});
        let events = replay_events(&record(&body, StopReason::EndTurn));
        let names = event_names(&events);
        assert_eq!(names.last(), Some(&"error"), "{events}");
        assert!(!names.contains(&"message_stop"), "{events}");
        assert!(!names.contains(&"message_delta"), "{events}");
        assert!(events.contains(r#""text":"One two""#));
        assert!(events.contains(CUT_OFF));
    }

    #[test]
    fn the_lease_covers_the_longest_send() {
        let timing = Timing {
            first_token: Duration::from_secs(15),
            ping_every: Duration::from_secs(15),
            idle_limit: Duration::from_secs(60),
            answer_limit: super::super::answer::ANSWER_LIMIT,
        };
        assert_eq!(lease(timing), Duration::from_secs(392));
    }

    #[test]
    fn keys() {
        assert!(check_key("a").is_ok());
        assert!(check_key(&"k".repeat(255)).is_ok());
        assert!(check_key("").is_err());
        assert!(check_key(&"k".repeat(256)).is_err());
        assert!(check_key("tab\there").is_err());
        assert!(check_key("é").is_err());
    }

    #[test]
    fn hashes_ignore_key_order_but_not_values_or_conversation() {
        let c = Uuid::nil();
        let a = request_hash(c, &obj(json!({"content": "hi", "thinking": true})));
        let b = request_hash(c, &obj(json!({"thinking": true, "content": "hi"})));
        assert_eq!(a, b);
        assert_ne!(
            a,
            request_hash(c, &obj(json!({"content": "ho", "thinking": true})))
        );
        assert_ne!(
            a,
            request_hash(
                Uuid::new_v4(),
                &obj(json!({"content": "hi", "thinking": true}))
            )
        );
    }
}
