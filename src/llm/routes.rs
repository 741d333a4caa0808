//! `GET /api/v1/models`: the catalogue, public.

use serde_json::json;
use worker::Response;

use super::catalogue::listing;
use crate::config::Config;
use crate::http::{respond, ApiError};

/// Lists every model with the deployment's limits, default and fallback.
pub fn models(config: &Config) -> Result<Response, ApiError> {
    let data = listing(&config.default_model, &config.fallback_model, |m| {
        config.limits(m.id)
    });
    respond::json(200, &json!({ "data": data })).map_err(|e| ApiError::Internal(e.to_string()))
}
