//! Scripts: per-test replies selected by a marker string in the request body.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// At most this many scripts are kept; registering more drops the oldest.
const MAX_SCRIPTS: usize = 10_000;

/// Which upstream provider a request was addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Groq's OpenAI-compatible chat completions API.
    Groq,
    /// Google's Gemini `generateContent` API.
    Gemini,
}

/// How an answer ends: Groq `stop`/`length`, Gemini `STOP`/`MAX_TOKENS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinishReason {
    /// A natural end (`stop` / `STOP`).
    #[serde(alias = "STOP")]
    Stop,
    /// The output budget ran out (`length` / `MAX_TOKENS`).
    #[serde(alias = "max_tokens", alias = "MAX_TOKENS")]
    Length,
}

/// Token counts that replace the computed ones; absent fields keep theirs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageOverride {
    /// Prompt tokens (`prompt_tokens` / `promptTokenCount`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Answer tokens (`candidatesTokenCount`; Groq's `completion_tokens` is
    /// this plus the thinking tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Reasoning tokens (`thoughtsTokenCount`,
    /// `completion_tokens_details.reasoning_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_tokens: Option<u64>,
}

/// What a scripted request gets back. Every field is optional; an empty
/// reply is the canned answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Reply {
    /// Answer text, split into about one word per chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Explicit answer chunks (override `text`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks: Option<Vec<String>>,
    /// Reasoning text, emitted before the answer whatever the request asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Explicit reasoning chunks (override `thinking`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_chunks: Option<Vec<String>>,
    /// Delay before the response headers are sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_byte_delay_ms: Option<u64>,
    /// Delay before each streamed reasoning/answer chunk but the first frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunk_delay_ms: Option<u64>,
    /// HTTP status; anything but 200 answers with the provider's error body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Seconds for the `retry-after` header (and Gemini's RetryInfo detail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Raw JSON error body sent instead of the provider's default one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_body: Option<Value>,
    /// Forced finish reason (otherwise `stop`, or `length` when the request's
    /// output budget cut the answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    /// Token count overrides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<UsageOverride>,
    /// Send no usage at all.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub omit_usage: bool,
    /// After this many answer chunks abort the connection (no finish chunk,
    /// no `[DONE]`, unterminated chunked body).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_after_chunks: Option<usize>,
    /// After this many answer chunks send nothing more, holding the
    /// connection until the client leaves (at most 10 minutes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stall_after_chunks: Option<usize>,
    /// Never answer: hold the request (at most 10 minutes), then close.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stall_before_headers: bool,
}

/// The body of `POST /_control/scripts`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewScript {
    /// The marker: the script applies to requests whose raw body contains it.
    pub contains: String,
    /// Only requests to this provider (any when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderKind>,
    /// Only requests for exactly this model id (any when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// How many requests it answers: default 1, 0 means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// What those requests get.
    #[serde(default)]
    pub reply: Reply,
}

impl NewScript {
    /// Checks the values serde cannot: the status range.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match self.reply.status {
            Some(status) if !(100..=599).contains(&status) => {
                Err(format!("reply.status {status} is not an HTTP status"))
            }
            _ => Ok(()),
        }
    }
}

/// A registered script and its remaining uses.
#[derive(Debug)]
struct Script {
    id: u64,
    /// `None`: unlimited.
    remaining: Option<u32>,
    spec: NewScript,
    reply: Arc<Reply>,
}

impl Script {
    fn matches(&self, provider: ProviderKind, model: &str, raw_body: &str) -> bool {
        self.spec.provider.is_none_or(|wanted| wanted == provider)
            && self
                .spec
                .model
                .as_deref()
                .is_none_or(|wanted| wanted == model)
            && raw_body.contains(&self.spec.contains)
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "contains": self.spec.contains,
            "provider": self.spec.provider,
            "model": self.spec.model,
            "remaining": self.remaining,
            "reply": self.spec.reply,
        })
    }
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    scripts: VecDeque<Script>,
}

/// The registered scripts, in registration order.
#[derive(Debug, Default)]
pub struct ScriptStore {
    inner: Mutex<Inner>,
}

