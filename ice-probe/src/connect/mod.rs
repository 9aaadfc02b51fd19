//! `ice-probe connect` and `ice-probe selftest`: a two-peer ICE negotiation
//! on webrtc-ice, bounded by our own `--timeout`.
//!
//! - [`description`]: the signaling wire format (sans-IO)
//! - [`exchange`]: what the peer's messages mean for our agent, role
//!   election (sans-IO)
//! - [`diagnose`]: failed stage, likely cause, assertions (pure)
//! - [`link`], [`files`], [`rendezvous`]: the transports (files and
//!   pipes, our HTTP rendezvous, in-process for selftest)
//! - [`peer`]: the agent shell

pub mod cli;
pub mod description;
pub mod diagnose;
pub mod exchange;
pub mod files;
pub mod link;
pub mod measure;
pub mod peer;
pub mod rendezvous;

use std::time::{Duration, Instant};

use common::connect_report::{ChannelOutcome, ConnectReport, CONNECT_SCHEMA};
use common::uri::IceUri;
use webrtc_ice::url::{ProtoType, SchemeType, Url};

use crate::error::{exit, ProbeError};
use crate::gather::credentials::Credentials;
use crate::resolve::resolve;
use diagnose::{Facts, Requirements};
use exchange::Role;
use files::Place;
use peer::{PeerConfig, PeerOutcome, SignalFault};

/// After connecting, the agent stays open this long so the peer's last
/// checks (its own nomination) are answered before we close.
const LINGER: Duration = Duration::from_millis(300);
/// How long dial/accept may take to hand over the connection after the
/// agent said connected.
const CONN_WAIT: Duration = Duration::from_secs(1);
/// Closing an agent may not take longer.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How the two peers talk.
#[derive(Debug, Clone)]
pub enum Signaling {
    Files {
        local: Place,
        remote: Place,
    },
    Http {
        authority: String,
        room: String,
    },
    /// Both peers in this process.
    Selftest,
}

/// Everything `connect` and `selftest` need.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub signaling: Signaling,
    pub stun: Vec<IceUri>,
    pub turn: Vec<IceUri>,
    pub credentials: Option<Credentials>,
    pub include_loopback: bool,
    pub interfaces: Vec<String>,
    /// Gather relay candidates only (`--relay-only`).
    pub relay_only: bool,
    pub role: Option<Role>,
    pub timeout: Duration,
    pub requirements: Requirements,
    /// The channel measurements after connecting (None: `--duration 0`).
    pub channel: Option<crate::channel::ChannelConfig>,
}

/// The report and the exit code it implies.
pub struct Outcome {
    pub report: ConnectReport,
    pub exit_code: i32,
    /// The one-line reason when the exit code is not 0.
    pub message: Option<String>,
}

/// Runs the negotiation. `Err` only when it could not start at all.
pub fn run(opts: &ConnectOptions) -> Result<Outcome, ProbeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ProbeError::CannotRun(format!("cannot start the async runtime: {e}")))?;
    let r = rt.block_on(run_async(opts));
    // Agent tasks and a blocked stdin read must not keep us alive.
    rt.shutdown_timeout(CLOSE_TIMEOUT);
    r
}

