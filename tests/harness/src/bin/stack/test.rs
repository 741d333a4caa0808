//! `npm test`: every check and every test, on a fresh database each run.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::conn_queue::target_of;
use harness::pooler::{Kind, LocalPool};
use harness::procs::{free_port, Proc};
use harness::stack::{
    random_hex_secret, start_pglite, start_worker, TestDatabase, Worker, WorkerOptions,
};
use harness::{migrate, standin, supabase};

use crate::openapi;
use crate::run::{cargo_test, step, Tally};

/// Default server for the test databases (trust auth on this machine kind).
pub(crate) const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The origin the end-to-end tests use for CORS checks.
const TEST_ORIGIN: &str = "https://app.example.test";
/// Parallel end-to-end tests (they wait on I/O, not CPU).
const E2E_THREADS: &str = "8";

/// Runs everything; the last line is `N passed, M failed`.
pub async fn run(root: &Path) -> Result<(), String> {
    let started = Instant::now();
    step(
        root,
        "cargo fmt --check",
        "cargo",
        &["fmt", "--all", "--check"],
    )
    .await?;
    step(
        root,
        "cargo clippy -D warnings",
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )
    .await?;
    step(
        root,
        "cargo clippy (wasm32 worker) -D warnings",
        "cargo",
        &[
            "clippy",
            "-p",
            "conversation-api",
            "--lib",
            "--target",
            "wasm32-unknown-unknown",
            "--",
            "-D",
            "warnings",
        ],
    )
    .await?;

    let mut tally = Tally::default();
    let mut failures = Vec::new();
    let mut note = |r: Result<(), String>| {
        if let Err(e) = r {
            failures.push(e);
        }
    };
    note(
        cargo_test(
            root,
            "unit tests (worker crate)",
            &["-p", "conversation-api", "--lib"],
            &[],
            &mut tally,
        )
        .await,
    );
    note(
        cargo_test(
            root,
            "unit and stand-in tests (harness crate)",
            &["-p", "harness"],
            &[],
            &mut tally,
        )
        .await,
    );

    note(openapi::lint(root, &mut tally).await);

    let (logs, secret) = build_e2e_and_worker(root).await?;
    note(crate::size::check(root).await);

    openapi::reset_seen()?;
    note(postgres_phase(root, &logs, &secret, "", &mut tally).await);
    note(http_phase(root, &logs, &secret, "", &mut tally).await);
    note(crate::dev_phase::run(root, &logs, &secret, &mut tally).await);
    note(ratelimit_phase(root, &logs, &secret, "rate_limits::", &mut tally).await);
    note(crate::faults::run(root, &logs, &secret, "faults::", &mut tally).await);
    note(crate::limiter_restart::run(root, &logs, &secret, &mut tally).await);
    note(pglite_phase(root, &logs, &secret, &mut tally).await);
    note(crate::load::phase(root, &logs, &secret, &mut tally).await);
    note(misconfig_phase(root, &logs, &mut tally).await);
    note(openapi::coverage(&mut tally));

    println!(
        "\nall tests finished in {:.0} s; worker logs in target/stack-logs/",
        started.elapsed().as_secs_f64()
    );
    for f in &failures {
        println!("FAILED: {f}");
    }
    note_browser_skip();
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if failures.is_empty() && tally.failed == 0 {
        Ok(())
    } else {
        Err(format!("{} step(s) failed", failures.len().max(1)))
    }
}

/// `stack test-only FILTER`: builds the worker and runs only the
/// PostgreSQL-phase end-to-end tests whose names contain FILTER (no checks,
/// no other phases): the quick loop while working on one feature.
/// `http:FILTER` runs them over Supabase's HTTP API instead.
/// `schemathesis` runs only the schemathesis passes instead; `dev` only
/// the start-up of the dev command (over HTTP and on PGlite); `load` only
/// the load phases (PGlite and PostgreSQL); a FILTER starting with
/// `faults` runs those fault-injection tests in their own phase (a private
/// PostgreSQL the tests stop and start).
pub async fn run_only(root: &Path, filter: &str) -> Result<(), String> {
    if filter == "schemathesis" {
        return schemathesis_only(root).await;
    }
    let (logs, secret) = build_e2e_and_worker(root).await?;
    openapi::reset_seen()?;
    let mut tally = Tally::default();
    // The rate-limit tests only run in their own phase (small limits).
    let r = if filter.starts_with("rate_limits") {
        ratelimit_phase(root, &logs, &secret, filter, &mut tally).await
    } else if let Some(filter) = filter.strip_prefix("http:") {
        http_phase(root, &logs, &secret, filter, &mut tally).await
    } else if filter == "dev" {
        crate::dev_phase::run(root, &logs, &secret, &mut tally).await
    } else if filter.starts_with("faults") {
        crate::faults::run(root, &logs, &secret, filter, &mut tally).await
    } else if filter == "limiter_restart" {
        crate::limiter_restart::run(root, &logs, &secret, &mut tally).await
    } else if filter == "load" {
        crate::load::phase(root, &logs, &secret, &mut tally).await
    } else {
        postgres_phase(root, &logs, &secret, filter, &mut tally).await
    };
    note_browser_skip();
    println!("{} passed, {} failed", tally.passed, tally.failed);
    r
}

