//! The database API (`api.*` functions) called directly against a real
//! PostgreSQL (`TEST_DATABASE_URL`, default the local server): every
//! function and its outcomes. Each test makes its own database.

mod accounts;
mod conversations;
mod send;

use std::path::Path;

use harness::migrate;
use harness::stack::TestDatabase;
use serde_json::{json, Value};
use tokio_postgres::{Client, NoTls};

/// A migrated scratch database and a connection to it.
pub struct Db {
    pub db: TestDatabase,
    pub client: Client,
}

impl Db {
    /// Creates and migrates a database.
    pub async fn new() -> Db {
        let admin = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let db = TestDatabase::create(&admin).await.expect("create db");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
        migrate::run(&db.url, &dir).await.expect("migrate");
        let (client, conn) = tokio_postgres::connect(&db.url, NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        Db { db, client }
    }

    /// `SELECT api.<op>(args)`, the way the worker calls it.
    pub async fn call(&self, op: &str, args: Value) -> Value {
        self.try_call(op, args)
            .await
            .unwrap_or_else(|e| panic!("api.{op}: {e}"))
    }

    /// Like [`Db::call`], returning the database error.
    pub async fn try_call(&self, op: &str, args: Value) -> Result<Value, String> {
        let sql = format!("SELECT api.{op}($1::text::jsonb)::text");
        let row = self
            .client
            .query_one(&sql, &[&args.to_string()])
            .await
            .map_err(|e| {
                e.as_db_error()
                    .map_or(e.to_string(), |d| d.message().into())
            })?;
        let text: String = row.get(0);
        Ok(serde_json::from_str(&text).expect("json result"))
    }

    /// One number from a query.
    pub async fn count(&self, sql: &str) -> i64 {
        self.client.query_one(sql, &[]).await.expect(sql).get(0)
    }

    /// Drops the database.
    pub async fn done(self) {
        drop(self.client);
        self.db.drop_database().await.expect("drop");
    }

    /// Registers `email` and returns its user id.
    pub async fn user(&self, email: &str) -> String {
        let out = self
            .call(
                "register",
                json!({"email": email, "password_hash": "$pbkdf2$x"}),
            )
            .await;
        assert_eq!(out["outcome"], "created", "{out}");
        out["user"]["id"].as_str().expect("id").to_string()
    }

    /// Creates a conversation of `user` and returns its id.
    pub async fn conversation(&self, user: &str) -> String {
        let out = self
            .call(
                "create_conversation",
                json!({"user_id": user, "model": "m", "metadata": {}}),
            )
            .await;
        assert_eq!(out["outcome"], "created", "{out}");
        out["conversation"]["id"].as_str().expect("id").to_string()
    }
}

/// A random UUID (no user has it).
pub fn nobody() -> String {
    format!(
        "00000000-0000-4000-8000-{:012x}",
        std::process::id() as u64 * 7919
    )
}

#[tokio::test]
async fn health_answers_ok() {
    let db = Db::new().await;
    assert_eq!(db.call("health", json!({})).await, json!({"outcome": "ok"}));
    db.done().await;
}
