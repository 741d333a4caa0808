//! `npm run bench`: the measurements recorded in BENCHMARKS.md, against
//! the same stack the tests use (release-built worker under wrangler's dev server,
//! a fresh PostgreSQL database, the provider stand-in).

use std::ops::AsyncFn;
use std::path::Path;
use std::time::{Duration, Instant};

use harness::pooler::Kind;
use harness::standin;
use serde_json::{json, Value};

use crate::run::step;
use crate::test::{build_worker, PgStack};

/// Requests per measured series.
const SAMPLES: usize = 30;

/// Runs every benchmark and prints one line per figure.
pub async fn run(root: &Path) -> Result<(), String> {
    match std::env::var("BENCH").as_deref() {
        Ok("throughput") => return crate::throughput_bench::run_alone(root).await,
        Ok("context") => return context_alone(root).await,
        Ok("streaming") => return streaming_alone(root).await,
        _ => {}
    }
    step(
        root,
        "password hash, native (cargo bench --bench password)",
        "cargo",
        &["bench", "--quiet", "--bench", "password"],
    )
    .await?;
    step(
        root,
        "context window, native (cargo bench --bench context)",
        "cargo",
        &["bench", "--quiet", "--bench", "context"],
    )
    .await?;
    let (logs, secret) = build_worker(root).await?;
    for (pass, kind) in pool_kinds()?.into_iter().enumerate() {
        let stack = PgStack::start_pooled(root, &logs, "bench", &secret, kind).await?;
        let base = stack.worker.base_url.clone();
        let result = async {
            let access = if pass == 0 {
                let access = auth_costs(&base).await?;
                limiter_costs(&base, &access).await?;
                access
            } else {
                register(&base).await?
            };
            streaming_overhead(&base, &stack.stand_in, &access).await?;
            crate::throughput_bench::run(&base, &stack.stand_in, &access).await?;
            if pass == 0 {
                crate::context_bench::run(&base, &stack.db.url, &access).await?;
            }
            crate::ttft_bench::run(root, &logs, &base, &stack.stand_in, &access).await
        }
        .await;
        stack.stop().await;
        result?;
    }
    crate::cold_bench::run(root, &logs, &secret).await?;
    crate::transport_bench::run(root, &logs, &secret).await?;
    crate::roundtrip_bench::run(root, &logs, &secret).await?;
    crate::load::bench(root, &logs, &secret).await
}

/// The pools the streaming figures are measured behind ([`Kind::both`]):
/// pooled connections first, as Hyperdrive keeps them in production, then
/// a new connection per request, as local Hyperdrive opens them. PgBouncer
/// is installed when missing; when it cannot be, only the second is run.
pub(crate) fn pool_kinds() -> Result<Vec<Kind>, String> {
    let mut kinds = Kind::both()?;
    if kinds.contains(&Kind::Bouncer) {
        if let Err(e) = harness::pooler::ensure_pgbouncer() {
            if kinds.len() == 1 {
                return Err(e);
            }
            println!("    (no pooled figures: {e})");
            kinds.retain(|k| *k != Kind::Bouncer);
        }
    }
    Ok(kinds)
}

/// `BENCH=streaming`: only the latency the worker adds to a stream's
/// first token and to its whole (10 and 1,000 deltas, no upstream delay),
/// behind each of [`pool_kinds`].
async fn streaming_alone(root: &Path) -> Result<(), String> {
    behind_each_pool(root, async |_, stack, access| {
        streaming_overhead(&stack.worker.base_url, &stack.stand_in, access).await
    })
    .await
}

/// Builds the worker, then for each of [`pool_kinds`] starts a benchmark
/// stack, registers a user and runs `measure` with the logs directory,
/// the stack and the user's access token; stops the stack either way.
pub(crate) async fn behind_each_pool<F>(root: &Path, measure: F) -> Result<(), String>
where
    F: AsyncFn(&Path, &PgStack, &str) -> Result<(), String>,
{
    let (logs, secret) = build_worker(root).await?;
    for kind in pool_kinds()? {
        let stack = PgStack::start_pooled(root, &logs, "bench", &secret, kind).await?;
        let result = async {
            let access = register(&stack.worker.base_url).await?;
            measure(&logs, &stack, &access).await
        }
        .await;
        stack.stop().await;
        result?;
    }
    Ok(())
}