/// `stack test-only schemathesis`: builds the worker and runs only the
/// schemathesis passes against it, on a fresh PostgreSQL database.
async fn schemathesis_only(root: &Path) -> Result<(), String> {
    let (logs, secret) = build_worker(root).await?;
    let stack = PgStack::start(root, &logs, "schemathesis", &secret, &[]).await?;
    let mut tally = Tally::default();
    let r = crate::schemathesis::run(root, &stack.worker.base_url, &mut tally).await;
    stack.stop().await;
    println!("{} passed, {} failed", tally.passed, tally.failed);
    r
}

/// Says when the browser test of `/docs` and `/redoc` could not run.
fn note_browser_skip() {
    if let Err(why) = harness::browser::chromium() {
        println!("SKIPPED: the browser test of /docs and /redoc: {why}");
    }
}

/// Builds the end-to-end tests, then the worker (see [`build_worker`]).
async fn build_e2e_and_worker(root: &Path) -> Result<(PathBuf, String), String> {
    step(
        root,
        "build the end-to-end tests",
        "cargo",
        &["test", "--test", "e2e", "--no-run"],
    )
    .await?;
    build_worker(root).await
}

/// Builds the worker once and prepares what every phase shares: the log
/// folder `target/stack-logs` and a random `JWT_SECRET`.
pub(crate) async fn build_worker(root: &Path) -> Result<(PathBuf, String), String> {
    step(
        root,
        "build the worker (wasm32)",
        "npm",
        &["run", "--silent", "build:worker"],
    )
    .await?;
    let logs = root.join("target/stack-logs");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    Ok((logs, random_hex_secret()?))
}

/// Variables of a test worker pointed at the stand-in.
pub(crate) fn test_vars(secret: &str, stand_in: &standin::StandIn) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("JWT_SECRET".into(), secret.to_string()),
        ("GROQ_API_KEY".into(), "test-groq-key".into()),
        ("GOOGLE_AI_API_KEY".into(), "test-gemini-key".into()),
        ("GROQ_BASE_URL".into(), stand_in.groq_base_url()),
        ("GEMINI_BASE_URL".into(), stand_in.gemini_base_url()),
        ("ALLOWED_ORIGINS".into(), TEST_ORIGIN.into()),
        // Short enough that fallback on a stall and pings are testable.
        ("FIRST_TOKEN_TIMEOUT_MS".into(), "2000".into()),
        ("STREAM_PING_INTERVAL_MS".into(), "1000".into()),
        // Short enough that the events' retention alarm is testable.
        ("EVENT_RETENTION_SECONDS".into(), "8".into()),
        ("MODEL_LIMITS".into(), harness::TEST_MODEL_LIMITS.into()),
        // Tests share one client IP and run in parallel: limits out of the
        // way here; the ratelimit phase sets small ones.
        ("RATE_LIMIT_STANDARD".into(), "1000000".into()),
        ("RATE_LIMIT_AI".into(), "1000000".into()),
        ("RATE_LIMIT_AUTH".into(), "1000000".into()),
        ("RATE_LIMIT_IP".into(), "1000000".into()),
        ("RATE_LIMIT_LOGIN".into(), "1000000".into()),
    ])
}

pub(crate) async fn worker(
    root: &Path,
    logs: &Path,
    phase: &str,
    database_url: &str,
    vars: BTreeMap<String, String>,
) -> Result<Worker, String> {
    worker_with_config(root, logs, phase, database_url, vars, None).await
}

