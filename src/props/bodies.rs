//! Request bodies, query parameters and headers: the JSON reader, the
//! send and conversation validators, pagination, dates, idempotency keys,
//! request ids and the other small parsers of client text.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::strategies::{json_value, object_over, text};
use super::{config, well_formed};
use crate::conversations::input::{
    self, MAX_METADATA_KEY, MAX_METADATA_KEYS, MAX_METADATA_VALUE, MAX_SYSTEM_PROMPT, MAX_TITLE,
};
use crate::conversations::owned::conversation_id;
use crate::conversations::repo::like_pattern;
use crate::http::body::{check_headers, collect_capped, parse_object, MAX_BODY_BYTES};
use crate::http::headers::{request_id, MAX_REQUEST_ID_LEN};
use crate::http::pagination::{
    parse_limit, parse_seq_cursor, parse_time_cursor, seq_cursor, time_cursor, MAX_LIMIT,
};
use crate::llm::catalogue;
use crate::messages::idempotency::{check_key, request_hash, MAX_KEY_LEN};
use crate::messages::input::{send_input, MAX_CONTENT};
use crate::messages::title;
use crate::usage::stats::date_range;

const SEND_FIELDS: &[&str] = &["content", "thinking", "model", "max_tokens", "temperature"];
const CONVERSATION_FIELDS: &[&str] = &["title", "model", "system_prompt", "metadata"];
const MODELS: &[&str] = &["openai/gpt-oss-20b", "gemini-2.5-flash-lite", "gpt-9", ""];

/// Raw bodies: JSON text of any value, broken JSON, deep nesting, huge
/// numbers written out, and arbitrary bytes.
fn raw_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => (1usize..20_000, prop_oneof![Just("["), Just("{\"a\":")])
            .prop_map(|(depth, open)| open.repeat(depth).into_bytes()),
        1 => (1usize..20_000).prop_map(|depth| format!("{}1{}", "[".repeat(depth), "]".repeat(depth)).into_bytes()),
        1 => "[0-9]{300,400}".prop_map(|digits| format!("{{\"max_tokens\":{digits}}}").into_bytes()),
        1 => prop_oneof![Just("1e400"), Just("-1e400"), Just("1E-400"), Just("18446744073709551616"), Just("-9223372036854775809")]
            .prop_map(|n| format!("{{\"content\":\"x\",\"temperature\":{n}}}").into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..300),
        1 => json_value().prop_map(|v| {
            // Truncated JSON.
            let s = v.to_string();
            let cut = s.len() / 2;
            s.into_bytes()[..cut].to_vec()
        }),
    ]
}

