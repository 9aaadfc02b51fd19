//! The report of `ice-probe connect` and `ice-probe selftest` (JSON schema
//! `ice-probe.connect/1`): one two-peer ICE negotiation, the pair it
//! selected, how long each stage took, how every checked pair ended, the
//! channel measurements (when built) and the `--require`/`--max-*`
//! assertions.
//!
//! Fields are never removed or renamed within a schema version; facts that
//! were not measured are `null` (not `false`, not `0`).

use serde::{Deserialize, Serialize};

use crate::channel_report::ChannelReport;

/// Schema identifier written in every connect report.
pub const CONNECT_SCHEMA: &str = "ice-probe.connect/1";

/// One negotiation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConnectReport {
    /// Always [`CONNECT_SCHEMA`].
    pub schema: String,
    /// `files`, `pipe`, `signal` (HTTP rendezvous) or `selftest`.
    pub mode: String,
    /// `offer` (controlling) or `answer` (controlled); `selftest` runs both
    /// and reports the offering peer.
    pub role: String,
    /// `--timeout`, milliseconds.
    pub timeout_ms: u64,
    /// From start to the end of the negotiation (or the bound).
    pub elapsed_ms: f64,
    /// A candidate pair was selected and the agent said connected.
    pub connected: bool,
    /// The nominated pair, null when none was selected.
    pub selected_pair: Option<SelectedPair>,
    /// From start to the end of local gathering.
    pub time_to_gathered_ms: Option<f64>,
    /// From start to the agent's `checking` state.
    pub time_to_checking_ms: Option<f64>,
    /// From start to the agent's `connected` state.
    pub time_to_connected_ms: Option<f64>,
    /// Our candidates, in gathering order.
    pub local_candidates: Vec<CandidateInfo>,
    /// The peer's candidates as signaled (learned prflx ones are in pairs).
    pub remote_candidates: Vec<CandidateInfo>,
    /// Counts of pairs by final state.
    pub pairs: PairCounts,
    /// Every pair the agent formed, with its end state.
    pub pair_list: Vec<PairRow>,
    /// When not connected: the stage that failed, else null.
    pub failed_stage: Option<FailedStage>,
    /// When not connected: the likely cause a person can act on.
    pub diagnosis: Option<String>,
    /// The data-channel measurements over the selected pair.
    pub channel: ChannelOutcome,
    /// `--require`, `--max-loss`, `--min-goodput`, `--max-rtt` results.
    pub assertions: Vec<Assertion>,
    /// connected, the channel did not fail, and every assertion passed
    /// (exit 0).
    pub passed: bool,
}

/// Where a failed negotiation stopped.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FailedStage {
    /// Our own candidates could not be gathered.
    Gathering,
    /// The peer's description never arrived or was unusable.
    Signaling,
    /// Checks ran but no pair succeeded before the bound.
    Checking,
}

impl FailedStage {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FailedStage::Gathering => "gathering",
            FailedStage::Signaling => "signaling",
            FailedStage::Checking => "checking",
        }
    }
}

/// The selected (nominated) candidate pair.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SelectedPair {
    pub local: Endpoint,
    pub remote: Endpoint,
    /// Either side is a peer-reflexive candidate learned from checks: the
    /// address was not (yet) signaled, because of a NAT in between or
    /// because the peer's checks arrived before its trickled candidate.
    pub prflx_learned: bool,
    /// Either side is a relay candidate (TURN).
    pub relayed: bool,
}

/// One side of a pair.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    /// host, srflx, prflx or relay.
    #[serde(rename = "type")]
    pub kind: String,
    pub address: String,
    pub port: u16,
    /// udp or tcp.
    pub protocol: String,
}

/// A candidate as exchanged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CandidateInfo {
    #[serde(rename = "type")]
    pub kind: String,
    pub address: String,
    pub port: u16,
    pub protocol: String,
    pub priority: u32,
    /// The RFC 8839 attribute value, `candidate:...`.
    pub sdp: String,
}

/// Pairs by the state they ended in.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PairCounts {
    /// Pairs the agent formed.
    pub total: u32,
    /// Pairs with at least one check sent (in-progress, failed, succeeded).
    pub tried: u32,
    pub succeeded: u32,
    pub failed: u32,
    pub in_progress: u32,
    /// Never checked.
    pub waiting: u32,
}

/// One candidate pair from the agent's stats.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PairRow {
    pub local: Endpoint,
    pub remote: Endpoint,
    /// waiting, in-progress, failed, succeeded.
    pub state: String,
    pub nominated: bool,
}

/// The channel measurements (loss, goodput, RTT) over the selected pair.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChannelOutcome {
    /// `measured`, `skipped` or `failed`.
    pub status: String,
    /// Why skipped or failed.
    pub reason: Option<String>,
    /// Percent of probe packets lost (the worse direction), null when not
    /// measured.
    pub loss_percent: Option<f64>,
    /// Bits per second (the lower direction), null when not measured.
    pub goodput_bps: Option<f64>,
    /// Median round-trip time (the higher of the two senders'), null when
    /// not measured.
    pub rtt_ms: Option<f64>,
    /// The full measurement (schema `ice-probe.channel/1`), null when it
    /// did not run.
    pub report: Option<ChannelReport>,
}

impl ChannelOutcome {
    /// Not measured, with the reason.
    pub fn skipped(reason: &str) -> Self {
        ChannelOutcome {
            status: "skipped".to_string(),
            reason: Some(reason.to_string()),
            loss_percent: None,
            goodput_bps: None,
            rtt_ms: None,
            report: None,
        }
    }

    /// From a channel measurement: the worse direction of each figure.
    pub fn from_report(r: ChannelReport) -> Self {
        use crate::channel_report::ChannelStatus;
        let (status, reason) = match &r.status {
            ChannelStatus::Completed => ("measured", None),
            ChannelStatus::Skipped { reason } => ("skipped", Some(reason.clone())),
            ChannelStatus::Failed { reason } => ("failed", Some(reason.clone())),
        };
        ChannelOutcome {
            status: status.to_string(),
            reason,
            loss_percent: r.worst_loss_pct(),
            goodput_bps: r.min_goodput_bps(),
            rtt_ms: r.rtt_p50_ms(),
            report: Some(r),
        }
    }
}

/// One assertion from the command line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Assertion {
    /// The flag as given, e.g. `--require direct`, `--max-rtt 50`.
    pub name: String,
    /// true passed, false failed, null could not be evaluated (e.g. the
    /// channel was not measured; counts as failed for the exit code).
    pub passed: Option<bool>,
    pub detail: String,
}
