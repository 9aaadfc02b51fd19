//! Deterministic tests of the discovery engine: a simulated NAT (mapping,
//! filtering, hairpinning, binding expiry) in front of our real RFC 5780
//! responder (two IPs x two ports), with simulated time. No sockets, no
//! sleeps. Addresses are documentation ranges and never leave the process.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::nat_report::{FamilyReport, FilteringBehaviour as F, MappingBehaviour as M, NatType};
use stun_server::responder::{BindingResponder, Outcome, ResponderConfig, Rfc5780, MAX_RESPONSE};

use super::discovery::{Discovery, DiscoveryConfig};
use super::exchange::SockId;

const ONE_WAY: Duration = Duration::from_millis(10);
const PUBLIC: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
const INSIDE: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The host's own address when there is no NAT.
const HOST: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);

fn primary() -> SocketAddr {
    "192.0.2.1:3478".parse().unwrap()
}
fn alternate() -> SocketAddr {
    "192.0.2.2:3479".parse().unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Map {
    /// No translation (the host has a public address).
    None,
    Eim,
    Adm,
    Apdm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Filter {
    Eif,
    Adf,
    Apdf,
}

#[derive(Debug, Clone, Copy)]
struct NatModel {
    map: Map,
    filter: Filter,
    hairpin: bool,
    /// Every UDP packet out is dropped.
    blocked: bool,
    preserve_ports: bool,
    /// Bindings idle (no outbound packet) this long are gone.
    expiry: Option<Duration>,
    /// An ALG that rewrites the public address in MAPPED-ADDRESS back to
    /// the private one (it does not know XOR-MAPPED-ADDRESS).
    alg: bool,
}

impl NatModel {
    fn new(map: Map, filter: Filter, hairpin: bool) -> Self {
        NatModel {
            map,
            filter,
            hairpin,
            blocked: false,
            preserve_ports: false,
            expiry: None,
            alg: false,
        }
    }
}

#[derive(Debug)]
struct Binding {
    internal: SocketAddr,
    key: Option<SocketAddr>,
    external: SocketAddr,
    permits: Vec<SocketAddr>,
    last_out: Instant,
}

/// A NAT (or, with `Map::None`, a stateful firewall) as RFC 4787 describes.
struct Nat {
    m: NatModel,
    bindings: Vec<Binding>,
    next_port: u16,
}

impl Nat {
    fn client_ip(&self) -> Ipv4Addr {
        if self.m.map == Map::None {
            HOST
        } else {
            INSIDE
        }
    }

    fn alive(&self, b: &Binding, now: Instant) -> bool {
        self.m
            .expiry
            .is_none_or(|e| now.duration_since(b.last_out) < e)
    }

    /// The public source of a packet from `internal` to `dst`.
    fn outbound(
        &mut self,
        now: Instant,
        internal: SocketAddr,
        dst: SocketAddr,
    ) -> Option<SocketAddr> {
        if self.m.blocked {
            return None;
        }
        let key = match self.m.map {
            Map::None | Map::Eim => None,
            Map::Adm => Some(SocketAddr::new(dst.ip(), 0)),
            Map::Apdm => Some(dst),
        };
        let found = self
            .bindings
            .iter()
            .position(|b| b.internal == internal && b.key == key && self.alive(b, now));
        let i = match found {
            Some(i) => i,
            None => {
                let external = if self.m.map == Map::None {
                    internal
                } else {
                    let used = |p: u16| self.bindings.iter().any(|b| b.external.port() == p);
                    let port = if self.m.preserve_ports && !used(internal.port()) {
                        internal.port()
                    } else {
                        self.next_port += 1;
                        self.next_port
                    };
                    SocketAddr::new(IpAddr::V4(PUBLIC), port)
                };
                self.bindings.push(Binding {
                    internal,
                    key,
                    external,
                    permits: Vec::new(),
                    last_out: now,
                });
                self.bindings.len() - 1
            }
        };
        let b = &mut self.bindings[i];
        b.last_out = now;
        b.permits.push(dst);
        Some(b.external)
    }

    /// The internal address for a packet from `src` to public `dst`.
    fn inbound(&self, now: Instant, src: SocketAddr, dst: SocketAddr) -> Option<SocketAddr> {
        if self.m.blocked {
            return None;
        }
        self.bindings
            .iter()
            .filter(|b| b.external == dst && self.alive(b, now))
            .find(|b| match self.m.filter {
                Filter::Eif => true,
                Filter::Adf => b.permits.iter().any(|p| p.ip() == src.ip()),
                Filter::Apdf => b.permits.contains(&src),
            })
            .map(|b| b.internal)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Server {
    Rfc5780,
    /// No --alternate: no OTHER-ADDRESS, 420 to CHANGE-REQUEST.
    Plain,
    /// OTHER-ADDRESS with the primary's IP.
    OtherSameIp,
    /// Answers CHANGE-REQUEST from the address it was sent to (while
    /// RESPONSE-ORIGIN claims the changed one).
    WrongSource,
    /// Silently drops every CHANGE-REQUEST.
    DropsChange,
    /// RFC 5780 and `--legacy`: MAPPED-ADDRESS beside XOR-MAPPED-ADDRESS.
    Legacy,
    /// Answers the sending socket whatever RESPONSE-PORT says.
    IgnoresResponsePort,
    /// A plain server at another address (for multi-server tests).
    PlainAt(SocketAddr),
}

struct SimServer {
    kind: Server,
    responder: BindingResponder,
    listen: Vec<SocketAddr>,
}

impl SimServer {
    fn new(kind: Server) -> Self {
        let (rfc5780, listen) = match kind {
            Server::Plain => (None, vec![primary()]),
            Server::PlainAt(a) => (None, vec![a]),
            Server::OtherSameIp => {
                let r = Rfc5780 {
                    primary: primary(),
                    alternate: SocketAddr::new(primary().ip(), 3479),
                };
                (Some(r), r.addresses().to_vec())
            }
            _ => {
                let r = Rfc5780 {
                    primary: primary(),
                    alternate: alternate(),
                };
                (Some(r), r.addresses().to_vec())
            }
        };
        SimServer {
            kind,
            responder: BindingResponder::new(ResponderConfig {
                rfc5780,
                legacy: kind == Server::Legacy,
                ..Default::default()
            }),
            listen,
        }
    }

    /// (from, to, bytes) of the answer to `req` from `src` sent to `dst`.
    fn handle(
        &self,
        req: &[u8],
        src: SocketAddr,
        dst: SocketAddr,
    ) -> Option<(SocketAddr, SocketAddr, Vec<u8>)> {
        if !self.listen.contains(&dst) {
            return None;
        }
        let has_change = common::stun::Message::parse(req, false)
            .ok()?
            .attribute(common::stun::attr::CHANGE_REQUEST)
            .is_some_and(|v| v != [0, 0, 0, 0]);
        if self.kind == Server::DropsChange && has_change {
            return None;
        }
        let mut out = [0u8; MAX_RESPONSE];
        match self.responder.respond(req, src, dst, &mut out) {
            Outcome::Reply { len, to, from, .. } => {
                let from = if self.kind == Server::WrongSource {
                    dst
                } else {
                    from
                };
                let to = if self.kind == Server::IgnoresResponsePort {
                    src
                } else {
                    to
                };
                Some((from, to, out[..len].to_vec()))
            }
            Outcome::Drop(_) => None,
        }
    }
}

enum Event {
    /// A packet from the NAT's outside towards a server address.
    Uplink {
        src: SocketAddr,
        dst: SocketAddr,
        bytes: Vec<u8>,
    },
    /// A packet from the outside reaching the NAT.
    Downlink {
        src: SocketAddr,
        dst: SocketAddr,
        bytes: Vec<u8>,
    },
    Arrive {
        sock: SockId,
        from: SocketAddr,
        bytes: Vec<u8>,
    },
}

struct World {
    nat: Nat,
    servers: Vec<SimServer>,
    queue: BTreeMap<(Instant, u64), Event>,
    seq: u64,
    /// Drop each packet crossing the network with probability 1/n, from a
    /// fixed-seed generator (the same losses every run).
    drop_one_in: Option<u64>,
    rng: u64,
}

impl World {
    fn local(&self, sock: SockId) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.nat.client_ip()), 5000 + sock as u16)
    }

    fn push(&mut self, at: Instant, e: Event) {
        self.seq += 1;
        let crosses = matches!(e, Event::Uplink { .. } | Event::Downlink { .. });
        if crosses {
            if let Some(n) = self.drop_one_in {
                // xorshift64
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 7;
                self.rng ^= self.rng << 17;
                if self.rng.is_multiple_of(n) {
                    return;
                }
            }
        }
        self.queue.insert((at, self.seq), e);
    }

    fn sock_of(&self, internal: SocketAddr) -> Option<SockId> {
        (internal.ip() == IpAddr::V4(self.nat.client_ip()) && internal.port() >= 5000)
            .then(|| (internal.port() - 5000) as SockId)
    }

    fn client_send(&mut self, now: Instant, sock: SockId, to: SocketAddr, bytes: Vec<u8>) {
        let internal = self.local(sock);
        if self.nat.m.map == Map::None && to.ip() == IpAddr::V4(HOST) {
            // Host-local delivery.
            if let Some(s) = self.sock_of(to) {
                self.push(
                    now,
                    Event::Arrive {
                        sock: s,
                        from: internal,
                        bytes,
                    },
                );
            }
            return;
        }
        let Some(ext) = self.nat.outbound(now, internal, to) else {
            return;
        };
        if to.ip() == IpAddr::V4(PUBLIC) {
            if self.nat.m.hairpin {
                self.push(
                    now,
                    Event::Downlink {
                        src: ext,
                        dst: to,
                        bytes,
                    },
                );
            }
            return;
        }
        self.push(
            now + ONE_WAY,
            Event::Uplink {
                src: ext,
                dst: to,
                bytes,
            },
        );
    }

    fn deliver(&mut self, now: Instant, e: Event, engine: &mut Discovery) {
        match e {
            Event::Uplink { src, dst, bytes } => {
                let answer = self.servers.iter().find_map(|s| s.handle(&bytes, src, dst));
                if let Some((from, to, bytes)) = answer {
                    self.push(
                        now + ONE_WAY,
                        Event::Downlink {
                            src: from,
                            dst: to,
                            bytes,
                        },
                    );
                }
            }
            Event::Downlink { src, dst, bytes } => {
                let internal = if self.nat.m.map == Map::None {
                    Some(dst)
                } else {
                    None
                };
                let internal = match internal {
                    // A firewall: same filtering, no translation.
                    Some(d) => self.nat.inbound(now, src, d),
                    None => self.nat.inbound(now, src, dst),
                };
                if let Some(s) = internal.and_then(|i| self.sock_of(i)) {
                    let mut bytes = bytes;
                    if self.nat.m.alg {
                        alg_rewrite(&mut bytes, dst, internal.expect("found"));
                    }
                    self.push(
                        now,
                        Event::Arrive {
                            sock: s,
                            from: src,
                            bytes,
                        },
                    );
                }
            }
            Event::Arrive { sock, from, bytes } => engine.handle_datagram(now, sock, from, &bytes),
        }
    }
}

/// What a NAT ALG does to STUN: the public address in MAPPED-ADDRESS is
/// replaced by the private one.
fn alg_rewrite(bytes: &mut [u8], public: SocketAddr, private: SocketAddr) {
    let mut at = common::stun::HEADER_LEN;
    while at + 4 <= bytes.len() {
        let t = u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        let l = u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize;
        if t == common::stun::attr::MAPPED_ADDRESS
            && l == 8
            && common::stun::decode_address(&bytes[at + 4..at + 12], None) == Some(public)
        {
            if let IpAddr::V4(ip) = private.ip() {
                bytes[at + 6..at + 8].copy_from_slice(&private.port().to_be_bytes());
                bytes[at + 8..at + 12].copy_from_slice(&ip.octets());
            }
        }
        at += 4 + ((l + 3) & !3);
    }
}

struct Run {
    report: FamilyReport,
    elapsed: Duration,
}

fn simulate(nat: NatModel, servers: &[Server], lifetime: Option<Duration>) -> Run {
    simulate_lossy(nat, servers, lifetime, None)
}

fn simulate_lossy(
    nat: NatModel,
    servers: &[Server],
    lifetime: Option<Duration>,
    drop_one_in: Option<u64>,
) -> Run {
    let t0 = Instant::now();
    let mut w = World {
        nat: Nat {
            m: nat,
            bindings: Vec::new(),
            next_port: 40000,
        },
        servers: servers.iter().map(|&k| SimServer::new(k)).collect(),
        queue: BTreeMap::new(),
        seq: 0,
        drop_one_in,
        rng: 0x9E37_79B9_7F4A_7C15,
    };
    let addrs: Vec<SocketAddr> = servers
        .iter()
        .map(|k| match k {
            Server::PlainAt(a) => *a,
            _ => primary(),
        })
        .collect();
    let cfg = DiscoveryConfig {
        server_labels: addrs.iter().map(|a| format!("stun:{a}")).collect(),
        servers: addrs,
        mapping_local: w.local(0),
        local_ips: vec![IpAddr::V4(w.nat.client_ip())],
        timeout: Duration::from_secs(1),
        lifetime,
    };
    let mut engine = Discovery::new(t0, cfg);
    let mut now = t0;
    for _ in 0..1_000_000 {
        while let Some(t) = engine.poll_transmit(now) {
            w.client_send(now, t.sock, t.to, t.bytes);
        }
        if engine.is_done() {
            return Run {
                report: engine.report(),
                elapsed: now - t0,
            };
        }
        let next_event = w.queue.keys().next().map(|k| k.0);
        let next = [engine.poll_timeout(), next_event]
            .into_iter()
            .flatten()
            .min();
        now = now.max(next.expect("the engine waits for something"));
        while let Some(entry) = w.queue.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let e = entry.remove();
            w.deliver(now, e, &mut engine);
        }
        engine.handle_timeout(now);
    }
    panic!("simulation did not end");
}

