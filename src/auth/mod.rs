//! Authentication: passwords, access tokens, refresh tokens, API keys, and
//! the one `authenticate` step every protected route goes through.

pub mod email;
pub mod kdf;
pub mod password;
pub mod repo;
pub mod routes;
pub mod secrets;
pub mod token;

use uuid::Uuid;
use worker::{console_warn, Request};

use crate::db::Database;
use crate::http::context::RequestContext;
use crate::http::request::header;
use crate::http::ApiError;
use crate::runtime::now_utc;

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A bearer access token (JWT).
    Jwt,
    /// An API key.
    ApiKey,
}

/// The authenticated caller of a protected route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// The user acting.
    pub user_id: Uuid,
    /// The credential used.
    pub via: Via,
}

impl Principal {
    /// Refuses API-key callers; the pipeline applies it on the routes the
    /// table marks `Access::AccessTokenOnly` (managing API keys).
    pub fn require_session(&self) -> Result<(), ApiError> {
        match self.via {
            Via::Jwt => Ok(()),
            Via::ApiKey => Err(ApiError::Permission(
                "API keys cannot manage API keys; use an access token from login".into(),
            )),
        }
    }
}

/// A credential found in the request headers.
#[derive(Debug, PartialEq, Eq)]
pub enum Credential {
    /// `Authorization: Bearer <jwt>`.
    Jwt(String),
    /// `X-API-Key: cak_…` or `Authorization: Bearer cak_…`.
    ApiKey(String),
}

/// Picks the credential out of `Authorization` and `X-API-Key`.
pub fn credential(
    authorization: Option<&str>,
    x_api_key: Option<&str>,
) -> Result<Credential, ApiError> {
    if let Some(key) = x_api_key.map(str::trim).filter(|k| !k.is_empty()) {
        return Ok(Credential::ApiKey(key.to_string()));
    }
    let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
        return Err(ApiError::Authentication(
            "missing credentials: send Authorization: Bearer <token> or X-API-Key".into(),
        ));
    };
    let token = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => {
            return Err(ApiError::Authentication(
                "the Authorization header must use the Bearer scheme".into(),
            ))
        }
    };
    if token.is_empty() {
        return Err(ApiError::Authentication("empty bearer token".into()));
    }
    if token.starts_with(secrets::API_KEY_PREFIX) {
        Ok(Credential::ApiKey(token.to_string()))
    } else {
        Ok(Credential::Jwt(token.to_string()))
    }
}

/// A credential checked as far as it can be without the database.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// A valid, unexpired access token of this user id.
    Jwt(Uuid),
    /// Something shaped like an API key, still to be looked up.
    ApiKey(String),
}

/// First step of authentication, with no I/O: the signature, algorithm and
/// expiry of an access token, or the shape of an API key.
pub fn verify(rc: &RequestContext, req: &Request) -> Result<Verified, ApiError> {
    let found = credential(
        header(req, "Authorization").as_deref(),
        header(req, "X-API-Key").as_deref(),
    )?;
    match found {
        Credential::Jwt(jwt) => token::verify(&rc.config.jwt_secret, &jwt, now_utc())
            .map(Verified::Jwt)
            .map_err(|e| {
                console_warn!("[{}] access token refused: {}", rc.request_id, e.0);
                ApiError::Authentication("invalid or expired access token".into())
            }),
        Credential::ApiKey(key) if secrets::looks_like(&key, secrets::API_KEY_PREFIX) => {
            Ok(Verified::ApiKey(key))
        }
        Credential::ApiKey(_) => Err(ApiError::Authentication("invalid API key".into())),
    }
}

/// The principal of a verified credential. An access token needs no
/// query: every database call checks that its user still exists (and
/// answers 401 otherwise). An API key is looked up by fingerprint (one
/// round trip, which also records its use).
pub async fn resolve(verified: Verified, db: &dyn Database) -> Result<Principal, ApiError> {
    match verified {
        Verified::Jwt(user_id) => Ok(Principal {
            user_id,
            via: Via::Jwt,
        }),
        Verified::ApiKey(key) => {
            let user_id = repo::api_key_owner(db, &secrets::fingerprint(&key))
                .await?
                .ok_or_else(|| ApiError::Authentication("invalid API key".into()))?;
            Ok(Principal {
                user_id,
                via: Via::ApiKey,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_picked_from_headers() {
        assert_eq!(
            credential(Some("Bearer eyJ.a.b"), None).unwrap(),
            Credential::Jwt("eyJ.a.b".into())
        );
        assert_eq!(
            credential(Some("bearer cak_x"), None).unwrap(),
            Credential::ApiKey("cak_x".into())
        );
        assert_eq!(
            credential(Some("Bearer eyJ.a.b"), Some("cak_y")).unwrap(),
            Credential::ApiKey("cak_y".into()),
            "X-API-Key wins"
        );
    }

    #[test]
    fn missing_or_odd_credentials_are_401() {
        for (auth, key) in [
            (None, None),
            (Some(""), Some(" ")),
            (Some("Basic dXNlcjpwYXNz"), None),
            (Some("Bearer "), None),
            (Some("Bearer"), None),
            (Some("Token abc"), None),
        ] {
            let err = credential(auth, key).unwrap_err();
            assert_eq!(err.status(), 401, "{auth:?} {key:?}");
        }
    }

    #[test]
    fn api_keys_cannot_manage_keys() {
        let p = Principal {
            user_id: Uuid::nil(),
            via: Via::ApiKey,
        };
        assert_eq!(p.require_session().unwrap_err().status(), 403);
        let p = Principal { via: Via::Jwt, ..p };
        assert!(p.require_session().is_ok());
    }
}
