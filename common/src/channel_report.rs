//! The report of the channel measurements of `ice-probe connect` (JSON
//! schema piece `ice-probe.channel/1`): what the selected ICE pair carries,
//! in both directions, measured by two ice-probes talking the channel
//! measurement protocol.
//!
//! `outbound` is what we sent and the peer received, `inbound` what the
//! peer sent and we received. Each direction joins the sender's half
//! (packets sent, RTT, frames sent, sending duration) with the receiver's
//! half (packets received, goodput, jitter, frames complete in time); the
//! two sides swap their halves at the end, so both print both directions.
//! A fact is `null` when its half never arrived (the peer vanished) or the
//! profile does not measure it (`rtt_ms` is data only; `jitter_ms`, frames
//! are video only). Fields are never removed or renamed within a schema
//! version.

use serde::{Deserialize, Serialize};

/// Schema identifier written in every channel report.
pub const CHANNEL_SCHEMA: &str = "ice-probe.channel/1";

/// What kind of traffic was measured (`--profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelProfile {
    /// A data channel: echoed messages (RTT) and a windowed sender.
    Data,
    /// A video call: frames paced at the frame rate, split into packets.
    Video,
}

impl ChannelProfile {
    /// The JSON (kebab-case) spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChannelProfile::Data => "data",
            ChannelProfile::Video => "video",
        }
    }
}

impl std::fmt::Display for ChannelProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the measurement ended: `{"state":"completed"}`,
/// `{"state":"skipped","reason":...}` (the peer is not an ice-probe that
/// answers; not an error of the connection) or
/// `{"state":"failed","reason":...}` (version or profile mismatch, the peer
/// stopped answering mid-run; the directions hold what was measured).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum ChannelStatus {
    Completed,
    Skipped { reason: String },
    Failed { reason: String },
}

impl std::fmt::Display for ChannelStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelStatus::Completed => f.write_str("completed"),
            ChannelStatus::Skipped { reason } => write!(f, "skipped: {reason}"),
            ChannelStatus::Failed { reason } => write!(f, "failed: {reason}"),
        }
    }
}

/// Round-trip time distribution of echoed messages, milliseconds
/// (nearest-rank percentiles).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RttMs {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// One direction of the channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DirectionReport {
    /// Measurement packets the sender sent.
    pub sent_packets: Option<u64>,
    /// Distinct measurement packets the receiver got (duplicates dropped).
    pub received_packets: Option<u64>,
    /// `sent_packets - received_packets`.
    pub lost_packets: Option<u64>,
    /// `lost_packets / sent_packets`, percent.
    pub loss_pct: Option<f64>,
    /// Payload bytes received (after the measurement header) x 8 / the
    /// longer of `duration_s` and the spread of the arrivals (a queue on
    /// the path stretches them), bits per second.
    pub goodput_bps: Option<f64>,
    /// Data profile: message RTT as the sender saw it.
    pub rtt_ms: Option<RttMs>,
    /// Video profile: RFC 3550 interarrival jitter at the end, milliseconds.
    pub jitter_ms: Option<f64>,
    /// Video profile: frames the sender sent.
    pub frames_sent: Option<u64>,
    /// Video profile: frames whose packets all arrived within the playout
    /// budget (see the `ice_probe::channel` docs for the exact rule), as a
    /// percentage of `frames_sent`.
    pub frames_complete_in_time_pct: Option<f64>,
    /// How long the sender sent, seconds.
    pub duration_s: Option<f64>,
}

/// The parameters this side measured with (`--profile`, `--duration`...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelSettings {
    /// The agreed duration: the shorter of both sides' `--duration`, seconds.
    pub duration_s: f64,
    /// Data: messages in flight.
    pub window: Option<u32>,
    /// Data: datagram size of a message, bytes.
    pub message_bytes: Option<u32>,
    /// Video: `--bitrate`, bits per second (frame payload).
    pub bitrate_bps: Option<u64>,
    /// Video: `--fps`.
    pub fps: Option<u32>,
    /// Video: `--playout`, milliseconds.
    pub playout_ms: Option<f64>,
}

