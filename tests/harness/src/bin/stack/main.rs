//! The local stack runner behind `npm run dev` and `npm test`.
//!
//! - `stack dev`: serves the API on `127.0.0.1:${PORT:-8787}` with an
//!   embedded PGlite (or `DATABASE_URL`, or Supabase's HTTP API when
//!   `SUPABASE_URL` is set) and, without provider keys, the
//!   provider stand-in. Ctrl-C stops everything it started.
//! - `stack test`: format and lint checks, unit tests, then the end-to-end
//!   suite against the built worker, real PostgreSQL and the stand-in,
//!   schemathesis on the same worker, then the same suite over Supabase's
//!   HTTP API (`postrust` behind a gateway), the start-up of `stack dev`
//!   over that API and on PGlite (`stack test-only dev`: only that), a
//!   smoke run on PGlite, the load phases (200 streamed sends at once over
//!   50 users, on PGlite and on PostgreSQL; `stack test-only load`: only
//!   those), the fault-injection tests on a private PostgreSQL they stop
//!   and start (`stack test-only faults`: only those), and a misconfigured
//!   worker (`stack test-only schemathesis`: only the schemathesis passes).
//! - `stack bench`: the measurements of BENCHMARKS.md (`stack roundtrips`:
//!   only the database round trips per route; `stack bench-ttft`: only the
//!   time-to-first-token comparison: direct, this API, LiteLLM;
//!   `stack bench-transports`: time to first token over Hyperdrive and HTTP;
//!   `stack bench-load`: throughput and time to first token under load, on
//!   PGlite and PostgreSQL;
//!   `stack bench-ttft-ab BEFORE_DIR [N [AFTER_DIR]]`: time to first token of another
//!   checkout's built worker and this one's, side by side).
//! - `stack migrate [URL]`: applies the migrations to `URL` (or `DATABASE_URL`).

mod ab_bench;
mod bench;
mod cold_bench;
mod context_bench;
mod dev;
mod dev_phase;
mod faults;
mod limiter_restart;
mod load;
mod openapi;
mod roundtrip_bench;
mod run;
mod schemathesis;
mod size;
mod test;
mod throughput_bench;
mod transport_bench;
mod ttft_bench;

use std::process::ExitCode;

use harness::stack::repo_root;

const USAGE: &str = "usage: stack dev | stack test | stack test-only FILTER|http:FILTER|faults[FILTER]|schemathesis|dev|load | stack bench | stack bench-ttft | stack bench-transports | stack bench-load | stack bench-ttft-ab BEFORE_DIR [N [AFTER_DIR]] | stack bench-throughput-ab BEFORE_DIR [N [AFTER_DIR]] | stack roundtrips | stack migrate [DATABASE_URL]";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = repo_root();
    let result = match args.first().map(String::as_str) {
        Some("dev") => dev::run(&root).await,
        Some("test") => test::run(&root).await,
        Some("test-only") => match args.get(1) {
            Some(filter) => test::run_only(&root, filter).await,
            None => Err(USAGE.into()),
        },
        Some("bench") => bench::run(&root).await,
        Some("bench-ttft") => ttft_bench::standalone(&root).await,
        Some(ab @ ("bench-ttft-ab" | "bench-throughput-ab")) => match args.get(1) {
            Some(before) => {
                let what = if ab == "bench-ttft-ab" {
                    ab_bench::What::FirstToken
                } else {
                    ab_bench::What::Throughput
                };
                ab_bench::standalone(
                    what,
                    &root,
                    std::path::Path::new(before),
                    args.get(2).map(String::as_str),
                    args.get(3).map(std::path::Path::new),
                )
                .await
            }
            None => Err(USAGE.into()),
        },
        Some("bench-transports") => transport_bench::standalone(&root).await,
        Some("bench-load") => load::standalone(&root).await,
        Some("roundtrips") => match test::build_worker(&root).await {
            Ok((logs, secret)) => roundtrip_bench::run(&root, &logs, &secret).await,
            Err(e) => Err(e),
        },
        Some("migrate") => match args
            .get(1)
            .cloned()
            .or_else(|| std::env::var("DATABASE_URL").ok())
        {
            Some(url) => harness::migrate::run(&url, &root.join("migrations"))
                .await
                .map(|applied| println!("applied: {applied:?}")),
            None => Err("stack migrate needs a URL or DATABASE_URL".into()),
        },
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\nerror: {e}");
            ExitCode::FAILURE
        }
    }
}
