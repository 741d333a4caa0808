//! The migration connection's `sslmode`, against the local PostgreSQL
//! (`TEST_DATABASE_URL`, default 127.0.0.1:5432) reached directly and through
//! a proxy that refuses TLS the way a server without TLS does.

use std::path::{Path, PathBuf};

use harness::migrate;
use harness::stack::{with_database, TestDatabase};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn migrations() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations")
}

/// `postgres://USER@HOST:PORT/...` → `HOST:PORT`.
fn server_addr(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split_once('@').map_or(rest, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or(rest).to_string()
}

/// A proxy to `upstream` that answers PostgreSQL's SSLRequest with `N` (no
/// TLS here) and then relays the plain protocol. Returns its address.
async fn tls_refusing_proxy(upstream: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let mut first = [0u8; 8];
                if client.read_exact(&mut first).await.is_err() {
                    return;
                }
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                // Length 8, code 80877103: the SSLRequest.
                if first == [0, 0, 0, 8, 4, 210, 22, 47] {
                    if client.write_all(b"N").await.is_err() {
                        return;
                    }
                } else if server.write_all(&first).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    addr
}

/// `url` pointed at `addr` instead of its own host and port.
fn via(url: &str, addr: &str) -> String {
    url.replacen(&server_addr(url), addr, 1)
}

fn with_sslmode(url: &str, mode: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}sslmode={mode}")
}

/// Whether the session `url` opens (with its sslmode) is encrypted.
async fn session_uses_tls(url: &str) -> bool {
    let (client, conn) = migrate::tls::connect(url).await.expect("connect");
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0);
    drop(client);
    let _ = conn.await;
    ssl
}

#[tokio::test]
async fn prefer_falls_back_to_plain_and_migrates_when_the_server_refuses_tls() {
    let db = TestDatabase::create(&admin_url()).await.expect("create db");
    let proxy = tls_refusing_proxy(server_addr(&db.url)).await;
    let url = via(&db.url, &proxy);
    // sslmode absent means prefer.
    let applied = migrate::run(&url, &migrations()).await;
    let explicit = session_uses_tls(&with_sslmode(&url, "prefer")).await;
    db.drop_database().await.expect("drop");
    let applied = applied.expect("migrate with prefer");
    assert_eq!(applied.first().map(String::as_str), Some("0001_init.sql"));
    assert!(!explicit, "the proxy refuses TLS, so the session is plain");
}

#[tokio::test]
async fn require_fails_clearly_when_the_server_refuses_tls() {
    let admin = admin_url();
    let proxy = tls_refusing_proxy(server_addr(&admin)).await;
    let url = with_sslmode(&with_database(&via(&admin, &proxy), "postgres"), "require");
    let err = migrate::run(&url, &migrations()).await.unwrap_err();
    assert!(err.contains("TLS"), "{err}");
    assert!(err.contains("the server must accept TLS"), "{err}");
    eprintln!("{err}");
    assert!(err.contains("cannot connect to"), "{err}");
}

#[tokio::test]
async fn each_sslmode_gets_the_session_it_asks_for_from_the_local_server() {
    let admin = admin_url();
    assert!(!session_uses_tls(&with_sslmode(&admin, "disable")).await);
    let (client, conn) = migrate::tls::connect(&admin).await.expect("connect");
    let server_ssl: String = client
        .query_one("SHOW ssl", &[])
        .await
        .expect("show ssl")
        .get(0);
    drop(client);
    let _ = conn.await;
    // The server's own TLS (when it has it) is used by prefer and require.
    let has_tls = server_ssl == "on";
    assert_eq!(session_uses_tls(&admin).await, has_tls);
    if has_tls {
        assert!(session_uses_tls(&with_sslmode(&admin, "require")).await);
        // A local server's certificate does not chain to a public root.
        let err = migrate::tls::connect(&with_sslmode(&admin, "verify-full"))
            .await
            .map(|_| ())
            .unwrap_err();
        assert!(err.contains("TLS"), "{err}");
        assert!(err.contains("public certificate authority"), "{err}");
        eprintln!("{err}");
    }
}
