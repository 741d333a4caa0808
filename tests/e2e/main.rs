//! End-to-end tests: the built worker under `wrangler dev`, a real
//! PostgreSQL (or PGlite) behind Hyperdrive, and the provider stand-in.
//!
//! `npm test` starts that stack and runs this binary with `E2E_*`
//! variables; each module says in which phase it runs.

mod support;

mod api_keys;
mod auth;
mod context_window;
mod conversation_list;
mod conversations;
mod db_down;
mod dev_http;
mod docs_pages;
mod events;
mod fallback;
mod faults;
mod forged_input;
mod hostile_input;
mod http_basics;
mod http_transport;
mod idempotency;
mod leases;
mod load;
mod messages_list;
mod misconfig;
mod models;
mod openapi;
mod passwords;
mod provider_keys;
mod rate_limits;
mod refresh_grace;
mod refusals;
mod sdk_conformance;
mod send;
mod smoke;
mod stream;
mod thinking;
mod titles;
mod usage;
