//! Writes the worker's tokeniser tables (see `harness::tokenizer_tables`)
//! into `build/assets/tokenizers/`, or the directory given as argument.
//! Runs before every worker build (`npm run build:worker`); offline.

use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os().nth(1).map_or_else(
        || harness::stack::repo_root().join("build/assets/tokenizers"),
        Into::into,
    );
    match harness::tokenizer_tables::write_all(&dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokenizer-tables: {e}");
            ExitCode::FAILURE
        }
    }
}
