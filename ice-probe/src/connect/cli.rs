//! Flags of `connect` and `selftest` (contracts: names, JSON fields, exit
//! codes change only with a new schema version).

use std::time::Duration;

use clap::Args;
use common::uri::IceUri;

use super::diagnose::{parse_rate, Requirements};
use super::exchange::Role;
use super::files::Place;
use super::rendezvous::{check_room, parse_signal_url};
use super::{ConnectOptions, Signaling};
use crate::channel::{ChannelConfig, Profile};
use crate::cli::{fail, usage};
use crate::error::exit;
use crate::gather::credentials::Credentials;
use crate::render::{self, Style};
use crate::time_arg::parse_duration;

pub const CONNECT_HELP: &str = "\
Connects this host to a peer with ICE (webrtc-ice; mDNS off) and reports the
selected pair (type, address, port, protocol of each side; prflx learned),
the time to gathered / checking / connected, every candidate pair the agent
formed and how its checks ended, and on failure the stage that failed and
the likely cause. Everything ends within --timeout: the agent never gives up
by itself.

SIGNALING (one JSON object per line):
  {\"type\":\"ice-description\",\"version\":1,\"ufrag\":\"..\",\"pwd\":\"..\",
   \"candidates\":[\"candidate:..\"],\"end_of_candidates\":true}
  then optionally {\"type\":\"candidate\",\"candidate\":\"candidate:..\"} and
  {\"type\":\"end-of-candidates\"}. Candidates are RFC 8839 attribute values
  (RTCIceCandidate.candidate); the prefix is optional when reading; unknown
  fields and types are ignored.
  --local FILE --remote FILE   write ours when gathering ends (temp file +
                               rename), poll for the peer's until it appears
  --local - --remote -         trickle on stdout, read stdin (pipes, ssh)
  --signal http://HOST:PORT --room NAME
                               our stun-server's rendezvous (stun-server
                               --http ADDR): the first to join offers
Who offers (controlling, nominates): --role, else the rendezvous's
assignment, else the opposite of the peer's (a description carries
\"role\":\"offer\"|\"answer\" when its peer was told one), else the peer
with the smaller ufrag. Both told the same role is bad input (exit 2).

CHANNEL: once connected, both peers measure the selected pair for
--duration (default 2s; 0 turns it off) in both directions at once:
--profile data (echoed 1,200-byte messages: RTT p50/p90/p99/max, loss,
goodput) or --profile video (--bitrate, --fps, --playout: loss, RFC 3550
jitter, frames complete in time). A peer that does not answer (not an
ice-probe, or --duration 0) makes the channel \"skipped\", not a failure;
one that stops answering mid-run (it exited, the path broke) makes it
\"failed\" within 2 s, and the run fails (exit 1).
--timeout bounds the negotiation; the channel adds --duration plus at most
a few seconds of its own bounds.

ASSERTIONS (exit 1 when one fails):
  --require direct      fail if only a relay (TURN) pair works
  --max-loss PCT        fail if the worse direction lost more
  --min-goodput RATE    fail if the slower direction carried less (bits/s:
                        500k, 2M, 2Mbit; 1MB = bytes)
  --max-rtt MS          fail if the median message RTT is higher (data)
  A channel assertion that could not be evaluated (channel skipped or
  failed) fails.

EXAMPLES:
  # two shells on one machine
  ice-probe connect --local a.json --remote b.json --include-loopback
  ice-probe connect --local b.json --remote a.json --include-loopback
  # two machines through our rendezvous
  stun-server --listen 0.0.0.0:3478 --http 0.0.0.0:8080
  ice-probe connect --signal http://SERVER:8080 --room call1 --stun stun:SERVER:3478
  ice-probe connect --signal http://SERVER:8080 --room call1 --stun stun:SERVER:3478 \\
      --require direct --json

JSON (--json): schema \"ice-probe.connect/1\" (documented in
common/src/connect_report.rs): schema, mode (files|pipe|signal|selftest),
role, timeout_ms, elapsed_ms, connected, selected_pair {local {type
(host|srflx|prflx|relay), address, port, protocol}, remote {..},
prflx_learned, relayed} or null, time_to_gathered_ms, time_to_checking_ms,
time_to_connected_ms, local_candidates / remote_candidates [{type, address,
port, protocol, priority, sdp}], pairs {total, tried, succeeded, failed,
in_progress, waiting}, pair_list [{local, remote, state, nominated}],
failed_stage (gathering|signaling|checking) or null, diagnosis, channel
{status (measured|skipped|failed), reason, loss_percent, goodput_bps,
rtt_ms, report (the full \"ice-probe.channel/1\" report or null)},
assertions [{name, passed (true|false|null), detail}], passed.
With --local - stdout carries signaling: the table goes to stderr and
--report FILE writes the JSON.

EXIT CODES: 0 connected and every assertion passed; 1 ran and failed (no
pair connected, the channel failed, or an assertion failed); 2 bad usage or
bad input (flags, or the peer sent garbage: not JSON, a malformed
candidate, a second set of credentials); 3 could not run (signaling
unreachable, or the peer's description did not arrive within --timeout;
cannot create the agent).";

pub const SELFTEST_HELP: &str = "\
Runs both peers in this process, each gathering through the given servers
(srflx through --stun, relay through --turn), signaling in memory: the
quickest end-to-end check of a STUN/TURN deployment for CI. The report is
the offering peer's; the JSON and exit codes are those of connect.

EXAMPLES:
  ice-probe selftest --stun stun:127.0.0.1:3478 --include-loopback
  ice-probe selftest --stun stun:SERVER --turn turn:SERVER --username U \\
      --credential P --require direct --json";

/// Flags shared by connect and selftest.
#[derive(Debug, Args)]
pub struct IceFlags {
    /// STUN server URL(s) for srflx candidates, e.g. stun:127.0.0.1:3478. Repeatable.
    #[arg(long = "stun", value_name = "URL", num_args = 1.., action = clap::ArgAction::Append)]
    pub stun: Vec<IceUri>,
    /// TURN server URL(s) for relay candidates (UDP). Repeatable.
    #[arg(long = "turn", value_name = "URL", num_args = 1.., action = clap::ArgAction::Append)]
    pub turn: Vec<IceUri>,
    /// TURN username.
    #[arg(long, value_name = "U", requires = "credential")]
    pub username: Option<String>,
    /// TURN password.
    #[arg(long, value_name = "C", requires = "username")]
    pub credential: Option<String>,
    /// Gather only on this interface (repeatable; default: all).
    #[arg(long = "interface", value_name = "NAME")]
    pub interfaces: Vec<String>,
    /// Also use loopback addresses (two peers on one machine, offline tests).
    #[arg(long)]
    pub include_loopback: bool,
    /// Gather only relay candidates (TURN), as a browser with
    /// iceTransportPolicy "relay": proves the relay path works. Needs --turn.
    #[arg(long, requires = "turn")]
    pub relay_only: bool,
    /// Bound for the whole negotiation (e.g. 15s, 500ms).
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Fail (exit 1) unless the pair is direct: `--require direct`.
    #[arg(long, value_name = "direct", value_parser = ["direct"])]
    pub require: Option<String>,
    /// Fail if the channel loses more than PCT percent.
    #[arg(long, value_name = "PCT")]
    pub max_loss: Option<f64>,
    /// Fail if the channel's goodput is below RATE (bits/s; 500k, 2M, 1MB).
    #[arg(long, value_name = "RATE")]
    pub min_goodput: Option<String>,
    /// Fail if the channel's round-trip time is above MS milliseconds.
    #[arg(long, value_name = "MS")]
    pub max_rtt: Option<f64>,
    /// After connecting, measure the channel for this long in both
    /// directions (the peer must measure too); 0 turns it off.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Channel traffic: data (a window of echoed 1,200-byte messages: RTT,
    /// loss, goodput) or video (paced frames: loss, jitter, frames in time).
    #[arg(long, default_value = "data", value_parser = ["data", "video"])]
    pub profile: String,
    /// Video profile: frame payload rate (bits/s; 2.5M, 800k).
    #[arg(long, value_name = "RATE", default_value = "2.5M")]
    pub bitrate: String,
    /// Video profile: frames per second.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=240))]
    pub fps: u32,
    /// Video profile: a frame is in time if complete within this budget.
    #[arg(long, default_value = "150ms", value_parser = parse_duration)]
    pub playout: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to FILE (useful when stdout carries signaling).
    #[arg(long, value_name = "FILE")]
    pub report: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Where to write our description (a file, or - for stdout).
    #[arg(
        long,
        value_name = "FILE",
        requires = "remote",
        conflicts_with = "signal"
    )]
    pub local: Option<String>,
    /// Where to read the peer's (a file, polled until it appears; - for stdin).
    #[arg(
        long,
        value_name = "FILE",
        requires = "local",
        conflicts_with = "signal"
    )]
    pub remote: Option<String>,
    /// Our rendezvous, http://HOST:PORT (stun-server --http).
    #[arg(long, value_name = "URL", requires = "room")]
    pub signal: Option<String>,
    /// Room name at the rendezvous (both peers use the same).
    #[arg(long, value_name = "NAME", requires = "signal")]
    pub room: Option<String>,
    /// Who offers (controlling): offer or answer.
    #[arg(long, value_parser = ["offer", "answer"])]
    pub role: Option<String>,
    #[command(flatten)]
    pub ice: IceFlags,
}

