//! Command-line flags and dispatch. Flag names, JSON fields and exit codes
//! are contracts: change them only with a new schema version.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use common::uri::IceUri;

use crate::bench::{self, BenchOptions};
use crate::error::{exit, ProbeError};
use crate::gather::{
    self, agent::InterfaceChoice, credentials::Credentials, GatherOptions, TurnAuth,
};
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
    /// Gather ICE candidates (Trickle ICE table) and probe each STUN/TURN URL.
    #[command(after_help = GATHER_HELP)]
    Gather(GatherArgs),
    /// RFC 5780 NAT behaviour discovery: mapping, filtering, hairpinning, lifetime.
    #[command(after_help = NAT_HELP)]
    Nat(NatArgs),
    /// Connect to a peer with ICE (files, pipes or our rendezvous) and report the pair.
    #[command(after_help = CONNECT_HELP)]
    Connect(ConnectArgs),
    /// Two ICE peers in this process through the given servers: the quickest end-to-end check.
    #[command(after_help = SELFTEST_HELP)]
    Selftest(SelftestArgs),
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
        Command::Gather(a) => run_gather(a),
        Command::Nat(a) => run_nat(a),
        Command::Connect(a) => crate::connect::cli::run_connect(a),
        Command::Selftest(a) => crate::connect::cli::run_selftest(a),
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
    report_and_exit(
        bench::run(&opts),
        a.json,
        render::bench::table,
        bench::failed,
    )
}

const GATHER_HELP: &str = "\
Gathers candidates with webrtc-ice (mDNS off) and prints the Trickle ICE
table: time since start, component, type, foundation, protocol, address,
port, priority split into type preference / local preference / (256 -
component), related address, and the URL that produced each srflx/relay
candidate. Beside the agent (which only logs failures) every URL gets our
own probe: a Binding request (reachable, RTT, mapped address), or for TURN
an Allocate with the long-term credential mechanism (401 -> REALM/NONCE ->
USERNAME, MESSAGE-INTEGRITY; a 438 stale nonce is retried once), the
relayed address and lifetime or the STUN error code and its meaning, then
a Refresh with lifetime 0 to release it. Requests are retransmitted as RFC
8489 says, and everything ends within --timeout (a silent server is
reported as unreachable then, not after the agent's fixed 5 s).

turn:...?transport=tcp is probed over TCP (the agent itself gathers no
relay candidate over TCP). stuns: and turns: (TLS/DTLS) are reported as not
supported by this probe. There is no built-in server list.

EXAMPLES:
  ice-probe gather --stun stun:127.0.0.1:3478 --include-loopback
  ice-probe gather --stun stun:YOUR-STUN-HOST --turn turn:YOUR-TURN-HOST:3478 \\
      --username alice --credential secret
  ice-probe gather --turn turn:YOUR-TURN-HOST --turn-secret S --json

JSON (--json): schema \"ice-probe.gather/1\" (documented in
common/src/gather_report.rs): schema, timeout_ms, elapsed_ms,
gathering_complete, include_loopback, interfaces, mdns, candidates [{time_ms,
component, type, foundation, protocol, address, port, priority,
type_preference, local_preference, component_preference, related_address,
related_port, url, relay_protocol, sdp}], probes [{url, kind,
server_address, status (ok|unreachable|error|not_supported|unresolved),
reachable, rtt_ms, requests_sent, elapsed_ms, mapped_address, allocation
{relayed_address, lifetime_s, realm, released}, error {code, reason,
meaning}, detail}], agent_errors. Unmeasured facts are null.

EXIT CODES: 0 candidates gathered and (if URLs were given) at least one URL
worked; 1 no candidate, or no URL worked (unreachable, error, wrong
credentials); 2 bad usage (no URL, malformed URL, flag conflict); 3 could
not run (cannot create the agent, cannot open sockets).";

