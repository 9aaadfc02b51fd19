//! Hermetic NAT matrix: two peers, each behind its own simulated NAT on
//! webrtc-util's vnet (no OS sockets, no root), run through ice-probe's
//! real negotiation (`connect::peer::run` over an in-process link, like
//! selftest). A `turn` crate server on the simulated WAN answers STUN
//! Binding and, in the TURN half of the matrix, allocates relays.
//!
//! Textbook outcome: without TURN every pair connects except symmetric
//! with port-restricted and symmetric with symmetric; with TURN every
//! pair connects, those two through a relay.
//!
//! The same negotiation then carries the channel measurement across a
//! router that adds delay and loss, and the report must show both
//! (`channel_report_shows_delay_and_loss`).
//!
//! Current-thread runtime on purpose (multi-thread with trickle stalled
//! 2 of 4 runs, see ANCHORS.md).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::connect_report::ChannelOutcome;
use ice_probe::channel::wire::{self, Message, Parsed};
use ice_probe::channel::{ChannelConfig, Profile, PROTOCOL_VERSION};
use ice_probe::connect::peer::{self, PeerConfig, PeerOutcome};
use ice_probe::connect::{link, measure};
use tokio::sync::Mutex;
use webrtc_ice::url::Url;
use webrtc_util::vnet::chunk::Chunk;
use webrtc_util::vnet::nat::{EndpointDependencyType, NatType};
use webrtc_util::vnet::net::{Net, NetConfig};
use webrtc_util::vnet::router::{Nic, Router, RouterConfig};

const SERVER_IP: &str = "1.2.3.4";
const SERVER_PORT: u16 = 3478;
const REALM: &str = "vnet.test";
const USER: &str = "user";
const PASS: &str = "pass";

/// Per side: (public address of its NAT, LAN address of the peer, LAN cidr).
const SIDES: [(&str, &str, &str); 2] = [
    ("27.1.1.1", "192.168.0.1", "192.168.0.1/24"),
    ("28.1.1.1", "10.2.0.1", "10.2.0.1/24"),
];

/// Expected to connect: generous. Expected to fail: short, the case ends
/// at our own deadline (the agent's `failed` comes much later).
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);
const FAIL_DEADLINE: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Nat {
    FullCone,
    PortRestricted,
    Symmetric,
}

impl Nat {
    fn name(self) -> &'static str {
        match self {
            Nat::FullCone => "full-cone",
            Nat::PortRestricted => "port-restricted",
            Nat::Symmetric => "symmetric",
        }
    }

    fn vnet(self) -> NatType {
        use EndpointDependencyType::*;
        let (mapping_behavior, filtering_behavior) = match self {
            Nat::FullCone => (EndpointIndependent, EndpointIndependent),
            Nat::PortRestricted => (EndpointIndependent, EndpointAddrPortDependent),
            Nat::Symmetric => (EndpointAddrPortDependent, EndpointAddrPortDependent),
        };
        NatType {
            mapping_behavior,
            filtering_behavior,
            ..Default::default()
        }
    }
}

/// The textbook answer without TURN.
fn direct_possible(a: Nat, b: Nat) -> bool {
    !matches!(
        (a, b),
        (Nat::Symmetric, Nat::PortRestricted)
            | (Nat::PortRestricted, Nat::Symmetric)
            | (Nat::Symmetric, Nat::Symmetric)
    )
}

struct Auth(HashMap<String, Vec<u8>>);

impl turn::auth::AuthHandler for Auth {
    fn auth_handle(
        &self,
        username: &str,
        _realm: &str,
        _src: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        self.0
            .get(username)
            .cloned()
            .ok_or_else(|| turn::Error::Other("unknown user".into()))
    }
}

struct Topology {
    wan: Arc<Mutex<Router>>,
    nets: [Arc<Net>; 2],
    server: turn::server::Server,
}

async fn attach_net(net: &Arc<Net>, router: &Arc<Mutex<Router>>) {
    let nic = net.get_nic().expect("nic");
    router
        .lock()
        .await
        .add_net(Arc::clone(&nic))
        .await
        .expect("add_net");
    nic.lock()
        .await
        .set_router(Arc::clone(router))
        .await
        .expect("set_router");
}

async fn attach_router(child: &Arc<Mutex<Router>>, parent: &Arc<Mutex<Router>>) {
    parent
        .lock()
        .await
        .add_router(Arc::clone(child))
        .await
        .expect("add_router");
    child
        .lock()
        .await
        .set_router(Arc::clone(parent))
        .await
        .expect("set_router");
}