#[derive(Debug, Args)]
pub struct SelftestArgs {
    #[command(flatten)]
    pub ice: IceFlags,
}

fn options(
    ice: &IceFlags,
    signaling: Signaling,
    role: Option<Role>,
) -> Result<ConnectOptions, String> {
    if let Some(u) = ice.stun.iter().find(|u| u.scheme.is_turn()) {
        return Err(format!("--stun {u}: a TURN URL goes after --turn"));
    }
    if let Some(u) = ice.turn.iter().find(|u| !u.scheme.is_turn()) {
        return Err(format!("--turn {u}: a STUN URL goes after --stun"));
    }
    if let Some(u) = ice.stun.iter().chain(&ice.turn).find(|u| {
        matches!(
            u.scheme,
            common::uri::Scheme::Stuns | common::uri::Scheme::Turns
        )
    }) {
        return Err(format!(
            "{u}: TLS (stuns:/turns:) is not supported by the ICE agent here"
        ));
    }
    if ice.timeout < Duration::from_millis(100) || ice.timeout > Duration::from_secs(300) {
        return Err("--timeout must be from 100ms to 300s".into());
    }
    if let Some(l) = ice.max_loss {
        if !(0.0..=100.0).contains(&l) {
            return Err("--max-loss must be a percentage from 0 to 100".into());
        }
    }
    if let Some(r) = ice.max_rtt {
        if !(r.is_finite() && r > 0.0) {
            return Err("--max-rtt must be a positive number of milliseconds".into());
        }
    }
    let min_goodput_bps = ice
        .min_goodput
        .as_deref()
        .map(|r| parse_rate(r).map_err(|e| format!("--min-goodput {e}")))
        .transpose()?;
    if ice.duration > Duration::from_secs(600) {
        return Err("--duration must be at most 10m".into());
    }
    let channel = if ice.duration.is_zero() {
        None
    } else {
        let profile = if ice.profile == "video" {
            let bitrate = parse_rate(&ice.bitrate).map_err(|e| format!("--bitrate {e}"))?;
            if !(1e3..=1e9).contains(&bitrate) {
                return Err("--bitrate must be from 1k to 1G".into());
            }
            Profile::Video {
                bitrate_bps: bitrate as u64,
                fps: ice.fps,
                playout: ice.playout,
            }
        } else {
            Profile::data()
        };
        Some(ChannelConfig::new(profile, ice.duration))
    };
    Ok(ConnectOptions {
        channel,
        signaling,
        stun: ice.stun.clone(),
        turn: ice.turn.clone(),
        credentials: match (&ice.username, &ice.credential) {
            (Some(u), Some(c)) => Some(Credentials {
                username: u.clone(),
                password: c.clone(),
            }),
            _ => None,
        },
        include_loopback: ice.include_loopback,
        interfaces: ice.interfaces.clone(),
        relay_only: ice.relay_only,
        role,
        timeout: ice.timeout,
        requirements: Requirements {
            direct: ice.require.is_some(),
            max_loss_percent: ice.max_loss,
            min_goodput_bps,
            max_rtt_ms: ice.max_rtt,
        },
    })
}

