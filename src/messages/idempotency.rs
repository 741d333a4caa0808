//! `Idempotency-Key` on sends: the first request's result is kept for 24 h
//! against (user, key); a retry with the same body gets it back without a
//! new model call, the same key with another body is a 409, and so is a
//! retry while the first is still running. Claiming is one atomic
//! `INSERT … ON CONFLICT DO NOTHING`, so of concurrent duplicates exactly
//! one proceeds. A send that produced no answer releases its key, so a
//! retry runs again.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio_postgres::types::Type;
use tokio_postgres::Client;
use uuid::Uuid;

use crate::db::query_error;
use crate::http::ApiError;
use crate::sse::anthropic::Encoder;
use crate::sse::StopReason;

/// Longest accepted key.
pub const MAX_KEY_LEN: usize = 255;

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

/// What claiming a key found.
#[derive(Debug, PartialEq)]
pub enum Claim {
    /// The key is new (or its record expired): this request runs.
    New,
    /// The first request finished: its stored `{user_message, assistant_message}`.
    Replay(Value),
}

/// Claims `key` for this request, or explains why it cannot run.
pub async fn claim(
    c: &Client,
    owner: Uuid,
    key: &str,
    hash: &str,
    conversation: Uuid,
) -> Result<Claim, ApiError> {
    for _ in 0..2 {
        let inserted = c
            .query_typed_opt(
                "INSERT INTO idempotency_keys (user_id, key, request_hash, conversation_id)
                 VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, key) DO NOTHING RETURNING 1",
                &[
                    (&owner, Type::UUID),
                    (&key, Type::TEXT),
                    (&hash, Type::TEXT),
                    (&conversation, Type::UUID),
                ],
            )
            .await
            .map_err(query_error)?;
        if inserted.is_some() {
            return Ok(Claim::New);
        }
        let Some(row) = c
            .query_typed_opt(
                "SELECT request_hash, state, response, expires_at <= now() AS expired
                   FROM idempotency_keys WHERE user_id = $1 AND key = $2",
                &[(&owner, Type::UUID), (&key, Type::TEXT)],
            )
            .await
            .map_err(query_error)?
        else {
            continue;
        };
        let (stored_hash, state, response, expired): (String, String, Option<Value>, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if expired {
            c.execute(
                "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND expires_at <= now()",
                &[&owner, &key],
            )
            .await
            .map_err(query_error)?;
            continue;
        }
        if stored_hash != hash {
            return Err(ApiError::Conflict(
                "this Idempotency-Key was already used with a different request".into(),
            ));
        }
        return match (state.as_str(), response) {
            ("complete", Some(response)) => Ok(Claim::Replay(response)),
            _ => Err(ApiError::Conflict(
                "a request with this Idempotency-Key is still in progress".into(),
            )),
        };
    }
    Err(ApiError::Conflict(
        "this Idempotency-Key is being claimed concurrently; retry".into(),
    ))
}

/// Stores the result of the request that claimed `key`.
pub async fn complete(
    c: &Client,
    owner: Uuid,
    key: &str,
    response: &Value,
) -> Result<(), ApiError> {
    c.execute(
        "UPDATE idempotency_keys SET state = 'complete', response = $3
          WHERE user_id = $1 AND key = $2",
        &[&owner, &key, response],
    )
    .await
    .map(|_| ())
    .map_err(query_error)
}

/// Forgets a key whose request produced nothing, so a retry runs again.
pub async fn release(c: &Client, owner: Uuid, key: &str) -> Result<(), ApiError> {
    c.execute(
        "DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND state = 'in_progress'",
        &[&owner, &key],
    )
    .await
    .map(|_| ())
    .map_err(query_error)
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
