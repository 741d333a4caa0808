//! What a send queues for its conversation's object, and how a batch of it
//! travels (pure). Consecutive deltas of one kind leave as one
//! `message.delta`: the log and the watchers get one event per batch and
//! kind instead of one per token, and the text is unchanged.
//!
//! A batch is one JSON array of `[name, message_id | null, data]`; the
//! object stores `data` as given and tags deltas and completions with the
//! message id (to compact the deltas once the whole text is stored).

use std::time::Duration;

use serde_json::{json, Value};

/// Longest a delta waits for others before its batch leaves.
pub const FLUSH_AFTER: Duration = Duration::from_millis(100);
/// Most deltas in one batch.
pub const MAX_DELTAS: usize = 32;

/// One thing to publish.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// Answer text (`thinking` false) or reasoning of the message being produced.
    Delta {
        /// Reasoning rather than answer text.
        thinking: bool,
        /// The text.
        text: String,
    },
    /// Any other event, with the message it concerns (if any).
    Event {
        /// `message.created`, `message.completed`, `conversation.updated`, …
        name: &'static str,
        /// The message of a `message.completed` (its deltas are compacted).
        message_id: Option<String>,
        /// The event's data; `type` is added.
        data: Value,
    },
}

impl Item {
    /// An event whose data is `data` with `type` set to `name`.
    pub fn event(name: &'static str, message_id: Option<String>, mut data: Value) -> Item {
        data["type"] = Value::from(name);
        Item::Event {
            name,
            message_id,
            data,
        }
    }
}

/// Whether the batch so far must leave now rather than wait for
/// [`FLUSH_AFTER`]: an event other than a delta goes at once (with the
/// deltas before it), and a batch holds at most [`MAX_DELTAS`] deltas.
pub fn full(items: &[Item]) -> bool {
    match items.last() {
        Some(Item::Event { .. }) => true,
        Some(Item::Delta { .. }) => items.len() >= MAX_DELTAS,
        None => false,
    }
}

/// One batch's JSON text; deltas of `message_id` in a row and of one kind
/// are joined into one event.
pub fn encode(message_id: &str, items: Vec<Item>) -> String {
    let mut out: Vec<Value> = Vec::new();
    let mut pending: Option<(bool, String)> = None;
    let delta = |(thinking, text): (bool, String)| {
        let kind = if thinking { "thinking" } else { "text" };
        json!(["message.delta", message_id, {"type": "message.delta", "message_id": message_id,
               "delta": {"type": kind, "text": text}}])
    };
    for item in items {
        match item {
            Item::Delta { thinking, text } => match pending.as_mut() {
                Some((kind, joined)) if *kind == thinking => joined.push_str(&text),
                _ => {
                    out.extend(pending.take().map(delta));
                    pending = Some((thinking, text));
                }
            },
            Item::Event {
                name,
                message_id,
                data,
            } => {
                out.extend(pending.take().map(delta));
                out.push(json!([name, message_id, data]));
            }
        }
    }
    out.extend(pending.map(delta));
    Value::Array(out).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(thinking: bool, text: &str) -> Item {
        Item::Delta {
            thinking,
            text: text.into(),
        }
    }

    #[test]
    fn deltas_of_one_kind_in_a_row_travel_as_one_event() {
        let created = Item::event("message.created", None, json!({"message": {"id": "m"}}));
        let batch = encode(
            "m",
            vec![
                created,
                d(true, "hm"),
                d(true, "m."),
                d(false, "Hel"),
                d(false, "lo"),
            ],
        );
        let v: Value = serde_json::from_str(&batch).unwrap();
        let events = v.as_array().unwrap();
        assert_eq!(events.len(), 3, "{batch}");
        assert_eq!(events[0][0], "message.created");
        assert_eq!(events[0][2]["type"], "message.created");
        assert_eq!(
            events[1][2]["delta"],
            json!({"type": "thinking", "text": "hmm."})
        );
        assert_eq!(events[2][1], "m");
        assert_eq!(events[2][2]["message_id"], "m");
        assert_eq!(
            events[2][2]["delta"],
            json!({"type": "text", "text": "Hello"})
        );
    }

    #[test]
    fn events_keep_their_place_between_deltas() {
        let done = Item::event("message.completed", Some("m".into()), json!({}));
        let batch = encode("m", vec![d(false, "a"), done, d(false, "b")]);
        let v: Value = serde_json::from_str(&batch).unwrap();
        let names: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[0].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["message.delta", "message.completed", "message.delta"]
        );
        assert_eq!(v[1][1], "m");
    }

    #[test]
    fn a_batch_leaves_early_for_an_event_or_when_full() {
        assert!(!full(&[]));
        assert!(!full(&[d(false, "a")]));
        assert!(full(&[d(false, "a"), Item::event("x", None, json!({}))]));
        let many: Vec<Item> = (0..MAX_DELTAS).map(|_| d(false, "a")).collect();
        assert!(full(&many));
    }
}