fn expected_nat_type(m: Map, f: Filter) -> NatType {
    match (m, f) {
        (Map::None, Filter::Eif) => NatType::Open,
        (Map::None, _) => NatType::Firewall,
        (Map::Eim, Filter::Eif) => NatType::FullCone,
        (Map::Eim, Filter::Adf) => NatType::RestrictedCone,
        (Map::Eim, Filter::Apdf) => NatType::PortRestrictedCone,
        _ => NatType::Symmetric,
    }
}

fn mapping_of(m: Map) -> M {
    match m {
        Map::None => M::NoNat,
        Map::Eim => M::EndpointIndependent,
        Map::Adm => M::AddressDependent,
        Map::Apdm => M::AddressAndPortDependent,
    }
}

fn filtering_of(f: Filter) -> F {
    match f {
        Filter::Eif => F::EndpointIndependent,
        Filter::Adf => F::AddressDependent,
        Filter::Apdf => F::AddressAndPortDependent,
    }
}

#[test]
fn every_mapping_filtering_hairpin_combination() {
    for map in [Map::None, Map::Eim, Map::Adm, Map::Apdm] {
        for filter in [Filter::Eif, Filter::Adf, Filter::Apdf] {
            for hairpin in [true, false] {
                let case = format!("{map:?} {filter:?} hairpin={hairpin}");
                let r = simulate(
                    NatModel::new(map, filter, hairpin),
                    &[Server::Rfc5780],
                    None,
                );
                let f = &r.report;
                assert!(f.udp, "{case}");
                assert_eq!(f.mapping, mapping_of(map), "{case}: {f:#?}");
                assert_eq!(f.nat_type, expected_nat_type(map, filter), "{case}: {f:#?}");
                // Behind a mapping that varies by destination the server's
                // change-IP answers cannot be verified unless they arrive:
                // then filtering is unknown (with the reason), never wrong.
                let stable = matches!(map, Map::None | Map::Eim);
                if stable || filter == Filter::Eif {
                    assert_eq!(f.filtering, filtering_of(filter), "{case}: {f:#?}");
                    assert_eq!(f.filtering_reason, None, "{case}");
                } else {
                    assert_eq!(f.filtering, F::Unknown, "{case}: {f:#?}");
                    assert!(
                        f.filtering_reason
                            .as_deref()
                            .unwrap()
                            .contains("CHANGE-REQUEST"),
                        "{case}"
                    );
                }
                let hair = if map == Map::None {
                    Some(true) // host-local delivery
                } else if stable || filter == Filter::Eif {
                    Some(hairpin)
                } else {
                    None
                };
                assert_eq!(f.hairpinning.value, hair, "{case}: {:?}", f.hairpinning);
                if hair.is_none() {
                    assert!(f.hairpinning.reason.is_some(), "{case}");
                }
                assert_eq!(
                    f.mapping_varies_by_destination.value,
                    Some(matches!(map, Map::Adm | Map::Apdm)),
                    "{case}"
                );
                assert_eq!(f.port_preservation.value, Some(map == Map::None), "{case}");
                assert_eq!(f.alg.value, None, "{case}");
                let expect_rfc = if stable || filter == Filter::Eif {
                    Some(true)
                } else {
                    None
                };
                assert_eq!(
                    f.servers[0].rfc5780, expect_rfc,
                    "{case}: {:?}",
                    f.servers[0]
                );
                assert!(
                    r.elapsed < Duration::from_secs(2),
                    "{case}: took {:?}",
                    r.elapsed
                );
                assert!(!f.consequence.is_empty());
            }
        }
    }
}

