//! Conversation API: an HTTP API for AI conversations, served by a Cloudflare
//! Worker compiled to WebAssembly.
//!
//! The pure core (routing, configuration, the error envelope, header policy)
//! is plain Rust tested natively with `cargo test`; the modules that touch the
//! Workers runtime are `entry`, `respond`, `db` and the route handlers.

pub mod app;
pub mod assets;
pub mod auth;
pub mod config;
pub mod conversations;
pub mod db;
pub mod docs;
pub mod events;
pub mod health;
pub mod http;
pub mod llm;
pub mod messages;
pub mod rate_limit;
pub mod runtime;
pub mod sse;
pub mod usage;

mod entry;
#[cfg(test)]
mod props;
