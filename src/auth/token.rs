//! Access tokens: HS256 JWTs with `sub`, `iat`, `exp`, `jti` and
//! `typ:"access"`. The algorithm is pinned (any other `alg`, `none`
//! included, is rejected); `exp` is required; a small leeway absorbs clock skew.
//!
//! Browser event tokens are the same kind of JWT with `typ:"events"` and the
//! conversation they open in `cid`: neither kind is accepted as the other.

use chrono::{DateTime, Duration, Utc};
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Clock skew tolerated when checking `exp`.
pub const LEEWAY_SECONDS: i64 = 10;
/// The `typ` claim of access tokens.
pub const ACCESS_TYP: &str = "access";
/// The `typ` claim of browser event tokens.
pub const EVENTS_TYP: &str = "events";

/// The claims this API puts in an access token besides `iat`/`exp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    /// A unique token id.
    pub jti: String,
    /// `access`, or `events` for a browser event token.
    pub typ: String,
    /// The one conversation an event token opens (absent on access tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
}

/// Why a token was refused (all answer 401; the reason is for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError(pub String);

/// Signs an access token for `user_id`, valid `ttl_minutes` from `now`.
pub fn issue(
    secret: &str,
    user_id: Uuid,
    jti: Uuid,
    now: DateTime<Utc>,
    ttl_minutes: u32,
) -> Result<String, TokenError> {
    let claims = AccessClaims {
        sub: user_id.to_string(),
        jti: jti.to_string(),
        typ: ACCESS_TYP.to_string(),
        cid: None,
    };
    sign(
        secret,
        claims,
        now,
        Duration::minutes(i64::from(ttl_minutes)),
    )
}

/// Signs a browser event token: `user_id` may open the event stream of
/// `conversation` (and nothing else) for `ttl_seconds` from `now`.
pub fn issue_events(
    secret: &str,
    user_id: Uuid,
    conversation: Uuid,
    now: DateTime<Utc>,
    ttl_seconds: i64,
) -> Result<String, TokenError> {
    let claims = AccessClaims {
        sub: user_id.to_string(),
        jti: Uuid::new_v4().to_string(),
        typ: EVENTS_TYP.to_string(),
        cid: Some(conversation.to_string()),
    };
    sign(secret, claims, now, Duration::seconds(ttl_seconds))
}

fn sign(
    secret: &str,
    claims: AccessClaims,
    now: DateTime<Utc>,
    ttl: Duration,
) -> Result<String, TokenError> {
    let options = TimeOptions::new(Duration::seconds(LEEWAY_SECONDS), move || now);
    let claims = Claims::new(claims).set_duration_and_issuance(&options, ttl);
    let header = Header::empty().with_token_type("JWT");
    Hs256
        .token(&header, &claims, &Hs256Key::new(secret.as_bytes()))
        .map_err(|e| TokenError(format!("cannot sign: {e}")))
}

/// Verifies signature, algorithm, expiry and `typ`; returns the user id.
pub fn verify(secret: &str, token: &str, now: DateTime<Utc>) -> Result<Uuid, TokenError> {
    let claims = check(secret, token, now, ACCESS_TYP)?;
    user(&claims)
}

/// Verifies a browser event token for `conversation`; returns the user id.
pub fn verify_events(
    secret: &str,
    token: &str,
    conversation: &str,
    now: DateTime<Utc>,
) -> Result<Uuid, TokenError> {
    let claims = check(secret, token, now, EVENTS_TYP)?;
    if claims.cid.as_deref() != Some(conversation) {
        return Err(TokenError("an event token for another conversation".into()));
    }
    user(&claims)
}

fn user(claims: &AccessClaims) -> Result<Uuid, TokenError> {
    Uuid::parse_str(&claims.sub).map_err(|_| TokenError("sub is not a user id".into()))
}

/// The claims of a valid, unexpired token of this `typ`.
fn check(
    secret: &str,
    token: &str,
    now: DateTime<Utc>,
    typ: &str,
) -> Result<AccessClaims, TokenError> {
    let untrusted =
        UntrustedToken::new(token).map_err(|e| TokenError(format!("malformed token: {e}")))?;
    let key = Hs256Key::new(secret.as_bytes());
    let token = Hs256
        .validator::<AccessClaims>(&key)
        .validate(&untrusted)
        .map_err(|e| TokenError(format!("invalid token: {e}")))?;
    let options = TimeOptions::new(Duration::seconds(LEEWAY_SECONDS), move || now);
    token
        .claims()
        .validate_expiration(&options)
        .map_err(|e| TokenError(format!("token rejected: {e}")))?;
    let custom = token.claims().custom.clone();
    if custom.typ != typ {
        return Err(TokenError(format!("wrong token type {:?}", custom.typ)));
    }
    Ok(custom)
}

