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
//! Current-thread runtime on purpose (multi-thread with trickle stalled
//! 2 of 4 runs, see ANCHORS.md).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ice_probe::connect::link;
use ice_probe::connect::peer::{self, PeerConfig, PeerOutcome};
use tokio::sync::Mutex;
use webrtc_ice::url::Url;
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
    let (a_cfg, b_cfg) = (cfg(&topo.nets[0]), cfg(&topo.nets[1]));
    let a_agent = peer::new_agent(&a_cfg).await.expect("agent a");
    let b_agent = peer::new_agent(&b_cfg).await.expect("agent b");
    let (a_link, b_link) = link::pair();
    let (a, b) = tokio::join!(
        peer::run(a_cfg, a_agent, a_link),
        peer::run(b_cfg, b_agent, b_link)
    );
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
    for o in [&a, &b] {
        let _ = tokio::time::timeout(Duration::from_secs(2), o.agent.close()).await;
    }
    // Bounded: after the STUN+TURN case the teardown has been seen to
    // never return.
    let teardown = Duration::from_secs(2);
    let _ = tokio::time::timeout(teardown, topo.server.close()).await;
    let _ = tokio::time::timeout(teardown, async { topo.wan.lock().await.stop().await }).await;
    result
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

/// Known problem, kept visible: a STUN URL and a TURN URL to the same
/// server (1.2.3.4:3478) give each peer two srflx candidates on the same
/// public IP; checks succeed on both sides (host/srflx/relay -> remote
/// srflx) but nothing is ever selected, not even between two full-cone
/// NATs, and the peers time out. With either URL alone it connects.
/// Run: `PAIRS=1 cargo test -p ice-probe --test vnet_matrix -- --ignored
/// --nocapture`.
#[tokio::test(flavor = "current_thread")]
#[ignore = "STUN+TURN URLs to one server never select a pair on the vnet "]
async fn stun_and_turn_urls_to_one_server() {
    let r = run_case([Nat::FullCone, Nat::FullCone], true, true).await;
    assert!(r.ok(), "connected {:?}", r.connected);
}
