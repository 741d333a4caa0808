//! Child processes of the stack (wrangler, PGlite): each in its own process
//! group so the whole tree (wrangler → workerd) can be stopped, told to die
//! with its parent, with output to a log file or the terminal.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// A running child process group.
pub struct Proc {
    name: String,
    child: Child,
    log: Option<PathBuf>,
}

impl Proc {
    /// Spawns `cmd` in a new process group. Output goes to `log` (appended)
    /// or, when `None`, to this process's terminal.
    pub fn spawn(name: &str, mut cmd: Command, log: Option<&Path>) -> io::Result<Proc> {
        match log {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                cmd.stdout(file.try_clone()?).stderr(file);
            }
            None => {
                cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
            }
        }
        cmd.stdin(Stdio::null()).process_group(0).kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; this only asks the kernel to
        // send SIGTERM to the child if this process dies first.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start {name}: {e}")))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            log: log.map(Path::to_path_buf),
        })
    }

    /// The process's name, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the process has already exited (and how).
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        }
    }

    /// The last `lines` lines of its log file, if it has one.
    pub fn log_tail(&self, lines: usize) -> String {
        let Some(path) = &self.log else {
            return String::new();
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL after `grace`.
    pub async fn stop(&mut self, grace: Duration) {
        let Some(pid) = self.child.id() else {
            return;
        };
        let pgid = pid as i32;
        signal_group(pgid, libc::SIGTERM);
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            signal_group(pgid, libc::SIGKILL);
            let _ = self.child.wait().await;
        }
        // Grandchildren (workerd) may outlive the leader briefly.
        signal_group(pgid, libc::SIGKILL);
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            signal_group(pid as i32, libc::SIGKILL);
        }
    }
}

fn signal_group(pgid: i32, sig: i32) {
    // SAFETY: kill(2) with a negative pid signals that process group only.
    unsafe {
        libc::kill(-pgid, sig);
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Polls `url` until it answers with any HTTP status (returned), the
/// process exits, or `limit` passes.
pub async fn wait_for_http(proc: &mut Proc, url: &str, limit: Duration) -> Result<u16, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    loop {
        if let Some(status) = proc.exited() {
            return Err(format!(
                "{} exited ({status}) before {url} answered\n{}",
                proc.name(),
                proc.log_tail(60)
            ));
        }
        if let Ok(resp) = client.get(url).send().await {
            return Ok(resp.status().as_u16());
        }
        if start.elapsed() > limit {
            return Err(format!(
                "{url} did not answer within {} s\n{}",
                limit.as_secs(),
                proc.log_tail(60)
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls a TCP port until it accepts a connection or `limit` passes.
pub async fn wait_for_port(proc: &mut Proc, port: u16, limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if let Some(status) = proc.exited() {
            return Err(format!(
                "{} exited ({status})\n{}",
                proc.name(),
                proc.log_tail(60)
            ));
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(format!("{} did not open port {port}", proc.name()));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
