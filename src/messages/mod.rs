//! Messages: the SQL, the history route, and sending (one answer produced by
//! the providers, relayed as a stream or returned whole).

pub mod generate;
pub mod idempotency;
pub mod input;
pub mod repo;
pub mod routes;
pub mod send;
pub mod title;
