//! The wire text of a conversation's event stream (pure): event frames, the
//! reload notice, the opening `retry:` hint, heartbeats, and the
//! `Last-Event-ID` a reconnecting client sends.

/// Reconnection delay suggested to clients (`retry:`), in milliseconds.
pub const RETRY_MS: u32 = 2_000;

/// A comment frame that keeps an idle connection (and proxies) alive.
pub const HEARTBEAT: &str = ": heartbeat\n\n";

/// The query parameter that stands in for the `Last-Event-ID` header.
pub const LAST_EVENT_ID_PARAM: &str = "last_event_id";

/// One event: its id in the conversation's log, its name, and its data
/// (one line of JSON whose `type` is the name).
pub fn frame(id: i64, name: &str, data: &str) -> String {
    format!("id: {id}\nevent: {name}\ndata: {data}\n\n")
}

/// What every stream starts with: the reconnection hint.
pub fn opening() -> String {
    format!("retry: {RETRY_MS}\n: connected\n\n")
}

/// The notice sent instead of a replay when `asked` is no longer (or was
/// never) in the log: the client reloads the conversation over REST. Its
/// id is the log's latest, so the stream (and a reconnection) goes on from there.
pub fn reload(latest: i64, asked: i64) -> String {
    let data = format!(
        "{{\"type\":\"reload\",\"last_event_id\":{asked},\"message\":\"events after {asked} \
         are no longer kept; reload the conversation (GET /api/v1/conversations/{{id}})\"}}"
    );
    frame(latest, "reload", &data)
}

/// The event id to resume after: the `Last-Event-ID` header, else the
/// query parameter; `None` for a fresh stream (live events only). Anything
/// but a whole number from 0 is refused with a message for a 400.
pub fn last_event_id(header: Option<&str>, query: Option<&str>) -> Result<Option<i64>, String> {
    let Some(raw) = header.or(query).map(str::trim) else {
        return Ok(None);
    };
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(Some)
        .ok_or_else(|| format!("Last-Event-ID must be an event id (a whole number), not {raw:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_id_name_and_one_line_of_data() {
        assert_eq!(
            frame(7, "message.delta", "{\"type\":\"message.delta\"}"),
            "id: 7\nevent: message.delta\ndata: {\"type\":\"message.delta\"}\n\n"
        );
        assert!(opening().starts_with("retry: 2000\n"));
        assert!(opening().ends_with("\n\n"));
        assert!(HEARTBEAT.starts_with(':'));
    }

    #[test]
    fn the_reload_notice_is_an_event_at_the_latest_id() {
        let text = reload(42, 3);
        assert!(text.starts_with("id: 42\nevent: reload\ndata: "), "{text}");
        let data = text.lines().nth(2).unwrap().trim_start_matches("data: ");
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["type"], "reload");
        assert_eq!(v["last_event_id"], 3);
    }

    #[test]
    fn last_event_id_comes_from_the_header_or_the_query() {
        assert_eq!(last_event_id(None, None), Ok(None));
        assert_eq!(last_event_id(Some(" 12 "), Some("3")), Ok(Some(12)));
        assert_eq!(last_event_id(None, Some("3")), Ok(Some(3)));
        assert_eq!(last_event_id(Some(""), None), Ok(None));
        for bad in ["-1", "abc", "1.5", "99999999999999999999"] {
            assert!(last_event_id(Some(bad), None).is_err(), "{bad}");
        }
    }
}
