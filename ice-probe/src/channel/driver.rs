//! The tokio shell: moves datagrams between a [`Transport`] and a
//! [`ChannelSession`], and wakes it at its timeouts.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::{Duration, Instant};

use common::channel_report::ChannelReport;

use super::{ChannelConfig, ChannelSession};

/// The future a [`Transport`] method returns.
pub type IoFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// A datagram pipe to the peer (the selected ICE pair). See the module
/// docs for the expectations (one datagram per call, cancel-safe `recv`).
pub trait Transport: Send + Sync {
    /// Sends one datagram.
    fn send<'a>(&'a self, buf: &'a [u8]) -> IoFuture<'a, ()>;
    /// Receives one datagram into `buf`, returning its length.
    fn recv<'a>(&'a self, buf: &'a mut [u8]) -> IoFuture<'a, usize>;
}

/// A connected UDP socket is a transport to the address it is connected to.
impl Transport for tokio::net::UdpSocket {
    fn send<'a>(&'a self, buf: &'a [u8]) -> IoFuture<'a, ()> {
        Box::pin(async move { tokio::net::UdpSocket::send(self, buf).await.map(drop) })
    }
    fn recv<'a>(&'a self, buf: &'a mut [u8]) -> IoFuture<'a, usize> {
        Box::pin(tokio::net::UdpSocket::recv(self, buf))
    }
}

/// Runs one channel measurement over `conn` until it ends: completed,
/// skipped (the peer does not answer HELLO within `config.hello_timeout`),
/// or failed (mismatch, peer silent for `config.peer_timeout`). Never
/// hangs: every phase is bounded. Transport errors are not returned; they
/// show as loss or as a silent peer in the report.
pub async fn run(conn: &dyn Transport, config: &ChannelConfig) -> ChannelReport {
    let mut session = ChannelSession::new(*config, Instant::now());
    let mut buf = vec![0u8; 2048];
    loop {
        let now = Instant::now();
        while let Some(d) = session.poll_transmit(now) {
            // A failed send is a lost datagram: the protocol copes.
            let _ = conn.send(&d).await;
        }
        if session.is_done() {
            break;
        }
        let Some(wake) = session.poll_timeout() else {
            break;
        };
        let wake = tokio::time::Instant::from_std(wake);
        match tokio::time::timeout_at(wake, conn.recv(&mut buf)).await {
            Err(_) => session.handle_timeout(Instant::now()),
            Ok(Ok(n)) => session.handle_datagram(Instant::now(), &buf[..n.min(buf.len())]),
            // ICMP errors surface as recv errors; the session keeps its
            // own schedule (a lasting error ends it via peer_timeout).
            Ok(Err(_)) => {
                let pause = tokio::time::Instant::now() + Duration::from_millis(5);
                tokio::time::sleep_until(wake.min(pause)).await;
                session.handle_timeout(Instant::now());
            }
        }
    }
    session.report()
}
