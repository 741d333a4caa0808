//! Time to first token side by side, in one run: the provider stand-in read
//! directly, through this API's `…/messages/stream`, and through LiteLLM's
//! proxy pointed at the same stand-in (an OpenAI-compatible endpoint, as
//! Groq's). The upstream waits [`WORD_DELAY_MS`] before each word, as a
//! model does, so each figure is that delay plus the path's own latency.
//!
//! LiteLLM is only a yardstick: it is installed from PyPI into a throwaway
//! venv (`~/.cache/conversation-api/venv-litellm-<version>/`) the first time
//! this runs, never by the tests. When it cannot be installed or started,
//! the bench says so and prints the other two figures.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::procs::{free_port, wait_for_http, Proc};
use harness::standin;
use serde_json::json;
use tokio::process::Command;

/// The LiteLLM release measured against (`litellm[proxy]` from PyPI).
pub const LITELLM_VERSION: &str = "1.108.7";
/// The upstream's delay before each word, in ms.
const WORD_DELAY_MS: u64 = 50;
/// Measured requests per path (after one warm-up each).
const SAMPLES: usize = 30;
/// Words in each scripted answer.
const WORDS: usize = 5;

/// `stack bench-ttft`: builds the worker, starts the test stack and runs
/// [`run`] alone, behind each of [`crate::bench::pool_kinds`].
pub async fn standalone(root: &Path) -> Result<(), String> {
    crate::bench::behind_each_pool(root, async |logs, stack, access| {
        run(root, logs, &stack.worker.base_url, &stack.stand_in, access).await
    })
    .await
}

/// Measures and prints the three series and the latency each path adds.
pub async fn run(
    root: &Path,
    logs: &Path,
    base: &str,
    stand_in: &standin::StandIn,
    access: &str,
) -> Result<(), String> {
    println!(
        "\n==> time to first token, side by side ({WORD_DELAY_MS} ms upstream delay per word, \
         {SAMPLES} requests each)"
    );
    let mut litellm = match LiteLlm::start(root, logs, stand_in).await {
        Ok(l) => Some(l),
        Err(e) => {
            println!("LiteLLM {LITELLM_VERSION} is not available, measuring without it: {e}");
            None
        }
    };
    let client = reqwest::Client::new();
    let (mut direct, mut api, mut proxy) = (Vec::new(), Vec::new(), Vec::new());
    let (mut limiter, mut handler, mut db, mut headers) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut prepare, mut context) = (Vec::new(), Vec::new());
    let mut measure = async || -> Result<(), String> {
        for i in 0..=SAMPLES {
            let marker = format!("ttft-{i}-{}", std::process::id());
            let first_word = format!("ttft{i}x");
            let chunks: Vec<String> = (0..WORDS).map(|w| format!("{first_word}{w} ")).collect();
            client
                .post(format!("{}/_control/scripts", stand_in.url()))
                .json(&json!({"contains": marker, "times": 3,
                    "reply": {"chunks": chunks, "chunk_delay_ms": WORD_DELAY_MS}}))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let needle = format!("{first_word}0");
            let completion = json!({
                "model": "openai/gpt-oss-20b",
                "stream": true,
                "messages": [{"role": "user", "content": marker}],
            });
            let d = first(
                client
                    .post(format!("{}/chat/completions", stand_in.groq_base_url()))
                    .bearer_auth("bench")
                    .json(&completion),
                &needle,
            )
            .await?;
            let a =
                stream_in_new_conversation(&client, base, access, "ttft", &marker, &needle).await?;
            let p = match &litellm {
                Some(l) => Some(
                    first(
                        client
                            .post(format!("{}/v1/chat/completions", l.url))
                            .bearer_auth(&l.key)
                            .json(&completion),
                        &needle,
                    )
                    .await?,
                ),
                None => None,
            };
            if i > 0 {
                direct.push(d.first);
                api.push(a.first);
                limiter.extend(a.server("ratelimit"));
                handler.extend(a.server("total"));
                db.extend(a.server("db"));
                prepare.extend(a.server("prepare"));
                context.extend(a.server("context"));
                headers.push(a.headers);
                proxy.extend(p.map(|p| p.first));
            }
        }
        Ok(())
    };
    let measured = measure().await;
    if let Some(l) = litellm.as_mut() {
        l.proc.stop(Duration::from_secs(5)).await;
    }
    measured?;
    let (d, a) = (median(&mut direct), median(&mut api));
    println!(
        "stand-in direct, first word:              {}",
        summary(&direct)
    );
    println!(
        "through this API (…/messages/stream):     {}",
        summary(&api)
    );
    let timed = [&limiter, &handler, &db, &prepare, &context];
    if timed.iter().all(|v| !v.is_empty()) {
        println!(
            "     medians: the worker until its response {:.0} ms (Server-Timing: limiter round \
             trip {:.0}, database connection {:.0}, overlapped; send_prepare {:.0}, context window \
             {:.0}); headers at the client {:.1} ms",
            median(&mut handler),
            median(&mut limiter),
            median(&mut db),
            median(&mut prepare),
            median(&mut context),
            median(&mut headers),
        );
        println!("     limiter round trip: {}", summary(&limiter));
    }
    if !proxy.is_empty() {
        println!(
            "through LiteLLM {LITELLM_VERSION} proxy (/v1/chat/completions): {}",
            summary(&proxy)
        );
    }
    print!(
        "added latency (median - direct median): this API {:+.1} ms",
        a - d
    );
    if proxy.is_empty() {
        println!("; LiteLLM not measured");
    } else {
        let p = median(&mut proxy);
        println!(
            ", LiteLLM {:+.1} ms: this API adds {} LiteLLM",
            p - d,
            if a <= p { "no more than" } else { "MORE than" }
        );
    }
    Ok(())
}

