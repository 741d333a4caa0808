//! Credentials on generated input: e-mail normalisation, password rules,
//! access tokens (arbitrary and tampered JWTs), the credential headers and
//! the shape of refresh tokens and API keys.

use base64ct::{Base64UrlUnpadded, Encoding};
use chrono::{DateTime, Duration, Utc};
use proptest::prelude::*;
use uuid::Uuid;

use super::strategies::{json_value, text};
use super::{config, well_formed};
use crate::auth::secrets::{self, API_KEY_PREFIX, REFRESH_PREFIX};
use crate::auth::{credential, email, password, token, Credential};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// Three dot-separated parts with arbitrary JSON or bytes inside.
fn jwt_like() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        json_value().prop_map(|v| b64(v.to_string().as_bytes())),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| b64(&b)),
        text(),
    ];
    let header = prop_oneof![
        prop_oneof![
            Just("none"),
            Just("HS256"),
            Just("HS512"),
            Just("RS256"),
            Just("")
        ]
        .prop_map(|alg| b64(format!("{{\"alg\":\"{alg}\",\"typ\":\"JWT\"}}").as_bytes())),
        part.clone(),
    ];
    (header, part.clone(), part).prop_map(|(h, c, s)| format!("{h}.{c}.{s}"))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn emails_normalise_idempotently(raw in prop_oneof![
        text(),
        "[ A-Za-z0-9._%+-]{0,20}@[A-Za-z0-9.-]{0,20}",
        "[a-z]{1,8}@[a-zé]{1,8}\\.[A-Z]{2,4} ?",
    ]) {
        if let Ok(e) = email::normalise(&raw) {
            prop_assert_eq!(&e, &e.trim().to_lowercase());
            prop_assert_eq!(e.matches('@').count(), 1);
            prop_assert!(e.chars().count() <= email::MAX_LEN);
            prop_assert!(!e.chars().any(|c| c.is_whitespace() || c.is_control()));
            prop_assert_eq!(email::normalise(&e), Ok(e.clone()));
        }
    }

    #[test]
    fn password_rules_are_exactly_the_documented_ones(pw in prop_oneof![text(), "[a-z0-9 ]{0,140}", ".{120,130}"]) {
        let n = pw.chars().count();
        let ok = (password::MIN_LEN..=password::MAX_LEN).contains(&n)
            && pw.chars().any(char::is_alphabetic)
            && pw.chars().any(|c| c.is_ascii_digit());
        let got = password::check_rules(&pw);
        prop_assert_eq!(got.is_ok(), ok, "{:?}", got);
        if let Err(m) = got {
            prop_assert!(!m.is_empty());
        }
    }

    #[test]
    fn stored_hashes_that_are_not_ours_are_malformed_or_mismatched(stored in prop_oneof![
        text(),
        "\\$pbkdf2-sha256\\$i=[0-9]{1,3}\\$[A-Za-z0-9+/]{0,30}\\$[A-Za-z0-9+/]{0,50}",
    ]) {
        // Few iterations only: a generated count can be large.
        let v = password::verify("password1", &stored);
        prop_assert!(v != password::Verdict::Match { rehash: false }, "{:?}", v);
    }

    #[test]
    fn arbitrary_tokens_are_refused(t in prop_oneof![jwt_like(), text()]) {
        prop_assert!(token::verify(SECRET, &t, now()).is_err());
    }

    #[test]
    fn tokens_round_trip_and_any_change_is_refused(
        user in any::<u128>(),
        jti in any::<u128>(),
        ttl in 1u32..(7 * 24 * 60),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let user = Uuid::from_u128(user);
        let t = token::issue(SECRET, user, Uuid::from_u128(jti), now(), ttl)
            .map_err(|e| TestCaseError::fail(e.0))?;
        prop_assert!(token::looks_like_jwt(&t));
        prop_assert_eq!(token::verify(SECRET, &t, now()).ok(), Some(user));
        let late = now() + Duration::minutes(i64::from(ttl)) + Duration::seconds(token::LEEWAY_SECONDS + 1);
        prop_assert!(token::verify(SECRET, &t, late).is_err());
        let mut bytes = t.clone().into_bytes();
        let i = at.index(bytes.len());
        prop_assume!(bytes[i] != byte && byte.is_ascii());
        bytes[i] = byte;
        let changed = String::from_utf8(bytes).unwrap_or_default();
        // A change of the last character can leave the decoded signature
        // the same (unused low bits of base64), which is not a forgery.
        if i + 1 < t.len() {
            prop_assert!(token::verify(SECRET, &changed, now()).is_err(), "{changed}");
        }
    }

    #[test]
    fn credential_headers_never_panic(
        auth in proptest::option::of(prop_oneof![text(), "(Bearer|bearer|Basic|Token)? ?(cak_|eyJ)?[A-Za-z0-9._ -]{0,60}"]),
        key in proptest::option::of(prop_oneof![text(), "cak_[A-Za-z0-9_-]{40,46}"]),
    ) {
        match credential(auth.as_deref(), key.as_deref()) {
            Ok(Credential::ApiKey(k)) => prop_assert!(!k.is_empty() && k == k.trim()),
            Ok(Credential::Jwt(t)) => prop_assert!(!t.is_empty() && !t.starts_with(API_KEY_PREFIX)),
            Err(e) => well_formed(&e, &[401])?,
        }
    }

    #[test]
    fn only_secrets_of_the_right_shape_pass(raw in prop_oneof![text(), "(cak_|crt_)[A-Za-z0-9_=+/-]{40,46}"]) {
        for prefix in [API_KEY_PREFIX, REFRESH_PREFIX] {
            let ok = secrets::looks_like(&raw, prefix);
            let want = raw.strip_prefix(prefix).is_some_and(|r| {
                r.len() == 43 && Base64UrlUnpadded::decode_vec(r).is_ok_and(|b| b.len() == secrets::SECRET_BYTES)
            });
            // The shape check is a cheap filter: it may let through a string
            // that is not the encoding of 32 bytes, never refuse one that is.
            prop_assert!(ok || !want, "{raw:?}");
        }
    }
}

#[test]
fn new_secrets_have_the_checked_shape() {
    for _ in 0..64 {
        for prefix in [API_KEY_PREFIX, REFRESH_PREFIX] {
            let s = secrets::new_secret(prefix).unwrap_or_default();
            assert!(secrets::looks_like(&s, prefix), "{s}");
        }
    }
}