#[test]
fn clean_network_takes_a_few_round_trips() {
    let r = simulate(
        NatModel::new(Map::Eim, Filter::Eif, true),
        &[Server::Rfc5780],
        None,
    );
    assert_eq!(r.report.nat_type, NatType::FullCone);
    // Base, mapping tests and controls, filtering, hairpin: round trips of
    // 20 ms, no timeouts.
    assert!(r.elapsed < Duration::from_millis(200), "{:?}", r.elapsed);
}

#[test]
fn port_preservation_is_reported() {
    let mut m = NatModel::new(Map::Eim, Filter::Apdf, true);
    m.preserve_ports = true;
    let r = simulate(m, &[Server::Rfc5780], None).report;
    assert_eq!(r.port_preservation.value, Some(true));
    assert_eq!(r.nat_type, NatType::PortRestrictedCone);
    assert_eq!(r.mapped_address.as_deref(), Some("203.0.113.7:5000"));
}

#[test]
fn udp_blocked() {
    let mut m = NatModel::new(Map::Eim, Filter::Eif, true);
    m.blocked = true;
    let r = simulate(m, &[Server::Rfc5780], None);
    let f = &r.report;
    assert!(!f.udp);
    assert_eq!(f.nat_type, NatType::UdpBlocked);
    assert_eq!((f.mapping, f.filtering), (M::Unknown, F::Unknown));
    assert_eq!(f.hairpinning.value, None);
    assert_eq!(f.mapped_address, None);
    assert!(!f.servers[0].answered);
    // Bounded by --timeout (1 s).
    assert!(r.elapsed <= Duration::from_secs(1), "{:?}", r.elapsed);
}

