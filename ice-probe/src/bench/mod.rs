//! `ice-probe bench`: a closed-loop Binding load against any STUN server,
//! every answer validated, with the server's own CPU time when its PID is
//! given so the figure per server core survives a noisy machine.

mod load;
mod proc_stats;
mod spray;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::bench_report::{BenchReport, DistinctSources, Latency, ServerUsage, BENCH_SCHEMA};
use common::uri::IceUri;

use crate::error::ProbeError;
use crate::resolve::resolve;

pub use load::LoadStats;

/// Limits that keep a run bounded.
pub const MAX_DURATION_S: f64 = 600.0;
pub const MAX_SOCKETS: usize = 1024;
pub const MAX_WINDOW: usize = 4096;
pub const MAX_DISTINCT_SOURCES: u64 = 1_000_000;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub target: IceUri,
    pub sockets: usize,
    pub window: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub timeout: Duration,
    pub threads: usize,
    pub server_pid: Option<u32>,
    pub distinct_sources: Option<u64>,
    /// Show a progress line on stderr.
    pub progress: bool,
}

/// Runs the benchmark.
pub fn run(opts: &BenchOptions) -> Result<BenchReport, ProbeError> {
    if opts.target.scheme.is_turn() || opts.target.scheme != common::uri::Scheme::Stun {
        return Err(ProbeError::Usage(format!(
            "bench needs a stun: URI over UDP, got {}",
            opts.target
        )));
    }
    let addr = resolve(&opts.target)?;
    if let Some(pid) = opts.server_pid {
        proc_stats::cpu_seconds(pid).map_err(|e| {
            ProbeError::Usage(format!(
                "--server-pid {pid}: cannot read /proc/{pid}/stat: {e}"
            ))
        })?;
    }
    let rss_before = opts.server_pid.and_then(proc_stats::rss_kib);

    let distinct = match opts.distinct_sources {
        Some(n) => {
            let (answered, requested) = spray::run(addr, n, opts.timeout, opts.progress)?;
            Some(DistinctSources {
                requested,
                answered,
                unanswered: requested - answered,
            })
        }
        None => None,
    };

    let sockets = load::open_flows(addr, opts.sockets).map_err(|e| {
        ProbeError::CannotRun(format!("cannot open UDP sockets towards {addr}: {e}"))
    })?;
    let threads = opts.threads.clamp(1, opts.sockets);
    let mut per_thread: Vec<Vec<std::net::UdpSocket>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, s) in sockets.into_iter().enumerate() {
        per_thread[i % threads].push(s);
    }
    let phase = load::Phase {
        measuring: AtomicBool::new(false),
        done: AtomicBool::new(false),
        progress: AtomicU64::new(0),
    };
    let tag = (std::process::id() as u16) ^ 0x5a5a;

    let result = std::thread::scope(|scope| {
        let handles: Vec<_> = per_thread
            .into_iter()
            .enumerate()
            .map(|(i, socks)| {
                let phase = &phase;
                let window = opts.window;
                let timeout = opts.timeout;
                scope.spawn(move || {
                    load::run_load(socks, window, timeout, tag.wrapping_add(i as u16), phase)
                })
            })
            .collect();
        std::thread::sleep(opts.warmup);
        let cpu0 = opts
            .server_pid
            .and_then(|p| proc_stats::cpu_seconds(p).ok());
        phase.measuring.store(true, Ordering::Relaxed);
        let start = Instant::now();
        let mut progress = Progress::new(opts.progress);
        while start.elapsed() < opts.duration {
            let left = opts.duration.saturating_sub(start.elapsed());
            std::thread::sleep(left.min(Duration::from_millis(250)));
            let done = phase.progress.load(Ordering::Relaxed);
            progress.show(&format!(
                "bench {}  {:>5.1}/{:.0} s  {:>9.0} responses/s",
                opts.target,
                start.elapsed().as_secs_f64(),
                opts.duration.as_secs_f64(),
                done as f64 / start.elapsed().as_secs_f64().max(1e-3)
            ));
        }
        phase.done.store(true, Ordering::Relaxed);
        let elapsed = start.elapsed();
        let cpu1 = opts
            .server_pid
            .and_then(|p| proc_stats::cpu_seconds(p).ok());
        progress.clear();
        let mut total = LoadStats::new();
        for h in handles {
            match h.join() {
                Ok(Ok(s)) => total.merge(&s),
                Ok(Err(e)) => {
                    return Err(ProbeError::CannotRun(format!("load thread failed: {e}")))
                }
                Err(_) => return Err(ProbeError::CannotRun("load thread panicked".into())),
            }
        }
        Ok((total, elapsed, cpu0.zip(cpu1).map(|(a, b)| b - a)))
    });
    let (stats, elapsed, cpu) = result?;
    let rss_after = opts.server_pid.and_then(proc_stats::rss_kib);
    let secs = elapsed.as_secs_f64();
    let us = |q: f64| stats.latency.value_at_quantile(q) as f64 / 1000.0;
    let latency = if stats.received > 0 {
        Latency {
            p50: us(0.5),
            p99: us(0.99),
            p999: us(0.999),
            max: stats.latency.max() as f64 / 1000.0,
            mean: stats.latency.mean() / 1000.0,
        }
    } else {
        Latency {
            p50: 0.0,
            p99: 0.0,
            p999: 0.0,
            max: 0.0,
            mean: 0.0,
        }
    };
    Ok(BenchReport {
        schema: BENCH_SCHEMA.to_string(),
        target: opts.target.to_string(),
        server_address: addr.to_string(),
        sockets: opts.sockets,
        threads,
        window: opts.window,
        duration_s: secs,
        sent: stats.sent,
        received: stats.received,
        lost: stats.lost,
        invalid: stats.invalid,
        late: stats.late,
        timeout_ms: opts.timeout.as_millis() as u64,
        responses_per_sec: stats.received as f64 / secs,
        latency_us: latency,
        server: opts.server_pid.map(|pid| ServerUsage {
            pid,
            cpu_seconds: cpu.unwrap_or(0.0),
            responses_per_cpu_second: cpu.filter(|c| *c > 0.0).map(|c| stats.received as f64 / c),
            rss_kib_before: rss_before,
            rss_kib_after: rss_after,
        }),
        distinct_sources: distinct,
    })
}

/// Whether the run found a failure (exit code 1): nothing answered, or a
/// server that answered wrongly.
pub fn failed(r: &BenchReport) -> Option<String> {
    if r.received == 0 {
        return Some(format!(
            "no valid answer from {} in {:.1} s",
            r.server_address, r.duration_s
        ));
    }
    if r.invalid > 0 {
        return Some(format!(
            "{} answers from {} were invalid (wrong transaction, type or XOR-MAPPED-ADDRESS)",
            r.invalid, r.server_address
        ));
    }
    None
}

/// A one-line progress display on stderr, only on a terminal.
pub(crate) struct Progress {
    on: bool,
}

impl Progress {
    pub(crate) fn new(wanted: bool) -> Self {
        Progress {
            on: wanted && std::io::stderr().is_terminal(),
        }
    }
    pub(crate) fn show(&mut self, line: &str) {
        if self.on {
            let mut e = std::io::stderr();
            let _ = write!(e, "\r\x1b[2K{line}");
            let _ = e.flush();
        }
    }
    pub(crate) fn clear(&mut self) {
        if self.on {
            let mut e = std::io::stderr();
            let _ = write!(e, "\r\x1b[2K");
            let _ = e.flush();
        }
    }
}
