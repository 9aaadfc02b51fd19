//! RFC 5780 NAT behaviour discovery for one address family, sans-IO: fed
//! with time and datagrams (with the local socket they arrived on), it says
//! what to send from which socket, and finally what it found.
//!
//! Sockets (the shell binds them; ids from [`FIRST_DYNAMIC`] are bound on
//! first use, for the lifetime search):
//! - [`SOCK_MAPPING`]: Binding to every server (mapping varies by
//!   destination), then the RFC 5780 mapping tests to the primary server's
//!   alternate addresses, then the *controls*: CHANGE-REQUEST answers on a
//!   socket that has already sent to every address the server answers
//!   from, so the NAT lets them in whatever its filtering. A control that
//!   fails (or an answer from the wrong source) means the server cannot
//!   run the test, which makes filtering "unknown", never a wrong verdict.
//! - [`SOCK_FILTERING`]: a fresh socket, first used after the mapping
//!   tests, that only ever sends to the primary address, so its filter is
//!   not opened by them (the pion/stuntman bug); its CHANGE-REQUESTs
//!   measure filtering. Both
//!   (change IP+port, change port) run at once: answers arriving do not
//!   open a NAT's filter, only outbound packets do.
//! - [`SOCK_HAIRPIN`]: learns its own mapping, then sends to the mapping
//!   socket's public address while that socket sends to its public address
//!   (so neither is stopped by filtering); either arriving is hairpinning.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::nat_report::{
    Fact, FamilyReport, FilteringBehaviour, LifetimeReport, MappingBehaviour, ServerResult,
};

use super::classify;
use super::exchange::{Answer, Exchanges, Reply, Request, SockId, Transmit};
use super::lifetime::{LifetimeResult, LifetimeSearch};

pub const SOCK_MAPPING: SockId = 0;
pub const SOCK_FILTERING: SockId = 1;
pub const SOCK_HAIRPIN: SockId = 2;
/// Ids from here are the lifetime search's.
pub const FIRST_DYNAMIC: SockId = 3;

/// Smallest retransmission timeout derived from the RTT.
pub const MIN_RTO: Duration = Duration::from_millis(50);
/// The whole discovery (without the lifetime search) ends within this
/// many `timeout`s.
pub const TIMEOUTS_BOUND: u32 = 4;

/// What to probe.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// Server addresses of this family, in command-line order.
    pub servers: Vec<SocketAddr>,
    /// How each server was written (for the report).
    pub server_labels: Vec<String>,
    /// Local address of [`SOCK_MAPPING`] (the IP may be unspecified).
    pub mapping_local: SocketAddr,
    /// Addresses of this host: a mapped address among them means no NAT.
    pub local_ips: Vec<IpAddr>,
    /// Bound of each test.
    pub timeout: Duration,
    /// `--lifetime MAX`.
    pub lifetime: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    /// Mapping socket -> server i (RFC 5780 test I for the primary).
    Base(usize),
    /// Mapping socket -> alternate IP, primary port (test II).
    MapAltIp,
    /// Mapping socket -> alternate IP, alternate port (test III).
    MapAlt,
    /// Mapping socket -> primary IP, alternate port (opens the filter for
    /// the change-port control).
    OpenAltPort,
    /// Controls on the mapping socket: change IP and port / change port.
    CtlBoth,
    CtlPort,
    /// Filtering socket: test I, then change IP and port, change port.
    FBase,
    FBoth,
    FPort,
    HBase,
    /// Hairpin socket -> mapping socket's public address (and back).
    HairToMapping,
    HairToHairpin,
}

/// How a CHANGE-REQUEST answer checks out.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    /// From the expected address, RESPONSE-ORIGIN agreeing.
    Ok,
    NoAnswer,
    /// The server cannot run the test: why.
    Broken(String),
    NotRun,
}