#[derive(Debug, Args)]
pub struct GatherArgs {
    /// STUN server URL(s), RFC 7064 (e.g. stun:127.0.0.1:3478). Repeatable.
    #[arg(long = "stun", value_name = "URL", num_args = 1.., action = clap::ArgAction::Append)]
    pub stun: Vec<IceUri>,
    /// TURN server URL(s), RFC 7065 (e.g. turn:127.0.0.1:3478?transport=udp). Repeatable.
    #[arg(long = "turn", value_name = "URL", num_args = 1.., action = clap::ArgAction::Append)]
    pub turn: Vec<IceUri>,
    /// TURN username (with --credential), or the user part of --turn-secret names.
    #[arg(long, value_name = "U")]
    pub username: Option<String>,
    /// TURN password for --username (long-term credential mechanism).
    #[arg(long, value_name = "C", conflicts_with = "turn_secret")]
    pub credential: Option<String>,
    /// Shared secret for TURN REST ephemeral credentials (coturn
    /// use-auth-secret): username "<expiry>:<user>", password
    /// base64(HMAC-SHA1(secret, username)).
    #[arg(long, value_name = "S")]
    pub turn_secret: Option<String>,
    /// Gather only on this interface (repeatable; default: all).
    #[arg(long = "interface", value_name = "NAME")]
    pub interfaces: Vec<String>,
    /// Also gather loopback addresses (127.0.0.1, ::1), e.g. for offline tests.
    #[arg(long)]
    pub include_loopback: bool,
    /// Bound for the whole run: probes and gathering (e.g. 3s, 500ms).
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Print the report as JSON (no table, no progress line).
    #[arg(long)]
    pub json: bool,
}

fn run_gather(a: GatherArgs) -> i32 {
    if a.stun.is_empty() && a.turn.is_empty() {
        return usage(
            "gather needs at least one server: --stun stun:HOST[:PORT] and/or --turn turn:HOST[:PORT][?transport=udp] \
             (there is no built-in public server list)",
        );
    }
    if let Some(u) = a.stun.iter().find(|u| u.scheme.is_turn()) {
        return usage(&format!("--stun {u}: a TURN URL goes after --turn"));
    }
    if let Some(u) = a.turn.iter().find(|u| !u.scheme.is_turn()) {
        return usage(&format!("--turn {u}: a STUN URL goes after --stun"));
    }
    if a.timeout < Duration::from_millis(100) || a.timeout > Duration::from_secs(60) {
        return usage("--timeout must be from 100ms to 60s");
    }
    let auth = match (&a.username, &a.credential, &a.turn_secret) {
        (_, Some(_), Some(_)) => {
            return usage("give either --credential or --turn-secret, not both")
        }
        (None, Some(_), None) => return usage("--credential needs --username"),
        (Some(_), None, None) => {
            return usage("--username needs --credential (or --turn-secret for REST credentials)")
        }
        (Some(u), Some(c), None) => TurnAuth::Static(Credentials {
            username: u.clone(),
            password: c.clone(),
        }),
        (u, None, Some(s)) => TurnAuth::RestSecret {
            secret: s.clone(),
            user: u.clone().unwrap_or_default(),
        },
        (None, None, None) => TurnAuth::None,
    };
    let opts = GatherOptions {
        urls: a.stun.iter().chain(&a.turn).cloned().collect(),
        auth,
        choice: InterfaceChoice {
            interfaces: a.interfaces.clone(),
            include_loopback: a.include_loopback,
        },
        timeout: a.timeout,
        progress: !a.json,
    };
    report_and_exit(
        gather::run(&opts),
        a.json,
        render::gather::table,
        gather::failed,
    )
}

const NAT_HELP: &str = "\
RFC 5780 NAT behaviour discovery, per address family (IPv4 and IPv6 each
measured and reported separately; a name resolves to both):
  mapping      endpoint-independent / address-dependent /
               address-and-port-dependent, or no-nat when the mapped address
               is this host's own; without OTHER-ADDRESS, several servers are
               compared (mapping varies by destination)
  filtering    on a fresh socket that never sent to the server's other
               addresses; CHANGE-REQUEST answers are checked to really come
               from the changed address (UDP source and RESPONSE-ORIGIN)
  hairpinning, port preservation, ALG (MAPPED-ADDRESS vs XOR-MAPPED-ADDRESS,
  when the server sends both), binding lifetime (--lifetime, RESPONSE-PORT).
A server that cannot run a test makes that result unknown with the reason
\"server lacks RFC 5780 (...)\", never a wrong verdict. Independent tests run
at once on separate sockets: under 2 s against a reachable server; each test
is bounded by --timeout and the whole run by 4 x --timeout (plus the lifetime
search, which runs alongside: about twice the lifetime, at most ~2 x MAX).
There is no built-in server list.

EXAMPLES:
  stun-server --listen 127.0.0.1:3478 --alternate 127.0.0.2:3479 &
  ice-probe nat stun:127.0.0.1:3478
  ice-probe nat stun:YOUR-RFC5780-SERVER stun:ANOTHER-SERVER --json
  ice-probe nat stun:YOUR-RFC5780-SERVER --lifetime 5m

