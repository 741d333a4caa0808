//! Running commands from the stack runner: plain steps and `cargo test`
//! runs whose results are counted.

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Test counts summed over every `cargo test` run.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
}

impl Tally {
    /// Adds the counts from one `test result:` line.
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let count = |name: &str| -> Option<u64> {
                let i = words.iter().position(|w| *w == name)?;
                words.get(i.checked_sub(1)?)?.parse().ok()
            };
            if let Some(n) = count("passed") {
                self.passed += n;
            }
            if let Some(n) = count("failed") {
                self.failed += n;
            }
        }
    }
}

/// Runs a command to completion in `root`, printing a heading; fails on a
/// non-zero exit.
pub async fn step(root: &Path, title: &str, program: &str, args: &[&str]) -> Result<(), String> {
    println!("\n==> {title}");
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .current_dir(root)
        .status()
        .await
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    println!("    ({title}: {:.1} s)", started.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("{title} failed ({status})"))
    }
}

/// Runs `cargo test ARGS` with extra environment, echoing its output and
/// adding its `test result:` counts to `tally`. A failing run is reported
/// in the counts and in the returned error.
pub async fn cargo_test(
    root: &Path,
    title: &str,
    args: &[&str],
    envs: &[(&str, String)],
    tally: &mut Tally,
) -> Result<(), String> {
    println!("\n==> {title}");
    let started = Instant::now();
    let mut child = Command::new("cargo")
        .arg("test")
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(root)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo test: {e}"))?;
    let mut seen = Tally::default();
    if let Some(stdout) = child.stdout.take() {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            println!("{line}");
            seen.add_line(&line);
        }
    }
    let status = child.wait().await.map_err(|e| e.to_string())?;
    tally.passed += seen.passed;
    tally.failed += seen.failed;
    println!(
        "    ({title}: {} passed, {} failed, {:.1} s)",
        seen.passed,
        seen.failed,
        started.elapsed().as_secs_f64()
    );
    if status.success() {
        Ok(())
    } else {
        if seen.failed == 0 {
            tally.failed += 1;
        }
        Err(format!("{title} failed ({status})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_result_lines() {
        let mut t = Tally::default();
        t.add_line("test result: ok. 12 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s");
        t.add_line(
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 5 filtered out",
        );
        t.add_line("running 5 tests");
        assert_eq!((t.passed, t.failed), (15, 2));
    }
}
