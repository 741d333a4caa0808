//! `stack bench-ttft-ab BEFORE_DIR [N [AFTER_DIR]]`: time to first token of
//! `…/messages/stream` for two builds of the worker side by side, in one
//! run (`stack bench-throughput-ab …`: the same for the throughput figure,
//! a 1,000-word answer with no upstream delay, whole stream), in one
//! run: BEFORE is another checkout whose worker is already built
//! (`BEFORE_DIR/build`), AFTER is this checkout (built first) or, when
//! given, AFTER_DIR (already built, like BEFORE_DIR). Both workers
//! run at once, each on its own fresh database (migrated with its own
//! `migrations/`), against one provider stand-in that waits
//! [`WORD_DELAY_MS`] before each word. Requests alternate between them (and
//! which goes first alternates too), with the stand-in read directly on
//! every round as the baseline.
//!
//! BEFORE_DIR and AFTER_DIR are only read: their workers run from a copy of its
//! `wrangler.toml` without the `[build]` section (the build is not redone)
//! and with absolute paths, written under this checkout's `target/`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::procs::free_port;
use harness::stack::{start_worker, TestDatabase, Worker, WorkerOptions};
use harness::{migrate, standin};
use serde_json::json;

use crate::bench::register;
use crate::ttft_bench::{first, median, stream_in_new_conversation, summary};

/// The upstream's delay before each word, in ms.
const WORD_DELAY_MS: u64 = 50;
/// Measured requests per worker when `N` is not given (after one warm-up each).
const DEFAULT_SAMPLES: usize = 40;
/// Words in each scripted answer.
const WORDS: usize = 5;

/// What an A/B run measures.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum What {
    /// Time to first token, [`WORD_DELAY_MS`] before each word.
    FirstToken,
    /// Whole-stream time of a 1,000-word answer sent without delay.
    Throughput,
}

/// Builds this checkout's worker (unless `after` is given), starts both
/// stacks, measures, stops them.
pub async fn standalone(
    what: What,
    root: &Path,
    before: &Path,
    samples: Option<&str>,
    after: Option<&Path>,
) -> Result<(), String> {
    let samples = match samples {
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 2)
            .ok_or_else(|| format!("N must be a number ≥ 2, not {n}"))?,
        None => DEFAULT_SAMPLES,
    };
    let before = prebuilt_dir(before)?;
    let after = match after {
        Some(dir) => Some(prebuilt_dir(dir)?),
        None => None,
    };
    let (logs, secret) = match after {
        Some(_) => {
            let logs = root.join("target/stack-logs");
            std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
            (logs, harness::stack::random_hex_secret()?)
        }
        None => crate::test::build_worker(root).await?,
    };
    let after_dir = after.unwrap_or_else(|| root.to_path_buf());
    let admin = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| crate::test::DEFAULT_TEST_DATABASE_URL.into());
    let stand_in = standin::serve(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| e.to_string())?;
    let mut dbs = Vec::new();
    let mut pools = Vec::new();
    let mut workers = Vec::new();
    let started = async {
        for (phase, dir) in [("ab-before", before.as_path()), ("ab-after", &after_dir)] {
            let db = TestDatabase::create(&admin).await?;
            let url = db.url.clone();
            dbs.push(db);
            migrate::run(&url, &dir.join("migrations")).await?;
            let pool = crate::test::local_pool(&url).await?;
            let url = pool.url(&url);
            if pools.is_empty() {
                println!("     database: {}", pool.describe());
            }
            pools.push(pool);
            let vars = crate::test::test_vars(&secret, &stand_in);
            let w = if dir == root {
                crate::test::worker(root, &logs, phase, &url, vars).await?
            } else {
                start_prebuilt(root, &logs, phase, dir, &url, vars).await?
            };
            workers.push(w);
        }
        Ok::<(), String>(())
    }
    .await;
    let measured = match started {
        Ok(()) if what == What::Throughput => {
            measure_throughput(&workers, &stand_in, samples).await
        }
        Ok(()) => measure(&workers, &stand_in, samples).await,
        Err(e) => Err(e),
    };
    for mut w in workers {
        w.proc.stop(Duration::from_secs(5)).await;
    }
    stand_in.shutdown();
    for pool in pools {
        pool.stop().await;
    }
    for db in dbs {
        if let Err(e) = db.drop_database().await {
            eprintln!("warning: could not drop a test database: {e}");
        }
    }
    match what {
        What::FirstToken => report(&before, &after_dir, measured?, samples),
        What::Throughput => report_throughput(&before, &after_dir, measured?, samples),
    }
    Ok(())
}

