//! The database: the connection over the `HYPERDRIVE` binding, and the
//! database API it carries ([`call`], [`hyperdrive`]).
//!
//! One connection per request: Hyperdrive pools the real connections. The
//! connection future is driven together with the work and the client is
//! dropped when the work ends, so the socket closes cleanly (spawning the
//! connection and dropping the client at the end of the request makes
//! `wrangler dev` fail with `read ECONNRESET`).

pub mod call;
pub mod hyperdrive;

pub use call::{Database, DbError};

use std::future::Future;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};
use worker::{console_error, Env};

use crate::http::ApiError;
use crate::runtime::timeout;

/// Name of the Hyperdrive binding in `wrangler.toml`.
pub const BINDING: &str = "HYPERDRIVE";
/// How long connecting may take before the database counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects, runs `work` with the client, then closes the connection.
///
/// Connection failures answer 503 (`overloaded_error`); `work` reports its
/// own failures (the [`Database`] calls map theirs with [`DbError`]).
pub async fn with_client<T, F, Fut>(env: &Env, work: F) -> Result<T, ApiError>
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    with_client_after(env, async { Ok(()) }, work).await
}

/// [`with_client`], connecting while `gate` runs (e.g. the rate limiter's
/// decision): `work` starts only when both are done, and not at all when
/// `gate` refuses (the connection is then closed unused).
pub async fn with_client_after<T, G, F, Fut>(env: &Env, gate: G, work: F) -> Result<T, ApiError>
where
    G: Future<Output = Result<(), ApiError>>,
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    let (gate, connected) = futures::join!(gate, connect(env));
    if let Err(refused) = gate {
        if let Ok((client, connection)) = connected {
            drop(client);
            let _ = connection.await;
        }
        return Err(refused);
    }
    let (client, connection) = connected?;
    let (result, closed) = futures::join!(work(client), connection);
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
    timeout(CONNECT_TIMEOUT, config.connect_raw(socket, NoTls))
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
