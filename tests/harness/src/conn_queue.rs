//! A TCP proxy in front of a local PostgreSQL that holds at most a fixed
//! number of connections to it at once: further clients are accepted and
//! wait (about in arrival order) until one of those ends.
//!
//! Under `wrangler dev` the worker's Hyperdrive binding opens a new
//! connection straight to the database for every request (Hyperdrive's pool
//! exists only in production), so a burst of requests opens as many
//! connections, and a server with the default `max_connections` (100)
//! refuses the excess with "too many clients already", which the worker
//! answers with 503. The worker's connections are short (a request's
//! statements, or storing an answer), so a waiting one soon gets its turn.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Connections a local stack holds to its PostgreSQL at once: well under
/// the default `max_connections` (100), leaving room for other clients of
/// the same server.
pub const LOCAL_POOL: usize = 40;

/// A running queue; dropping it stops accepting (open connections end
/// with their peers).
pub struct ConnQueue {
    /// Where clients connect.
    pub addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

impl ConnQueue {
    /// Listens on `127.0.0.1:0` and forwards to `target`, at most `max`
    /// connections at a time.
    pub async fn start(target: SocketAddr, max: usize) -> std::io::Result<ConnQueue> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let slots = Arc::new(Semaphore::new(max));
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                // Permits are handed out in the order they were asked for.
                let slot = slots.clone().acquire_owned();
                tokio::spawn(async move {
                    let Ok(_slot) = slot.await else {
                        return;
                    };
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        Ok(ConnQueue { addr, accept })
    }

    /// `url` (a `postgres://` URL of the proxied server) pointing at this
    /// queue instead.
    pub fn url(&self, url: &str) -> String {
        with_addr(url, self.addr)
    }
}

/// `url` (a `postgres://` URL) with its host and port replaced by `addr`.
pub fn with_addr(url: &str, addr: SocketAddr) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let userinfo = authority
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    format!("{scheme}://{userinfo}{addr}{path}")
}

impl Drop for ConnQueue {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// The `host:port` of a `postgres://` URL, resolved (port 5432 when absent).
pub fn target_of(url: &str) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let hostport = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:5432")
    };
    hostport.to_socket_addrs().ok()?.next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn urls_are_pointed_at_the_queue() {
        assert_eq!(
            target_of("postgres://postgres@127.0.0.1:5432/db?x=1"),
            Some(SocketAddr::from(([127, 0, 0, 1], 5432)))
        );
        assert_eq!(
            target_of("postgres://u:p@127.0.0.1/db"),
            Some(SocketAddr::from(([127, 0, 0, 1], 5432)))
        );
    }

    /// Three clients through a queue of two: the third is accepted at
    /// once but reaches the server only when one of the first two leaves.
    #[tokio::test]
    async fn excess_clients_wait_for_a_free_connection() {
        let server = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let target = server.local_addr().unwrap();
        let q = ConnQueue::start(target, 2).await.unwrap();
        assert_eq!(
            q.url("postgres://u:p@127.0.0.1:5432/db?sslmode=disable"),
            format!("postgres://u:p@{}/db?sslmode=disable", q.addr)
        );
        let mut clients = Vec::new();
        for _ in 0..3 {
            clients.push(TcpStream::connect(q.addr).await.unwrap());
        }
        let mut accepted = Vec::new();
        for _ in 0..2 {
            let (s, _) = tokio::time::timeout(Duration::from_secs(5), server.accept())
                .await
                .expect("a first two connections reach the server")
                .unwrap();
            accepted.push(s);
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(300), server.accept())
                .await
                .is_err(),
            "the third waits"
        );
        // The first client leaves and the server closes its side.
        drop(clients.remove(0));
        drop(accepted.remove(0));
        let (mut third, _) = tokio::time::timeout(Duration::from_secs(5), server.accept())
            .await
            .expect("the third gets its turn")
            .unwrap();
        clients[1].write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        third.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
    }
}
