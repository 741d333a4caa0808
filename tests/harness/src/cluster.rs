//! A private PostgreSQL cluster (the machine's `initdb` and `pg_ctl`) that
//! a test may stop and start again: the fault-injection tests take the
//! database away under the running worker without touching the shared
//! server the other phases use.
//!
//! PostgreSQL refuses to run as root, so when this process is root every
//! command runs as the `postgres` user (`runuser -u postgres --`) and the
//! cluster's folder belongs to that user. The socket goes to `/tmp`; the
//! server listens on 127.0.0.1 at a free port, trusting local connections.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian puts the server's programs, newest first.
const BIN_DIRS: &[&str] = &[
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
];

/// The user the server runs as when this process is root.
const SERVER_USER: &str = "postgres";

/// How `pg_ctl stop` stops the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `-m fast`: connections are terminated, the server shuts down cleanly
    /// (what a restart does).
    Fast,
    /// `-m immediate`: the server quits at once (a crash; recovery on start).
    Immediate,
}

/// A cluster: its programs, data folder, port and log.
#[derive(Debug)]
pub struct Cluster {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    log: PathBuf,
    run_as: Option<String>,
    /// Whether dropping this value stops the server (the creator's copy).
    owned: bool,
}

/// Variables that describe a running cluster to another process.
const VARS: [&str; 5] = [
    "E2E_PG_BIN",
    "E2E_PG_DATA",
    "E2E_PG_PORT",
    "E2E_PG_LOG",
    "E2E_PG_RUN_AS",
];

impl Cluster {
    /// Makes a new cluster in `dir/data` (removing an old one there) with
    /// its log at `log`, on a free port, and starts it.
    pub async fn create(dir: &Path, log: &Path) -> Result<Cluster, String> {
        let bin = BIN_DIRS
            .iter()
            .map(PathBuf::from)
            .find(|d| d.join("pg_ctl").exists())
            .ok_or_else(|| {
                format!("no PostgreSQL server programs (initdb, pg_ctl) in {BIN_DIRS:?}")
            })?;
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let run_as = root.then(|| SERVER_USER.to_string());
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::write(log, "").map_err(|e| format!("{}: {e}", log.display()))?;
        if let Some(user) = &run_as {
            for path in [dir, log] {
                let status = Command::new("chown")
                    .arg(format!("{user}:"))
                    .arg(path)
                    .status()
                    .map_err(|e| e.to_string())?;
                if !status.success() {
                    return Err(format!("chown {user} {} failed", path.display()));
                }
            }
        }
        let port = crate::procs::free_port().map_err(|e| e.to_string())?;
        let cluster = Cluster {
            bin,
            data: dir.join("data"),
            port,
            log: log.to_path_buf(),
            run_as,
            owned: true,
        };
        let data = cluster.data.display().to_string();
        cluster
            .run(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                ],
            )
            .await?;
        cluster.start().await?;
        Ok(cluster)
    }

    /// The cluster a parent process described with [`Cluster::env`]
    /// (`None` when the variables are not set). Dropping it stops nothing.
    pub fn from_env() -> Option<Cluster> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Some(Cluster {
            bin: var(VARS[0])?.into(),
            data: var(VARS[1])?.into(),
            port: var(VARS[2])?.parse().ok()?,
            log: var(VARS[3])?.into(),
            run_as: var(VARS[4]),
            owned: false,
        })
    }

    /// Variables for [`Cluster::from_env`] in a child process.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (VARS[0], self.bin.display().to_string()),
            (VARS[1], self.data.display().to_string()),
            (VARS[2], self.port.to_string()),
            (VARS[3], self.log.display().to_string()),
            (VARS[4], self.run_as.clone().unwrap_or_default()),
        ]
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server and waits until it accepts connections.
    pub async fn start(&self) -> Result<(), String> {
        let options = self.server_options();
        let (data, log) = (self.data.display().to_string(), self.log.display());
        let log = log.to_string();
        self.run(
            "pg_ctl",
            &[
                "start", "-w", "-t", "60", "-D", &data, "-l", &log, "-o", &options,
            ],
        )
        .await
    }

    /// Stops the server (waiting until it is down).
    pub async fn stop(&self, how: Stop) -> Result<(), String> {
        let mode = match how {
            Stop::Fast => "fast",
            Stop::Immediate => "immediate",
        };
        let data = self.data.display().to_string();
        self.run(
            "pg_ctl",
            &["stop", "-w", "-t", "60", "-m", mode, "-D", &data],
        )
        .await
    }

    /// Whether the server is running (`pg_ctl status`).
    pub async fn is_running(&self) -> bool {
        let data = self.data.display().to_string();
        self.run("pg_ctl", &["status", "-D", &data]).await.is_ok()
    }

    /// Stops the server at once and removes the cluster's folder.
    pub async fn destroy(mut self) {
        self.owned = false;
        if self.is_running().await {
            if let Err(e) = self.stop(Stop::Immediate).await {
                eprintln!("warning: could not stop the private PostgreSQL: {e}");
            }
        }
        if let Some(dir) = self.data.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// Runs one of the server's programs (as the server's user when root).
    async fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let (me, program) = (self.clone_unowned(), program.to_string());
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            me.run_blocking(&program, &args)
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// [`Cluster::run`], blocking the thread.
    fn run_blocking(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let described = format!("{program} {}", args.join(" "));
        let out = self
            .command(program, args)
            .output()
            .map_err(|e| format!("{described}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{described}: {}\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Starts the server again if it is down, blocking the thread: for a
    /// test's guard that must leave the database up even when it panics.
    pub fn ensure_running_blocking(&self) -> Result<(), String> {
        let data = self.data.display().to_string();
        if self
            .run_blocking("pg_ctl", &["status", "-D", &data])
            .is_ok()
        {
            return Ok(());
        }
        let options = self.server_options();
        let log = self.log.display().to_string();
        self.run_blocking(
            "pg_ctl",
            &[
                "start", "-w", "-t", "60", "-D", &data, "-l", &log, "-o", &options,
            ],
        )
    }

    /// A copy that stops nothing when dropped.
    fn clone_unowned(&self) -> Cluster {
        Cluster {
            bin: self.bin.clone(),
            data: self.data.clone(),
            port: self.port,
            log: self.log.clone(),
            run_as: self.run_as.clone(),
            owned: false,
        }
    }

    fn server_options(&self) -> String {
        format!(
            "-p {} -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port
        )
    }

    fn command(&self, program: &str, args: &[&str]) -> Command {
        let path = self.bin.join(program);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(path);
                c
            }
            None => Command::new(path),
        };
        cmd.args(args).stdin(std::process::Stdio::null());
        cmd
    }
}

impl Drop for Cluster {
    /// The creator's copy stops the server when it goes away without
    /// [`Cluster::destroy`] (e.g. on a panic), so no server outlives the run.
    fn drop(&mut self) {
        if self.owned {
            let data = self.data.display().to_string();
            let _ = self
                .command("pg_ctl", &["stop", "-m", "immediate", "-D", &data])
                .output();
        }
    }
}
