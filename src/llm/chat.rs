//! A model call, independent of the provider: who says what, and how.

use super::catalogue::Provider;

/// Who said a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The person.
    User,
    /// The model.
    Assistant,
}

/// One earlier or new message in the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Turn {
    /// Speaker.
    pub role: Role,
    /// Text.
    pub content: String,
}

/// Everything a provider needs for one answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The provider's model id.
    pub model: String,
    /// System prompt, if any.
    pub system: Option<String>,
    /// The conversation so far, oldest first, ending with the new user turn.
    pub turns: Vec<Turn>,
    /// Answer budget in tokens.
    pub max_tokens: Option<u32>,
    /// Sampling temperature (0–2).
    pub temperature: Option<f64>,
    /// Ask for the model's reasoning.
    pub thinking: bool,
    /// Whether the model reasons natively (else reasoning is requested in
    /// `<thinking>` tags through the system prompt).
    pub native_thinking: bool,
}

/// An HTTP request to a provider, built without touching the network.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRequest {
    /// Which provider.
    pub provider: Provider,
    /// Full URL.
    pub url: String,
    /// Headers (the key among them).
    pub headers: Vec<(&'static str, String)>,
    /// JSON body.
    pub body: String,
}

impl Call {
    /// The system prompt to send: the conversation's, plus the reasoning
    /// instruction when thinking is asked of a model without native reasoning.
    pub fn effective_system(&self) -> Option<String> {
        system_prompt(
            self.system.as_deref(),
            self.thinking && !self.native_thinking,
        )
    }
}

/// A system prompt, with the reasoning instruction for models without
/// native reasoning appended when `reasoning` holds.
pub fn system_prompt(system: Option<&str>, reasoning: bool) -> Option<String> {
    let extra = reasoning.then_some(crate::sse::think::THINKING_INSTRUCTION);
    match (system, extra) {
        (Some(s), Some(e)) => Some(format!("{s}\n\n{e}")),
        (Some(s), None) => Some(s.to_string()),
        (None, Some(e)) => Some(e.to_string()),
        (None, None) => None,
    }
}

/// A three-turn call with a system prompt, for the request builders' tests.
#[cfg(test)]
pub(crate) fn sample_call(model: &str) -> Call {
    let turn = |role, content: &str| Turn {
        role,
        content: content.into(),
    };
    Call {
        model: model.into(),
        system: Some("Be brief.".into()),
        turns: vec![
            turn(Role::User, "Hi"),
            turn(Role::Assistant, "Hello!"),
            turn(Role::User, "Why?"),
        ],
        max_tokens: None,
        temperature: None,
        thinking: false,
        native_thinking: true,
    }
}
