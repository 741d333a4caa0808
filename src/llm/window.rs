//! The context window: which earlier messages go with a new one.
//!
//! The system prompt and the new message always go. Earlier messages are
//! added newest first, a whole exchange (a user message and the answers
//! after it) at a time, while they fit in the prompt budget of the model
//! being called: `context_window − answer reserve − safety margin`. An
//! exchange that does not fit ends the window; nothing older is sent, so
//! the model never sees half a pair or a gap.
//!
//! Counting is lazy. Stored counts are used as they are; for the rest the
//! byte length is a free upper bound, and only when the bounds say the
//! conversation may not fit are texts tokenised (each once, newest first,
//! and only as far back as the budget reaches). The counts made here are
//! handed back so they can be stored.

use super::chat::Role;
use super::tokens::upper_bound;

/// Tokens a chat template adds around each message (role markers, separators).
pub const PER_MESSAGE: u32 = 4;
/// Tokens that prime the answer.
pub const PER_REPLY: u32 = 3;

/// One earlier message of the conversation.
#[derive(Debug, Clone)]
pub struct Earlier<'a> {
    /// Who said it.
    pub role: Role,
    /// Its text.
    pub text: &'a str,
    /// Its stored token count, if known.
    pub tokens: Option<u32>,
}

/// The planned prompt: `earlier[first..]` goes with the system prompt and
/// the new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Index of the oldest earlier message sent.
    pub first: usize,
    /// Prompt tokens (exact where counted, an upper bound otherwise).
    pub tokens: u32,
    /// Best guess of the prompt tokens (for `message_start` before the
    /// provider reports): `tokens` where counted, else a quarter of the bytes.
    pub estimate: u32,
}

/// The system prompt and the new message alone exceed the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    /// Their tokens.
    pub tokens: u32,
    /// The budget.
    pub budget: u32,
}

/// The texts of one send and what is known of their sizes.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// Slot 0: system prompt; slot 1: new message; slot 2 + i: `earlier[i]`.
    texts: Vec<Option<&'a str>>,
    /// Known token counts, per slot.
    exact: Vec<Option<u32>>,
    /// Unit starts: indices of `earlier` where an exchange begins.
    starts: Vec<usize>,
    /// Earlier messages counted here (index, tokens), in counting order.
    counted: Vec<(usize, u32)>,
}

const SYSTEM: usize = 0;
const NEW: usize = 1;
const EARLIER: usize = 2;

