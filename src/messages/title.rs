//! Automatic titles: after the first exchange of an untitled conversation,
//! the default model is asked for a short title, off the response path.
//! A title the user set (even meanwhile) is never overwritten; a failed
//! title call leaves the title empty and is only logged.

use serde_json::{json, Value};
use uuid::Uuid;
use worker::console_warn;

use super::answer::{Discard, Ending, Timing};
use super::generate::{generate, Planned};
use crate::config::Config;
use crate::db::Database;
use crate::http::ApiError;
use crate::llm::chat::{Call, Role, Turn};
use crate::llm::client;
use crate::llm::fallback::plan;
use crate::usage::ledger::{self, Answered};

/// Longest title generated, in characters.
pub const MAX_TITLE: usize = 60;
/// Characters of each message shown to the title model.
const EXCERPT: usize = 1_000;
/// Answer budget of a title call (reasoning models spend part of it thinking).
const TITLE_TOKENS: u32 = 512;

const INSTRUCTION: &str = "Write a short title (at most six words) for the conversation \
below. Reply with the title only: no quotes, no final period.";

/// Cleans a model's reply into a title: first line, no `Title:` prefix, no
/// quotes or markdown emphasis, single spaces, no trailing period, at most
/// 60 characters (cut at a word boundary). `None` when nothing is left.
pub fn clean(raw: &str) -> Option<String> {
    let line = raw.lines().map(str::trim).find(|l| !l.is_empty())?;
    let line = line
        .strip_prefix("Title:")
        .or_else(|| line.strip_prefix("title:"))
        .unwrap_or(line);
    let unquoted: String = line
        .chars()
        .filter(|c| !matches!(c, '"' | '“' | '”' | '`' | '*' | '#'))
        .collect();
    let unquoted =
        unquoted.trim_matches(|c: char| matches!(c, '\'' | '‘' | '’') || c.is_whitespace());
    let mut title = unquoted.split_whitespace().collect::<Vec<_>>().join(" ");
    if title.chars().count() > MAX_TITLE {
        let cut: String = title.chars().take(MAX_TITLE).collect();
        title = match cut.rfind(' ') {
            Some(space) if space > MAX_TITLE / 2 => cut[..space].to_string(),
            _ => cut,
        };
    }
    let title = title
        .trim_end_matches(['.', ' ', ':', ';', ','])
        .to_string();
    (!title.is_empty()).then_some(title)
}

fn excerpt(text: &str) -> String {
    text.chars().take(EXCERPT).collect()
}

/// Asks for a title and stores it if the conversation is still untitled;
/// returns the conversation when it got one.
pub async fn entitle(
    c: &dyn Database,
    config: &Config,
    owner: Uuid,
    conversation: Uuid,
    question: &str,
    answer: &str,
) -> Result<Option<Value>, ApiError> {
    let call = Call {
        model: config.default_model.clone(),
        system: Some(INSTRUCTION.into()),
        turns: vec![Turn {
            role: Role::User,
            content: format!(
                "User: {}\n\nAssistant: {}",
                excerpt(question),
                excerpt(answer)
            ),
        }],
        max_tokens: Some(TITLE_TOKENS),
        temperature: Some(0.2),
        thinking: false,
        native_thinking: true,
    };
    let attempts: Vec<Planned> = plan(
        &config.default_model,
        &config.fallback_model,
        &config.default_model,
        |provider| client::api(config, provider).is_some(),
    )
    .into_iter()
    .map(|attempt| Planned {
        max_output_tokens: config.limits(&attempt.model).max_output_tokens,
        attempt,
        turns: call.turns.clone(),
        input_estimate: 0,
    })
    .collect();
    let outcome = generate(
        config,
        &call,
        &attempts,
        "title",
        Timing::from_config(config),
        &mut Discard,
    )
    .await;
    let tokens = |n: Option<u32>| n.and_then(|n| i32::try_from(n).ok()).unwrap_or(0);
    let answered = outcome.answered_by.as_ref().map(|attempt| Answered {
        attempt,
        message_id: None,
        input_tokens: tokens(outcome.input_tokens),
        output_tokens: tokens(outcome.output_tokens),
        latency_ms: None,
        success: outcome.ending == Ending::Complete,
    });
    let usage = ledger::entries("title", &outcome.failures, answered);
    let title = if outcome.answered_by.is_none() {
        console_warn!("no title for conversation {conversation}: every provider failed");
        None
    } else {
        let title = clean(&outcome.text).filter(|_| outcome.ending == Ending::Complete);
        if title.is_none() {
            console_warn!("no usable title for conversation {conversation}");
        }
        title
    };
    // The usage and the title in one round trip; a title set meanwhile stays.
    let args = json!({"user_id": owner, "conversation_id": conversation, "title": title,
                      "usage": usage});
    let mut out = crate::db::call::call::<Value>(c, "set_title", args).await?;
    Ok(Some(out["conversation"].take()).filter(|c| c.is_object()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_cleaned() {
        assert_eq!(
            clean("\"Trip to Paris.\"").as_deref(),
            Some("Trip to Paris")
        );
        assert_eq!(
            clean("Title: **Rust lifetimes**\nmore").as_deref(),
            Some("Rust lifetimes")
        );
        assert_eq!(clean("  “Budget   plan”  ").as_deref(), Some("Budget plan"));
        assert_eq!(
            clean("'Paris's best cafés'").as_deref(),
            Some("Paris's best cafés")
        );
        assert_eq!(clean("\n\n  \n"), None);
        assert_eq!(clean("\"\"..."), None);
    }

    #[test]
    fn long_titles_are_cut_at_a_word() {
        let long = "A very long title that keeps going well past the sixty character limit";
        let t = clean(long).unwrap();
        assert!(t.chars().count() <= MAX_TITLE, "{t}");
        assert!(long.starts_with(&t));
        assert!(!t.ends_with(' '));
        let no_spaces = "x".repeat(100);
        assert_eq!(clean(&no_spaces).unwrap().chars().count(), MAX_TITLE);
    }
}
