//! Stream throughput: a 1,000-word answer that the provider stand-in sends
//! with no delay, read directly from the stand-in and through
//! `…/messages/stream`, side by side (alternating, same stand-in), with
//! the ratio and the worker's cost per upstream chunk.
//!
//! `BENCH=throughput npm run bench` runs only this figure.

use std::path::Path;
use std::time::Instant;

use harness::standin;
use serde_json::json;

use crate::bench::json_of;

/// Words (= upstream chunks = `text_delta` events) per answer.
pub(crate) const WORDS: usize = 1000;
/// Measured pairs (after one warm-up pair).
const RUNS: usize = 15;

/// Builds the worker, starts the benchmark stack and measures throughput,
/// behind each of [`crate::bench::pool_kinds`].
pub async fn run_alone(root: &Path) -> Result<(), String> {
    crate::bench::behind_each_pool(root, async |_, stack, access| {
        run(&stack.worker.base_url, &stack.stand_in, access).await
    })
    .await
}

/// Words of the short answer that measures a streamed send's fixed cost.
const SHORT: usize = 10;

/// Measures and prints the side-by-side figures: the whole figure on a
/// [`WORDS`]-word answer, and a [`SHORT`]-word one to tell the fixed cost
/// of a send (authentication, database, storing) from the cost per chunk.
pub async fn run(base: &str, stand_in: &standin::StandIn, access: &str) -> Result<(), String> {
    println!(
        "\n==> stream throughput: {WORDS}-word answer, no upstream delay, {RUNS} runs each, alternating"
    );
    let client = reqwest::Client::new();
    // [direct, through] for WORDS, then for SHORT.
    let mut series: [Vec<f64>; 4] = Default::default();
    for i in 0..=RUNS {
        for (k, words) in [WORDS, SHORT].into_iter().enumerate() {
            let chunks: Vec<String> = (0..words).map(|w| format!("w{w} ")).collect();
            let marker = format!("throughput-{words}-{i}-{}", std::process::id());
            let upstream =
                crate::bench::direct_request(&client, stand_in, &marker, &chunks).await?;
            let (d, direct_chunks) = read_all(upstream, "\"content\":\"w").await?;
            if direct_chunks != words {
                return Err(format!(
                    "expected {words} chunks directly, got {direct_chunks}"
                ));
            }
            let t = through_worker(&client, base, access, &marker, words).await?;
            if i > 0 {
                series[2 * k].push(d);
                series[2 * k + 1].push(t);
            }
        }
    }
    let [mut direct, mut through, mut short_direct, mut short_through] = series;
    let figures = Figures::of(&mut direct, &mut through, WORDS);
    println!("     stand-in direct, whole stream:    {}", spread(&direct));
    println!(
        "     through the worker, whole stream: {}",
        spread(&through)
    );
    println!("{}", figures.line());
    let short = Figures::of(&mut short_direct, &mut short_through, SHORT);
    let fixed = short.through_ms - short.direct_ms;
    let per_chunk =
        ((figures.through_ms - short.through_ms) - (figures.direct_ms - short.direct_ms)) * 1000.0
            / (WORDS - SHORT) as f64;
    println!(
        "     a {SHORT}-word answer: direct {:.1} ms, through the worker {:.1} ms: a streamed \
         send's fixed cost {fixed:.1} ms; the cost per chunk beyond it {per_chunk:.0} us",
        short.direct_ms, short.through_ms
    );
    Ok(())
}

/// The answer to `marker` (scripted already) streamed through the worker in
/// a new conversation: the whole stream's ms, checked for `words` deltas.
pub(crate) async fn through_worker(
    client: &reqwest::Client,
    base: &str,
    access: &str,
    marker: &str,
    words: usize,
) -> Result<f64, String> {
    let conversation = json_of(
        client
            .post(format!("{base}/api/v1/conversations"))
            .bearer_auth(access)
            .json(&json!({"title": "throughput"})),
    )
    .await?;
    let id = conversation["id"].as_str().ok_or("no conversation id")?;
    let worker = client
        .post(format!("{base}/api/v1/conversations/{id}/messages/stream"))
        .bearer_auth(access)
        .json(&json!({"content": marker}));
    let (t, deltas) = read_all(worker, "\"type\":\"text_delta\"").await?;
    if deltas != words {
        return Err(format!("expected {words} text_delta events, got {deltas}"));
    }
    Ok(t)
}

