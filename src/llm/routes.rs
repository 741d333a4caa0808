//! `GET /api/v1/models`: the catalogue, public.

use serde_json::json;
use worker::Response;

use super::catalogue::listing;
use crate::http::ctx::Ctx;
use crate::http::{respond, ApiError};

/// Lists every model with the deployment's limits, default and fallback.
pub async fn models(ctx: Ctx) -> Result<Response, ApiError> {
    let config = ctx.config()?;
    let data = listing(&config.default_model, &config.fallback_model, |m| {
        config.limits(m.id)
    });
    Ok(respond::json(200, &json!({ "data": data }))?)
}
