//! What a send queues for its conversation's object, and how a batch of it
//! travels (pure). Consecutive deltas of one kind leave as one
//! `message.delta`: the log and the watchers get one event per batch and
//! kind instead of one per token, and the text is unchanged.
//!
//! A queued item is bytes (the queue then shares its code with the
//! response streams'): a delta is `T` (answer text) or `R` (reasoning)
//! followed by its text; any other event is `E` followed by its wire form.
//! A batch is one JSON array of `[name, message_id | null, data]`; the
//! object stores `data` as given and tags deltas and completions with the
//! message id (to compact the deltas once the whole text is stored).

use std::time::Duration;

use serde_json::Value;

/// Longest a delta waits for others before its batch leaves.
pub const FLUSH_AFTER: Duration = Duration::from_millis(100);
/// Most deltas in one batch.
pub const MAX_DELTAS: usize = 256;

/// A queued piece of answer text (`thinking` false) or reasoning.
pub fn delta(thinking: bool, text: &str) -> Vec<u8> {
    let mut item = Vec::with_capacity(text.len() + 1);
    item.push(if thinking { b'R' } else { b'T' });
    item.extend_from_slice(text.as_bytes());
    item
}

/// A queued event named `name` about `message` (the message of a
/// `message.completed`, whose deltas are then compacted), whose data is
/// `{"type": name, <fields>}`; `fields` is JSON object members.
pub fn event(name: &str, message: Option<&str>, fields: &str) -> Vec<u8> {
    let message = message.map_or("null".into(), |m| format!("\"{m}\""));
    format!("E[\"{name}\",{message},{{\"type\":\"{name}\",{fields}}}]").into_bytes()
}

/// Whether the batch so far must leave now rather than wait for
/// [`FLUSH_AFTER`]: an event other than a delta goes at once (with the
/// deltas before it), and a batch holds at most [`MAX_DELTAS`] deltas.
pub fn full(items: &[Vec<u8>]) -> bool {
    match items.last().and_then(|i| i.first()) {
        Some(b'E') => true,
        Some(_) => items.len() >= MAX_DELTAS,
        None => false,
    }
}

/// One batch's JSON text; deltas in a row and of one kind (all of the
/// send's answer, `message_id`) are joined into one event.
pub fn encode(message_id: &str, items: &[Vec<u8>]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut pending: Option<(u8, String)> = None;
    let flush = |pending: Option<(u8, String)>, out: &mut Vec<String>| {
        if let Some((kind, text)) = pending {
            let kind = if kind == b'R' { "thinking" } else { "text" };
            let fields = format!(
                "\"message_id\":\"{message_id}\",\"delta\":{{\"type\":\"{kind}\",\"text\":{}}}",
                Value::String(text)
            );
            let item = event("message.delta", Some(message_id), &fields);
            out.push(String::from_utf8_lossy(&item[1..]).into_owned());
        }
    };
    for item in items {
        let Some((&kind, body)) = item.split_first() else {
            continue;
        };
        let body = String::from_utf8_lossy(body);
        match (kind, pending.as_mut()) {
            (b'E', _) => {
                flush(pending.take(), &mut out);
                out.push(body.into_owned());
            }
            (_, Some((open, text))) if *open == kind => text.push_str(&body),
            _ => {
                flush(pending.take(), &mut out);
                pending = Some((kind, body.into_owned()));
            }
        }
    }
    flush(pending, &mut out);
    format!("[{}]", out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(batch: &str) -> Vec<Value> {
        let v: Value = serde_json::from_str(batch).expect(batch);
        v.as_array().unwrap().clone()
    }

    #[test]
    fn deltas_of_one_kind_in_a_row_travel_as_one_event() {
        let created = event("message.created", None, "\"message\":{\"id\":\"m\"}");
        let items = [
            created,
            delta(true, "hm"),
            delta(true, "m."),
            delta(false, "Hel"),
            delta(false, "lo \"quoted\"\n"),
        ];
        let batch = encode("m", &items);
        let events = parse(&batch);
        assert_eq!(events.len(), 3, "{batch}");
        assert_eq!(events[0][0], "message.created");
        assert_eq!(events[0][1], Value::Null);
        assert_eq!(events[0][2]["type"], "message.created");
        assert_eq!(events[0][2]["message"]["id"], "m");
        assert_eq!(events[1][2]["delta"]["type"], "thinking");
        assert_eq!(events[1][2]["delta"]["text"], "hmm.");
        assert_eq!(events[2][1], "m");
        assert_eq!(events[2][2]["type"], "message.delta");
        assert_eq!(events[2][2]["message_id"], "m");
        assert_eq!(events[2][2]["delta"]["text"], "Hello \"quoted\"\n");
    }

    #[test]
    fn events_keep_their_place_between_deltas() {
        let done = event("message.completed", Some("m"), "\"message\":{}");
        let batch = encode("m", &[delta(false, "a"), done, delta(false, "b")]);
        let events = parse(&batch);
        let names: Vec<&str> = events.iter().map(|e| e[0].as_str().unwrap()).collect();
        assert_eq!(
            names,
            ["message.delta", "message.completed", "message.delta"]
        );
        assert_eq!(events[1][1], "m");
    }

    #[test]
    fn a_batch_leaves_early_for_an_event_or_when_full() {
        assert!(!full(&[]));
        assert!(!full(&[delta(false, "a")]));
        assert!(full(&[delta(false, "a"), event("x", None, "\"a\":1")]));
        let many: Vec<Vec<u8>> = (0..MAX_DELTAS).map(|_| delta(false, "a")).collect();
        assert!(full(&many));
    }
}
