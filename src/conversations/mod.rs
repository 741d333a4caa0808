//! Conversations: validation of what clients send, the SQL (every query
//! filtered by owner), and the routes.

pub mod input;
pub mod owned;
pub mod repo;
pub mod routes;
