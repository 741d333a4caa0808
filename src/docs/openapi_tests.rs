//! The document cannot drift from the code: it parses, is OpenAPI 3.1, its
//! references resolve, its operations are exactly the served routes with
//! the right security, and every example validates against its schema.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{fnv1a, verify, HASH, LENGTH};
use crate::app::{self, Access};

/// The committed document (the script carries only its length and hash).
const DOCUMENT: &str = include_str!("openapi.json");

fn doc() -> Value {
    serde_json::from_str(DOCUMENT).expect("openapi.json is JSON")
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every operation as `(METHOD, path, operation)`.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            assert!(METHODS.contains(&method.as_str()), "{path}: {method}");
            ops.push((method.to_uppercase(), path.clone(), op.clone()));
        }
    }
    ops
}

/// Every `$ref` in `node`, with where it is.
fn refs(node: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match node {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push((at.to_string(), r.clone())),
                    _ => refs(v, &format!("{at}/{k}"), out),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                refs(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn is_openapi_3_1() {
    let doc = doc();
    assert!(doc["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1.")));
    assert_eq!(doc["info"]["version"], crate::health::VERSION);
    assert_eq!(DOCUMENT, harness::openapi::DOCUMENT, "one file");
}

#[test]
fn every_ref_resolves() {
    let doc = doc();
    let mut found = Vec::new();
    refs(&doc, "", &mut found);
    assert!(found.len() > 100, "only {} references", found.len());
    for (at, r) in found {
        let target = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: {r} is not local"));
        assert!(doc.pointer(target).is_some(), "{at}: {r} does not resolve");
    }
}

#[test]
fn operations_are_the_route_table() {
    let doc = doc();
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let served: BTreeSet<(String, String)> = app::table()
        .iter()
        .map(|r| (r.method.to_string(), r.pattern.to_string()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
}

/// The response object of `status`, following a `$ref`.
fn response<'a>(doc: &'a Value, op: &'a Value, status: &str) -> &'a Value {
    let resp = &op["responses"][status];
    match resp.get("$ref").and_then(Value::as_str) {
        Some(r) => doc
            .pointer(r.trim_start_matches('#'))
            .unwrap_or(&Value::Null),
        None => resp,
    }
}

#[test]
fn each_operation_states_its_routes_facts() {
    let doc = doc();
    for route in app::table() {
        let op = &doc["paths"][route.pattern][route.method.to_lowercase()];
        let d = &route.doc;
        let here = format!("{} {}", route.method, route.pattern);
        assert_eq!(op["operationId"], d.operation_id, "{here}");
        assert_eq!(op["summary"], d.summary, "{here}");
        assert_eq!(op["tags"], serde_json::json!([d.tag]), "{here}");
        let security = op.get("security").unwrap_or(&doc["security"]);
        let want = match route.access {
            Access::Public => serde_json::json!([]),
            Access::AccessTokenOnly => serde_json::json!([{"bearerAuth": []}]),
            Access::AnyCredential => serde_json::json!([{"bearerAuth": []}, {"apiKeyAuth": []}]),
            Access::AnyCredentialOrEventToken => serde_json::json!(
                [{"bearerAuth": []}, {"apiKeyAuth": []}, {"eventToken": []}]
            ),
        };
        assert_eq!(security, &want, "{here}: security");
        let responses = op["responses"].as_object().expect("responses");
        let errors: BTreeSet<u16> = responses
            .keys()
            .filter(|s| !s.starts_with('2'))
            .map(|s| s.parse().expect("a status"))
            .collect();
        let want: BTreeSet<u16> = d.errors.iter().copied().collect();
        assert_eq!(errors, want, "{here}: error statuses");
        let success = responses
            .keys()
            .find(|s| s.starts_with('2'))
            .expect("a 2xx");
        let counted = response(&doc, op, success)["headers"]
            .get("X-RateLimit-Limit")
            .is_some();
        assert_eq!(counted, route.limit.is_some(), "{here}: rate-limit headers");
    }
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("schemes");
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["apiKeyAuth"]["name"], "X-API-Key");
}

#[test]
fn operation_ids_are_unique_camel_case_and_tagged() {
    let doc = doc();
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap_or_default();
        assert!(
            id.starts_with(|c: char| c.is_ascii_lowercase())
                && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{method} {path}: operationId {id:?}"
        );
        assert!(ids.insert(id.to_string()), "{id} twice");
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{id}: summary"
        );
        let tag = op["tags"][0].as_str().unwrap_or_default();
        assert!(tags.contains(tag), "{id}: tag {tag:?}");
    }
}

#[test]
fn every_operation_documents_its_errors_and_request_id() {
    let doc = doc();
    for (method, path, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap_or_default();
        let responses = op["responses"].as_object().expect("responses");
        assert!(responses.keys().any(|s| s.starts_with('2')), "{id}: no 2xx");
        for status in responses.keys() {
            let resp = response(&doc, &op, status);
            assert!(
                resp["headers"].get("X-Request-Id").is_some(),
                "{id} {status}: X-Request-Id"
            );
            if !status.starts_with('2') {
                let schema = resp["content"]["application/json"]["schema"]["$ref"].as_str();
                assert!(
                    matches!(
                        schema,
                        Some("#/components/schemas/Error" | "#/components/schemas/ValidationError")
                    ),
                    "{id} {status}: not the error envelope"
                );
            }
        }
        let protected = op
            .get("security")
            .is_none_or(|s| s.as_array().is_some_and(|s| !s.is_empty()));
        if protected {
            for status in ["401", "429", "500", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: no {status}"
                );
            }
        }
        if op.get("requestBody").is_some() {
            for status in ["400", "413", "422"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: no {status}"
                );
            }
        }
    }
    let too_many = &doc["components"]["responses"]["TooManyRequests"]["headers"];
    assert_eq!(
        too_many["Retry-After"]["$ref"],
        "#/components/headers/Retry-After"
    );
}

