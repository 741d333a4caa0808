//! The stream as the official Anthropic Python SDK reads it. Real streams
//! from the worker (plain and with thinking, answered by Groq and, through
//! fallback, by Gemini; one broken off mid-answer; one where every provider
//! fails) are written to a file and fed to `tests/sdk/check_stream.py`,
//! which runs the SDK's SSE decoder, validates every event strictly against
//! its published types and rebuilds the message with its `accumulate_event`.
//! The rebuilt text, thinking, id, model and usage must be what the API
//! stored. Runs in the PostgreSQL phase against the provider stand-in; the
//! stack runner passes the SDK venv's python in `ANTHROPIC_SDK_PYTHON` (made
//! by `tests/setup.sh`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{
    marker, random_hex, script, stored_answer, stream_message, user_with_conversation, SseReply,
    DEFAULT_MODEL, FALLBACK_MODEL,
};

/// Reasoning with what JSON and SSE must escape (quotes, new lines, `\r`).
const THINKING: &str = "First \"read\" the question,\nthen weigh it:\r\n50% / 50%.";
/// An answer with quotes, a new line, non-ASCII text and markup.
const ANSWER: &str = "Line one, \"quoted\";\nline two — ünïcödé 😀 </script> done.";
/// The token counts the stand-in reports.
const USAGE: (u64, u64) = (123, 45);

/// The python of the SDK venv, failing clearly when it is not there.
fn sdk_python() -> PathBuf {
    let path = std::env::var("ANTHROPIC_SDK_PYTHON").unwrap_or_default();
    assert!(
        !path.is_empty(),
        "ANTHROPIC_SDK_PYTHON is not set: run the tests through `npm test` (or the stack \
         runner), which passes the python of the anthropic SDK venv made by tests/setup.sh"
    );
    let path = PathBuf::from(path);
    assert!(
        path.is_file(),
        "ANTHROPIC_SDK_PYTHON={} does not exist: run `bash tests/setup.sh` to make the venv",
        path.display()
    );
    path
}