/// A WAN router holding the STUN/TURN server at a public address and two
/// LAN routers, each a NAT of the given kind with one peer behind it.
async fn topology(nats: [Nat; 2]) -> Topology {
    let wan = Arc::new(Mutex::new(
        Router::new(RouterConfig {
            cidr: "0.0.0.0/0".into(),
            ..Default::default()
        })
        .expect("wan"),
    ));
    let server_net = Arc::new(Net::new(Some(NetConfig {
        static_ip: SERVER_IP.into(),
        ..Default::default()
    })));
    attach_net(&server_net, &wan).await;

    let mut nets = Vec::new();
    for (nat, (public, local, cidr)) in nats.iter().zip(SIDES) {
        let lan = Arc::new(Mutex::new(
            Router::new(RouterConfig {
                static_ips: vec![public.into()],
                cidr: cidr.into(),
                nat_type: Some(nat.vnet()),
                ..Default::default()
            })
            .expect("lan"),
        ));
        let net = Arc::new(Net::new(Some(NetConfig {
            static_ips: vec![local.into()],
            ..Default::default()
        })));
        attach_net(&net, &lan).await;
        attach_router(&lan, &wan).await;
        nets.push(net);
    }
    wan.lock().await.start().await.expect("start wan");

    let conn = server_net
        .bind(SocketAddr::new(
            IpAddr::from_str(SERVER_IP).unwrap(),
            SERVER_PORT,
        ))
        .await
        .expect("bind server");
    let mut creds = HashMap::new();
    creds.insert(
        USER.to_owned(),
        turn::auth::generate_auth_key(USER, REALM, PASS),
    );
    let server = turn::server::Server::new(turn::server::config::ServerConfig {
        conn_configs: vec![turn::server::config::ConnConfig {
            conn,
            relay_addr_generator: Box::new(
                turn::relay::relay_static::RelayAddressGeneratorStatic {
                    relay_address: IpAddr::from_str(SERVER_IP).unwrap(),
                    address: "0.0.0.0".into(),
                    net: server_net,
                },
            ),
        }],
        realm: REALM.into(),
        auth_handler: Arc::new(Auth(creds)),
        channel_bind_timeout: Duration::from_secs(0),
        alloc_close_notify: None,
    })
    .await
    .expect("turn server");

    let [a, b]: [Arc<Net>; 2] = nets.try_into().ok().unwrap();
    Topology {
        wan,
        nets: [a, b],
        server,
    }
}

/// Without TURN: the STUN URL. With TURN: the TURN URL alone (the turn
/// server answers Binding too, so it also gives the srflx candidate).
/// `stun_too` adds the STUN URL to the same server as well: see
/// `stun_and_turn_urls_to_one_server`.
fn urls(with_turn: bool, stun_too: bool) -> Vec<Url> {
    let stun = Url::parse_url(&format!("stun:{SERVER_IP}:{SERVER_PORT}")).unwrap();
    if !with_turn {
        return vec![stun];
    }
    let mut turn =
        Url::parse_url(&format!("turn:{SERVER_IP}:{SERVER_PORT}?transport=udp")).unwrap();
    turn.username = USER.into();
    turn.password = PASS.into();
    if stun_too {
        vec![stun, turn]
    } else {
        vec![turn]
    }
}

struct CaseResult {
    nats: [Nat; 2],
    with_turn: bool,
    expect_connect: bool,
    connected: [bool; 2],
    relayed: bool,
    selected: String,
    elapsed: Duration,
}

impl CaseResult {
    fn ok(&self) -> bool {
        let both = self.connected[0] && self.connected[1];
        let none = !self.connected[0] && !self.connected[1];
        if !self.expect_connect {
            return none;
        }
        // Where only a relay can work, the relay must be what connected.
        let relay_needed = self.with_turn && !direct_possible(self.nats[0], self.nats[1]);
        both && (!relay_needed || self.relayed)
    }
}

fn describe(o: &PeerOutcome) -> String {
    match &o.selected {
        Some(s) => format!(
            "{} {}:{} -> {} {}:{}",
            s.local.kind,
            s.local.address,
            s.local.port,
            s.remote.kind,
            s.remote.address,
            s.remote.port
        ),
        None => "-".into(),
    }
}

