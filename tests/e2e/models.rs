//! `GET /api/v1/models`: public, well formed, with the default and fallback
//! models and their terms (including the encoding their prompts are counted
//! with); every listed model can start a conversation.
//! Runs in the PostgreSQL phase.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::support::{
    create_conversation_reply, get, new_user, test_limits, Auth, DEFAULT_MODEL, FALLBACK_MODEL,
    MODELS,
};

/// The `data` list of `GET /api/v1/models`, without credentials (asserting 200).
async fn models() -> Vec<Value> {
    let r = get(MODELS).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data is a list: {}", r.text))
        .clone()
}

/// The entry for `id` (panics when absent).
fn entry<'a>(list: &'a [Value], id: &str) -> &'a Value {
    list.iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not listed: {list:?}"))
}

fn assert_price(m: &Value, field: &str, want: f64) {
    let got = m[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} is a number: {m}"));
    assert!((got - want).abs() < 1e-9, "{field}: {got} != {want}: {m}");
}

#[tokio::test]
async fn models_are_public_and_well_formed() {
    let r = get(MODELS).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.assert_common_headers();
    assert!(
        r.header("content-type").starts_with("application/json"),
        "content-type: {}",
        r.header("content-type")
    );
    let list = r.json["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data is a list: {}", r.text));
    assert!(list.len() >= 2, "{}", r.text);
    let mut ids = HashSet::new();
    for m in list {
        let id = m["id"]
            .as_str()
            .unwrap_or_else(|| panic!("id is a string: {m}"));
        assert!(!id.is_empty(), "{m}");
        assert!(ids.insert(id.to_string()), "{id} listed twice");
        assert!(
            matches!(m["provider"].as_str(), Some("groq" | "gemini")),
            "provider: {m}"
        );
        for k in ["context_window", "max_output_tokens"] {
            assert!(m[k].as_u64().is_some_and(|n| n > 0), "{k}: {m}");
        }
        for k in ["input_price_per_mtok", "output_price_per_mtok"] {
            assert!(m[k].as_f64().is_some_and(|p| p >= 0.0), "{k}: {m}");
        }
        for k in ["supports_thinking", "is_default", "is_fallback"] {
            assert!(m[k].is_boolean(), "{k}: {m}");
        }
        assert!(
            matches!(m["tokenizer"].as_str(), Some("o200k_base" | "cl100k_base")),
            "tokenizer: {m}"
        );
    }

    // Credentials change nothing.
    let s = new_user().await;
    let with = crate::support::get_as(MODELS, Auth::Bearer(&s.access)).await;
    assert_eq!(with.status, 200, "{}", with.text);
    assert_eq!(with.json["data"], r.json["data"]);
}

#[tokio::test]
async fn the_default_and_fallback_models_are_listed_with_their_terms() {
    let list = models().await;
    let defaults: Vec<&Value> = list.iter().filter(|m| m["is_default"] == true).collect();
    assert_eq!(defaults.len(), 1, "exactly one default: {list:?}");
    assert_eq!(defaults[0]["id"], DEFAULT_MODEL);
    let fallbacks: Vec<&Value> = list.iter().filter(|m| m["is_fallback"] == true).collect();
    assert_eq!(fallbacks.len(), 1, "exactly one fallback: {list:?}");
    assert_eq!(fallbacks[0]["id"], FALLBACK_MODEL);

    let groq = entry(&list, DEFAULT_MODEL);
    assert_eq!(groq["provider"], "groq", "{groq}");
    assert_eq!(groq["context_window"], 131072, "{groq}");
    assert_price(groq, "input_price_per_mtok", 0.075);
    assert_price(groq, "output_price_per_mtok", 0.30);
    assert_eq!(groq["is_fallback"], false, "{groq}");
    assert_eq!(
        groq["tokenizer"], "o200k_base",
        "gpt-oss is o200k-based: {groq}"
    );

    let gemini = entry(&list, FALLBACK_MODEL);
    assert_eq!(gemini["provider"], "gemini", "{gemini}");
    // The test worker's MODEL_LIMITS shrinks the fallback's window; the
    // listing shows the limits in force.
    let (window, max_output) = test_limits(FALLBACK_MODEL).expect("gemini has test limits");
    assert_eq!(gemini["context_window"], window, "{gemini}");
    assert_eq!(gemini["max_output_tokens"], max_output, "{gemini}");
    assert_eq!(groq["max_output_tokens"], 65536, "{groq}");
    assert_price(gemini, "input_price_per_mtok", 0.10);
    assert_price(gemini, "output_price_per_mtok", 0.40);
    assert_eq!(gemini["is_default"], false, "{gemini}");
    assert_eq!(
        gemini["tokenizer"], "cl100k_base",
        "the closest tiktoken has: {gemini}"
    );
}

#[tokio::test]
async fn every_listed_model_can_start_a_conversation() {
    let s = new_user().await;
    for m in models().await {
        let id = m["id"].as_str().unwrap_or_default();
        let r = create_conversation_reply(Auth::Bearer(&s.access), &json!({ "model": id })).await;
        assert_eq!(r.status, 201, "model {id}: {}", r.text);
        assert_eq!(r.json["model"], id, "{}", r.text);
    }
}
