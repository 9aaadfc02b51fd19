//! Our own probe of each STUN/TURN URL, beside the ICE agent (which only
//! logs failures): a Binding request, or a TURN Allocate and its release.
//! The tokio shell around `Transaction` (retransmission) and
//! `AllocateFlow` (the TURN decisions).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::gather_report::{Allocation, ProbeStatus, StunError, UrlProbe};
use common::stun::{binding_request, Class, Message};
use common::uri::{IceUri, Scheme, Transport};
use tokio::net::UdpSocket;

use super::credentials::Credentials;
use super::turn_probe::{error_meaning, AllocateFlow, AllocateResult, ErrorResponse, Step};
use crate::error::ProbeError;
use crate::stun_client::{new_transaction_id, run_on_socket, Outcome, Transaction, DEFAULT_RTO};

/// The release of an allocation may run this far past the deadline, so
/// that a slow server does not keep an allocation we made.
pub const RELEASE_GRACE: Duration = Duration::from_millis(500);

/// Why this probe cannot test `uri`, if it cannot.
pub fn unsupported(uri: &IceUri) -> Option<&'static str> {
    match (uri.scheme, uri.transport) {
        (Scheme::Stuns, _) | (Scheme::Turns, _) => Some(
            "TLS/DTLS (stuns:/turns:) is not supported by this probe; test the plain stun:/turn: port",
        ),
        (Scheme::Turn, Some(Transport::Tcp)) => Some(
            "TURN over TCP is not supported by this probe (nor by the webrtc-ice agent, which only logs it); use ?transport=udp",
        ),
        _ => None,
    }
}

/// A result for a URL that was not probed.
pub fn not_probed(uri: &IceUri, status: ProbeStatus, detail: String) -> UrlProbe {
    UrlProbe {
        url: uri.to_string(),
        kind: kind(uri).to_string(),
        server_address: None,
        status,
        reachable: None,
        rtt_ms: None,
        requests_sent: 0,
        elapsed_ms: 0.0,
        mapped_address: None,
        allocation: None,
        error: None,
        detail,
    }
}

fn kind(uri: &IceUri) -> &'static str {
    if uri.scheme.is_turn() {
        "turn"
    } else {
        "stun"
    }
}

