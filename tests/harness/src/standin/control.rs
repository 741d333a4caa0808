//! The control API under `/_control/`:
//!
//! - `GET /_control/health` → `{"status":"ok"}`
//! - `POST /_control/scripts` with a [`NewScript`] → 201 `{"id":N}`
//! - `GET /_control/scripts[?contains=M]` → `{"data":[script…]}`
//! - `DELETE /_control/scripts[?contains=M]` → `{"deleted":N}` (scripts whose
//!   marker contains `M`; all without `contains`)
//! - `GET /_control/requests[?contains=M]` → `{"data":[RecordedRequest…]}`,
//!   arrival order, only requests whose raw body contains `M`
//! - `DELETE /_control/requests[?contains=M]` → `{"deleted":N}`

use hyper::{Method, Response, StatusCode};
use serde_json::{json, Value};

use super::body::{self, ResponseBody};
use super::query;
use super::script::NewScript;
use super::state::State;

/// The path prefix of the control API.
pub const PREFIX: &str = "/_control/";

/// Answers one control request.
pub fn handle(
    state: &State,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Response<ResponseBody> {
    let marker = query::param(query, "contains");
    let marker = marker.as_deref();
    let resource = path.strip_prefix(PREFIX).unwrap_or(path);
    match (method, resource.trim_end_matches('/')) {
        (&Method::GET, "health") => ok(json!({ "status": "ok" })),
        (&Method::POST, "scripts") => add_script(state, body),
        (&Method::GET, "scripts") => ok(json!({ "data": state.scripts.list(marker) })),
        (&Method::DELETE, "scripts") => ok(json!({ "deleted": state.scripts.remove(marker) })),
        (&Method::GET, "requests") => ok(json!({ "data": state.log.find(marker) })),
        (&Method::DELETE, "requests") => ok(json!({ "deleted": state.log.remove(marker) })),
        (_, "health" | "scripts" | "requests") => {
            failure(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => failure(StatusCode::NOT_FOUND, "no such control endpoint"),
    }
}

fn add_script(state: &State, body: &[u8]) -> Response<ResponseBody> {
    let spec: NewScript = match serde_json::from_slice(body) {
        Ok(spec) => spec,
        Err(err) => return failure(StatusCode::BAD_REQUEST, &format!("invalid script: {err}")),
    };
    if let Err(message) = spec.validate() {
        return failure(StatusCode::BAD_REQUEST, &message);
    }
    let id = state.scripts.add(spec);
    body::json(StatusCode::CREATED, &json!({ "id": id }))
}

fn ok(value: Value) -> Response<ResponseBody> {
    body::json(StatusCode::OK, &value)
}

fn failure(status: StatusCode, message: &str) -> Response<ResponseBody> {
    body::json(status, &json!({ "error": { "message": message } }))
}
