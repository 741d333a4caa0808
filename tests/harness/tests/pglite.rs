//! The embedded PGlite server (`tests/harness/pglite.mjs`) that `npm run dev`
//! and the tests' PGlite phase use: it accepts every connection and runs
//! their requests one at a time, each client getting its own answers, and a
//! transaction keeps the database to itself until it ends.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use harness::procs::{free_port, Proc};
use harness::stack::{repo_root, start_pglite};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls};

/// A PGlite server on a fresh data folder, removed on drop.
struct Pglite {
    proc: Proc,
    url: String,
    data: PathBuf,
}

impl Pglite {
    async fn start(name: &str) -> Pglite {
        let root = repo_root();
        let data = root.join(format!(
            "target/stack-run/pglite-test-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&data);
        let port = free_port().expect("a free port");
        let log = data.with_extension("log");
        let (proc, url) = start_pglite(&root, &data, port, Some(&log))
            .await
            .expect("PGlite starts (node_modules installed by tests/setup.sh)");
        Pglite { proc, url, data }
    }

    async fn connect(&self) -> Client {
        let (client, conn) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .expect("connect to PGlite");
        tokio::spawn(conn);
        client
    }

    async fn stop(mut self) {
        self.proc.stop(Duration::from_secs(5)).await;
        let _ = std::fs::remove_dir_all(&self.data);
        let _ = std::fs::remove_file(self.data.with_extension("log"));
    }
}

/// 100 clients at once (more than pglite-server's `--max-connections`
/// ever allowed here), each running its own one-round-trip statements the
/// way the worker does (`query_typed`: Parse, Bind, Describe, Execute and
/// Sync in one write): every connection is served and every client gets
/// the answers to its own statements, never another client's.
#[tokio::test]
async fn many_clients_at_once_each_get_their_own_answers() {
    let pg = Pglite::start("many").await;
    let clients = 100;
    let rounds = 10;
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let url = pg.url.clone();
            tokio::spawn(async move {
                let (client, conn) = tokio_postgres::connect(&url, NoTls)
                    .await
                    .map_err(|e| format!("client {i} could not connect: {e}"))?;
                tokio::spawn(conn);
                for j in 0..rounds {
                    // A different statement per client: a Bind reaching
                    // another client's statement would show in the text.
                    let sql = format!("SELECT 'client {i}: ' || $1::text");
                    let arg = format!("round {j}");
                    let rows = client
                        .query_typed(&sql, &[(&arg, Type::TEXT)])
                        .await
                        .map_err(|e| format!("client {i} round {j}: {e}"))?;
                    let got: String = rows[0].get(0);
                    let want = format!("client {i}: round {j}");
                    if got != want {
                        return Err(format!("client {i} got {got:?}, wanted {want:?}"));
                    }
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    let mut failures = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.expect("task") {
            failures.push(e);
        }
    }
    let log = pg.proc.log_tail(40);
    pg.stop().await;
    assert!(
        failures.is_empty(),
        "{} failures: {failures:#?}\nPGlite's log:\n{log}",
        failures.len()
    );
}

/// A client inside BEGIN … COMMIT has the database to itself: another
/// client's statement waits until the transaction ends, then sees its
/// writes; a client that disconnects inside a transaction has it rolled
/// back and releases the database.
#[tokio::test]
async fn a_transaction_holds_the_database_until_it_ends() {
    let pg = Pglite::start("tx").await;
    let a = pg.connect().await;
    a.batch_execute("CREATE TABLE t (x int)")
        .await
        .expect("create");
    a.batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .expect("begin");
    let url = pg.url.clone();
    let started = Instant::now();
    let reader = tokio::spawn(async move {
        let (b, conn) = tokio_postgres::connect(&url, NoTls).await.expect("b");
        tokio::spawn(conn);
        let n: i64 = b
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .expect("count")
            .get(0);
        (n, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.batch_execute("COMMIT").await.expect("commit");
    let (n, waited) = reader.await.expect("reader");
    assert_eq!(n, 1, "the reader ran after the commit");
    assert!(
        waited >= Duration::from_millis(450),
        "the reader waited for the transaction: {waited:?}"
    );

    // Left open by a client that goes away: rolled back, database free.
    let c = pg.connect().await;
    c.batch_execute("BEGIN; INSERT INTO t VALUES (2)")
        .await
        .expect("begin");
    drop(c);
    let d = pg.connect().await;
    let n: i64 = tokio::time::timeout(
        Duration::from_secs(10),
        d.query_one("SELECT count(*) FROM t", &[]),
    )
    .await
    .expect("the database is free again")
    .expect("count")
    .get(0);
    assert_eq!(n, 1, "the abandoned insert was rolled back");
    pg.stop().await;
}