/// [`worker`] with a wrangler configuration other than `wrangler.toml`.
pub(crate) async fn worker_with_config(
    root: &Path,
    logs: &Path,
    phase: &str,
    database_url: &str,
    vars: BTreeMap<String, String>,
    config: Option<PathBuf>,
) -> Result<Worker, String> {
    let run_dir = root.join(format!("target/stack-run/{phase}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    let log: PathBuf = logs.join(format!("{phase}-wrangler.log"));
    let _ = std::fs::remove_file(&log);
    println!("\n==> start the worker for the {phase} phase (log: target/stack-logs/{phase}-wrangler.log)");
    let started = Instant::now();
    let w = start_worker(
        root,
        WorkerOptions {
            port: free_port().map_err(|e| e.to_string())?,
            database_url: database_url.to_string(),
            vars,
            env_file: run_dir.join("test.env"),
            state_dir: run_dir.join("state"),
            log: Some(log),
            ready_within: Duration::from_secs(600),
            config,
        },
    )
    .await?;
    println!(
        "    (ready on {} in {:.1} s)",
        w.base_url,
        started.elapsed().as_secs_f64()
    );
    Ok(w)
}

pub(crate) fn e2e_env(
    phase: &str,
    w: &Worker,
    stand_in: Option<&standin::StandIn>,
    db: &str,
    secret: &str,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("E2E_PHASE", phase.to_string()),
        ("E2E_BASE_URL", w.base_url.clone()),
        (
            "E2E_STANDIN_URL",
            stand_in.map(|s| s.url()).unwrap_or_default(),
        ),
        ("E2E_DATABASE_URL", db.to_string()),
        ("E2E_JWT_SECRET", secret.to_string()),
        ("E2E_ORIGIN", TEST_ORIGIN.to_string()),
        ("E2E_WORKER_STATE", w.state_dir.display().to_string()),
        ("ANTHROPIC_SDK_PYTHON", anthropic_sdk_python()),
        (
            harness::openapi::SEEN_FILE_VAR,
            openapi::seen_file().display().to_string(),
        ),
    ];
    if let Some(log) = &w.log {
        env.push(("E2E_WORKER_LOG", log.display().to_string()));
    }
    env
}

/// The python of the anthropic SDK venv `tests/setup.sh` makes (at the
/// version pinned in `tests/sdk/requirements.txt`), unless
/// `ANTHROPIC_SDK_PYTHON` is already set.
fn anthropic_sdk_python() -> String {
    if let Ok(python) = std::env::var("ANTHROPIC_SDK_PYTHON") {
        return python;
    }
    let pinned = include_str!("../../../../sdk/requirements.txt");
    let version = pinned
        .lines()
        .find_map(|l| l.trim().strip_prefix("anthropic=="))
        .unwrap_or("unpinned");
    let home = std::env::var("HOME").unwrap_or_default();
    format!("{home}/.cache/conversation-api/venv-anthropic-{version}/bin/python")
}

/// A test worker on a fresh, migrated PostgreSQL database, with the
/// provider stand-in: what the PostgreSQL-backed phases and the benchmarks
/// run on. Over Hyperdrive, or over HTTP through a local Data API
/// ([`supabase::Project`]: `postrust` and the gateway).
pub(crate) struct PgStack {
    /// The fresh database (dropped by `stop`).
    pub db: TestDatabase,
    /// The provider stand-in the worker is pointed at.
    pub stand_in: standin::StandIn,
    /// The worker under `wrangler dev`.
    pub worker: Worker,
    /// The Data API the worker calls, when it runs over HTTP.
    pub project: Option<supabase::Project>,
    /// The connection queue or pool between the worker and the database,
    /// over Hyperdrive (see [`harness::pooler`]).
    pub queue: Option<LocalPool>,
}

/// How a [`PgStack`]'s worker reaches its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// The `HYPERDRIVE` binding (wrangler.toml as it is).
    Hyperdrive,
    /// Supabase's HTTP API (the `http` environment, `SUPABASE_URL` set).
    Http,
}

impl PgStack {
    /// Creates and migrates the database (checking a second run applies
    /// nothing), starts the stand-in and the worker with [`test_vars`] and
    /// `overrides`. Drops the database again when something fails.
    pub(crate) async fn start(
        root: &Path,
        logs: &Path,
        phase: &str,
        secret: &str,
        overrides: &[(&str, &str)],
    ) -> Result<PgStack, String> {
        PgStack::start_via(root, logs, phase, secret, overrides, Via::Hyperdrive).await
    }

