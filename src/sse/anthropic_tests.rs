//! Unit tests of the Anthropic stream encoder.

use super::*;
use serde_json::Value;

/// Splits SSE text into `(event name, data JSON)` pairs, asserting the
/// `event: X\ndata: J\n\n` shape and that `J.type == X`.
fn parse(sse: &str) -> Vec<(String, Value)> {
    assert!(sse.ends_with("\n\n") || sse.is_empty(), "{sse:?}");
    sse.split_terminator("\n\n")
        .map(|block| {
            let (event, data) = block.split_once('\n').expect("two lines");
            let name = event.strip_prefix("event: ").expect("event line");
            let json = data.strip_prefix("data: ").expect("data line");
            assert!(!json.contains('\n'), "data is one line");
            let value: Value = serde_json::from_str(json).expect("valid JSON");
            assert_eq!(value["type"], name, "type equals event name");
            (name.to_string(), value)
        })
        .collect()
}

fn names(sse: &str) -> Vec<String> {
    parse(sse).into_iter().map(|(n, _)| n).collect()
}

#[test]
fn thinking_then_text_exact() {
    let mut e = Encoder::new("msg-1", "openai/gpt-oss-20b", 42);
    let mut out = e.start();
    out += &e.thinking("Let me");
    out += &e.thinking(" see");
    out += &e.text("Hi");
    out += &e.text("!");
    out += &e.finish(StopReason::EndTurn, 17);
    let want = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg-1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"openai/gpt-oss-20b\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":42,\"output_tokens\":0}}}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\" see\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"!\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":17}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );
    assert_eq!(out, want);
    parse(&out);
    assert_eq!(e.thinking_so_far(), "Let me see");
    assert_eq!(e.text_so_far(), "Hi!");
}

#[test]
fn text_only_exact() {
    let mut e = Encoder::new("m", "gemini-2.5-flash-lite", 3);
    let mut out = e.start();
    out += &e.text("Hel");
    out += &e.finish(StopReason::MaxTokens, 1);
    let want = concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"gemini-2.5-flash-lite\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":0}}}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\n",
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n",
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":1}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    );
    assert_eq!(out, want);
    assert_eq!(e.thinking_so_far(), "");
}

#[test]
fn thinking_after_text_opens_a_new_block() {
    let mut e = Encoder::new("m", "x", 0);
    let mut out = e.start();
    out += &e.text("a");
    out += &e.thinking("b");
    out += &e.text("c");
    out += &e.finish(StopReason::EndTurn, 0);
    let events = parse(&out);
    let indexed: Vec<(String, i64, String)> = events
        .iter()
        .filter(|(n, _)| n.starts_with("content_block"))
        .map(|(n, v)| {
            let kind = v["content_block"]["type"]
                .as_str()
                .or(v["delta"]["type"].as_str())
                .unwrap_or("")
                .to_string();
            (n.clone(), v["index"].as_i64().unwrap_or(-1), kind)
        })
        .collect();
    let want: Vec<(String, i64, String)> = [
        ("content_block_start", 0, "text"),
        ("content_block_delta", 0, "text_delta"),
        ("content_block_stop", 0, ""),
        ("content_block_start", 1, "thinking"),
        ("content_block_delta", 1, "thinking_delta"),
        ("content_block_delta", 1, "signature_delta"),
        ("content_block_stop", 1, ""),
        ("content_block_start", 2, "text"),
        ("content_block_delta", 2, "text_delta"),
        ("content_block_stop", 2, ""),
    ]
    .iter()
    .map(|(n, i, k)| (n.to_string(), *i, k.to_string()))
    .collect();
    assert_eq!(indexed, want);
    assert_eq!(e.text_so_far(), "ac");
    assert_eq!(e.thinking_so_far(), "b");
}

