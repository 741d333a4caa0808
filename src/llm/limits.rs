//! A model's limits in a deployment: the prompt budget they leave, and the
//! `MODEL_LIMITS` overrides of the catalogue's values.

use super::catalogue::{self, Limits};

/// The smallest prompt budget a `MODEL_LIMITS` entry may leave.
pub const MIN_PROMPT_BUDGET: u32 = 256;

/// The safety margin for the difference between `cl100k_base` counts and
/// the provider's own tokeniser: 2% of the window, at least 64 tokens.
pub fn margin(context_window: u32) -> u32 {
    (context_window / 50).max(64)
}

/// Tokens the prompt may use: the window less the answer reserve (the
/// request's `max_tokens`, else the model's answer limit) and the margin.
pub fn budget(limits: Limits, max_tokens: Option<u32>) -> u32 {
    let reserve = max_tokens.map_or(limits.max_output_tokens, |n| {
        n.min(limits.max_output_tokens)
    });
    limits
        .context_window
        .saturating_sub(reserve)
        .saturating_sub(margin(limits.context_window))
}

/// Parses `MODEL_LIMITS`: `model=context_window/max_output_tokens` entries
/// separated by `;`, for models in the catalogue.
pub fn parse_overrides(raw: Option<&str>, problems: &mut Vec<String>) -> Vec<(String, Limits)> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in raw.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = entry.rsplit_once('=').and_then(|(id, limits)| {
            let (window, output) = limits.split_once('/')?;
            let limits = Limits {
                context_window: window.trim().parse().ok()?,
                max_output_tokens: output.trim().parse().ok()?,
            };
            Some((id.trim().to_string(), limits))
        });
        match parsed {
            Some((id, _)) if catalogue::find(&id).is_none() => {
                problems.push(format!(
                    "MODEL_LIMITS names {id:?}, which is not in the model catalogue"
                ));
            }
            Some((_, l)) if l.max_output_tokens == 0 || budget(l, None) < MIN_PROMPT_BUDGET => {
                problems.push(format!(
                    "MODEL_LIMITS entry {entry:?}: the answer limit must be at least 1, and the \
                     window less the answer limit and the safety margin must leave at least \
                     {MIN_PROMPT_BUDGET} tokens for the prompt"
                ));
            }
            Some(pair) => out.push(pair),
            None => problems.push(format!(
                "MODEL_LIMITS entry {entry:?} must look like model=context_window/max_output_tokens"
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_reserves_the_answer_and_a_margin() {
        let l = Limits {
            context_window: 131_072,
            max_output_tokens: 65_536,
        };
        assert_eq!(budget(l, None), 131_072 - 65_536 - 2_621);
        assert_eq!(budget(l, Some(1_000)), 131_072 - 1_000 - 2_621);
        assert_eq!(budget(l, Some(100_000)), budget(l, None));
        let small = Limits {
            context_window: 1_000,
            max_output_tokens: 200,
        };
        assert_eq!(budget(small, None), 1_000 - 200 - 64);
        let tiny = Limits {
            context_window: 100,
            max_output_tokens: 90,
        };
        assert_eq!(budget(tiny, None), 0);
    }
}
