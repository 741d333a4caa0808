//! `npm run dev`: the API on the embedded default, no accounts needed (or on
//! `DATABASE_URL`, or Supabase's HTTP API); [`start`] is also what the
//! tests of this start-up run (`dev_phase`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::conn_queue::{target_of, ConnQueue, LOCAL_POOL};
use harness::procs::{free_port, Proc};
use harness::stack::{
    parse_env_file, random_hex_secret, start_pglite, start_worker, Worker, WorkerOptions,
};
use harness::{migrate, standin};

/// Settings that may also come from the shell's environment, which wins
/// over `.dev.vars`.
const CONFIG_NAMES: &[&str] = &[
    "JWT_SECRET",
    "JWT_ACCESS_TOKEN_EXPIRE_MINUTES",
    "JWT_REFRESH_TOKEN_EXPIRE_DAYS",
    "GROQ_API_KEY",
    "GOOGLE_AI_API_KEY",
    "GROQ_BASE_URL",
    "GEMINI_BASE_URL",
    "ALLOWED_ORIGINS",
    "DEFAULT_MODEL",
    "FALLBACK_MODEL",
    "RATE_LIMIT_STANDARD",
    "RATE_LIMIT_AI",
    "RATE_LIMIT_AUTH",
    "RATE_LIMIT_WINDOW_SECONDS",
    "FIRST_TOKEN_TIMEOUT_MS",
    "STREAM_PING_INTERVAL_MS",
    "SUPABASE_URL",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_SECRET_KEY",
];

/// The settings of the HTTP transport (see [`run`]).
const SUPABASE_NAMES: &[&str] = &[
    "SUPABASE_URL",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_SECRET_KEY",
];

/// Where `npm run dev` runs and what it reads: the repository by default
/// ([`DevSetup::from_process`]), or a separate folder and explicit settings
/// (the test of this start-up).
pub struct DevSetup {
    /// The repository (migrations, the worker, `.dev.vars.example`).
    pub root: PathBuf,
    /// `.dev.vars` (created from the example when missing).
    pub dev_vars: PathBuf,
    /// Where the embedded PGlite keeps its data and log.
    pub data_dir: PathBuf,
    /// wrangler's env file and local state go here.
    pub wrangler_dir: PathBuf,
    /// The port to serve on.
    pub port: u16,
    /// The environment: `DATABASE_URL` and the names of [`CONFIG_NAMES`].
    pub env: BTreeMap<String, String>,
    /// The worker's log file; `None` shows it in the terminal.
    pub log: Option<PathBuf>,
}

impl DevSetup {
    /// The repository's own files and this process's environment (`PORT`,
    /// default 8787).
    pub fn from_process(root: &Path) -> Result<DevSetup, String> {
        let port: u16 = match std::env::var("PORT") {
            Ok(p) => p.parse().map_err(|_| format!("PORT={p} is not a port"))?,
            Err(_) => 8787,
        };
        let env = std::iter::once("DATABASE_URL")
            .chain(CONFIG_NAMES.iter().copied())
            .filter_map(|name| Some((name.to_string(), std::env::var(name).ok()?)))
            .collect();
        Ok(DevSetup {
            root: root.to_path_buf(),
            dev_vars: root.join(".dev.vars"),
            data_dir: root.join(".data"),
            wrangler_dir: root.join(".wrangler"),
            port,
            env,
            log: None,
        })
    }
}

/// The database `npm run dev` chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevDatabase {
    /// `DATABASE_URL` through Hyperdrive.
    DatabaseUrl,
    /// Supabase's HTTP API (`SUPABASE_URL`, the worker's `http` environment).
    SupabaseHttp,
    /// The embedded PGlite through Hyperdrive.
    Pglite,
}

/// What [`start`] started; [`Dev::stop`] stops all of it.
pub struct Dev {
    /// The worker.
    pub worker: Worker,
    /// The database it uses.
    pub database: DevDatabase,
    pglite: Option<Proc>,
    stand_in: Option<standin::StandIn>,
    /// The connection queue in front of `DATABASE_URL`.
    queue: Option<ConnQueue>,
}