    /// [`PgStack::start`] over `via`. Over HTTP, Supabase's roles and
    /// default grants are set up before the migrations run (as on a new
    /// project), then `postrust` and the gateway start, and the worker gets
    /// `SUPABASE_URL` and the secret key.
    pub(crate) async fn start_via(
        root: &Path,
        logs: &Path,
        phase: &str,
        secret: &str,
        overrides: &[(&str, &str)],
        via: Via,
    ) -> Result<PgStack, String> {
        PgStack::start_with(root, logs, phase, secret, overrides, via, None).await
    }

    /// [`PgStack::start`] with the worker's database behind a pool of
    /// `kind` (rather than the one [`harness::pooler::ENV`] picks).
    pub(crate) async fn start_pooled(
        root: &Path,
        logs: &Path,
        phase: &str,
        secret: &str,
        kind: Kind,
    ) -> Result<PgStack, String> {
        PgStack::start_with(root, logs, phase, secret, &[], Via::Hyperdrive, Some(kind)).await
    }

    /// [`PgStack::start_via`], over Hyperdrive behind a pool of `kind`
    /// (`None`: the one [`harness::pooler::ENV`] picks).
    async fn start_with(
        root: &Path,
        logs: &Path,
        phase: &str,
        secret: &str,
        overrides: &[(&str, &str)],
        via: Via,
        kind: Option<Kind>,
    ) -> Result<PgStack, String> {
        let admin =
            std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.into());
        let db = TestDatabase::create(&admin).await?;
        println!("\n==> test database {}", migrate::redact(&db.url));
        let started = async {
            if via == Via::Http {
                supabase::create_roles(&admin).await?;
                supabase::project_defaults(&db.url).await?;
            }
            migrate::run(&db.url, &root.join("migrations")).await?;
            let again = migrate::run(&db.url, &root.join("migrations")).await?;
            if !again.is_empty() {
                return Err(format!("migrations applied twice: {again:?}"));
            }
            let (project, queue) = match via {
                Via::Http => {
                    let log = logs.join(format!("{phase}-postrust.log"));
                    (
                        Some(supabase::Project::start(&db.url, Some(&log)).await?),
                        None,
                    )
                }
                Via::Hyperdrive => {
                    let pool = match kind {
                        Some(kind) => pool_of(kind, &db.url).await?,
                        None => local_pool(&db.url).await?,
                    };
                    println!("    (database: {})", pool.describe());
                    (None, Some(pool))
                }
            };
            let stand_in = standin::serve(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .map_err(|e| e.to_string())?;
            let mut vars = test_vars(secret, &stand_in);
            if let Some(p) = &project {
                vars.insert("SUPABASE_URL".into(), p.gateway.url());
                vars.insert("SUPABASE_SECRET_KEY".into(), p.gateway.keys.secret.clone());
            }
            for (k, v) in overrides {
                vars.insert((*k).into(), (*v).into());
            }
            let hyperdrive = queue.as_ref().map_or(db.url.clone(), |q| q.url(&db.url));
            let w = worker(root, logs, phase, &hyperdrive, vars).await?;
            Ok((stand_in, w, project, queue))
        }
        .await;
        match started {
            Ok((stand_in, worker, project, queue)) => Ok(PgStack {
                db,
                stand_in,
                worker,
                project,
                queue,
            }),
            Err(e) => {
                let _ = db.drop_database().await;
                Err(e)
            }
        }
    }

    /// The `E2E_*` variables for a test run against this stack.
    pub(crate) fn env(&self, phase: &str, secret: &str) -> Vec<(&'static str, String)> {
        let mut env = e2e_env(
            phase,
            &self.worker,
            Some(&self.stand_in),
            &self.db.url,
            secret,
        );
        if let Some(p) = &self.project {
            env.push(("E2E_GATEWAY_URL", p.gateway.url()));
            env.push(("E2E_ANON_KEY", p.gateway.keys.anon.clone()));
            env.push(("E2E_SERVICE_KEY", p.gateway.keys.secret.clone()));
        }
        env
    }

