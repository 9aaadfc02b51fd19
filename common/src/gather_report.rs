//! The report of `ice-probe gather` (JSON schema `ice-probe.gather/1`):
//! the Trickle ICE candidate table plus one probe result per STUN/TURN URL.
//!
//! Fields are never removed or renamed within a schema version; optional
//! facts are `null` when not measured (not `false`, not `0`).

use serde::{Deserialize, Serialize};

/// Schema identifier written in every gather report.
pub const GATHER_SCHEMA: &str = "ice-probe.gather/1";

/// One gathering run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GatherReport {
    /// Always [`GATHER_SCHEMA`].
    pub schema: String,
    /// The bound given with `--timeout`, in milliseconds.
    pub timeout_ms: u64,
    /// From start to the end of gathering (or the bound), milliseconds.
    pub elapsed_ms: f64,
    /// Whether the agents said gathering was complete before we stopped
    /// waiting (false: stopped at the bound or when our probe had already
    /// shown that a server would not answer).
    pub gathering_complete: bool,
    /// Loopback addresses were gathered (`--include-loopback`).
    pub include_loopback: bool,
    /// `--interface` names; empty means every interface.
    pub interfaces: Vec<String>,
    /// mDNS host names were used (always false in this version).
    pub mdns: bool,
    /// Candidates in the order the agents produced them.
    pub candidates: Vec<CandidateRow>,
    /// One entry per configured URL, in command-line order.
    pub probes: Vec<UrlProbe>,
    /// Problems closing the ICE agents (empty when they closed cleanly).
    pub agent_errors: Vec<String>,
}

/// One gathered candidate: the columns of the Trickle ICE table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CandidateRow {
    /// Milliseconds since the start of gathering.
    pub time_ms: f64,
    /// 1 = RTP.
    pub component: u16,
    /// host, srflx, prflx, relay.
    #[serde(rename = "type")]
    pub kind: String,
    pub foundation: String,
    /// udp or tcp.
    pub protocol: String,
    pub address: String,
    pub port: u16,
    /// The candidate's priority as the agent computed it.
    pub priority: u32,
    /// priority = 2^24 * type_preference + 2^8 * local_preference + (256 - component)
    pub type_preference: u8,
    pub local_preference: u16,
    /// The low byte: 256 - component.
    pub component_preference: u16,
    /// Related address and port (the base of srflx and relay candidates).
    pub related_address: Option<String>,
    pub related_port: Option<u16>,
    /// The STUN/TURN URL that produced a srflx or relay candidate.
    pub url: Option<String>,
    /// The transport to the TURN server for relay candidates (udp).
    pub relay_protocol: Option<String>,
    /// The candidate line as in SDP (`candidate:...`).
    pub sdp: String,
}

/// What our own probe found for one URL.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UrlProbe {
    /// The URL as given.
    pub url: String,
    /// stun or turn.
    pub kind: String,
    /// The address the URL resolved to (null if it did not resolve).
    pub server_address: Option<String>,
    /// One of [`ProbeStatus`]'s labels: ok, unreachable, error,
    /// not_supported, unresolved.
    pub status: ProbeStatus,
    /// The server answered at all (even with an error). null: not tried.
    pub reachable: Option<bool>,
    /// Round-trip time of the first answered request, milliseconds.
    pub rtt_ms: Option<f64>,
    /// Requests sent before the first answer (or in all, if none came).
    pub requests_sent: u32,
    /// Milliseconds from the first request to the result.
    pub elapsed_ms: f64,
    /// Our address as the server saw it (XOR-MAPPED-ADDRESS).
    pub mapped_address: Option<String>,
    /// TURN only: the allocation, when it succeeded.
    pub allocation: Option<Allocation>,
    /// A STUN error response, when the server sent one.
    pub error: Option<StunError>,
    /// One sentence a person can act on.
    pub detail: String,
}

/// How a URL probe ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    /// Binding answered / TURN allocation succeeded.
    Ok,
    /// Nothing came back within the bound.
    Unreachable,
    /// The server answered with an error (see `error`) or an invalid answer.
    Error,
    /// This probe cannot test the URL (stuns:/turns:, TLS or DTLS).
    NotSupported,
    /// The host name did not resolve.
    Unresolved,
}

impl ProbeStatus {
    pub fn label(self) -> &'static str {
        match self {
            ProbeStatus::Ok => "ok",
            ProbeStatus::Unreachable => "unreachable",
            ProbeStatus::Error => "error",
            ProbeStatus::NotSupported => "not_supported",
            ProbeStatus::Unresolved => "unresolved",
        }
    }
}

/// A TURN allocation that the probe made (and then released).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Allocation {
    /// XOR-RELAYED-ADDRESS.
    pub relayed_address: String,
    /// LIFETIME granted, seconds.
    pub lifetime_s: Option<u32>,
    /// The realm the server asked for.
    pub realm: Option<String>,
    /// The server answered the Refresh with lifetime 0 (deallocation).
    pub released: bool,
}

/// A STUN/TURN error response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StunError {
    /// ERROR-CODE number (e.g. 401, 438, 441).
    pub code: u16,
    /// The reason phrase the server sent.
    pub reason: String,
    /// What the code means for the user.
    pub meaning: String,
}