#[test]
fn empty_answer_still_has_a_block() {
    let mut e = Encoder::new("m", "x", 5);
    let mut out = e.start();
    out += &e.text("");
    out += &e.thinking("");
    out += &e.finish(StopReason::EndTurn, 0);
    assert_eq!(
        names(&out),
        [
            "message_start",
            "content_block_start",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let events = parse(&out);
    assert_eq!(events[1].1["index"], 0);
    assert_eq!(events[1].1["content_block"]["type"], "text");
    assert_eq!(events[2].1["index"], 0);
}

#[test]
fn content_before_start_sends_start_once() {
    let mut e = Encoder::new("m", "x", 1);
    let out = e.text("hi");
    assert_eq!(
        names(&out),
        [
            "message_start",
            "content_block_start",
            "content_block_delta"
        ]
    );
    assert_eq!(e.start(), "");
}

#[test]
fn finish_without_start_is_complete() {
    let mut e = Encoder::new("m", "x", 1);
    assert_eq!(
        names(&e.finish(StopReason::EndTurn, 0)),
        [
            "message_start",
            "content_block_start",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
}

#[test]
fn error_event_ends_the_stream() {
    let mut e = Encoder::new("m", "x", 1);
    let _ = e.start();
    let _ = e.text("partial");
    let out = e.error("overloaded_error", "Overloaded");
    assert_eq!(
        out,
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
    );
    assert_eq!(e.text("more"), "");
    assert_eq!(e.thinking("more"), "");
    assert_eq!(e.finish(StopReason::EndTurn, 3), "");
    assert_eq!(e.error("api_error", "again"), "");
    assert_eq!(e.text_so_far(), "partial");
}

#[test]
fn nothing_after_finish() {
    let mut e = Encoder::new("m", "x", 1);
    let _ = e.finish(StopReason::EndTurn, 0);
    assert_eq!(e.text("late"), "");
    assert_eq!(e.finish(StopReason::EndTurn, 0), "");
    assert_eq!(e.error("api_error", "late"), "");
}

#[test]
fn a_thinking_block_closed_by_finish_gets_its_signature_first() {
    let mut e = Encoder::new("m", "x", 1);
    let out = e.thinking("hmm") + &e.finish(StopReason::EndTurn, 2);
    let events = parse(&out);
    let tail: Vec<(&str, &Value)> = events[2..].iter().map(|(n, v)| (n.as_str(), v)).collect();
    assert_eq!(tail[0].0, "content_block_delta");
    assert_eq!(
        tail[1].1,
        &serde_json::json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "signature_delta", "signature": THINKING_SIGNATURE}})
    );
    assert_eq!(tail[2].0, "content_block_stop");
    assert_eq!(tail[3].0, "message_delta");
}

#[test]
fn an_error_inside_a_thinking_block_sends_no_signature() {
    let mut e = Encoder::new("m", "x", 1);
    let _ = e.thinking("hmm");
    assert_eq!(names(&e.error("api_error", "lost")), ["error"]);
}

#[test]
fn message_delta_carries_the_reported_input_tokens() {
    let mut e = Encoder::new("m", "x", 10);
    let _ = e.text("a");
    e.report_input_tokens(12);
    e.report_input_tokens(15);
    let events = parse(&e.finish(StopReason::EndTurn, 3));
    let delta = &events[1].1;
    assert_eq!(delta["type"], "message_delta");
    assert_eq!(
        delta["usage"],
        serde_json::json!({"input_tokens": 15, "output_tokens": 3})
    );
}

#[test]
fn ping_event() {
    assert_eq!(
        Encoder::ping(),
        "event: ping\ndata: {\"type\":\"ping\"}\n\n"
    );
    parse(&Encoder::ping());
}

#[test]
fn json_escaping() {
    let mut e = Encoder::new("id \"q\"", "m\\odel", 0);
    let mut out = e.start();
    out += &e.thinking("line1\nline2\r\t\"x\"");
    out += &e.text("say \"hi\"\n</script>\u{1}😀");
    out += &e.error("api_error", "bad \"thing\"\nhappened");
    let events = parse(&out);
    assert_eq!(events[0].1["message"]["id"], "id \"q\"");
    assert_eq!(events[0].1["message"]["model"], "m\\odel");
    assert_eq!(events[2].1["delta"]["thinking"], "line1\nline2\r\t\"x\"");
    assert_eq!(events[3].1["delta"]["type"], "signature_delta");
    assert_eq!(events[6].1["delta"]["text"], "say \"hi\"\n</script>\u{1}😀");
    assert_eq!(events[7].1["error"]["message"], "bad \"thing\"\nhappened");
    assert!(out.contains(r#""text":"say \"hi\"\n</script>\u0001😀""#));
}