/// One round of the A/B throughput bench: the stand-in read directly, then
/// each worker (in `order`); whole-stream ms as `[direct, worker 0, worker 1]`.
pub(crate) async fn ab_round(
    client: &reqwest::Client,
    stand_in: &standin::StandIn,
    workers: [(&str, &str); 2],
    order: [usize; 2],
    round: usize,
) -> Result<[f64; 3], String> {
    let chunks: Vec<String> = (0..WORDS).map(|i| format!("w{i} ")).collect();
    let marker = format!("tp-ab-direct-{round}-{}", std::process::id());
    crate::bench::script(client, stand_in, &marker, &chunks).await?;
    let direct = crate::bench::direct_only(client, stand_in, &marker);
    let (d, n) = read_all(direct, "\"content\":\"w").await?;
    if n != WORDS {
        return Err(format!("expected {WORDS} chunks directly, got {n}"));
    }
    let mut out = [d, 0.0, 0.0];
    for k in order {
        let marker = format!("tp-ab-{k}-{round}-{}", std::process::id());
        crate::bench::script(client, stand_in, &marker, &chunks).await?;
        let (base, access) = workers[k];
        out[k + 1] = through_worker(client, base, access, &marker, WORDS).await?;
    }
    Ok(out)
}

/// Reads a streamed response to its end: elapsed ms and how many times
/// `needle` occurs in the body.
async fn read_all(req: reqwest::RequestBuilder, needle: &str) -> Result<(f64, usize), String> {
    let start = Instant::now();
    let resp = req.send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("streaming request failed with {}", resp.status()));
    }
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    let elapsed = start.elapsed().as_secs_f64() * 1000.0;
    Ok((
        elapsed,
        String::from_utf8_lossy(&body).matches(needle).count(),
    ))
}

/// The medians and what follows from them.
#[derive(Debug, PartialEq)]
struct Figures {
    direct_ms: f64,
    through_ms: f64,
    ratio: f64,
    per_chunk_us: f64,
}

impl Figures {
    /// Sorts both series and derives the figures from their medians.
    fn of(direct: &mut [f64], through: &mut [f64], chunks: usize) -> Figures {
        direct.sort_by(f64::total_cmp);
        through.sort_by(f64::total_cmp);
        let (d, t) = (median(direct), median(through));
        Figures {
            direct_ms: d,
            through_ms: t,
            ratio: t / d,
            per_chunk_us: (t - d) * 1000.0 / chunks as f64,
        }
    }

    fn line(&self) -> String {
        format!(
            "     medians: direct {:.1} ms, through the worker {:.1} ms: {:.1}x direct \
             (target <= 3x); per-chunk cost (through - direct)/chunks = {:.0} us",
            self.direct_ms, self.through_ms, self.ratio, self.per_chunk_us
        )
    }
}

fn median(sorted: &[f64]) -> f64 {
    sorted[sorted.len() / 2]
}

fn spread(sorted: &[f64]) -> String {
    format!(
        "min {:.1} ms, median {:.1} ms, max {:.1} ms",
        sorted[0],
        median(sorted),
        sorted[sorted.len() - 1]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_come_from_the_medians() {
        let mut direct = vec![30.0, 10.0, 20.0];
        let mut through = vec![90.0, 50.0, 70.0];
        let f = Figures::of(&mut direct, &mut through, 100);
        assert_eq!(direct, [10.0, 20.0, 30.0]);
        assert_eq!(f.direct_ms, 20.0);
        assert_eq!(f.through_ms, 70.0);
        assert_eq!(f.ratio, 3.5);
        assert_eq!(f.per_chunk_us, 500.0);
        assert!(f.line().contains("3.5x direct"), "{}", f.line());
    }
}
