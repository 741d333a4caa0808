//! The context window and token counting on generated conversations:
//! arbitrary texts, roles and stored counts (up to `u32::MAX`, as a
//! provider's saturated report can store), arbitrary budgets; and the
//! tokeniser table reader on arbitrary bytes.

use proptest::prelude::*;

use super::config;
use super::strategies::text;
use crate::llm::chat::Role;
use crate::llm::tokenizer;
use crate::llm::tokens::{self, Encoding};
use crate::llm::window::{Context, Earlier, PER_MESSAGE, PER_REPLY};

/// A stored count: none, small, or huge.
fn stored_count() -> impl Strategy<Value = Option<u32>> {
    proptest::option::of(prop_oneof![
        3 => 0u32..2_000,
        1 => Just(u32::MAX),
        1 => any::<u32>(),
    ])
}

fn earlier() -> impl Strategy<Value = Vec<(bool, String, Option<u32>)>> {
    prop::collection::vec((any::<bool>(), text(), stored_count()), 0..24)
}

/// One token per whitespace-separated word, at least one per text.
fn words(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count().max(1)).unwrap_or(u32::MAX)
}

proptest! {
    #![proptest_config(config())]

    /// A planned window fits its budget, starts at an exchange (a user
    /// message, or the oldest message), and counts each text at most once.
    #[test]
    fn windows_fit_and_start_at_an_exchange(
        system in proptest::option::of(text()),
        messages in earlier(),
        new in text(),
        budget in prop_oneof![0u32..5_000, any::<u32>()],
    ) {
        let earlier: Vec<Earlier<'_>> = messages
            .iter()
            .map(|(user, text, tokens)| Earlier {
                role: if *user { Role::User } else { Role::Assistant },
                text,
                tokens: *tokens,
            })
            .collect();
        let mut ctx = Context::new(system.as_deref(), &earlier, &new);
        let mut calls = 0usize;
        let mut count = |t: &str| {
            calls += 1;
            words(t)
        };
        match ctx.plan(budget, &mut count) {
            Ok(w) => {
                prop_assert!(w.tokens <= budget, "{w:?} over {budget}");
                prop_assert!(w.first <= earlier.len());
                prop_assert!(
                    w.first == 0 || w.first == earlier.len() || earlier[w.first].role == Role::User,
                    "window starts mid-exchange at {}", w.first
                );
                prop_assert!(w.tokens >= PER_REPLY + PER_MESSAGE);
            }
            Err(too_long) => {
                prop_assert_eq!(too_long.budget, budget);
                prop_assert!(too_long.tokens > budget);
            }
        }
        prop_assert!(calls <= 2 + earlier.len());
        // Planning again for the same budget counts nothing new.
        let mut again = 0usize;
        let _ = ctx.plan(budget, &mut |t: &str| {
            again += 1;
            words(t)
        });
        prop_assert_eq!(again, 0);
    }

    #[test]
    fn counts_never_exceed_the_free_bound(text in text()) {
        for encoding in Encoding::ALL {
            prop_assert!(tokens::count(encoding, &text) <= tokens::upper_bound(&text));
        }
    }

    #[test]
    fn damaged_tokeniser_tables_are_refused(table in prop::collection::vec(any::<u8>(), 0..2_000)) {
        for encoding in Encoding::ALL {
            let err = tokenizer::build(encoding, &table).err().unwrap_or_default();
            prop_assert!(!err.is_empty());
        }
    }
}
