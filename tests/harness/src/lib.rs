//! Test and development harness for Conversation API.
pub mod browser;
pub mod cluster;
pub mod conn_queue;
pub mod delay_proxy;
pub mod gateway;
pub mod load;
pub mod migrate;
pub mod openapi;
pub mod pooler;
pub mod procs;
pub mod server_timing;
pub mod stack;
pub mod standin;
pub mod supabase;
pub mod tokenizer_tables;

/// `MODEL_LIMITS` of the test worker: windows small enough that the
/// context-window tests overflow them with a few dozen messages, and
/// Gemini's (the fallback's) smaller than the Groq model's so that a
/// fallback must re-plan. The default model keeps its catalogue limits.
pub const TEST_MODEL_LIMITS: &str = "openai/gpt-oss-120b=8000/1000;gemini-2.5-flash-lite=4000/1000";
