//! Run only in the load phases (`npm test` runs them on PGlite and on
//! PostgreSQL, each with a fresh database; `stack test-only load`): 200
//! streamed sends at once over 50 users, with readers listing conversations
//! and messages meanwhile. Every request must succeed (no 5xx, no other
//! failure), every answer be stored exactly once as `complete`, and each
//! user's usage totals equal the sums over that user's messages.
//! `stack bench-load` runs the same load and reports its figures.

use std::time::Duration;

use harness::load::{run, Plan};

use crate::support::stack;

/// Generous for two busy cores (a run takes well under a minute here), yet
/// a stack that serialises or stalls the streams cannot meet it.
const WITHIN: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_streamed_sends_are_all_answered_and_stored_once() {
    let s = stack();
    let plan = Plan::default();
    let report = tokio::time::timeout(WITHIN, run(&s.base_url, &s.standin_url, &plan))
        .await
        .unwrap_or_else(|_| panic!("the load did not finish within {WITHIN:?}"))
        .expect("the load's setup");
    for line in report.lines(&plan) {
        println!("{line}");
    }
    assert_eq!(
        report.server_errors, 0,
        "5xx answers: {:#?}",
        report.problems
    );
    assert!(
        report.problems.is_empty(),
        "{} problems, the first: {:#?}",
        report.problems.len(),
        &report.problems[..report.problems.len().min(10)]
    );
    assert_eq!(report.answers, plan.sends);
    assert_eq!(report.words, plan.sends * plan.words);
    assert!(report.reads > 0, "the readers ran during the sends");
}
