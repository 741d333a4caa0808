//! One provider request, from arrival to answer: record it, check the key
//! and body, pick a script, then answer with an error, a whole body or a
//! stream. The provider-specific parts live in `groq` and `gemini`.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use hyper::{HeaderMap, Response, StatusCode};
use serde_json::Value;
use tokio::time::sleep;

use super::body::{self, ResponseBody};
use super::plan::{Frame, FrameKind, PlanRequest, ReplyPlan, WireFormat};
use super::record::{RecordedRequest, Tracker};
use super::script::{ProviderKind, Reply};
use super::state::State;
use super::stream::{self, Pacing, MAX_STALL};
use super::{gemini, groq, query};

/// What the stand-in needs to know about a valid provider request.
#[derive(Debug, Clone)]
pub struct Call {
    /// The model id asked for.
    pub model: String,
    /// A streamed answer was asked for.
    pub stream: bool,
    /// Groq's `stream_options.include_usage`.
    pub include_usage: bool,
    /// The inputs of the reply plan.
    pub request: PlanRequest,
}

/// A provider request as read off the connection.
#[derive(Debug)]
pub struct Incoming {
    /// The provider its path addressed.
    pub provider: ProviderKind,
    /// The path without the query.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// Request headers.
    pub headers: HeaderMap,
    /// The raw request body.
    pub body: Bytes,
}

/// A request turned away before any script applies.
struct Rejection {
    status: u16,
    message: Option<String>,
}

impl Rejection {
    fn new(status: u16, message: impl Into<Option<String>>) -> Self {
        Rejection {
            status,
            message: message.into(),
        }
    }
}

/// Answers one provider request.
pub async fn handle(state: Arc<State>, incoming: Incoming) -> io::Result<Response<ResponseBody>> {
    let raw = String::from_utf8_lossy(&incoming.body).into_owned();
    let path = match &incoming.query {
        Some(query) => format!("{}?{query}", incoming.path),
        None => incoming.path.clone(),
    };
    let headers = header_map(&incoming.headers);
    let record = RecordedRequest::new(incoming.provider, path, headers, raw.clone());
    let tracker = state.log.record(record);
    let json: Option<Value> = serde_json::from_slice(&incoming.body).ok();
    let (model, stream) = target(&incoming, json.as_ref());
    tracker.describe(model.as_deref(), stream);
    let model = model.unwrap_or_default();

    let call = match read(&incoming, json.as_ref()) {
        Ok(call) => call,
        Err(rejection) => {
            let reply = Reply::default();
            let message = rejection.message.as_deref();
            return Ok(error(
                &incoming,
                rejection.status,
                &model,
                &reply,
                message,
                tracker,
            ));
        }
    };
    let script = state.scripts.take(incoming.provider, &call.model, &raw);
    let reply = match script {
        Some((id, reply)) => {
            tracker.script(id);
            reply
        }
        None => Arc::new(Reply::default()),
    };

    if reply.stall_before_headers {
        // Cancelled (and so recorded as a disconnect) when the client leaves.
        sleep(MAX_STALL).await;
        tracker.aborted();
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "provider stand-in: stall_before_headers timed out",
        ));
    }
    if let Some(delay) = reply.first_byte_delay_ms {
        sleep(Duration::from_millis(delay)).await;
    }
    match reply.status {
        Some(status) if status != 200 => {
            Ok(error(&incoming, status, &call.model, &reply, None, tracker))
        }
        _ => Ok(answer(&state, &incoming, &call, &reply, tracker)),
    }
}

