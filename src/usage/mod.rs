//! Cost tracking: the usage ledger (one row per model call, failed
//! attempts included) and `GET /api/v1/usage/stats`.

pub mod ledger;
pub mod stats;