/// Both agents negotiate over an in-process signaling link.
async fn negotiate(a_cfg: PeerConfig, b_cfg: PeerConfig) -> (PeerOutcome, PeerOutcome) {
    let a_agent = peer::new_agent(&a_cfg).await.expect("agent a");
    let b_agent = peer::new_agent(&b_cfg).await.expect("agent b");
    let (a_link, b_link) = link::pair();
    tokio::join!(
        peer::run(a_cfg, a_agent, a_link),
        peer::run(b_cfg, b_agent, b_link)
    )
}

async fn run_case(nats: [Nat; 2], with_turn: bool, stun_too: bool) -> CaseResult {
    let expect_connect = with_turn || direct_possible(nats[0], nats[1]);
    let topo = topology(nats).await;
    let start = Instant::now();
    let deadline = start
        + if expect_connect {
            CONNECT_DEADLINE
        } else {
            FAIL_DEADLINE
        };
    let cfg = |net: &Arc<Net>| PeerConfig {
        urls: urls(with_turn, stun_too),
        include_loopback: false,
        interfaces: vec![],
        relay_only: false,
        role: None,
        start,
        deadline,
        vnet: Some(Arc::clone(net)),
    };
    let (a, b) = negotiate(cfg(&topo.nets[0]), cfg(&topo.nets[1])).await;
    let elapsed = start.elapsed();
    if std::env::var("PAIRS").is_ok() {
        for (side, o) in [("A", &a), ("B", &b)] {
            for p in &o.pairs {
                eprintln!(
                    "  {side} {}:{}:{} -> {}:{}:{} {}",
                    p.local.kind,
                    p.local.address,
                    p.local.port,
                    p.remote.kind,
                    p.remote.address,
                    p.remote.port,
                    p.state
                );
            }
        }
    }
    let relayed = a.selected.as_ref().is_some_and(|s| s.relayed)
        || b.selected.as_ref().is_some_and(|s| s.relayed);
    let result = CaseResult {
        nats,
        with_turn,
        expect_connect,
        connected: [a.connected, b.connected],
        relayed,
        selected: describe(&a),
        elapsed,
    };
    close_peers([&a, &b]).await;
    // Bounded: after the STUN+TURN case the teardown has been seen to
    // never return.
    let _ = tokio::time::timeout(TEARDOWN, topo.server.close()).await;
    stop(&topo.wan).await;
    result
}

const TEARDOWN: Duration = Duration::from_secs(2);

async fn close_peers(peers: [&PeerOutcome; 2]) {
    for o in peers {
        let _ = tokio::time::timeout(TEARDOWN, o.agent.close()).await;
    }
}

async fn stop(router: &Arc<Mutex<Router>>) {
    let _ = tokio::time::timeout(TEARDOWN, async { router.lock().await.stop().await }).await;
}

async fn matrix(with_turn: bool) {
    use Nat::*;
    let pairs = [
        [FullCone, FullCone],
        [FullCone, PortRestricted],
        [FullCone, Symmetric],
        [PortRestricted, PortRestricted],
        [PortRestricted, Symmetric],
        [Symmetric, Symmetric],
    ];
    let mut results = Vec::new();
    for nats in pairs {
        results.push(run_case(nats, with_turn, false).await);
    }

    eprintln!(
        "{:<16} {:<16} {:<5} {:<8} {:<9} {:<7} {:>7}  selected pair (peer A)",
        "peer A", "peer B", "turn", "expect", "connected", "relayed", "ms"
    );
    for r in &results {
        eprintln!(
            "{:<16} {:<16} {:<5} {:<8} {:<9} {:<7} {:>7.0}  {}{}",
            r.nats[0].name(),
            r.nats[1].name(),
            if r.with_turn { "yes" } else { "no" },
            if r.expect_connect { "connect" } else { "fail" },
            match r.connected {
                [true, true] => "both",
                [false, false] => "none",
                _ => "one",
            },
            if r.relayed { "yes" } else { "no" },
            r.elapsed.as_secs_f64() * 1000.0,
            r.selected,
            if r.ok() { "" } else { "   <-- UNEXPECTED" },
        );
    }
    let bad: Vec<_> = results.iter().filter(|r| !r.ok()).collect();
    assert!(
        bad.is_empty(),
        "{} case(s) contradict the textbook",
        bad.len()
    );
}

