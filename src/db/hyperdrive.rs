//! The Hyperdrive transport: `SELECT api.<op>($1)` over tokio-postgres.
//!
//! Each call is one unnamed, explicitly typed statement
//! (`query_typed`: parse, bind and execute go out together), so a call is
//! one round trip and nothing depends on prepared statements surviving in
//! Hyperdrive's pool. The argument and the result travel as JSON text.

use futures::future::LocalBoxFuture;
use serde_json::Value;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use super::call::{by_sqlstate, check_op, Database, DbError};

impl Database for Client {
    fn call<'a>(
        &'a self,
        op: &'static str,
        args: Value,
    ) -> LocalBoxFuture<'a, Result<Value, DbError>> {
        Box::pin(async move {
            check_op(op)?;
            let sql = format!("SELECT api.{op}($1::text::jsonb)::text");
            let text = args.to_string();
            let rows = self
                .query_typed(&sql, &[(&text, Type::TEXT)])
                .await
                .map_err(|e| classify(op, &e))?;
            let row = rows
                .first()
                .ok_or_else(|| DbError::Decode(format!("api.{op} returned no row")))?;
            let body: Option<String> = row
                .try_get(0)
                .map_err(|e| DbError::Decode(format!("api.{op}: {e}")))?;
            let body = body.ok_or_else(|| DbError::Decode(format!("api.{op} returned NULL")))?;
            serde_json::from_str(&body).map_err(|e| DbError::Decode(format!("api.{op}: {e}")))
        })
    }
}

/// A lost connection is `Unavailable`; anything the server said is `Failed`.
fn classify(op: &str, e: &tokio_postgres::Error) -> DbError {
    match e.as_db_error() {
        Some(db) => by_sqlstate(
            &format!("api.{op}: {} {}", db.code().code(), db.message()),
            db.code().code(),
        ),
        None if e.is_closed() || super::is_io(e) => DbError::Unavailable(format!("api.{op}: {e}")),
        None => DbError::Failed(format!("api.{op}: {e}")),
    }
}
