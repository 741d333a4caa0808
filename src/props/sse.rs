//! The stream decoders (SSE framing, Groq/OpenAI, Gemini, `<thinking>`
//! splitting) and our Anthropic-format encoder, on generated input.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::config;
use super::strategies::{cuts, json_value, made_of, split, split_str, text};
use crate::messages::idempotency::replay_events;
use crate::sse::anthropic::Encoder;
use crate::sse::gemini::{self, GeminiDecoder};
use crate::sse::lines::{LineDecoder, SseFrame};
use crate::sse::openai::{self, OpenAiDecoder};
use crate::sse::think::ThinkSplitter;
use crate::sse::{Decoder, LlmEvent, StopReason};

/// The syntax of an event stream, and payloads both providers send.
const SSE_PIECES: &[&str] = &[
    "data: ",
    "data:",
    "event: ",
    "event: error\n",
    "id: 1\n",
    "retry: 10\n",
    ": keep-alive\n",
    "\n",
    "\n\n",
    "\r\n",
    "\r",
    "\u{feff}",
    ":",
    " ",
    "[DONE]",
    "{",
    "}",
    "\"",
    "{\"choices\":[{\"delta\":{\"content\":\"hé😀\"},\"finish_reason\":null}]}",
    "{\"choices\":[{\"delta\":{\"reasoning\":\"hm\",\"content\":\"\"}}]}",
    "{\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":18446744073709551615,\"completion_tokens\":-1,\"completion_tokens_details\":{\"reasoning_tokens\":99999999999}}}",
    "{\"x_groq\":{\"usage\":{\"prompt_tokens\":1e400}}}",
    "{\"choices\":[]}",
    "{\"choices\":null,\"error\":null}",
    "{\"error\":{\"message\":\"boom\"}}",
    "{\"error\":\"bad\"}",
    "{\"error\":{}}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\",\"thought\":true},{\"text\":\"b\"},{\"text\":5}]},\"finishReason\":\"MAX_TOKENS\"}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":4294967296,\"thoughtsTokenCount\":4294967295}}",
    "{\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}",
    "[{\"candidates\":[]}]",
    "1e999999",
    "-",
    "\u{0}",
    "{\"choices\":[{\"delta\":{\"content\":\"a\\u0000b\",\"reasoning\":\"\\u0000\"}}]}",
    "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\\u0000\"},{\"text\":\"c\\u0000\",\"thought\":true}]}}]}",
];

/// Event-stream-like bytes, or raw bytes (invalid UTF-8 included).
fn stream_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => made_of(SSE_PIECES).prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..400),
        1 => (made_of(SSE_PIECES), prop::collection::vec(any::<u8>(), 0..8), any::<prop::sample::Index>())
            .prop_map(|(s, junk, at)| {
                let mut bytes = s.into_bytes();
                let at = at.index(bytes.len() + 1);
                bytes.splice(at..at, junk);
                bytes
            }),
    ]
}

fn frames(chunks: &[&[u8]]) -> Vec<SseFrame> {
    let mut d = LineDecoder::new();
    let mut out: Vec<SseFrame> = chunks.iter().flat_map(|c| d.push(c)).collect();
    out.extend(d.finish());
    out
}

fn events<D: Decoder>(mut d: D, chunks: &[&[u8]]) -> Vec<LlmEvent> {
    let mut out: Vec<LlmEvent> = chunks.iter().flat_map(|c| d.push(c)).collect();
    out.extend(d.finish());
    out
}

/// What a decoder may never emit: empty deltas or empty error messages.
fn check_events(events: &[LlmEvent]) -> Result<(), TestCaseError> {
    for e in events {
        match e {
            LlmEvent::Text(t) | LlmEvent::Thinking(t) => {
                prop_assert!(!t.is_empty() && !t.contains('\0'), "{:?}", t)
            }
            LlmEvent::Error(m) => prop_assert!(!m.trim().is_empty()),
            _ => {}
        }
    }
    Ok(())
}

fn joined(events: &[LlmEvent], thinking: bool) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            LlmEvent::Text(t) if !thinking => Some(t.as_str()),
            LlmEvent::Thinking(t) if thinking => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// Consecutive events of the same kind merged: how a client sees deltas.