#[test]
fn server_without_rfc5780_gives_unknown_with_reason() {
    for (map, filter) in [
        (Map::Eim, Filter::Apdf),
        (Map::Apdm, Filter::Apdf),
        (Map::None, Filter::Eif),
    ] {
        let r = simulate(
            NatModel::new(map, filter, true),
            &[Server::Plain],
            Some(Duration::from_secs(60)),
        );
        let f = &r.report;
        assert!(f.udp);
        let reason = f.filtering_reason.as_deref().unwrap();
        assert_eq!(f.filtering, F::Unknown);
        assert!(
            reason.contains("server lacks RFC 5780 (no OTHER-ADDRESS"),
            "{reason}"
        );
        if map == Map::None {
            // No NAT is still derivable from the local address.
            assert_eq!(f.mapping, M::NoNat);
            assert_eq!(f.nat_type, NatType::Unknown);
        } else {
            assert_eq!(f.mapping, M::Unknown);
            assert!(f.mapping_reason.as_deref().unwrap().contains("RFC 5780"));
            assert_eq!(f.nat_type, NatType::Unknown);
        }
        assert_eq!(f.servers[0].rfc5780, Some(false));
        assert!(!f.lifetime.measured);
        assert!(f
            .lifetime
            .reason
            .as_deref()
            .unwrap()
            .contains("lacks RFC 5780"));
        assert!(r.elapsed < Duration::from_secs(2));
    }
}

