//! Files the worker reads from its own static assets (wrangler.toml
//! `[assets]`, binding `ASSETS`): build outputs kept out of the script
//! to keep it small (the tokeniser tables, the OpenAPI document).

use worker::Env;

/// The static assets binding (wrangler.toml `[assets]`).
const BINDING: &str = "ASSETS";

/// The URL of the asset at `path` (starting with `/`); the host is not
/// used by the assets binding.
pub fn url(path: &str) -> String {
    format!("https://assets.local{path}")
}

/// The bytes of the asset at `path` (starting with `/`); the error names
/// the asset and what went wrong (a missing one is a status 404).
pub async fn fetch(env: &Env, path: &str) -> Result<Vec<u8>, String> {
    let assets = env.assets(BINDING).map_err(|e| format!("{BINDING}: {e}"))?;
    let url = url(path);
    let mut response = assets
        .fetch(url.as_str(), None)
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if response.status_code() != 200 {
        return Err(format!("{url}: status {}", response.status_code()));
    }
    response.bytes().await.map_err(|e| format!("{url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_addressed_by_path() {
        assert_eq!(url("/openapi.json"), "https://assets.local/openapi.json");
    }
}