impl<'a> Context<'a> {
    /// A send's context: optional system prompt, earlier messages oldest
    /// first, and the new message.
    pub fn new(system: Option<&'a str>, earlier: &[Earlier<'a>], new: &'a str) -> Self {
        let mut texts = vec![system, Some(new)];
        let mut exact = vec![None, None];
        let mut starts = Vec::new();
        for (i, e) in earlier.iter().enumerate() {
            if i == 0 || e.role == Role::User {
                starts.push(i);
            }
            texts.push(Some(e.text));
            exact.push(e.tokens);
        }
        Context {
            texts,
            exact,
            starts,
            counted: Vec::new(),
        }
    }

    /// The window for a prompt budget. `count` tokenises a text; it is
    /// called only when the upper bounds do not fit, at most once per text
    /// over every plan of this context.
    pub fn plan(
        &mut self,
        budget: u32,
        count: &mut dyn FnMut(&str) -> u32,
    ) -> Result<Window, TooLong> {
        let bound = (0..self.texts.len())
            .filter_map(|slot| self.bound(slot))
            .fold(PER_REPLY, |sum, t| {
                sum.saturating_add(t.saturating_add(PER_MESSAGE))
            });
        if bound <= budget {
            let estimate = (0..self.texts.len())
                .filter_map(|slot| {
                    let text = self.texts[slot]?;
                    Some(self.exact[slot].unwrap_or_else(|| upper_bound(text).div_ceil(4)))
                })
                .fold(PER_REPLY, |sum, t| {
                    sum.saturating_add(t.saturating_add(PER_MESSAGE))
                });
            return Ok(Window {
                first: 0,
                tokens: bound,
                estimate,
            });
        }
        let mut used = [SYSTEM, NEW]
            .into_iter()
            .filter_map(|slot| self.exact(slot, count))
            .fold(PER_REPLY, |sum, t| {
                sum.saturating_add(t.saturating_add(PER_MESSAGE))
            });
        if used > budget {
            return Err(TooLong {
                tokens: used,
                budget,
            });
        }
        let earlier = self.texts.len() - EARLIER;
        let mut first = earlier;
        for u in (0..self.starts.len()).rev() {
            let (start, end) = (
                self.starts[u],
                self.starts.get(u + 1).map_or(earlier, |&e| e),
            );
            let mut cost = 0u32;
            for i in start..end {
                let t = self.exact(EARLIER + i, count).unwrap_or(0);
                cost = cost.saturating_add(t.saturating_add(PER_MESSAGE));
                if used.saturating_add(cost) > budget {
                    // Already too large: the rest need not be counted now.
                    break;
                }
            }
            if used.saturating_add(cost) > budget {
                break;
            }
            used += cost;
            first = start;
        }
        Ok(Window {
            first,
            tokens: used,
            estimate: used,
        })
    }

    /// Whether [`Context::plan`] for `budget` would tokenise any text (so
    /// that a tokeniser is loaded only when one is needed).
    pub fn needs_counting(&self, budget: u32) -> bool {
        let mut called = false;
        let _ = self.clone().plan(budget, &mut |_| {
            called = true;
            0
        });
        called
    }

    /// Earlier messages tokenised by [`Context::plan`]: (index, tokens).
    pub fn counted(&self) -> &[(usize, u32)] {
        &self.counted
    }

    /// The new message's tokens, if it had to be counted.
    pub fn new_tokens(&self) -> Option<u32> {
        self.exact[NEW]
    }

    fn bound(&self, slot: usize) -> Option<u32> {
        let text = self.texts[slot]?;
        Some(self.exact[slot].unwrap_or_else(|| upper_bound(text)))
    }

    fn exact(&mut self, slot: usize, count: &mut dyn FnMut(&str) -> u32) -> Option<u32> {
        let text = self.texts[slot]?;
        if let Some(t) = self.exact[slot] {
            return Some(t);
        }
        let t = count(text);
        self.exact[slot] = Some(t);
        if slot >= EARLIER {
            self.counted.push((slot - EARLIER, t));
        }
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::tokens::{self, Encoding};

    /// One token per word, and a tally of the calls.
    fn words(calls: &mut u32) -> impl FnMut(&str) -> u32 + '_ {
        move |text: &str| {
            *calls += 1;
            u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
        }
    }

    /// `n` words.
    fn text(n: usize) -> String {
        vec!["w"; n].join(" ")
    }

    /// Exchanges of a user message and an answer, `n` words each.
    fn exchanges(texts: &[String]) -> Vec<Earlier<'_>> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| Earlier {
                role: if i % 2 == 0 {
                    Role::User
                } else {
                    Role::Assistant
                },
                text: t,
                tokens: None,
            })
            .collect()
    }

    #[test]
    fn a_short_conversation_is_sent_whole_without_tokenising() {
        let texts: Vec<String> = (0..6).map(|_| text(3)).collect();
        let earlier = exchanges(&texts);
        let mut ctx = Context::new(Some("be brief"), &earlier, "hello there");
        let mut calls = 0;
        let w = ctx.plan(10_000, &mut words(&mut calls)).unwrap();
        assert_eq!(w.first, 0);
        assert_eq!(calls, 0);
        assert!(!ctx.needs_counting(10_000));
        assert!(ctx.counted().is_empty());
        assert_eq!(ctx.new_tokens(), None);
        let bytes = 8 + 11 + 6 * 5;
        assert_eq!(w.tokens, PER_REPLY + bytes + 8 * PER_MESSAGE);
        let quarters = 2 + 3 + 6 * 2;
        assert_eq!(w.estimate, PER_REPLY + quarters + 8 * PER_MESSAGE);
    }

    #[test]
    fn newest_whole_exchanges_that_fit_are_kept() {
        // Ten exchanges of 10 + 10 words: 28 tokens each with overhead.
        let texts: Vec<String> = (0..20).map(|_| text(10)).collect();
        let earlier = exchanges(&texts);
        let mut ctx = Context::new(Some("s"), &earlier, "new message");
        let mut calls = 0;
        let fixed = PER_REPLY + 1 + 2 + 2 * PER_MESSAGE;
        assert!(ctx.needs_counting(fixed + 3 * 28 + 27));
        let w = ctx
            .plan(fixed + 3 * 28 + 27, &mut words(&mut calls))
            .unwrap();
        assert!(
            !ctx.needs_counting(fixed + 3 * 28 + 27),
            "everything it reaches is counted now"
        );
        assert!(ctx.needs_counting(fixed + 5 * 28), "older ones are not");
        assert_eq!(w.first, 14, "three exchanges, not a half fourth");
        assert_eq!(w.tokens, fixed + 3 * 28);
        assert_eq!(w.estimate, w.tokens, "counted: exact");
        // Counted: system, new, three exchanges and the one that did not fit.
        assert_eq!(calls, 2 + 8);
        assert_eq!(ctx.counted().len(), 8);
        assert_eq!(ctx.counted()[0], (18, 10), "newest exchange first");
        assert_eq!(ctx.new_tokens(), Some(2));
    }

    #[test]
    fn a_large_answer_drops_its_whole_exchange_and_everything_older() {
        let mut texts: Vec<String> = (0..6).map(|_| text(5)).collect();
        texts[3] = text(500);
        let earlier = exchanges(&texts);
        let mut ctx = Context::new(None, &earlier, "q");
        let mut calls = 0;
        let w = ctx.plan(100, &mut words(&mut calls)).unwrap();
        assert_eq!(
            w.first, 4,
            "the pair 2..4 goes whole; 0..2 is not sent around the gap"
        );
    }

    #[test]
    fn answers_without_a_question_stay_with_the_exchange_before_them() {
        let t = |role, n| (role, text(n));
        let raw = [
            t(Role::User, 5),
            t(Role::User, 5),
            t(Role::Assistant, 5),
            t(Role::Assistant, 5),
            t(Role::User, 5),
            t(Role::Assistant, 5),
        ];
        let earlier: Vec<Earlier<'_>> = raw
            .iter()
            .map(|(role, text)| Earlier {
                role: *role,
                text,
                tokens: None,
            })
            .collect();
        let mut ctx = Context::new(None, &earlier, "q");
        let mut calls = 0;
        let fixed = PER_REPLY + 1 + PER_MESSAGE;
        let w = ctx
            .plan(fixed + 2 * 9 + 3 * 9 - 1, &mut words(&mut calls))
            .unwrap();
        assert_eq!(
            w.first, 4,
            "the three-message exchange 1..4 did not fit whole"
        );
        let w = ctx.plan(fixed + 5 * 9, &mut words(&mut calls)).unwrap();
        assert_eq!(w.first, 1);
    }

    #[test]
    fn stored_counts_are_used_and_nothing_is_counted_twice() {
        let texts: Vec<String> = (0..8).map(|_| text(10)).collect();
        let mut earlier = exchanges(&texts);
        earlier[7].tokens = Some(40);
        let mut ctx = Context::new(None, &earlier, "q");
        let mut calls = 0;
        let mut count = words(&mut calls);
        let large = ctx.plan(120, &mut count).unwrap();
        let small = ctx.plan(60, &mut count).unwrap();
        drop(count);
        assert!(small.first > large.first, "{small:?} {large:?}");
        assert!(small.tokens <= 60 && large.tokens <= 120);
        assert_eq!(usize::try_from(calls).unwrap(), 1 + ctx.counted().len());
        assert!(
            ctx.counted().iter().all(|&(i, _)| i != 7),
            "stored count reused"
        );
    }

    #[test]
    fn a_stored_count_at_the_integer_limit_saturates() {
        // A provider's saturated report can store u32::MAX: the sums must
        // saturate (and so never fit), not overflow (a panic natively, a
        // wrap to a tiny count in the release build).
        let earlier = [Earlier {
            role: Role::Assistant,
            text: "",
            tokens: Some(u32::MAX),
        }];
        let mut ctx = Context::new(None, &earlier, "");
        let mut calls = 0;
        let w = ctx.plan(1_000, &mut words(&mut calls)).unwrap();
        assert_eq!(w.first, 1, "the huge message is left out");
        assert!(w.tokens <= 1_000);
        let w = ctx.plan(u32::MAX, &mut words(&mut calls)).unwrap();
        assert_eq!(w.tokens, u32::MAX);
    }

    #[test]
    fn a_message_larger_than_the_budget_is_refused() {
        let mut calls = 0;
        let mut ctx = Context::new(Some("a b c"), &[], "one two three four");
        let e = ctx.plan(10, &mut words(&mut calls)).unwrap_err();
        assert_eq!(e.tokens, PER_REPLY + 3 + 4 + 2 * PER_MESSAGE);
        assert_eq!(e.budget, 10);
        assert!(ctx.plan(e.tokens, &mut words(&mut calls)).is_ok());
    }

    #[test]
    fn with_the_real_tokeniser_the_window_fits_its_budget() {
        let texts: Vec<String> = (0..40)
            .map(|i| {
                format!(
                    "Message number {i}: {}",
                    "lorem ipsum dolor sit amet ".repeat(20)
                )
            })
            .collect();
        let earlier = exchanges(&texts);
        let mut ctx = Context::new(Some("You are terse."), &earlier, "And now?");
        let count = |t: &str| tokens::count(Encoding::O200kBase, t);
        let w = ctx.plan(2_000, &mut { count }).unwrap();
        let sent: u32 = texts[w.first..]
            .iter()
            .map(|t| count(t) + PER_MESSAGE)
            .sum::<u32>()
            + count("You are terse.")
            + count("And now?")
            + 2 * PER_MESSAGE
            + PER_REPLY;
        assert_eq!(sent, w.tokens);
        assert!(w.tokens <= 2_000 && w.first.is_multiple_of(2) && w.first > 0);
        let next: u32 = texts[w.first - 2..w.first]
            .iter()
            .map(|t| count(t) + PER_MESSAGE)
            .sum();
        assert!(
            w.tokens + next > 2_000,
            "the next older exchange would not fit"
        );
    }
}
