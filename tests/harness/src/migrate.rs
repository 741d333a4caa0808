//! The one migration runner, used by the dev command and the tests.
//!
//! Applies `migrations/NNNN_name.sql` in order, each in its own transaction,
//! and records it in `schema_migrations` with a SHA-256 of its text. Safe to
//! run twice (applied files are skipped) and refuses to continue when an
//! applied file was edited afterwards, or when the database records a
//! migration this code does not have (it is ahead of the code). Works on
//! PostgreSQL, Supabase and PGlite; TLS follows the URL's `sslmode` ([`tls`]).

pub mod tls;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

/// A migration file found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The numeric prefix, e.g. `0001`.
    pub version: String,
    /// The whole file name, e.g. `0001_init.sql`.
    pub name: String,
    /// The SQL text.
    pub sql: String,
}

impl Migration {
    /// Hex SHA-256 of the SQL text.
    pub fn checksum(&self) -> String {
        Sha256::digest(self.sql.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Reads `dir/*.sql` sorted by name; each name must start with digits and `_`.
pub fn load(dir: &Path) -> Result<Vec<Migration>, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| format!("bad file name {}", path.display()))?
                .to_string();
            let version = name.split('_').next().unwrap_or_default().to_string();
            if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) || version == name
            {
                return Err(format!(
                    "{name}: migration names must look like 0001_name.sql"
                ));
            }
            let sql = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
            Ok(Migration { version, name, sql })
        })
        .collect()
}

/// Connects to `url` and applies every pending migration from `dir`.
/// Returns the names applied by this call (empty when up to date).
pub async fn run(url: &str, dir: &Path) -> Result<Vec<String>, String> {
    let migrations = load(dir)?;
    let (mut client, conn) = tls::connect(url).await?;
    let result = apply(&mut client, &migrations).await;
    drop(client);
    let _ = conn.await;
    result
}

async fn apply(client: &mut Client, migrations: &[Migration]) -> Result<Vec<String>, String> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version    text PRIMARY KEY,
                name       text NOT NULL,
                checksum   text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(|e| format!("cannot create schema_migrations: {e}"))?;
    refuse_unknown(client, migrations).await?;
    let mut applied = Vec::new();
    for m in migrations {
        let tx = client.transaction().await.map_err(|e| e.to_string())?;
        // Serialises concurrent runners: the second waits, then sees the row.
        tx.batch_execute("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
            .await
            .map_err(|e| e.to_string())?;
        let row = tx
            .query_opt(
                "SELECT checksum FROM schema_migrations WHERE version = $1",
                &[&m.version],
            )
            .await
            .map_err(|e| e.to_string())?;
        match row {
            Some(row) => {
                let recorded: String = row.get(0);
                if recorded != m.checksum() {
                    return Err(format!(
                        "{} was changed after it was applied; add a new migration instead",
                        m.name
                    ));
                }
            }
            None => {
                tx.batch_execute(&m.sql)
                    .await
                    .map_err(|e| format!("{} failed: {}", m.name, describe(&e)))?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    &[&m.version, &m.name, &m.checksum()],
                )
                .await
                .map_err(|e| e.to_string())?;
                applied.push(m.name.clone());
            }
        }
        tx.commit().await.map_err(|e| e.to_string())?;
    }
    Ok(applied)
}

/// Refuses a database that records migrations missing from `migrations`
/// (it was migrated by a newer version of the code).
async fn refuse_unknown(client: &Client, migrations: &[Migration]) -> Result<(), String> {
    let rows = client
        .query(
            "SELECT version, name FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(|e| format!("cannot read schema_migrations: {}", describe(&e)))?;
    let unknown: Vec<String> = rows
        .iter()
        .filter_map(|row| {
            let version: String = row.try_get(0).ok()?;
            let name: String = row.try_get(1).ok()?;
            (!migrations.iter().any(|m| m.version == version)).then_some(name)
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the database is ahead of this code: it records {} which this checkout does not \
             have; update the code (or deploy the newer version) instead of migrating back",
            unknown.join(", ")
        ))
    }
}

/// The server's message for a database error, else the error itself.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

/// A connection URL with any password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn loads_the_project_migrations_in_order() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
        let all = load(&dir).expect("load");
        assert!(!all.is_empty());
        assert_eq!(all[0].version, "0001");
        let mut sorted = all.clone();
        sorted.sort_by(|a, b| a.version.cmp(&b.version));
        assert_eq!(all, sorted);
        assert_eq!(all[0].checksum().len(), 64);
    }

    #[test]
    fn rejects_badly_named_files() {
        let dir = std::env::temp_dir().join(format!("migrate-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("init.sql"), "SELECT 1").unwrap();
        let err = load(&dir).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(err.contains("0001_name.sql"), "{err}");
    }
}
