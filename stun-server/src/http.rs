//! The operations endpoint: Prometheus `/metrics` and `/healthz`, which
//! performs a real STUN round trip against the server's own UDP socket,
//! and the signaling rendezvous under `/v1/` ([`crate::signaling`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use common::stun::{binding_request, Message, BINDING_SUCCESS};
use tokio::net::UdpSocket;

use crate::metrics::Metrics;

/// What the HTTP handlers read.
pub struct HttpState {
    pub metrics: Metrics,
    /// The UDP address /healthz probes (a wildcard is probed on loopback).
    pub probe_target: SocketAddr,
    pub started: Instant,
    /// The rendezvous served under `/v1/`.
    pub signaling: Arc<crate::signaling::Signaling>,
}

pub fn router(state: Arc<HttpState>) -> Router {
    let signaling = crate::signaling::http::router(state.signaling.clone());
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(state)
        .merge(signaling)
}

async fn metrics(State(s): State<Arc<HttpState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(s.started.elapsed().as_secs_f64()),
    )
        .into_response()
}

async fn healthz(State(s): State<Arc<HttpState>>) -> Response {
    let target = s.probe_target;
    let body = match stun_round_trip(target, Duration::from_secs(1)).await {
        Ok(rtt) => {
            let v = serde_json::json!({
                "status": "ok",
                "target": target.to_string(),
                "rtt_ms": rtt.as_secs_f64() * 1000.0,
            });
            return (StatusCode::OK, axum::Json(v)).into_response();
        }
        Err(reason) => serde_json::json!({
            "status": "failing",
            "target": target.to_string(),
            "reason": reason,
        }),
    };
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

/// The address to probe for a listening address: wildcards become loopback.
pub fn probe_address(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port())
        }
        _ => listen,
    }
}

/// Sends a Binding request to `target` (retransmitting as RFC 8489 does,
/// starting at 100 ms) and checks the answer maps our own address.
pub async fn stun_round_trip(target: SocketAddr, deadline: Duration) -> Result<Duration, String> {
    let bind: SocketAddr = if target.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind)
        .await
        .map_err(|e| format!("cannot open a probe socket: {e}"))?;
    sock.connect(target)
        .await
        .map_err(|e| format!("cannot reach {target}: {e}"))?;
    let me = sock
        .local_addr()
        .map_err(|e| format!("probe socket has no address: {e}"))?;
    let tid = common::stun::random_transaction_id();
    let mut req = [0u8; 64];
    let n = binding_request(&mut req, &tid, 0, None, true).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut rto = Duration::from_millis(100);
    let mut buf = [0u8; 1500];
    loop {
        let left = deadline.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(format!("no STUN answer from {target} within {deadline:?}"));
        }
        let _ = sock.send(&req[..n]).await;
        let wait = rto.min(left);
        rto *= 2;
        let until = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(until, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(_)) => break, // ICMP port unreachable: retry until deadline
                Ok(Ok(len)) => {
                    let Ok(m) = Message::parse(&buf[..len], false) else {
                        continue;
                    };
                    if m.transaction_id() != &tid {
                        continue;
                    }
                    if m.msg_type() != BINDING_SUCCESS {
                        return Err(format!("{target} answered with type {:#06x}", m.msg_type()));
                    }
                    return match m.xor_mapped_address() {
                        Some(a) if a == me => Ok(start.elapsed()),
                        Some(a) => Err(format!("{target} mapped us to {a}, expected {me}")),
                        None => Err(format!("{target} answered without XOR-MAPPED-ADDRESS")),
                    };
                }
            }
        }
    }
}
