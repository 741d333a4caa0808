//! The database API as the worker sees it: one call names an `api.*`
//! function and passes one JSON argument; one JSON value comes back.
//!
//! Transports implement [`Database`]: Hyperdrive over the Postgres wire
//! protocol ([`super::hyperdrive`]) and Supabase's HTTP API calling
//! `POST /rest/v1/rpc/{op}` ([`super::rest`]). Expected outcomes arrive as values tagged `outcome`
//! and are decoded with serde; anything else (a transport failure, an
//! unknown outcome, a malformed value) becomes a logged 500, never a panic.

use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::http::ApiError;

/// Why a call produced no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbError {
    /// The database could not be reached or the connection was lost (503).
    Unavailable(String),
    /// The database did not answer in time (504).
    Timeout(String),
    /// The database refused the call (a bug or a schema mismatch: 500).
    Failed(String),
    /// The result was not the value the caller expects (500).
    Decode(String),
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> ApiError {
        match e {
            DbError::Unavailable(detail) => {
                log(&format!("database unreachable: {detail}"));
                ApiError::Unavailable("database unreachable".into())
            }
            DbError::Timeout(detail) => {
                log(&format!("database too slow: {detail}"));
                ApiError::TimedOut("the database did not answer in time; try again shortly".into())
            }
            DbError::Failed(detail) => ApiError::Internal(format!("database error: {detail}")),
            DbError::Decode(detail) => {
                ApiError::Internal(format!("unexpected database result: {detail}"))
            }
        }
    }
}

/// Logs a database failure (to stderr in native tests, which have no console).
fn log(line: &str) {
    #[cfg(target_arch = "wasm32")]
    worker::console_error!("{line}");
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{line}");
}

/// What the operator should do when the database does not know a function.
pub const SCHEMA_HINT: &str = "the database API is missing or not visible: run the migrations \
     (npm run migrate) against this database; over HTTP also expose the schema `api` \
     (Data API settings: exposed schemas) and reload the schema cache (NOTIFY pgrst, 'reload schema')";

/// Classifies an error the database reported by its SQLSTATE `code`;
/// `said` (operation, code and message) is kept for the log.
pub fn by_sqlstate(said: &str, code: &str) -> DbError {
    let said = said.to_string();
    match code {
        // undefined function / schema: not migrated (or a stale cache).
        "42883" | "3F000" => DbError::Unavailable(format!("{said}; {SCHEMA_HINT}")),
        // connection exceptions, too many connections, shutting down.
        c if c.starts_with("08") || c == "53300" || c.starts_with("57P") => {
            DbError::Unavailable(said)
        }
        // statement timeout or cancelled.
        "57014" => DbError::Timeout(said),
        _ => DbError::Failed(said),
    }
}

/// One way to reach the database API.
pub trait Database {
    /// Calls `api.<op>(args)`: one round trip, one JSON value back.
    fn call<'a>(
        &'a self,
        op: &'static str,
        args: Value,
    ) -> LocalBoxFuture<'a, Result<Value, DbError>>;
}

/// True for the names of `api` functions: lower-case ASCII words joined
/// by `_` (so a name can be put into SQL or a URL as it is).
pub fn valid_op(op: &str) -> bool {
    !op.is_empty()
        && op.len() <= 63
        && op.starts_with(|c: char| c.is_ascii_lowercase())
        && op
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// [`valid_op`] as the transports check it before a call: a name that is
/// not one is a bug in the caller (500), never sent to the database.
pub fn check_op(op: &str) -> Result<(), DbError> {
    if valid_op(op) {
        Ok(())
    } else {
        Err(DbError::Failed(format!("not an operation name: {op:?}")))
    }
}

/// Calls `op` and decodes its result into `T` (usually an enum tagged by
/// `outcome`). Every failure is an [`ApiError`] naming the operation.
pub async fn call<T: DeserializeOwned>(
    db: &dyn Database,
    op: &'static str,
    args: Value,
) -> Result<T, ApiError> {
    let value = db.call(op, args).await?;
    decode(op, value).map_err(ApiError::from)
}

/// Decodes the result of `op`.
pub fn decode<T: DeserializeOwned>(op: &str, value: Value) -> Result<T, DbError> {
    let outcome = value
        .get("outcome")
        .and_then(Value::as_str)
        .unwrap_or("(none)")
        .to_string();
    serde_json::from_value(value).map_err(|e| DbError::Decode(format!("api.{op} → {outcome}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(tag = "outcome", rename_all = "snake_case")]
    enum Out {
        Found { n: u32 },
        NotFound,
    }

    #[test]
    fn operation_names_are_plain_identifiers() {
        assert!(valid_op("send_prepare"));
        assert!(valid_op("health"));
        for bad in ["", "Send", "_x", "a;b", "a b", "api.x", "x)--", "é"] {
            assert!(!valid_op(bad), "{bad}");
        }
        assert!(!valid_op(&"a".repeat(64)));
        assert_eq!(check_op("send_prepare"), Ok(()));
        assert!(matches!(check_op("x;y"), Err(DbError::Failed(m)) if m.contains("x;y")));
    }

    #[test]
    fn outcomes_decode_and_surprises_are_errors() {
        assert_eq!(
            decode::<Out>("x", json!({"outcome": "found", "n": 3})),
            Ok(Out::Found { n: 3 })
        );
        assert_eq!(
            decode::<Out>("x", json!({"outcome": "not_found"})),
            Ok(Out::NotFound)
        );
        for odd in [
            json!({"outcome": "exploded"}),
            json!({"outcome": "found"}),
            json!({"outcome": "found", "n": "three"}),
            json!(null),
            json!([1]),
        ] {
            let err = decode::<Out>("get", odd.clone()).unwrap_err();
            assert!(
                matches!(&err, DbError::Decode(m) if m.contains("api.get")),
                "{odd}"
            );
        }
    }

    #[test]
    fn errors_map_to_statuses() {
        assert_eq!(ApiError::from(DbError::Failed("x".into())).status(), 500);
        assert_eq!(ApiError::from(DbError::Decode("x".into())).status(), 500);
        assert_eq!(ApiError::from(DbError::Timeout("x".into())).status(), 504);
        assert_eq!(
            ApiError::from(DbError::Unavailable("x".into())).status(),
            503
        );
        for (code, status) in [
            ("42883", 503),
            ("08006", 503),
            ("57014", 504),
            ("23505", 500),
        ] {
            assert_eq!(
                ApiError::from(by_sqlstate("api.x", code)).status(),
                status,
                "{code}"
            );
        }
    }
}
