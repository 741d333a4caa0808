//! What stands between a local worker's Hyperdrive binding and
//! PostgreSQL.
//!
//! Under `wrangler dev` the binding opens a new connection straight to the
//! database for every request: a new PostgreSQL backend each time, which
//! costs the connection (≈ 3 ms here) and, worse, runs every query on cold
//! caches (`api.send_prepare` takes ≈ 5.5 ms on a new backend against ≈ 1
//! ms on a used one). In production Hyperdrive keeps a pool of warm
//! connections near the database instead. Two stand-ins:
//!
//! - [`ConnQueue`] (the default, what the tests use): a TCP proxy that
//!   only caps the number of connections, so a burst queues instead of
//!   exceeding `max_connections`; every request still gets a new backend.
//! - PgBouncer in transaction mode (`STACK_DB_POOL=pgbouncer`): a pool of
//!   warm backends, as Hyperdrive keeps. The benchmarks measure streaming
//!   under both ([`Kind::both`]), the pooled figure first: it is the one
//!   production has. It needs Debian's `pgbouncer` package, which the
//!   benchmarks install when missing ([`ensure_pgbouncer`]); the tests
//!   never do.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::process::Command;

use crate::conn_queue::{ConnQueue, LOCAL_POOL};
use crate::procs::{free_port, wait_for_port, Proc};

/// The environment variable that picks the pool (`queue` or `pgbouncer`).
pub const ENV: &str = "STACK_DB_POOL";

/// The Debian release of PgBouncer the benchmarks install when missing.
pub const PGBOUNCER_VERSION: &str = "1.18.0-1+deb12u1";

/// Which stand-in for Hyperdrive's pool to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// [`LocalPool::Queue`].
    Queue,
    /// [`LocalPool::Bouncer`].
    Bouncer,
}

impl Kind {
    /// The kind [`ENV`] names, or `default` when it is unset.
    pub fn from_env(default: Kind) -> Result<Kind, String> {
        Ok(Kind::chosen(env_value().as_deref())?.unwrap_or(default))
    }

    /// The kinds a benchmark measures streaming under: the one [`ENV`]
    /// names, or else both, pooled first (production's configuration).
    pub fn both() -> Result<Vec<Kind>, String> {
        Ok(match Kind::chosen(env_value().as_deref())? {
            Some(kind) => vec![kind],
            None => vec![Kind::Bouncer, Kind::Queue],
        })
    }

    /// The kind a value of [`ENV`] names (`None`: unset or empty).
    fn chosen(value: Option<&str>) -> Result<Option<Kind>, String> {
        match value {
            Some("pgbouncer") => Ok(Some(Kind::Bouncer)),
            Some("queue") => Ok(Some(Kind::Queue)),
            Some("") | None => Ok(None),
            Some(other) => Err(format!("{ENV}={other}: expected queue or pgbouncer")),
        }
    }
}

/// [`ENV`]'s value, if set.
fn env_value() -> Option<String> {
    std::env::var(ENV).ok()
}

/// Installs Debian's PgBouncer ([`PGBOUNCER_VERSION`]) when it is missing
/// (the benchmarks only; it needs root and the Debian archive).
pub fn ensure_pgbouncer() -> Result<(), String> {
    if pgbouncer_binary().is_some() {
        return Ok(());
    }
    println!("    (installing pgbouncer={PGBOUNCER_VERSION} from Debian for the pooled figures)");
    let status = std::process::Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-q",
            &format!("pgbouncer={PGBOUNCER_VERSION}"),
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("apt-get: {e}"))?;
    match pgbouncer_binary() {
        Some(_) if status.success() => Ok(()),
        _ => Err(format!(
            "could not install pgbouncer={PGBOUNCER_VERSION} ({status}); install it with apt-get"
        )),
    }
}

/// Where Debian puts the `pgbouncer` binary, when it is installed.
fn pgbouncer_binary() -> Option<&'static str> {
    ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"]
        .into_iter()
        .find(|p| std::path::Path::new(p).is_file())
}

/// A running stand-in for Hyperdrive's pool.
pub enum LocalPool {
    /// New backend per connection, at most [`LOCAL_POOL`] at once.
    Queue(ConnQueue),
    /// Warm backends handed out per transaction.
    Bouncer(Box<Bouncer>),
}

