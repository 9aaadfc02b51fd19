//! The channel measurements over the selected pair: webrtc-ice's `Conn` as
//! a [`channel::Transport`], and the run bounded so that a stuck peer
//! cannot hold `connect` past `--duration` plus the protocol's own bounds.

use std::sync::Arc;
use std::time::Duration;

use common::connect_report::ChannelOutcome;
use webrtc_util::Conn;

use crate::channel::{self, ChannelConfig, IoFuture, Transport};

/// The selected pair's connection as a datagram transport.
struct IceTransport(Arc<dyn Conn + Send + Sync>);

impl Transport for IceTransport {
    fn send<'a>(&'a self, buf: &'a [u8]) -> IoFuture<'a, ()> {
        Box::pin(async move {
            self.0
                .send(buf)
                .await
                .map(drop)
                .map_err(std::io::Error::other)
        })
    }
    fn recv<'a>(&'a self, buf: &'a mut [u8]) -> IoFuture<'a, usize> {
        Box::pin(async move { self.0.recv(buf).await.map_err(std::io::Error::other) })
    }
}

/// Runs the measurement; `None` config means it was turned off.
pub async fn measure(
    conn: Option<Arc<dyn Conn + Send + Sync>>,
    config: Option<&ChannelConfig>,
) -> ChannelOutcome {
    let Some(config) = config else {
        return ChannelOutcome::skipped("turned off with --duration 0");
    };
    let Some(conn) = conn else {
        return ChannelOutcome::skipped("not connected");
    };
    // HELLO and the FIN/REPORT swap are bounded by the session itself;
    // this only guards against a stuck transport.
    let bound =
        config.duration + config.hello_timeout + config.peer_timeout * 2 + Duration::from_secs(1);
    let t = IceTransport(conn);
    match tokio::time::timeout(bound, channel::run(&t, config)).await {
        Ok(r) => ChannelOutcome::from_report(r),
        Err(_) => ChannelOutcome {
            status: "failed".into(),
            reason: Some(format!("the measurement did not end within {bound:?}")),
            ..ChannelOutcome::skipped("")
        },
    }
}
