//! What a client may send to create or change a conversation, validated on
//! construction ("parse, don't validate"): a value of these types is always
//! acceptable to store.

use serde_json::{Map, Value};

use crate::http::body::Fields;
use crate::http::ApiError;
use crate::llm::catalogue;

/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest system prompt, in characters.
pub const MAX_SYSTEM_PROMPT: usize = 8_000;
/// Most metadata keys.
pub const MAX_METADATA_KEYS: usize = 16;
/// Longest metadata key, in characters.
pub const MAX_METADATA_KEY: usize = 64;
/// Longest metadata value, in characters.
pub const MAX_METADATA_VALUE: usize = 512;

/// A validated new conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct NewConversation {
    /// Trimmed title, `None` when absent or blank.
    pub title: Option<String>,
    /// A catalogue model id.
    pub model: String,
    /// System prompt, `None` when absent or empty.
    pub system_prompt: Option<String>,
    /// A JSON object of string values.
    pub metadata: Value,
}

/// A validated change: `None` leaves a field alone; for nullable fields
/// `Some(None)` clears it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Patch {
    /// New title, or clear it.
    pub title: Option<Option<String>>,
    /// New model.
    pub model: Option<String>,
    /// New system prompt, or clear it.
    pub system_prompt: Option<Option<String>>,
    /// Replacement metadata object.
    pub metadata: Option<Value>,
}

impl Patch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Patch::default()
    }
}

/// Validates a create body; `default_model` fills a missing `model`.
pub fn new_conversation(
    body: Map<String, Value>,
    default_model: &str,
) -> Result<NewConversation, ApiError> {
    let mut f = Fields::new(body);
    let title = nullable_text(&mut f, "title", MAX_TITLE, true).flatten();
    let model = match f.take("model") {
        None | Some(Value::Null) => Some(default_model.to_string()),
        Some(v) => model(&mut f, v),
    };
    let system_prompt = nullable_text(&mut f, "system_prompt", MAX_SYSTEM_PROMPT, false).flatten();
    let metadata = match f.take("metadata") {
        None | Some(Value::Null) => Some(Value::Object(Map::new())),
        Some(v) => metadata(&mut f, v),
    };
    let built = model
        .zip(metadata)
        .map(|(model, metadata)| NewConversation {
            title,
            model,
            system_prompt,
            metadata,
        });
    f.finish(built)
}

/// Validates a patch body.
pub fn patch(body: Map<String, Value>) -> Result<Patch, ApiError> {
    let mut f = Fields::new(body);
    let title = nullable_text(&mut f, "title", MAX_TITLE, true);
    let model = match f.take("model") {
        None => None,
        Some(Value::Null) => {
            f.error("model", "cannot be null");
            None
        }
        Some(v) => model(&mut f, v),
    };
    let system_prompt = nullable_text(&mut f, "system_prompt", MAX_SYSTEM_PROMPT, false);
    let metadata = match f.take("metadata") {
        None => None,
        Some(Value::Null) => Some(Value::Object(Map::new())),
        Some(v) => metadata(&mut f, v),
    };
    f.finish(Some(Patch {
        title,
        model,
        system_prompt,
        metadata,
    }))
}

/// A nullable text field: `None` absent, `Some(None)` null or blank,
/// `Some(Some(text))` otherwise. Records an error for wrong types or length.
fn nullable_text(f: &mut Fields, field: &str, max: usize, trim: bool) -> Option<Option<String>> {
    match f.take(field) {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => {
            let s = if trim { s.trim().to_string() } else { s };
            if s.chars().count() > max {
                f.error(field, format!("must be at most {max} characters"));
                None
            } else if s.trim().is_empty() {
                Some(None)
            } else {
                Some(Some(s))
            }
        }
        Some(_) => {
            f.error(field, "must be a string or null");
            None
        }
    }
}

