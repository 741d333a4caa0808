//! The start-up of `npm run dev` under test: over Supabase's HTTP API (a
//! local Data API, `postrust` behind the gateway, with the secret key),
//! and on the embedded PGlite default when no database is configured.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::procs::free_port;
use harness::stack::TestDatabase;
use harness::{migrate, supabase};

use crate::dev::{self, DevDatabase, DevSetup};
use crate::run::{cargo_test, Tally};
use crate::test::{e2e_env, DEFAULT_TEST_DATABASE_URL};

/// Both start-ups, each with its own folder for `.dev.vars` (made from the
/// example, as on a first run), the PGlite data and wrangler's state.
pub async fn run(root: &Path, logs: &Path, secret: &str, tally: &mut Tally) -> Result<(), String> {
    let started = Instant::now();
    let http = over_http(root, logs, secret, tally).await;
    let pglite = pglite_default(root, logs, secret).await;
    match &pglite {
        Ok(()) => tally.passed += 1,
        Err(e) => {
            println!("FAILED: the dev command without a database configured: {e}");
            tally.failed += 1;
        }
    }
    println!(
        "    (the dev command phase took {:.0} s in all)",
        started.elapsed().as_secs_f64()
    );
    http.and(pglite)
}

/// A fresh folder for one start-up, and its setup with `env`.
fn setup(root: &Path, logs: &Path, name: &str, env: &[(&str, &str)]) -> Result<DevSetup, String> {
    let dir: PathBuf = root.join(format!("target/stack-run/{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let log = logs.join(format!("{name}-wrangler.log"));
    let _ = std::fs::remove_file(&log);
    println!("\n==> start `stack dev` ({name}; log: target/stack-logs/{name}-wrangler.log)");
    Ok(DevSetup {
        root: root.to_path_buf(),
        dev_vars: dir.join(".dev.vars"),
        data_dir: dir.join("data"),
        wrangler_dir: dir.join("wrangler"),
        port: free_port().map_err(|e| e.to_string())?,
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        log: Some(log),
    })
}

/// `SUPABASE_URL` and `SUPABASE_SECRET_KEY` set, `DATABASE_URL` not: the
/// dev command must serve over HTTP, and `dev_http::` checks the API works
/// and the data lands in the database behind the Data API.
async fn over_http(
    root: &Path,
    logs: &Path,
    secret: &str,
    tally: &mut Tally,
) -> Result<(), String> {
    let admin =
        std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.into());
    let db = TestDatabase::create(&admin).await?;
    let r = async {
        supabase::create_roles(&admin).await?;
        supabase::project_defaults(&db.url).await?;
        migrate::run(&db.url, &root.join("migrations")).await?;
        let project =
            supabase::Project::start(&db.url, Some(&logs.join("dev-http-postrust.log"))).await?;
        let r = async {
            let url = project.gateway.url();
            let setup = setup(
                root,
                logs,
                "dev-http",
                &[
                    ("SUPABASE_URL", url.as_str()),
                    ("SUPABASE_SECRET_KEY", project.gateway.keys.secret.as_str()),
                    ("JWT_SECRET", secret),
                ],
            )?;
            let dev = dev::start(&setup).await?;
            let r = if dev.database != DevDatabase::SupabaseHttp {
                Err(format!(
                    "the dev command chose {:?}, not Supabase over HTTP",
                    dev.database
                ))
            } else {
                let env = e2e_env("dev_http", &dev.worker, None, &db.url, secret);
                cargo_test(
                    root,
                    "the dev command over Supabase's HTTP API",
                    &["--test", "e2e", "--", "dev_http::"],
                    &env,
                    tally,
                )
                .await
            };
            dev.stop().await;
            remove_run_dir(&setup);
            r.and(no_missing_binding(&setup))
        }
        .await;
        project.stop().await;
        r
    }
    .await;
    if let Err(e) = db.drop_database().await {
        eprintln!("warning: could not drop the test database: {e}");
    }
    r
}

/// Neither `DATABASE_URL` nor `SUPABASE_*`: the embedded PGlite, migrated,
/// and `/health?deep=1` reaches it.
async fn pglite_default(root: &Path, logs: &Path, secret: &str) -> Result<(), String> {
    let setup = setup(root, logs, "dev-pglite", &[("JWT_SECRET", secret)])?;
    let dev = dev::start(&setup).await?;
    let r = async {
        if dev.database != DevDatabase::Pglite {
            return Err(format!(
                "the dev command chose {:?}, not PGlite",
                dev.database
            ));
        }
        let url = format!("{}/health?deep=1", dev.worker.base_url);
        let resp = reqwest::Client::new()
            .get(&url)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().await.map_err(|e| format!("{url}: {e}"))?;
        if status != 200 || body["status"] != "ok" || body["database"] != "ok" {
            return Err(format!("{url} answered {status} {body}"));
        }
        Ok(())
    }
    .await;
    dev.stop().await;
    remove_run_dir(&setup);
    r.and(no_missing_binding(&setup))
}

/// Fails when the worker's log says a binding it used is missing (an
/// environment of wrangler.toml that lacks one of the top-level bindings).
fn no_missing_binding(setup: &DevSetup) -> Result<(), String> {
    let Some(log) = &setup.log else {
        return Ok(());
    };
    let text = std::fs::read_to_string(log).map_err(|e| format!("{}: {e}", log.display()))?;
    match text
        .lines()
        .find(|l| l.contains("Binding `") && l.contains("is undefined"))
    {
        Some(line) => Err(format!(
            "the worker lacks a binding ({}): {line}",
            log.display()
        )),
        None => Ok(()),
    }
}

/// Removes the folder [`setup`] made (`.dev.vars`, data, wrangler state).
fn remove_run_dir(setup: &DevSetup) {
    if let Some(dir) = setup.dev_vars.parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}
