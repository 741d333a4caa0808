//! The fault-injection phase (`tests/e2e/faults/`): a private PostgreSQL
//! cluster the tests may stop and start ([`harness::cluster`]), the worker
//! on it over Hyperdrive, the provider stand-in, and a second worker whose
//! rate-limiter binding points at another Durable Object class (the
//! limiter failing for real: every call to it answers an error).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use harness::cluster::Cluster;
use harness::{migrate, standin};

use crate::run::{cargo_test, Tally};
use crate::test::{e2e_env, test_vars, worker};

/// The class the limiter-down worker's `RATE_LIMITER` binding names: it
/// answers the limiter's requests with 404. (A binding to a class of a
/// worker that does not run is refused by `wrangler dev` at start-up.)
const WRONG_CLASS: &str = "ConversationEvents";

/// Runs the tests whose names contain `filter` (`faults::` for all).
pub async fn run(
    root: &Path,
    logs: &Path,
    secret: &str,
    filter: &str,
    tally: &mut Tally,
) -> Result<(), String> {
    // `faults` alone would also match other tests' names (`…defaults…`).
    let filter = if filter == "faults" {
        "faults::"
    } else {
        filter
    };
    let dir = root.join(format!("target/stack-run/faults-pg-{}", std::process::id()));
    let log = logs.join("faults-postgres.log");
    println!("\n==> private PostgreSQL for the fault-injection tests (log: target/stack-logs/faults-postgres.log)");
    let cluster = Cluster::create(&dir, &log).await?;
    let result = with_cluster(root, logs, secret, filter, &cluster, tally).await;
    cluster.destroy().await;
    result
}

async fn with_cluster(
    root: &Path,
    logs: &Path,
    secret: &str,
    filter: &str,
    cluster: &Cluster,
    tally: &mut Tally,
) -> Result<(), String> {
    let url = cluster.url();
    migrate::run(&url, &root.join("migrations")).await?;
    let stand_in = standin::serve(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|e| e.to_string())?;
    let vars = test_vars(secret, &stand_in);
    let mut main = worker(root, logs, "faults", &url, vars.clone()).await?;
    let config = limiter_down_config(root)?;
    let mut down = match crate::test::worker_with_config(
        root,
        logs,
        "faults-limiter-down",
        &url,
        vars,
        Some(config),
    )
    .await
    {
        Ok(w) => w,
        Err(e) => {
            main.proc.stop(Duration::from_secs(5)).await;
            stand_in.shutdown();
            return Err(e);
        }
    };
    let mut env = e2e_env("faults", &main, Some(&stand_in), &url, secret);
    env.extend(cluster.env());
    env.push(("E2E_LIMITER_DOWN_URL", down.base_url.clone()));
    let r = cargo_test(
        root,
        "fault injection (private PostgreSQL)",
        &["--test", "e2e", "--", filter, "--test-threads", "4"],
        &env,
        tally,
    )
    .await;
    main.proc.stop(Duration::from_secs(5)).await;
    down.proc.stop(Duration::from_secs(5)).await;
    stand_in.shutdown();
    r
}

/// `wrangler.toml` for the already built worker, with `RATE_LIMITER` bound
/// to [`WRONG_CLASS`] (written under `target/stack-run/`).
fn limiter_down_config(root: &Path) -> Result<std::path::PathBuf, String> {
    let toml = std::fs::read_to_string(root.join("wrangler.toml")).map_err(|e| e.to_string())?;
    let binding = r#"{ name = "RATE_LIMITER", class_name = "RateLimiter" }"#;
    if !toml.contains(binding) {
        return Err(format!("wrangler.toml no longer binds {binding}"));
    }
    let wrong = format!(r#"{{ name = "RATE_LIMITER", class_name = "{WRONG_CLASS}" }}"#);
    let config = crate::ab_bench::prebuilt_config(&toml, root).replace(binding, &wrong);
    let dir = root.join(format!(
        "target/stack-run/faults-config-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("wrangler.toml");
    std::fs::write(&path, config).map_err(|e| e.to_string())?;
    Ok(path)
}
