//! Which models to try, in order, and which upstream failures allow the
//! next one. Fallback happens only before the first token reaches the client.

use super::catalogue::{self, Model, Provider};

/// One planned attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// Model id sent to the provider.
    pub model: String,
    /// Who serves it.
    pub provider: Provider,
    /// Its catalogue entry (`None` for an id no longer offered, e.g. retired).
    pub spec: Option<&'static Model>,
}

impl Attempt {
    fn of(id: &str) -> Attempt {
        let spec = catalogue::find(id);
        let provider = spec
            .map(|m| m.provider)
            .unwrap_or(if id.starts_with("gemini") {
                Provider::Gemini
            } else {
                Provider::Groq
            });
        Attempt {
            model: id.to_string(),
            provider,
            spec,
        }
    }
}

/// The attempts for an answer: `primary` first, then a fallback on the
/// other provider (`fallback`, or `default` when `fallback` is on the
/// primary's provider), skipping providers without a key.
pub fn plan(
    primary: &str,
    fallback: &str,
    default: &str,
    has_key: impl Fn(Provider) -> bool,
) -> Vec<Attempt> {
    let first = Attempt::of(primary);
    let candidates = [Attempt::of(fallback), Attempt::of(default)];
    let second = candidates
        .iter()
        .find(|a| a.provider != first.provider)
        .or_else(|| candidates.iter().find(|a| a.model != first.model))
        .cloned();
    std::iter::once(first)
        .chain(second)
        .filter(|a| has_key(a.provider))
        .collect()
}

/// Why an attempt produced no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The connection failed.
    Connect(String),
    /// No response headers (or no first token) in time.
    Timeout,
    /// An HTTP error status, with the provider's message.
    Status { status: u16, message: String },
    /// The stream broke or carried an error.
    Stream(String),
    /// The client left before the first token: the attempt was abandoned
    /// and no other is tried.
    ClientGone,
}

impl Failure {
    /// Whether the next attempt may be tried: connection errors, time-outs,
    /// 429, 498, 5xx, model errors (404, and 400 naming the model) and auth
    /// errors of one provider (the other may be fine). Other 4xx mean the
    /// request itself is wrong and would fail everywhere.
    pub fn allows_fallback(&self) -> bool {
        match self {
            Failure::Connect(_) | Failure::Timeout | Failure::Stream(_) => true,
            Failure::ClientGone => false,
            Failure::Status { status, message } => match status {
                401 | 403 | 404 | 408 | 409 | 429 | 498 | 500..=599 => true,
                400 => {
                    let m = message.to_ascii_lowercase();
                    m.contains("model") || m.contains("decommission")
                }
                _ => false,
            },
        }
    }

    /// What the client is told when this failure ended the last attempt and
    /// the request itself is at fault (a 4xx no other model or provider
    /// can fix: the prompt too long for the model, an invalid argument):
    /// a message of ours, never the provider's text. `None` for failures a
    /// retry may cure (timeouts, 429, 5xx, one provider's key or model).
    pub fn refusal(&self) -> Option<&'static str> {
        let Failure::Status { status, message } = self else {
            return None;
        };
        if !matches!(status, 400 | 413 | 422) {
            return None;
        }
        let m = message.to_ascii_lowercase();
        let too_long = [
            "context_length",
            "context length",
            "context window",
            "too long",
            "too large",
            "too many tokens",
            "maximum number of tokens",
            "reduce the length",
        ]
        .iter()
        .any(|needle| m.contains(needle));
        if too_long || *status == 413 {
            Some(PROMPT_TOO_LONG)
        } else if self.allows_fallback() {
            None
        } else {
            Some(REQUEST_REFUSED)
        }
    }

    /// A one-line description for logs and the usage ledger.
    pub fn describe(&self) -> String {
        match self {
            Failure::Connect(e) => format!("connect failed: {e}"),
            Failure::Timeout => "timed out before the first token".into(),
            Failure::Status { status, message } => format!("HTTP {status}: {message}"),
            Failure::Stream(e) => format!("stream failed: {e}"),
            Failure::ClientGone => "the client left before the first token".into(),
        }
    }
}

