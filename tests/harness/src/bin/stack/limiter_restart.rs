//! The rate limiter's counts survive its Durable Object starting again.
//!
//! The object keeps its log in memory and saves it in batches about a
//! second after each admitted request; a new instance (after eviction, a
//! crash or a deploy) rebuilds the log from what was saved. This check
//! makes requests, waits for the batch, stops `wrangler dev` altogether and
//! starts a new one on the same local state: the new object must go on
//! counting where the old one stopped.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use harness::procs::free_port;
use harness::stack::{start_worker, TestDatabase, Worker, WorkerOptions};
use harness::{migrate, standin};
use serde_json::json;

use crate::run::Tally;
use crate::test::{test_vars, DEFAULT_TEST_DATABASE_URL};

/// Requests per window for this check (the window is long enough to span
/// the restart).
const LIMIT: u32 = 5;
/// Requests made before the restart.
const BEFORE: u32 = 3;

/// Runs the check, counting it as one test in `tally`.
pub async fn run(root: &Path, logs: &Path, secret: &str, tally: &mut Tally) -> Result<(), String> {
    println!("\n==> rate limiter: counts survive the object starting again");
    let started = Instant::now();
    let admin =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.into());
    let db = TestDatabase::create(&admin).await?;
    let stand_in = standin::serve(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| e.to_string())?;
    let result = check(root, logs, secret, &db.url, &stand_in).await;
    stand_in.shutdown();
    if let Err(e) = db.drop_database().await {
        eprintln!("warning: could not drop the test database: {e}");
    }
    println!(
        "    (limiter restart: {}, {:.1} s)",
        if result.is_ok() { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    match &result {
        Ok(()) => tally.passed += 1,
        Err(e) => {
            tally.failed += 1;
            println!("    {e}");
        }
    }
    result.map_err(|e| format!("limiter restart: {e}"))
}

async fn check(
    root: &Path,
    logs: &Path,
    secret: &str,
    db_url: &str,
    stand_in: &standin::StandIn,
) -> Result<(), String> {
    migrate::run(db_url, &root.join("migrations")).await?;
    let run_dir = root.join(format!(
        "target/stack-run/limiter-restart-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&run_dir);
    let mut vars = test_vars(secret, stand_in);
    vars.insert("RATE_LIMIT_STANDARD".into(), LIMIT.to_string());
    vars.insert("RATE_LIMIT_WINDOW_SECONDS".into(), "600".into());
    let start = |n: u32| {
        let vars = vars.clone();
        let run_dir = run_dir.clone();
        async move {
            start_worker(
                root,
                WorkerOptions {
                    port: free_port().map_err(|e| e.to_string())?,
                    database_url: db_url.to_string(),
                    vars,
                    env_file: run_dir.join("test.env"),
                    state_dir: run_dir.join("state"),
                    log: Some(logs.join(format!("limiter-restart-{n}-wrangler.log"))),
                    ready_within: Duration::from_secs(300),
                    config: None,
                },
            )
            .await
        }
    };
    let client = reqwest::Client::new();
    let mut first = start(1).await?;
    let counted = async {
        let access = register(&client, &first).await?;
        for i in 0..BEFORE {
            expect_remaining(&client, &first, &access, Some(LIMIT - 1 - i)).await?;
        }
        // The batch is saved about a second after the first request.
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        Ok::<String, String>(access)
    }
    .await;
    first.proc.stop(Duration::from_secs(5)).await;
    let access = counted?;
    let mut second = start(2).await?;
    let after = async {
        for i in BEFORE..LIMIT {
            expect_remaining(&client, &second, &access, Some(LIMIT - 1 - i)).await?;
        }
        expect_remaining(&client, &second, &access, None).await
    }
    .await;
    second.proc.stop(Duration::from_secs(5)).await;
    after
}

/// A new user's access token (register counts against the IP, not the user).
async fn register(client: &reqwest::Client, w: &Worker) -> Result<String, String> {
    let reply: serde_json::Value = client
        .post(format!("{}/api/v1/auth/register", w.base_url))
        .json(&json!({
            "email": format!("restart-{}@example.com", std::process::id()),
            "password": "restart-password-1",
        }))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    reply["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("register gave no access token: {reply}"))
}

/// `GET /auth/me` answers 200 with `remaining` left, or 429 for `None`.
async fn expect_remaining(
    client: &reqwest::Client,
    w: &Worker,
    access: &str,
    remaining: Option<u32>,
) -> Result<(), String> {
    let resp = client
        .get(format!("{}/api/v1/auth/me", w.base_url))
        .bearer_auth(access)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let left = resp
        .headers()
        .get("x-ratelimit-remaining")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok());
    let ok = match remaining {
        Some(n) => status == 200 && left == Some(n),
        None => status == 429 && left == Some(0),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "expected {} but got {status} with X-RateLimit-Remaining {left:?}",
            remaining.map_or("429".to_string(), |n| format!("200 with {n} left")),
        ))
    }
}
