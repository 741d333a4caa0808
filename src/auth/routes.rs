//! The `/api/v1/auth/*` handlers.

use chrono::Duration;
use serde_json::{json, Value};
use uuid::Uuid;
use worker::{console_error, Request, Response};

use super::kdf;
use super::password::{self, Verdict, DEFAULT_ITERATIONS, DUMMY_HASH};
use super::repo::{self, NewRefresh, Rotation, User};
use super::secrets::{self, API_KEY_PREFIX, API_KEY_VISIBLE, REFRESH_PREFIX};
use super::{email, token};
use crate::http::body::Fields;
use crate::http::context::RequestContext;
use crate::http::ctx::Ctx;
use crate::http::request::read_object;
use crate::http::{respond, ApiError};
use crate::rate_limit::{self, client::Kind};
use crate::runtime::now_utc;

/// Longest API key name, in characters.
pub const MAX_KEY_NAME: usize = 100;

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn json(status: u16, body: &Value) -> Result<Response, ApiError> {
    Ok(respond::json(status, body)?)
}

/// A new refresh token of a new family, to store with the user's lookup.
struct Issued {
    secret: String,
    fingerprint: String,
    family: Uuid,
    expires_at: chrono::DateTime<chrono::Utc>,
}

impl Issued {
    fn new(rc: &RequestContext) -> Result<Issued, ApiError> {
        let secret = secrets::new_secret(REFRESH_PREFIX).map_err(internal)?;
        Ok(Issued {
            fingerprint: secrets::fingerprint(&secret),
            secret,
            family: Uuid::new_v4(),
            expires_at: now_utc() + Duration::days(i64::from(rc.config.refresh_token_days)),
        })
    }

    fn stored(&self) -> NewRefresh<'_> {
        NewRefresh {
            family: self.family,
            fingerprint: &self.fingerprint,
            expires_at: self.expires_at,
        }
    }
}

/// The token pair for `user`: a new access token and the refresh token
/// already stored.
fn token_pair(rc: &RequestContext, user: &User, refresh: String) -> Result<Value, ApiError> {
    let access = token::issue(
        &rc.config.jwt_secret,
        user.id,
        Uuid::new_v4(),
        now_utc(),
        rc.config.access_token_minutes,
    )
    .map_err(|e| internal(e.0))?;
    Ok(pair_json(rc, access, refresh, user))
}

fn pair_json(rc: &RequestContext, access: String, refresh: String, user: &User) -> Value {
    json!({
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "bearer",
        "expires_in": u64::from(rc.config.access_token_minutes) * 60,
        "user": user.to_json(),
    })
}

/// Reads `{email, password}`; `strict` applies the registration rules.
async fn credentials(req: &mut Request, strict: bool) -> Result<(String, String), ApiError> {
    let mut f = Fields::new(read_object(req).await?);
    let raw_email = f.required_str("email");
    let pw = f.required_str("password");
    let email = raw_email.and_then(|raw| match email::normalise(&raw) {
        Ok(e) => Some(e),
        Err(msg) if strict => {
            f.error("email", msg);
            None
        }
        // At login a malformed e-mail is just an unknown one.
        Err(_) => Some(String::new()),
    });
    if let (true, Some(p)) = (strict, &pw) {
        if let Err(msg) = password::check_rules(p) {
            f.error("password", msg);
        }
    }
    f.finish(email.zip(pw))
}

/// `POST /api/v1/auth/register`.
pub async fn register(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (rc, c) = (ctx.rc()?, ctx.take_db()?);
    let (email, pw) = credentials(&mut ctx.req, true).await?;
    let salt = secrets::random_bytes::<{ password::SALT_LEN }>().map_err(internal)?;
    let hash = kdf::hash(&pw, &salt, DEFAULT_ITERATIONS)
        .await
        .map_err(internal)?;
    let refresh = Issued::new(&rc)?;
    let user = repo::register(&c, &email, &hash, &refresh.stored()).await?;
    json(201, &token_pair(&rc, &user, refresh.secret)?)
}

/// `POST /api/v1/auth/login`. Unknown e-mail and wrong password cost the
/// same (a dummy hash is verified) and answer the same 401. Attempts are
/// limited per account (`RATE_LIMIT_LOGIN`) besides per IP; that limit
/// fails closed (503) when the limiter cannot be reached.
pub async fn login(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (rc, c) = (ctx.rc()?, ctx.take_db()?);
    let (email, pw) = credentials(&mut ctx.req, false).await?;
    if !email.is_empty() {
        // Per account, after the per-IP limit: guessing one account's
        // password from many addresses is slowed too. The key is a hash of
        // the normalised e-mail, so the address stays out of the limiter.
        let key = format!("login:{}", secrets::fingerprint(&email));
        rate_limit::enforce(&rc, &key, Kind::Login).await?;
    }
    let refused = || ApiError::Authentication("invalid email or password".into());
    let refresh = Issued::new(&rc)?;
    let found = if email.is_empty() || pw.chars().count() > password::MAX_LEN {
        None
    } else {
        repo::login(&c, &email, &refresh.stored()).await?
    };
    let Some((user, stored_hash)) = found else {
        let _ = kdf::verify(&pw, DUMMY_HASH).await;
        return Err(refused());
    };
    let verdict = kdf::verify(&pw, &stored_hash).await.map_err(internal);
    if !matches!(verdict, Ok(Verdict::Match { .. })) {
        // The token stored with the lookup never left; it is revoked off
        // the response path, so a wrong password answers as fast as an
        // unknown e-mail.
        let (env, fingerprint) = (rc.env.clone(), refresh.fingerprint.clone());
        let transport = &rc.config.database;
        rc.spawn(async move {
            let revoked = crate::db::with_db(&env, transport, |c| async move {
                repo::revoke_refresh(&c, &fingerprint).await
            })
            .await;
            if let Err(e) = revoked {
                worker::console_warn!("unused refresh token not revoked: {e:?}");
            }
        });
    }
    match verdict? {
        Verdict::Match { rehash } => {
            if rehash {
                let salt = secrets::random_bytes::<{ password::SALT_LEN }>().map_err(internal)?;
                let fresh = kdf::hash(&pw, &salt, DEFAULT_ITERATIONS)
                    .await
                    .map_err(internal)?;
                repo::set_password_hash(&c, user.id, &fresh).await?;
            }
            json(200, &token_pair(&rc, &user, refresh.secret)?)
        }
        Verdict::Mismatch => Err(refused()),
        Verdict::Malformed => {
            console_error!(
                "[{}] stored password hash of {} is malformed",
                rc.request_id,
                user.id
            );
            Err(refused())
        }
    }
}

