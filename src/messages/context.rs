//! The context of a send, planned per attempt: the glue between the stored
//! history and the pure window planner (`llm::window`).

use uuid::Uuid;
use worker::console_warn;

use super::generate::Planned;
use super::input::SendInput;
use super::repo::ContextMessage;
use crate::http::context::RequestContext;
use crate::http::{ApiError, FieldError};
use crate::llm::catalogue;
use crate::llm::chat::{Role, Turn};
use crate::llm::fallback::Attempt;
use crate::llm::limits;
use crate::llm::tokenizer;
use crate::llm::tokens;
use crate::llm::window::{Context, Earlier};
use crate::runtime::now_ms;

/// The context windows of a send: one per attempt (re-planned for each
/// model's window), the counts made, and the new message's tokens.
pub struct Windows {
    /// The attempts that the new message fits, each with its turns.
    pub attempts: Vec<Planned>,
    /// Token counts made while planning: (message, tokens), to store.
    pub counted: Vec<(Uuid, i32)>,
    /// The new message's tokens, when it had to be counted.
    pub new_tokens: Option<i32>,
}

/// Plans the context of every attempt: the system prompt and the new
/// message always, then the newest whole exchanges of `history` that fit
/// the model's budget. 422 when the new message
/// does not fit the first model at all; a fallback it does not fit is skipped.
///
/// Texts are counted with the encoding of the attempt's model, loading its
/// tokeniser when this is the first count of the isolate (reported as
/// `Server-Timing: tokenizer`). A count made for one attempt is reused by
/// the next, like stored counts, whatever encoding made it: the margin
/// covers the difference. When the tokeniser cannot be loaded, byte-length
/// bounds stand in for the counts, and nothing is stored.
pub async fn plan_windows(
    rc: &RequestContext,
    system: Option<&str>,
    earlier: &[ContextMessage],
    input: &SendInput,
    attempts: Vec<Attempt>,
) -> Result<Windows, ApiError> {
    let role = |m: &ContextMessage| {
        if m.role == "assistant" {
            Role::Assistant
        } else {
            Role::User
        }
    };
    let sizes: Vec<Earlier<'_>> = earlier
        .iter()
        .map(|m| Earlier {
            role: role(m),
            text: &m.content,
            tokens: m.content_tokens.and_then(|n| u32::try_from(n).ok()),
        })
        .collect();
    let config = rc.config;
    let mut context = Context::new(system, &sizes, &input.content);
    let mut planned = Vec::new();
    let mut exact = true;
    for (i, attempt) in attempts.into_iter().enumerate() {
        let model_limits = config.limits(&attempt.model);
        let budget = limits::budget(model_limits, input.max_tokens);
        let bpe = if context.needs_counting(budget) {
            let encoding = catalogue::tokenizer(&attempt.model);
            let first = !tokenizer::tried(encoding);
            let started = now_ms();
            let bpe = tokenizer::load(&rc.env, encoding).await;
            if first {
                let loaded = if bpe.is_some() { "" } else { " failed" };
                let desc = format!("{}{loaded}", encoding.name());
                rc.timing("tokenizer", now_ms().saturating_sub(started), Some(&desc));
            }
            exact &= bpe.is_some();
            bpe
        } else {
            None
        };
        let mut count = |text: &str| {
            bpe.map_or_else(
                || tokens::upper_bound(text),
                |b| tokens::count_with(b, text),
            )
        };
        match context.plan(budget, &mut count) {
            Ok(w) => {
                let mut turns: Vec<Turn> = earlier[w.first..]
                    .iter()
                    .map(|m| Turn {
                        role: role(m),
                        content: m.content.clone(),
                    })
                    .collect();
                turns.push(Turn {
                    role: Role::User,
                    content: input.content.clone(),
                });
                planned.push(Planned {
                    attempt,
                    turns,
                    input_estimate: w.estimate,
                    max_output_tokens: model_limits.max_output_tokens,
                });
            }
            Err(e) if i == 0 => {
                let with = if system.is_some() {
                    " with the system prompt"
                } else {
                    ""
                };
                return Err(ApiError::Validation(vec![FieldError::new(
                    "content",
                    format!(
                        "too long for {}: this message{with} needs about {} tokens, the \
                         model's context leaves {} for the prompt (shorten it, or ask for \
                         fewer max_tokens)",
                        attempt.model, e.tokens, e.budget
                    ),
                )]));
            }
            Err(e) => console_warn!(
                "fallback {} skipped: the message needs {} tokens, its budget is {}",
                attempt.model,
                e.tokens,
                e.budget
            ),
        }
    }
    let tokens = |n: u32| i32::try_from(n).ok().filter(|_| exact);
    Ok(Windows {
        counted: context
            .counted()
            .iter()
            .filter_map(|&(i, n)| Some((earlier[i].id, tokens(n)?)))
            .collect(),
        new_tokens: context.new_tokens().and_then(tokens),
        attempts: planned,
    })
}