pub fn run_connect(a: ConnectArgs) -> i32 {
    let signaling = match (&a.local, &a.remote, &a.signal, &a.room) {
        (Some(l), Some(r), None, None) => {
            if l == r && l != "-" {
                return usage("--local and --remote must be different files");
            }
            Signaling::Files {
                local: Place::parse(l),
                remote: Place::parse(r),
            }
        }
        (None, None, Some(s), Some(room)) => {
            let authority = match parse_signal_url(s) {
                Ok(a) => a,
                Err(e) => return usage(&e),
            };
            if let Err(e) = check_room(room) {
                return usage(&e);
            }
            Signaling::Http {
                authority,
                room: room.clone(),
            }
        }
        _ => {
            return usage(
                "connect needs signaling: --local FILE --remote FILE (or - for stdout/stdin), \
                 or --signal http://HOST:PORT --room NAME",
            )
        }
    };
    let json_on_stdout_ok = !matches!(
        &signaling,
        Signaling::Files {
            local: Place::Std,
            ..
        }
    );
    if a.ice.json && !json_on_stdout_ok {
        return usage(
            "--json with --local -: stdout carries signaling; write the report with --report FILE",
        );
    }
    let role = a.role.as_deref().and_then(Role::parse);
    match options(&a.ice, signaling, role) {
        Ok(o) => execute(&o, &a.ice, json_on_stdout_ok),
        Err(e) => usage(&e),
    }
}

pub fn run_selftest(a: SelftestArgs) -> i32 {
    match options(&a.ice, Signaling::Selftest, None) {
        Ok(o) => execute(&o, &a.ice, true),
        Err(e) => usage(&e),
    }
}

fn execute(o: &ConnectOptions, ice: &IceFlags, stdout_free: bool) -> i32 {
    let out = match super::run(o) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let json = serde_json::to_string_pretty(&out.report).expect("report serializes");
    if let Some(path) = &ice.report {
        if let Err(e) = std::fs::write(path, format!("{json}\n")) {
            eprintln!("ice-probe: --report {path}: cannot write it: {e}");
            return exit::CANNOT_RUN;
        }
    }
    if ice.json {
        println!("{json}");
    } else if stdout_free {
        print!("{}", render::connect::table(&out.report, Style::detect()));
    } else {
        // stdout carries signaling: the table goes to stderr.
        eprint!("{}", render::connect::table(&out.report, Style::plain()));
    }
    if let Some(m) = &out.message {
        eprintln!("ice-probe: {m}");
    }
    out.exit_code
}
