//! Language models: the catalogue (one table of every model the API
//! offers), provider request builders, the fallback plan, and the client
//! that streams answers.

pub mod catalogue;
pub mod chat;
pub mod client;
pub mod fallback;
pub mod gemini;
pub mod groq;
pub mod routes;
