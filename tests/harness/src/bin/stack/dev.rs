//! `npm run dev`: the API on the embedded default, no accounts needed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use harness::procs::{free_port, Proc};
use harness::stack::{
    parse_env_file, random_hex_secret, start_pglite, start_worker, WorkerOptions,
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

/// Serves the API until Ctrl-C. The database: `DATABASE_URL` through
/// Hyperdrive when set; else Supabase over HTTP when `SUPABASE_URL` is set
/// (the project is migrated beforehand with `npm run migrate`); else the
/// embedded PGlite through Hyperdrive.
pub async fn run(root: &Path) -> Result<(), String> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.parse().map_err(|_| format!("PORT={p} is not a port"))?,
        Err(_) => 8787,
    };
    let mut vars = load_dev_vars(root)?;
    for name in CONFIG_NAMES {
        if let Ok(value) = std::env::var(name) {
            vars.insert(name.to_string(), value);
        }
    }

    let mut pglite: Option<Proc> = None;
    let database_url = std::env::var("DATABASE_URL").unwrap_or_default();
    let over_http = database_url.is_empty()
        && vars
            .get("SUPABASE_URL")
            .is_some_and(|v| !v.trim().is_empty());
    if !over_http {
        for name in SUPABASE_NAMES {
            vars.remove(*name);
        }
    }
    let database_url = match database_url {
        _ if over_http => {
            println!(
                "database: Supabase over HTTP ({}/rest/v1; migrate it with `npm run migrate -- URL`)",
                vars["SUPABASE_URL"].trim_end_matches('/')
            );
            String::new()
        }
        url if !url.is_empty() => {
            println!("database: DATABASE_URL ({})", migrate::redact(&url));
            url
        }
        _ => {
            let data = root.join(".data/pglite");
            let pg_port = free_port().map_err(|e| e.to_string())?;
            let (proc, url) =
                start_pglite(root, &data, pg_port, Some(&root.join(".data/pglite.log"))).await?;
            println!("database: embedded PGlite, data in .data/pglite, on 127.0.0.1:{pg_port}");
            pglite = Some(proc);
            url
        }
    };
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

    let mut worker = start_worker(
        root,
        WorkerOptions {
            port,
            database_url,
            vars,
            env_file: root.join(".wrangler/dev.env"),
            state_dir: root.join(".wrangler/state"),
            log: None,
            ready_within: Duration::from_secs(20 * 60),
            config: None,
        },
    )
    .await?;

    println!("\n  Conversation API is up on {}", worker.base_url);
    if worker.health_status != 200 {
        println!(
            "  WARNING: /health answered {}; see the log above and `curl {}/health`",
            worker.health_status, worker.base_url
        );
    }
    println!("  try: curl {}/health", worker.base_url);
    if let Some(s) = &stand_in {
        println!("\n  ************************************************************");
        println!("  * No GROQ_API_KEY or GOOGLE_AI_API_KEY is set: model answers *");
        println!("  * are CANNED, from the local provider stand-in at            *");
        println!("  * {:<58} *", s.url());
        println!("  * Put a real key in .dev.vars to talk to a real model.       *");
        println!("  ************************************************************");
    }
    println!("\n  Ctrl-C stops everything.\n");

    wait_for_stop(&mut worker.proc).await;
    println!("\nstopping…");
    worker.proc.stop(Duration::from_secs(5)).await;
    if let Some(mut p) = pglite {
        p.stop(Duration::from_secs(5)).await;
    }
    if let Some(s) = stand_in {
        s.shutdown();
    }
    Ok(())
}

/// Reads `.dev.vars`, creating it from `.dev.vars.example` with a random
/// `JWT_SECRET` when it does not exist.
fn load_dev_vars(root: &Path) -> Result<BTreeMap<String, String>, String> {
    let path = root.join(".dev.vars");
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
        std::fs::write(&path, text).map_err(|e| format!("cannot write .dev.vars: {e}"))?;
        println!("created .dev.vars with a random JWT_SECRET");
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!(".dev.vars: {e}"))?;
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
