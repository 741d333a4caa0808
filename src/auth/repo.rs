//! Authentication's calls to the database API. Tokens and keys only ever
//! travel as SHA-256 fingerprints.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::db::call::call;
use crate::db::Database;
use crate::http::ApiError;

/// A user as the API shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    /// User id.
    pub id: Uuid,
    /// Normalised e-mail.
    pub email: String,
    /// When the account was made (RFC 3339).
    pub created_at: String,
}

impl User {
    /// `{id, email, created_at}`.
    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "email": self.email, "created_at": self.created_at})
    }
}

/// A refresh token to store: its family, fingerprint and expiry.
pub struct NewRefresh<'a> {
    /// The login it belongs to.
    pub family: Uuid,
    /// SHA-256 fingerprint of the token.
    pub fingerprint: &'a str,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

impl NewRefresh<'_> {
    fn to_json(&self) -> Value {
        json!({"family_id": self.family, "token_hash": self.fingerprint,
               "expires_at": self.expires_at.to_rfc3339()})
    }
}

fn unauthenticated() -> ApiError {
    ApiError::Authentication("invalid or expired access token".into())
}

#[derive(Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Registered {
    Created { user: User },
    Conflict,
}

/// Creates a user and its first refresh token (one round trip); a taken
/// e-mail is a 409.
pub async fn register(
    db: &dyn Database,
    email: &str,
    hash: &str,
    refresh: &NewRefresh<'_>,
) -> Result<User, ApiError> {
    let args = json!({"email": email, "password_hash": hash, "refresh": refresh.to_json()});
    match call(db, "register", args).await? {
        Registered::Created { user } => Ok(user),
        Registered::Conflict => Err(ApiError::Conflict(
            "this e-mail is already registered".into(),
        )),
    }
}

#[derive(Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Found {
    Found { user: User, password_hash: String },
    NotFound,
}

/// Finds a user and their password hash by normalised e-mail, storing
/// `refresh` for them in the same round trip. The caller hands the token
/// out only when the password verifies, and revokes it otherwise.
pub async fn login(
    db: &dyn Database,
    email: &str,
    refresh: &NewRefresh<'_>,
) -> Result<Option<(User, String)>, ApiError> {
    let args = json!({"email": email, "refresh": refresh.to_json()});
    match call(db, "login", args).await? {
        Found::Found {
            user,
            password_hash,
        } => Ok(Some((user, password_hash))),
        Found::NotFound => Ok(None),
    }
}

#[derive(Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Done {
    Updated,
    NotFound,
    Revoked { count: u64 },
}

/// Replaces a password hash (upgrade of the iteration count at login).
pub async fn set_password_hash(db: &dyn Database, id: Uuid, hash: &str) -> Result<(), ApiError> {
    let args = json!({"user_id": id, "password_hash": hash});
    call::<Done>(db, "set_password_hash", args)
        .await
        .map(|_| ())
}

/// Revokes one refresh token (stored by a login that then failed).
pub async fn revoke_refresh(db: &dyn Database, fingerprint: &str) -> Result<(), ApiError> {
    let args = json!({"token_hash": fingerprint});
    call::<Done>(db, "revoke_refresh", args).await.map(|_| ())
}

/// What presenting a refresh token did.
#[derive(Debug, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Rotation {
    /// Valid: it is now used, and the new token was issued in its family.
    Rotated {
        /// Its owner.
        user: User,
    },
    /// Already used: the whole family is now revoked.
    Reused,
    /// Unknown, revoked or expired.
    Invalid,
}

/// Seconds after a rotation during which presenting the rotated token
/// again for the same successor repeats that rotation instead of counting
/// as reuse (two tabs refreshing at once, a retry after a lost response).
pub const REFRESH_GRACE_SECONDS: u32 = 10;

