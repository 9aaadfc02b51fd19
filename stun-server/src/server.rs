//! Starting and stopping the UDP side: socket groups, worker threads.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crate::config::ServerConfig;
use crate::metrics::{Metrics, WorkerMetrics};
use crate::rate_limit::RateLimiter;
use crate::responder::{BindingResponder, ResponderConfig, Rfc5780};
use crate::socket::{self, open_reuseport};
use crate::worker::Worker;

/// Entries in each worker's rate-limit table (16 bytes each).
pub const RATE_TABLE_ENTRIES: usize = 16 * 1024;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on udp {addr}: {source}{hint}")]
    Bind {
        addr: SocketAddr,
        source: io::Error,
        hint: &'static str,
    },
    #[error("cannot find four free ports for RFC 5780 on {primary} and {alternate}: {source}")]
    Rfc5780Ports {
        primary: SocketAddr,
        alternate: SocketAddr,
        source: io::Error,
    },
    #[error("cannot start worker thread: {0}")]
    Thread(io::Error),
}

fn bind_error(addr: SocketAddr, source: io::Error) -> ServeError {
    let hint = match source.kind() {
        io::ErrorKind::AddrInUse => {
            " (another process is using this port; stop it or choose another --listen)"
        }
        io::ErrorKind::AddrNotAvailable => " (this machine has no such address)",
        io::ErrorKind::PermissionDenied => " (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
        _ => "",
    };
    ServeError::Bind { addr, source, hint }
}

/// One address served by `workers` sockets of a SO_REUSEPORT group.
struct Group {
    addr: SocketAddr,
    sockets: Vec<UdpSocket>,
}

fn open_group(addr: SocketAddr, workers: usize, buffer: usize) -> Result<Group, ServeError> {
    if addr.port() != 0 {
        socket::check_free(addr).map_err(|e| bind_error(addr, e))?;
    }
    let (first, sizes) = open_reuseport(addr, buffer).map_err(|e| bind_error(addr, e))?;
    if sizes.recv < buffer || sizes.send < buffer {
        tracing::warn!(
            "kernel capped socket buffers on {addr} at {} KiB receive / {} KiB send (asked {} KiB); raise net.core.rmem_max and net.core.wmem_max or run with CAP_NET_ADMIN",
            sizes.recv / 1024,
            sizes.send / 1024,
            buffer / 1024
        );
    }
    let real = first.local_addr().map_err(|e| bind_error(addr, e))?;
    let mut sockets = vec![first];
    for _ in 1..workers {
        let (s, _) = open_reuseport(real, buffer).map_err(|e| bind_error(real, e))?;
        sockets.push(s);
    }
    if workers > 1 {
        if let Err(e) = socket::steer_by_source(&sockets[0], workers, real.is_ipv6()) {
            tracing::debug!(
                "source-IP steering unavailable on {real}: {e}; using the kernel's 4-tuple hash"
            );
        }
    }
    Ok(Group {
        addr: real,
        sockets,
    })
}

/// Opens the four RFC 5780 groups; ports given as 0 are picked so that all
/// four combinations are free.
fn open_rfc5780(
    r: Rfc5780,
    workers: usize,
    buffer: usize,
) -> Result<(Rfc5780, Vec<Group>), ServeError> {
    let mut last = None;
    for _ in 0..20 {
        let p = open_group(r.primary, workers, buffer)?;
        let a = open_group(r.alternate, workers, buffer)?;
        let pq = SocketAddr::new(r.primary.ip(), a.addr.port());
        let ap = SocketAddr::new(r.alternate.ip(), p.addr.port());
        match (
            open_group(pq, workers, buffer),
            open_group(ap, workers, buffer),
        ) {
            (Ok(g2), Ok(g3)) => {
                let real = Rfc5780 {
                    primary: p.addr,
                    alternate: a.addr,
                };
                return Ok((real, vec![p, g2, g3, a]));
            }
            (Err(e), _) | (_, Err(e)) => {
                if r.primary.port() != 0 && r.alternate.port() != 0 {
                    return Err(e);
                }
                last = Some(e);
            }
        }
    }
    let source = match last {
        Some(ServeError::Bind { source, .. }) => source,
        _ => io::Error::other("no free port combination"),
    };
    Err(ServeError::Rfc5780Ports {
        primary: r.primary,
        alternate: r.alternate,
        source,
    })
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(std::process::id() as u64);
    h.finish()
}

/// The UDP side, running.
pub struct UdpServer {
    /// Addresses served (real ports).
    pub addresses: Vec<SocketAddr>,
    /// RFC 5780 addresses (real ports) when enabled.
    pub rfc5780: Option<Rfc5780>,
    pub metrics: Metrics,
    stop: Arc<AtomicBool>,
    threads: Vec<(String, JoinHandle<io::Result<()>>)>,
}

impl UdpServer {
    /// Binds every socket, then starts the workers.
    pub fn start(config: &ServerConfig) -> Result<Self, ServeError> {
        let (rfc5780, groups) = match config.rfc5780 {
            Some(r) => {
                let (real, g) = open_rfc5780(r, config.workers, config.socket_buffer)?;
                (Some(real), g)
            }
            None => {
                let mut g = Vec::new();
                for a in &config.listen {
                    match open_group(*a, config.workers, config.socket_buffer) {
                        Ok(group) => g.push(group),
                        // A host without IPv6 still serves IPv4 on defaults.
                        Err(ServeError::Bind { addr, source, .. })
                            if config.listen_is_default
                                && addr.is_ipv6()
                                && matches!(
                                    source.raw_os_error(),
                                    Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)
                                ) =>
                        {
                            tracing::warn!("skipping udp {addr}: {source} (no IPv6 on this host)");
                        }
                        Err(e) => return Err(e),
                    }
                }
                (None, g)
            }
        };
        let responder = BindingResponder::new(ResponderConfig {
            software: config.software.clone(),
            legacy: config.legacy,
            rfc5780,
        });
        // CHANGE-REQUEST answers leave from a socket of another group.
        let mut origins = Vec::new();
        if rfc5780.is_some() {
            for g in &groups {
                let s = g.sockets[0].try_clone().map_err(ServeError::Thread)?;
                origins.push((g.addr, s));
            }
        }
        let origins = Arc::new(origins);
        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Instant::now();
        let mut metrics = Metrics::default();
        let mut threads = Vec::new();
        let addresses: Vec<SocketAddr> = groups.iter().map(|g| g.addr).collect();
        for g in groups {
            for (i, socket) in g.sockets.into_iter().enumerate() {
                let m = Arc::new(WorkerMetrics::new(i, g.addr));
                metrics.workers.push(m.clone());
                let worker = Worker {
                    socket,
                    bound: g.addr,
                    responder: responder.clone(),
                    limiter: config
                        .rate_limit
                        .map(|l| RateLimiter::new(l, RATE_TABLE_ENTRIES, random_u64())),
                    origins: origins.clone(),
                    metrics: m,
                    stop: stop.clone(),
                    epoch,
                };
                let name = format!("stun {} #{i}", g.addr);
                let h = std::thread::Builder::new()
                    .name(name.clone())
                    .spawn(move || worker.run())
                    .map_err(ServeError::Thread)?;
                threads.push((name, h));
            }
        }
        Ok(UdpServer {
            addresses,
            rfc5780,
            metrics,
            stop,
            threads,
        })
    }

    /// Signals the workers and waits for them (they wake within 200 ms).
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::Relaxed);
        for (name, h) in self.threads {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("worker {name} failed: {e}"),
                Err(_) => tracing::error!("worker {name} panicked"),
            }
        }
    }
}
