//! `GET /openapi.json`: the OpenAPI 3.1 document of the whole API
//! (`openapi.json`, kept by hand).
//!
//! The document is not in the script: the build copies it into the static
//! assets (`tests/build/docs-assets.mjs` writes `build/assets/openapi.json`
//! on every build), and wrangler.toml's `run_worker_first` sends
//! `/openapi.json` to the worker, which reads the asset and answers it with
//! the headers of every other route. The script keeps only the committed
//! document's length and hash, computed at compile time, so an asset that
//! is not exactly this build's document is never served (500, logged).

use worker::Response;

use crate::assets;
use crate::http::ctx::Ctx;
use crate::http::ApiError;

/// The document's path in the static assets.
pub const ASSET_PATH: &str = "/openapi.json";

/// The committed document's length in bytes.
const LENGTH: usize = include_bytes!("openapi.json").len();

/// The committed document's FNV-1a hash (the bytes are only read at
/// compile time; they are not in the script).
const HASH: u64 = fnv1a(include_bytes!("openapi.json"));

/// 64-bit FNV-1a: a fingerprint, not a defence against forgery (the
/// assets are part of the same deployment).
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325_u64;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Checks that `asset` is the document this script was built with.
pub fn verify(asset: &[u8]) -> Result<(), String> {
    if asset.len() != LENGTH || fnv1a(asset) != HASH {
        return Err(format!(
            "{ASSET_PATH} in the static assets ({} bytes) is not this build's document \
             ({LENGTH} bytes): rebuild with `npm run build:worker`",
            asset.len()
        ));
    }
    Ok(())
}

/// Serves the document from the static assets as `application/json`.
pub async fn serve(ctx: Ctx) -> Result<Response, ApiError> {
    let document = assets::fetch(ctx.env(), ASSET_PATH)
        .await
        .and_then(|asset| verify(&asset).map(|()| asset))
        .map_err(|e| ApiError::Internal(format!("the OpenAPI document: {e}")))?;
    let resp = Response::from_bytes(document)?;
    let headers = resp.headers();
    headers.set("Content-Type", "application/json")?;
    headers.set("Cache-Control", "no-cache")?;
    Ok(resp)
}

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod tests;
