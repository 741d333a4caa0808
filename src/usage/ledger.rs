//! The usage ledger's entries: one per model call (answers and titles,
//! failed attempts included), stored by the database API together with
//! what the call produced. Costs are computed in the database in `numeric`
//! from the catalogue's prices (sent as decimal text), so sums never
//! accumulate floating-point error.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::llm::catalogue;
use crate::llm::fallback::{Attempt, Failure};

/// USD per million tokens of `model`, as exact decimal text ("0" when unknown).
fn price(model: &str, pick: fn(&catalogue::Model) -> f64) -> String {
    catalogue::find(model).map_or_else(|| "0".to_string(), |m| pick(m).to_string())
}

/// One ledger entry as the database API takes it.
#[allow(clippy::too_many_arguments)]
fn entry(
    kind: &str,
    attempt: &Attempt,
    message_id: Option<Uuid>,
    input_tokens: i32,
    output_tokens: i32,
    latency_ms: Option<i32>,
    success: bool,
    error: Option<String>,
) -> Value {
    json!({
        "kind": kind,
        "model": attempt.model,
        "provider": attempt.provider.as_str(),
        "message_id": message_id,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_price": price(&attempt.model, |m| m.input_price_per_mtok),
        "output_price": price(&attempt.model, |m| m.output_price_per_mtok),
        "latency_ms": latency_ms,
        "success": success,
        "error": error,
    })
}

/// The attempt that answered, with its usage.
pub struct Answered<'a> {
    /// Who answered.
    pub attempt: &'a Attempt,
    /// The stored answer, if any.
    pub message_id: Option<Uuid>,
    /// Prompt tokens reported.
    pub input_tokens: i32,
    /// Answer tokens reported.
    pub output_tokens: i32,
    /// Time to the full answer.
    pub latency_ms: Option<i32>,
    /// Whether it completed.
    pub success: bool,
}

/// The entries of a call with fallbacks: each failed attempt (no tokens,
/// with its error), then the attempt that answered, if any.
pub fn entries(
    kind: &str,
    failures: &[(Attempt, Failure)],
    answered: Option<Answered<'_>>,
) -> Vec<Value> {
    let mut out: Vec<Value> = failures
        .iter()
        .map(|(attempt, failure)| {
            entry(
                kind,
                attempt,
                None,
                0,
                0,
                None,
                false,
                // PostgreSQL text cannot hold U+0000 (an upstream body may).
                Some(failure.describe().replace('\0', "")),
            )
        })
        .collect();
    if let Some(a) = answered {
        out.push(entry(
            kind,
            a.attempt,
            a.message_id,
            a.input_tokens,
            a.output_tokens,
            a.latency_ms,
            a.success,
            None,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_come_first_then_the_answer_with_catalogue_prices() {
        let attempt = |id: &str, provider| Attempt {
            model: id.to_string(),
            provider,
            spec: catalogue::find(id),
        };
        let failed = attempt("gemini-2.5-flash-lite", catalogue::Provider::Gemini);
        let answered = attempt("openai/gpt-oss-20b", catalogue::Provider::Groq);
        let id = Uuid::nil();
        let out = entries(
            "answer",
            &[(failed, Failure::Timeout)],
            Some(Answered {
                attempt: &answered,
                message_id: Some(id),
                input_tokens: 12,
                output_tokens: 3,
                latency_ms: Some(40),
                success: true,
            }),
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0]["success"], false);
        assert_eq!(out[0]["input_tokens"], 0);
        assert!(out[0]["error"].as_str().is_some_and(|e| !e.is_empty()));
        assert_eq!(out[1]["model"], "openai/gpt-oss-20b");
        assert_eq!(out[1]["message_id"], json!(id));
        assert_eq!(out[1]["output_tokens"], 3);
        let spec = catalogue::find("openai/gpt-oss-20b").expect("in the catalogue");
        assert_eq!(out[1]["input_price"], spec.input_price_per_mtok.to_string());
        assert!(entries("title", &[], None).is_empty());
    }
}