impl Dev {
    /// Stops the worker (its whole process group), PGlite and the stand-in.
    pub async fn stop(mut self) {
        self.worker.proc.stop(Duration::from_secs(5)).await;
        if let Some(mut p) = self.pglite.take() {
            p.stop(Duration::from_secs(5)).await;
        }
        if let Some(s) = self.stand_in.take() {
            s.shutdown();
        }
        drop(self.queue.take());
    }
}

/// Serves the API until Ctrl-C (see [`start`]).
pub async fn run(root: &Path) -> Result<(), String> {
    let mut dev = start(&DevSetup::from_process(root)?).await?;
    println!("\n  Conversation API is up on {}", dev.worker.base_url);
    if dev.worker.health_status != 200 {
        println!(
            "  WARNING: /health answered {}; see the log above and `curl {}/health`",
            dev.worker.health_status, dev.worker.base_url
        );
    }
    println!("  try: curl {}/health", dev.worker.base_url);
    if let Some(s) = &dev.stand_in {
        println!("\n  ************************************************************");
        println!("  * No GROQ_API_KEY or GOOGLE_AI_API_KEY is set: model answers *");
        println!("  * are CANNED, from the local provider stand-in at            *");
        println!("  * {:<58} *", s.url());
        println!("  * Put a real key in .dev.vars to talk to a real model.       *");
        println!("  ************************************************************");
    }
    println!("\n  Ctrl-C stops everything.\n");

    wait_for_stop(&mut dev.worker.proc).await;
    println!("\nstopping…");
    dev.stop().await;
    Ok(())
}

/// The local worker's `DATABASE_CONNECT_TIMEOUT_MS` unless `.dev.vars`
/// sets one: under a burst, a handshake waits its turn on the one busy
/// `workerd` thread for longer than production's 5 s.
pub const LOCAL_CONNECT_TIMEOUT_MS: &str = "60000";

