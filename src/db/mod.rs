//! The database: a transport-neutral handle ([`Db`]) on the database API
//! ([`call`]), reached over the `HYPERDRIVE` binding ([`hyperdrive`]) or
//! Supabase's HTTP API ([`rest`]), as the configuration chose ([`settings`]).
//!
//! Over Hyperdrive there is one connection per request (Hyperdrive pools
//! the real connections): the connection future is driven together with
//! the work and the client is dropped when the work ends, so the socket
//! closes cleanly (spawning the connection and dropping the client at the
//! end of the request makes `wrangler dev` fail with `read ECONNRESET`).
//! Over HTTP there is nothing to open: each call is one request.

pub mod call;
pub mod hyperdrive;
pub mod rest;
pub mod settings;

pub use call::{Database, DbError};
pub use settings::Transport;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::LocalBoxFuture;
use serde_json::Value;
use tokio_postgres::{Client, NoTls};
use worker::{console_error, Env};

use crate::http::ApiError;
use crate::runtime::timeout;

/// Name of the Hyperdrive binding in `wrangler.toml`.
pub const BINDING: &str = "HYPERDRIVE";
/// How long connecting may take before the database counts as unreachable,
/// unless `DATABASE_CONNECT_TIMEOUT_MS` says otherwise.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The connect timeout in force (ms): [`CONNECT_TIMEOUT`] until the
/// configuration sets it.
static CONNECT_TIMEOUT_MS: AtomicU64 = AtomicU64::new(CONNECT_TIMEOUT.as_millis() as u64);

/// Sets the connect timeout (from `DATABASE_CONNECT_TIMEOUT_MS`, once the
/// configuration is read).
pub fn set_connect_timeout_ms(ms: u64) {
    CONNECT_TIMEOUT_MS.store(ms, Ordering::Relaxed);
}

/// The database API for one request, whichever transport carries it.
pub struct Db {
    conn: Conn,
    connect_ms: u64,
}

impl Db {
    /// Milliseconds spent opening a connection for this request (0 over
    /// HTTP, where there is none): `Server-Timing: db`.
    pub fn connect_ms(&self) -> u64 {
        self.connect_ms
    }
}

enum Conn {
    Hyperdrive(Client),
    Http(rest::Rest),
}

impl Database for Db {
    fn call<'a>(
        &'a self,
        op: &'static str,
        args: Value,
    ) -> LocalBoxFuture<'a, Result<Value, DbError>> {
        match &self.conn {
            Conn::Hyperdrive(client) => client.call(op, args),
            Conn::Http(rest) => rest.call(op, args),
        }
    }
}

/// Runs `work` with the database: over Hyperdrive it connects first and
/// closes the connection after.
///
/// Connection failures answer 503 (`overloaded_error`); `work` reports its
/// own failures (the [`Database`] calls map theirs with [`DbError`]).
pub async fn with_db<T, F, Fut>(
    env: &Env,
    transport: &'static Transport,
    work: F,
) -> Result<T, ApiError>
where
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    with_db_after(env, transport, async { Ok(()) }, work).await
}

/// [`with_db`], connecting while `gate` runs (e.g. the rate limiter's
/// decision): `work` starts only when both are done, and not at all when
/// `gate` refuses (a connection is then closed unused).
pub async fn with_db_after<T, G, F, Fut>(
    env: &Env,
    transport: &'static Transport,
    gate: G,
    work: F,
) -> Result<T, ApiError>
where
    G: Future<Output = Result<(), ApiError>>,
    F: FnOnce(Db) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    if let Transport::Http { url, key } = transport {
        gate.await?;
        let conn = Conn::Http(rest::Rest { url, key });
        return work(Db {
            conn,
            connect_ms: 0,
        })
        .await;
    }
    let started = crate::runtime::now_ms();
    let connecting = async {
        let connected = connect(env).await;
        (connected, crate::runtime::now_ms().saturating_sub(started))
    };
    let (gate, (connected, connect_ms)) = futures::join!(gate, connecting);
    if let Err(refused) = gate {
        if let Ok((client, connection)) = connected {
            drop(client);
            let _ = connection.await;
        }
        return Err(refused);
    }
    let (client, connection) = connected?;
    let db = Db {
        conn: Conn::Hyperdrive(client),
        connect_ms,
    };
    let (result, closed) = futures::join!(work(db), connection);
    if let Err(e) = closed {
        console_error!("database connection ended with an error: {e}");
    }
    result
}

/// Opens a connection through the binding (the connection future must be
/// driven for the client to work).
async fn connect(
    env: &Env,
) -> Result<
    (
        Client,
        tokio_postgres::Connection<worker::Socket, tokio_postgres::tls::NoTlsStream>,
    ),
    ApiError,
> {
    let hyperdrive = env
        .hyperdrive(BINDING)
        .map_err(|e| ApiError::Misconfigured(format!("the {BINDING} binding is missing: {e}")))?;
    let config: tokio_postgres::Config = hyperdrive
        .connection_string()
        .parse()
        .map_err(|e| ApiError::Internal(format!("bad Hyperdrive connection string: {e}")))?;
    let socket = hyperdrive.connect().map_err(|e| unreachable(&e))?;
    let limit = Duration::from_millis(CONNECT_TIMEOUT_MS.load(Ordering::Relaxed));
    timeout(limit, config.connect_raw(socket, NoTls))
        .await
        .ok_or_else(|| unreachable(&"connect timed out"))?
        .map_err(|e| unreachable(&e))
}

/// Whether an error came from the socket (the connection is gone).
pub(crate) fn is_io(e: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Logs why the database could not be reached and answers a 503 whose
/// message carries no internals.
fn unreachable(e: &dyn std::fmt::Display) -> ApiError {
    console_error!("database unreachable: {e}");
    ApiError::Unavailable("database unreachable".into())
}