fn with_models(mut body: Map<String, Value>, model: &str, model_key: bool) -> Map<String, Value> {
    if model_key {
        body.insert("model".into(), Value::from(model));
    }
    body
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_body_is_an_object_or_a_clear_400(bytes in raw_body()) {
        match parse_object(&bytes) {
            Ok(map) => prop_assert!(bytes.contains(&b'{') && map.len() < bytes.len(), "{:?}", map),
            Err(e) => well_formed(&e, &[400, 413])?,
        }
    }

    /// However a body is framed, reading stops with a 413 at the first
    /// chunk that goes over the cap, and a body within it is read whole.
    #[test]
    fn streamed_bodies_stop_at_the_cap(sizes in prop::collection::vec(prop_oneof![0usize..70_000, Just(MAX_BODY_BYTES), Just(1)], 0..40)) {
        let pulled = std::cell::Cell::new(0usize);
        let chunks = futures::stream::iter(sizes.iter().map(|&n| {
            pulled.set(pulled.get() + 1);
            Ok::<_, String>(vec![b' '; n])
        }));
        let runtime = tokio::runtime::Builder::new_current_thread().build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = runtime.block_on(collect_capped(chunks));
        let total: usize = sizes.iter().sum();
        let mut running = 0;
        let over_at = sizes.iter().position(|&n| { running += n; running > MAX_BODY_BYTES });
        match (got, over_at) {
            (Ok(body), None) => prop_assert_eq!(body.len(), total),
            (Err(e), Some(i)) => {
                well_formed(&e, &[413])?;
                prop_assert_eq!(pulled.get(), i + 1, "read past the chunk that went over");
            }
            (got, over_at) => prop_assert!(false, "{:?} with over_at {:?}", got.map(|b| b.len()), over_at),
        }
    }

    #[test]
    fn headers_are_checked_without_panics(ct in proptest::option::of(text()), len in proptest::option::of(prop_oneof![text(), "[0-9]{1,30}", "-[0-9]{1,5}"])) {
        match check_headers(ct.as_deref(), len.as_deref()) {
            Ok(()) => {
                let mime = ct.as_deref().and_then(|c| c.split(';').next()).unwrap_or_default();
                prop_assert!(mime.trim().eq_ignore_ascii_case("application/json"));
                let declared = len.as_deref().and_then(|l| l.trim().parse::<u64>().ok());
                prop_assert!(declared.is_none_or(|n| n <= MAX_BODY_BYTES as u64));
            }
            Err(e) => well_formed(&e, &[400, 413])?,
        }
    }

    /// A send either validates into values inside every documented limit
    /// or is a 422 naming only the send's fields.
    #[test]
    fn sends_validate_or_name_their_fields(
        body in object_over(SEND_FIELDS),
        model in prop::sample::select(MODELS),
        model_key in any::<bool>(),
    ) {
        let body = with_models(body, model, model_key);
        let max_output = |id: &str| catalogue::find(id).map_or(1, |m| m.max_output_tokens);
        match send_input(body, "openai/gpt-oss-20b", max_output) {
            Ok(s) => {
                prop_assert!(!s.content.is_empty() && s.content == s.content.trim());
                prop_assert!(s.content.chars().count() <= MAX_CONTENT);
                prop_assert!(catalogue::find(&s.model).is_some());
                prop_assert!(s.max_tokens.is_none_or(|n| n >= 1 && n <= max_output(&s.model)));
                prop_assert!(s.temperature.is_none_or(|t| (0.0..=2.0).contains(&t)));
            }
            Err(e) => {
                well_formed(&e, &[422])?;
                if let crate::http::ApiError::Validation(details) = &e {
                    for d in details {
                        prop_assert!(SEND_FIELDS.contains(&d.field.as_str()), "{d:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn new_conversations_validate_or_name_their_fields(
        body in object_over(CONVERSATION_FIELDS),
        model in prop::sample::select(MODELS),
        model_key in any::<bool>(),
    ) {
        match input::new_conversation(with_models(body, model, model_key), "openai/gpt-oss-20b") {
            Ok(c) => {
                prop_assert!(catalogue::find(&c.model).is_some());
                if let Some(t) = &c.title {
                    prop_assert!(!t.is_empty() && t == t.trim() && t.chars().count() <= MAX_TITLE);
                }
                if let Some(p) = &c.system_prompt {
                    prop_assert!(!p.trim().is_empty() && p.chars().count() <= MAX_SYSTEM_PROMPT);
                }
                check_metadata(&c.metadata)?;
            }
            Err(e) => conversation_error(&e)?,
        }
    }

    #[test]
    fn patches_validate_or_name_their_fields(
        body in object_over(CONVERSATION_FIELDS),
        model in prop::sample::select(MODELS),
        model_key in any::<bool>(),
    ) {
        match input::patch(with_models(body, model, model_key)) {
            Ok(p) => {
                if let Some(Some(t)) = &p.title {
                    prop_assert!(!t.is_empty() && t.chars().count() <= MAX_TITLE);
                }
                if let Some(m) = &p.model {
                    prop_assert!(catalogue::find(m).is_some());
                }
                if let Some(m) = &p.metadata {
                    check_metadata(m)?;
                }
            }
            Err(e) => conversation_error(&e)?,
        }
    }

    #[test]
    fn limits_parse_or_422(raw in proptest::option::of(prop_oneof![text(), "-?[0-9]{1,25}", " ?[0-9]{1,3} ?"])) {
        match parse_limit(raw.as_deref()) {
            Ok(n) => prop_assert!((1..=MAX_LIMIT).contains(&n)),
            Err(e) => well_formed(&e, &[422])?,
        }
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_400(
        micros in -8_000_000_000_000_000i64..8_000_000_000_000_000i64,
        id in any::<u128>(),
        seq in any::<i64>(),
        garbage in prop_oneof![text(), "[A-Za-z0-9_-]{0,80}"],
    ) {
        let at = chrono::DateTime::from_timestamp_micros(micros);
        prop_assume!(at.is_some());
        let (at, id) = (at.unwrap_or_default(), uuid::Uuid::from_u128(id));
        prop_assert_eq!(parse_time_cursor(&time_cursor(&at, &id)).ok(), Some((at, id)));
        prop_assert_eq!(parse_seq_cursor(&seq_cursor(seq)).ok(), Some(seq));
        if let Err(e) = parse_time_cursor(&garbage) {
            well_formed(&e, &[400])?;
        }
        if let Err(e) = parse_seq_cursor(&garbage) {
            well_formed(&e, &[400])?;
        }
    }

    #[test]
    fn usage_dates_parse_or_422(from in proptest::option::of(prop_oneof![text(), "[0-9+-]{1,12}"]), to in proptest::option::of(prop_oneof![text(), "-?[0-9]{1,7}-[0-9]{2}-[0-9]{2}"])) {
        match date_range(from.as_deref(), to.as_deref()) {
            Ok((Some(f), Some(t))) => prop_assert!(f <= t),
            Ok(_) => {}
            Err(e) => well_formed(&e, &[422])?,
        }
    }

    #[test]
    fn idempotency_keys_are_printable_ascii(raw in prop_oneof![text(), "[ -~]{0,300}"]) {
        let printable = (1..=MAX_KEY_LEN).contains(&raw.len()) && raw.bytes().all(|b| (0x20..=0x7e).contains(&b));
        match check_key(&raw) {
            Ok(k) => prop_assert!(printable && k == raw),
            Err(e) => { prop_assert!(!printable); well_formed(&e, &[400])?; }
        }
    }

    #[test]
    fn request_fingerprints_ignore_key_order(body in object_over(SEND_FIELDS), id in any::<u128>()) {
        let reversed: Map<String, Value> = body.clone().into_iter().rev().collect();
        let id = uuid::Uuid::from_u128(id);
        let hash = request_hash(id, &body);
        prop_assert_eq!(hash.len(), 64);
        prop_assert_eq!(request_hash(id, &reversed), hash);
    }

    #[test]
    fn request_ids_are_echoed_only_when_sane(incoming in proptest::option::of(prop_oneof![text(), "[A-Za-z0-9._:-]{0,140}"])) {
        let id = request_id(incoming.as_deref(), || "fresh".to_string());
        let sane = |s: &str| !s.is_empty() && s.len() <= MAX_REQUEST_ID_LEN
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        prop_assert!(sane(&id));
        prop_assert_eq!(Some(id.as_str()) == incoming.as_deref(), incoming.as_deref().is_some_and(sane));
    }

    #[test]
    fn conversation_ids_are_uuids_or_404(raw in prop_oneof![text(), "[0-9a-fA-F-]{30,40}"]) {
        match conversation_id(&raw) {
            Ok(id) => prop_assert_eq!(uuid::Uuid::parse_str(&raw).ok(), Some(id)),
            Err(e) => well_formed(&e, &[404])?,
        }
    }

    /// The `q` filter's LIKE pattern matches its text literally: every `%`,
    /// `_` and `\` of the text is escaped.
    #[test]
    fn search_patterns_escape_every_wildcard(q in prop_oneof![text(), "[%_\\\\a]{0,20}"]) {
        let p = like_pattern(&q);
        let inner = &p[1..p.len() - 1];
        let mut unescaped = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => unescaped.extend(chars.next()),
                '%' | '_' => prop_assert!(false, "bare wildcard in {p:?}"),
                c => unescaped.push(c),
            }
        }
        prop_assert_eq!(unescaped, q);
    }

    #[test]
    fn generated_titles_are_clean(raw in prop_oneof![text(), ".{0,200}", "(Title: )?[\"*#` a-z.\n]{0,120}"]) {
        if let Some(t) = title::clean(&raw) {
            prop_assert!(!t.is_empty() && t.chars().count() <= title::MAX_TITLE);
            prop_assert!(!t.contains('\n') && t == t.trim());
            prop_assert!(!t.ends_with('.'));
        }
    }

    #[test]
    fn provider_error_bodies_never_panic(body in prop_oneof![text(), json_value().prop_map(|v| v.to_string())]) {
        let m = crate::llm::fallback::error_message(&body);
        prop_assert!(m.chars().count() <= 200 || serde_json::from_str::<Value>(&body).is_ok());
    }

    #[test]
    fn configuration_never_panics(value in prop_oneof![text(), "-?[0-9]{1,25}", "[a-z0-9/.=;-]{0,60}"], name in prop::sample::select(&[
        "JWT_ACCESS_TOKEN_EXPIRE_MINUTES", "RATE_LIMIT_AI", "FIRST_TOKEN_TIMEOUT_MS", "GROQ_BASE_URL",
        "ALLOWED_ORIGINS", "DEFAULT_MODEL", "MODEL_LIMITS", "JWT_SECRET",
    ][..])) {
        let lookup = |key: &str| match key {
            k if k == name => Some(value.clone()),
            "JWT_SECRET" => Some("0123456789abcdef0123456789abcdef".to_string()),
            _ => None,
        };
        if let Err(e) = crate::config::Config::from_lookup(lookup) {
            prop_assert!(!e.problems.is_empty());
            for p in &e.problems {
                prop_assert!(!p.contains("0123456789abcdef0123456789abcdef"), "secret leaked: {p}");
            }
        }
    }
}

fn conversation_error(e: &crate::http::ApiError) -> Result<(), TestCaseError> {
    well_formed(e, &[422])?;
    if let crate::http::ApiError::Validation(details) = e {
        for d in details {
            let field = d.field.split('.').next().unwrap_or_default();
            prop_assert!(CONVERSATION_FIELDS.contains(&field), "{d:?}");
        }
    }
    Ok(())
}

fn check_metadata(m: &Value) -> Result<(), TestCaseError> {
    let map = m.as_object();
    prop_assert!(map.is_some(), "metadata {m}");
    let map = map.cloned().unwrap_or_default();
    prop_assert!(map.len() <= MAX_METADATA_KEYS);
    for (k, v) in &map {
        prop_assert!((1..=MAX_METADATA_KEY).contains(&k.chars().count()));
        prop_assert!(v
            .as_str()
            .is_some_and(|s| s.chars().count() <= MAX_METADATA_VALUE));
    }
    Ok(())
}
