//! Sequential database round trips per route, measured as the latency
//! slope over the round-trip time: the worker reaches PostgreSQL through
//! [`DelayProxy`], which adds RTT 0, 20, 40 and 100 ms; a route that waits for
//! N round trips gets N × RTT slower. Connecting costs one round trip here
//! (wrangler dev opens a connection per request; Hyperdrive's pool makes
//! it cheap in production), so it is reported apart, from the worker's own
//! `Server-Timing: db` (time to connect).
//!
//! Over HTTP ([`Via::Http`]) the proxy sits between the worker and the
//! test gateway in front of `postrust`: each database call is one HTTP
//! request, and there is no connection to open.

use std::path::Path;
use std::time::{Duration, Instant};

use harness::delay_proxy::DelayProxy;
use harness::migrate;
use harness::stack::TestDatabase;
use harness::{standin, supabase};
use serde_json::json;

use crate::bench::json_of;
use crate::test::{test_vars, worker, Via, DEFAULT_TEST_DATABASE_URL};

/// RTTs measured, in milliseconds (the slope is fitted over all of them:
/// the wider span keeps a noisy machine's jitter from reading as a trip).
const RTTS: [u64; 4] = [0, 20, 40, 100];
/// Requests per route and RTT (after one warm-up); the fastest is used:
/// the added delay is exact, load on a shared machine only adds time.
const SAMPLES: usize = 9;

/// A route measured: its name, how to make its request, and whether to
/// time the first `text_delta` (else the whole response).
type Route<'a> = (
    &'static str,
    Box<dyn Fn() -> reqwest::RequestBuilder + 'a>,
    bool,
);

/// One timed request: client-side milliseconds to the awaited point, and
/// the worker's time to connect to the database.
struct Sample {
    ms: f64,
    connect_ms: f64,
}

/// `url` pointed at `addr` instead of its own host and port.
fn through(url: &str, addr: std::net::SocketAddr) -> Result<String, String> {
    let start = url.find("://").ok_or("bad database URL")? + 3;
    let rest = &url[start..];
    let host_start = rest.find('@').map_or(0, |i| i + 1);
    let host_end = rest.find('/').ok_or("database URL without a name")?;
    Ok(format!(
        "{}{}{addr}{}",
        &url[..start],
        &rest[..host_start],
        &rest[host_end..]
    ))
}

/// Runs the measurement over both transports, each on its own database
/// and worker.
pub async fn run(root: &Path, logs: &Path, secret: &str) -> Result<(), String> {
    run_via(root, logs, secret, Via::Hyperdrive).await?;
    run_via(root, logs, secret, Via::Http).await
}

/// Runs the measurement over one transport.
async fn run_via(root: &Path, logs: &Path, secret: &str, via: Via) -> Result<(), String> {
    println!("\n==> database round trips per route over {via:?} (latency slope over an added RTT)");
    let admin =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.into());
    let db = TestDatabase::create(&admin).await?;
    let result = async {
        if via == Via::Http {
            supabase::create_roles(&admin).await?;
            supabase::project_defaults(&db.url).await?;
            migrate::run(&db.url, &root.join("migrations")).await?;
            let log = logs.join("roundtrips-http-postrust.log");
            let project = supabase::Project::start(&db.url, Some(&log)).await?;
            let proxy = DelayProxy::start(project.gateway.addr)
                .await
                .map_err(|e| e.to_string())?;
            let stand_in = standin::serve(([127, 0, 0, 1], 0).into())
                .await
                .map_err(|e| e.to_string())?;
            let mut vars = test_vars(secret, &stand_in);
            vars.insert("SUPABASE_URL".into(), format!("http://{}", proxy.addr));
            // The legacy JWT key here (the test phase uses the secret key).
            vars.insert(
                "SUPABASE_SERVICE_ROLE_KEY".into(),
                project.gateway.keys.service_role.clone(),
            );
            let mut w = worker(root, logs, "roundtrips-http", "", vars).await?;
            let measured = measure(&w.base_url, &proxy).await;
            w.proc.stop(Duration::from_secs(5)).await;
            project.stop().await;
            stand_in.shutdown();
            return measured;
        }
        migrate::run(&db.url, &root.join("migrations")).await?;
        let config: tokio_postgres::Config = db.url.parse().map_err(|e| format!("{e}"))?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let target = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| e.to_string())?
            .next()
            .ok_or("database host has no address")?;
        let proxy = DelayProxy::start(target).await.map_err(|e| e.to_string())?;
        let stand_in = standin::serve(([127, 0, 0, 1], 0).into())
            .await
            .map_err(|e| e.to_string())?;
        let url = through(&db.url, proxy.addr)?;
        let mut w = worker(root, logs, "roundtrips", &url, test_vars(secret, &stand_in)).await?;
        let measured = measure(&w.base_url, &proxy).await;
        w.proc.stop(Duration::from_secs(5)).await;
        stand_in.shutdown();
        measured
    }
    .await;
    let _ = db.drop_database().await;
    result
}

