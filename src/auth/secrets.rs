//! Random secrets (refresh tokens, API keys), their SHA-256 fingerprints,
//! and constant-time comparison.

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};

/// Prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "crt_";
/// Prefix of API keys.
pub const API_KEY_PREFIX: &str = "cak_";
/// Characters of an API key shown back as its `prefix` (`cak_` + 8).
pub const API_KEY_VISIBLE: usize = 12;
/// Random bytes in a refresh token or API key (256 bits).
pub const SECRET_BYTES: usize = 32;

/// Fills a buffer from the platform's CSPRNG (WebCrypto in the worker).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| format!("random source failed: {e}"))?;
    Ok(buf)
}

/// `prefix` + base64url (unpadded) of 32 random bytes.
pub fn new_secret(prefix: &str) -> Result<String, String> {
    let bytes = random_bytes::<SECRET_BYTES>()?;
    Ok(format!(
        "{prefix}{}",
        Base64UrlUnpadded::encode_string(&bytes)
    ))
}

/// Whether `value` has the shape of a secret with this prefix
/// (prefix + 43 base64url characters).
pub fn looks_like(value: &str, prefix: &str) -> bool {
    value.strip_prefix(prefix).is_some_and(|rest| {
        rest.len() == 43
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// The refresh token that replaces `presented` when it rotates:
/// [`REFRESH_PREFIX`] + base64url of HMAC-SHA256(`key`, label + `presented`).
/// Derived, not random, so that the same rotation repeated (two tabs at
/// once, a retry after a lost response) yields the same successor, which
/// the database recognises within its grace window. Unpredictable without
/// `key` (the deployment's `JWT_SECRET`).
pub fn successor(key: &str, presented: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(b"refresh-token-successor\n");
    mac.update(presented.as_bytes());
    let bytes = mac.finalize().into_bytes();
    format!(
        "{REFRESH_PREFIX}{}",
        Base64UrlUnpadded::encode_string(&bytes)
    )
}

/// Lower-case hex SHA-256: how tokens and keys are stored.
pub fn fingerprint(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_their_shape_and_differ() {
        let a = new_secret(API_KEY_PREFIX).unwrap();
        let b = new_secret(API_KEY_PREFIX).unwrap();
        assert_ne!(a, b);
        assert!(looks_like(&a, API_KEY_PREFIX), "{a}");
        assert!(!looks_like(&a, REFRESH_PREFIX));
        assert!(!looks_like("cak_short", API_KEY_PREFIX));
        assert!(!looks_like(&format!("{a}x"), API_KEY_PREFIX));
    }

    #[test]
    fn successors_are_derived_keyed_and_shaped_like_tokens() {
        let t = new_secret(REFRESH_PREFIX).unwrap();
        let next = successor("k".repeat(32).as_str(), &t);
        assert!(looks_like(&next, REFRESH_PREFIX), "{next}");
        assert_eq!(
            next,
            successor("k".repeat(32).as_str(), &t),
            "the same rotation"
        );
        assert_ne!(next, successor("j".repeat(32).as_str(), &t), "keyed");
        assert_ne!(
            next,
            successor("k".repeat(32).as_str(), &next),
            "a chain moves on"
        );
    }

    #[test]
    fn fingerprints_are_sha256_hex() {
        assert_eq!(
            fingerprint("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }
}
