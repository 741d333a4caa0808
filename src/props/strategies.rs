//! Generators shared by the properties: arbitrary JSON (huge numbers and
//! unicode included), objects over a validator's field names, text built
//! from the pieces a format is made of, and chunk splits.

use proptest::prelude::*;
use serde_json::{Map, Number, Value};

/// Any string: mostly arbitrary unicode, sometimes control characters,
/// surrogates' neighbours, combining marks, emoji and long runs.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => ".{0,40}",
        1 => "[\\x00-\\x1f\\x7f \t\r\n]{0,8}",
        1 => Just("é😀\u{301}\u{200d}\u{feff}\u{fffd}\u{10ffff}".to_string()),
        1 => (any::<char>(), 0usize..3000).prop_map(|(c, n)| c.to_string().repeat(n)),
    ]
}

/// A JSON number: small, at the integer limits, fractional, or huge.
pub fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![
            Just(0u64),
            Just(1),
            Just(u64::from(u32::MAX)),
            Just(u64::MAX)
        ]
        .prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just(1e308),
            Just(-1e308),
            Just(5e-324),
            Just(2.0000001),
            Just(-0.0)
        ]
        .prop_map(|f: f64| Number::from_f64(f).map_or(Value::Null, Value::Number)),
    ]
}

/// Any JSON value, nested a few levels deep.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object whose keys are mostly `fields` (a validator's names) with
/// arbitrary values, plus the odd unknown key.
pub fn object_over(fields: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
    let key = prop_oneof![
        4 => prop::sample::select(fields).prop_map(str::to_string),
        1 => text(),
    ];
    let value = prop_oneof![
        3 => json_value(),
        1 => text().prop_map(Value::String),
        1 => number(),
    ];
    prop::collection::btree_map(key, value, 0..8).prop_map(|m| m.into_iter().collect())
}

/// Text made of `pieces` (a format's syntax) mixed with arbitrary strings.
pub fn made_of(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(pieces).prop_map(str::to_string),
        1 => text(),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

/// Where to cut an input into chunks (positions anywhere, possibly
/// repeated, possibly inside a UTF-8 character).
pub fn cuts() -> impl Strategy<Value = Vec<prop::sample::Index>> {
    prop::collection::vec(any::<prop::sample::Index>(), 0..12)
}

/// `bytes` cut at `cuts` (sorted, so empty chunks occur too).
pub fn split<'a>(bytes: &'a [u8], cuts: &[prop::sample::Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    at.sort_unstable();
    let mut chunks = Vec::with_capacity(at.len() + 1);
    let mut start = 0;
    for end in at {
        chunks.push(&bytes[start..end]);
        start = end;
    }
    chunks.push(&bytes[start..]);
    chunks
}

/// `text` cut at `cuts`, each cut moved back to a character boundary.
pub fn split_str<'a>(text: &'a str, cuts: &[prop::sample::Index]) -> Vec<&'a str> {
    let mut at: Vec<usize> = cuts
        .iter()
        .map(|i| {
            let mut p = i.index(text.len() + 1);
            while !text.is_char_boundary(p) {
                p -= 1;
            }
            p
        })
        .collect();
    at.sort_unstable();
    let mut chunks = Vec::with_capacity(at.len() + 1);
    let mut start = 0;
    for end in at {
        chunks.push(&text[start..end]);
        start = end;
    }
    chunks.push(&text[start..]);
    chunks
}