/// Rotates a refresh token (one round trip, one transaction). The same
/// rotation repeated within [`REFRESH_GRACE_SECONDS`] answers `Rotated`
/// again; any other presentation of a used token is reuse.
pub async fn rotate_refresh(
    db: &dyn Database,
    fingerprint: &str,
    new_fingerprint: &str,
    new_expires_at: DateTime<Utc>,
) -> Result<Rotation, ApiError> {
    let args = json!({"token_hash": fingerprint, "new_token_hash": new_fingerprint,
                      "new_expires_at": new_expires_at.to_rfc3339(),
                      "grace_seconds": REFRESH_GRACE_SECONDS});
    call(db, "refresh", args).await
}

/// Revokes the family of a refresh token owned by `user_id` (logout).
pub async fn revoke_family(
    db: &dyn Database,
    user_id: Uuid,
    fingerprint: &str,
) -> Result<u64, ApiError> {
    let args = json!({"user_id": user_id, "token_hash": fingerprint});
    match call(db, "logout", args).await? {
        Done::Revoked { count } => Ok(count),
        _ => Ok(0),
    }
}

#[derive(Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Me {
    Found { user: User },
    Unauthenticated,
}

/// The signed-in user; 401 when the account is gone.
pub async fn me(db: &dyn Database, id: Uuid) -> Result<User, ApiError> {
    match call(db, "me", json!({"user_id": id})).await? {
        Me::Found { user } => Ok(user),
        Me::Unauthenticated => Err(ApiError::Authentication("unknown user".into())),
    }
}

#[derive(Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Owner {
    Found { user_id: Uuid },
    NotFound,
}

/// The owner of the key with this fingerprint (recording its use in the
/// same round trip, at most about once a minute).
pub async fn api_key_owner(db: &dyn Database, fingerprint: &str) -> Result<Option<Uuid>, ApiError> {
    match call(db, "key_owner", json!({"key_hash": fingerprint})).await? {
        Owner::Found { user_id } => Ok(Some(user_id)),
        Owner::NotFound => Ok(None),
    }
}

#[derive(Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum KeyOut {
    Created { key: Value },
    Ok { keys: Vec<Value> },
    Deleted,
    NotFound,
    Unauthenticated,
}

/// Stores a key's fingerprint for `user_id`; the API key object (without the key).
pub async fn insert_api_key(
    db: &dyn Database,
    user_id: Uuid,
    name: &str,
    prefix: &str,
    fingerprint: &str,
) -> Result<Value, ApiError> {
    let args = json!({"user_id": user_id, "name": name, "prefix": prefix, "key_hash": fingerprint});
    match call(db, "create_api_key", args).await? {
        KeyOut::Created { key } => Ok(key),
        KeyOut::Unauthenticated => Err(unauthenticated()),
        _ => Err(ApiError::Internal(
            "api.create_api_key: unexpected outcome".into(),
        )),
    }
}

/// The user's keys, newest first, as API key objects.
pub async fn list_api_keys(db: &dyn Database, user_id: Uuid) -> Result<Vec<Value>, ApiError> {
    match call(db, "list_api_keys", json!({"user_id": user_id})).await? {
        KeyOut::Ok { keys } => Ok(keys),
        KeyOut::Unauthenticated => Err(unauthenticated()),
        _ => Err(ApiError::Internal(
            "api.list_api_keys: unexpected outcome".into(),
        )),
    }
}

/// Deletes one of the user's keys; false when there is no such key of theirs.
pub async fn delete_api_key(db: &dyn Database, user_id: Uuid, id: Uuid) -> Result<bool, ApiError> {
    match call(db, "delete_api_key", json!({"user_id": user_id, "id": id})).await? {
        KeyOut::Deleted => Ok(true),
        KeyOut::NotFound => Ok(false),
        KeyOut::Unauthenticated => Err(unauthenticated()),
        _ => Err(ApiError::Internal(
            "api.delete_api_key: unexpected outcome".into(),
        )),
    }
}