impl LocalPool {
    /// Starts a pool of `kind` in front of `target`.
    pub async fn start_kind(kind: Kind, target: SocketAddr) -> Result<LocalPool, String> {
        match kind {
            Kind::Bouncer => Ok(LocalPool::Bouncer(Box::new(Bouncer::start(target).await?))),
            Kind::Queue => ConnQueue::start(target, LOCAL_POOL)
                .await
                .map(LocalPool::Queue)
                .map_err(|e| format!("cannot start the connection queue: {e}")),
        }
    }

    /// `url` (a `postgres://` URL of the target) pointing at the pool.
    pub fn url(&self, url: &str) -> String {
        match self {
            LocalPool::Queue(q) => q.url(url),
            LocalPool::Bouncer(b) => crate::conn_queue::with_addr(url, b.addr),
        }
    }

    /// What the benchmarks print about it.
    pub fn describe(&self) -> &'static str {
        match self {
            LocalPool::Queue(_) => {
                "a new PostgreSQL connection per request (local Hyperdrive; production pools)"
            }
            LocalPool::Bouncer(_) => {
                "pooled PostgreSQL connections (PgBouncer, transaction mode, as Hyperdrive pools)"
            }
        }
    }

    /// Stops the pool.
    pub async fn stop(self) {
        if let LocalPool::Bouncer(mut b) = self {
            b.proc.stop(Duration::from_secs(5)).await;
            let _ = std::fs::remove_dir_all(&b.dir);
        }
    }
}

/// A PgBouncer process with its own configuration directory.
pub struct Bouncer {
    /// Where clients connect.
    pub addr: SocketAddr,
    proc: Proc,
    dir: PathBuf,
}

impl Bouncer {
    /// Starts PgBouncer on a free port in front of `target` (trust
    /// authentication, as the local server's).
    pub async fn start(target: SocketAddr) -> Result<Bouncer, String> {
        let binary = pgbouncer_binary().ok_or_else(|| {
            format!("pgbouncer is not installed: apt-get install pgbouncer={PGBOUNCER_VERSION}")
        })?;
        let port = free_port().map_err(|e| e.to_string())?;
        let dir =
            std::env::temp_dir().join(format!("stack-pgbouncer-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let ini = dir.join("pgbouncer.ini");
        let users = dir.join("users.txt");
        std::fs::write(&users, "\"postgres\" \"\"\n").map_err(|e| e.to_string())?;
        std::fs::write(
            &ini,
            format!(
                "[databases]\n* = host={} port={}\n[pgbouncer]\nlisten_addr = 127.0.0.1\n\
                 listen_port = {port}\nunix_socket_dir =\nauth_type = trust\nauth_file = {}\n\
                 pool_mode = transaction\ndefault_pool_size = {LOCAL_POOL}\n\
                 max_client_conn = 5000\nignore_startup_parameters = extra_float_digits,options\n",
                target.ip(),
                target.port(),
                users.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut cmd = Command::new(binary);
        // PgBouncer refuses to run as root; it drops to `postgres` then.
        if unsafe { libc::geteuid() } == 0 {
            use std::os::unix::fs::PermissionsExt;
            for path in [&dir, &ini, &users] {
                let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755));
            }
            cmd.args(["-u", "postgres"]);
        }
        cmd.arg(&ini);
        let mut proc =
            Proc::spawn("pgbouncer", cmd, Some(&dir.join("log"))).map_err(|e| e.to_string())?;
        wait_for_port(&mut proc, port, Duration::from_secs(10)).await?;
        Ok(Bouncer {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            proc,
            dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_names_a_kind_or_leaves_the_choice() {
        assert_eq!(Kind::chosen(Some("pgbouncer")), Ok(Some(Kind::Bouncer)));
        assert_eq!(Kind::chosen(Some("queue")), Ok(Some(Kind::Queue)));
        assert_eq!(Kind::chosen(Some("")), Ok(None));
        assert_eq!(Kind::chosen(None), Ok(None));
        let err = Kind::chosen(Some("hyperdrive")).unwrap_err();
        assert!(err.contains("STACK_DB_POOL=hyperdrive"), "{err}");
    }
}
