//! CPU cost of the context window, natively: `cargo bench --bench context`.
//!
//! - the tokeniser's cold cost (building `o200k_base` and `cl100k_base` from
//!   their asset tables, what the first counting send of an isolate pays
//!   after fetching the table) and its warm cost per 1,000 tokens;
//! - planning the window of a send for conversations of 10 and 200 turns:
//!   with nothing counted yet (the first send whose byte-length bound
//!   exceeds the budget) and with every count stored (every later send).
//!
//! `npm run bench` measures the same inside the worker (`Server-Timing: context`).

use std::hint::black_box;
use std::time::Instant;

use conversation_api::llm::catalogue::Limits;
use conversation_api::llm::chat::Role;
use conversation_api::llm::limits::budget;
use conversation_api::llm::tokenizer;
use conversation_api::llm::tokens::{self, Encoding};
use conversation_api::llm::window::{Context, Earlier};

/// About 150 tokens of English prose per message.
fn message(i: usize) -> String {
    format!(
        "Turn {i}: {}",
        "The quick brown fox jumps over the lazy dog, and then it considers \
         the question again, carefully, before answering. "
            .repeat(6)
    )
}

fn millis(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// Median of `runs` timings of `f`, in milliseconds.
fn median_ms(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut ms: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            millis(start)
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[runs / 2]
}

fn plan_ms(texts: &[String], counts: Option<&[u32]>, limits: Limits, runs: usize) -> (f64, usize) {
    let earlier: Vec<Earlier<'_>> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| Earlier {
            role: if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            },
            text: t,
            tokens: counts.map(|c| c[i]),
        })
        .collect();
    let mut kept = 0;
    let ms = median_ms(runs, || {
        let mut ctx = Context::new(Some("You are helpful."), &earlier, "The new question?");
        let w = ctx.plan(budget(limits, None), &mut count).expect("fits");
        kept = texts.len() - w.first;
        black_box(w);
    });
    (ms, kept)
}

/// Tokens in the gpt-oss models' encoding.
fn count(text: &str) -> u32 {
    tokens::count(Encoding::O200kBase, text)
}

fn main() {
    for encoding in Encoding::ALL {
        let table = harness::tokenizer_tables::table(tokens::embedded(encoding)).expect("table");
        let start = Instant::now();
        black_box(tokenizer::build(encoding, &table).expect("builds"));
        let first_build = millis(start);
        let cold = median_ms(5, || {
            black_box(tokenizer::build(encoding, &table).expect("builds"));
        });
        println!(
            "tokeniser cold (build {} from its {} KiB table): first {first_build:.1} ms, median of 5 {cold:.1} ms",
            encoding.name(),
            table.len() / 1024
        );
    }

    let text: String = (0..40).map(message).collect();
    let n = count(&text);
    let warm = median_ms(20, || {
        black_box(count(black_box(&text)));
    });
    println!(
        "tokeniser warm: {n} tokens in {warm:.2} ms = {:.3} ms per 1,000 tokens",
        warm * 1000.0 / f64::from(n)
    );

    let small = Limits {
        context_window: 8_000,
        max_output_tokens: 1_000,
    };
    let large = Limits {
        context_window: 131_072,
        max_output_tokens: 65_536,
    };
    for turns in [10, 200] {
        let texts: Vec<String> = (0..turns).map(message).collect();
        let counts: Vec<u32> = texts.iter().map(|t| count(t)).collect();
        for (limits, label) in [(small, "8k"), (large, "131k")] {
            let (uncounted, kept) = plan_ms(&texts, None, limits, 20);
            let (stored, _) = plan_ms(&texts, Some(&counts), limits, 20);
            println!(
                "plan a {turns:>3}-turn send, {label:>4} window (keeps {kept:>3}): \
                 nothing counted yet {uncounted:.3} ms, counts stored {stored:.4} ms"
            );
        }
    }
}