/// Without TURN: everything connects but symmetric with port-restricted
/// or symmetric.
#[tokio::test(flavor = "current_thread")]
async fn nat_matrix_without_turn() {
    matrix(false).await;
}

/// With the turn crate's server on the vnet: everything connects, the
/// symmetric-with-(port-restricted|symmetric) cases through a relay.
#[tokio::test(flavor = "current_thread")]
async fn nat_matrix_with_turn() {
    matrix(true).await;
}

/// Known problem of the simulator, kept visible: a STUN URL and a TURN URL
/// to the same server (1.2.3.4:3478) never select a pair, not even
/// between two full-cone NATs. Not ICE and not ice-probe: webrtc-util
/// 0.17.2's vnet deadlocks. Traced with chunk filters on every router
/// (`Router::add_chunk_filter`): the WAN router's chunk loop forwards its
/// last chunk ~20 ms in and never another, so after the first round of
/// checks (some succeed, hence the "succeeded" rows) nothing crosses the
/// WAN: no USE-CANDIDATE reaches the controlled peer, the TURN
/// ChannelBind is retransmitted unanswered, and the peers run into the
/// deadline. The cycle (read from the source) is the lock-order
/// inversion described at [`flat_topology`] (NAT `router_internal` ->
/// peer's `VNetInternal` -> NAT `Router` -> NAT `router_internal`); a
/// third socket per peer (two srflx sockets and the TURN client instead
/// of one srflx and the TURN client) makes the opening burst dense enough
/// to close it on every run. Duplicate srflx
/// candidates are not the cause: the agents pair and check them fine
/// while the WAN still forwards. Fixing it takes webrtc-util (release the
/// `VNetInternal` lock before `VNetInternal::write` locks the router, or
/// the `router_internal` lock before a router delivers to a NIC).
/// The same setup on the real network stack passes: see
/// `stun_and_turn_urls_of_one_server` in tests/tests/lab_connect.rs.
/// Run: `PAIRS=1 cargo test -p ice-probe --test vnet_matrix -- --ignored
/// --nocapture`.
#[tokio::test(flavor = "current_thread")]
#[ignore = "webrtc-util 0.17.2 vnet deadlock (lock-order inversion in NAT routers): the WAN stops forwarding ~20 ms in; see the comment"]
async fn stun_and_turn_urls_to_one_server() {
    let r = run_case([Nat::FullCone, Nat::FullCone], true, true).await;
    assert!(r.ok(), "connected {:?}", r.connected);
}

// --------------------------------------------------------------------------
// Delay and loss on the path, seen by the channel measurement
// --------------------------------------------------------------------------

/// One-way delay of the impaired path: the round trip grows by 2x this.
const ONE_WAY_DELAY: Duration = Duration::from_millis(50);
/// Loss of the impaired path, per mille, each direction.
const LOSS_PER_MILLE: u64 = 100;
/// How long each side sends.
const MEASURE_FOR: Duration = Duration::from_secs(3);

/// What the router between the peers does to their packets.
#[derive(Clone, Default)]
struct Impairment {
    /// Every packet waits this long in the router (its `min_delay`).
    one_way_delay: Duration,
    /// Drops a share of the packets between the peers once switched on.
    loss: Option<Arc<Loss>>,
}

/// Loss between the peers, off until the test switches it on (so ICE is
/// not what is measured), pseudo-random but reproducible: whether a
/// channel DATA message is dropped depends only on its sender and
/// sequence number, so each direction loses the same share whatever the
/// interleaving of the run (a shared stream would split its drops between
/// the directions differently on every run); every other packet (acks,
/// HELLO, FIN, STUN) is dropped at the same rate from a counter stream.
/// The dropped DATA messages are counted per sender: the truth the
/// report's loss must equal. No fixed pattern ("every 10th"): it could
/// alias with the traffic's own.
struct Loss {
    on: AtomicBool,
    per_mille: u64,
    counter: AtomicU64,
    dropped: AtomicU64,
    /// DATA messages dropped, by sender (the index in `SIDES`).
    data_dropped: [AtomicU64; 2],
}

