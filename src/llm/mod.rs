//! Language models: the catalogue (one table of every model the API
//! offers), provider request builders, the fallback plan, token counts and the
//! context window, and the client that streams answers.

pub mod bpe;
pub mod catalogue;
pub mod chat;
pub mod client;
pub mod fallback;
pub mod gemini;
pub mod groq;
pub mod limits;
pub mod pretokenize;
pub mod routes;
pub mod tokenizer;
pub mod tokens;
pub mod window;
