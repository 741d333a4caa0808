//! The load phases of `npm test` (`stack test-only load`) and `stack
//! bench-load`: the run of [`harness::load`] (200 streamed sends at once over
//! 50 users, with readers) against each local default, the embedded PGlite
//! and PostgreSQL, each on a fresh database.

use std::path::Path;

use harness::load::{Plan, Report};

use crate::run::{cargo_test, Tally};
use crate::test::{e2e_env, PgStack, PgliteStack};

/// The worker's variables for a load run, over [`crate::test::test_vars`]
/// (whose rate limits are already out of the way): a first token that is
/// slow under load is waited for rather than answered by the fallback
/// model, so that every answer comes from the scripted provider; and a
/// database connection is waited for up to 60 s, not 5: under `wrangler
/// dev` one `workerd` thread serves every request, and while it is busy
/// with hundreds of them a connection's handshake waits its turn there.
const OVERRIDES: &[(&str, &str)] = &[
    ("FIRST_TOKEN_TIMEOUT_MS", "60000"),
    (
        "DATABASE_CONNECT_TIMEOUT_MS",
        crate::dev::LOCAL_CONNECT_TIMEOUT_MS,
    ),
];

/// The databases the load runs on.
#[derive(Debug, Clone, Copy)]
enum Backend {
    Pglite,
    Postgres,
}

impl Backend {
    const ALL: [Backend; 2] = [Backend::Pglite, Backend::Postgres];

    fn phase(self) -> &'static str {
        match self {
            Backend::Pglite => "load-pglite",
            Backend::Postgres => "load-postgres",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Backend::Pglite => "PGlite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// A running stack on either backend.
enum Running {
    Pglite(PgliteStack),
    Postgres(PgStack),
}

impl Running {
    async fn start(
        root: &Path,
        logs: &Path,
        secret: &str,
        backend: Backend,
    ) -> Result<Running, String> {
        let phase = backend.phase();
        Ok(match backend {
            Backend::Pglite => {
                Running::Pglite(PgliteStack::start(root, logs, phase, secret, OVERRIDES).await?)
            }
            Backend::Postgres => {
                Running::Postgres(PgStack::start(root, logs, phase, secret, OVERRIDES).await?)
            }
        })
    }

    /// The `E2E_*` variables for the `load::` test.
    fn env(&self, phase: &str, secret: &str) -> Vec<(&'static str, String)> {
        match self {
            Running::Pglite(s) => e2e_env(phase, &s.worker, Some(&s.stand_in), &s.url, secret),
            Running::Postgres(s) => s.env(phase, secret),
        }
    }

    /// The worker's base URL and the stand-in's.
    fn urls(&self) -> (String, String) {
        match self {
            Running::Pglite(s) => (s.worker.base_url.clone(), s.stand_in.url()),
            Running::Postgres(s) => (s.worker.base_url.clone(), s.stand_in.url()),
        }
    }

    async fn stop(self) {
        match self {
            Running::Pglite(s) => s.stop().await,
            Running::Postgres(s) => s.stop().await,
        }
    }
}

/// `npm test`'s load phases: the `load::` end-to-end test on PGlite, then
/// on PostgreSQL, each alone against its own worker.
pub async fn phase(
    root: &Path,
    logs: &Path,
    secret: &str,
    tally: &mut Tally,
) -> Result<(), String> {
    let mut result = Ok(());
    for backend in Backend::ALL {
        let r = async {
            let stack = Running::start(root, logs, secret, backend).await?;
            let r = cargo_test(
                root,
                &format!("load ({})", backend.title()),
                &[
                    "--test",
                    "e2e",
                    "--",
                    "load::",
                    "--test-threads",
                    "1",
                    "--nocapture",
                ],
                &stack.env(backend.phase(), secret),
                tally,
            )
            .await;
            stack.stop().await;
            r
        }
        .await;
        if let Err(e) = &r {
            println!("FAILED: load ({}): {e}", backend.title());
        }
        result = result.and(r);
    }
    result
}

/// `stack bench-load` (and part of `npm run bench`): the same load on each
/// backend, with its figures printed.
pub async fn bench(root: &Path, logs: &Path, secret: &str) -> Result<(), String> {
    let plan = Plan::default();
    for backend in Backend::ALL {
        println!(
            "\n==> load: {} streamed sends at once over {} users with {} readers ({})",
            plan.sends,
            plan.users,
            plan.readers,
            backend.title()
        );
        let stack = Running::start(root, logs, secret, backend).await?;
        let (base, standin) = stack.urls();
        let report = harness::load::run(&base, &standin, &plan).await;
        stack.stop().await;
        let report: Report = report?;
        for line in report.lines(&plan) {
            println!("     {line}");
        }
        if !report.problems.is_empty() {
            return Err(format!(
                "the load on {} went wrong ({} problems), the first: {}",
                backend.title(),
                report.problems.len(),
                report.problems[0]
            ));
        }
    }
    Ok(())
}

/// `stack bench-load`: builds the worker and runs [`bench`].
pub async fn standalone(root: &Path) -> Result<(), String> {
    let (logs, secret) = crate::test::build_worker(root).await?;
    bench(root, &logs, &secret).await
}
