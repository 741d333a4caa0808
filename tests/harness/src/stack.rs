//! Pieces of the local stack shared by the dev command and the test runner:
//! databases (a throwaway PostgreSQL database, or embedded PGlite), the
//! worker under wrangler's dev server (`tests/harness/worker.mjs`), and
//! `.env`-style variable files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Command;
use tokio_postgres::NoTls;

use crate::procs::{wait_for_http, wait_for_port, Proc};

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.join("../..")
        .canonicalize()
        .unwrap_or_else(|_| here.join("../.."))
}

/// `PATH` with the project's `node_modules/.bin` first, so the pinned Node
/// (22, from the `node` devDependency) runs wrangler and PGlite.
pub fn node_path(root: &Path) -> std::ffi::OsString {
    let mut paths = vec![root.join("node_modules/.bin")];
    if let Some(path) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(paths).unwrap_or_default()
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// `url` with a password: Hyperdrive (miniflare) refuses connection strings
/// without one, so a server with trust auth gets the placeholder `postgres`.
pub fn with_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) if !userinfo.contains(':') => {
            format!("{scheme}://{userinfo}:postgres@{host}")
        }
        Some(_) => url.to_string(),
        None => format!("{scheme}://postgres:postgres@{rest}"),
    }
}

/// A uniquely named database created for one test run and dropped after it.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// Connection URL of the new database.
    pub url: String,
}

impl TestDatabase {
    /// Creates `conversation_api_test_<pid>_<time>` on the server at `admin_url`.
    pub async fn create(admin_url: &str) -> Result<TestDatabase, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!(
            "conversation_api_test_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000
        );
        admin_exec(admin_url, &format!("CREATE DATABASE {name}")).await?;
        Ok(TestDatabase {
            admin_url: admin_url.to_string(),
            url: with_database(admin_url, &name),
            name,
        })
    }

    /// Drops the database, disconnecting any session still using it.
    pub async fn drop_database(self) -> Result<(), String> {
        admin_exec(
            &self.admin_url,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        )
        .await
    }
}

async fn admin_exec(url: &str, sql: &str) -> Result<(), String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.map_err(|e| {
        format!(
            "cannot connect to {} ({e}); is PostgreSQL running? Set TEST_DATABASE_URL to point elsewhere",
            crate::migrate::redact(url)
        )
    })?;
    let conn = tokio::spawn(connection);
    let result = client
        .batch_execute(sql)
        .await
        .map_err(|e| format!("{sql}: {e}"));
    drop(client);
    let _ = conn.await;
    result
}

/// Starts the embedded PostgreSQL (PGlite served by
/// `tests/harness/pglite.mjs`: every connection accepted, their requests
/// queued and run one at a time) keeping its data in `data_dir`; returns
/// the process and its connection URL.
pub async fn start_pglite(
    root: &Path,
    data_dir: &Path,
    port: u16,
    log: Option<&Path>,
) -> Result<(Proc, String), String> {
    std::fs::create_dir_all(data_dir).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(root.join("node_modules/.bin/node"));
    cmd.current_dir(root)
        .env("PATH", node_path(root))
        .arg(root.join("tests/harness/pglite.mjs"))
        .arg("--db")
        .arg(data_dir)
        .arg("--port")
        .arg(port.to_string())
        .arg("--host")
        .arg("127.0.0.1");
    let mut proc = Proc::spawn("pglite", cmd, log).map_err(|e| e.to_string())?;
    wait_for_port(&mut proc, port, Duration::from_secs(60)).await?;
    Ok((
        proc,
        format!("postgres://postgres@127.0.0.1:{port}/postgres"),
    ))
}

/// Reads a `.env`/`.dev.vars` file: `KEY=VALUE` lines, `#` comments,
/// optional `export `, values optionally in single or double quotes.
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        let value = if value.len() >= 2
            && ((value.starts_with('"') && value.ends_with('"'))
                || (value.starts_with('\'') && value.ends_with('\'')))
        {
            value[1..value.len() - 1]
                .replace("\\n", "\n")
                .replace("\\\"", "\"")
        } else {
            value.to_string()
        };
        vars.insert(key.trim().to_string(), value);
    }
    vars
}

