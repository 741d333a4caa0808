//! The migration runner and the schema, against a real PostgreSQL
//! (`TEST_DATABASE_URL`, default the local server): each test makes its own
//! database and drops it.

use std::path::{Path, PathBuf};

use harness::migrate;
use harness::stack::TestDatabase;
use tokio_postgres::{Client, NoTls};

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn migrations() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations")
}

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

#[tokio::test]
async fn migrations_apply_once_and_are_safe_to_rerun() {
    let db = TestDatabase::create(&admin_url()).await.expect("create db");
    let first = migrate::run(&db.url, &migrations())
        .await
        .expect("first run");
    assert_eq!(first.first().map(String::as_str), Some("0001_init.sql"));
    let second = migrate::run(&db.url, &migrations())
        .await
        .expect("second run");
    assert!(second.is_empty(), "nothing applied twice: {second:?}");
    let client = connect(&db.url).await;
    let n: i64 = client
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n as usize, first.len());
    drop(client);
    db.drop_database().await.expect("drop");
}

#[tokio::test]
async fn an_edited_applied_migration_is_refused() {
    let db = TestDatabase::create(&admin_url()).await.expect("create db");
    let dir = std::env::temp_dir().join(format!("schema-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("0001_a.sql"), "CREATE TABLE a (x int);").unwrap();
    migrate::run(&db.url, &dir).await.expect("apply");
    std::fs::write(dir.join("0001_a.sql"), "CREATE TABLE a (x bigint);").unwrap();
    let err = migrate::run(&db.url, &dir).await.unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(err.contains("was changed after it was applied"), "{err}");
    db.drop_database().await.expect("drop");
}

#[tokio::test]
async fn a_failing_migration_leaves_nothing_behind() {
    let db = TestDatabase::create(&admin_url()).await.expect("create db");
    let dir = std::env::temp_dir().join(format!("schema-fail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("0001_bad.sql"),
        "CREATE TABLE b (x int); SELECT nope;",
    )
    .unwrap();
    let err = migrate::run(&db.url, &dir).await.unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(err.contains("0001_bad.sql failed"), "{err}");
    let client = connect(&db.url).await;
    let exists: bool = client
        .query_one("SELECT to_regclass('b') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!exists, "the failed migration's table was rolled back");
    drop(client);
    db.drop_database().await.expect("drop");
}

#[tokio::test]
async fn schema_keeps_counts_timestamps_and_cascades() {
    let db = TestDatabase::create(&admin_url()).await.expect("create db");
    migrate::run(&db.url, &migrations()).await.expect("migrate");
    let c = connect(&db.url).await;
    let user: String = c
        .query_one(
            "INSERT INTO app.users (email, password_hash) VALUES ('a@example.com', 'h') RETURNING id::text",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(c
        .execute(
            "INSERT INTO app.users (email, password_hash) VALUES ('B@example.com', 'h')",
            &[]
        )
        .await
        .is_err());
    let conv: String = c
        .query_one(
            "INSERT INTO app.conversations (user_id, model, updated_at) VALUES ($1::text::uuid, 'm', now() - interval '1 hour') RETURNING id::text",
            &[&user],
        )
        .await
        .unwrap()
        .get(0);
    for role in ["user", "assistant"] {
        c.execute(
            "INSERT INTO app.messages (conversation_id, user_id, role, content) VALUES ($1::text::uuid, $2::text::uuid, $3, 'hi')",
            &[&conv, &user, &role],
        )
        .await
        .unwrap();
    }
    let row = c
        .query_one(
            "SELECT message_count, updated_at > now() - interval '1 minute' FROM app.conversations WHERE id = $1::text::uuid",
            &[&conv],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 2);
    assert!(row.get::<_, bool>(1), "adding a message bumps updated_at");
    assert!(c
        .execute(
            "INSERT INTO app.messages (conversation_id, user_id, role, content) VALUES ($1::text::uuid, $2::text::uuid, 'system', 'x')",
            &[&conv, &user],
        )
        .await
        .is_err());
    c.execute(
        "DELETE FROM app.conversations WHERE id = $1::text::uuid",
        &[&conv],
    )
    .await
    .unwrap();
    let left: i64 = c
        .query_one("SELECT count(*) FROM app.messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "messages go with their conversation");
    c.execute("DELETE FROM app.users WHERE id = $1::text::uuid", &[&user])
        .await
        .unwrap();
    drop(c);
    db.drop_database().await.expect("drop");
}

#[tokio::test]
async fn a_database_ahead_of_the_code_is_refused() {
    let db = TestDatabase::create(&admin_url()).await.expect("create db");
    let dir = std::env::temp_dir().join(format!("schema-ahead-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("0001_a.sql"), "CREATE TABLE a (x int);").unwrap();
    std::fs::write(dir.join("0002_b.sql"), "CREATE TABLE b (x int);").unwrap();
    migrate::run(&db.url, &dir).await.expect("apply");
    std::fs::remove_file(dir.join("0002_b.sql")).unwrap();
    let err = migrate::run(&db.url, &dir).await.unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(err.contains("ahead of this code"), "{err}");
    assert!(err.contains("0002_b.sql"), "{err}");
    db.drop_database().await.expect("drop");
}

#[tokio::test]
async fn a_bad_url_gets_a_clear_error() {
    let err = migrate::run("postgres://u:secret@host:notaport/db", &migrations())
        .await
        .unwrap_err();
    assert!(err.contains("is not a PostgreSQL connection URL"), "{err}");
    assert!(!err.contains("secret"), "the password is not shown: {err}");
}
