//! Crafting JWTs with the test secret (to test what the worker refuses).

use serde_json::Value;

use super::{random_uuid, stack};

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    use base64ct::{Base64UrlUnpadded, Encoding};
    Base64UrlUnpadded::encode_string(bytes)
}

/// Standard base64 with padding (for `Authorization: Basic`).
pub fn b64(bytes: &[u8]) -> String {
    use base64ct::{Base64, Encoding};
    Base64::encode_string(bytes)
}

/// The JSON of a JWT's segment `index` (0 header, 1 claims).
pub fn jwt_part(token: &str, index: usize) -> Value {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let seg = token
        .split('.')
        .nth(index)
        .unwrap_or_else(|| panic!("JWT segment {index} of {token}"));
    let bytes = Base64UrlUnpadded::decode_vec(seg)
        .unwrap_or_else(|e| panic!("segment {index} is base64url without padding: {e}"));
    serde_json::from_slice(&bytes).expect("segment is JSON")
}

/// `header.claims.signature` signed with HMAC-SHA256 under `secret`,
/// whatever `alg` the header claims.
pub fn hs256_token(secret: &str, header: &Value, claims: &Value) -> String {
    use hmac::{Hmac, Mac};
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(input.as_bytes());
    format!("{input}.{}", b64url(&mac.finalize().into_bytes()))
}

/// Like [`hs256_token`], with HMAC-SHA512.
pub fn hs512_token(secret: &str, header: &Value, claims: &Value) -> String {
    use hmac::{Hmac, Mac};
    let input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut mac =
        Hmac::<sha2::Sha512>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(input.as_bytes());
    format!("{input}.{}", b64url(&mac.finalize().into_bytes()))
}

/// `{"alg":"HS256","typ":"JWT"}`.
pub fn hs256_header() -> Value {
    serde_json::json!({"alg": "HS256", "typ": "JWT"})
}

/// Claims of a valid access token for `sub`, issued now, expiring in 10 min.
pub fn access_claims(sub: &str) -> Value {
    let now = now_secs();
    serde_json::json!({
        "sub": sub,
        "iat": now,
        "exp": now + 600,
        "jti": random_uuid(),
        "typ": "access",
    })
}

/// The worker's JWT secret (asserting the runner passed it).
pub fn jwt_secret() -> &'static str {
    let secret = stack().jwt_secret.as_str();
    assert!(
        !secret.is_empty(),
        "E2E_JWT_SECRET is not set: the runner passes the worker's secret"
    );
    secret
}