/// Starts what `npm run dev` serves. The database: `DATABASE_URL` through
/// Hyperdrive when set; else Supabase over HTTP when `SUPABASE_URL` is set
/// (the project is migrated beforehand with `npm run migrate`); else the
/// embedded PGlite through Hyperdrive. Migrates the Hyperdrive databases;
/// starts the provider stand-in when no provider key is configured.
pub async fn start(setup: &DevSetup) -> Result<Dev, String> {
    let root = setup.root.as_path();
    let mut vars = load_dev_vars(root, &setup.dev_vars)?;
    for name in CONFIG_NAMES {
        if let Some(value) = setup.env.get(*name) {
            vars.insert(name.to_string(), value.clone());
        }
    }

    let database_url = setup.env.get("DATABASE_URL").cloned().unwrap_or_default();
    let over_http = database_url.is_empty()
        && vars
            .get("SUPABASE_URL")
            .is_some_and(|v| !v.trim().is_empty());
    if !over_http {
        for name in SUPABASE_NAMES {
            vars.remove(*name);
        }
    }
    let mut pglite: Option<Proc> = None;
    let (database, database_url) = match database_url {
        _ if over_http => {
            println!(
                "database: Supabase over HTTP ({}/rest/v1; migrate it with `npm run migrate -- URL`)",
                vars["SUPABASE_URL"].trim_end_matches('/')
            );
            (DevDatabase::SupabaseHttp, String::new())
        }
        url if !url.is_empty() => {
            println!("database: DATABASE_URL ({})", migrate::redact(&url));
            (DevDatabase::DatabaseUrl, url)
        }
        _ => {
            let pg_port = free_port().map_err(|e| e.to_string())?;
            let (proc, url) = start_pglite(
                root,
                &setup.data_dir.join("pglite"),
                pg_port,
                Some(&setup.data_dir.join("pglite.log")),
            )
            .await?;
            println!(
                "database: embedded PGlite, data in {}, on 127.0.0.1:{pg_port}",
                setup.data_dir.join("pglite").display()
            );
            pglite = Some(proc);
            (DevDatabase::Pglite, url)
        }
    };
    let started = async {
        if !over_http {
            let applied = migrate::run(&database_url, &root.join("migrations")).await?;
            println!("migrations: {} applied now", applied.len());
        }

        let has_key = ["GROQ_API_KEY", "GOOGLE_AI_API_KEY"]
            .iter()
            .any(|k| vars.get(*k).is_some_and(|v| !v.trim().is_empty()));
        let stand_in = if has_key {
            println!("providers: real (a provider key is configured)");
            None
        } else {
            let s = standin::serve(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .map_err(|e| format!("cannot start the provider stand-in: {e}"))?;
            vars.insert("GROQ_BASE_URL".into(), s.groq_base_url());
            vars.insert("GEMINI_BASE_URL".into(), s.gemini_base_url());
            vars.insert("GROQ_API_KEY".into(), "local-stand-in".into());
            vars.insert("GOOGLE_AI_API_KEY".into(), "local-stand-in".into());
            Some(s)
        };

        // Local Hyperdrive opens a connection per request and one workerd
        // thread runs them all: a burst waits for connections (see the
        // README's "Load on the local stack") rather than answering 503.
        let queue = match target_of(&database_url) {
            Some(target) if database == DevDatabase::DatabaseUrl => Some(
                ConnQueue::start(target, LOCAL_POOL)
                    .await
                    .map_err(|e| format!("cannot start the connection queue: {e}"))?,
            ),
            _ => None,
        };
        let hyperdrive = queue
            .as_ref()
            .map_or(database_url.clone(), |q| q.url(&database_url));
        if !over_http {
            vars.entry("DATABASE_CONNECT_TIMEOUT_MS".into())
                .or_insert_with(|| LOCAL_CONNECT_TIMEOUT_MS.into());
        }
        let worker = start_worker(
            root,
            WorkerOptions {
                port: setup.port,
                database_url: hyperdrive,
                vars: vars.clone(),
                env_file: setup.wrangler_dir.join("dev.env"),
                state_dir: setup.wrangler_dir.join("state"),
                log: setup.log.clone(),
                ready_within: Duration::from_secs(20 * 60),
                config: None,
            },
        )
        .await;
        match worker {
            Ok(w) => Ok((w, stand_in, queue)),
            Err(e) => {
                if let Some(s) = stand_in {
                    s.shutdown();
                }
                Err(e)
            }
        }
    }
    .await;
    match started {
        Ok((worker, stand_in, queue)) => Ok(Dev {
            worker,
            database,
            pglite,
            stand_in,
            queue,
        }),
        Err(e) => {
            if let Some(mut p) = pglite {
                p.stop(Duration::from_secs(5)).await;
            }
            Err(e)
        }
    }
}

/// Reads `.dev.vars`, creating it from `.dev.vars.example` with a random
/// `JWT_SECRET` when it does not exist.
fn load_dev_vars(root: &Path, path: &Path) -> Result<BTreeMap<String, String>, String> {
    if !path.exists() {
        let example = std::fs::read_to_string(root.join(".dev.vars.example")).unwrap_or_default();
        let secret = random_hex_secret()?;
        let text: String = example
            .lines()
            .map(|line| {
                if line.starts_with("JWT_SECRET=") {
                    format!("JWT_SECRET={secret}\n")
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        let text = if text.contains("JWT_SECRET=") {
            text
        } else {
            format!("{text}JWT_SECRET={secret}\n")
        };
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("created {} with a random JWT_SECRET", path.display());
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(parse_env_file(&text))
}

/// Waits for Ctrl-C, SIGTERM, or the worker exiting by itself.
async fn wait_for_stop(worker: &mut Proc) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return,
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return,
            _ = term.recv() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {
                if let Some(status) = worker.exited() {
                    eprintln!("the worker exited ({status})");
                    return;
                }
            }
        }
    }
}