/// `dir` made absolute, after checking it holds a built worker.
fn prebuilt_dir(dir: &Path) -> Result<PathBuf, String> {
    let dir = dir
        .canonicalize()
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    for built in [
        "build/index_bg.wasm",
        "build/worker/shim.mjs",
        "wrangler.toml",
    ] {
        if !dir.join(built).is_file() {
            return Err(format!(
                "{} is missing: BEFORE_DIR and AFTER_DIR must be checkouts with their worker built",
                dir.join(built).display()
            ));
        }
    }
    Ok(dir)
}

/// Starts the worker already built in `dir` (see the module docs).
async fn start_prebuilt(
    root: &Path,
    logs: &Path,
    phase: &str,
    dir: &Path,
    database_url: &str,
    vars: std::collections::BTreeMap<String, String>,
) -> Result<Worker, String> {
    let run_dir = root.join(format!("target/stack-run/{phase}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    std::fs::create_dir_all(&run_dir).map_err(|e| e.to_string())?;
    let toml = std::fs::read_to_string(dir.join("wrangler.toml")).map_err(|e| e.to_string())?;
    let config = run_dir.join("wrangler.toml");
    std::fs::write(&config, prebuilt_config(&toml, dir)).map_err(|e| e.to_string())?;
    let log: PathBuf = logs.join(format!("{phase}-wrangler.log"));
    let _ = std::fs::remove_file(&log);
    println!(
        "\n==> start the worker built in {} (log: target/stack-logs/{phase}-wrangler.log)",
        dir.display()
    );
    start_worker(
        root,
        WorkerOptions {
            port: free_port().map_err(|e| e.to_string())?,
            database_url: database_url.to_string(),
            vars,
            env_file: run_dir.join("test.env"),
            state_dir: run_dir.join("state"),
            log: Some(log),
            ready_within: Duration::from_secs(300),
            config: Some(config),
        },
    )
    .await
}

/// `toml` without its `[build]` section and with `build/…` paths made
/// absolute under `dir`.
pub(crate) fn prebuilt_config(toml: &str, dir: &Path) -> String {
    let mut out = String::new();
    let mut in_build = false;
    for line in toml.lines() {
        let header = line.trim_start().starts_with('[');
        if header {
            in_build = line.trim() == "[build]";
        }
        if in_build {
            continue;
        }
        out.push_str(&line.replace("\"build/", &format!("\"{}/build/", dir.display())));
        out.push('\n');
    }
    out
}

/// A new user's access token on each worker.
async fn registered(workers: &[Worker]) -> Result<Vec<String>, String> {
    let mut access = Vec::new();
    for w in workers {
        access.push(register(&w.base_url).await?);
    }
    Ok(access)
}

/// First-token times: `[direct, before, after]`.
async fn measure(
    workers: &[Worker],
    stand_in: &standin::StandIn,
    samples: usize,
) -> Result<[Vec<f64>; 3], String> {
    let client = reqwest::Client::new();
    let access = registered(workers).await?;
    let pid = std::process::id();
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..=samples {
        let script = |marker: &str, first_word: &str| {
            let chunks: Vec<String> = (0..WORDS).map(|w| format!("{first_word}{w} ")).collect();
            client
                .post(format!("{}/_control/scripts", stand_in.url()))
                .json(&json!({"contains": marker, "times": 1,
                    "reply": {"chunks": chunks, "chunk_delay_ms": WORD_DELAY_MS}}))
                .send()
        };
        let marker = format!("ab-direct-{i}-{pid}");
        let first_word = format!("abdx{i}y");
        script(&marker, &first_word)
            .await
            .map_err(|e| e.to_string())?;
        let d = first(
            client
                .post(format!("{}/chat/completions", stand_in.groq_base_url()))
                .bearer_auth("bench")
                .json(&json!({
                    "model": "openai/gpt-oss-20b",
                    "stream": true,
                    "messages": [{"role": "user", "content": marker}],
                })),
            &format!("{first_word}0"),
        )
        .await?;
        if i > 0 {
            times[0].push(d.first);
        }
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            let marker = format!("ab-{k}-{i}-{pid}");
            let first_word = format!("ab{k}x{i}y");
            script(&marker, &first_word)
                .await
                .map_err(|e| e.to_string())?;
            let base = &workers[k].base_url;
            let needle = format!("{first_word}0");
            let t =
                stream_in_new_conversation(&client, base, &access[k], "ttft-ab", &marker, &needle)
                    .await?;
            if i > 0 {
                times[k + 1].push(t.first);
            }
        }
    }
    Ok(times)
}

/// Whole-stream times: `[direct, before, after]`.
async fn measure_throughput(
    workers: &[Worker],
    stand_in: &standin::StandIn,
    samples: usize,
) -> Result<[Vec<f64>; 3], String> {
    let client = reqwest::Client::new();
    let access = registered(workers).await?;
    let targets = [
        (workers[0].base_url.as_str(), access[0].as_str()),
        (workers[1].base_url.as_str(), access[1].as_str()),
    ];
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..=samples {
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        let round = crate::throughput_bench::ab_round(&client, stand_in, targets, order, i).await?;
        if i > 0 {
            for (series, t) in times.iter_mut().zip(round) {
                series.push(t);
            }
        }
    }
    Ok(times)
}

fn report_throughput(before: &Path, after: &Path, [mut d, mut b, mut a]: [Vec<f64>; 3], n: usize) {
    println!(
        "\n==> stream throughput, BEFORE ({}) and AFTER ({}) side by side (1,000 words, no \
         upstream delay, {n} runs each, alternating)",
        before.display(),
        after.display()
    );
    println!("stand-in direct, whole stream: {}", summary(&d));
    println!("BEFORE:                        {}", summary(&b));
    println!("AFTER:                         {}", summary(&a));
    let (md, mb, ma) = (median(&mut d), median(&mut b), median(&mut a));
    let per_chunk = |m: f64| (m - md) * 1000.0 / crate::throughput_bench::WORDS as f64;
    println!(
        "ratio to direct (medians): BEFORE {:.2}x ({:.0} us per chunk), AFTER {:.2}x ({:.0} us per chunk)",
        mb / md,
        per_chunk(mb),
        ma / md,
        per_chunk(ma)
    );
}

/// p90 of `v` (as [`summary`] computes it).
fn p90(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() * 9 / 10]
}