/// Times every route at every RTT and prints the slopes.
async fn measure(base: &str, proxy: &DelayProxy) -> Result<(), String> {
    let client = reqwest::Client::new();
    let email = format!("roundtrips-{}@example.com", std::process::id());
    let creds = json!({"email": email, "password": "bench-password-1"});
    let reg = json_of(
        client
            .post(format!("{base}/api/v1/auth/register"))
            .json(&creds),
    )
    .await?;
    let access = reg["access_token"]
        .as_str()
        .ok_or("no access token")?
        .to_string();
    let conv = json_of(
        client
            .post(format!("{base}/api/v1/conversations"))
            .bearer_auth(&access)
            .json(&json!({"title": "bench"})),
    )
    .await?;
    let id = conv["id"].as_str().ok_or("no conversation id")?.to_string();
    let conversation = format!("{base}/api/v1/conversations/{id}");
    let send_body = json!({"content": "Say hello."});
    let routes: [Route; 5] = [
        (
            "POST /auth/login",
            Box::new(|| {
                client
                    .post(format!("{base}/api/v1/auth/login"))
                    .json(&creds)
            }),
            false,
        ),
        (
            "GET /auth/me",
            Box::new(|| {
                client
                    .get(format!("{base}/api/v1/auth/me"))
                    .bearer_auth(&access)
            }),
            false,
        ),
        (
            "GET /conversations/{id}",
            Box::new(|| client.get(&conversation).bearer_auth(&access)),
            false,
        ),
        (
            "POST …/messages (whole answer)",
            Box::new(|| {
                client
                    .post(format!("{conversation}/messages"))
                    .bearer_auth(&access)
                    .json(&send_body)
            }),
            false,
        ),
        (
            "POST …/messages/stream (first text)",
            Box::new(|| {
                client
                    .post(format!("{conversation}/messages/stream"))
                    .bearer_auth(&access)
                    .json(&send_body)
            }),
            true,
        ),
    ];
    println!("     route: fastest ms at RTT {RTTS:?} ms; round trips = fitted slope over RTT (total, of which connecting)");
    for (name, make, to_first_text) in &routes {
        let mut times = Vec::new();
        for rtt in RTTS {
            proxy.set_rtt(Duration::from_millis(rtt));
            let _ = timed(make(), *to_first_text).await?;
            let mut samples = Vec::new();
            for _ in 0..SAMPLES {
                samples.push(timed(make(), *to_first_text).await?);
            }
            times.push((
                fastest(samples.iter().map(|s| s.ms)),
                fastest(samples.iter().map(|s| s.connect_ms)),
            ));
        }
        let trips = slope(times.iter().map(|m| m.0));
        let connect = slope(times.iter().map(|m| m.1));
        let shown: Vec<String> = times.iter().map(|m| format!("{:.0}", m.0)).collect();
        println!(
            "     {name}: {} ms → {trips:.1} round trips ({connect:.1} connecting, {:.1} queries)",
            shown.join(" / "),
            trips - connect
        );
    }
    Ok(())
}

/// Sends one request; times its end (or its first `text_delta`).
async fn timed(req: reqwest::RequestBuilder, to_first_text: bool) -> Result<Sample, String> {
    use futures_util::StreamExt;
    let start = Instant::now();
    let resp = req.send().await.map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("benchmark request failed with {}", resp.status()));
    }
    let connect_ms = harness::server_timing::entries(resp.headers())
        .into_iter()
        .find(|e| e.name == "db")
        .and_then(|e| e.dur)
        .unwrap_or(0.0);
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    let mut at = None;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if to_first_text && at.is_none() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("text_delta") {
                at = Some(start.elapsed());
            }
        }
    }
    let ms = at.unwrap_or_else(|| start.elapsed()).as_secs_f64() * 1000.0;
    Ok(Sample { ms, connect_ms })
}

/// Least-squares slope of `values` (one per RTT) over [`RTTS`].
fn slope(values: impl Iterator<Item = f64>) -> f64 {
    let points: Vec<(f64, f64)> = RTTS.iter().map(|&r| r as f64).zip(values).collect();
    let n = points.len() as f64;
    let (mx, my) = (
        points.iter().map(|p| p.0).sum::<f64>() / n,
        points.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

fn fastest(values: impl Iterator<Item = f64>) -> f64 {
    values.reduce(f64::min).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_pointed_at_the_proxy_and_slopes_are_fitted() {
        let exact = RTTS.iter().map(|&r| 3.0 * r as f64 + 7.0);
        assert!((slope(exact) - 3.0).abs() < 1e-9);
        let addr: std::net::SocketAddr = "127.0.0.1:6000".parse().unwrap();
        assert_eq!(
            through(
                "postgres://postgres@127.0.0.1:5432/db_1?sslmode=disable",
                addr
            )
            .unwrap(),
            "postgres://postgres@127.0.0.1:6000/db_1?sslmode=disable"
        );
        assert_eq!(
            through("postgres://localhost/db", addr).unwrap(),
            "postgres://127.0.0.1:6000/db"
        );
    }
}
