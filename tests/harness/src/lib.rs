//! Test and development harness for Conversation API.
pub mod migrate;
pub mod procs;
pub mod stack;
pub mod standin;
