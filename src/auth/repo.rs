//! The SQL of authentication. Every statement is parameterised; tokens and
//! keys only ever appear as SHA-256 fingerprints.

use chrono::{DateTime, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use crate::db::query_error;
use crate::http::ApiError;

/// A user row.
pub struct User {
    /// User id.
    pub id: Uuid,
    /// Normalised e-mail.
    pub email: String,
    /// PHC password hash.
    pub password_hash: String,
    /// When the account was made.
    pub created_at: DateTime<Utc>,
}

fn user(row: &Row) -> User {
    User {
        id: row.get("id"),
        email: row.get("email"),
        password_hash: row.get("password_hash"),
        created_at: row.get("created_at"),
    }
}

/// Creates a user; a taken e-mail is a 409.
pub async fn insert_user(c: &Client, email: &str, hash: &str) -> Result<User, ApiError> {
    c.query_one(
        "INSERT INTO users (email, password_hash) VALUES ($1, $2)
         RETURNING id, email, password_hash, created_at",
        &[&email, &hash],
    )
    .await
    .map(|r| user(&r))
    .map_err(|e| {
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            ApiError::Conflict("this e-mail is already registered".into())
        } else {
            query_error(e)
        }
    })
}

/// Finds a user by normalised e-mail.
pub async fn user_by_email(c: &Client, email: &str) -> Result<Option<User>, ApiError> {
    c.query_opt(
        "SELECT id, email, password_hash, created_at FROM users WHERE email = $1",
        &[&email],
    )
    .await
    .map(|r| r.as_ref().map(user))
    .map_err(query_error)
}

/// Finds a user by id (one round trip: on the path of every request).
pub async fn user_by_id(c: &Client, id: Uuid) -> Result<Option<User>, ApiError> {
    c.query_typed_opt(
        "SELECT id, email, password_hash, created_at FROM users WHERE id = $1",
        &[(&id, Type::UUID)],
    )
    .await
    .map(|r| r.as_ref().map(user))
    .map_err(query_error)
}

/// Replaces a password hash (upgrade of the iteration count at login).
pub async fn set_password_hash(c: &Client, id: Uuid, hash: &str) -> Result<(), ApiError> {
    c.execute(
        "UPDATE users SET password_hash = $2 WHERE id = $1",
        &[&id, &hash],
    )
    .await
    .map(|_| ())
    .map_err(query_error)
}

/// Stores a new refresh token of `family`.
pub async fn insert_refresh(
    c: &Client,
    user_id: Uuid,
    family: Uuid,
    fingerprint: &str,
    expires_at: DateTime<Utc>,
) -> Result<Uuid, ApiError> {
    c.query_one(
        "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at)
         VALUES ($1, $2, $3, $4) RETURNING id",
        &[&user_id, &family, &fingerprint, &expires_at],
    )
    .await
    .map(|r| r.get(0))
    .map_err(query_error)
}

/// What presenting a refresh token did.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// Valid: it is now used, and `new_fingerprint` was issued in its family.
    Rotated { user_id: Uuid },
    /// Already used: the whole family is now revoked.
    Reused,
    /// Unknown, revoked or expired.
    Invalid,
}

/// Rotates a refresh token in one transaction. The row lock makes two
/// concurrent presentations of one token count as reuse.
pub async fn rotate_refresh(
    c: &mut Client,
    fingerprint: &str,
    new_fingerprint: &str,
    new_expires_at: DateTime<Utc>,
) -> Result<Rotation, ApiError> {
    let tx = c.transaction().await.map_err(query_error)?;
    let row = tx
        .query_opt(
            "SELECT id, user_id, family_id, used_at IS NOT NULL AS used,
                    revoked_at IS NOT NULL AS revoked, expires_at <= now() AS expired
               FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
            &[&fingerprint],
        )
        .await
        .map_err(query_error)?;
    let Some(row) = row else {
        return Ok(Rotation::Invalid);
    };
    let (id, user_id, family): (Uuid, Uuid, Uuid) = (row.get(0), row.get(1), row.get(2));
    let (used, revoked, expired): (bool, bool, bool) = (row.get(3), row.get(4), row.get(5));
    if revoked || (expired && !used) {
        return Ok(Rotation::Invalid);
    }
    if used {
        tx.execute(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
            &[&family],
        )
        .await
        .map_err(query_error)?;
        tx.commit().await.map_err(query_error)?;
        return Ok(Rotation::Reused);
    }
    let new_id: Uuid = tx
        .query_one(
            "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
            &[&user_id, &family, &new_fingerprint, &new_expires_at],
        )
        .await
        .map_err(query_error)?
        .get(0);
    tx.execute(
        "UPDATE refresh_tokens SET used_at = now(), replaced_by = $2 WHERE id = $1",
        &[&id, &new_id],
    )
    .await
    .map_err(query_error)?;
    tx.commit().await.map_err(query_error)?;
    Ok(Rotation::Rotated { user_id })
}

