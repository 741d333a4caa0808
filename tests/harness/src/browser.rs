//! The headless browser of the documentation test: Chromium, from the
//! Debian package `chromium` that `tests/setup.sh` installs.

use std::path::PathBuf;

/// Where Chromium is looked for unless `CHROMIUM_PATH` says otherwise.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium's path, or why the browser test cannot run.
pub fn chromium() -> Result<PathBuf, String> {
    let path = std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM));
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no Chromium at {} (tests/setup.sh installs the Debian package `chromium` \
             when run as root with apt-get; or set CHROMIUM_PATH)",
            path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chromium_path_follows_the_variable() {
        // Only this test touches CHROMIUM_PATH in the harness crate.
        std::env::set_var("CHROMIUM_PATH", "/nonexistent/chromium");
        let err = chromium().expect_err("missing");
        assert!(err.contains("/nonexistent/chromium"), "{err}");
        std::env::set_var(
            "CHROMIUM_PATH",
            env!("CARGO_MANIFEST_DIR").to_string() + "/Cargo.toml",
        );
        assert!(chromium().is_ok());
        std::env::remove_var("CHROMIUM_PATH");
    }
}
