//! Encoding our output as Anthropic's Messages stream.
//!
//! Every event is `event: NAME\ndata: JSON\n\n` where the JSON's `type` is
//! `NAME`. The sequence is `message_start`; per content block
//! `content_block_start`, `content_block_delta`…, `content_block_stop`;
//! `message_delta`; `message_stop`. `ping` may appear anywhere; `error` ends
//! the stream. JSON is written with serde so escaping is right, and with
//! derived structs so keys keep the documented order.
//!
//! The shapes are those of Anthropic's published stream types (the official
//! SDK validates them): a thinking block starts with an empty `signature`
//! and, as in Anthropic's streams, gets a `signature_delta` just before its
//! `content_block_stop`. Our reasoning comes from other providers, so there
//! is nothing to sign: the signature is always [`THINKING_SIGNATURE`].

use serde::Serialize;

use super::StopReason;

/// The `signature` of every thinking block: empty, since the reasoning was
/// not produced by Anthropic and cannot be verified by it.
pub const THINKING_SIGNATURE: &str = "";

/// Stateful encoder of one assistant message's event stream.
///
/// The methods return the SSE text to send (possibly several events, or an
/// empty string when there is nothing to send). Content methods called
/// before [`start`](Self::start) emit `message_start` first; after
/// [`finish`](Self::finish) or [`error`](Self::error) every method returns an
/// empty string.
#[derive(Debug, Clone)]
pub struct Encoder {
    message_id: String,
    model: String,
    input_tokens: u32,
    /// Prompt tokens as the provider reported them, for `message_delta`.
    reported_input_tokens: Option<u32>,
    started: bool,
    closed: bool,
    /// The open block: its kind and index.
    open: Option<(BlockKind, u32)>,
    /// The index the next opened block gets.
    next_index: u32,
    text: String,
    thinking: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Thinking,
    Text,
}

/// Every event we emit; the serde tag is both `type` and the event name.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: StartMessage<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: Block<'a>,
    },
    ContentBlockDelta {
        index: u32,
        delta: Delta<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: StopDelta,
        usage: OutputUsage,
    },
    MessageStop,
    Error {
        error: ErrorBody<'a>,
    },
    Ping,
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
            Event::Error { .. } => "error",
            Event::Ping => "ping",
        }
    }

    /// The SSE text of this event.
    fn encode(&self) -> String {
        let name = self.name();
        let data =
            serde_json::to_string(self).unwrap_or_else(|_| format!("{{\"type\":\"{name}\"}}"));
        format!("event: {name}\ndata: {data}\n\n")
    }
}

#[derive(Serialize)]
struct StartMessage<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [(); 0],
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'static str>,
    usage: StartUsage,
}

#[derive(Serialize)]
struct StartUsage {
    input_tokens: u32,
    output_tokens: u32,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Thinking {
        thinking: &'a str,
        signature: &'static str,
    },
    Text {
        text: &'a str,
    },
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum Delta<'a> {
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'static str },
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: Option<&'static str>,
}

/// `message_delta.usage`: cumulative counts; `input_tokens` only when the
/// provider reported them (the SDK then keeps them over `message_start`'s
/// estimate).
#[derive(Serialize)]
struct OutputUsage {
    #[serde(skip_serializing_if = "Option::is_none")]
    input_tokens: Option<u32>,
    output_tokens: u32,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

impl Encoder {
    /// An encoder for the assistant message `message_id` answered by `model`
    /// with `input_tokens` prompt tokens (reported in `message_start`).
    pub fn new(message_id: &str, model: &str, input_tokens: u32) -> Encoder {
        Encoder {
            message_id: message_id.to_string(),
            model: model.to_string(),
            input_tokens,
            reported_input_tokens: None,
            started: false,
            closed: false,
            open: None,
            next_index: 0,
            text: String::new(),
            thinking: String::new(),
        }
    }

    /// `message_start` (empty if already sent or the stream is over).
    pub fn start(&mut self) -> String {
        if self.started || self.closed {
            return String::new();
        }
        self.started = true;
        Event::MessageStart {
            message: StartMessage {
                id: &self.message_id,
                kind: "message",
                role: "assistant",
                model: &self.model,
                content: [],
                stop_reason: None,
                stop_sequence: None,
                usage: StartUsage {
                    input_tokens: self.input_tokens,
                    output_tokens: 0,
                },
            },
        }
        .encode()
    }

