//! The LLM provider stand-in: a small local HTTP server that speaks Groq's
//! (OpenAI-compatible) and Gemini's wire formats and can be scripted per test.
//!
//! Routes (all on one port, bound to 127.0.0.1 by the binary):
//! - `POST /groq/openai/v1/chat/completions` (Groq base URL
//!   `http://127.0.0.1:PORT/groq/openai/v1`),
//! - `POST /gemini/v1beta/models/{model}:generateContent` and
//!   `POST /gemini/v1beta/models/{model}:streamGenerateContent?alt=sse`
//!   (Gemini base URL `http://127.0.0.1:PORT/gemini/v1beta`),
//! - the control API under `/_control/`: register scripts ([`NewScript`])
//!   selected by a marker string in the request body, read recorded requests
//!   ([`RecordedRequest`]), health. The `control` module lists the endpoints.
//!
//! A test puts a unique marker in its message text and scripts the answer:
//!
//! ```text
//! POST /_control/scripts
//! {"contains": "t-42", "provider": "groq", "times": 1,
//!  "reply": {"text": "Hello there", "chunk_delay_ms": 50, "drop_after_chunks": 1}}
//! GET /_control/requests?contains=t-42   → {"data": [{…, "client_disconnected": true}]}
//! ```
//!
//! Requests no script matches get [`CANNED_ANSWER`], one word per chunk.
//! Token counts: prompt = words of the message texts (at least 1); output =
//! answer chunks; thinking = reasoning chunks (Groq's `completion_tokens` is
//! output + thinking).
//!
//! Start it in-process with [`serve`] (tied to the calling Tokio runtime) or
//! [`serve_in_background`] (its own thread and runtime, for a stand-in shared
//! by many tests), or run the `provider-standin` binary.

mod body;
mod control;
mod exchange;
mod gemini;
mod groq;
mod plan;
mod query;
mod record;
mod script;
mod server;
mod state;
mod stream;

pub use plan::{CANNED_ANSWER, CANNED_THINKING};
pub use record::RecordedRequest;
pub use script::{FinishReason, NewScript, ProviderKind, Reply, UsageOverride};
pub use server::{gemini_base_url, groq_base_url, serve, serve_in_background, StandIn};
