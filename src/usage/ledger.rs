//! Writing the usage ledger. Costs are computed in the database in
//! `numeric` from the catalogue's prices, so sums never accumulate
//! floating-point error.

use tokio_postgres::Client;
use uuid::Uuid;

use crate::db::query_error;
use crate::http::ApiError;
use crate::llm::catalogue;
use crate::llm::fallback::{Attempt, Failure};

/// One model call to record.
pub struct Entry<'a> {
    /// The caller.
    pub user_id: Uuid,
    /// Its conversation.
    pub conversation_id: Option<Uuid>,
    /// The assistant message it produced, if any.
    pub message_id: Option<Uuid>,
    /// `answer` (or `title`).
    pub kind: &'a str,
    /// Model id called.
    pub model: &'a str,
    /// `groq` or `gemini`.
    pub provider: &'a str,
    /// Prompt tokens reported (0 for a failed attempt).
    pub input_tokens: i32,
    /// Answer tokens reported (0 for a failed attempt).
    pub output_tokens: i32,
    /// Milliseconds, when known.
    pub latency_ms: Option<i32>,
    /// Whether the call produced an answer.
    pub success: bool,
    /// Why it failed.
    pub error: Option<&'a str>,
}

/// Decimal text of a catalogue price (`"0"` for models no longer offered).
fn price(model: &str, pick: fn(&catalogue::Model) -> f64) -> String {
    catalogue::find(model).map_or_else(|| "0".to_string(), |m| pick(m).to_string())
}

/// Records one model call.
pub async fn record(c: &Client, e: &Entry<'_>) -> Result<(), ApiError> {
    let input_price = price(e.model, |m| m.input_price_per_mtok);
    let output_price = price(e.model, |m| m.output_price_per_mtok);
    c.execute(
        "INSERT INTO usage_ledger (user_id, conversation_id, message_id, kind, model, provider,
                                   input_tokens, output_tokens, cost_usd, latency_ms, success, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7::int4, $8::int4,
                 ($7::int4::numeric * $9::text::numeric
                  + $8::int4::numeric * $10::text::numeric) / 1000000,
                 $11, $12, $13)",
        &[
            &e.user_id,
            &e.conversation_id,
            &e.message_id,
            &e.kind,
            &e.model,
            &e.provider,
            &e.input_tokens,
            &e.output_tokens,
            &input_price,
            &output_price,
            &e.latency_ms,
            &e.success,
            &e.error,
        ],
    )
    .await
    .map(|_| ())
    .map_err(query_error)
}

/// The call that answered, for [`record_outcome`].
pub struct Answered<'a> {
    /// Model and provider that answered.
    pub attempt: &'a Attempt,
    /// The assistant message stored, if any (titles store none).
    pub message_id: Option<Uuid>,
    /// Prompt tokens reported.
    pub input_tokens: i32,
    /// Answer tokens reported.
    pub output_tokens: i32,
    /// Milliseconds, when known.
    pub latency_ms: Option<i32>,
    /// Whether it ended complete.
    pub success: bool,
}

/// Records every call of one answer (or title): each failed attempt with
/// zero tokens, then the one that answered.
pub async fn record_outcome(
    c: &Client,
    user_id: Uuid,
    conversation_id: Uuid,
    kind: &str,
    failures: &[(Attempt, Failure)],
    answered: Option<Answered<'_>>,
) -> Result<(), ApiError> {
    for (attempt, failure) in failures {
        let error = failure.describe();
        record(
            c,
            &Entry {
                user_id,
                conversation_id: Some(conversation_id),
                message_id: None,
                kind,
                model: &attempt.model,
                provider: attempt.provider.as_str(),
                input_tokens: 0,
                output_tokens: 0,
                latency_ms: None,
                success: false,
                error: Some(&error),
            },
        )
        .await?;
    }
    if let Some(a) = answered {
        record(
            c,
            &Entry {
                user_id,
                conversation_id: Some(conversation_id),
                message_id: a.message_id,
                kind,
                model: &a.attempt.model,
                provider: a.attempt.provider.as_str(),
                input_tokens: a.input_tokens,
                output_tokens: a.output_tokens,
                latency_ms: a.latency_ms,
                success: a.success,
                error: None,
            },
        )
        .await?;
    }
    Ok(())
}