impl ScriptStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a script and returns its id.
    pub fn add(&self, spec: NewScript) -> u64 {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let remaining = match spec.times.unwrap_or(1) {
            0 => None,
            n => Some(n),
        };
        let reply = Arc::new(spec.reply.clone());
        if inner.scripts.len() >= MAX_SCRIPTS {
            inner.scripts.pop_front();
        }
        inner.scripts.push_back(Script {
            id,
            remaining,
            spec,
            reply,
        });
        id
    }

    /// Uses the first script that matches, if any: returns its id and reply.
    pub fn take(
        &self,
        provider: ProviderKind,
        model: &str,
        raw_body: &str,
    ) -> Option<(u64, Arc<Reply>)> {
        let mut inner = self.lock();
        let index = inner
            .scripts
            .iter()
            .position(|script| script.matches(provider, model, raw_body))?;
        let script = &mut inner.scripts[index];
        let found = (script.id, Arc::clone(&script.reply));
        if let Some(remaining) = script.remaining.as_mut() {
            *remaining -= 1;
            if *remaining == 0 {
                inner.scripts.remove(index);
            }
        }
        Some(found)
    }

    /// Removes the scripts whose marker contains `marker` (all when `None`);
    /// returns how many.
    pub fn remove(&self, marker: Option<&str>) -> usize {
        let mut inner = self.lock();
        let before = inner.scripts.len();
        inner
            .scripts
            .retain(|script| marker.is_some_and(|m| !script.spec.contains.contains(m)));
        before - inner.scripts.len()
    }

    /// The scripts whose marker contains `marker` (all when `None`), as JSON.
    pub fn list(&self, marker: Option<&str>) -> Vec<Value> {
        self.lock()
            .scripts
            .iter()
            .filter(|script| marker.is_none_or(|m| script.spec.contains.contains(m)))
            .map(Script::to_json)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(contains: &str, times: Option<u32>, text: &str) -> NewScript {
        NewScript {
            contains: contains.into(),
            times,
            reply: Reply {
                text: Some(text.into()),
                ..Reply::default()
            },
            ..NewScript::default()
        }
    }

    fn text(found: Option<(u64, Arc<Reply>)>) -> Option<String> {
        found.and_then(|(_, reply)| reply.text.clone())
    }

    #[test]
    fn first_match_wins_and_uses_run_out() {
        let store = ScriptStore::default();
        store.add(script("M1", Some(2), "a"));
        store.add(script("M1", None, "b"));
        let body = r#"{"m":"xx M1 yy"}"#;
        assert_eq!(
            text(store.take(ProviderKind::Groq, "m", body)),
            Some("a".into())
        );
        assert_eq!(
            text(store.take(ProviderKind::Groq, "m", body)),
            Some("a".into())
        );
        assert_eq!(
            text(store.take(ProviderKind::Groq, "m", body)),
            Some("b".into())
        );
        assert_eq!(text(store.take(ProviderKind::Groq, "m", "other")), None);
    }

    #[test]
    fn zero_times_is_unlimited_and_remove_by_marker() {
        let store = ScriptStore::default();
        store.add(script("keep", Some(0), "k"));
        store.add(script("gone-1", Some(0), "g"));
        for _ in 0..5 {
            assert_eq!(
                text(store.take(ProviderKind::Gemini, "m", "keep")),
                Some("k".into())
            );
        }
        assert_eq!(store.remove(Some("gone")), 1);
        assert_eq!(store.list(None).len(), 1);
        assert_eq!(store.remove(None), 1);
    }

    #[test]
    fn provider_and_model_filters() {
        let store = ScriptStore::default();
        let mut spec = script("X", None, "gem");
        spec.provider = Some(ProviderKind::Gemini);
        spec.model = Some("gemini-2.5-flash-lite".into());
        store.add(spec);
        assert!(store
            .take(ProviderKind::Groq, "gemini-2.5-flash-lite", "X")
            .is_none());
        assert!(store.take(ProviderKind::Gemini, "other", "X").is_none());
        assert!(store
            .take(ProviderKind::Gemini, "gemini-2.5-flash-lite", "X")
            .is_some());
    }
}