/// Runs `tests/sdk/check_stream.py` on a captured body and returns what it
/// printed; panics with its reason when the SDK rejects the stream (the
/// body is then kept in a file for a look).
fn sdk_check(label: &str, raw: &str) -> Value {
    let file = std::env::temp_dir().join(format!("sdk-stream-{label}-{}.sse", random_hex(6)));
    std::fs::write(&file, raw).expect("write the captured stream");
    let check = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/check_stream.py");
    let out = Command::new(sdk_python())
        .arg(&check)
        .arg(&file)
        .output()
        .expect("run the SDK check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Anthropic SDK rejects the {label} stream (kept in {}):\n{}{stdout}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&file);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("SDK check output ({e}): {stdout}"))
}

/// Scripts the answer, forcing Gemini by making Groq fail first when
/// `gemini`; returns the user's access token, conversation and marker.
async fn scripted(reply: Value, gemini: bool) -> (String, String, String) {
    let (s, id) = user_with_conversation(&json!({})).await;
    let mk = marker();
    if gemini {
        script(&mk, Some("groq"), json!({"status": 503}), 1).await;
    }
    let provider = if gemini { "gemini" } else { "groq" };
    script(&mk, Some(provider), reply, 1).await;
    (s.access, id, mk)
}

/// Streams a message, feeds the stream to the SDK and checks the rebuilt
/// message against the stored one; returns the SDK's result.
async fn stream_through_sdk(label: &str, gemini: bool, thinking: bool) -> Value {
    let mut reply = json!({
        "text": ANSWER,
        "usage": {"input_tokens": USAGE.0, "output_tokens": USAGE.1},
    });
    if thinking {
        reply["thinking"] = json!(THINKING);
    }
    let (access, id, mk) = scripted(reply, gemini).await;
    let body = json!({"content": format!("SDK {mk}"), "thinking": thinking});
    let r: SseReply = stream_message(&access, &id, &body).await;
    // The SDK's verdict first, then the contract's own grammar.
    r.assert_event_stream();
    let sdk = sdk_check(label, &r.raw);
    r.assert_complete();
    let stored = stored_answer(&access, &id, Duration::from_secs(5)).await;
    let message = &sdk["message"];

    assert_eq!(sdk["error"], Value::Null, "{sdk}");
    assert_eq!(sdk["text"], ANSWER, "{sdk}");
    assert_eq!(sdk["text"], stored["content"], "{sdk}\n{stored}");
    let want_thinking = if thinking { THINKING } else { "" };
    assert_eq!(sdk["thinking"], want_thinking, "{sdk}");
    assert_eq!(
        sdk["thinking"],
        stored["thinking"].as_str().unwrap_or(""),
        "{sdk}\n{stored}"
    );
    assert_eq!(message["id"], stored["id"], "{sdk}\n{stored}");
    assert_eq!(message["model"], stored["model"], "{sdk}\n{stored}");
    let model = if gemini {
        FALLBACK_MODEL
    } else {
        DEFAULT_MODEL
    };
    assert_eq!(message["model"], model, "{sdk}");
    assert_eq!(message["stop_reason"], "end_turn", "{sdk}");
    assert_eq!(
        message["usage"],
        json!({"input_tokens": stored["input_tokens"], "output_tokens": stored["output_tokens"]}),
        "{sdk}\n{stored}"
    );
    let kinds: Vec<&Value> = message["content"]
        .as_array()
        .unwrap_or_else(|| panic!("content is a list: {sdk}"))
        .iter()
        .map(|b| &b["type"])
        .collect();
    let want: &[&str] = if thinking {
        &["thinking", "text"]
    } else {
        &["text"]
    };
    assert_eq!(kinds, want, "{sdk}");
    sdk
}

#[tokio::test]
async fn the_sdk_rebuilds_a_plain_groq_stream() {
    stream_through_sdk("groq-plain", false, false).await;
}

#[tokio::test]
async fn the_sdk_rebuilds_a_groq_stream_with_thinking() {
    let sdk = stream_through_sdk("groq-thinking", false, true).await;
    assert_eq!(sdk["message"]["content"][0]["signature"], "", "{sdk}");
}

#[tokio::test]
async fn the_sdk_rebuilds_a_plain_gemini_stream() {
    stream_through_sdk("gemini-plain", true, false).await;
}

#[tokio::test]
async fn the_sdk_rebuilds_a_gemini_stream_with_thinking() {
    let sdk = stream_through_sdk("gemini-thinking", true, true).await;
    assert_eq!(sdk["message"]["content"][0]["signature"], "", "{sdk}");
}

#[tokio::test]
async fn the_sdk_reads_a_broken_off_stream_up_to_its_error_event() {
    let reply = json!({
        "chunks": ["One", " two", " three", " four"],
        "chunk_delay_ms": 100,
        "drop_after_chunks": 2,
    });
    let (access, id, mk) = scripted(reply, false).await;
    let r = stream_message(&access, &id, &json!({"content": format!("SDK {mk}")})).await;
    r.assert_event_stream();
    let sdk = sdk_check("groq-broken", &r.raw);
    r.assert_ends_with_error(Some("api_error"));
    assert_eq!(sdk["error"]["type"], "error", "{sdk}");
    assert_eq!(sdk["error"]["error"]["type"], "api_error", "{sdk}");
    let stored = stored_answer(&access, &id, Duration::from_secs(5)).await;
    assert_eq!(stored["status"], "incomplete", "{stored}");
    assert_eq!(sdk["text"], "One two", "{sdk}");
    assert_eq!(sdk["text"], stored["content"], "{sdk}\n{stored}");
    assert_eq!(sdk["message"]["id"], stored["id"], "{sdk}\n{stored}");
}

#[tokio::test]
async fn the_sdk_reads_the_error_event_when_every_provider_fails() {
    let (access, id, mk) = scripted(json!({"status": 500}), true).await;
    let r = stream_message(&access, &id, &json!({"content": format!("SDK {mk}")})).await;
    r.assert_event_stream();
    let sdk = sdk_check("all-failed", &r.raw);
    r.assert_ends_with_error(Some("overloaded_error"));
    assert_eq!(sdk["error"]["error"]["type"], "overloaded_error", "{sdk}");
    assert_eq!(sdk["message"], Value::Null, "{sdk}");
    assert_eq!(sdk["text"], "", "{sdk}");
}