fn report(before: &Path, after: &Path, [mut d, mut b, mut a]: [Vec<f64>; 3], samples: usize) {
    println!(
        "\n==> time to first token of …/messages/stream, BEFORE ({}) and AFTER ({}) side by \
         side ({WORD_DELAY_MS} ms upstream delay per word, {samples} requests each, alternating)",
        before.display(),
        after.display()
    );
    println!("stand-in direct, first word: {}", summary(&d));
    println!("BEFORE:                      {}", summary(&b));
    println!("AFTER:                       {}", summary(&a));
    let mut paired: Vec<f64> = a.iter().zip(&b).map(|(a, b)| a - b).collect();
    let (pb, pa) = (p90(&b), p90(&a));
    let (md, mb, ma) = (median(&mut d), median(&mut b), median(&mut a));
    println!(
        "added latency over direct (medians): BEFORE {:+.1} ms, AFTER {:+.1} ms",
        mb - md,
        ma - md
    );
    println!(
        "AFTER - BEFORE: medians {:+.1} ms, p90s {:+.1} ms, median of the paired differences \
         {:+.1} ms",
        ma - mb,
        pa - pb,
        median(&mut paired)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prebuilt_config_drops_the_build_and_anchors_paths() {
        let toml = "name = \"x\"\nmain = \"build/worker/shim.mjs\"\n\n[build]\ncommand = \"npm run b\"\nwatch_dir = \"src\"\n\n[assets]\ndirectory = \"build/assets\"\n";
        let out = prebuilt_config(toml, Path::new("/b"));
        assert_eq!(
            out,
            "name = \"x\"\nmain = \"/b/build/worker/shim.mjs\"\n\n[assets]\ndirectory = \"/b/build/assets\"\n"
        );
    }
}
