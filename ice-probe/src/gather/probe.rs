//! Our own probe of each STUN/TURN URL, beside the ICE agent (which only
//! logs failures): a Binding request, or a TURN Allocate and its release.
//! The tokio shell around `Transaction` (retransmission) and
//! `AllocateFlow` (the TURN decisions).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::gather_report::{Allocation, ProbeStatus, StunError, UrlProbe};
use common::stun::{binding_request, Class, Message};
use common::uri::{IceUri, Scheme, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

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
    let started = Instant::now();
    let mut p = not_probed(uri, ProbeStatus::Unreachable, String::new());
    p.server_address = Some(server.to_string());
    if uri.scheme.is_turn() && uri.transport == Some(Transport::Tcp) {
        let connect = tokio::time::timeout_at(
            tokio::time::Instant::from_std(deadline),
            TcpStream::connect(server),
        )
        .await;
        match connect {
            Ok(Ok(stream)) => {
                let mut t = Channel::Tcp(stream);
                turn(&mut t, server, creds, deadline, &mut p).await?;
                p.detail.push_str(TCP_AGENT_NOTE);
            }
            Ok(Err(e)) => {
                p.reachable = Some(false);
                p.detail = format!("TCP connect to {server} failed: {e}");
            }
            Err(_) => {
                p.reachable = Some(false);
                p.detail = format!("TCP connect to {server} did not complete within the bound");
            }
        }
    } else if uri.scheme.is_turn() {
        let sock = bind_for(server).await?;
        turn(&mut Channel::Udp(sock), server, creds, deadline, &mut p).await?;
    } else {
        let sock = bind_for(server).await?;
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

/// The webrtc-ice agent cannot gather relay candidates over TCP.
const TCP_AGENT_NOTE: &str =
    " (over TCP; the webrtc-ice agent gathers no relay candidate over TCP, so none is listed)";

/// How TURN requests travel: UDP with RFC 8489 retransmissions, or one
/// TCP connection (reliable: sent once, framed by the STUN length field).
enum Channel {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

/// What one request got.
enum Exchange {
    Answer {
        bytes: Vec<u8>,
        rtt: Duration,
        sends: u32,
    },
    NoAnswer {
        sends: u32,
    },
}

impl Channel {
    async fn exchange(
        &mut self,
        server: SocketAddr,
        request: Vec<u8>,
        tid: [u8; 12],
        budget: Duration,
    ) -> Result<Exchange, ProbeError> {
        let now = Instant::now();
        match self {
            Channel::Udp(sock) => {
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
                Ok(match txs[0].outcome() {
                    Some(Outcome::Answered {
                        rtt,
                        retransmits,
                        bytes,
                        ..
                    }) => Exchange::Answer {
                        bytes: bytes.clone(),
                        rtt: *rtt,
                        sends: retransmits + 1,
                    },
                    Some(Outcome::TimedOut { sends, .. }) => Exchange::NoAnswer { sends: *sends },
                    None => unreachable!("run_on_socket returns when every transaction is done"),
                })
            }
            Channel::Tcp(stream) => {
                let until = tokio::time::Instant::from_std(now + budget);
                let answer = tokio::time::timeout_at(until, async {
                    stream.write_all(&request).await?;
                    loop {
                        let frame = read_stun_frame(stream).await?;
                        if frame.len() >= 20 && frame[8..20] == tid {
                            return Ok::<_, std::io::Error>(frame);
                        }
                    }
                })
                .await;
                Ok(match answer {
                    Ok(Ok(bytes)) => Exchange::Answer {
                        bytes,
                        rtt: now.elapsed(),
                        sends: 1,
                    },
                    // Closed or reset by the server, or silent until the bound.
                    Ok(Err(_)) | Err(_) => Exchange::NoAnswer { sends: 1 },
                })
            }
        }
    }
}

/// One STUN message from a TCP stream (RFC 8489 section 6.2.2: the
/// header's length field delimits it).
async fn read_stun_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut head = [0u8; 20];
    stream.read_exact(&mut head).await?;
    let len = u16::from_be_bytes([head[2], head[3]]) as usize;
    let mut frame = head.to_vec();
    frame.resize(20 + len, 0);
    stream.read_exact(&mut frame[20..]).await?;
    Ok(frame)
}

async fn turn(
    chan: &mut Channel,
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
        let mut budget = deadline.saturating_duration_since(Instant::now());
        if flow.is_releasing() {
            budget = budget.max(RELEASE_GRACE);
        }
        if budget.is_zero() {
            break flow.handle_no_answer();
        }
        match chan.exchange(server, request, tid, budget).await? {
            Exchange::Answer {
                bytes,
                rtt,
                sends: s,
            } => {
                if !answered {
                    p.rtt_ms = Some(ms(rtt));
                }
                answered = true;
                sends += s;
                step = flow.handle_answer(&bytes, new_transaction_id());
            }
            Exchange::NoAnswer { sends: s } => {
                sends += s;
                break flow.handle_no_answer();
            }
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