/// One stream per sender for DATA drops, chosen (offline) so that at
/// 100 per mille the dropped share of sequence numbers 0..N stays within
/// 10 % +- 0.75 % for every N from 300 to 3,000.
const DATA_STREAMS: [u64; 2] = [58, 130];
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// splitmix64's output function: uniform over u64 for consecutive inputs
/// spaced by `GAMMA`.
fn splitmix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Loss {
    fn new(per_mille: u64) -> Arc<Self> {
        Arc::new(Loss {
            on: AtomicBool::new(false),
            per_mille,
            counter: AtomicU64::new(0x5eed),
            dropped: AtomicU64::new(0),
            data_dropped: Default::default(),
        })
    }

    /// The chunk filter: false drops `c`.
    fn pass(&self, peers: &[IpAddr; 2], c: &(dyn Chunk + Send + Sync)) -> bool {
        let Some(from) = peers.iter().position(|p| *p == c.get_source_ip()) else {
            return true;
        };
        if !peers.contains(&c.get_destination_ip()) || !self.on.load(Ordering::Relaxed) {
            return true;
        }
        let data_seq = match wire::parse(PROTOCOL_VERSION, &c.user_data()) {
            Parsed::Ours(Message::Data { seq, .. }) => Some(seq),
            _ => None,
        };
        let draw = match data_seq {
            Some(seq) => DATA_STREAMS[from].wrapping_add(seq.wrapping_add(1).wrapping_mul(GAMMA)),
            None => self
                .counter
                .fetch_add(GAMMA, Ordering::Relaxed)
                .wrapping_add(GAMMA),
        };
        if splitmix(draw) % 1000 >= self.per_mille {
            return true;
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if data_seq.is_some() {
            self.data_dropped[from].fetch_add(1, Ordering::Relaxed);
        }
        false
    }
}

/// Both peers on one router, each with a public address (host candidates,
/// no NAT): the router applies the impairment.
///
/// Not the NAT topology of the matrix on purpose: webrtc-util 0.17's vnet
/// has a lock-order inversion that a NAT router under sustained two-way
/// traffic hits (seen: a zero-delay run with 16+ messages in flight stuck
/// for good in the ICE conn's `send`). The LAN router's chunk loop holds
/// its `router_internal` lock while delivering to the peer's `Net` (wants
/// the `VNetInternal` lock); the peer's `send_to` holds `VNetInternal`
/// while it locks the LAN `Router`; the WAN router's loop holds that LAN
/// `Router` lock while `on_inbound_chunk` wants the LAN `router_internal`.
/// The root router has no parent to close that cycle.
async fn flat_topology(impairment: &Impairment) -> (Arc<Mutex<Router>>, [Arc<Net>; 2]) {
    let router = Arc::new(Mutex::new(
        Router::new(RouterConfig {
            cidr: "0.0.0.0/0".into(),
            min_delay: impairment.one_way_delay,
            ..Default::default()
        })
        .expect("router"),
    ));
    let ips = SIDES.map(|(public, _, _)| public);
    if let Some(loss) = &impairment.loss {
        let loss = Arc::clone(loss);
        let peers: [IpAddr; 2] = ips.map(|ip| ip.parse().unwrap());
        router
            .lock()
            .await
            .add_chunk_filter(Box::new(move |c| loss.pass(&peers, c)))
            .await;
    }
    let mut nets = Vec::new();
    for ip in ips {
        let net = Arc::new(Net::new(Some(NetConfig {
            static_ips: vec![ip.into()],
            ..Default::default()
        })));
        attach_net(&net, &router).await;
        nets.push(net);
    }
    router.lock().await.start().await.expect("start router");
    let [a, b]: [Arc<Net>; 2] = nets.try_into().ok().unwrap();
    (router, [a, b])
}

/// Two peers connect through ice-probe's negotiation (host pair), then
/// both run the channel measurement at once over the selected pair
/// (`connect::measure`, what `connect` runs), the loss switched on in
/// between.
async fn measure_across(impairment: Impairment) -> [ChannelOutcome; 2] {
    let (router, nets) = flat_topology(&impairment).await;
    let start = Instant::now();
    let cfg = |net: &Arc<Net>| PeerConfig {
        urls: vec![],
        include_loopback: false,
        interfaces: vec![],
        relay_only: false,
        role: None,
        start,
        deadline: start + CONNECT_DEADLINE,
        vnet: Some(Arc::clone(net)),
    };
    let (a, b) = negotiate(cfg(&nets[0]), cfg(&nets[1])).await;
    assert!(
        a.connected && b.connected,
        "not connected: {}",
        describe(&a)
    );
    if let Some(loss) = &impairment.loss {
        loss.on.store(true, Ordering::Relaxed);
    }
    let config = ChannelConfig::new(Profile::data(), MEASURE_FOR);
    let wait = Duration::from_secs(2);
    let (ca, cb) = tokio::join!(a.conn(wait), b.conn(wait));
    let (ra, rb) = tokio::join!(
        measure::measure(ca, Some(&config)),
        measure::measure(cb, Some(&config))
    );
    if let Some(loss) = &impairment.loss {
        loss.on.store(false, Ordering::Relaxed);
        eprintln!(
            "the router dropped {} packets between the peers",
            loss.dropped.load(Ordering::Relaxed)
        );
    }
    close_peers([&a, &b]).await;
    stop(&router).await;
    [ra, rb]
}

/// One side's figures: (RTT p50 of its messages in ms, loss % of what it
/// sent, loss % of what the peer sent, messages it lost).
fn figures(c: &ChannelOutcome, side: &str) -> (f64, f64, f64, u64) {
    assert_eq!(c.status, "measured", "{side}: {c:#?}");
    let r = c.report.as_ref().expect("report");
    let (out, inb) = (r.outbound.as_ref().unwrap(), r.inbound.as_ref().unwrap());
    for d in [out, inb] {
        // Enough packets that a loss share means something.
        assert!(d.sent_packets.unwrap() >= 300, "{side}: {r:#?}");
    }
    (
        out.rtt_ms.as_ref().expect("rtt").p50,
        out.loss_pct.expect("outbound loss"),
        inb.loss_pct.expect("inbound loss"),
        out.lost_packets.expect("outbound lost packets"),
    )
}

/// The channel report shows what the path does: a clean path loses
/// nothing and its round trip is well under the delay we add; 50 ms each
/// way adds ~100 ms to the round trip; 10 % random loss shows as ~10 % in
/// each direction.
#[tokio::test(flavor = "current_thread")]
async fn channel_report_shows_delay_and_loss() {
    let clean = measure_across(Impairment::default()).await;
    let loss = Loss::new(LOSS_PER_MILLE);
    let impaired = measure_across(Impairment {
        one_way_delay: ONE_WAY_DELAY,
        loss: Some(Arc::clone(&loss)),
    })
    .await;

    let added_rtt = 2.0 * ONE_WAY_DELAY.as_secs_f64() * 1e3;
    let want_loss = LOSS_PER_MILLE as f64 / 10.0;
    for (n, (side, (c, i))) in ["A", "B"]
        .iter()
        .zip(clean.iter().zip(&impaired))
        .enumerate()
    {
        let (clean_rtt, clean_out, clean_in, _) = figures(c, side);
        let (rtt, lost_out, lost_in, lost) = figures(i, side);
        eprintln!(
            "{side}: clean rtt p50 {clean_rtt:.1} ms, loss {clean_out:.2} % out / {clean_in:.2} % in; \
             impaired rtt p50 {rtt:.1} ms, loss {lost_out:.2} % out / {lost_in:.2} % in"
        );
        // The control: the vnet itself loses nothing, and its round trip
        // is well under what we add.
        assert_eq!((clean_out, clean_in), (0.0, 0.0), "{side}: {c:#?}");
        assert!(clean_rtt < added_rtt / 2.0, "{side}: clean rtt {clean_rtt}");
        // Every message crosses the router twice: at least 2x the delay
        // (the router holds each packet that long), and far from 4x (the
        // delay counted twice per crossing).
        assert!(
            rtt >= added_rtt && rtt < 1.5 * added_rtt,
            "{side}: rtt p50 {rtt} ms with {added_rtt} ms added to the round trip"
        );
        // Exactly the messages the router dropped, and so 10 % +- 0.75
        // (see `DATA_STREAMS`); 2 points of tolerance.
        let truth = loss.data_dropped[n].load(Ordering::Relaxed);
        let sent = i
            .report
            .as_ref()
            .unwrap()
            .outbound
            .as_ref()
            .unwrap()
            .sent_packets;
        assert!(
            sent <= Some(3000),
            "{side}: beyond what DATA_STREAMS was chosen for"
        );
        assert_eq!(lost, truth, "{side}: the router dropped {truth}: {i:#?}");
        for lost in [lost_out, lost_in] {
            assert!(
                (lost - want_loss).abs() < 2.0,
                "{side}: loss {lost} % with {want_loss} % on the path: {i:#?}"
            );
        }
    }
}
