//! `GET /openapi.json`: the OpenAPI 3.1 document, embedded at build time.

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
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_json() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("valid JSON");
        let version = doc["openapi"].as_str().unwrap_or_default();
        assert!(version.starts_with("3.1."), "{version}");
        assert!(doc["info"]["title"].is_string());
        assert!(doc["paths"].is_object());
    }
}
