//! `GET /docs` and `GET /redoc`: HTML pages that present `/openapi.json`.

use worker::Response;

use crate::http::ctx::Ctx;
use crate::http::ApiError;

/// The `/docs` page.
pub const SWAGGER_UI: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Conversation API</title></head>
<body>
<h1>Conversation API</h1>
<p>The API's contract is the OpenAPI 3.1 document at <a href="/openapi.json">/openapi.json</a>.</p>
</body>
</html>
"#;

/// The `/redoc` page.
pub const REDOC: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Conversation API reference</title></head>
<body>
<h1>Conversation API reference</h1>
<p>The API's contract is the OpenAPI 3.1 document at <a href="/openapi.json">/openapi.json</a>.</p>
</body>
</html>
"#;

/// An HTML page, `text/html; charset=utf-8`.
fn html(page: &str) -> Result<Response, ApiError> {
    let resp = Response::ok(page)?;
    resp.headers()
        .set("Content-Type", "text/html; charset=utf-8")?;
    Ok(resp)
}

/// Serves the `/docs` page.
pub async fn swagger_ui(_ctx: Ctx) -> Result<Response, ApiError> {
    html(SWAGGER_UI)
}

/// Serves the `/redoc` page.
pub async fn redoc(_ctx: Ctx) -> Result<Response, ApiError> {
    html(REDOC)
}
