//! `npm run bench`, cold start part: the script's size, and the first
//! request that a freshly started `wrangler dev` serves (isolate creation,
//! wasm compilation and instantiation) against the requests after it. The
//! first counting send of an isolate (the tokeniser's load) is measured by
//! `context_bench`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use harness::procs::{free_port, Proc};
use harness::stack::{spawn_worker, WorkerOptions};

use crate::test::DEFAULT_TEST_DATABASE_URL;

/// Fresh starts measured (each rebuilds the worker through wrangler's
/// `[build]` command, so a start takes a while).
const STARTS: usize = 3;
/// Requests after the first one, per start.
const LATER: usize = 20;
/// What wrangler prints once the worker is loaded.
const READY: &str = "worker ready on";

/// Prints the size and the cold and warm request times.
pub async fn run(root: &Path, logs: &Path, secret: &str) -> Result<(), String> {
    println!("\n==> worker size and cold start");
    let size = crate::size::measure(root).await?;
    println!(
        "script size: {:.0} KiB, gzip {:.0} KiB (wrangler deploy --dry-run; budget {} KiB gzip)",
        size.raw_kib,
        size.gzip_kib,
        crate::size::GZIP_BUDGET_KIB
    );
    let mut firsts = Vec::new();
    let mut later = Vec::new();
    for start in 0..STARTS {
        let (first, rest) = fresh_start(root, logs, secret, start).await?;
        firsts.push(first);
        later.extend(rest);
    }
    let each: Vec<String> = firsts.iter().map(|ms| format!("{ms:.0}")).collect();
    firsts.sort_by(f64::total_cmp);
    later.sort_by(f64::total_cmp);
    println!(
        "first GET /health after a fresh wrangler dev start ({STARTS} starts): median {:.1} ms \
         (each: {} ms); the {LATER} after it: median {:.1} ms",
        firsts[firsts.len() / 2],
        each.join(", "),
        later[later.len() / 2]
    );
    Ok(())
}

/// Starts `wrangler dev`, waits for its ready line, then times the first
/// `GET /health` and the ones after it.
async fn fresh_start(
    root: &Path,
    logs: &Path,
    secret: &str,
    start: usize,
) -> Result<(f64, Vec<f64>), String> {
    let run_dir = root.join(format!(
        "target/stack-run/cold-{}-{start}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&run_dir);
    let log = logs.join("cold-wrangler.log");
    let _ = std::fs::remove_file(&log);
    let opts = WorkerOptions {
        port: free_port().map_err(|e| e.to_string())?,
        database_url: DEFAULT_TEST_DATABASE_URL.into(),
        vars: BTreeMap::from([("JWT_SECRET".to_string(), secret.to_string())]),
        env_file: run_dir.join("test.env"),
        state_dir: run_dir.join("state"),
        log: Some(log),
        ready_within: Duration::from_secs(600),
        config: None,
    };
    let (mut proc, base) = spawn_worker(root, &opts)?;
    let result = async {
        wait_for_log(&mut proc, READY, opts.ready_within).await?;
        let client = reqwest::Client::new();
        let url = format!("{base}/health");
        let first = timed_get(&client, &url).await?;
        let mut rest = Vec::with_capacity(LATER);
        for _ in 0..LATER {
            rest.push(timed_get(&client, &url).await?);
        }
        Ok((first, rest))
    }
    .await;
    proc.stop(Duration::from_secs(5)).await;
    result
}

/// Milliseconds a GET takes, body included; fails unless 200.
async fn timed_get(client: &reqwest::Client, url: &str) -> Result<f64, String> {
    let started = Instant::now();
    let resp = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let _ = resp.bytes().await;
    if status != 200 {
        return Err(format!("GET {url} answered {status}"));
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

/// Waits until the process's log contains `needle`.
async fn wait_for_log(proc: &mut Proc, needle: &str, limit: Duration) -> Result<(), String> {
    let started = Instant::now();
    loop {
        if proc.log_tail(400).contains(needle) {
            return Ok(());
        }
        if let Some(status) = proc.exited() {
            return Err(format!("wrangler exited ({status})\n{}", proc.log_tail(60)));
        }
        if started.elapsed() > limit {
            return Err(format!(
                "no {needle:?} within {} s\n{}",
                limit.as_secs(),
                proc.log_tail(60)
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
