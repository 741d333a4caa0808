//! The `/api/v1/auth/*` handlers.

use chrono::Duration;
use serde_json::{json, Value};
use tokio_postgres::Client;
use uuid::Uuid;
use worker::{console_error, Request, Response};

use super::kdf;
use super::password::{self, Verdict, DEFAULT_ITERATIONS, DUMMY_HASH};
use super::repo::{self, Rotation, User};
use super::secrets::{self, API_KEY_PREFIX, API_KEY_VISIBLE, REFRESH_PREFIX};
use super::{email, token};
use crate::db::time::{rfc3339, rfc3339_opt};
use crate::http::body::Fields;
use crate::http::context::RequestContext;
use crate::http::ctx::Ctx;
use crate::http::request::read_object;
use crate::http::{respond, ApiError};
use crate::runtime::now_utc;

/// Longest API key name, in characters.
pub const MAX_KEY_NAME: usize = 100;

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

fn json(status: u16, body: &Value) -> Result<Response, ApiError> {
    Ok(respond::json(status, body)?)
}

/// `{id, email, created_at}`.
fn user_json(u: &User) -> Value {
    json!({"id": u.id, "email": u.email, "created_at": rfc3339(&u.created_at)})
}

/// Issues an access token and a refresh token of `family` for `user`.
async fn token_pair(
    rc: &RequestContext,
    c: &Client,
    user: &User,
    family: Uuid,
) -> Result<Value, ApiError> {
    let now = now_utc();
    let access = token::issue(
        &rc.config.jwt_secret,
        user.id,
        Uuid::new_v4(),
        now,
        rc.config.access_token_minutes,
    )
    .map_err(|e| internal(e.0))?;
    let refresh = secrets::new_secret(REFRESH_PREFIX).map_err(internal)?;
    let expires = now + Duration::days(i64::from(rc.config.refresh_token_days));
    repo::insert_refresh(c, user.id, family, &secrets::fingerprint(&refresh), expires).await?;
    Ok(pair_json(rc, access, refresh, user))
}

fn pair_json(rc: &RequestContext, access: String, refresh: String, user: &User) -> Value {
    json!({
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "bearer",
        "expires_in": u64::from(rc.config.access_token_minutes) * 60,
        "user": user_json(user),
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
    let user = repo::insert_user(&c, &email, &hash).await?;
    let body = token_pair(&rc, &c, &user, Uuid::new_v4()).await?;
    json(201, &body)
}

/// `POST /api/v1/auth/login`. Unknown e-mail and wrong password cost the
/// same (a dummy hash is verified) and answer the same 401.
pub async fn login(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (rc, c) = (ctx.rc()?, ctx.take_db()?);
    let (email, pw) = credentials(&mut ctx.req, false).await?;
    let refused = || ApiError::Authentication("invalid email or password".into());
    let user = if email.is_empty() || pw.chars().count() > password::MAX_LEN {
        None
    } else {
        repo::user_by_email(&c, &email).await?
    };
    let Some(user) = user else {
        let _ = kdf::verify(&pw, DUMMY_HASH).await;
        return Err(refused());
    };
    match kdf::verify(&pw, &user.password_hash)
        .await
        .map_err(internal)?
    {
        Verdict::Match { rehash } => {
            if rehash {
                let salt = secrets::random_bytes::<{ password::SALT_LEN }>().map_err(internal)?;
                let fresh = kdf::hash(&pw, &salt, DEFAULT_ITERATIONS)
                    .await
                    .map_err(internal)?;
                repo::set_password_hash(&c, user.id, &fresh).await?;
            }
            let body = token_pair(&rc, &c, &user, Uuid::new_v4()).await?;
            json(200, &body)
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

/// `POST /api/v1/auth/refresh`: rotation with reuse detection.
pub async fn refresh(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (rc, mut c) = (ctx.rc()?, ctx.take_db()?);
    let c = &mut c;
    let presented = refresh_token_field(&mut ctx.req).await?;
    let invalid = || ApiError::Authentication("invalid or expired refresh token".into());
    if !secrets::looks_like(&presented, REFRESH_PREFIX) {
        return Err(invalid());
    }
    let next = secrets::new_secret(REFRESH_PREFIX).map_err(internal)?;
    let expires = now_utc() + Duration::days(i64::from(rc.config.refresh_token_days));
    let rotation = repo::rotate_refresh(
        c,
        &secrets::fingerprint(&presented),
        &secrets::fingerprint(&next),
        expires,
    )
    .await?;
    match rotation {
        Rotation::Rotated { user_id } => {
            let user = repo::user_by_id(c, user_id).await?.ok_or_else(invalid)?;
            let access = token::issue(
                &rc.config.jwt_secret,
                user.id,
                Uuid::new_v4(),
                now_utc(),
                rc.config.access_token_minutes,
            )
            .map_err(|e| internal(e.0))?;
            json(200, &pair_json(&rc, access, next, &user))
        }
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
    let user = repo::user_by_id(&c, p.user_id)
        .await?
        .ok_or_else(|| ApiError::Authentication("unknown user".into()))?;
    json(200, &user_json(&user))
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
    let row =
        repo::insert_api_key(&c, p.user_id, &name, prefix, &secrets::fingerprint(&key)).await?;
    json(
        201,
        &json!({
            "id": row.id,
            "name": row.name,
            "key": key,
            "prefix": row.prefix,
            "created_at": rfc3339(&row.created_at),
        }),
    )
}

/// `GET /api/v1/auth/api-keys`.
/// Access tokens only (see the route table).
pub async fn list_api_keys(mut ctx: Ctx) -> Result<Response, ApiError> {
    let (p, c) = (ctx.principal()?, ctx.take_db()?);
    let keys = repo::list_api_keys(&c, p.user_id).await?;
    let data: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({
                "id": k.id,
                "name": k.name,
                "prefix": k.prefix,
                "created_at": rfc3339(&k.created_at),
                "last_used_at": rfc3339_opt(&k.last_used_at),
            })
        })
        .collect();
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
