//! The OpenAPI document (`src/docs/openapi.json`) as a test oracle: its
//! operations and path templates, JSON Schema (2020-12) validation of
//! instances against its schemas, and the check of a real response against
//! what the document promises for its (method, path template, status).
//!
//! The document is registered whole as one schema resource, so the
//! `#/components/...` references inside it resolve offline.

mod coverage;
mod examples;

use std::sync::OnceLock;

use jsonschema::{Draft, Registry};
use serde_json::Value;

pub use coverage::{missing_operations, record_seen, SEEN_FILE_VAR};

/// The document's text, as the worker embeds it.
pub const DOCUMENT: &str = include_str!("../../../../src/docs/openapi.json");

/// Path prefixes of the Workers static assets (`build/assets/…`): files,
/// not API operations, so no response under them is checked.
pub const STATIC_PREFIXES: [&str; 2] = ["/docs/", "/tokenizers/"];

/// The URI the document is registered under.
const BASE: &str = "urn:conversation-api:openapi";

/// One operation of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Upper-case HTTP method.
    pub method: String,
    /// The path template, e.g. `/api/v1/conversations/{id}`.
    pub path: String,
    /// Its `operationId`.
    pub operation_id: String,
}

/// The parsed document and its schema registry.
pub struct Spec {
    doc: Value,
    registry: Registry<'static>,
}

/// The committed document, parsed once (panics when it is not valid JSON).
pub fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| Spec::parse(DOCUMENT).unwrap_or_else(|e| panic!("openapi.json: {e}")))
}

/// Escapes one JSON Pointer segment.
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Whether a concrete path matches a template (`{name}` is one non-empty segment).
pub fn matches_template(template: &str, path: &str) -> bool {
    let (want, have): (Vec<&str>, Vec<&str>) =
        (template.split('/').collect(), path.split('/').collect());
    want.len() == have.len()
        && want.iter().zip(&have).all(|(w, h)| {
            if w.starts_with('{') && w.ends_with('}') {
                !h.is_empty()
            } else {
                w == h
            }
        })
}

/// The JSON `data` of every complete Server-Sent Event frame in `text`.
pub fn sse_data(text: &str) -> Vec<Result<Value, String>> {
    sse_frames(text)
        .iter()
        .map(|frame| {
            let data = frame["data"].as_str().unwrap_or_default();
            serde_json::from_str(data).map_err(|e| format!("event data {data:?}: {e}"))
        })
        .collect()
}

/// Every complete Server-Sent Event frame in `text` with data, as the
/// object of its fields the document describes (OpenAPI 3.2's reading of
/// `text/event-stream`): `{"event": name, "data": text}`, `event` only
/// when the frame names one.
pub fn sse_frames(text: &str) -> Vec<Value> {
    let text = text.replace('\r', "");
    let complete = text.rfind("\n\n").map_or("", |end| &text[..end]);
    complete
        .split("\n\n")
        .filter_map(|frame| {
            let field = |name: &str| -> Vec<&str> {
                frame
                    .lines()
                    .filter_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect()
            };
            let data = field("data");
            (!data.is_empty()).then(|| {
                let mut object = serde_json::Map::new();
                if let Some(event) = field("event").last() {
                    object.insert("event".into(), Value::from(*event));
                }
                object.insert("data".into(), Value::from(data.join("\n")));
                Value::Object(object)
            })
        })
        .collect()
}

impl Spec {
    /// Parses the document and registers it for reference resolution.
    pub fn parse(text: &str) -> Result<Spec, String> {
        let doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let registry = Registry::new()
            .draft(Draft::Draft202012)
            .add(BASE, doc.clone())
            .and_then(|r| r.prepare())
            .map_err(|e| e.to_string())?;
        Ok(Spec { doc, registry })
    }

    /// The document itself.
    pub fn doc(&self) -> &Value {
        &self.doc
    }