/// Writes variables as a `.env` file that wrangler reads with `--env-file`.
pub fn write_env_file(path: &Path, vars: &BTreeMap<String, String>) -> Result<(), String> {
    let mut text = String::from("# Written by the stack runner; edit .dev.vars instead.\n");
    for (key, value) in vars {
        let escaped = value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        text.push_str(&format!("{key}=\"{escaped}\"\n"));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The environment of `wrangler.toml` without the `[[hyperdrive]]`
/// binding; workers whose variables set `SUPABASE_URL` run it.
pub const HTTP_ENV: &str = "http";

/// How to run the worker locally.
pub struct WorkerOptions {
    /// Port to serve on (127.0.0.1).
    pub port: u16,
    /// Postgres URL Hyperdrive connects to (unused when `vars` sets
    /// `SUPABASE_URL`: the worker then runs [`HTTP_ENV`]).
    pub database_url: String,
    /// Variables and secrets, written to `env_file`.
    pub vars: BTreeMap<String, String>,
    /// Where to write the variables (read as the worker's env file).
    pub env_file: PathBuf,
    /// Local state (Durable Objects) directory.
    pub state_dir: PathBuf,
    /// Log file; `None` shows the worker's output in the terminal.
    pub log: Option<PathBuf>,
    /// How long to wait for `/health` (the first start includes a build).
    pub ready_within: Duration,
    /// A wrangler configuration other than the root's `wrangler.toml`.
    pub config: Option<PathBuf>,
}

/// The worker running locally.
pub struct Worker {
    /// The launcher's process group (Node and its `workerd` processes).
    pub proc: Proc,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The status `/health` answered when the worker came up (200 unless misconfigured).
    pub health_status: u16,
    /// Local state (Durable Objects) directory.
    pub state_dir: PathBuf,
    /// Its log file (`None`: its output goes to the terminal).
    pub log: Option<PathBuf>,
}

/// Starts the worker with `tests/harness/worker.mjs` (wrangler's
/// programmatic dev server, without the DevTools inspector unless
/// `WORKER_INSPECTOR=1`) and waits until `/health` answers.
pub async fn start_worker(root: &Path, opts: WorkerOptions) -> Result<Worker, String> {
    let (mut proc, base_url) = spawn_worker(root, &opts)?;
    let health_status =
        wait_for_http(&mut proc, &format!("{base_url}/health"), opts.ready_within).await?;
    Ok(Worker {
        proc,
        base_url,
        health_status,
        state_dir: opts.state_dir,
        log: opts.log,
    })
}

/// Starts `wrangler dev` without waiting for it; returns the process and
/// the base URL it will serve.
pub fn spawn_worker(root: &Path, opts: &WorkerOptions) -> Result<(Proc, String), String> {
    write_env_file(&opts.env_file, &opts.vars)?;
    let mut cmd = Command::new(root.join("node_modules/.bin/node"));

    cmd.current_dir(root)
        .env("PATH", node_path(root))
        .arg(root.join("tests/harness/worker.mjs"))
        .arg("--port")
        .arg(opts.port.to_string())
        .arg("--env-file")
        .arg(&opts.env_file)
        .arg("--persist-to")
        .arg(&opts.state_dir)
        .env(
            "CLOUDFLARE_HYPERDRIVE_LOCAL_CONNECTION_STRING_HYPERDRIVE",
            with_password(&opts.database_url),
        )
        .env("WRANGLER_SEND_METRICS", "false")
        .env("NO_COLOR", "1");
    if let Some(config) = &opts.config {
        cmd.arg("--config").arg(config);
    }
    if opts.vars.contains_key("SUPABASE_URL") {
        // wrangler.toml's environment without the Hyperdrive binding: the
        // worker then reaches the database over Supabase's HTTP API.
        cmd.arg("--env").arg(HTTP_ENV);
    }
    let proc = Proc::spawn("worker", cmd, opts.log.as_deref()).map_err(|e| e.to_string())?;
    Ok((proc, format!("http://127.0.0.1:{}", opts.port)))
}

/// 32 random bytes from the OS as 64 hex characters.
pub fn random_hex_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    let mut file = std::fs::File::open("/dev/urandom").map_err(|e| e.to_string())?;
    std::io::Read::read_exact(&mut file, &mut bytes).map_err(|e| e.to_string())?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }

    #[test]
    fn passwords_are_added_only_when_missing() {
        assert_eq!(
            with_password("postgres://u@h:1/d"),
            "postgres://u:postgres@h:1/d"
        );
        assert_eq!(with_password("postgres://u:p@h/d"), "postgres://u:p@h/d");
        assert_eq!(
            with_password("postgres://h/d"),
            "postgres://postgres:postgres@h/d"
        );
    }

    #[test]
    fn env_files_round_trip() {
        let text = "# c\nA=1\nexport B=\"two words\"\nC='x=y'\n\nbroken\nD=\"q\\\"uote\"\n";
        let vars = parse_env_file(text);
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "x=y");
        assert_eq!(vars["D"], "q\"uote");
        assert!(!vars.contains_key("broken"));
        let path = std::env::temp_dir().join(format!("envfile-{}.env", std::process::id()));
        write_env_file(&path, &vars).unwrap();
        let back = parse_env_file(&std::fs::read_to_string(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        assert_eq!(back, vars);
    }

    #[test]
    fn secrets_are_random_hex() {
        let a = random_hex_secret().unwrap();
        let b = random_hex_secret().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
