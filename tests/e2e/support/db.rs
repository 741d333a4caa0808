//! Direct database access, for what the API deliberately does not show
//! (stored hashes) or to set up states the API cannot make (old hashes).

use tokio_postgres::{Client, NoTls};

use super::stack;

/// A connection to the worker's database, driven on the current runtime.
pub async fn db() -> Client {
    let (client, connection) = tokio_postgres::connect(&stack().database_url, NoTls)
        .await
        .expect("connect to E2E_DATABASE_URL");
    tokio::spawn(connection);
    client
}
