//! The report of `ice-probe bench` (JSON schema `ice-probe.bench/1`).

use serde::{Deserialize, Serialize};

/// Schema identifier written in every bench report.
pub const BENCH_SCHEMA: &str = "ice-probe.bench/1";

/// One load run against a STUN server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BenchReport {
    /// Always [`BENCH_SCHEMA`].
    pub schema: String,
    /// The URI as given.
    pub target: String,
    /// The address the URI resolved to.
    pub server_address: String,
    pub sockets: usize,
    /// Load-generator threads.
    pub threads: usize,
    /// Requests kept in flight per socket.
    pub window: usize,
    /// Length of the measured window in seconds.
    pub duration_s: f64,
    /// Requests sent in the measured window.
    pub sent: u64,
    /// Valid responses received in the measured window.
    pub received: u64,
    /// Requests that got no answer within `timeout_ms`.
    pub lost: u64,
    /// Datagrams that were not a valid answer to an outstanding request
    /// (wrong transaction ID, bad XOR-MAPPED-ADDRESS, error response...).
    pub invalid: u64,
    /// Valid answers that came after their request was counted lost.
    pub late: u64,
    pub timeout_ms: u64,
    /// `received / duration_s`.
    pub responses_per_sec: f64,
    pub latency_us: Latency,
    /// Present with `--server-pid`.
    pub server: Option<ServerUsage>,
    /// Present with `--distinct-sources`.
    pub distinct_sources: Option<DistinctSources>,
}

/// Round-trip latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// The server process's cost over the measured window (from /proc).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerUsage {
    pub pid: u32,
    /// User + system CPU seconds the server used in the window.
    pub cpu_seconds: f64,
    /// `received / cpu_seconds`: the figure comparable across noisy runs.
    pub responses_per_cpu_second: Option<f64>,
    /// Resident set size before the run, KiB.
    pub rss_kib_before: Option<u64>,
    /// Resident set size after the run, KiB.
    pub rss_kib_after: Option<u64>,
}

/// The spray of single requests from many source addresses.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DistinctSources {
    pub requested: u64,
    pub answered: u64,
    pub unanswered: u64,
}
