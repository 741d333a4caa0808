//! The OpenAPI checks of `npm test`: `@redocly/cli lint` of the document,
//! and after the end-to-end tests that every operation of the document got
//! at least one real 2xx response validated against it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio::process::Command;

use crate::run::Tally;

/// The document linted and served.
const DOCUMENT: &str = "src/docs/openapi.json";
/// Redocly's configuration (rules and the warnings turned off, with why).
const CONFIG: &str = "tests/openapi/redocly.yaml";

/// The file the end-to-end tests record validated responses in, for this run.
pub(crate) fn seen_file() -> PathBuf {
    harness::stack::repo_root().join(format!(
        "target/stack-run/openapi-seen-{}.txt",
        std::process::id()
    ))
}

/// Starts the record empty.
pub(crate) fn reset_seen() -> Result<(), String> {
    let file = seen_file();
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    std::fs::write(&file, "").map_err(|e| format!("{}: {e}", file.display()))
}

/// `redocly lint` with telemetry and update checks off; counted as one test.
pub(crate) async fn lint(root: &Path, tally: &mut Tally) -> Result<(), String> {
    println!("\n==> OpenAPI lint (@redocly/cli)");
    let started = Instant::now();
    let status = Command::new(root.join("node_modules/.bin/redocly"))
        .args(["lint", "--config", CONFIG, DOCUMENT])
        .env("REDOCLY_TELEMETRY", "off")
        .env("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true")
        .current_dir(root)
        .status()
        .await
        .map_err(|e| format!("cannot run redocly (run tests/setup.sh): {e}"));
    println!(
        "    (OpenAPI lint: {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let result = match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("OpenAPI lint failed ({s})")),
        Err(e) => Err(e),
    };
    count(tally, &result);
    result
}

/// Fails, listing them, when some operation got no validated 2xx in the
/// end-to-end phases; counted as one test.
pub(crate) fn coverage(tally: &mut Tally) -> Result<(), String> {
    println!("\n==> every OpenAPI operation has a validated real response");
    let file = seen_file();
    let seen = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()));
    let result = seen.and_then(|seen| {
        let missing = harness::openapi::missing_operations(harness::openapi::spec(), &seen);
        if missing.is_empty() {
            println!(
                "    (all {} operations seen)",
                harness::openapi::spec().operations().len()
            );
            Ok(())
        } else {
            Err(format!(
                "no validated 2xx response in the end-to-end tests for: {}",
                missing.join(", ")
            ))
        }
    });
    if let Err(e) = &result {
        println!("    {e}");
    }
    count(tally, &result);
    result
}

fn count(tally: &mut Tally, result: &Result<(), String>) {
    match result {
        Ok(()) => tally.passed += 1,
        Err(_) => tally.failed += 1,
    }
}
