//! `npm run bench`: the measurements recorded in BENCHMARKS.md, against
//! the same stack the tests use (release-built worker under wrangler dev,
//! a fresh PostgreSQL database, the provider stand-in).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use harness::stack::{random_hex_secret, TestDatabase};
use harness::{migrate, standin};
use serde_json::{json, Value};

use crate::run::step;
use crate::test::{test_vars, worker, DEFAULT_TEST_DATABASE_URL};

/// Requests per measured series.
const SAMPLES: usize = 30;

/// Runs every benchmark and prints one line per figure.
pub async fn run(root: &Path) -> Result<(), String> {
    step(
        root,
        "password hash, native (cargo bench --bench password)",
        "cargo",
        &["bench", "--quiet", "--bench", "password"],
    )
    .await?;
    step(
        root,
        "build the worker (wasm32)",
        "npm",
        &["run", "--silent", "build:worker"],
    )
    .await?;

    let admin =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.into());
    let db = TestDatabase::create(&admin).await?;
    let result = async {
        migrate::run(&db.url, &root.join("migrations")).await?;
        let stand_in = standin::serve(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .map_err(|e| e.to_string())?;
        let logs = root.join("target/stack-logs");
        std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
        let secret = random_hex_secret()?;
        let mut w = worker(root, &logs, "bench", &db.url, test_vars(&secret, &stand_in)).await?;
        let r = auth_costs(&w.base_url).await;
        w.proc.stop(Duration::from_secs(5)).await;
        stand_in.shutdown();
        r
    }
    .await;
    if let Err(e) = db.drop_database().await {
        eprintln!("warning: could not drop the bench database: {e}");
    }
    result
}

/// Login (one PBKDF2 verify + a refresh-token insert) against `/auth/me`
/// (token check + a user lookup): the difference estimates the hash's cost
/// inside workerd, where the worker runs as wasm.
async fn auth_costs(base: &str) -> Result<(), String> {
    println!("\n==> password hash inside the worker (wasm32 + WebCrypto under wrangler dev)");
    let client = reqwest::Client::new();
    let email = format!("bench-{}@example.com", std::process::id());
    let creds = json!({"email": email, "password": "bench-password-1"});
    let reg: Value = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&creds)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
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
    Ok(())
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