/// One channel measurement over one ICE pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelReport {
    /// Always [`CHANNEL_SCHEMA`].
    pub schema: String,
    /// The channel measurement protocol version we speak.
    pub protocol_version: u8,
    /// The version the peer spoke, null when it never answered.
    pub peer_protocol_version: Option<u8>,
    pub profile: ChannelProfile,
    pub settings: ChannelSettings,
    pub status: ChannelStatus,
    /// We send, the peer receives. Null when the measurement never started.
    pub outbound: Option<DirectionReport>,
    /// The peer sends, we receive. Null when the measurement never started.
    pub inbound: Option<DirectionReport>,
    /// From the start of the HELLO exchange to the end, seconds.
    pub elapsed_s: f64,
}

impl ChannelReport {
    /// The directions measured, `("outbound", ..)` first.
    pub fn directions(&self) -> impl Iterator<Item = (&'static str, &DirectionReport)> {
        [("outbound", &self.outbound), ("inbound", &self.inbound)]
            .into_iter()
            .filter_map(|(name, d)| d.as_ref().map(|d| (name, d)))
    }

    /// The higher loss of the two directions (what a `--max-loss` check
    /// compares), null when neither direction has it.
    pub fn worst_loss_pct(&self) -> Option<f64> {
        self.directions()
            .filter_map(|(_, d)| d.loss_pct)
            .reduce(f64::max)
    }

    /// The lower goodput of the two directions.
    pub fn min_goodput_bps(&self) -> Option<f64> {
        self.directions()
            .filter_map(|(_, d)| d.goodput_bps)
            .reduce(f64::min)
    }

    /// The higher median message RTT of the two senders (data profile).
    pub fn rtt_p50_ms(&self) -> Option<f64> {
        self.directions()
            .filter_map(|(_, d)| d.rtt_ms.map(|r| r.p50))
            .reduce(f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: ChannelStatus) -> ChannelReport {
        ChannelReport {
            schema: CHANNEL_SCHEMA.to_string(),
            protocol_version: 1,
            peer_protocol_version: Some(1),
            profile: ChannelProfile::Data,
            settings: ChannelSettings {
                duration_s: 5.0,
                window: Some(32),
                message_bytes: Some(1200),
                bitrate_bps: None,
                fps: None,
                playout_ms: None,
            },
            status,
            outbound: Some(DirectionReport {
                loss_pct: Some(1.0),
                goodput_bps: Some(8e6),
                rtt_ms: Some(RttMs {
                    p50: 40.0,
                    p90: 41.0,
                    p99: 45.0,
                    max: 50.0,
                }),
                ..Default::default()
            }),
            inbound: Some(DirectionReport {
                loss_pct: Some(3.0),
                goodput_bps: Some(6e6),
                rtt_ms: None,
                ..Default::default()
            }),
            elapsed_s: 6.1,
        }
    }

    #[test]
    fn status_reads_as_a_sentence() {
        assert_eq!(
            ChannelStatus::Skipped {
                reason: "the peer does not answer (not ice-probe?)".into()
            }
            .to_string(),
            "skipped: the peer does not answer (not ice-probe?)"
        );
        assert_eq!(ChannelStatus::Completed.to_string(), "completed");
    }

    #[test]
    fn the_worst_direction_is_what_checks_compare() {
        let r = report(ChannelStatus::Completed);
        assert_eq!(r.worst_loss_pct(), Some(3.0));
        assert_eq!(r.min_goodput_bps(), Some(6e6));
        assert_eq!(r.rtt_p50_ms(), Some(40.0));
        let none = ChannelReport {
            outbound: None,
            inbound: None,
            ..r
        };
        assert_eq!(none.worst_loss_pct(), None);
    }
}