/// A new user's access token.
pub(crate) async fn register(base: &str) -> Result<String, String> {
    let email = format!("bench-{}@example.com", std::process::id());
    let reg = json_of(
        reqwest::Client::new()
            .post(format!("{base}/api/v1/auth/register"))
            .json(&json!({"email": email, "password": "bench-password-1"})),
    )
    .await?;
    reg["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("register gave no access token: {reg}"))
}

/// `BENCH=context`: only the in-worker context window figures.
async fn context_alone(root: &Path) -> Result<(), String> {
    let (logs, secret) = build_worker(root).await?;
    let stack = PgStack::start(root, &logs, "bench", &secret, &[]).await?;
    let base = stack.worker.base_url.clone();
    let result = async {
        let access = auth_costs(&base).await?;
        crate::context_bench::run(&base, &stack.db.url, &access).await
    }
    .await;
    stack.stop().await;
    result
}

/// Scripts the stand-in to answer `marker` once with `chunks`, no delay.
pub(crate) async fn script(
    client: &reqwest::Client,
    stand_in: &standin::StandIn,
    marker: &str,
    chunks: &[String],
) -> Result<(), String> {
    client
        .post(format!("{}/_control/scripts", stand_in.url()))
        .json(&json!({"contains": marker, "times": 1, "reply": {"chunks": chunks}}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Scripts the stand-in to answer `marker` with `chunks` twice (once read
/// directly, once through the worker) and returns the direct request.
pub(crate) async fn direct_request(
    client: &reqwest::Client,
    stand_in: &standin::StandIn,
    marker: &str,
    chunks: &[String],
) -> Result<reqwest::RequestBuilder, String> {
    for _ in 0..2 {
        script(client, stand_in, marker, chunks).await?;
    }
    Ok(direct_only(client, stand_in, marker))
}

/// The stand-in's Groq endpoint asked directly for the answer to `marker`.
pub(crate) fn direct_only(
    client: &reqwest::Client,
    stand_in: &standin::StandIn,
    marker: &str,
) -> reqwest::RequestBuilder {
    client
        .post(format!("{}/chat/completions", stand_in.groq_base_url()))
        .bearer_auth("bench")
        .json(&json!({
            "model": "openai/gpt-oss-20b",
            "stream": true,
            "messages": [{"role": "user", "content": marker}],
        }))
}

/// Login (one PBKDF2 verify + a refresh-token insert) against `/auth/me`
/// (token check + a user lookup): the difference estimates the hash's cost
/// inside workerd, where the worker runs as wasm.
async fn auth_costs(base: &str) -> Result<String, String> {
    println!("\n==> password hash inside the worker (wasm32 + WebCrypto under wrangler dev)");
    let client = reqwest::Client::new();
    let email = format!("bench-{}@example.com", std::process::id());
    let creds = json!({"email": email, "password": "bench-password-1"});
    let reg = json_of(
        client
            .post(format!("{base}/api/v1/auth/register"))
            .json(&creds),
    )
    .await?;
    let access = reg["access_token"]
        .as_str()
        .ok_or("register gave no access token")?
        .to_string();
    let login = series(|| {
        client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&creds)
            .send()
    })
    .await?;
    let me = series(|| {
        client
            .get(format!("{base}/api/v1/auth/me"))
            .bearer_auth(&access)
            .send()
    })
    .await?;
    println!("login          ({SAMPLES} sequential): {}", summary(&login));
    println!("GET /auth/me   ({SAMPLES} sequential): {}", summary(&me));
    println!(
        "estimated PBKDF2 (100,000 iterations) inside the worker: {:.1} ms (median login - median me)",
        median(&login) - median(&me)
    );
    Ok(access)
}

/// The limiter's round trip as the worker measured it (`Server-Timing:
/// ratelimit;dur=…`), and the request rate one user can sustain through
/// the whole authenticated path (token check, limiter, one query).
async fn limiter_costs(base: &str, access: &str) -> Result<(), String> {
    println!("\n==> baselines under wrangler dev");
    let client = reqwest::Client::new();
    let health = series(|| client.get(format!("{base}/health")).send()).await?;
    let deep = series(|| client.get(format!("{base}/health?deep=1")).send()).await?;
    println!(
        "GET /health            ({SAMPLES} sequential): {}",
        summary(&health)
    );
    println!(
        "GET /health?deep=1     ({SAMPLES} sequential): {}",
        summary(&deep)
    );
    println!(
        "a new database connection + SELECT 1 costs {:.1} ms here (Hyperdrive pools them in production)",
        median(&deep) - median(&health)
    );
    println!("\n==> rate limiter (Durable Object) under wrangler dev");
    let mut durations = Vec::new();
    for _ in 0..200 {
        let resp = client
            .get(format!("{base}/api/v1/auth/me"))
            .bearer_auth(access)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let timing = resp
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("ratelimit;dur="))
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or("no Server-Timing: ratelimit header")?;
        durations.push(timing);
    }
    durations.sort_by(f64::total_cmp);
    println!(
        "limiter round trip, 200 sequential requests: median {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        median(&durations),
        durations[durations.len() * 99 / 100],
        durations[durations.len() - 1]
    );
    for concurrency in [1usize, 8, 32] {
        let deadline = Instant::now() + Duration::from_secs(5);
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| {
                let client = client.clone();
                let url = format!("{base}/api/v1/auth/me");
                let access = access.to_string();
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        if let Ok(r) = client.get(&url).bearer_auth(&access).send().await {
                            if r.status().is_success() {
                                n += 1;
                            }
                            let _ = r.bytes().await;
                        }
                    }
                    n
                })
            })
            .collect();
        let mut total = 0;
        for t in tasks {
            total += t.await.map_err(|e| e.to_string())?;
        }
        println!(
            "one user, {concurrency:>2} concurrent clients for 5 s: {:.0} requests/s admitted",
            total as f64 / 5.0
        );
    }
    Ok(())
}