/// What a send answers when the model's provider finds the prompt too long.
pub const PROMPT_TOO_LONG: &str = "the conversation is too long for the model: \
    start a new conversation, send a shorter message or lower max_tokens";

/// What a send answers when the provider refuses the request as invalid.
pub const REQUEST_REFUSED: &str = "the model provider refused the request as invalid: \
    check the message, max_tokens and temperature";

/// The message inside a provider's error body (`{"error":{"message":…}}`
/// for both Groq and Gemini), else the body itself, shortened.
pub fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &str = "openai/gpt-oss-20b";
    const FALLBACK: &str = "gemini-2.5-flash-lite";

    fn models(plan: &[Attempt]) -> Vec<&str> {
        plan.iter().map(|a| a.model.as_str()).collect()
    }

    #[test]
    fn groq_first_then_gemini() {
        let p = plan(DEFAULT, FALLBACK, DEFAULT, |_| true);
        assert_eq!(models(&p), [DEFAULT, FALLBACK]);
        assert_eq!(p[1].provider, Provider::Gemini);
    }

    #[test]
    fn a_gemini_primary_falls_back_to_groq() {
        let p = plan(FALLBACK, FALLBACK, DEFAULT, |_| true);
        assert_eq!(models(&p), [FALLBACK, DEFAULT]);
    }

    #[test]
    fn retired_ids_are_tried_on_their_provider_then_fall_back() {
        let p = plan("llama-3.1-8b-instant", FALLBACK, DEFAULT, |_| true);
        assert_eq!(models(&p), ["llama-3.1-8b-instant", FALLBACK]);
        assert_eq!(p[0].provider, Provider::Groq);
        assert_eq!(p[0].spec, None);
    }

    #[test]
    fn providers_without_keys_are_skipped() {
        let p = plan(DEFAULT, FALLBACK, DEFAULT, |pr| pr == Provider::Gemini);
        assert_eq!(models(&p), [FALLBACK]);
        assert!(plan(DEFAULT, FALLBACK, DEFAULT, |_| false).is_empty());
    }

    #[test]
    fn which_failures_fall_back() {
        let status = |s: u16, m: &str| Failure::Status {
            status: s,
            message: m.into(),
        };
        for f in [
            Failure::Timeout,
            Failure::Connect("refused".into()),
            status(429, "slow down"),
            status(498, "capacity"),
            status(500, "x"),
            status(503, "x"),
            status(404, "The model `x` does not exist"),
            status(400, "model_decommissioned"),
        ] {
            assert!(f.allows_fallback(), "{f:?}");
        }
        assert!(!status(400, "messages: content too long").allows_fallback());
        assert!(!status(422, "x").allows_fallback());
    }

    #[test]
    fn client_errors_no_fallback_can_fix_are_refusals() {
        let status = |s: u16, m: &str| Failure::Status {
            status: s,
            message: m.into(),
        };
        for too_long in [
            status(
                400,
                "Please reduce the length of the messages or completion.",
            ),
            status(400, "This model's maximum context length is 8192 tokens"),
            status(
                400,
                "The input token count (2000000) exceeds the maximum number of tokens allowed",
            ),
            status(413, "Request Entity Too Large"),
        ] {
            assert_eq!(too_long.refusal(), Some(PROMPT_TOO_LONG), "{too_long:?}");
        }
        assert_eq!(
            status(400, "temperature: must be at most 2").refusal(),
            Some(REQUEST_REFUSED)
        );
        assert_eq!(status(422, "bad").refusal(), Some(REQUEST_REFUSED));
        for retryable in [
            Failure::Timeout,
            Failure::Connect("refused".into()),
            Failure::Stream("cut".into()),
            status(429, "too many"),
            status(500, "oops"),
            status(404, "The model `x` does not exist"),
            status(400, "model_decommissioned"),
            status(401, "bad key"),
            Failure::ClientGone,
        ] {
            assert_eq!(retryable.refusal(), None, "{retryable:?}");
        }
    }

    #[test]
    fn error_messages_are_extracted() {
        assert_eq!(
            error_message(r#"{"error":{"message":"nope","code":1}}"#),
            "nope"
        );
        assert_eq!(error_message("plain text"), "plain text");
    }
}
