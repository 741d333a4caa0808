//! A TCP proxy that delays every byte by half a round-trip time in each
//! direction, to measure how many sequential round trips a request makes
//! to the database: with the delay set to RTT, a request that waits for N
//! round trips gets N × RTT slower.
//!
//! Data keeps flowing while it is delayed (each chunk is held until its own
//! due time), so pipelined messages are not serialised by the proxy. The
//! delay can be changed while connections are open; new chunks use it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A running proxy; dropping it stops accepting (open connections end
/// with their peers).
pub struct DelayProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    rtt_us: Arc<AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

impl DelayProxy {
    /// Listens on `127.0.0.1:0` and forwards to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<DelayProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let rtt_us = Arc::new(AtomicU64::new(0));
        let shared = rtt_us.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let rtt = shared.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        let _ = client.set_nodelay(true);
                        let _ = server.set_nodelay(true);
                        let (cr, cw) = client.into_split();
                        let (sr, sw) = server.into_split();
                        tokio::join!(pipe(cr, sw, rtt.clone()), pipe(sr, cw, rtt));
                    }
                });
            }
        });
        Ok(DelayProxy {
            addr,
            rtt_us,
            accept,
        })
    }

    /// Sets the round-trip time added (half of it each way).
    pub fn set_rtt(&self, rtt: Duration) {
        let us = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX);
        self.rtt_us.store(us, Ordering::Relaxed);
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies `from` to `to`, each chunk written RTT/2 after it was read.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, rtt_us: Arc<AtomicU64>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let half = Duration::from_micros(rtt_us.load(Ordering::Relaxed) / 2);
                    if tx.send((Instant::now() + half, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server; returns its address.
    async fn echo() -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(proxy: &DelayProxy) -> Duration {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        let start = std::time::Instant::now();
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        start.elapsed()
    }

    #[tokio::test]
    async fn adds_one_rtt_per_round_trip_and_keeps_the_bytes() {
        let proxy = DelayProxy::start(echo().await).await.unwrap();
        let fast = round_trip(&proxy).await;
        proxy.set_rtt(Duration::from_millis(60));
        let slow = round_trip(&proxy).await;
        assert!(fast < Duration::from_millis(30), "{fast:?}");
        assert!(
            slow >= Duration::from_millis(60) && slow < Duration::from_millis(110),
            "{slow:?}"
        );
    }
}