fn merged(events: Vec<LlmEvent>) -> Vec<LlmEvent> {
    let mut out: Vec<LlmEvent> = Vec::new();
    for e in events {
        match (out.last_mut(), e) {
            (Some(LlmEvent::Text(a)), LlmEvent::Text(b))
            | (Some(LlmEvent::Thinking(a)), LlmEvent::Thinking(b)) => a.push_str(&b),
            (_, e) => out.push(e),
        }
    }
    out
}

/// Parses our encoded stream and checks its grammar: every frame's event
/// name is its JSON `type`; `message_start` first; blocks opened in index
/// order, deltas only into the open block, each closed before the next;
/// `message_stop` or `error` last. Returns (text, thinking, the last event).
fn check_anthropic(sse: &str) -> Result<(String, String, Value), TestCaseError> {
    let frames = frames(&[sse.as_bytes()]);
    let mut text = String::new();
    let mut thinking = String::new();
    let mut open: Option<u64> = None;
    let mut next_index = 0u64;
    let mut last = Value::Null;
    for (i, f) in frames.iter().enumerate() {
        let data: Value = serde_json::from_str(&f.data)
            .map_err(|e| TestCaseError::fail(format!("frame {i} is not JSON ({e}): {f:?}")))?;
        let kind = data["type"].as_str().unwrap_or_default();
        prop_assert_eq!(f.event.as_deref(), Some(kind), "event name vs type");
        prop_assert!(
            last["type"] != "message_stop" && last["type"] != "error",
            "after the end: {data}"
        );
        if i == 0 {
            prop_assert_eq!(kind, "message_start");
        }
        match kind {
            "content_block_start" => {
                prop_assert_eq!(open, None, "a block opened inside another");
                prop_assert_eq!(data["index"].as_u64(), Some(next_index));
                open = Some(next_index);
                next_index += 1;
            }
            "content_block_delta" => {
                prop_assert_eq!(data["index"].as_u64(), open, "delta outside the open block");
                let d = &data["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => text.push_str(d["text"].as_str().unwrap_or_default()),
                    Some("thinking_delta") => {
                        thinking.push_str(d["thinking"].as_str().unwrap_or_default())
                    }
                    Some("signature_delta") => {}
                    other => prop_assert!(false, "unknown delta {other:?}"),
                }
            }
            "content_block_stop" => {
                prop_assert_eq!(data["index"].as_u64(), open);
                open = None;
            }
            "message_delta" => prop_assert_eq!(open, None, "message_delta with a block open"),
            "message_start" | "message_stop" | "error" | "ping" => {}
            other => prop_assert!(false, "unknown event {other}"),
        }
        last = data;
    }
    Ok((text, thinking, last))
}

#[derive(Debug, Clone)]
enum Op {
    Text(String),
    Thinking(String),
    ReportInput(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => text().prop_map(Op::Text),
        2 => text().prop_map(Op::Thinking),
        1 => any::<u32>().prop_map(Op::ReportInput),
    ]
}