#[test]
fn several_plain_servers_show_mapping_varies_by_destination() {
    let a: SocketAddr = "192.0.2.10:3478".parse().unwrap();
    let b: SocketAddr = "192.0.2.20:3478".parse().unwrap();
    let servers = [Server::PlainAt(a), Server::PlainAt(b)];
    let sym = simulate(NatModel::new(Map::Adm, Filter::Apdf, false), &servers, None).report;
    assert_eq!(sym.mapping_varies_by_destination.value, Some(true));
    assert_eq!(sym.mapping, M::Unknown);
    assert!(sym
        .mapping_reason
        .as_deref()
        .unwrap()
        .contains("varies by destination"));
    assert_eq!(sym.nat_type, NatType::Symmetric);
    assert_eq!(sym.filtering, F::Unknown);

    let cone = simulate(NatModel::new(Map::Eim, Filter::Apdf, false), &servers, None).report;
    assert_eq!(cone.mapping_varies_by_destination.value, Some(false));
    assert_eq!(cone.mapping, M::EndpointIndependent);
    assert_eq!(cone.nat_type, NatType::Unknown, "filtering needs RFC 5780");
}

#[test]
fn lying_servers_give_unknown_not_wrong() {
    // OTHER-ADDRESS with the primary's IP: no RFC 5780 test is trusted.
    let r = simulate(
        NatModel::new(Map::Eim, Filter::Apdf, true),
        &[Server::OtherSameIp],
        None,
    )
    .report;
    assert_eq!(r.mapping, M::Unknown);
    assert_eq!(r.filtering, F::Unknown);
    assert!(
        r.filtering_reason.as_deref().unwrap().contains("same IP"),
        "{r:#?}"
    );
    assert_eq!(r.servers[0].rfc5780, Some(false));
    assert_eq!(r.nat_type, NatType::Unknown);

    // CHANGE-REQUEST answered from the unchanged address: behind any NAT
    // that would look like endpoint-independent filtering; we catch it.
    for filter in [Filter::Eif, Filter::Adf, Filter::Apdf] {
        let r = simulate(
            NatModel::new(Map::Eim, filter, true),
            &[Server::WrongSource],
            None,
        )
        .report;
        assert_eq!(r.mapping, M::EndpointIndependent, "{filter:?}");
        assert_eq!(r.filtering, F::Unknown, "{filter:?}");
        let why = r.filtering_reason.as_deref().unwrap();
        assert!(
            why.starts_with("server lacks RFC 5780 (") && why.contains("came from"),
            "{why}"
        );
        assert_eq!(r.servers[0].rfc5780, Some(false));
        assert_eq!(r.nat_type, NatType::Unknown);
    }

    // CHANGE-REQUEST silently dropped: behind a cone NAT the controls show
    // it is the server, not the filtering.
    let r = simulate(
        NatModel::new(Map::Eim, Filter::Eif, true),
        &[Server::DropsChange],
        None,
    )
    .report;
    assert_eq!(r.filtering, F::Unknown);
    assert!(r
        .filtering_reason
        .as_deref()
        .unwrap()
        .contains("server's fault"));
    assert_eq!(r.nat_type, NatType::Unknown);
}

