//! Time to first token over each database transport, side by side in one
//! run: two stacks on their own databases, one worker over Hyperdrive and
//! one over HTTP (the test gateway in front of `postrust`), requests
//! alternating between them. The upstream waits [`WORD_DELAY_MS`] before
//! each word, as in the other time-to-first-token figures.

use std::path::Path;

use serde_json::json;

use crate::bench::register;
use crate::test::{PgStack, Via};
use crate::ttft_bench::{median, stream_in_new_conversation, summary};

/// The upstream's delay before each word, in ms.
const WORD_DELAY_MS: u64 = 50;
/// Measured requests per transport (after one warm-up each).
const SAMPLES: usize = 30;

/// `stack bench-transports`: builds the worker and runs [`run`] alone.
pub async fn standalone(root: &Path) -> Result<(), String> {
    let (logs, secret) = crate::test::build_worker(root).await?;
    run(root, &logs, &secret).await
}

/// Starts both stacks, measures, stops them.
pub async fn run(root: &Path, logs: &Path, secret: &str) -> Result<(), String> {
    println!(
        "\n==> time to first token over each database transport ({WORD_DELAY_MS} ms upstream \
         delay per word, {SAMPLES} requests each, alternating)"
    );
    let hyperdrive =
        PgStack::start_via(root, logs, "ttft-hyperdrive", secret, &[], Via::Hyperdrive).await?;
    let http = match PgStack::start_via(root, logs, "ttft-http", secret, &[], Via::Http).await {
        Ok(s) => s,
        Err(e) => {
            hyperdrive.stop().await;
            return Err(e);
        }
    };
    let stacks = [&hyperdrive, &http];
    let measured = measure(&stacks).await;
    hyperdrive.stop().await;
    http.stop().await;
    let [mut h, mut p] = measured?;
    println!("over Hyperdrive: {}", summary(&h));
    println!("over HTTP:       {}", summary(&p));
    println!(
        "HTTP - Hyperdrive (medians): {:+.1} ms",
        median(&mut p) - median(&mut h)
    );
    Ok(())
}

/// First-token times through each stack's worker.
async fn measure(stacks: &[&PgStack; 2]) -> Result<[Vec<f64>; 2], String> {
    let client = reqwest::Client::new();
    let mut access = Vec::new();
    for s in stacks {
        access.push(register(&s.worker.base_url).await?);
    }
    let mut times = [Vec::new(), Vec::new()];
    for i in 0..=SAMPLES {
        for (k, s) in stacks.iter().enumerate() {
            let marker = format!("transport-{k}-{i}-{}", std::process::id());
            let first_word = format!("tr{k}x{i}y");
            let chunks: Vec<String> = (0..5).map(|w| format!("{first_word}{w} ")).collect();
            client
                .post(format!("{}/_control/scripts", s.stand_in.url()))
                .json(&json!({"contains": marker, "times": 1,
                    "reply": {"chunks": chunks, "chunk_delay_ms": WORD_DELAY_MS}}))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let base = &s.worker.base_url;
            let needle = format!("{first_word}0");
            let t = stream_in_new_conversation(
                &client,
                base,
                &access[k],
                "transport",
                &marker,
                &needle,
            )
            .await?;
            if i > 0 {
                times[k].push(t.first);
            }
        }
    }
    Ok(times)
}