async fn bind_for(server: SocketAddr) -> Result<UdpSocket, ProbeError> {
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("literal")
    } else {
        "[::]:0".parse().expect("literal")
    };
    UdpSocket::bind(local).await.map_err(|e| {
        ProbeError::CannotRun(format!("cannot open a UDP socket to probe {server}: {e}"))
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn stun_error(e: &ErrorResponse) -> StunError {
    StunError {
        code: e.code,
        reason: e.reason.clone(),
        meaning: error_meaning(e.code).to_string(),
    }
}

/// Probes `uri` at `server`, finishing by `deadline` (a TURN release may
/// take [`RELEASE_GRACE`] more).
pub async fn probe_url(
    uri: &IceUri,
    server: SocketAddr,
    creds: Option<Credentials>,
    deadline: Instant,
) -> Result<UrlProbe, ProbeError> {
    let sock = bind_for(server).await?;
    let started = Instant::now();
    let mut p = not_probed(uri, ProbeStatus::Unreachable, String::new());
    p.server_address = Some(server.to_string());
    if uri.scheme.is_turn() {
        turn(&sock, server, creds, deadline, &mut p).await?;
    } else {
        binding(&sock, server, deadline, &mut p).await?;
    }
    p.elapsed_ms = ms(started.elapsed());
    Ok(p)
}

async fn binding(
    sock: &UdpSocket,
    server: SocketAddr,
    deadline: Instant,
    p: &mut UrlProbe,
) -> Result<(), ProbeError> {
    let tid = new_transaction_id();
    let mut buf = [0u8; 64];
    let n = binding_request(&mut buf, &tid, 0, None, false).expect("fits");
    let now = Instant::now();
    let mut txs = [Transaction::new(
        buf[..n].to_vec(),
        tid,
        server,
        now,
        deadline.saturating_duration_since(now),
        DEFAULT_RTO,
    )];
    run_on_socket(sock, &mut txs)
        .await
        .map_err(|e| ProbeError::CannotRun(format!("UDP socket error probing {server}: {e}")))?;
    match txs[0].outcome() {
        Some(Outcome::Answered {
            rtt,
            retransmits,
            bytes,
            from,
        }) => {
            p.reachable = Some(true);
            p.rtt_ms = Some(ms(*rtt));
            p.requests_sent = retransmits + 1;
            let m = match Message::parse(bytes, false) {
                Ok(m) => m,
                Err(e) => {
                    p.status = ProbeStatus::Error;
                    p.detail = format!("invalid answer from {from}: {e}");
                    return Ok(());
                }
            };
            match m.class() {
                Class::SuccessResponse => match m.xor_mapped_address() {
                    Some(a) => {
                        p.status = ProbeStatus::Ok;
                        p.mapped_address = Some(a.to_string());
                        p.detail = format!("Binding answered; the server sees us as {a}");
                    }
                    None => {
                        p.status = ProbeStatus::Error;
                        p.detail = "Binding success without XOR-MAPPED-ADDRESS".into();
                    }
                },
                Class::ErrorResponse => {
                    let (code, reason) = m.error_code().unwrap_or((0, ""));
                    let e = ErrorResponse {
                        code,
                        reason: reason.to_string(),
                    };
                    p.status = ProbeStatus::Error;
                    p.detail = format!("Binding error {code} {reason}: {}", error_meaning(code));
                    p.error = Some(stun_error(&e));
                }
                c => {
                    p.status = ProbeStatus::Error;
                    p.detail = format!("answer of class {c:?} to a Binding request");
                }
            }
        }
        Some(Outcome::TimedOut { sends, waited }) => {
            p.reachable = Some(false);
            p.requests_sent = *sends;
            p.status = ProbeStatus::Unreachable;
            p.detail = format!(
                "no answer to {sends} Binding requests in {:.0} ms (server down, port closed or UDP blocked)",
                ms(*waited)
            );
        }
        None => unreachable!("run_on_socket returns when every transaction is done"),
    }
    Ok(())
}

async fn turn(
    sock: &UdpSocket,
    server: SocketAddr,
    creds: Option<Credentials>,
    deadline: Instant,
    p: &mut UrlProbe,
) -> Result<(), ProbeError> {
    let mut flow = AllocateFlow::new(creds);
    let mut step = flow.start(new_transaction_id());
    let mut answered = false;
    let mut sends = 0u32;
    let outcome = loop {
        let (request, tid) = match step {
            Step::Done(o) => break o,
            Step::Send {
                request,
                transaction_id,
            } => (request, transaction_id),
        };
        let now = Instant::now();
        let mut budget = deadline.saturating_duration_since(now);
        if flow.is_releasing() {
            budget = budget.max(RELEASE_GRACE);
        }
        if budget.is_zero() {
            break flow.handle_no_answer();
        }
        let mut txs = [Transaction::new(
            request,
            tid,
            server,
            now,
            budget,
            DEFAULT_RTO,
        )];
        run_on_socket(sock, &mut txs).await.map_err(|e| {
            ProbeError::CannotRun(format!("UDP socket error probing {server}: {e}"))
        })?;
        match txs[0].outcome() {
            Some(Outcome::Answered {
                rtt,
                retransmits,
                bytes,
                ..
            }) => {
                if !answered {
                    p.rtt_ms = Some(ms(*rtt));
                }
                answered = true;
                sends += retransmits + 1;
                step = flow.handle_answer(bytes, new_transaction_id());
            }
            Some(Outcome::TimedOut { sends: s, .. }) => {
                sends += s;
                break flow.handle_no_answer();
            }
            None => unreachable!("run_on_socket returns when every transaction is done"),
        }
    };
    p.requests_sent = sends;
    p.reachable = Some(answered);
    match outcome.result {
        AllocateResult::Allocated(a) => {
            p.status = ProbeStatus::Ok;
            p.mapped_address = a.mapped.map(|m| m.to_string());
            let released = outcome.released == Some(true);
            p.detail = format!(
                "allocated relay {} for {}; {}",
                a.relayed,
                a.lifetime_s
                    .map(|l| format!("{l} s"))
                    .unwrap_or_else(|| "an unstated lifetime".into()),
                if released {
                    "released (Refresh lifetime 0)"
                } else {
                    "the release got no success answer: it expires on its own"
                }
            );
            if outcome.integrity_ok == Some(false) {
                p.detail
                    .push_str("; warning: the answer's MESSAGE-INTEGRITY does not match our key");
            }
            p.allocation = Some(Allocation {
                relayed_address: a.relayed.to_string(),
                lifetime_s: a.lifetime_s,
                realm: outcome.realm,
                released,
            });
        }
        AllocateResult::Rejected { error, context } => {
            p.status = ProbeStatus::Error;
            p.detail = format!(
                "Allocate error {} {}: {}; {}",
                error.code,
                error.reason,
                error_meaning(error.code),
                context
            );
            p.error = Some(stun_error(&error));
        }
        AllocateResult::Invalid(why) => {
            p.status = ProbeStatus::Error;
            p.detail = format!("invalid answer: {why}");
        }
        AllocateResult::NoAnswer { after } => {
            p.status = ProbeStatus::Unreachable;
            p.detail = if answered {
                format!("the server stopped answering after {after}")
            } else {
                format!(
                    "no answer to {sends} Allocate requests (server down, port closed or UDP blocked)"
                )
            };
        }
    }
    Ok(())
}