#[derive(Debug)]
pub struct Discovery {
    cfg: DiscoveryConfig,
    start: Instant,
    deadline: Instant,
    base_rto: Duration,
    rto: Duration,
    ex: Exchanges<Test>,
    primary: Option<usize>,
    other: Option<SocketAddr>,
    hair_server: Option<usize>,
    lifetime: Option<LifetimeSearch>,
    finished: Option<Instant>,
}

impl Discovery {
    /// Starts at `now`: the first Binding requests are due immediately.
    pub fn new(now: Instant, cfg: DiscoveryConfig) -> Self {
        let base_rto = (cfg.timeout / 4).clamp(MIN_RTO, crate::stun_client::DEFAULT_RTO);
        let mut d = Discovery {
            deadline: now + cfg.timeout * TIMEOUTS_BOUND,
            start: now,
            base_rto,
            rto: base_rto,
            ex: Exchanges::default(),
            primary: None,
            other: None,
            hair_server: None,
            lifetime: None,
            finished: None,
            cfg,
        };
        for (i, s) in d.cfg.servers.clone().into_iter().enumerate() {
            d.send(now, Test::Base(i), SOCK_MAPPING, None, s, Request::PLAIN);
        }
        d.check_finished(now);
        d
    }

    fn send(
        &mut self,
        now: Instant,
        t: Test,
        sock: SockId,
        on: Option<SockId>,
        to: SocketAddr,
        r: Request,
    ) {
        let timeout = self
            .cfg
            .timeout
            .min(self.deadline.saturating_duration_since(now));
        let rto = if matches!(t, Test::Base(_)) {
            self.base_rto
        } else {
            self.rto
        };
        self.ex.start(t, now, sock, on, to, r, rto, timeout);
    }

    pub fn is_done(&self) -> bool {
        self.finished.is_some()
    }