/// The LiteLLM proxy, serving the stand-in's Groq-style endpoint.
struct LiteLlm {
    proc: Proc,
    url: String,
    /// The proxy's master key (it refuses to start without one).
    key: String,
}

impl LiteLlm {
    async fn start(root: &Path, logs: &Path, stand_in: &standin::StandIn) -> Result<Self, String> {
        let python = install().await?;
        let port = free_port().map_err(|e| e.to_string())?;
        let key = format!("sk-{}", harness::stack::random_hex_secret()?);
        let mut cmd = Command::new(python);
        cmd.args([
            "-c",
            "from litellm.proxy.proxy_cli import run_server; run_server()",
        ])
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("--config")
        .arg(root.join("tests/bench/litellm.yaml"))
        .env("STANDIN_GROQ_BASE_URL", stand_in.groq_base_url())
        .env("LITELLM_MASTER_KEY", &key)
        // No cost-map download, no telemetry, no database.
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .env("LITELLM_TELEMETRY", "False")
        .env_remove("DATABASE_URL");
        let log = logs.join("litellm.log");
        let _ = std::fs::remove_file(&log);
        let mut proc = Proc::spawn("litellm", cmd, Some(&log)).map_err(|e| e.to_string())?;
        let url = format!("http://127.0.0.1:{port}");
        wait_for_http(
            &mut proc,
            &format!("{url}/health/liveliness"),
            Duration::from_secs(180),
        )
        .await?;
        println!(
            "    (LiteLLM {LITELLM_VERSION} proxy on {url}, log: {})",
            log.display()
        );
        Ok(Self { proc, url, key })
    }
}

/// The venv's Python, after installing `litellm[proxy]` into it if missing
/// (built beside it and renamed into place, so a failed install leaves none).
async fn install() -> Result<PathBuf, String> {
    let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
    let cache = PathBuf::from(home).join(".cache/conversation-api");
    let venv = cache.join(format!("venv-litellm-{LITELLM_VERSION}"));
    let python = venv.join("bin/python");
    if python.exists() {
        return Ok(python);
    }
    println!(
        "    installing litellm[proxy]=={LITELLM_VERSION} into {}",
        venv.display()
    );
    let partial = cache.join(format!("venv-litellm-{LITELLM_VERSION}.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&cache).map_err(|e| e.to_string())?;
    run_quietly(Command::new("python3").arg("-m").arg("venv").arg(&partial)).await?;
    run_quietly(
        Command::new(partial.join("bin/python"))
            .args(["-m", "pip", "install", "--quiet"])
            .arg(format!("litellm[proxy]=={LITELLM_VERSION}")),
    )
    .await?;
    std::fs::rename(&partial, &venv).map_err(|e| e.to_string())?;
    Ok(python)
}

async fn run_quietly(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().await.map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(5).collect();
        Err(format!("{} ({})", out.status, tail.join(" | ")))
    }
}

/// One streamed request, timed from the client.
pub(crate) struct Timed {
    /// Milliseconds until the body first contains the needle.
    pub(crate) first: f64,
    /// Milliseconds until the response headers.
    headers: f64,
    /// The worker's `Server-Timing` entries, `name` → ms (none upstream).
    server: Vec<(String, f64)>,
}

impl Timed {
    pub(crate) fn server(&self, name: &str) -> Option<f64> {
        self.server.iter().find(|(n, _)| n == name).map(|(_, d)| *d)
    }
}

/// Starts a conversation titled `title` on `base` and times the streamed
/// answer to `content` until its body first contains `needle`.
pub(crate) async fn stream_in_new_conversation(
    client: &reqwest::Client,
    base: &str,
    access: &str,
    title: &str,
    content: &str,
    needle: &str,
) -> Result<Timed, String> {
    let conversation = crate::bench::json_of(
        client
            .post(format!("{base}/api/v1/conversations"))
            .bearer_auth(access)
            .json(&json!({"title": title})),
    )
    .await?;
    let id = conversation["id"].as_str().ok_or("no conversation id")?;
    first(
        client
            .post(format!("{base}/api/v1/conversations/{id}/messages/stream"))
            .bearer_auth(access)
            .json(&json!({"content": content})),
        needle,
    )
    .await
}

/// Times a streamed request until its body first contains `needle`.
pub(crate) async fn first(req: reqwest::RequestBuilder, needle: &str) -> Result<Timed, String> {
    use futures_util::StreamExt;
    let start = Instant::now();
    let resp = req.send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        return Err(format!("streaming request failed with {status}: {body}"));
    }
    let headers = start.elapsed().as_secs_f64() * 1000.0;
    let server = harness::server_timing::entries(resp.headers())
        .into_iter()
        .filter_map(|e| Some((e.name, e.dur?)))
        .collect();
    let mut body = resp.bytes_stream();
    let mut seen = Vec::new();
    let mut at = None;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if at.is_none() {
            seen.extend_from_slice(&chunk);
            if String::from_utf8_lossy(&seen).contains(needle) {
                at = Some(start.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }
    let first = at.ok_or_else(|| format!("the stream never carried {needle}"))?;
    Ok(Timed {
        first,
        headers,
        server,
    })
}

/// Sorts `v` and returns its median.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub(crate) fn summary(v: &[f64]) -> String {
    let mut s = v.to_vec();
    let m = median(&mut s);
    format!(
        "min {:.1} ms, median {m:.1} ms, p90 {:.1} ms, max {:.1} ms",
        s[0],
        s[s.len() * 9 / 10],
        s[s.len() - 1]
    )
}
