//! Password hashing: PBKDF2-HMAC-SHA256 in PHC string form
//! (`$pbkdf2-sha256$i=100000$<salt>$<hash>`, unpadded standard base64), so the
//! iteration count can change later and old hashes are upgraded at login.

use base64ct::{Base64Unpadded, Encoding};
use sha2::Sha256;

use super::secrets::ct_eq;

/// Iterations for new hashes: the production cap of WebCrypto PBKDF2 on
/// Workers, so a later move to WebCrypto keeps every stored hash valid.
pub const DEFAULT_ITERATIONS: u32 = 100_000;
/// Salt length in bytes.
pub const SALT_LEN: usize = 16;
/// Shortest and longest accepted password, in characters.
pub const MIN_LEN: usize = 8;
/// Longest accepted password, in characters.
pub const MAX_LEN: usize = 128;

const ID: &str = "pbkdf2-sha256";
/// Derived key length in bytes.
pub const HASH_LEN: usize = 32;

/// A hash of a password nobody has, verified when the e-mail is unknown so
/// both login failures cost the same time.
pub const DUMMY_HASH: &str =
    "$pbkdf2-sha256$i=100000$AAAAAAAAAAAAAAAAAAAAAA$T7YzJfZ3W1N2o7sQ3cQm9p2rJm8HfUj5ZsYz8i3mPxM";

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The password matches; `rehash` says the stored hash uses another
    /// iteration count and should be replaced.
    Match { rehash: bool },
    /// Wrong password.
    Mismatch,
    /// The stored string is not a hash this code understands.
    Malformed,
}

/// Checks the contract's rules: 8–128 characters with a letter and a digit.
pub fn check_rules(password: &str) -> Result<(), &'static str> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err("must be at least 8 characters");
    }
    if len > MAX_LEN {
        return Err("must be at most 128 characters");
    }
    if !password.chars().any(char::is_alphabetic) {
        return Err("must contain a letter");
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        return Err("must contain a digit");
    }
    Ok(())
}

/// Hashes `password` with `salt` and `iterations` into a PHC string
/// (natively; the worker uses [`super::kdf::hash`], which gives the same string).
pub fn hash(password: &str, salt: &[u8; SALT_LEN], iterations: u32) -> String {
    format_phc(salt, iterations, &derive(password, salt, iterations))
}

/// Verifies `password` against a stored PHC string in constant time
/// (natively; the worker uses [`super::kdf::verify`]).
pub fn verify(password: &str, stored: &str) -> Verdict {
    let Some((iterations, salt, expected)) = parse(stored) else {
        return Verdict::Malformed;
    };
    judge(&derive(password, &salt, iterations), &expected, iterations)
}

/// PBKDF2-HMAC-SHA256 in pure Rust: the reference the worker's WebCrypto
/// path is checked against.
pub fn derive(password: &str, salt: &[u8], iterations: u32) -> [u8; HASH_LEN] {
    let mut out = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out
}

/// Builds the PHC string from its parts.
pub fn format_phc(salt: &[u8], iterations: u32, derived: &[u8]) -> String {
    format!(
        "${ID}$i={iterations}${}${}",
        Base64Unpadded::encode_string(salt),
        Base64Unpadded::encode_string(derived)
    )
}

/// Compares a derived key with the stored one, in constant time.
pub fn judge(derived: &[u8], expected: &[u8], iterations: u32) -> Verdict {
    if ct_eq(derived, expected) {
        Verdict::Match {
            rehash: iterations != DEFAULT_ITERATIONS,
        }
    } else {
        Verdict::Mismatch
    }
}

/// Splits `$pbkdf2-sha256$i=N$salt$hash` into iterations, salt and hash.
pub fn parse(stored: &str) -> Option<(u32, Vec<u8>, Vec<u8>)> {
    let mut parts = stored.split('$');
    let (Some(""), Some(ID), Some(params), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let iterations: u32 = params.strip_prefix("i=")?.parse().ok()?;
    if iterations == 0 || iterations > 10_000_000 {
        return None;
    }
    let salt = Base64Unpadded::decode_vec(salt).ok()?;
    let hash = Base64Unpadded::decode_vec(hash).ok()?;
    (hash.len() == HASH_LEN && !salt.is_empty()).then_some((iterations, salt, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: [u8; SALT_LEN] = [7; SALT_LEN];

    #[test]
    fn rules() {
        assert!(check_rules("abcdefg1").is_ok());
        assert!(check_rules("ünïcödé9").is_ok());
        assert_eq!(check_rules("abc1"), Err("must be at least 8 characters"));
        assert_eq!(check_rules("abcdefgh"), Err("must contain a digit"));
        assert_eq!(check_rules("12345678"), Err("must contain a letter"));
        assert!(check_rules(&format!("a1{}", "x".repeat(126))).is_ok());
        assert!(check_rules(&format!("a1{}", "x".repeat(127))).is_err());
    }

    #[test]
    fn hash_and_verify_round_trip() {
        let stored = hash("correct horse 1", &SALT, 1_000);
        assert!(stored.starts_with("$pbkdf2-sha256$i=1000$"));
        assert_eq!(
            verify("correct horse 1", &stored),
            Verdict::Match { rehash: true }
        );
        assert_eq!(verify("correct horse 2", &stored), Verdict::Mismatch);
    }

    #[test]
    fn default_count_needs_no_rehash() {
        let stored = hash("pw123456", &SALT, DEFAULT_ITERATIONS);
        assert_eq!(
            verify("pw123456", &stored),
            Verdict::Match { rehash: false }
        );
    }

    #[test]
    fn known_vector() {
        // PBKDF2-HMAC-SHA256("password", "salt", 1) from RFC 7914 §11 / common test vectors.
        let out = derive("password", b"salt", 1);
        assert_eq!(out[..8], [0x12, 0x0f, 0xb6, 0xcf, 0xfc, 0xf8, 0xb3, 0x2c]);
    }

    #[test]
    fn malformed_strings_are_rejected() {
        for bad in [
            "",
            "plain",
            "$pbkdf2-sha256$i=0$AAAA$AAAA",
            "$pbkdf2-sha512$i=10$AAAA$AAAA",
            "$pbkdf2-sha256$i=10$!!$AAAA",
            "$pbkdf2-sha256$i=10$AAAAAAAAAAAAAAAAAAAAAA$AAAA",
            "$pbkdf2-sha256$i=10$AAAA$AAAA$extra",
        ] {
            assert_eq!(verify("x", bad), Verdict::Malformed, "{bad}");
        }
    }

    #[test]
    fn dummy_hash_is_well_formed_at_the_default_count() {
        assert_eq!(verify("anything", DUMMY_HASH), Verdict::Mismatch);
        assert_eq!(parse(DUMMY_HASH).map(|p| p.0), Some(DEFAULT_ITERATIONS));
    }
}
