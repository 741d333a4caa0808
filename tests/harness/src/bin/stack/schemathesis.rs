//! Schemathesis against the live worker: requests generated from the
//! served `/openapi.json` (valid and invalid bodies, parameters and
//! headers), sent with a real user's credentials, every response checked
//! against the document: no 5xx, only documented status codes and content
//! types, bodies that match their schemas.
//!
//! Two passes over one fresh user: first with an API key (`X-API-Key` and
//! `Authorization: Bearer cak_…`) on every operation an API key may call,
//! then with an access token on every operation. The key pass goes first
//! because the token pass may delete API keys (it lists and deletes keys,
//! its own ones included). Both leave out `GET …/events`, a stream that
//! stays open (see [`EVENTS`]). Nothing else is excluded: logout only revokes
//! the refresh token it is given (never the runner's), and deleting
//! conversations only touches the test user's.
//!
//! Schemathesis itself comes from PyPI at the version pinned in
//! `tests/schemathesis/requirements.txt`, in a venv `tests/setup.sh`
//! makes under `~/.cache/conversation-api/` (`SCHEMATHESIS_BIN` overrides).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::process::Command;

use crate::run::Tally;

/// The pinned requirement (`schemathesis==X.Y.Z`).
const REQUIREMENTS: &str = include_str!("../../../../schemathesis/requirements.txt");
/// Settings shared by both passes (seed, workers, auth from `ST_BEARER`).
const CONFIG: &str = "tests/schemathesis/schemathesis.toml";
/// The checks run on every response.
const CHECKS: &str =
    "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";
/// Fewest generated requests over both passes for the run to count.
pub(crate) const MIN_REQUESTS: u64 = 1_000;
/// A conversation's event stream: it stays open until the conversation is
/// deleted (heartbeats only), so every valid request would hang until the
/// request timeout. The end-to-end tests (`tests/e2e/events.rs`) check it
/// against the document instead; its token route stays in.
const EVENTS: &str = "/events$";
/// Operations an API key may not call (managing API keys), and [`EVENTS`].
const KEY_MANAGEMENT_AND_EVENTS: &str = "^/api/v1/auth/api-keys|/events$";

/// The pinned version.
fn version() -> &'static str {
    REQUIREMENTS
        .lines()
        .find_map(|l| l.trim().strip_prefix("schemathesis=="))
        .unwrap_or("unpinned")
}