    /// Every operation, in document order.
    pub fn operations(&self) -> Vec<Operation> {
        let mut ops = Vec::new();
        for (path, item) in self.doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                    ops.push(Operation {
                        method: method.to_uppercase(),
                        path: path.clone(),
                        operation_id: id.to_string(),
                    });
                }
            }
        }
        ops
    }

    /// The template of the document's paths that `path` (no query) matches.
    pub fn template_for(&self, path: &str) -> Option<&str> {
        self.doc["paths"]
            .as_object()?
            .keys()
            .find(|t| matches_template(t, path))
            .map(String::as_str)
    }

    /// Follows a local `$ref` (one level, as response objects use it).
    fn deref<'a>(&'a self, pointer: String, node: &'a Value) -> (String, &'a Value) {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let target = r.trim_start_matches('#').to_string();
                let value = self.doc.pointer(&target).unwrap_or(&Value::Null);
                (target, value)
            }
            None => (pointer, node),
        }
    }

    /// Validates `instance` against the schema at `pointer` in the document.
    pub fn validate_at(&self, pointer: &str, instance: &Value) -> Result<(), String> {
        let schema = self
            .doc
            .pointer(pointer)
            .ok_or_else(|| format!("no schema at {pointer}"))?;
        self.validate(schema, instance)
            .map_err(|e| format!("against {pointer}: {e}"))
    }

    /// Validates `instance` against `schema`, a schema of (or shaped like
    /// one of) the document: its local references point into the document.
    pub fn validate(&self, schema: &Value, instance: &Value) -> Result<(), String> {
        let schema = absolute_refs(schema);
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_registry(&self.registry)
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| format!("the schema does not compile: {e}"))?;
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("at '{}': {e}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("{}; instance: {instance}", errors.join("; ")))
        }
    }

    /// Validates one event-stream frame (see [`sse_frames`]) against the
    /// per-event `schema`, and its `data` as JSON against the schema's
    /// `data.contentSchema` (which JSON Schema only annotates), with the
    /// data's `type` equal to the frame's `event` name.
    pub fn validate_frame(&self, schema: &Value, frame: &Value) -> Result<(), String> {
        self.validate(schema, frame)?;
        let (_, object) = self.deref(String::new(), schema);
        let content = &object["properties"]["data"]["contentSchema"];
        if content.is_null() {
            return Err(format!(
                "the event schema has no data.contentSchema: {object}"
            ));
        }
        let text = frame["data"].as_str().unwrap_or_default();
        let data: Value =
            serde_json::from_str(text).map_err(|e| format!("event data {text:?}: {e}"))?;
        self.validate(content, &data)?;
        if data["type"] != frame["event"] {
            return Err(format!(
                "event {} carries data of type {}",
                frame["event"], data["type"]
            ));
        }
        Ok(())
    }

    /// Checks one real response against the document: the operation of
    /// `method` and `path` must document `status`, its required headers
    /// (`present` says whether the response has a header), its media type
    /// and its body's schema (every event of an event stream). A path no
    /// template matches must be a 404 and a method the path lacks a 405, both
    /// in the error envelope. Returns the operation's id, `None` for those,
    /// for `OPTIONS` and for the static assets ([`STATIC_PREFIXES`]).
    pub fn check_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        content_type: &str,
        present: impl Fn(&str) -> bool,
        body: &str,
    ) -> Result<Option<String>, String> {
        let path = path.split('?').next().unwrap_or_default();
        if method.eq_ignore_ascii_case("OPTIONS")
            || STATIC_PREFIXES.iter().any(|p| path.starts_with(p))
        {
            return Ok(None);
        }
        let op = self.template_for(path).and_then(|t| {
            let op = &self.doc["paths"][t][method.to_lowercase()];
            op.is_object().then_some((t, op))
        });
        let Some((template, op)) = op else {
            let want = if self.template_for(path).is_some() {
                405
            } else {
                404
            };
            if status != want {
                return Err(format!(
                    "{method} {path}: {status}, not {want}, for a request no operation matches"
                ));
            }
            let envelope =
                serde_json::from_str(body).map_err(|e| format!("{method} {path}: {e}: {body}"))?;
            return self
                .validate_at("/components/schemas/Error", &envelope)
                .map(|()| None)
                .map_err(|e| format!("{method} {path} {status}: {e}"));
        };
        let id = op["operationId"].as_str().unwrap_or_default().to_string();
        let here = format!("{id} ({method} {path} -> {status})");
        let at = format!(
            "/paths/{}/{}/responses/{status}",
            escape(template),
            method.to_lowercase()
        );
        let Some(resp) = op["responses"].get(status.to_string()) else {
            return Err(format!(
                "{here}: status {status} is not documented; body: {body}"
            ));
        };
        let (at, resp) = self.deref(at, resp);
        for (name, header) in resp["headers"].as_object().into_iter().flatten() {
            let (_, header) = self.deref(String::new(), header);
            if header["required"] == true && !present(name) {
                return Err(format!("{here}: required header {name} is missing"));
            }
        }
        let Some(content) = resp.get("content").and_then(Value::as_object) else {
            return if body.is_empty() {
                Ok(Some(id))
            } else {
                Err(format!("{here}: a body where none is documented: {body}"))
            };
        };
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_lowercase();
        if !content.contains_key(&media) {
            let documented: Vec<&String> = content.keys().collect();
            return Err(format!(
                "{here}: Content-Type {content_type:?}, documented {documented:?}"
            ));
        }
        let schema_at = format!("{at}/content/{}/schema", escape(&media));
        match media.as_str() {
            "application/json" => {
                let json =
                    serde_json::from_str(body).map_err(|e| format!("{here}: {e}: {body}"))?;
                self.validate_at(&schema_at, &json)
            }
            "text/event-stream" => {
                let schema = self.doc.pointer(&schema_at).unwrap_or(&Value::Null);
                sse_frames(body)
                    .iter()
                    .try_for_each(|frame| self.validate_frame(schema, frame))
            }
            _ if body.is_empty() => Err("an empty body".into()),
            _ => Ok(()),
        }
        .map(|()| Some(id))
        .map_err(|e| format!("{here}: {e}"))
    }
}

