//! Glue that turns values into Workers responses and stamps the headers
//! every response carries.

use serde::Serialize;
use worker::{Response, ResponseBody, Result};

use super::body_writer::BodyWriter;
use super::error::ApiError;
use super::headers::SECURITY_HEADERS;

/// A JSON response with `status`, `Content-Type: application/json` and
/// `Cache-Control: no-store` (API answers are per user and never cached).
pub fn json<T: Serialize>(status: u16, body: &T) -> Result<Response> {
    let resp = Response::from_json(body)?.with_status(status);
    resp.headers().set("Cache-Control", "no-store")?;
    Ok(resp)
}

/// A streamed `text/event-stream` response: `resp` with the headers of an
/// event stream (no caching, no proxy buffering).
pub fn event_stream(resp: Response) -> Result<Response> {
    let headers = resp.headers();
    for (name, value) in [
        ("Content-Type", "text/event-stream; charset=utf-8"),
        ("Cache-Control", "no-cache, no-store"),
        ("X-Accel-Buffering", "no"),
    ] {
        headers.set(name, value)?;
    }
    Ok(resp)
}

/// A `text/event-stream` response written as it is produced: the writer
/// of its body, and the response to answer with.
pub fn written_event_stream() -> Result<(BodyWriter, Response)> {
    let (writer, body) = BodyWriter::new()?;
    Ok((
        writer,
        event_stream(Response::from_body(ResponseBody::Stream(body))?)?,
    ))
}

/// An empty response (204 and the like).
pub fn empty(status: u16) -> Result<Response> {
    Ok(Response::empty()?.with_status(status))
}

/// The error envelope as a response, with the error's own extra headers.
pub fn error(err: &ApiError, request_id: &str) -> Result<Response> {
    let resp = json(err.status(), &err.envelope(request_id))?;
    for (name, value) in err.headers() {
        resp.headers().set(name, &value)?;
    }
    Ok(resp)
}

/// Adds `X-Request-Id`, the security headers and `extra` (CORS) to `resp`.
pub fn stamp(resp: &Response, request_id: &str, extra: &[(&'static str, String)]) -> Result<()> {
    let headers = resp.headers();
    headers.set("X-Request-Id", request_id)?;
    for (name, value) in SECURITY_HEADERS {
        headers.set(name, value)?;
    }
    for (name, value) in extra {
        // Several `Server-Timing` entries (rate limit, context) all count.
        if name.eq_ignore_ascii_case("Server-Timing") {
            headers.append(name, value)?;
        } else {
            headers.set(name, value)?;
        }
    }
    Ok(())
}