/// The `st` command of the venv `tests/setup.sh` makes, unless
/// `SCHEMATHESIS_BIN` names another.
pub(crate) fn st_binary() -> PathBuf {
    if let Ok(bin) = std::env::var("SCHEMATHESIS_BIN") {
        return PathBuf::from(bin);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    PathBuf::from(format!(
        "{home}/.cache/conversation-api/venv-schemathesis-{}/bin/st",
        version()
    ))
}

/// One pass: which credential, which operations, how many examples each.
struct Pass {
    name: &'static str,
    bearer: String,
    headers: Vec<String>,
    exclude_path_regex: Option<&'static str>,
    max_examples: u32,
}

/// What one pass's JSON report says.
#[derive(Debug, Default)]
struct Outcome {
    generated: u64,
    failures: Vec<String>,
    errors: Vec<String>,
}

/// Registers a user, makes an API key, runs both passes against
/// `base_url` and checks the totals; each pass counts as one test, the
/// total of generated requests as another.
pub(crate) async fn run(root: &Path, base_url: &str, tally: &mut Tally) -> Result<(), String> {
    println!(
        "\n==> schemathesis {} against {base_url}/openapi.json",
        version()
    );
    let started = Instant::now();
    let st = st_binary();
    if !st.exists() {
        tally.failed += 1;
        return Err(format!(
            "schemathesis is not installed at {} (run tests/setup.sh)",
            st.display()
        ));
    }
    let (access, key) = match credentials(base_url).await {
        Ok(c) => c,
        Err(e) => {
            tally.failed += 1;
            return Err(format!("schemathesis: cannot set up its user: {e}"));
        }
    };
    let reports = root.join(format!(
        "target/stack-logs/schemathesis-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&reports);
    std::fs::create_dir_all(&reports).map_err(|e| e.to_string())?;
    let passes = [
        Pass {
            name: "api-key",
            bearer: key.clone(),
            headers: vec![format!("X-API-Key: {key}")],
            exclude_path_regex: Some(KEY_MANAGEMENT_AND_EVENTS),
            max_examples: 25,
        },
        Pass {
            name: "access-token",
            bearer: access,
            headers: Vec::new(),
            exclude_path_regex: Some(EVENTS),
            max_examples: 40,
        },
    ];
    let mut generated = 0;
    let mut problems = Vec::new();
    for pass in &passes {
        match run_pass(root, &st, base_url, &reports, pass).await {
            Ok(o) => {
                generated += o.generated;
                if o.failures.is_empty() && o.errors.is_empty() {
                    tally.passed += 1;
                } else {
                    tally.failed += 1;
                    problems.push(format!(
                        "schemathesis ({} pass): {}",
                        pass.name,
                        o.failures
                            .iter()
                            .chain(&o.errors)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("; ")
                    ));
                }
            }
            Err(e) => {
                tally.failed += 1;
                problems.push(format!("schemathesis ({} pass): {e}", pass.name));
            }
        }
    }
    if generated >= MIN_REQUESTS {
        tally.passed += 1;
    } else {
        tally.failed += 1;
        problems.push(format!(
            "schemathesis generated {generated} requests, fewer than {MIN_REQUESTS}"
        ));
    }
    println!(
        "    (schemathesis: {generated} requests generated over {} passes, {} problem(s), {:.0} s; reports in {})",
        passes.len(),
        problems.len(),
        started.elapsed().as_secs_f64(),
        reports.strip_prefix(root).unwrap_or(&reports).display()
    );
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// Runs `st run` for one pass and reads its JSON report.
async fn run_pass(
    root: &Path,
    st: &Path,
    base_url: &str,
    reports: &Path,
    pass: &Pass,
) -> Result<Outcome, String> {
    println!("\n--> schemathesis, {} pass", pass.name);
    let report = reports.join(format!("{}.json", pass.name));
    let mut cmd = Command::new(st);
    cmd.current_dir(root)
        .env("ST_BEARER", &pass.bearer)
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("NO_COLOR", "1")
        .arg("--config-file")
        .arg(CONFIG)
        .arg("run")
        .arg(format!("{base_url}/openapi.json"))
        .arg("--url")
        .arg(base_url)
        .arg("--checks")
        .arg(CHECKS)
        .arg("--max-examples")
        .arg(pass.max_examples.to_string())
        .arg("--report")
        .arg("json,junit")
        .arg("--report-json-path")
        .arg(&report)
        .arg("--report-junit-path")
        .arg(reports.join(format!("{}.junit.xml", pass.name)))
        .arg("--wait-for-schema")
        .arg("30");
    for h in &pass.headers {
        cmd.arg("--header").arg(h);
    }
    if let Some(regex) = pass.exclude_path_regex {
        cmd.arg("--exclude-path-regex").arg(regex);
    }
    let status = cmd
        .status()
        .await
        .map_err(|e| format!("cannot run {}: {e}", st.display()))?;
    let text = std::fs::read_to_string(&report).map_err(|e| {
        format!(
            "no report at {} ({e}); st exited with {status}",
            report.display()
        )
    })?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", report.display()))?;
    let outcome = outcome(&doc);
    println!(
        "    ({} pass: {} requests generated, {} failure group(s), {} error group(s), exit {status})",
        pass.name,
        outcome.generated,
        outcome.failures.len(),
        outcome.errors.len()
    );
    if outcome.failures.is_empty() && outcome.errors.is_empty() && !status.success() {
        return Err(format!("st exited with {status}"));
    }
    Ok(outcome)
}

/// Reads the totals, failure groups and errors of a JSON report.
fn outcome(doc: &Value) -> Outcome {
    let list = |key: &str, describe: &dyn Fn(&Value) -> String| -> Vec<String> {
        doc[key]
            .as_array()
            .map(|items| items.iter().map(describe).collect())
            .unwrap_or_default()
    };
    Outcome {
        generated: doc["test_cases"]["generated"].as_u64().unwrap_or(0),
        failures: list("failures", &|f| {
            format!(
                "{} ×{} on {}",
                f["title"].as_str().unwrap_or("failure"),
                f["count"],
                f["operations"]
            )
        }),
        errors: list("errors", &|e| {
            format!("{} ×{}", e["title"].as_str().unwrap_or("error"), e["count"])
        }),
    }
}

/// A fresh user's access token and one of its API keys.
async fn credentials(base_url: &str) -> Result<(String, String), String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let registered = post(
        &http,
        &format!("{base_url}/api/v1/auth/register"),
        None,
        json!({"email": format!("schemathesis-{nanos}@example.com"), "password": "generated-input-1"}),
    )
    .await?;
    let access = registered["access_token"]
        .as_str()
        .ok_or("no access_token in the register response")?
        .to_string();
    let created = post(
        &http,
        &format!("{base_url}/api/v1/auth/api-keys"),
        Some(&access),
        json!({"name": "schemathesis"}),
    )
    .await?;
    let key = created["key"]
        .as_str()
        .ok_or("no key in the create-key response")?
        .to_string();
    Ok((access, key))
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    bearer: Option<&str>,
    body: Value,
) -> Result<Value, String> {
    let mut req = http.post(url).json(&body);
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.map_err(|e| format!("{url}: {e}"))?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(format!("{url}: {status} {body}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_pinned() {
        assert!(
            version().split('.').all(|p| p.parse::<u32>().is_ok()),
            "{}",
            version()
        );
    }

    #[test]
    fn reports_are_read() {
        let doc = json!({
            "test_cases": {"generated": 1234},
            "failures": [{"title": "Server error", "count": 2, "operations": ["GET /x"]}],
            "errors": [],
        });
        let o = outcome(&doc);
        assert_eq!(o.generated, 1234);
        assert_eq!(o.failures, ["Server error ×2 on [\"GET /x\"]"]);
        assert!(o.errors.is_empty());
        assert_eq!(outcome(&json!({})).generated, 0);
    }
}
