//! The tokeniser tables the worker loads from its static assets
//! (`build/assets/tokenizers/<encoding>.bin`), made from tiktoken-rs's own
//! data so that they match the crate the worker counts with.
//!
//! Format: for each rank from 0 upwards with no gap, one byte giving the
//! token's length (1–255) followed by the token's bytes. Special tokens are
//! not included (the worker counts ordinary text only). About 0.8 MB for
//! `cl100k_base` and 1.6 MB for `o200k_base`, against 1.7 MB and 3.6 MB of
//! the base64 text the crate embeds.

use std::path::Path;

use tiktoken_rs::CoreBPE;

/// The encodings the worker uses, by the name of their table file.
pub const ENCODINGS: [&str; 2] = ["cl100k_base", "o200k_base"];

/// tiktoken-rs's tokeniser for an encoding of [`ENCODINGS`], built from the
/// tables it embeds.
pub fn embedded(name: &str) -> Result<CoreBPE, String> {
    let built = match name {
        "cl100k_base" => tiktoken_rs::cl100k_base(),
        "o200k_base" => tiktoken_rs::o200k_base(),
        _ => return Err(format!("unknown encoding {name}")),
    };
    built.map_err(|e| format!("{name}: {e}"))
}

/// The compact table of `bpe`'s ordinary tokens, in rank order.
pub fn table(bpe: &CoreBPE) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let special = bpe.special_tokens();
    let mut rank = 0;
    // Ordinary ranks are contiguous from 0; the first gap (or special token) ends them.
    while let Ok(bytes) = bpe.decode_bytes(&[rank]) {
        if std::str::from_utf8(&bytes).is_ok_and(|s| special.contains(s)) {
            break;
        }
        let len = u8::try_from(bytes.len())
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("token {rank} is {} bytes long", bytes.len()))?;
        out.push(len);
        out.extend_from_slice(&bytes);
        rank += 1;
    }
    Ok(out)
}

/// Writes every encoding's table into `dir`, rewriting a file only when its
/// content changed (so a watching `wrangler dev` does not reload for nothing).
pub fn write_all(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for name in ENCODINGS {
        let bpe = embedded(name)?;
        let bytes = table(&bpe)?;
        let path = dir.join(format!("{name}.bin"));
        if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
            std::fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}
