//! Glue for reading requests: headers as text and JSON object bodies.

use serde_json::{Map, Value};
use worker::Request;

use super::body::{check_headers, collect_capped, parse_object};
use super::error::ApiError;

/// A header's value, if present and readable.
pub fn header(req: &Request, name: &str) -> Option<String> {
    req.headers().get(name).ok().flatten()
}

/// The decoded query parameters (last one wins when repeated).
pub fn query(req: &Request) -> Result<std::collections::HashMap<String, String>, ApiError> {
    let url = req
        .url()
        .map_err(|e| ApiError::InvalidRequest(format!("bad URL: {e}")))?;
    Ok(url.query_pairs().into_owned().collect())
}

/// Reads the body as a JSON object, enforcing `Content-Type` and the 1 MiB
/// limit (checked on the declared length and again while reading).
pub async fn read_object(req: &mut Request) -> Result<Map<String, Value>, ApiError> {
    check_headers(
        header(req, "Content-Type").as_deref(),
        header(req, "Content-Length").as_deref(),
    )?;
    // Streamed, so a chunked body (no Content-Length) stops at the cap too.
    let bytes = if req.inner().body().is_none() {
        Vec::new()
    } else {
        let chunks = req
            .stream()
            .map_err(|e| ApiError::InvalidRequest(format!("cannot read the body: {e}")))?;
        collect_capped(chunks).await?
    };
    parse_object(&bytes)
}