/// Whether a string has the three-part shape of a JWT (used to tell an
/// access token presented where a refresh token belongs).
pub fn looks_like_jwt(value: &str) -> bool {
    value.split('.').count() == 3 && value.starts_with("eyJ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64ct::{Base64UrlUnpadded, Encoding};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn b64(s: &str) -> String {
        Base64UrlUnpadded::encode_string(s.as_bytes())
    }

    #[test]
    fn round_trip() {
        let user = Uuid::new_v4();
        let t = issue(SECRET, user, Uuid::new_v4(), now(), 30).unwrap();
        assert!(looks_like_jwt(&t));
        assert_eq!(verify(SECRET, &t, now()).unwrap(), user);
        assert_eq!(
            verify(SECRET, &t, now() + Duration::minutes(29)).unwrap(),
            user
        );
    }

    #[test]
    fn expired_and_wrong_secret_are_rejected() {
        let t = issue(SECRET, Uuid::new_v4(), Uuid::new_v4(), now(), 1).unwrap();
        assert!(verify(SECRET, &t, now() + Duration::minutes(2)).is_err());
        assert!(verify("another-secret-another-secret-xx", &t, now()).is_err());
    }

    #[test]
    fn tampering_is_rejected() {
        let t = issue(SECRET, Uuid::new_v4(), Uuid::new_v4(), now(), 30).unwrap();
        let parts: Vec<&str> = t.split('.').collect();
        let forged_claims = b64(&format!(
            r#"{{"sub":"{}","jti":"x","typ":"access","exp":1900000000,"iat":1800000000}}"#,
            Uuid::new_v4()
        ));
        let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
        assert!(verify(SECRET, &forged, now()).is_err());
    }

    #[test]
    fn alg_none_and_other_algs_are_rejected() {
        let claims = b64(&format!(
            r#"{{"sub":"{}","jti":"x","typ":"access","exp":1900000000,"iat":1800000000}}"#,
            Uuid::new_v4()
        ));
        for alg in ["none", "HS512", "RS256"] {
            let header = b64(&format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            let t = format!("{header}.{claims}.");
            assert!(verify(SECRET, &t, now()).is_err(), "{alg}");
        }
    }

    #[test]
    fn wrong_typ_and_missing_exp_are_rejected() {
        let key = Hs256Key::new(SECRET.as_bytes());
        let custom = AccessClaims {
            sub: Uuid::new_v4().to_string(),
            jti: "j".into(),
            typ: "refresh".into(),
            cid: None,
        };
        let options = TimeOptions::new(Duration::seconds(0), now);
        let claims =
            Claims::new(custom.clone()).set_duration_and_issuance(&options, Duration::minutes(5));
        let t = Hs256.token(&Header::empty(), &claims, &key).unwrap();
        assert!(verify(SECRET, &t, now()).is_err());
        let no_exp = Claims::new(AccessClaims {
            typ: "access".into(),
            ..custom
        });
        let t = Hs256.token(&Header::empty(), &no_exp, &key).unwrap();
        assert!(verify(SECRET, &t, now()).is_err());
    }

    #[test]
    fn event_tokens_open_one_conversation_and_are_no_access_tokens() {
        let (user, conversation) = (Uuid::new_v4(), Uuid::new_v4());
        let t = issue_events(SECRET, user, conversation, now(), 300).unwrap();
        let cid = conversation.to_string();
        assert_eq!(verify_events(SECRET, &t, &cid, now()).unwrap(), user);
        let other = Uuid::new_v4().to_string();
        assert!(verify_events(SECRET, &t, &other, now()).is_err());
        assert!(verify(SECRET, &t, now()).is_err(), "not an access token");
        let later = now() + Duration::seconds(300 + LEEWAY_SECONDS + 1);
        assert!(verify_events(SECRET, &t, &cid, later).is_err(), "expired");
        let access = issue(SECRET, user, Uuid::new_v4(), now(), 30).unwrap();
        assert!(verify_events(SECRET, &access, &cid, now()).is_err());
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in ["", "abc", "a.b.c", "crt_xyz"] {
            assert!(verify(SECRET, bad, now()).is_err(), "{bad}");
        }
        assert!(!looks_like_jwt("crt_abc"));
    }
}