#[test]
fn lifetime_search_finds_the_binding_timeout() {
    let mut m = NatModel::new(Map::Eim, Filter::Apdf, true);
    m.expiry = Some(Duration::from_secs(37));
    let r = simulate(m, &[Server::Rfc5780], Some(Duration::from_secs(120)));
    let l = &r.report.lifetime;
    assert!(l.measured, "{l:?}");
    let (lo, hi) = (l.survived_s.unwrap(), l.expired_s.unwrap());
    assert!(lo < 37.0 && hi >= 37.0 && hi - lo <= 2.0, "{lo}..{hi}");
    assert_eq!(l.max_s, Some(120.0));
    // A round stops at its first expired wait: about twice the lifetime,
    // not the 120 s maximum.
    assert!(r.elapsed < Duration::from_secs(90), "{:?}", r.elapsed);
    // The other facts are unchanged by the search.
    assert_eq!(r.report.nat_type, NatType::PortRestrictedCone);
}

#[test]
fn lifetime_longer_than_the_search() {
    let mut m = NatModel::new(Map::Eim, Filter::Eif, true);
    m.expiry = Some(Duration::from_secs(300));
    let l = simulate(m, &[Server::Rfc5780], Some(Duration::from_secs(60)))
        .report
        .lifetime;
    assert!(l.measured);
    assert_eq!((l.survived_s, l.expired_s), (Some(60.0), None));
}

