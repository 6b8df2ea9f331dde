//! A delaying TCP proxy: the link between two sites, for tests on one
//! machine whose kernel has no netem qdisc.
//!
//! Every byte that crosses the proxy, in either direction, arrives
//! `one_way` after it was sent, and bandwidth is not limited: a chunk read
//! at time t is written at t + `one_way`, in order. The proxy listens on a
//! loopback port and forwards each connection to one upstream address;
//! TLS passes through untouched. Dropping the [`DelayProxy`] stops it and
//! every connection through it.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Bytes read at once from one side.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight per direction before the reader waits (back-pressure).
const IN_FLIGHT: usize = 1024;

/// A running delaying proxy.
pub struct DelayProxy {
    /// Where it listens (127.0.0.1:PORT).
    pub addr: String,
    tasks: JoinSet<()>,
}

impl DelayProxy {
    /// Listens on a free loopback port and forwards every connection to
    /// `upstream`, delaying each direction by `one_way`. Must be called
    /// within a tokio runtime, which runs the proxy.
    pub async fn start(upstream: &str, one_way: Duration) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port for the proxy");
        let addr = listener
            .local_addr()
            .expect("a bound socket has an address")
            .to_string();
        let upstream = upstream.to_string();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut links = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                links.spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pipe(client_read, server_write, one_way),
                        pipe(server_read, client_write, one_way),
                    );
                });
                // Reap finished links without waiting for them.
                while links.try_join_next().is_some() {}
            }
        });
        DelayProxy { addr, tasks }
    }

    /// Stops the proxy and cuts every connection through it.
    pub fn stop(&mut self) {
        self.tasks.abort_all();
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Copies `from` to `to`, each chunk `delay` after it was read. Ends when
/// either side closes.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(IN_FLIGHT);
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send((Instant::now(), buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    let writer = async move {
        while let Some((read_at, bytes)) = rx.recv().await {
            tokio::time::sleep_until(read_at + delay).await;
            if to.write_all(&bytes).await.is_err() {
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

    #[tokio::test]
    async fn bytes_arrive_late_but_whole_and_in_order() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = echo.accept().await.unwrap();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n]).await.unwrap();
            }
        });
        let proxy = DelayProxy::start(&echo_addr, Duration::from_millis(100)).await;
        let mut c = TcpStream::connect(&proxy.addr).await.unwrap();
        let message: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let sent = std::time::Instant::now();
        c.write_all(&message).await.unwrap();
        let mut back = vec![0u8; message.len()];
        c.read_exact(&mut back).await.unwrap();
        let round_trip = sent.elapsed();
        assert_eq!(back, message);
        assert!(
            round_trip >= Duration::from_millis(200),
            "a round trip through a 100 ms proxy took {round_trip:?}"
        );
    }
}
