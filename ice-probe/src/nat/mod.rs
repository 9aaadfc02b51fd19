//! `ice-probe nat`: RFC 5780 NAT behaviour discovery, per address family.
//!
//! The protocol is sans-IO ([`discovery`], [`lifetime`], [`exchange`]);
//! [`classify`] turns the measured axes into the classic label and its
//! consequence; [`shell`] drives it with real sockets. Every fact is
//! tri-state: measured, or not measured with the reason.

pub mod classify;
pub mod discovery;
pub mod exchange;
pub mod lifetime;
pub mod shell;
#[cfg(test)]
mod sim;

use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::nat_report::{
    Fact, FamilyReport, FilteringBehaviour, LifetimeReport, MappingBehaviour, NatReport, NatType,
    NAT_SCHEMA,
};
use common::uri::{Host, IceUri};

use crate::error::ProbeError;

/// Default `--timeout`: the bound of each test.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default `--lifetime` maximum.
pub const DEFAULT_LIFETIME_MAX: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct NatOptions {
    pub servers: Vec<IceUri>,
    pub timeout: Duration,
    pub lifetime: Option<Duration>,
    /// Show a progress line on stderr (only if it is a terminal).
    pub progress: bool,
}

/// Every address of `uri`: an IP literal as written; a name through the
/// system resolver, the first address of each family.
fn resolve_both(uri: &IceUri) -> Result<Vec<SocketAddr>, ProbeError> {
    match &uri.host {
        Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, uri.port())]),
        Host::Name(name) => {
            let all: Vec<SocketAddr> = (name.as_str(), uri.port())
                .to_socket_addrs()
                .map_err(|e| {
                    ProbeError::CannotRun(format!("cannot resolve {name} (from {uri}): {e}"))
                })?
                .collect();
            let mut out: Vec<SocketAddr> = all
                .iter()
                .find(|a| a.is_ipv4())
                .into_iter()
                .copied()
                .collect();
            out.extend(all.iter().find(|a| a.is_ipv6()));
            if out.is_empty() {
                return Err(ProbeError::CannotRun(format!(
                    "{name} (from {uri}) has no address"
                )));
            }
            Ok(out)
        }
    }
}

/// Runs the discovery in every family some server has an address in.
pub fn run(opts: &NatOptions) -> Result<NatReport, ProbeError> {
    let started = Instant::now();
    let mut v4 = (Vec::new(), Vec::new());
    let mut v6 = (Vec::new(), Vec::new());
    for uri in &opts.servers {
        for a in resolve_both(uri)? {
            let fam = if a.is_ipv4() { &mut v4 } else { &mut v6 };
            fam.0.push(a);
            fam.1.push(uri.to_string());
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ProbeError::CannotRun(format!("cannot start the runtime: {e}")))?;
    let show = opts.progress && std::io::stderr().is_terminal();
    let families = rt.block_on(async {
        let lines: Vec<Arc<Mutex<String>>> = (0..2).map(|_| Arc::default()).collect();
        let run = |(servers, labels): (Vec<SocketAddr>, Vec<String>), line: Arc<Mutex<String>>| {
            let r = shell::FamilyRun {
                servers,
                labels,
                timeout: opts.timeout,
                lifetime: opts.lifetime,
                progress: line,
            };
            async move {
                if r.servers.is_empty() {
                    None
                } else {
                    Some(shell::run_family(r).await)
                }
            }
        };
        let both = async { tokio::join!(run(v4, lines[0].clone()), run(v6, lines[1].clone())) };
        let printer = async {
            if !show {
                return std::future::pending().await;
            }
            loop {
                let text: Vec<String> = lines
                    .iter()
                    .filter_map(|l| l.lock().ok().map(|s| s.clone()))
                    .filter(|s| !s.is_empty())
                    .collect();
                eprint!(
                    "\r\x1b[2K{:.1}s {}",
                    started.elapsed().as_secs_f64(),
                    text.join(" | ")
                );
                let _ = std::io::stderr().flush();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        let out = tokio::select! {
            r = both => r,
            _ = printer => unreachable!("the printer never ends"),
        };
        if show {
            eprint!("\r\x1b[2K");
        }
        out
    });
    // A family that could not run at all (no socket, no route) is reported
    // as such when another family ran; if none ran, we could not run.
    let mut reports = Vec::new();
    let mut first_error = None;
    for (fam, f) in [("ipv4", families.0), ("ipv6", families.1)] {
        match f {
            None => {}
            Some(Ok(r)) => reports.push(r),
            Some(Err(e)) => {
                reports.push(not_run(fam, &e.to_string()));
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        if reports.iter().all(|r| r.error.is_some()) {
            return Err(e);
        }
    }
    let primary = reports.iter().find(|r| r.error.is_none());
    Ok(NatReport {
        schema: NAT_SCHEMA.to_string(),
        servers: opts.servers.iter().map(|u| u.to_string()).collect(),
        timeout_ms: opts.timeout.as_millis() as u64,
        elapsed_ms: (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
        primary_family: primary.map(|f| f.family.clone()),
        udp: primary.is_some_and(|f| f.udp),
        mapping: primary.map_or(MappingBehaviour::Unknown, |f| f.mapping),
        filtering: primary.map_or(FilteringBehaviour::Unknown, |f| f.filtering),
        nat_type: primary.map_or(NatType::Unknown, |f| f.nat_type),
        hairpinning: primary.and_then(|f| f.hairpinning.value),
        mapped_address: primary.and_then(|f| f.mapped_address.clone()),
        consequence: primary.map_or_else(
            || "no family could be measured".to_string(),
            |f| f.consequence.clone(),
        ),
        families: reports,
    })
}

/// The report of a family that could not be probed at all.
fn not_run(family: &str, why: &str) -> FamilyReport {
    let unknown = || Fact::unknown(why);
    FamilyReport {
        family: family.to_string(),
        udp: false,
        mapping: MappingBehaviour::Unknown,
        mapping_reason: Some(why.to_string()),
        filtering: FilteringBehaviour::Unknown,
        filtering_reason: Some(why.to_string()),
        nat_type: NatType::Unknown,
        consequence: format!("{family} could not be probed: {why}"),
        local_address: None,
        mapped_address: None,
        rfc5780_server: None,
        other_address: None,
        hairpinning: unknown(),
        port_preservation: unknown(),
        alg: unknown(),
        mapping_varies_by_destination: unknown(),
        lifetime: LifetimeReport {
            measured: false,
            max_s: None,
            survived_s: None,
            expired_s: None,
            reason: Some(why.to_string()),
        },
        rtt_ms: None,
        servers: Vec::new(),
        elapsed_ms: 0.0,
        error: Some(why.to_string()),
    }
}

/// Why the run counts as a failure (exit 1): no server answered in any
/// family.
pub fn failed(r: &NatReport) -> Option<String> {
    if r.families.iter().any(|f| f.udp) {
        None
    } else {
        Some(format!(
            "no STUN server answered over UDP within --timeout ({} ms): UDP is blocked or nothing listens at {}",
            r.timeout_ms,
            r.servers.join(", ")
        ))
    }
}