#[test]
fn sends_take_an_idempotency_key_and_the_stream_is_an_event_stream() {
    let doc = doc();
    for path in [
        "/api/v1/conversations/{id}/messages",
        "/api/v1/conversations/{id}/messages/stream",
    ] {
        let params = doc["paths"][path]["post"]["parameters"]
            .as_array()
            .expect("parameters");
        assert!(
            params
                .iter()
                .any(|p| p["$ref"] == "#/components/parameters/IdempotencyKey"),
            "{path}"
        );
    }
    let stream =
        &doc["paths"]["/api/v1/conversations/{id}/messages/stream"]["post"]["responses"]["200"];
    let schema = &stream["content"]["text/event-stream"]["schema"]["$ref"];
    assert_eq!(schema, "#/components/schemas/StreamFrame");
    let frame = &doc["components"]["schemas"]["StreamFrame"];
    assert_eq!(
        frame["properties"]["data"]["contentSchema"]["$ref"],
        "#/components/schemas/StreamEvent"
    );
    let events = doc["components"]["schemas"]["StreamEvent"]["discriminator"]["mapping"]
        .as_object()
        .expect("event mapping");
    let names: BTreeSet<&str> = events.keys().map(String::as_str).collect();
    let framed: BTreeSet<&str> = frame["properties"]["event"]["enum"]
        .as_array()
        .expect("event names")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(framed, names, "every event name is framed");
    let want = [
        "content_block_delta",
        "content_block_start",
        "content_block_stop",
        "error",
        "message_delta",
        "message_start",
        "message_stop",
        "ping",
    ];
    assert_eq!(names, want.into_iter().collect());
}

#[test]
fn examples_validate_against_their_schemas() {
    let spec = harness::openapi::spec();
    let report = spec.check_examples();
    assert!(report.failures.is_empty(), "{}", report.failures.join("\n"));
    assert!(report.checked >= 40, "only {} examples", report.checked);
    // A wrong example is caught: the check is not vacuous.
    let mut broken = spec.doc().clone();
    broken["paths"]["/api/v1/auth/me"]["get"]["responses"]["200"]["content"]["application/json"]
        ["examples"]["me"]["value"]["id"] = Value::from(7);
    let broken = harness::openapi::Spec::parse(&broken.to_string()).expect("parses");
    assert_eq!(broken.check_examples().failures.len(), 1);
}

#[test]
fn main_operations_have_examples() {
    let doc = doc();
    for (_, _, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap_or_default();
        if let Some(body) = op.get("requestBody") {
            assert!(
                body["content"]["application/json"]["examples"].is_object(),
                "{id}: request example"
            );
        }
        for (status, resp) in op["responses"].as_object().expect("responses") {
            let media = &resp["content"]["application/json"];
            if status.starts_with('2') && media.is_object() && id != "getOpenApi" {
                assert!(
                    media["examples"].is_object(),
                    "{id} {status}: response example"
                );
            }
        }
    }
}

#[test]
fn only_the_committed_document_is_served() {
    assert_eq!(LENGTH, DOCUMENT.len());
    assert_eq!(HASH, fnv1a(DOCUMENT.as_bytes()));
    assert_eq!(verify(DOCUMENT.as_bytes()), Ok(()));
    // Known FNV-1a values, so the hash is the documented one.
    assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    let mut edited = DOCUMENT.as_bytes().to_vec();
    edited[LENGTH / 2] ^= 1;
    let err = verify(&edited).unwrap_err();
    assert!(err.contains("not this build's document"), "{err}");
    assert!(verify(&DOCUMENT.as_bytes()[1..]).is_err(), "shorter");
    assert!(verify(b"").is_err(), "empty");
}