    /// Stops the worker and the stand-in and drops the database.
    pub(crate) async fn stop(mut self) {
        self.worker.proc.stop(Duration::from_secs(5)).await;
        if let Some(q) = self.queue.take() {
            q.stop().await;
        }
        if let Some(p) = self.project.take() {
            p.stop().await;
        }
        self.stand_in.shutdown();
        if let Err(e) = self.db.drop_database().await {
            eprintln!("warning: could not drop the test database: {e}");
        }
    }
}

/// The pool [`harness::pooler::ENV`] picks (by default a connection
/// queue) in front of the server of `url`.
pub(crate) async fn local_pool(url: &str) -> Result<LocalPool, String> {
    pool_of(Kind::from_env(Kind::Queue)?, url).await
}

/// A pool of `kind` in front of the server of `url`.
async fn pool_of(kind: Kind, url: &str) -> Result<LocalPool, String> {
    let target = target_of(url).ok_or_else(|| format!("no host in {}", migrate::redact(url)))?;
    LocalPool::start_kind(kind, target).await
}

/// The whole end-to-end suite on a fresh PostgreSQL database, over
/// Hyperdrive (the transport's own tests, `http_transport::`, run only
/// over HTTP).
async fn postgres_phase(
    root: &Path,
    logs: &Path,
    secret: &str,
    filter: &str,
    tally: &mut Tally,
) -> Result<(), String> {
    suite_phase(root, logs, secret, filter, Via::Hyperdrive, tally).await
}

/// The end-to-end suite again with the worker on Supabase's HTTP API
/// (`postrust` behind the gateway, on a fresh database), plus the tests
/// of the HTTP transport itself (`http_transport::`: the anon key reaches
/// nothing, failures map to 503/504).
async fn http_phase(
    root: &Path,
    logs: &Path,
    secret: &str,
    filter: &str,
    tally: &mut Tally,
) -> Result<(), String> {
    let started = Instant::now();
    let r = suite_phase(root, logs, secret, filter, Via::Http, tally).await;
    println!(
        "    (the HTTP phase took {:.0} s in all)",
        started.elapsed().as_secs_f64()
    );
    r
}

/// The suite (all but the phase-specific modules) on a fresh stack `via`.
async fn suite_phase(
    root: &Path,
    logs: &Path,
    secret: &str,
    filter: &str,
    via: Via,
    tally: &mut Tally,
) -> Result<(), String> {
    let (phase, title) = match via {
        Via::Hyperdrive => ("postgres", "end-to-end tests (PostgreSQL)"),
        Via::Http => ("http", "end-to-end tests (Supabase over HTTP)"),
    };
    let mut args = vec!["--test", "e2e", "--", filter, "--test-threads", E2E_THREADS];
    for phase_specific in [
        "db_down::",
        "misconfig::",
        "rate_limits::",
        "dev_http::",
        "load::",
    ] {
        args.extend(["--skip", phase_specific]);
    }
    // The fault-injection tests run in their own phase on Hyperdrive; over
    // HTTP those of the provider and the client run again (the database's
    // and the limiter's need that phase's private cluster and worker).
    match via {
        Via::Hyperdrive => args.extend(["--skip", "http_transport::", "--skip", "faults::"]),
        Via::Http => args.extend([
            "--skip",
            "faults::database::",
            "--skip",
            "faults::limiter::",
        ]),
    }
    let stack = PgStack::start_via(root, logs, phase, secret, &[], via).await?;
    let r = cargo_test(root, title, &args, &stack.env(phase, secret), tally).await;
    // The whole suite also runs schemathesis on the Hyperdrive worker, once
    // the end-to-end tests are done with it.
    let r = if filter.is_empty() && via == Via::Hyperdrive {
        let st = crate::schemathesis::run(root, &stack.worker.base_url, tally).await;
        r.and(st)
    } else {
        r
    };
    stack.stop().await;
    r
}

/// The rate-limit tests, one at a time, against a worker with small limits
/// and a 3-second window.
async fn ratelimit_phase(
    root: &Path,
    logs: &Path,
    secret: &str,
    filter: &str,
    tally: &mut Tally,
) -> Result<(), String> {
    let limits = [
        ("RATE_LIMIT_STANDARD", "10"),
        ("RATE_LIMIT_AI", "3"),
        ("RATE_LIMIT_AUTH", "5"),
        ("RATE_LIMIT_IP", "20"),
        ("RATE_LIMIT_LOGIN", "3"),
        ("RATE_LIMIT_WINDOW_SECONDS", "3"),
    ];
    let stack = PgStack::start(root, logs, "ratelimit", secret, &limits).await?;
    let r = cargo_test(
        root,
        "rate limits",
        &["--test", "e2e", "--", filter, "--test-threads", "1"],
        &stack.env("ratelimit", secret),
        tally,
    )
    .await;
    stack.stop().await;
    r
}