#[derive(Debug, Clone)]
enum End {
    Finish(bool, u32),
    Error(String, String),
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![
        (any::<bool>(), any::<u32>()).prop_map(|(max, n)| End::Finish(max, n)),
        (
            "[a-z_]{1,20}",
            text().prop_filter("non-empty", |m| !m.is_empty())
        )
            .prop_map(|(t, m)| End::Error(t, m)),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sse_framing_is_the_same_however_split(bytes in stream_bytes(), cuts in cuts()) {
        let whole = frames(&[&bytes]);
        prop_assert_eq!(&frames(&split(&bytes, &cuts)), &whole);
        for f in &whole {
            prop_assert!(!f.data.contains('\r'));
            if let Some(event) = &f.event {
                prop_assert!(!event.is_empty() && !event.contains(['\r', '\n']));
            }
        }
    }

    #[test]
    fn groq_decoding_is_the_same_however_split(bytes in stream_bytes(), cuts in cuts()) {
        let whole = events(OpenAiDecoder::new(), &[&bytes]);
        check_events(&whole)?;
        prop_assert_eq!(events(OpenAiDecoder::new(), &split(&bytes, &cuts)), whole);
    }

    #[test]
    fn gemini_decoding_is_the_same_however_split(bytes in stream_bytes(), cuts in cuts()) {
        let whole = events(GeminiDecoder::new(), &[&bytes]);
        check_events(&whole)?;
        prop_assert_eq!(events(GeminiDecoder::new(), &split(&bytes, &cuts)), whole);
    }

    #[test]
    fn whole_bodies_never_panic(bytes in stream_bytes(), value in json_value()) {
        check_events(&openai::decode_completion(&bytes))?;
        check_events(&gemini::decode_response(&bytes))?;
        let body = value.to_string();
        check_events(&openai::decode_completion(body.as_bytes()))?;
        check_events(&gemini::decode_response(body.as_bytes()))?;
    }

    /// A Groq stream written with serde decodes back to its deltas, its
    /// usage and its finish reason, however it arrives.
    #[test]
    fn groq_stream_round_trip(
        deltas in prop::collection::vec((proptest::option::of(text()), proptest::option::of(text())), 0..12),
        crlf in any::<bool>(),
        usage in (any::<u32>(), any::<u32>()),
        cuts in cuts(),
    ) {
        let end = if crlf { "\r\n\r\n" } else { "\n\n" };
        let mut body = String::new();
        for (reasoning, content) in &deltas {
            let chunk = json!({"object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"reasoning": reasoning, "content": content}, "finish_reason": null}]});
            body.push_str(&format!("data: {chunk}{end}"));
        }
        let last = json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
            "x_groq": {"usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1}}});
        body.push_str(&format!("data: {last}{end}data: [DONE]{end}"));
        let got = events(OpenAiDecoder::new(), &split(body.as_bytes(), &cuts));
        check_events(&got)?;
        // NUL characters are dropped (they cannot be stored).
        let want = |thinking: bool| -> String {
            deltas
                .iter()
                .filter_map(|(r, c)| if thinking { r.clone() } else { c.clone() })
                .collect::<String>()
                .replace('\0', "")
        };
        prop_assert_eq!(joined(&got, true), want(true));
        prop_assert_eq!(joined(&got, false), want(false));
        let tail = &got[got.len().saturating_sub(3)..];
        prop_assert_eq!(tail, &[
            LlmEvent::Usage { input_tokens: usage.0, output_tokens: usage.1, content_tokens: None },
            LlmEvent::Finish(StopReason::MaxTokens),
            LlmEvent::Done,
        ][..]);
    }

    /// A Gemini stream written with serde decodes back to its parts.
    #[test]
    fn gemini_stream_round_trip(
        parts in prop::collection::vec((text(), any::<bool>()), 0..12),
        cuts in cuts(),
    ) {
        let mut body = String::new();
        for (text, thought) in &parts {
            let response = json!({"candidates": [{"content": {"parts": [{"text": text, "thought": thought}], "role": "model"}, "index": 0}]});
            body.push_str(&format!("data: {response}\r\n\r\n"));
        }
        body.push_str("data: {\"candidates\":[{\"content\":{\"parts\":[]},\"finishReason\":\"STOP\"}]}\r\n\r\n");
        let got = events(GeminiDecoder::new(), &split(body.as_bytes(), &cuts));
        check_events(&got)?;
        let want = |thinking: bool| -> String {
            parts.iter().filter(|p| p.1 == thinking).map(|p| p.0.as_str()).collect::<String>().replace('\0', "")
        };
        prop_assert_eq!(joined(&got, true), want(true));
        prop_assert_eq!(joined(&got, false), want(false));
        prop_assert_eq!(got.last(), Some(&LlmEvent::Finish(StopReason::EndTurn)));
    }

    #[test]
    fn thinking_split_is_the_same_however_split(
        answer in made_of(&["<thinking>", "</thinking>", "<", "</", "<think", "</thinking", "ing>", " ", "\n", "\t", "a", "é", "😀"]),
        cuts in cuts(),
    ) {
        let run = |chunks: &[&str]| {
            let mut s = ThinkSplitter::new();
            let mut out: Vec<LlmEvent> = chunks.iter().flat_map(|c| s.push(c)).collect();
            out.extend(s.finish());
            out
        };
        // Its input is decoded text, which never holds NUL characters.
        let answer = answer.replace('\0', "");
        let whole = run(&[&answer]);
        check_events(&whole)?;
        let pieces = run(&split_str(&answer, &cuts));
        check_events(&pieces)?;
        prop_assert_eq!(merged(pieces), merged(whole));
    }

    #[test]
    fn thinking_tags_round_trip(reasoning in text(), answer in text(), lead in "[ \n\t]{0,3}", cuts in cuts()) {
        prop_assume!(!reasoning.contains("</thinking>"));
        let (reasoning, answer) = (reasoning.replace('\0', ""), answer.replace('\0', ""));
        let full = format!("{lead}<thinking>{reasoning}</thinking>{answer}");
        let mut s = ThinkSplitter::new();
        let mut out: Vec<LlmEvent> = split_str(&full, &cuts).iter().flat_map(|c| s.push(c)).collect();
        out.extend(s.finish());
        prop_assert_eq!(joined(&out, true), reasoning);
        prop_assert_eq!(joined(&out, false), answer.trim_start());
    }

    /// What the encoder writes is a valid Anthropic event sequence that
    /// carries exactly the text and thinking it was given, and it frames
    /// the same however a client's reads split it.
    #[test]
    fn anthropic_encoding_round_trip(
        id in text(),
        model in text(),
        input in any::<u32>(),
        ops in prop::collection::vec(op(), 0..16),
        end in proptest::option::of(end()),
        cuts in cuts(),
    ) {
        let mut e = Encoder::new(&id, &model, input);
        let mut sse = e.start();
        let (mut text, mut thinking) = (String::new(), String::new());
        for op in &ops {
            match op {
                Op::Text(t) => { text.push_str(t); sse.push_str(&e.text(t)); }
                Op::Thinking(t) => { thinking.push_str(t); sse.push_str(&e.thinking(t)); }
                Op::ReportInput(n) => e.report_input_tokens(*n),
            }
            sse.push_str(&Encoder::ping());
        }
        match &end {
            Some(End::Finish(max, n)) => {
                let stop = if *max { StopReason::MaxTokens } else { StopReason::EndTurn };
                sse.push_str(&e.finish(stop, *n));
            }
            Some(End::Error(kind, message)) => sse.push_str(&e.error(kind, message)),
            None => {}
        }
        prop_assert_eq!(e.text_so_far(), text.as_str());
        prop_assert_eq!(e.thinking_so_far(), thinking.as_str());
        let (got_text, got_thinking, last) = check_anthropic(&sse)?;
        prop_assert_eq!(got_text, text);
        prop_assert_eq!(got_thinking, thinking);
        let frames_whole = frames(&[sse.as_bytes()]);
        prop_assert_eq!(frames(&split(sse.as_bytes(), &cuts)), frames_whole.clone());
        let start: Value = serde_json::from_str(&frames_whole[0].data).unwrap_or_default();
        prop_assert_eq!(&start["message"]["id"], &Value::from(id));
        prop_assert_eq!(&start["message"]["model"], &Value::from(model));
        match end {
            Some(End::Finish(_, n)) => {
                prop_assert_eq!(&last["type"], "message_stop");
                let delta = frames_whole.iter().rev().nth(1)
                    .and_then(|f| serde_json::from_str::<Value>(&f.data).ok()).unwrap_or_default();
                prop_assert_eq!(&delta["usage"]["output_tokens"], &Value::from(n));
                // Nothing more once closed.
                prop_assert!(e.text("more").is_empty() && e.finish(StopReason::EndTurn, 0).is_empty());
            }
            Some(End::Error(kind, message)) => {
                prop_assert_eq!(&last["error"]["type"], &Value::from(kind));
                prop_assert_eq!(&last["error"]["message"], &Value::from(message));
            }
            None => {}
        }
    }

    /// Replaying any stored result gives a valid event sequence.
    #[test]
    fn replays_of_any_stored_result_are_valid_streams(
        stored in json_value(),
        assistant in crate::props::strategies::object_over(&[
            "id", "model", "input_tokens", "output_tokens", "thinking", "content", "status",
        ]),
        stop in proptest::option::of(prop_oneof![Just("max_tokens".to_string()), Just("end_turn".to_string()), ".*"]),
    ) {
        check_anthropic(&replay_events(&stored))?;
        let record = json!({"assistant_message": assistant, "stop_reason": stop});
        let (text, _, last) = check_anthropic(&replay_events(&record))?;
        prop_assert_eq!(text.as_str(), assistant.get("content").and_then(Value::as_str).unwrap_or_default());
        let t = last["type"].as_str().unwrap_or_default();
        prop_assert!(t == "message_stop" || t == "error", "{last}");
    }
}
