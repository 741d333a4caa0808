//! `GET /openapi.json`: the OpenAPI 3.1 document of the whole API
//! (`openapi.json`, kept by hand), embedded at build time as a finished
//! string.

use worker::Response;

use crate::http::ctx::Ctx;
use crate::http::ApiError;

/// The document, as committed in `src/docs/openapi.json`.
pub const DOCUMENT: &str = include_str!("openapi.json");

/// Serves [`DOCUMENT`] as `application/json`.
pub async fn serve(_ctx: Ctx) -> Result<Response, ApiError> {
    let resp = Response::ok(DOCUMENT)?;
    let headers = resp.headers();
    headers.set("Content-Type", "application/json")?;
    headers.set("Cache-Control", "no-cache")?;
    Ok(resp)
}

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod tests;