/// Reads `{refresh_token}`, telling an access token apart (403).
async fn refresh_token_field(req: &mut Request) -> Result<String, ApiError> {
    let mut f = Fields::new(read_object(req).await?);
    let value = f.required_str("refresh_token");
    let value = f.finish(value)?;
    if token::looks_like_jwt(&value) {
        return Err(ApiError::Permission(
            "an access token cannot be used as a refresh token".into(),
        ));
    }
    Ok(value)
}

/// `POST /api/v1/auth/refresh`: rotation with reuse detection, and a grace
/// window ([`repo::REFRESH_GRACE_SECONDS`]) in which the same rotation
/// repeated returns the same new refresh token.
pub async fn refresh(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (rc, c) = (ctx.rc()?, ctx.take_db()?);
    let presented = refresh_token_field(&mut ctx.req).await?;
    let invalid = || ApiError::Authentication("invalid or expired refresh token".into());
    if !secrets::looks_like(&presented, REFRESH_PREFIX) {
        return Err(invalid());
    }
    // Derived from the token presented: repeating this rotation within the
    // grace window asks for (and gets) the same successor.
    let next = secrets::successor(&rc.config.jwt_secret, &presented);
    let expires = now_utc() + Duration::days(i64::from(rc.config.refresh_token_days));
    let rotation = repo::rotate_refresh(
        &c,
        &secrets::fingerprint(&presented),
        &secrets::fingerprint(&next),
        expires,
    )
    .await?;
    match rotation {
        Rotation::Rotated { user } => json(200, &token_pair(&rc, &user, next)?),
        Rotation::Reused => {
            console_error!(
                "[{}] refresh token reuse detected; its family is revoked",
                rc.request_id
            );
            Err(invalid())
        }
        Rotation::Invalid => Err(invalid()),
    }
}

/// `POST /api/v1/auth/logout`: ends the session the refresh token belongs to.
pub async fn logout(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (p, c) = (ctx.principal()?, ctx.take_db()?);
    let presented = refresh_token_field(&mut ctx.req).await?;
    if secrets::looks_like(&presented, REFRESH_PREFIX) {
        repo::revoke_family(&c, p.user_id, &secrets::fingerprint(&presented)).await?;
    }
    Ok(respond::empty(204)?)
}

/// `GET /api/v1/auth/me`.
pub async fn me(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (p, c) = (ctx.principal()?, ctx.take_db()?);
    json(200, &repo::me(&c, p.user_id).await?.to_json())
}

/// `POST /api/v1/auth/api-keys`: the only response that shows the key.
/// Access tokens only (see the route table).
pub async fn create_api_key(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (p, c) = (ctx.principal()?, ctx.take_db()?);
    let mut f = Fields::new(read_object(&mut ctx.req).await?);
    let name = f.required_str("name").map(|n| n.trim().to_string());
    let name = name.filter(|n| {
        let len = n.chars().count();
        let ok = (1..=MAX_KEY_NAME).contains(&len);
        ok || {
            f.error("name", "must be 1 to 100 characters");
            false
        }
    });
    let name = f.finish(name)?;
    let key = secrets::new_secret(API_KEY_PREFIX).map_err(internal)?;
    let prefix = &key[..API_KEY_VISIBLE];
    let stored =
        repo::insert_api_key(&c, p.user_id, &name, prefix, &secrets::fingerprint(&key)).await?;
    json(
        201,
        &json!({
            "id": stored["id"],
            "name": stored["name"],
            "key": key,
            "prefix": stored["prefix"],
            "created_at": stored["created_at"],
        }),
    )
}

/// `GET /api/v1/auth/api-keys`.
/// Access tokens only (see the route table).
pub async fn list_api_keys(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (p, c) = (ctx.principal()?, ctx.take_db()?);
    let data = repo::list_api_keys(&c, p.user_id).await?;
    json(200, &json!({"data": data}))
}

/// `DELETE /api/v1/auth/api-keys/{id}`: the key stops working at once.
/// Access tokens only (see the route table).
pub async fn delete_api_key(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (p, c) = (ctx.principal()?, ctx.take_db()?);
    let not_found = || ApiError::NotFound("API key not found".into());
    let id = Uuid::parse_str(&ctx.param(0)).map_err(|_| not_found())?;
    if repo::delete_api_key(&c, p.user_id, id).await? {
        Ok(respond::empty(204)?)
    } else {
        Err(not_found())
    }
}
