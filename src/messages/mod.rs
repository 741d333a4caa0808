//! Messages: the SQL, the history route, and sending (one answer produced by
//! the providers, relayed as a stream or returned whole).

pub mod answer;
pub mod context;
pub mod generate;
pub mod idempotency;
pub mod input;
mod prepare;
mod relay;
pub mod repo;
pub mod routes;
pub mod send;
pub mod store;
pub mod title;