/// A copy of `schema` whose local references (`#/…`) name the registered
/// document, so they resolve wherever the schema is compiled.
fn absolute_refs(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match (k.as_str(), v.as_str()) {
                    ("$ref", Some(r)) if r.starts_with('#') => {
                        (k.clone(), Value::String(format!("{BASE}{r}")))
                    }
                    _ => (k.clone(), absolute_refs(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(absolute_refs).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(
        method: &str,
        path: &str,
        status: u16,
        ct: &str,
        body: &str,
    ) -> Result<Option<String>, String> {
        spec().check_response(method, path, status, ct, |_| true, body)
    }

    const ENVELOPE: &str = r#"{"type":"error","error":{"type":"not_found_error","message":"no route"},"request_id":"r"}"#;

    #[test]
    fn templates_match_whole_segments() {
        assert!(matches_template("/a/{id}/b", "/a/1/b"));
        assert!(!matches_template("/a/{id}/b", "/a//b"));
        assert!(!matches_template("/a/{id}", "/a/1/b"));
        assert_eq!(
            spec().template_for("/api/v1/conversations/x/messages"),
            Some("/api/v1/conversations/{id}/messages")
        );
    }

    #[test]
    fn responses_are_checked_against_their_operation() {
        let health = r#"{"status":"ok","version":"0.1.0"}"#;
        assert_eq!(
            check("GET", "/health?deep=0", 200, "application/json", health),
            Ok(Some("getHealth".into()))
        );
        let wrong = check(
            "GET",
            "/health",
            200,
            "application/json",
            r#"{"status":"fine","version":"1"}"#,
        );
        assert!(wrong.is_err_and(|e| e.contains("getHealth")));
        let undocumented = check("GET", "/health", 418, "application/json", ENVELOPE);
        assert!(undocumented.is_err_and(|e| e.contains("not documented")));
        assert!(check("GET", "/health", 200, "text/plain", health).is_err());
        let no_body = check("DELETE", "/api/v1/conversations/x", 204, "", "");
        assert_eq!(no_body, Ok(Some("deleteConversation".into())));
        assert!(check("DELETE", "/api/v1/conversations/x", 204, "", "{}").is_err());
        let missing_header =
            spec().check_response("GET", "/health", 200, "application/json", |_| false, health);
        assert!(missing_header.is_err_and(|e| e.contains("X-Request-Id")));
    }

    #[test]
    fn unknown_paths_and_methods_need_the_envelope() {
        assert_eq!(
            check("GET", "/nope", 404, "application/json", ENVELOPE),
            Ok(None)
        );
        assert!(check("GET", "/nope", 200, "application/json", ENVELOPE).is_err());
        assert_eq!(
            check("PUT", "/health", 405, "application/json", ENVELOPE),
            Ok(None)
        );
        assert!(check("PUT", "/health", 405, "application/json", "{}").is_err());
        assert_eq!(check("OPTIONS", "/health", 204, "", ""), Ok(None));
        let asset = check("GET", "/docs/swagger-init.js", 200, "text/javascript", "x");
        assert_eq!(asset, Ok(None), "static assets are not operations");
        assert!(check("GET", "/docsx", 200, "text/html", "x").is_err());
    }

    #[test]
    fn event_streams_are_checked_event_by_event() {
        let path = "/api/v1/conversations/x/messages/stream";
        let good = "event: ping\ndata: {\"type\":\"ping\"}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        assert_eq!(
            check("POST", path, 200, "text/event-stream; charset=utf-8", good),
            Ok(Some("streamMessage".into()))
        );
        let bad = "event: ping\ndata: {\"type\":\"pong\"}\n\n";
        assert!(check("POST", path, 200, "text/event-stream", bad).is_err());
        let misnamed = "event: ping\ndata: {\"type\":\"message_stop\"}\n\n";
        assert!(check("POST", path, 200, "text/event-stream", misnamed).is_err());
        let unnamed = "data: {\"type\":\"ping\"}\n\n";
        assert!(check("POST", path, 200, "text/event-stream", unnamed).is_err());
        assert_eq!(
            sse_frames("event: ping\r\ndata:{}\r\n\r\n"),
            [json!({"event": "ping", "data": "{}"})]
        );
        assert_eq!(
            sse_data("data: {}\n\ndata: {\"cut").len(),
            1,
            "an incomplete frame is not read"
        );
    }

    #[test]
    fn references_into_the_document_resolve() {
        let spec = spec();
        let msg = json!({"type": "error", "error": {"type": "api_error", "message": "x"}, "request_id": "r"});
        assert_eq!(
            spec.validate(&json!({"$ref": "#/components/schemas/Error"}), &msg),
            Ok(())
        );
        let bad = json!({"type": "error", "error": {"type": "teapot", "message": "x"}, "request_id": "r"});
        assert!(spec.validate_at("/components/schemas/Error", &bad).is_err());
    }
}