/// Requests per streaming series.
const STREAM_SAMPLES: usize = 50;

/// Time to first token through `…/messages/stream` minus time to the first
/// content chunk calling the stand-in directly, for short and long answers.
async fn streaming_overhead(
    base: &str,
    stand_in: &standin::StandIn,
    access: &str,
) -> Result<(), String> {
    println!("\n==> streaming: added latency of the worker over the provider stand-in");
    let client = reqwest::Client::new();
    for deltas in [10usize, 1000] {
        let chunks: Vec<String> = (0..deltas).map(|i| format!("w{i} ")).collect();
        let mut direct = Vec::with_capacity(STREAM_SAMPLES);
        let mut worker = Vec::with_capacity(STREAM_SAMPLES);
        let mut totals = Vec::with_capacity(STREAM_SAMPLES);
        let mut direct_totals = Vec::with_capacity(STREAM_SAMPLES);
        let mut parts = Vec::with_capacity(STREAM_SAMPLES);
        for i in 0..=STREAM_SAMPLES {
            let marker = format!("bench-{deltas}-{i}-{}", std::process::id());
            let upstream = direct_request(&client, stand_in, &marker, &chunks).await?;
            let direct_timed = first_and_total(upstream, "\"content\":\"w").await?;
            // A new conversation each time, so every request has the same
            // (empty) history and only the answer length varies.
            let conversation = json_of(
                client
                    .post(format!("{base}/api/v1/conversations"))
                    .bearer_auth(access)
                    .json(&json!({"title": "bench"})),
            )
            .await?;
            let id = conversation["id"].as_str().ok_or("no conversation id")?;
            let through = client
                .post(format!("{base}/api/v1/conversations/{id}/messages/stream"))
                .bearer_auth(access)
                .json(&json!({"content": marker}));
            let timed = first_and_total(through, "text_delta").await?;
            if i > 0 {
                direct.push(direct_timed.first);
                direct_totals.push(direct_timed.total);
                worker.push(timed.first);
                totals.push(timed.total);
                parts.push(timed);
            }
        }
        let mut added: Vec<f64> = worker.iter().zip(&direct).map(|(w, d)| w - d).collect();
        for v in [
            &mut direct,
            &mut worker,
            &mut added,
            &mut totals,
            &mut direct_totals,
        ] {
            v.sort_by(f64::total_cmp);
        }
        println!("{deltas:>4} deltas, {STREAM_SAMPLES} requests each:");
        println!(
            "     stand-in direct, first content chunk: {}",
            summary(&direct)
        );
        println!(
            "     through the worker, first text_delta: {}",
            summary(&worker)
        );
        println!(
            "     added (paired, worker - direct):      {}",
            summary(&added)
        );
        println!(
            "     stand-in direct, whole stream:        {}",
            summary(&direct_totals)
        );
        println!(
            "     through the worker, whole stream:     {}",
            summary(&totals)
        );
        print_breakdown(&parts);
    }
    Ok(())
}