JSON (--json): schema \"ice-probe.nat/1\" (documented in
common/src/nat_report.rs). Top level, for the primary family (IPv4 if
measured, else IPv6): schema, servers, timeout_ms, elapsed_ms,
primary_family, udp (true/false), mapping (no-nat | endpoint-independent |
address-dependent | address-and-port-dependent | unknown), filtering
(endpoint-independent | address-dependent | address-and-port-dependent |
unknown), nat_type (open | full-cone | restricted-cone | port-restricted-cone
| symmetric | udp-blocked | firewall | unknown), hairpinning (true/false/null),
mapped_address (\"ip:port\" or null), consequence, families [{family, udp,
mapping, mapping_reason, filtering, filtering_reason, nat_type, consequence,
local_address, mapped_address, rfc5780_server, other_address, hairpinning,
port_preservation, alg, mapping_varies_by_destination ({value: true/false/null,
reason}), lifetime {measured, max_s, survived_s, expired_s, reason}, rtt_ms,
servers [{uri, address, answered, rtt_ms, mapped_address, other_address,
response_origin, rfc5780, rfc5780_reason, error_code}], elapsed_ms, error
(why the family could not be probed at all, else null)}].

EXIT CODES: 0 some server answered (whatever the NAT type); 1 no server
answered (UDP blocked or nothing listening); 2 bad usage (no server, malformed
URI, not a stun: URI); 3 could not run (cannot open sockets, name does not
resolve).";

#[derive(Debug, Args)]
pub struct NatArgs {
    /// STUN server URI(s), e.g. stun:127.0.0.1:3478. The first that answers
    /// with a valid OTHER-ADDRESS runs the RFC 5780 tests; every server's
    /// mapping is compared.
    #[arg(value_name = "stun:HOST:PORT")]
    pub servers: Vec<IceUri>,
    /// Bound of each test (filtering, hairpinning wait this long for an answer).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Also search the binding lifetime up to MAX (default 120s), with
    /// RESPONSE-PORT. Put it after the servers, or write --lifetime=MAX.
    #[arg(long, value_name = "MAX", num_args = 0..=1, default_missing_value = "120s", value_parser = parse_duration)]
    pub lifetime: Option<Duration>,
    /// Print the report as JSON (no table, no progress line).
    #[arg(long)]
    pub json: bool,
}

fn run_nat(a: NatArgs) -> i32 {
    if a.servers.is_empty() {
        return usage(
            "nat needs at least one STUN server: ice-probe nat stun:HOST[:PORT] [more servers] \
             (there is no built-in public server list; for RFC 5780 tests run e.g. \
             stun-server --listen IP1:3478 --alternate IP2:3479)",
        );
    }
    if let Some(u) = a
        .servers
        .iter()
        .find(|u| u.scheme != common::uri::Scheme::Stun)
    {
        return usage(&format!(
            "{u}: nat takes stun: URIs (plain UDP STUN), e.g. stun:HOST:3478"
        ));
    }
    if a.timeout < Duration::from_millis(10) || a.timeout > Duration::from_secs(30) {
        return usage("--timeout must be from 10ms to 30s");
    }
    if let Some(l) = a.lifetime {
        if l < Duration::from_secs(1) || l > Duration::from_secs(3600) {
            return usage("--lifetime MAX must be from 1s to 1h");
        }
    }
    let opts = crate::nat::NatOptions {
        servers: a.servers.clone(),
        timeout: a.timeout,
        lifetime: a.lifetime,
        progress: !a.json,
    };
    report_and_exit(
        crate::nat::run(&opts),
        a.json,
        render::nat::table,
        crate::nat::failed,
    )
}

pub use crate::connect::cli::{ConnectArgs, SelftestArgs, CONNECT_HELP, SELFTEST_HELP};

/// Prints a report (JSON, or the table for people) and turns it into the
/// exit code: 1 when `failed` names a failure (said on stderr unless
/// `--json`), 0 otherwise; a run that could not produce a report exits
/// with its error's code.
fn report_and_exit<R: serde::Serialize>(
    result: Result<R, ProbeError>,
    json: bool,
    table: impl Fn(&R, Style) -> String,
    failed: impl Fn(&R) -> Option<String>,
) -> i32 {
    let report = match result {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        );
    } else {
        print!("{}", table(&report, Style::detect()));
    }
    match failed(&report) {
        Some(why) => {
            if !json {
                eprintln!("ice-probe: {why}");
            }
            exit::FAILED
        }
        None => exit::OK,
    }
}

pub(crate) fn usage(msg: &str) -> i32 {
    fail(ProbeError::Usage(msg.to_string()))
}

pub(crate) fn fail(e: ProbeError) -> i32 {
    eprintln!("ice-probe: {e}");
    e.exit_code()
}