/// A test worker on a fresh, migrated embedded PGlite database (the
/// default of `npm run dev`), with the provider stand-in.
pub(crate) struct PgliteStack {
    /// The PGlite server.
    pub pg: Proc,
    /// Its connection URL.
    pub url: String,
    /// Its data folder (removed by `stop`).
    data: PathBuf,
    /// The provider stand-in the worker is pointed at.
    pub stand_in: standin::StandIn,
    /// The worker under `wrangler dev`.
    pub worker: Worker,
}

impl PgliteStack {
    /// Starts PGlite on a new data folder, migrates it, starts the stand-in
    /// and the worker with [`test_vars`] and `overrides`.
    pub(crate) async fn start(
        root: &Path,
        logs: &Path,
        phase: &str,
        secret: &str,
        overrides: &[(&str, &str)],
    ) -> Result<PgliteStack, String> {
        let data = root.join(format!(
            "target/stack-run/{phase}-data-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&data);
        let port = free_port().map_err(|e| e.to_string())?;
        let log = logs.join(format!("{phase}-pglite.log"));
        let _ = std::fs::remove_file(&log);
        let (mut pg, url) = start_pglite(root, &data, port, Some(&log)).await?;
        let started = async {
            migrate::run(&url, &root.join("migrations")).await?;
            let stand_in = standin::serve(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .map_err(|e| e.to_string())?;
            let mut vars = test_vars(secret, &stand_in);
            for (k, v) in overrides {
                vars.insert((*k).into(), (*v).into());
            }
            let w = worker(root, logs, phase, &url, vars).await?;
            Ok::<_, String>((stand_in, w))
        }
        .await;
        match started {
            Ok((stand_in, worker)) => Ok(PgliteStack {
                pg,
                url,
                data,
                stand_in,
                worker,
            }),
            Err(e) => {
                pg.stop(Duration::from_secs(5)).await;
                let _ = std::fs::remove_dir_all(&data);
                Err(e)
            }
        }
    }

    /// Stops the worker, the stand-in and PGlite; removes the data.
    pub(crate) async fn stop(mut self) {
        self.worker.proc.stop(Duration::from_secs(5)).await;
        self.stand_in.shutdown();
        self.pg.stop(Duration::from_secs(5)).await;
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// The smoke tests on the embedded PGlite default, then the database taken
/// away under the running worker.
async fn pglite_phase(
    root: &Path,
    logs: &Path,
    secret: &str,
    tally: &mut Tally,
) -> Result<(), String> {
    let mut stack = PgliteStack::start(root, logs, "pglite", secret, &[]).await?;
    let env = e2e_env(
        "pglite",
        &stack.worker,
        Some(&stack.stand_in),
        &stack.url,
        secret,
    );
    let smoke = cargo_test(
        root,
        "smoke tests (PGlite)",
        &["--test", "e2e", "--", "smoke::"],
        &env,
        tally,
    )
    .await;
    stack.pg.stop(Duration::from_secs(5)).await;
    let env = e2e_env(
        "db_down",
        &stack.worker,
        Some(&stack.stand_in),
        &stack.url,
        secret,
    );
    let down = cargo_test(
        root,
        "database down (PGlite stopped)",
        &["--test", "e2e", "--", "db_down::"],
        &env,
        tally,
    )
    .await;
    stack.stop().await;
    smoke.and(down)
}

/// A worker whose `JWT_SECRET` is too short must refuse to serve, clearly.
async fn misconfig_phase(root: &Path, logs: &Path, tally: &mut Tally) -> Result<(), String> {
    let admin =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.into());
    let vars = BTreeMap::from([("JWT_SECRET".to_string(), "too-short".to_string())]);
    let mut w = worker(root, logs, "misconfig", &admin, vars).await?;
    let env = e2e_env("misconfig", &w, None, &admin, "");
    let r = cargo_test(
        root,
        "misconfigured worker",
        &["--test", "e2e", "--", "misconfig::"],
        &env,
        tally,
    )
    .await;
    w.proc.stop(Duration::from_secs(5)).await;
    r
}
