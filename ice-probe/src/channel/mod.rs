//! Channel measurements of `ice-probe connect`: what the selected ICE pair
//! carries, in both directions at once, between two ice-probes.
//!
//! - `--profile data`: a sender keeps a window of messages (1,200-byte
//!   datagrams) in flight, each acknowledged by sequence; the echo gives the
//!   message RTT distribution (p50/p90/p99/max), the receiver's count the
//!   loss, and the payload it got per second of sending the goodput.
//!   The RTT is that of messages under the window's own load: a window
//!   larger than the path's bandwidth-delay product queues at the
//!   bottleneck and the RTT shows that queue (as a bulk transfer on the
//!   call would). A message unacknowledged for an RTO (TCP-style, 200 ms
//!   to 1 s) gives up its window slot; its late ack still counts for RTT.
//! - `--profile video --bitrate 2.5M --fps 30 --playout 150ms`: every
//!   1/fps a frame of `bitrate / 8 / fps` payload bytes is split into
//!   packets of at most 1,200 bytes (header included) carrying an RTP-like
//!   sequence, the frame id, the packet's index and count in the frame, the
//!   frame's capture time and the packet's send time (sender clock). The
//!   receiver reports goodput, loss, RFC 3550 interarrival jitter (computed
//!   from relative transit times, so the clocks need not be synchronised)
//!   and the share of frames complete in time.
//!
//! **Complete in time.** Let `D_min` be the smallest one-way transit
//! (receiver clock minus sender clock) of any video packet received in the
//! run: the frame's first packet's expected arrival is `capture + D_min`,
//! what an idle path delivers. A frame is complete in time when every one
//! of its packets arrived and the last one arrived no later than
//! `capture + D_min + playout`. The share is over the frames the sender
//! sent (a frame with no packet received counts as incomplete).
//!
//! **Protocol** (`wire`): every datagram starts with a magic and the
//! protocol version ([`PROTOCOL_VERSION`]). Both sides send HELLO (profile,
//! duration, "I heard you") until each has heard the other; the agreed
//! duration is the shorter one. A peer of another version fails both sides
//! clearly ("peer speaks channel protocol v2, we speak v1"); a peer that
//! sends no HELLO within `hello_timeout` (2 s) makes the status `skipped:
//! the peer does not answer (not ice-probe?)`, which is not an error of the
//! connection. Once running, both sides send and receive at once; a peer
//! silent for `peer_timeout` (2 s) ends the run with `failed: peer stopped
//! answering after 3.2 s (...)` and the halves measured so far; a peer
//! that keeps talking but never confirms the end (its FIN or our REPORT
//! never gets through) ends it `MAX_RTO + peer_timeout` after sending
//! stopped. [`ChannelConfig::bound`] is the longest a run can take. At the
//! end each sender sends FIN (its half: sent, RTT, frames) until the
//! receiver's REPORT (its half: received, jitter, frames in time) comes
//! back, so both sides print both directions.
//!
//! Runs on the same pair one after another are fine: a session lingers
//! 600 ms after its last FIN, and a session only starts on the peer's HELLO
//! or measurement traffic, not on a late FIN or REPORT of the run before.
//!
//! **Sans-IO.** [`ChannelSession`] holds every protocol decision and opens
//! no socket and reads no clock; [`run`] is the thin tokio shell over a
//! [`Transport`].
//!
//! **Adapting the ICE connection.** `Transport` is two methods so that
//! webrtc-ice's `Conn` (`webrtc_util::Conn`: `send(&[u8])`, `recv(&mut
//! [u8])`) fits in a few lines:
//!
//! ```ignore
//! struct IceTransport(std::sync::Arc<dyn webrtc_util::Conn + Send + Sync>);
//! impl ice_probe::channel::Transport for IceTransport {
//!     fn send<'a>(&'a self, buf: &'a [u8]) -> ice_probe::channel::IoFuture<'a, ()> {
//!         Box::pin(async move { self.0.send(buf).await.map(drop).map_err(std::io::Error::other) })
//!     }
//!     fn recv<'a>(&'a self, buf: &'a mut [u8]) -> ice_probe::channel::IoFuture<'a, usize> {
//!         Box::pin(async move { self.0.recv(buf).await.map_err(std::io::Error::other) })
//!     }
//! }
//! ```
//!
//! Expectations on a `Transport`: one datagram per call (no streams); `recv`
//! is cancel-safe (dropping its future loses no datagram: [`run`] races it
//! against a timer), as `tokio::net::UdpSocket::recv` and the ICE `Conn`'s
//! buffered `recv` are; a `send` error is counted as a lost datagram; a
//! `recv` error (ICMP unreachable, closed conn) is retried after 5 ms and a
//! lasting one ends the run through `peer_timeout`. Datagrams without our
//! magic (anything else the pair carries) are ignored.

mod driver;
mod receiver;
mod session;
#[cfg(test)]
mod sim;
pub mod wire;

use std::time::Duration;

pub use driver::{run, IoFuture, Transport};
pub use receiver::{percentiles, Jitter};
pub use session::ChannelSession;
pub use wire::PROTOCOL_VERSION;

/// The default bound on the HELLO exchange and on a silent peer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Data: messages in flight by default.
pub const DEFAULT_WINDOW: u32 = 32;
/// Data: datagram size of a message by default.
pub const DEFAULT_MESSAGE_BYTES: usize = wire::MAX_DATAGRAM;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Profile {
    /// `--profile data`: `window` messages of `message_bytes` (datagram
    /// size, header included, at most 1,200) in flight.
    Data { window: u32, message_bytes: usize },
    /// `--profile video`: frames of `bitrate_bps / 8 / fps` payload bytes
    /// every `1 / fps`, judged against `playout`.
    Video {
        bitrate_bps: u64,
        fps: u32,
        playout: Duration,
    },
}

impl Profile {
    /// `--profile data` with the default window and message size.
    pub fn data() -> Self {
        Profile::Data {
            window: DEFAULT_WINDOW,
            message_bytes: DEFAULT_MESSAGE_BYTES,
        }
    }
}

/// One side's settings. Both sides should use the same profile (a
/// mismatch fails clearly); the duration run is the shorter of the two.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelConfig {
    pub profile: Profile,
    /// `--duration`: how long each side sends.
    pub duration: Duration,
    /// The peer must answer HELLO within this, else the run is skipped.
    pub hello_timeout: Duration,
    /// A running peer silent this long has vanished: the run ends.
    pub peer_timeout: Duration,
}

impl ChannelConfig {
    /// The longest [`run`] can take, whatever the peer does: the HELLO
    /// bound, the duration, the data drain, the wait for the peer's end,
    /// and the capped linger. A caller's own timeout should not be shorter.
    pub fn bound(&self) -> Duration {
        self.hello_timeout
            + self.duration
            + session::MAX_RTO
            + self.peer_timeout
            + session::MAX_LINGER
    }

    /// `profile` for `duration`, with the default 2 s bounds.
    pub fn new(profile: Profile, duration: Duration) -> Self {
        ChannelConfig {
            profile,
            duration,
            hello_timeout: DEFAULT_TIMEOUT,
            peer_timeout: DEFAULT_TIMEOUT,
        }
    }
}
