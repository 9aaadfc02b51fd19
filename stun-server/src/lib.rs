//! A fast, hardened STUN server: RFC 8489 Binding over UDP, RFC 5780 NAT
//! behaviour discovery, per-source rate limits, Prometheus metrics.
//!
//! The protocol lives in [`responder`] (sans-IO); [`worker`] and [`server`]
//! only move datagrams; [`run`] wires everything for the binary.

pub mod config;
pub mod http;
pub mod metrics;
pub mod rate_limit;
pub mod responder;
pub mod server;
pub mod signaling;
pub mod socket;
pub mod worker;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;

pub use config::{Args, ServerConfig};
pub use server::UdpServer;

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(config: ServerConfig) -> anyhow::Result<()> {
    let started = Instant::now();
    // Handlers first: a signal that arrives while we start must still stop
    // us cleanly, not kill us.
    let shutdown = shutdown_signal()?;
    let udp = UdpServer::start(&config)?;
    for a in &udp.addresses {
        tracing::info!("listening on udp {a} ({} workers)", config.workers);
    }
    if let Some(r) = &udp.rfc5780 {
        tracing::info!(
            "RFC 5780 enabled: primary {} alternate {}",
            r.primary,
            r.alternate
        );
    }
    match config.rate_limit {
        Some(l) => tracing::info!(
            "rate limit {} requests/s per source IP (IPv6 /64), burst {}",
            l.per_second,
            l.burst
        ),
        None => tracing::info!("rate limit off"),
    }
    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut signaling_shutdown = None;
    let http_task = match config.http {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot serve http on {addr}"))?;
            let real = listener.local_addr()?;
            tracing::info!("serving http on {real} (/metrics, /healthz, /v1/rooms signaling)");
            let sig = signaling::Signaling::new(udp.metrics.signaling.clone());
            sig.spawn_expiry();
            signaling_shutdown = Some(sig.clone());
            let state = Arc::new(http::HttpState {
                metrics: udp.metrics.clone(),
                probe_target: http::probe_address(udp.addresses[0]),
                started,
                signaling: sig,
            });
            let app = http::router(state);
            Some(tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = http_stopped.await;
                    })
                    .await
            }))
        }
        None => None,
    };
    shutdown.await;
    tracing::info!("shutting down");
    // Open long-polls answer now, so the graceful stop below (bounded at
    // 5 s anyway) does not wait for them.
    if let Some(sig) = &signaling_shutdown {
        sig.shutdown();
    }
    let _ = http_stop.send(());
    if let Some(t) = http_task {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
    }
    let total = udp.metrics.total_datagrams();
    udp.shutdown();
    tracing::info!("stopped after {total} datagrams");
    Ok(())
}

/// Installs the SIGINT and SIGTERM handlers now; the future completes on
/// the first of them.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}
