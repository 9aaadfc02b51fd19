//! Command-line flags and dispatch. Flag names, JSON fields and exit codes
//! are contracts: change them only with a new schema version.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use common::uri::IceUri;

use crate::bench::{self, BenchOptions};
use crate::error::{exit, ProbeError};
use crate::render::{self, Style};
use crate::time_arg::parse_duration;

const AFTER_HELP: &str = "\
EXIT CODES:
  0  the probe ran and succeeded
  1  it ran and found a failure (nothing reachable, invalid answers)
  2  bad usage or input (unknown flag, malformed URI)
  3  it could not run (cannot open sockets, name does not resolve)

No STUN/TURN server is built in: give the servers to test explicitly.";

#[derive(Debug, Parser)]
#[command(
    name = "ice-probe",
    version,
    about = "Diagnose WebRTC connectivity: STUN server load, candidates, NAT behaviour",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load a STUN server with Binding requests and validate every answer.
    #[command(after_help = BENCH_HELP)]
    Bench(BenchArgs),
}

const BENCH_HELP: &str = "\
Closed loop: each socket keeps --window requests in flight and sends the next
one when an answer arrives. Every answer is checked: Binding success, our
transaction ID, XOR-MAPPED-ADDRESS equal to the socket's own address.

EXAMPLES:
  ice-probe bench stun:127.0.0.1:3478
  ice-probe bench stun:127.0.0.1:3478 --sockets 32 --window 32 --duration 10 \\
      --server-pid $(pidof stun-server) --json
  ice-probe bench stun:127.0.0.1:3478 --distinct-sources 100000 --server-pid PID

JSON (--json): schema \"ice-probe.bench/1\", fields schema, target,
server_address, sockets, threads, window, duration_s, sent, received, lost,
invalid, late, timeout_ms, responses_per_sec, latency_us {p50, p99, p999, max,
mean}, server {pid, cpu_seconds, responses_per_cpu_second, rss_kib_before,
rss_kib_after} or null, distinct_sources {requested, answered, unanswered} or
null.

EXIT CODES: 0 answers received and all valid; 1 no valid answer or any invalid
answer; 2 bad usage; 3 could not run.";

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// STUN server URI, e.g. stun:127.0.0.1:3478
    #[arg(value_name = "stun:HOST:PORT")]
    pub server: IceUri,
    /// UDP sockets (distinct client ports).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=bench::MAX_SOCKETS as i64))]
    pub sockets: u32,
    /// Requests in flight per socket.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=bench::MAX_WINDOW as i64))]
    pub window: u32,
    /// Length of the measured window (e.g. 10, 10s, 1m; at most 10m).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Unmeasured load before the window, to settle caches and buffers.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// A request unanswered for this long counts as lost.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Load-generator threads (sockets are split between them).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub threads: u32,
    /// Also report this process's CPU time and memory over the window.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// First send one request from each of N source addresses in
    /// 127.0.0.0/8 (loopback servers only), to test memory per client.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=bench::MAX_DISTINCT_SOURCES))]
    pub distinct_sources: Option<u64>,
    /// Print the report as JSON (no table, no progress line).
    #[arg(long)]
    pub json: bool,
}

/// Runs the parsed command; returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Bench(a) => run_bench(a),
    }
}

fn run_bench(a: BenchArgs) -> i32 {
    if a.duration.is_zero() || a.duration.as_secs_f64() > bench::MAX_DURATION_S {
        return usage("--duration must be more than 0 and at most 10m");
    }
    if a.warmup.as_secs_f64() > 60.0 {
        return usage("--warmup must be at most 60s");
    }
    if a.timeout < Duration::from_millis(10) || a.timeout > Duration::from_secs(30) {
        return usage("--timeout must be from 10ms to 30s");
    }
    let opts = BenchOptions {
        target: a.server,
        sockets: a.sockets as usize,
        window: a.window as usize,
        duration: a.duration,
        warmup: a.warmup,
        timeout: a.timeout,
        threads: a.threads as usize,
        server_pid: a.server_pid,
        distinct_sources: a.distinct_sources,
        progress: !a.json,
    };
    match bench::run(&opts) {
        Ok(report) => {
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serializes")
                );
            } else {
                print!("{}", render::bench::table(&report, Style::detect()));
            }
            match bench::failed(&report) {
                Some(why) => {
                    if !a.json {
                        eprintln!("ice-probe: {why}");
                    }
                    exit::FAILED
                }
                None => exit::OK,
            }
        }
        Err(e) => fail(e),
    }
}

fn usage(msg: &str) -> i32 {
    fail(ProbeError::Usage(msg.to_string()))
}

fn fail(e: ProbeError) -> i32 {
    eprintln!("ice-probe: {e}");
    e.exit_code()
}