/// The model and stream flag, as far as they can be read.
fn target(incoming: &Incoming, json: Option<&Value>) -> (Option<String>, bool) {
    match incoming.provider {
        ProviderKind::Groq => (
            json.and_then(|body| body.get("model"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            json.and_then(|body| body.get("stream"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
        ),
        ProviderKind::Gemini => match gemini_target(incoming) {
            Some((model, stream)) => (Some(model), stream),
            None => (None, false),
        },
    }
}

fn gemini_target(incoming: &Incoming) -> Option<(String, bool)> {
    gemini::parse_path(incoming.path.strip_prefix(gemini::PREFIX)?)
}

/// Checks the key, the path and the body, in the providers' order.
fn read(incoming: &Incoming, json: Option<&Value>) -> Result<Call, Rejection> {
    let query = incoming.query.as_deref();
    let call = match incoming.provider {
        ProviderKind::Groq => {
            if !groq::authorized(&incoming.headers) {
                return Err(Rejection::new(401, None));
            }
            let body = json.ok_or_else(|| {
                Rejection::new(
                    400,
                    "We could not parse the JSON body of your request.".to_owned(),
                )
            })?;
            groq::parse(body).map_err(|message| Rejection::new(400, message))?
        }
        ProviderKind::Gemini => {
            if !gemini::authorized(&incoming.headers, query) {
                return Err(Rejection::new(401, None));
            }
            let (model, stream) = gemini_target(incoming)
                .ok_or_else(|| Rejection::new(404, "Method not found.".to_owned()))?;
            let body = json
                .ok_or_else(|| Rejection::new(400, "Invalid JSON payload received.".to_owned()))?;
            gemini::parse(body, model, stream).map_err(|message| Rejection::new(400, message))?
        }
    };
    let retired = match incoming.provider {
        ProviderKind::Groq => groq::is_retired(&call.model),
        ProviderKind::Gemini => gemini::is_retired(&call.model),
    };
    if retired {
        return Err(Rejection::new(404, None));
    }
    Ok(call)
}

/// An error answer: the scripted `error_body` or the provider's shape.
fn error(
    incoming: &Incoming,
    status: u16,
    model: &str,
    reply: &Reply,
    message: Option<&str>,
    tracker: Tracker,
) -> Response<ResponseBody> {
    let retry_after = reply.retry_after;
    let body = match &reply.error_body {
        Some(raw) => raw.to_string(),
        None => match incoming.provider {
            ProviderKind::Groq => groq::error_body(status, model, retry_after, message),
            ProviderKind::Gemini => gemini::error_body(status, model, retry_after, message),
        },
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = body::json_text(status, body);
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    tracker.status(status.as_u16());
    tracker.completed();
    response
}

/// A successful answer, whole or streamed.
fn answer(
    state: &State,
    incoming: &Incoming,
    call: &Call,
    reply: &Reply,
    tracker: Tracker,
) -> Response<ResponseBody> {
    let plan = ReplyPlan::build(&call.request, Some(reply));
    let unique = state.unique_id();
    let encoder: Box<dyn WireFormat> = match incoming.provider {
        ProviderKind::Groq => Box::new(groq::Encoder::new(call, &unique, unix_seconds())),
        ProviderKind::Gemini => {
            let sse = query::param(incoming.query.as_deref(), "alt").as_deref() == Some("sse");
            Box::new(gemini::Encoder::new(call, &unique, sse))
        }
    };
    tracker.status(200);
    let pacing = Pacing {
        chunk_delay: plan.chunk_delay,
        drop_after: plan.drop_after,
        stall_after: plan.stall_after,
    };
    if call.stream {
        let frames = encoder.stream(&plan);
        let mut response = Response::new(stream::spawn(frames, pacing, tracker));
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(encoder.stream_content_type()),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return response;
    }
    let whole = encoder.complete(&plan);
    if pacing.drop_after.is_none() && pacing.stall_after.is_none() {
        tracker.completed();
        return body::json_text(StatusCode::OK, whole);
    }
    // A scripted drop or stall of a whole body: send its first half, then cut.
    let text = Bytes::from(whole);
    let half = text.slice(..text.len() / 2);
    let pacing = Pacing {
        chunk_delay: Duration::ZERO,
        drop_after: pacing.drop_after.map(|_| 1),
        stall_after: pacing.stall_after.map(|_| 1),
    };
    let frames = vec![Frame::new(FrameKind::Content, half)];
    let mut response = Response::new(stream::spawn(frames, pacing, tracker));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Headers as a map of names (hyper keeps them lowercase) to values, repeats
/// joined by ", ".
fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        map.entry(name.as_str().to_owned())
            .and_modify(|existing| {
                existing.push_str(", ");
                existing.push_str(&value);
            })
            .or_insert(value);
    }
    map
}