/// One streamed request, timed from the client.
struct Timed {
    /// Until the response headers.
    headers: f64,
    /// Until the body first contains the needle.
    first: f64,
    /// Until the body ends.
    total: f64,
    /// The `Server-Timing` entries, `name` → ms.
    server: Vec<(String, f64)>,
}

/// Times a streamed request: headers, first `needle`, end.
async fn first_and_total(req: reqwest::RequestBuilder, needle: &str) -> Result<Timed, String> {
    use futures_util::StreamExt;
    let start = Instant::now();
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let headers = start.elapsed().as_secs_f64() * 1000.0;
    if !resp.status().is_success() {
        return Err(format!("streaming request failed with {}", resp.status()));
    }
    let server = harness::server_timing::entries(resp.headers())
        .into_iter()
        .filter_map(|e| Some((e.name, e.dur?)))
        .collect();
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    let mut first = None;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if first.is_none() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains(needle) {
                first = Some(start.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }
    let total = start.elapsed().as_secs_f64() * 1000.0;
    Ok(Timed {
        headers,
        first: first.ok_or("the stream carried no text")?,
        total,
        server,
    })
}

/// Medians of where the time to the first `text_delta` goes: the worker's
/// own `Server-Timing` (limiter, database connection, context planning, the
/// whole handler until the response), the client's wait for the headers,
/// and the rest (opening the upstream request and relaying its first chunk).
fn print_breakdown(parts: &[Timed]) {
    let med = |f: &dyn Fn(&Timed) -> f64| {
        let mut v: Vec<f64> = parts.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        median(&v)
    };
    let server = |name: &'static str| {
        move |t: &Timed| {
            t.server
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0.0, |(_, d)| *d)
        }
    };
    println!(
        "     medians: worker until response {:.0} ms (ratelimit {:.0}, db connect {:.0}, \
         context {:.0}); headers at the client {:.1} ms; headers to first text_delta {:.1} ms",
        med(&server("total")),
        med(&server("ratelimit")),
        med(&server("db")),
        med(&server("context")),
        med(&|t| t.headers),
        med(&|t| t.first - t.headers),
    );
}

/// Sends a request and reads its JSON body.
pub(crate) async fn json_of(req: reqwest::RequestBuilder) -> Result<Value, String> {
    req.send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())
}

/// Times `SAMPLES` sequential requests (after one warm-up), in milliseconds.
async fn series<F, Fut>(mut send: F) -> Result<Vec<f64>, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = reqwest::Result<reqwest::Response>>,
{
    let _ = send().await.map_err(|e| e.to_string())?.bytes().await;
    let mut out = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let start = Instant::now();
        let resp = send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let _ = resp.bytes().await;
        if !status.is_success() {
            return Err(format!("benchmark request failed with {status}"));
        }
        out.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

fn median(sorted: &[f64]) -> f64 {
    sorted[sorted.len() / 2]
}

fn summary(sorted: &[f64]) -> String {
    format!(
        "min {:.1} ms, median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        sorted[0],
        median(sorted),
        sorted[sorted.len() * 9 / 10],
        sorted[sorted.len() - 1]
    )
}