#[test]
fn lifetime_needs_the_same_public_ip_or_a_server_that_honours_response_port() {
    // A server that answers the sending socket would make every binding
    // look dead; we say why instead.
    let r = simulate(
        NatModel::new(Map::Eim, Filter::Eif, true),
        &[Server::IgnoresResponsePort],
        Some(Duration::from_secs(10)),
    );
    let l = &r.report.lifetime;
    assert!(!l.measured);
    assert!(
        l.reason
            .as_deref()
            .unwrap()
            .contains("ignored RESPONSE-PORT"),
        "{l:?}"
    );
    assert!(r.elapsed < Duration::from_secs(2), "{:?}", r.elapsed);
}

#[test]
fn alg_is_seen_when_the_server_sends_mapped_address() {
    let plain = simulate(
        NatModel::new(Map::Eim, Filter::Eif, true),
        &[Server::Legacy],
        None,
    )
    .report;
    assert_eq!(plain.alg.value, Some(false));
    let mut m = NatModel::new(Map::Eim, Filter::Eif, true);
    m.alg = true;
    let r = simulate(m, &[Server::Legacy], None).report;
    assert_eq!(r.alg.value, Some(true), "{:?}", r.alg);
    // The rest of the answer is still used.
    assert_eq!(r.nat_type, NatType::FullCone);
    // Without MAPPED-ADDRESS there is nothing to compare.
    let r = simulate(m, &[Server::Rfc5780], None).report;
    assert_eq!(r.alg.value, None);
    assert!(r.alg.reason.as_deref().unwrap().contains("MAPPED-ADDRESS"));
}

#[test]
fn retransmissions_ride_out_loss() {
    // A quarter of the packets on the wire are lost: RFC 8489
    // retransmissions (RTO from the measured RTT) still reach the same
    // verdicts, within 2 s.
    for (map, filter) in [
        (Map::Eim, Filter::Eif),
        (Map::Eim, Filter::Adf),
        (Map::Eim, Filter::Apdf),
        (Map::Apdm, Filter::Apdf),
        (Map::None, Filter::Apdf),
    ] {
        let r = simulate_lossy(
            NatModel::new(map, filter, true),
            &[Server::Rfc5780],
            None,
            Some(4),
        );
        assert_eq!(
            r.report.mapping,
            mapping_of(map),
            "{map:?} {filter:?}: {:#?}",
            r.report
        );
        assert_eq!(
            r.report.nat_type,
            expected_nat_type(map, filter),
            "{map:?} {filter:?}"
        );
        assert!(r.elapsed < Duration::from_secs(2), "{:?}", r.elapsed);
    }
}

#[test]
fn table_reads_like_the_facts() {
    use common::nat_report::{NatReport, NAT_SCHEMA};
    let f = simulate(
        NatModel::new(Map::Eim, Filter::Apdf, false),
        &[Server::Rfc5780],
        None,
    )
    .report;
    let r = NatReport {
        schema: NAT_SCHEMA.into(),
        servers: vec!["stun:192.0.2.1:3478".into()],
        timeout_ms: 1000,
        elapsed_ms: f.elapsed_ms,
        primary_family: Some(f.family.clone()),
        udp: f.udp,
        mapping: f.mapping,
        filtering: f.filtering,
        nat_type: f.nat_type,
        hairpinning: f.hairpinning.value,
        mapped_address: f.mapped_address.clone(),
        consequence: f.consequence.clone(),
        families: vec![f],
    };
    let text = crate::render::nat::table(&r, crate::render::Style::plain());
    for want in [
        "port-restricted-cone",
        "endpoint-independent",
        "address-and-port-dependent",
        "203.0.113.7:",
        "not measured: not asked (--lifetime)",
        "symmetric NATs will need a TURN relay",
        "Hairpinning is not supported",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
    assert!(!text.contains('\x1b'));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["nat_type"], "port-restricted-cone");
    assert_eq!(json["hairpinning"], false);
    assert_eq!(json["families"][0]["hairpinning"]["value"], false);
}
