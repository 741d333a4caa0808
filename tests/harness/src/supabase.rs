//! A local Supabase project's Data API for the HTTP transport: Supabase's
//! roles on the test server, `postrust` (a PostgREST-compatible server,
//! pinned by [`POSTRUST_VERSION`] and installed by `tests/setup.sh`) on the
//! test database, and [`crate::gateway`] in front of it as `/rest/v1`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio_postgres::NoTls;

use crate::gateway::{self, Gateway, Keys};
use crate::procs::{free_port, wait_for_port, Proc};

/// The `postrust-server` release the tests run (`tests/setup.sh` installs it).
pub const POSTRUST_VERSION: &str = "3.1.0";
/// Password of the `authenticator` role on the test server (local only).
const AUTHENTICATOR_PASSWORD: &str = "authenticator";
/// The schemas the test project exposes: Supabase's default and ours.
pub const EXPOSED_SCHEMAS: &str = "public,api";

/// Where `tests/setup.sh` installs `postrust` (a versioned cache folder
/// outside the clone, like the other pinned tools).
pub fn postrust_bin() -> PathBuf {
    let home = std::env::var("HOME").unwrap_or_default();
    PathBuf::from(format!(
        "{home}/.cache/conversation-api/postrust-server-{POSTRUST_VERSION}/bin/postrust"
    ))
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, String> {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| format!("{}: {e}", crate::migrate::redact(url)))?;
    tokio::spawn(conn);
    Ok(client)
}

/// Creates Supabase's roles on the server of `admin_url` when missing:
/// `anon`, `authenticated`, `service_role` (BYPASSRLS) and the login role
/// `authenticator` that may become each. Roles are cluster-wide and never
/// dropped; concurrent runs serialise on an advisory lock.
pub async fn create_roles(admin_url: &str) -> Result<(), String> {
    let c = connect(admin_url).await?;
    let sql = format!(
        "SELECT pg_advisory_lock(hashtext('conversation-api: supabase roles'));
         DO $$ BEGIN
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
             CREATE ROLE anon NOLOGIN NOINHERIT; END IF;
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
             CREATE ROLE authenticated NOLOGIN NOINHERIT; END IF;
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
             CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS; END IF;
           IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticator') THEN
             CREATE ROLE authenticator LOGIN NOINHERIT PASSWORD '{AUTHENTICATOR_PASSWORD}'; END IF;
         END $$;
         GRANT anon, authenticated, service_role TO authenticator;
         SELECT pg_advisory_unlock(hashtext('conversation-api: supabase roles'));"
    );
    c.batch_execute(&sql)
        .await
        .map_err(|e| format!("creating Supabase's roles: {e}"))
}

/// What a new Supabase project grants in `public` (before our migrations
/// run, as on a real project): everything to the API roles by default.
pub async fn project_defaults(db_url: &str) -> Result<(), String> {
    connect(db_url)
        .await?
        .batch_execute(
            "GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
             ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
             ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
             ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;",
        )
        .await
        .map_err(|e| format!("Supabase's default privileges: {e}"))
}

/// `url` logging in as `user` with `password`.
pub fn with_login(url: &str, user: &str, password: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}:{password}@{host}")
}

/// The Data API of one test database: `postrust` and the gateway.
pub struct Project {
    /// The PostgREST-compatible server.
    pub postrust: Proc,
    /// The gateway serving `/rest/v1` (its URL is `SUPABASE_URL`).
    pub gateway: Gateway,
}

impl Project {
    /// Starts `postrust` on the migrated database `db_url` (logging in as
    /// `authenticator`) and the gateway, and waits until `api.health`
    /// answers through both with the secret key.
    pub async fn start(db_url: &str, log: Option<&Path>) -> Result<Project, String> {
        let bin = postrust_bin();
        if !bin.exists() {
            return Err(format!(
                "{} is missing: run `bash tests/setup.sh` (installs postrust-server {POSTRUST_VERSION})",
                bin.display()
            ));
        }
        let port = free_port().map_err(|e| e.to_string())?;
        let jwt_secret = crate::stack::random_hex_secret()?;
        let mut cmd = Command::new(&bin);
        cmd.env(
            "PGRST_DB_URI",
            with_login(db_url, "authenticator", AUTHENTICATOR_PASSWORD),
        )
        .env("PGRST_DB_SCHEMAS", EXPOSED_SCHEMAS)
        .env("PGRST_DB_ANON_ROLE", "anon")
        .env("PGRST_JWT_SECRET", &jwt_secret)
        .env("PGRST_COMPAT_MODE", "true")
        .env("PGRST_SERVER_HOST", "127.0.0.1")
        .env("PGRST_SERVER_PORT", port.to_string());
        let mut postrust = Proc::spawn("postrust", cmd, log).map_err(|e| e.to_string())?;
        wait_for_port(&mut postrust, port, Duration::from_secs(60)).await?;
        let gateway = gateway::serve(&format!("http://127.0.0.1:{port}"), Keys::new(&jwt_secret))
            .await
            .map_err(|e| e.to_string())?;
        let project = Project { postrust, gateway };
        project.wait_until_serving().await?;
        Ok(project)
    }

    /// Polls `rpc/health` (the schema cache loads after the port opens).
    async fn wait_until_serving(&self) -> Result<(), String> {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let answer = client
                .post(format!("{}/rest/v1/rpc/health", self.gateway.url()))
                .header("apikey", &self.gateway.keys.secret)
                .header("content-profile", "api")
                .json(&serde_json::json!({}))
                .send()
                .await;
            let last = match answer {
                Ok(a) if a.status().is_success() => return Ok(()),
                Ok(a) => format!("{}: {}", a.status(), a.text().await.unwrap_or_default()),
                Err(e) => e.to_string(),
            };
            if started.elapsed() > Duration::from_secs(30) {
                return Err(format!(
                    "the Data API did not serve api.health within 30 s: {last}\n{}",
                    self.postrust.log_tail(40)
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops `postrust` (the gateway stops when dropped).
    pub async fn stop(mut self) {
        self.postrust.stop(Duration::from_secs(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_installs_the_pinned_version() {
        let setup = include_str!("../../setup.sh");
        assert!(setup.contains(&format!("POSTRUST_VERSION={POSTRUST_VERSION}\n")));
    }

    #[test]
    fn logins_replace_the_user() {
        assert_eq!(
            with_login("postgres://postgres@127.0.0.1:5432/db", "a", "b"),
            "postgres://a:b@127.0.0.1:5432/db"
        );
        assert_eq!(
            with_login("postgres://u:p@h/db?sslmode=disable", "a", "b"),
            "postgres://a:b@h/db?sslmode=disable"
        );
        assert_eq!(
            with_login("postgres://h/db", "a", "b"),
            "postgres://a:b@h/db"
        );
    }
}