    /// A thinking delta, opening a `thinking` block first if the open block
    /// is not one (closing an open text block). Empty `text` sends nothing.
    pub fn thinking(&mut self, text: &str) -> String {
        self.delta(BlockKind::Thinking, text)
    }

    /// A text delta, closing an open thinking block and opening a `text`
    /// block first if needed. Empty `text` sends nothing.
    pub fn text(&mut self, text: &str) -> String {
        self.delta(BlockKind::Text, text)
    }

    /// Ends the message: closes the open block (or, if no block was ever
    /// opened, sends an empty text block), then `message_delta` with
    /// `stop` and `output_tokens`, then `message_stop`.
    pub fn finish(&mut self, stop: StopReason, output_tokens: u32) -> String {
        if self.closed {
            return String::new();
        }
        let mut out = self.start();
        if self.next_index == 0 {
            out.push_str(&self.open_block(BlockKind::Text));
        }
        out.push_str(&self.close_block());
        out.push_str(
            &Event::MessageDelta {
                delta: StopDelta {
                    stop_reason: stop.as_str(),
                    stop_sequence: None,
                },
                usage: OutputUsage {
                    input_tokens: self.reported_input_tokens,
                    output_tokens,
                },
            }
            .encode(),
        );
        out.push_str(&Event::MessageStop.encode());
        self.closed = true;
        out
    }

    /// An `error` event (`{"type":"error","error":{"type":…,"message":…}}`),
    /// e.g. `("overloaded_error", "Overloaded")`. Nothing is sent after it.
    pub fn error(&mut self, error_type: &str, message: &str) -> String {
        if self.closed {
            return String::new();
        }
        self.closed = true;
        self.open = None;
        Encoder::error_event(error_type, message)
    }

    /// An `error` event on its own, for a stream whose encoder is gone
    /// (e.g. the answer could not be stored after the relay ended).
    pub fn error_event(error_type: &str, message: &str) -> String {
        Event::Error {
            error: ErrorBody {
                kind: error_type,
                message,
            },
        }
        .encode()
    }

    /// Notes the prompt tokens the provider reported; `message_delta` then
    /// carries them (`message_start` could only send an estimate).
    pub fn report_input_tokens(&mut self, input_tokens: u32) {
        self.reported_input_tokens = Some(input_tokens);
    }

    /// A `ping` event (keep-alive).
    pub fn ping() -> String {
        Event::Ping.encode()
    }

    /// All answer text encoded so far.
    pub fn text_so_far(&self) -> &str {
        &self.text
    }

    /// All thinking encoded so far.
    pub fn thinking_so_far(&self) -> &str {
        &self.thinking
    }

    fn delta(&mut self, kind: BlockKind, text: &str) -> String {
        if self.closed || text.is_empty() {
            return String::new();
        }
        let mut out = self.start();
        let index = match self.open {
            Some((open, index)) if open == kind => index,
            _ => {
                out.push_str(&self.close_block());
                out.push_str(&self.open_block(kind));
                self.next_index - 1
            }
        };
        let delta = match kind {
            BlockKind::Thinking => {
                self.thinking.push_str(text);
                Delta::Thinking { thinking: text }
            }
            BlockKind::Text => {
                self.text.push_str(text);
                Delta::Text { text }
            }
        };
        out.push_str(&Event::ContentBlockDelta { index, delta }.encode());
        out
    }

    fn open_block(&mut self, kind: BlockKind) -> String {
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((kind, index));
        let content_block = match kind {
            BlockKind::Thinking => Block::Thinking {
                thinking: "",
                signature: THINKING_SIGNATURE,
            },
            BlockKind::Text => Block::Text { text: "" },
        };
        Event::ContentBlockStart {
            index,
            content_block,
        }
        .encode()
    }

    /// Closes the open block; a thinking block gets its `signature_delta`
    /// first.
    fn close_block(&mut self) -> String {
        let Some((kind, index)) = self.open.take() else {
            return String::new();
        };
        let mut out = String::new();
        if kind == BlockKind::Thinking {
            let delta = Delta::Signature {
                signature: THINKING_SIGNATURE,
            };
            out.push_str(&Event::ContentBlockDelta { index, delta }.encode());
        }
        out.push_str(&Event::ContentBlockStop { index }.encode());
        out
    }
}

#[cfg(test)]
#[path = "anthropic_tests.rs"]
mod tests;