/// Revokes the family of a refresh token owned by `user_id` (logout).
pub async fn revoke_family(c: &Client, user_id: Uuid, fingerprint: &str) -> Result<u64, ApiError> {
    c.execute(
        "UPDATE refresh_tokens SET revoked_at = now()
          WHERE revoked_at IS NULL AND family_id IN
                (SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2)",
        &[&fingerprint, &user_id],
    )
    .await
    .map_err(query_error)
}

/// An API key as listed (never the key itself).
pub struct ApiKey {
    /// Key id.
    pub id: Uuid,
    /// Owner's label.
    pub name: String,
    /// The visible start of the key.
    pub prefix: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request (updated at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

fn api_key(row: &Row) -> ApiKey {
    ApiKey {
        id: row.get("id"),
        name: row.get("name"),
        prefix: row.get("prefix"),
        created_at: row.get("created_at"),
        last_used_at: row.get("last_used_at"),
    }
}

/// Stores a key's fingerprint for `user_id`.
pub async fn insert_api_key(
    c: &Client,
    user_id: Uuid,
    name: &str,
    prefix: &str,
    fingerprint: &str,
) -> Result<ApiKey, ApiError> {
    c.query_one(
        "INSERT INTO api_keys (user_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4)
         RETURNING id, name, prefix, created_at, last_used_at",
        &[&user_id, &name, &prefix, &fingerprint],
    )
    .await
    .map(|r| api_key(&r))
    .map_err(query_error)
}

/// The user's keys, newest first.
pub async fn list_api_keys(c: &Client, user_id: Uuid) -> Result<Vec<ApiKey>, ApiError> {
    c.query(
        "SELECT id, name, prefix, created_at, last_used_at FROM api_keys
          WHERE user_id = $1 ORDER BY created_at DESC, id DESC",
        &[&user_id],
    )
    .await
    .map(|rows| rows.iter().map(api_key).collect())
    .map_err(query_error)
}

/// Deletes one of the user's keys; false when there is no such key of theirs.
pub async fn delete_api_key(c: &Client, user_id: Uuid, id: Uuid) -> Result<bool, ApiError> {
    c.execute(
        "DELETE FROM api_keys WHERE id = $1 AND user_id = $2",
        &[&id, &user_id],
    )
    .await
    .map(|n| n == 1)
    .map_err(query_error)
}

/// A key found by fingerprint: its id, owner, and whether `last_used_at` is
/// older than a minute (so worth updating).
pub async fn api_key_owner(
    c: &Client,
    fingerprint: &str,
) -> Result<Option<(Uuid, Uuid, bool)>, ApiError> {
    c.query_typed_opt(
        "SELECT id, user_id,
                (last_used_at IS NULL OR last_used_at < now() - interval '1 minute') AS stale
           FROM api_keys WHERE key_hash = $1",
        &[(&fingerprint, Type::TEXT)],
    )
    .await
    .map(|r| r.map(|r| (r.get(0), r.get(1), r.get(2))))
    .map_err(query_error)
}

/// Records that a key was used (at most about once a minute per key).
pub async fn touch_api_key(c: &Client, id: Uuid) -> Result<(), ApiError> {
    c.execute(
        "UPDATE api_keys SET last_used_at = now()
          WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
        &[&id],
    )
    .await
    .map(|_| ())
    .map_err(query_error)
}