fn ice_url(uri: &IceUri, creds: Option<&Credentials>) -> Result<Url, ProbeError> {
    if uri.transport == Some(common::uri::Transport::Tcp) {
        return Err(ProbeError::Usage(format!(
            "{uri}: the ICE agent gathers relay candidates over UDP only (drop ?transport=tcp)"
        )));
    }
    let addr = resolve(uri)?;
    let host = match addr {
        std::net::SocketAddr::V4(a) => a.ip().to_string(),
        std::net::SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    let turn = uri.scheme.is_turn();
    Ok(Url {
        scheme: if turn {
            SchemeType::Turn
        } else {
            SchemeType::Stun
        },
        host,
        port: addr.port(),
        username: if turn {
            creds.map(|c| c.username.clone()).unwrap_or_default()
        } else {
            String::new()
        },
        password: if turn {
            creds.map(|c| c.password.clone()).unwrap_or_default()
        } else {
            String::new()
        },
        proto: ProtoType::Udp,
    })
}

async fn run_async(opts: &ConnectOptions) -> Result<Outcome, ProbeError> {
    let start = Instant::now();
    let deadline = start + opts.timeout;
    let mut urls = Vec::new();
    for u in opts.stun.iter().chain(&opts.turn) {
        let u = u.clone();
        let creds = opts.credentials.clone();
        let resolved = tokio::time::timeout_at(
            tokio::time::Instant::from_std(deadline),
            tokio::task::spawn_blocking(move || ice_url(&u, creds.as_ref())),
        )
        .await;
        match resolved {
            Ok(Ok(r)) => urls.push(r?),
            _ => {
                return Err(ProbeError::CannotRun(
                    "resolving the STUN/TURN URLs took longer than --timeout".into(),
                ))
            }
        }
    }
    let cfg = PeerConfig {
        urls,
        include_loopback: opts.include_loopback,
        interfaces: opts.interfaces.clone(),
        relay_only: opts.relay_only,
        role: opts.role,
        start,
        deadline,
        vnet: None,
    };
    // Why the peer's description never came, when the transport knows
    // better than "is the other side running?" (the rendezvous does).
    let mut no_description_why = None;
    let (mode, outcome, channel) = match &opts.signaling {
        Signaling::Selftest => {
            let (a_link, b_link) = link::pair();
            let a_agent = peer::new_agent(&cfg).await.map_err(ProbeError::CannotRun)?;
            let b_agent = peer::new_agent(&cfg).await.map_err(ProbeError::CannotRun)?;
            let b_cfg = PeerConfig {
                role: None,
                ..cfg.clone()
            };
            let a_cfg = PeerConfig {
                role: None,
                ..cfg.clone()
            };
            let (a, b) = tokio::join!(
                peer::run(a_cfg, a_agent, a_link),
                peer::run(b_cfg, b_agent, b_link)
            );
            // Both ends measure at once, as two connect processes would.
            let (ca, cb) = tokio::join!(a.conn(CONN_WAIT), b.conn(CONN_WAIT));
            let ch = opts.channel.as_ref();
            let (channel, _) = tokio::join!(
                measure::measure(ca.filter(|_| a.connected), ch),
                measure::measure(cb.filter(|_| b.connected), ch)
            );
            close(&b).await;
            ("selftest", a, channel)
        }
        Signaling::Files { local, remote } => {
            let link = files::link(local, remote).map_err(ProbeError::CannotRun)?;
            let agent = peer::new_agent(&cfg).await.map_err(ProbeError::CannotRun)?;
            let out = peer::run(cfg.clone(), agent, link).await;
            let mode = if *local == Place::Std || *remote == Place::Std {
                "pipe"
            } else {
                "files"
            };
            let channel = after_connect(opts, &out).await;
            (mode, out, channel)
        }
        Signaling::Http { authority, room } => {
            let rv = rendezvous::Rendezvous::resolve(authority, room, deadline)
                .await
                .map_err(ProbeError::CannotRun)?;
            let (link, joined) = rendezvous::link(&rv, opts.role, deadline)
                .await
                .map_err(ProbeError::CannotRun)?;
            let agent = match peer::new_agent(&cfg).await {
                Ok(a) => a,
                Err(e) => {
                    rv.leave(&joined.peer).await;
                    return Err(ProbeError::CannotRun(e));
                }
            };
            let out = peer::run(cfg.clone(), agent, link).await;
            no_description_why = Some(rv.no_description_why(&joined, opts.timeout));
            let channel = after_connect(opts, &out).await;
            rv.leave(&joined.peer).await;
            ("signal", out, channel)
        }
    };
    close(&outcome).await;
    Ok(build(
        opts,
        mode,
        start,
        outcome,
        channel,
        no_description_why,
    ))
}

/// The channel measurements over the selected pair, or (turned off) a
/// short linger so the peer's last checks are answered before we close.
async fn after_connect(opts: &ConnectOptions, out: &PeerOutcome) -> ChannelOutcome {
    if !out.connected {
        return ChannelOutcome::skipped("not connected");
    }
    if opts.channel.is_none() {
        tokio::time::sleep(LINGER).await;
    }
    let conn = out.conn(CONN_WAIT).await;
    measure::measure(conn, opts.channel.as_ref()).await
}

async fn close(p: &PeerOutcome) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, p.agent.close()).await;
}

