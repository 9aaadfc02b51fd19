//! The tokio shell: binds the sockets the engine names, moves datagrams
//! and timers, and nothing else. Every decision is in [`super::discovery`].

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::nat_report::FamilyReport;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::discovery::{Discovery, DiscoveryConfig, FIRST_DYNAMIC, SOCK_MAPPING};
use super::exchange::SockId;
use crate::error::ProbeError;

type Inbound = (SockId, SocketAddr, Vec<u8>);

/// A UDP socket on the unspecified address of `v4`'s family, any port
/// (IPv6 sockets are v6-only, so IPv4 never shows up as mapped IPv6).
fn bind(v4: bool) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let (domain, addr) = if v4 {
        (
            Domain::IPV4,
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        )
    } else {
        (
            Domain::IPV6,
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        )
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if !v4 {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

/// Addresses of this host in `v4`'s family: every interface address, plus
/// the source address the kernel picks towards each server (no packet is
/// sent: a connected UDP socket only asks the routing table).
fn local_ips(v4: bool, servers: &[SocketAddr]) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = interface_ips()
        .into_iter()
        .filter(|ip| ip.is_ipv4() == v4)
        .collect();
    for s in servers {
        let any: SocketAddr = if v4 {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        if let Ok(u) = std::net::UdpSocket::bind(any) {
            if u.connect(s).is_ok() {
                if let Ok(l) = u.local_addr() {
                    ips.push(l.ip());
                }
            }
        }
    }
    ips.sort();
    ips.dedup();
    ips
}

fn interface_ips() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a linked list we only read and then free
    // with freeifaddrs; each ifa_addr is null or points to a sockaddr of
    // the family its sa_family names.
    unsafe {
        if libc::getifaddrs(&mut ifap) != 0 {
            return out;
        }
        let mut p = ifap;
        while !p.is_null() {
            let a = (*p).ifa_addr;
            if !a.is_null() {
                match (*a).sa_family as libc::c_int {
                    libc::AF_INET => {
                        let s = &*(a as *const libc::sockaddr_in);
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(s.sin_addr.s_addr))));
                    }
                    libc::AF_INET6 => {
                        let s = &*(a as *const libc::sockaddr_in6);
                        out.push(IpAddr::V6(Ipv6Addr::from(s.sin6_addr.s6_addr)));
                    }
                    _ => {}
                }
            }
            p = (*p).ifa_next;
        }
        libc::freeifaddrs(ifap);
    }
    out
}

fn spawn_reader(
    tasks: &mut JoinSet<()>,
    id: SockId,
    sock: Arc<UdpSocket>,
    tx: mpsc::UnboundedSender<Inbound>,
) {
    tasks.spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            match sock.recv_from(&mut buf).await {
                Ok((n, from)) => {
                    if tx.send((id, from, buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                // ICMP port unreachable and the like: the engine's
                // timers decide; do not spin.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
            }
        }
    });
}

/// What one family's run needs besides the engine's config.
pub struct FamilyRun {
    pub servers: Vec<SocketAddr>,
    pub labels: Vec<String>,
    pub timeout: std::time::Duration,
    pub lifetime: Option<std::time::Duration>,
    /// Where to post this family's progress line.
    pub progress: Arc<Mutex<String>>,
}

/// Runs the discovery for one family over real sockets.
pub async fn run_family(r: FamilyRun) -> Result<FamilyReport, ProbeError> {
    let v4 = r.servers.first().is_none_or(|s| s.is_ipv4());
    let fam = if v4 { "IPv4" } else { "IPv6" };
    let cannot = |e: std::io::Error| {
        ProbeError::CannotRun(format!("cannot open a UDP socket for {fam}: {e}"))
    };
    let mut socks: HashMap<SockId, Arc<UdpSocket>> = HashMap::new();
    let (tx, mut rx) = mpsc::unbounded_channel::<Inbound>();
    let mut readers = JoinSet::new();
    for id in 0..FIRST_DYNAMIC {
        let s = Arc::new(bind(v4).map_err(cannot)?);
        spawn_reader(&mut readers, id, s.clone(), tx.clone());
        socks.insert(id, s);
    }
    let mapping_local = socks[&SOCK_MAPPING].local_addr().map_err(cannot)?;
    let cfg = DiscoveryConfig {
        local_ips: local_ips(v4, &r.servers),
        servers: r.servers,
        server_labels: r.labels,
        mapping_local,
        timeout: r.timeout,
        lifetime: r.lifetime,
    };
    let mut engine = Discovery::new(Instant::now(), cfg);
    let (mut sent_ok, mut send_error) = (false, None::<std::io::Error>);
    loop {
        let now = Instant::now();
        while let Some(t) = engine.poll_transmit(now) {
            let sock = match socks.get(&t.sock) {
                Some(s) => s.clone(),
                None => {
                    let s = Arc::new(bind(v4).map_err(cannot)?);
                    spawn_reader(&mut readers, t.sock, s.clone(), tx.clone());
                    socks.insert(t.sock, s.clone());
                    s
                }
            };
            // A send error (no route...) is a lost packet: the engine
            // retransmits and then reports the test as unanswered. Only if
            // no send at all succeeds is the family unusable.
            match sock.send_to(&t.bytes, t.to).await {
                Ok(_) => sent_ok = true,
                Err(e) => send_error = Some(e),
            }
        }
        if engine.is_done() {
            break;
        }
        if let Ok(mut p) = r.progress.lock() {
            *p = engine.progress();
        }
        let Some(wake) = engine.poll_timeout() else {
            break;
        };
        let wake = tokio::time::Instant::from_std(wake);
        tokio::select! {
            m = rx.recv() => {
                if let Some((id, from, bytes)) = m {
                    engine.handle_datagram(Instant::now(), id, from, &bytes);
                }
            }
            _ = tokio::time::sleep_until(wake) => engine.handle_timeout(Instant::now()),
        }
    }
    readers.abort_all();
    if let (false, Some(e)) = (sent_ok, send_error) {
        return Err(ProbeError::CannotRun(format!(
            "cannot send {fam} packets ({e}): is there an {fam} network?"
        )));
    }
    Ok(engine.report())
}
