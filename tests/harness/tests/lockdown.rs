//! The schema is safe on Supabase: with Supabase's roles and its default
//! grants on `public` recreated in a scratch database, the migrations leave
//! `anon` and `authenticated` (the roles behind the public anon key) unable
//! to read any table or call any function, while `service_role` can call
//! the API. Roles are cluster-wide: they are created when missing and
//! never dropped.

use std::path::Path;

use harness::migrate;
use harness::stack::TestDatabase;
use tokio_postgres::{Client, NoTls};

const PUBLIC_ROLES: [&str; 2] = ["anon", "authenticated"];

async fn connect(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

/// Supabase's roles, and its default privileges in `public` (set before
/// the migrations run, as on a new project).
async fn supabase_roles(c: &Client) {
    for role in ["anon", "authenticated", "service_role"] {
        // Concurrent tests may create the same role: ignore "already exists".
        let _ = c
            .batch_execute(&format!(
                "DO $$ BEGIN
                   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                     CREATE ROLE {role} NOLOGIN;
                   END IF;
                 END $$"
            ))
            .await;
    }
    c.batch_execute(
        "GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
         ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
         ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
         ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;",
    )
    .await
    .expect("default privileges");
}

/// Names of the relations/functions a role can use, from the catalogs.
async fn granted(c: &Client, role: &str) -> Vec<String> {
    let rows = c
        .query(
            "SELECT n.nspname || '.' || cl.relname
               FROM pg_class cl JOIN pg_namespace n ON n.oid = cl.relnamespace
              WHERE n.nspname IN ('public', 'app', 'api') AND cl.relkind IN ('r', 'v', 'm', 'p', 'S')
                AND (has_table_privilege($1, cl.oid, 'SELECT')
                     OR has_table_privilege($1, cl.oid, 'INSERT')
                     OR has_table_privilege($1, cl.oid, 'UPDATE')
                     OR has_table_privilege($1, cl.oid, 'DELETE'))
             UNION ALL
             SELECT n.nspname || '.' || p.proname
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname IN ('public', 'app', 'api')
                AND has_function_privilege($1, p.oid, 'EXECUTE')
             UNION ALL
             SELECT 'schema ' || s FROM unnest(ARRAY['app', 'api']) AS s
              WHERE has_schema_privilege($1, s, 'USAGE')",
            &[&role],
        )
        .await
        .expect("catalog query");
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn anon_and_authenticated_can_reach_nothing() {
    let admin = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let db = TestDatabase::create(&admin).await.expect("create db");
    let c = connect(&db.url).await;
    supabase_roles(&c).await;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    migrate::run(&db.url, &dir).await.expect("migrate");

    let counted: i64 = c
        .query_one(
            "SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = 'app')
                  + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                      WHERE n.nspname = 'api')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(counted >= 25, "the catalogs list the schema ({counted})");
    let tables_in_public: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables_in_public, 0, "no data in the exposed schema");

    for role in PUBLIC_ROLES {
        assert_eq!(granted(&c, role).await, Vec::<String>::new(), "{role}");
        // And trying it for real.
        c.batch_execute(&format!("SET ROLE {role}")).await.unwrap();
        for sql in [
            "SELECT * FROM app.users",
            "SELECT * FROM app.refresh_tokens",
            "SELECT * FROM app.api_keys",
            "SELECT * FROM public.schema_migrations",
            "SELECT api.health('{}')",
            "SELECT api.login('{\"email\": \"a@example.com\"}')",
            "SELECT app.known_user(gen_random_uuid())",
        ] {
            let err = c.batch_execute(sql).await.expect_err(sql);
            let code = err.code().map(|s| s.code().to_string());
            assert_eq!(code.as_deref(), Some("42501"), "{role}: {sql}: {err}");
        }
        c.batch_execute("RESET ROLE").await.unwrap();
    }

    // Supabase's server-side role calls the API (SECURITY INVOKER).
    let service = granted(&c, "service_role").await;
    assert!(
        service.contains(&"api.send_prepare".to_string()),
        "{service:?}"
    );
    c.batch_execute("SET ROLE service_role").await.unwrap();
    let row = c
        .query_one(
            "SELECT api.register('{\"email\": \"s@example.com\", \"password_hash\": \"h\"}')::text",
            &[],
        )
        .await
        .expect("service_role calls the API");
    let text: String = row.get(0);
    assert!(text.contains("\"created\""), "{text}");
    c.batch_execute("RESET ROLE").await.unwrap();
    drop(c);
    db.drop_database().await.expect("drop");
}