    fn check_finished(&mut self, now: Instant) {
        if self.finished.is_none()
            && self.ex.all_done()
            && self.lifetime.as_ref().is_none_or(|l| l.is_done())
        {
            self.finished = Some(now);
        }
    }

    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if let Some(t) = self.ex.poll_transmit(now) {
            return Some(t);
        }
        self.lifetime.as_mut().and_then(|l| l.poll_transmit(now))
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let l = self.lifetime.as_ref().and_then(|l| l.poll_timeout());
        self.ex.poll_timeout().into_iter().chain(l).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.ex.handle_timeout(now);
        if let Some(l) = &mut self.lifetime {
            l.handle_timeout(now);
        }
        self.advance(now);
    }

    /// A datagram from `from` arrived on local socket `sock`.
    pub fn handle_datagram(&mut self, now: Instant, sock: SockId, from: SocketAddr, bytes: &[u8]) {
        if !self.ex.handle_datagram(now, sock, from, bytes) {
            if let Some(l) = &mut self.lifetime {
                l.handle_datagram(now, sock, from, bytes);
            }
        }
        self.advance(now);
    }

    /// One line for the progress display.
    pub fn progress(&self) -> String {
        match (&self.lifetime, self.ex.all_done()) {
            (Some(l), true) => l.progress(),
            _ => "mapping, filtering, hairpinning".to_string(),
        }
    }

    fn success(&self, t: Test) -> Option<Answer> {
        self.ex.result(t).and_then(|r| r.success().cloned())
    }

    fn advance(&mut self, now: Instant) {
        let n = self.cfg.servers.len();
        if self.primary.is_none() {
            for i in 0..n {
                let Some(a) = self.success(Test::Base(i)) else {
                    continue;
                };
                if let Ok(other) = valid_other(self.cfg.servers[i], &a) {
                    self.primary = Some(i);
                    self.other = Some(other);
                    self.rto = (a.rtt * 2).max(MIN_RTO);
                    break;
                }
            }
            if let (Some(i), Some(o)) = (self.primary, self.other) {
                let p = self.cfg.servers[i];
                self.send(
                    now,
                    Test::MapAltIp,
                    SOCK_MAPPING,
                    None,
                    SocketAddr::new(o.ip(), p.port()),
                    Request::PLAIN,
                );
                self.send(now, Test::MapAlt, SOCK_MAPPING, None, o, Request::PLAIN);
                self.send(
                    now,
                    Test::OpenAltPort,
                    SOCK_MAPPING,
                    None,
                    SocketAddr::new(p.ip(), o.port()),
                    Request::PLAIN,
                );
                if let Some(max) = self.cfg.lifetime {
                    self.lifetime = Some(LifetimeSearch::new(
                        now,
                        p,
                        max,
                        self.rto,
                        self.cfg.timeout,
                        FIRST_DYNAMIC,
                    ));
                }
            }
        }
        if self.hair_server.is_none() {
            let first = (0..n).find(|&i| {
                self.success(Test::Base(i))
                    .is_some_and(|a| a.xor_mapped.is_some())
            });
            if let Some(i) = first {
                self.hair_server = Some(i);
                self.send(
                    now,
                    Test::HBase,
                    SOCK_HAIRPIN,
                    None,
                    self.cfg.servers[i],
                    Request::PLAIN,
                );
            }
        }
        if let Some(p) = self.primary.map(|i| self.cfg.servers[i]) {
            if !self.ex.started(Test::CtlBoth)
                && [Test::MapAltIp, Test::MapAlt, Test::OpenAltPort]
                    .iter()
                    .all(|&t| self.ex.done(t))
            {
                self.send(
                    now,
                    Test::CtlBoth,
                    SOCK_MAPPING,
                    None,
                    p,
                    Request::CHANGE_IP_AND_PORT,
                );
                self.send(
                    now,
                    Test::CtlPort,
                    SOCK_MAPPING,
                    None,
                    p,
                    Request::CHANGE_PORT,
                );
                // The filtering socket starts only now, after the mapping
                // tests, and it has sent nothing before.
                self.send(now, Test::FBase, SOCK_FILTERING, None, p, Request::PLAIN);
            }
            if !self.ex.started(Test::FBoth) && self.success(Test::FBase).is_some() {
                self.send(
                    now,
                    Test::FBoth,
                    SOCK_FILTERING,
                    None,
                    p,
                    Request::CHANGE_IP_AND_PORT,
                );
                self.send(
                    now,
                    Test::FPort,
                    SOCK_FILTERING,
                    None,
                    p,
                    Request::CHANGE_PORT,
                );
            }
        }
        if !self.ex.started(Test::HairToMapping) {
            let m1 = self
                .hair_server
                .and_then(|i| self.success(Test::Base(i)))
                .and_then(|a| a.xor_mapped);
            let mh = self.success(Test::HBase).and_then(|a| a.xor_mapped);
            if let (Some(m1), Some(mh)) = (m1, mh) {
                self.send(
                    now,
                    Test::HairToMapping,
                    SOCK_HAIRPIN,
                    Some(SOCK_MAPPING),
                    m1,
                    Request::PLAIN,
                );
                self.send(
                    now,
                    Test::HairToHairpin,
                    SOCK_MAPPING,
                    Some(SOCK_HAIRPIN),
                    mh,
                    Request::PLAIN,
                );
            }
        }
        self.check_finished(now);
    }

    /// Checks a CHANGE-REQUEST answer against where it must come from.
    fn check(&self, t: Test, expect: SocketAddr) -> Check {
        match self.ex.result(t) {
            None => Check::NotRun,
            Some(Reply::TimedOut) => Check::NoAnswer,
            Some(Reply::Answered(a)) if !a.success => Check::Broken(format!(
                "error {} to CHANGE-REQUEST",
                a.error_code
                    .map_or("response".to_string(), |c| c.to_string())
            )),
            Some(Reply::Answered(a)) if a.from != expect => Check::Broken(format!(
                "the answer to CHANGE-REQUEST came from {}, not from the changed address {expect}",
                a.from
            )),
            Some(Reply::Answered(a)) => match a.origin {
                Some(o) if o != expect => Check::Broken(format!(
                    "RESPONSE-ORIGIN {o} in an answer that came from {expect}"
                )),
                _ => Check::Ok,
            },
        }
    }

    /// The mapped address of the mapping socket, as the primary (or first
    /// answering) server saw it, and that server's index.
    fn first_mapping(&self) -> Option<(usize, SocketAddr)> {
        let order = self.primary.into_iter().chain(0..self.cfg.servers.len());
        order
            .filter_map(|i| Some((i, self.success(Test::Base(i))?.xor_mapped?)))
            .next()
    }

    fn is_local(&self, m: SocketAddr) -> bool {
        let l = self.cfg.mapping_local;
        m.port() == l.port() && (m.ip() == l.ip() || self.cfg.local_ips.contains(&m.ip()))
    }

    fn mapping(&self, udp: bool) -> (MappingBehaviour, Option<String>) {
        use MappingBehaviour as M;
        if !udp {
            return (M::Unknown, Some("no server answered".into()));
        }
        let Some((_, m1)) = self.first_mapping() else {
            return (
                M::Unknown,
                Some("no answer carried XOR-MAPPED-ADDRESS".into()),
            );
        };
        if self.is_local(m1) {
            return (
                M::NoNat,
                Some(format!(
                    "the mapped address {m1} is this host's own address"
                )),
            );
        }
        if let (Some(i), Some(o)) = (self.primary, self.other) {
            let p = self.cfg.servers[i];
            let at = |t: Test, to: SocketAddr| -> Result<SocketAddr, String> {
                match self.ex.result(t) {
                    Some(Reply::Answered(a)) if a.success && a.from == to && a.xor_mapped.is_some() => {
                        Ok(a.xor_mapped.expect("checked"))
                    }
                    Some(Reply::Answered(a)) if a.success => Err(format!(
                        "server lacks RFC 5780 (the answer from {to} came from {} or had no mapped address)",
                        a.from
                    )),
                    Some(Reply::Answered(_)) => Err(format!("server lacks RFC 5780 (error response from its alternate address {to})")),
                    _ => Err(format!("server lacks RFC 5780 (no answer from its alternate address {to})")),
                }
            };
            let m2 = match at(Test::MapAltIp, SocketAddr::new(o.ip(), p.port())) {
                Ok(m) => m,
                Err(e) => return (M::Unknown, Some(e)),
            };
            if m2 == m1 {
                return (M::EndpointIndependent, None);
            }
            return match at(Test::MapAlt, o) {
                Ok(m3) if m3 == m2 => (M::AddressDependent, None),
                Ok(_) => (M::AddressAndPortDependent, None),
                Err(e) => (M::Unknown, Some(e)),
            };
        }
        // No RFC 5780 server: compare what several servers saw.
        let seen: Vec<(SocketAddr, SocketAddr)> = (0..self.cfg.servers.len())
            .filter_map(|i| {
                Some((
                    self.cfg.servers[i],
                    self.success(Test::Base(i))?.xor_mapped?,
                ))
            })
            .collect();
        let why = self.lacks_rfc5780();
        if seen.len() >= 2 {
            if seen.iter().any(|(_, m)| *m != m1) {
                return (
                    M::Unknown,
                    Some(format!(
                        "mapping varies by destination, so it is address- or address-and-port-dependent; \
                         telling which needs an RFC 5780 server ({why})"
                    )),
                );
            }
            if seen.iter().any(|(s, _)| s.ip() != seen[0].0.ip()) {
                return (
                    M::EndpointIndependent,
                    Some(format!(
                        "the same mapped address from {} servers at different IPs",
                        seen.len()
                    )),
                );
            }
        }
        (
            M::Unknown,
            Some(format!(
                "{why}; or give a second server at another IP to compare mappings"
            )),
        )
    }

    /// "server lacks RFC 5780 (<reason>)" for the first answering server.
    fn lacks_rfc5780(&self) -> String {
        let reason = (0..self.cfg.servers.len())
            .find_map(|i| {
                let a = self.ex.result(Test::Base(i))?.answer()?.clone();
                if !a.success {
                    return Some(format!(
                        "error {} to a Binding request",
                        a.error_code.unwrap_or(0)
                    ));
                }
                valid_other(self.cfg.servers[i], &a).err()
            })
            .unwrap_or_else(|| "no answer".into());
        format!("server lacks RFC 5780 ({reason})")
    }

    fn filtering(
        &self,
        udp: bool,
        mapping: MappingBehaviour,
    ) -> (FilteringBehaviour, Option<String>) {
        use FilteringBehaviour as F;
        if !udp {
            return (F::Unknown, Some("no server answered".into()));
        }
        let (Some(i), Some(o)) = (self.primary, self.other) else {
            return (F::Unknown, Some(self.lacks_rfc5780()));
        };
        let p = self.cfg.servers[i];
        let changed_port = SocketAddr::new(p.ip(), o.port());
        if self.success(Test::FBase).is_none() {
            return (
                F::Unknown,
                Some(format!("no answer from {p} to a fresh socket")),
            );
        }
        let f_both = self.check(Test::FBoth, o);
        let f_port = self.check(Test::FPort, changed_port);
        let c_both = self.check(Test::CtlBoth, o);
        let c_port = self.check(Test::CtlPort, changed_port);
        for c in [&f_both, &f_port, &c_both, &c_port] {
            if let Check::Broken(why) = c {
                return (F::Unknown, Some(format!("server lacks RFC 5780 ({why})")));
            }
        }
        if f_both == Check::Ok {
            return (F::EndpointIndependent, None);
        }
        let unverified = |what: &str| {
            let behind = match mapping {
                MappingBehaviour::AddressDependent | MappingBehaviour::AddressAndPortDependent => {
                    " (it cannot be checked behind a mapping that varies by destination)"
                }
                _ => "",
            };
            format!(
                "no answer to CHANGE-REQUEST ({what}) even on the socket whose filter was opened to \
                 the server's other addresses, so a missing answer may be the server's fault{behind}"
            )
        };
        if f_port == Check::Ok {
            return match c_both {
                Check::Ok => (F::AddressDependent, None),
                _ => (F::Unknown, Some(unverified("change IP and port"))),
            };
        }
        match (c_both, c_port) {
            (Check::Ok, Check::Ok) => (F::AddressAndPortDependent, None),
            (Check::Ok, _) => (F::Unknown, Some(unverified("change port"))),
            _ => (F::Unknown, Some(unverified("change IP and port"))),
        }
    }

    fn rfc5780_of(
        &self,
        i: usize,
        a: Option<&Answer>,
        filtering_reason: &Option<String>,
    ) -> (Option<bool>, Option<String>) {
        let Some(a) = a else {
            return (None, Some("no answer".into()));
        };
        if !a.success {
            return (
                Some(false),
                Some(format!("error {}", a.error_code.unwrap_or(0))),
            );
        }
        if let Err(e) = valid_other(self.cfg.servers[i], a) {
            return (Some(false), Some(e));
        }
        if self.primary != Some(i) {
            return (None, Some("OTHER-ADDRESS looks right; CHANGE-REQUEST not tested (only one RFC 5780 server is used)".into()));
        }
        let o = self.other.expect("primary has other");
        let changed_port = SocketAddr::new(self.cfg.servers[i].ip(), o.port());
        let checks = [
            self.check(Test::FBoth, o),
            self.check(Test::FPort, changed_port),
            self.check(Test::CtlBoth, o),
            self.check(Test::CtlPort, changed_port),
        ];
        if let Some(Check::Broken(why)) = checks.iter().find(|c| matches!(c, Check::Broken(_))) {
            return (Some(false), Some(why.clone()));
        }
        let both_ok = checks[0] == Check::Ok || checks[2] == Check::Ok;
        let port_ok = checks[1] == Check::Ok || checks[3] == Check::Ok;
        if both_ok && port_ok {
            (
                Some(true),
                Some("CHANGE-REQUEST answers came from the changed addresses".into()),
            )
        } else {
            (
                None,
                filtering_reason
                    .clone()
                    .or(Some("CHANGE-REQUEST not verified".into())),
            )
        }
    }

    /// The findings (call when [`Discovery::is_done`]; before, pending
    /// tests count as not measured).
    pub fn report(&self) -> FamilyReport {
        let n = self.cfg.servers.len();
        let answers: Vec<Option<Answer>> = (0..n)
            .map(|i| {
                self.ex
                    .result(Test::Base(i))
                    .and_then(|r| r.answer().cloned())
            })
            .collect();
        let udp = answers.iter().any(|a| a.is_some());
        let (mapping, mapping_reason) = self.mapping(udp);
        let (filtering, filtering_reason) = self.filtering(udp, mapping);
        let first = self.first_mapping();
        let m1 = first.map(|(_, m)| m);

        let mut seen: Vec<SocketAddr> = answers
            .iter()
            .flatten()
            .filter(|a| a.success)
            .filter_map(|a| a.xor_mapped)
            .collect();
        for t in [Test::MapAltIp, Test::MapAlt, Test::OpenAltPort] {
            if let Some(m) = self.success(t).and_then(|a| a.xor_mapped) {
                seen.push(m);
            }
        }
        let varies = if seen.len() >= 2 {
            Fact::yes_no(seen.iter().any(|m| *m != seen[0]))
        } else {
            Fact::unknown(if udp {
                "needs two servers, or one RFC 5780 server, that answer"
            } else {
                "no server answered"
            })
        };

        // A hairpinned packet that does not arrive may have been dropped by
        // filtering rather than not hairpinned: "no" is only a verdict when
        // neither could stop it (stable mapping or open filtering).
        let trusted = matches!(
            mapping,
            MappingBehaviour::NoNat | MappingBehaviour::EndpointIndependent
        ) || filtering == FilteringBehaviour::EndpointIndependent;
        let hairpinning = match (
            self.ex.result(Test::HairToMapping),
            self.ex.result(Test::HairToHairpin),
        ) {
            (Some(a), Some(b)) if a.answer().is_some() || b.answer().is_some() => {
                let mut f = Fact::yes_no(true);
                if mapping == MappingBehaviour::NoNat {
                    f.reason = Some("no NAT: the public address is this host's own".into());
                }
                f
            }
            (Some(_), Some(_)) if trusted => Fact::yes_no(false),
            (Some(_), Some(_)) => Fact::unknown(
                "nothing arrived, but behind a mapping that varies by destination the NAT's \
                 filtering can drop hairpinned packets, so this does not show it is missing",
            ),
            _ if !udp => Fact::unknown("no server answered"),
            _ => Fact::unknown("the second socket got no mapped address"),
        };
        let port_preservation = match m1 {
            Some(m) => Fact::yes_no(m.port() == self.cfg.mapping_local.port()),
            None => Fact::unknown("no mapped address"),
        };
        let alg = match answers
            .iter()
            .flatten()
            .find(|a| a.success && a.mapped.is_some() && a.xor_mapped.is_some())
        {
            Some(a) => Fact::yes_no(a.mapped != a.xor_mapped),
            None if udp => Fact::unknown(
                "the server sends no MAPPED-ADDRESS to compare with XOR-MAPPED-ADDRESS",
            ),
            None => Fact::unknown("no server answered"),
        };
        let lifetime = self.lifetime_report(udp);
        let nat_type = classify::nat_type(udp, mapping, filtering, varies.value);
        let servers = (0..n)
            .map(|i| {
                let a = answers[i].as_ref();
                let (rfc5780, rfc5780_reason) = self.rfc5780_of(i, a, &filtering_reason);
                ServerResult {
                    uri: self.cfg.server_labels.get(i).cloned().unwrap_or_default(),
                    address: self.cfg.servers[i].to_string(),
                    answered: a.is_some(),
                    rtt_ms: a.map(|a| ms(a.rtt)),
                    mapped_address: a.and_then(|a| a.xor_mapped).map(|m| m.to_string()),
                    other_address: a.and_then(|a| a.other).map(|m| m.to_string()),
                    response_origin: a.and_then(|a| a.origin).map(|m| m.to_string()),
                    rfc5780,
                    rfc5780_reason,
                    error_code: a.and_then(|a| a.error_code),
                }
            })
            .collect();
        let rtt_ms = first
            .and_then(|(i, _)| answers[i].as_ref())
            .map(|a| ms(a.rtt));
        FamilyReport {
            family: family_name(self.cfg.mapping_local.ip()).to_string(),
            udp,
            mapping,
            mapping_reason,
            filtering,
            filtering_reason,
            nat_type,
            consequence: classify::consequence(nat_type, hairpinning.value),
            local_address: Some(self.cfg.mapping_local.to_string()),
            mapped_address: m1.map(|m| m.to_string()),
            rfc5780_server: self.primary.map(|i| self.cfg.servers[i].to_string()),
            other_address: self.other.map(|o| o.to_string()),
            hairpinning,
            port_preservation,
            alg,
            mapping_varies_by_destination: varies,
            lifetime,
            rtt_ms,
            servers,
            error: None,
            elapsed_ms: ms(self
                .finished
                .unwrap_or(self.start)
                .saturating_duration_since(self.start)),
        }
    }

    fn lifetime_report(&self, udp: bool) -> LifetimeReport {
        let max_s = self.cfg.lifetime.map(|d| d.as_secs_f64());
        let not = |why: String| LifetimeReport {
            measured: false,
            max_s,
            survived_s: None,
            expired_s: None,
            reason: Some(why),
        };
        if self.cfg.lifetime.is_none() {
            return not("not asked (--lifetime)".into());
        }
        if !udp {
            return not("no server answered".into());
        }
        let Some(l) = &self.lifetime else {
            return not(format!(
                "{} (RESPONSE-PORT needs an RFC 5780 server)",
                self.lacks_rfc5780()
            ));
        };
        match l.result() {
            None => not("the search did not finish".into()),
            Some(LifetimeResult::Impossible(why)) => not(why.clone()),
            Some(LifetimeResult::Measured { survived, expired }) => LifetimeReport {
                measured: true,
                max_s,
                survived_s: Some(survived.as_secs_f64()),
                expired_s: expired.map(|e| e.as_secs_f64()),
                reason: Some(match expired {
                    Some(e) => format!(
                        "an idle binding lived at least {:.1}s and was gone after {:.1}s",
                        survived.as_secs_f64(),
                        e.as_secs_f64()
                    ),
                    None => format!(
                        "an idle binding outlived the {:.0}s searched",
                        survived.as_secs_f64()
                    ),
                }),
            },
        }
    }
}

/// OTHER-ADDRESS must exist and differ from the server's address in both
/// IP and port (and be of the same family), or the RFC 5780 tests mean
/// nothing.
fn valid_other(server: SocketAddr, a: &Answer) -> Result<SocketAddr, String> {
    let Some(o) = a.other else {
        return Err("no OTHER-ADDRESS in its answer".into());
    };
    if o.is_ipv4() != server.is_ipv4() {
        return Err(format!(
            "OTHER-ADDRESS {o} is of another address family than {server}"
        ));
    }
    if o.ip() == server.ip() {
        return Err(format!("OTHER-ADDRESS {o} has the same IP as {server}"));
    }
    if o.port() == server.port() {
        return Err(format!("OTHER-ADDRESS {o} has the same port as {server}"));
    }
    Ok(o)
}

pub fn family_name(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "ipv4"
    } else {
        "ipv6"
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