fn model(f: &mut Fields, v: Value) -> Option<String> {
    match v {
        Value::String(id) if catalogue::find(&id).is_some() => Some(id),
        Value::String(id) => {
            f.error(
                "model",
                format!("{id:?} is not a model listed by /api/v1/models"),
            );
            None
        }
        _ => {
            f.error("model", "must be a string");
            None
        }
    }
}

fn metadata(f: &mut Fields, v: Value) -> Option<Value> {
    let Value::Object(map) = v else {
        f.error("metadata", "must be a JSON object");
        return None;
    };
    if map.len() > MAX_METADATA_KEYS {
        f.error("metadata", "must have at most 16 keys");
        return None;
    }
    for (key, value) in &map {
        let key_len = key.chars().count();
        if key_len == 0 || key_len > MAX_METADATA_KEY {
            f.error("metadata", "keys must be 1 to 64 characters");
            return None;
        }
        match value {
            Value::String(s) if s.chars().count() <= MAX_METADATA_VALUE => {}
            Value::String(_) => {
                f.error(
                    format!("metadata.{key}").as_str(),
                    "must be at most 512 characters",
                );
                return None;
            }
            _ => {
                f.error(format!("metadata.{key}").as_str(), "must be a string");
                return None;
            }
        }
    }
    Some(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn fields_of(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Validation(d) => d.into_iter().map(|e| e.field).collect(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = new_conversation(obj(json!({})), "openai/gpt-oss-20b").unwrap();
        assert_eq!(c.title, None);
        assert_eq!(c.model, "openai/gpt-oss-20b");
        assert_eq!(c.metadata, json!({}));
    }

    #[test]
    fn titles_are_trimmed_and_blank_is_none() {
        let c = new_conversation(obj(json!({"title": "  Hi  "})), "openai/gpt-oss-20b").unwrap();
        assert_eq!(c.title.as_deref(), Some("Hi"));
        let c = new_conversation(obj(json!({"title": "   "})), "openai/gpt-oss-20b").unwrap();
        assert_eq!(c.title, None);
    }

    #[test]
    fn violations_name_their_fields() {
        let err = new_conversation(
            obj(json!({
                "title": "x".repeat(201),
                "model": "gpt-5",
                "system_prompt": 5,
                "metadata": [],
            })),
            "openai/gpt-oss-20b",
        )
        .unwrap_err();
        assert_eq!(
            fields_of(err),
            ["title", "model", "system_prompt", "metadata"]
        );
    }

    #[test]
    fn metadata_limits() {
        let many: Map<String, Value> = (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
        let ok: Map<String, Value> = (0..16).map(|i| (format!("k{i}"), json!("v"))).collect();
        let m = "openai/gpt-oss-20b";
        assert!(new_conversation(obj(json!({"metadata": ok})), m).is_ok());
        assert!(new_conversation(obj(json!({"metadata": many})), m).is_err());
        assert!(new_conversation(obj(json!({"metadata": {"k": 3}})), m).is_err());
        assert!(new_conversation(obj(json!({"metadata": {"k": "v".repeat(513)}})), m).is_err());
        assert!(new_conversation(obj(json!({"metadata": {"k".repeat(65): "v"}})), m).is_err());
        assert!(new_conversation(obj(json!({"metadata": {"": "v"}})), m).is_err());
    }

    #[test]
    fn patches() {
        assert!(patch(Map::new()).unwrap().is_empty());
        let p = patch(obj(json!({"title": null, "system_prompt": "be brief"}))).unwrap();
        assert_eq!(p.title, Some(None));
        assert_eq!(p.system_prompt, Some(Some("be brief".into())));
        assert_eq!(
            fields_of(patch(obj(json!({"model": null}))).unwrap_err()),
            ["model"]
        );
        let long = patch(obj(json!({"system_prompt": "x".repeat(8_001)}))).unwrap_err();
        assert_eq!(fields_of(long), ["system_prompt"]);
    }
}