fn build(
    opts: &ConnectOptions,
    mode: &str,
    start: Instant,
    o: PeerOutcome,
    channel: ChannelOutcome,
    no_description_why: Option<String>,
) -> Outcome {
    let facts = Facts {
        connected: o.connected,
        remote_description: o.remote_description,
        local: &o.local,
        remote: &o.remote,
        pairs: &o.pairs,
        stun_given: !opts.stun.is_empty(),
        turn_given: !opts.turn.is_empty(),
        relay_only: opts.relay_only,
        agent_failed: o.agent_failed,
        no_description_why: no_description_why.as_deref(),
    };
    let diagnosis = diagnose::diagnose(&facts);
    let assertions = diagnose::assertions(&opts.requirements, o.selected.as_ref(), &channel);
    let asserted = assertions.iter().all(|a| a.passed == Some(true));
    let passed = o.connected && asserted;
    let (exit_code, message) = match (&o.fault, &diagnosis) {
        (Some(SignalFault::Bad(e)), _) => (
            exit::USAGE,
            Some(format!("bad signaling input from the peer: {e}")),
        ),
        (Some(SignalFault::Fatal(e)), _) => (exit::CANNOT_RUN, Some(e.clone())),
        (None, Some((common::connect_report::FailedStage::Signaling, why)))
            if !o.remote_description =>
        {
            (
                exit::CANNOT_RUN,
                Some(format!("signaling timed out: {why}")),
            )
        }
        (None, Some((stage, why))) => (
            exit::FAILED,
            Some(format!("not connected ({} failed): {why}", stage.as_str())),
        ),
        (None, None) => {
            // A channel that failed (the peer vanished mid-run, another
            // protocol version) is a failed run even without assertions:
            // only "skipped" is not a failure.
            let mut failures = Vec::new();
            if channel.status == "failed" {
                failures.push(format!(
                    "the channel measurement failed: {}",
                    channel.reason.as_deref().unwrap_or("no reason given")
                ));
            }
            if !asserted {
                let failed: Vec<String> = assertions
                    .iter()
                    .filter(|a| a.passed != Some(true))
                    .map(|a| format!("{}: {}", a.name, a.detail))
                    .collect();
                failures.push(format!("assertion failed: {}", failed.join("; ")));
            }
            if failures.is_empty() {
                (exit::OK, None)
            } else {
                (exit::FAILED, Some(failures.join("; ")))
            }
        }
    };
    let (failed_stage, diagnosis) = match (&o.fault, diagnosis) {
        (Some(SignalFault::Bad(e) | SignalFault::Fatal(e)), _) => (
            Some(common::connect_report::FailedStage::Signaling),
            Some(e.clone()),
        ),
        (None, Some((s, w))) => (Some(s), Some(w)),
        (None, None) => (None, None),
    };
    let report = ConnectReport {
        schema: CONNECT_SCHEMA.to_string(),
        mode: mode.to_string(),
        role: o
            .role
            .map(|r| r.as_str().to_string())
            .unwrap_or_else(|| "unknown".into()),
        timeout_ms: opts.timeout.as_millis() as u64,
        elapsed_ms: start.elapsed().as_secs_f64() * 1000.0,
        connected: o.connected,
        selected_pair: o.selected.clone(),
        time_to_gathered_ms: o.gathered_ms,
        time_to_checking_ms: o.checking_ms,
        time_to_connected_ms: o.connected_ms,
        local_candidates: o.local.clone(),
        remote_candidates: o.remote.clone(),
        pairs: diagnose::count_pairs(&o.pairs),
        pair_list: o.pairs.clone(),
        failed_stage,
        diagnosis,
        channel,
        assertions,
        passed: passed && exit_code == exit::OK,
    };
    Outcome {
        report,
        exit_code,
        message,
    }
}
