//! One ICE peer on webrtc-ice (the thin async shell): gather with trickle,
//! send our description over the [`Link`], feed the peer's messages through
//! [`RemotePeer`], run checks as controlling or controlled, and stop at the
//! first of: connected, the agent's `failed`, a signaling fault, our own
//! deadline (`dial`/`accept` never return on `failed`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use webrtc_ice::agent::agent_config::AgentConfig;
use webrtc_ice::agent::Agent;
use webrtc_ice::candidate::candidate_base::unmarshal_candidate;
use webrtc_ice::candidate::{Candidate, CandidatePairState, CandidateType};
use webrtc_ice::mdns::MulticastDnsMode;
use webrtc_ice::network_type::NetworkType;
use webrtc_ice::state::ConnectionState;
use webrtc_ice::url::Url;
use webrtc_util::Conn;

use common::connect_report::{CandidateInfo, Endpoint, PairRow, SelectedPair};

use super::description::{with_prefix, BadMessage, SignalMessage};
use super::exchange::{decide, Action, RemotePeer, Role};
use super::link::{Incoming, Link};

/// How one peer is set up.
#[derive(Clone)]
pub struct PeerConfig {
    /// STUN and TURN servers for the agent.
    pub urls: Vec<Url>,
    pub include_loopback: bool,
    pub interfaces: Vec<String>,
    /// `--relay-only`: gather only relay candidates (the browser's
    /// `iceTransportPolicy: "relay"`), so a pair can only go through TURN.
    pub relay_only: bool,
    /// `--role`: overrides the rendezvous and the ufrag election.
    pub role: Option<Role>,
    pub start: Instant,
    pub deadline: Instant,
    /// Testing hook: run the agent on a webrtc-util virtual network
    /// (simulated NATs, no OS sockets) instead of the host's interfaces.
    /// Always `None` outside tests.
    #[doc(hidden)]
    pub vnet: Option<Arc<webrtc_util::vnet::net::Net>>,
}

/// Why the negotiation stopped before its end.
#[derive(Debug, Clone)]
pub enum SignalFault {
    /// The peer sent something unusable (exit 2).
    Bad(String),
    /// Signaling itself failed (exit 3).
    Fatal(String),
}

/// What one peer saw.
pub struct PeerOutcome {
    pub role: Option<Role>,
    pub connected: bool,
    pub agent_failed: bool,
    pub remote_description: bool,
    pub gathered_ms: Option<f64>,
    pub checking_ms: Option<f64>,
    pub connected_ms: Option<f64>,
    pub local: Vec<CandidateInfo>,
    pub remote: Vec<CandidateInfo>,
    pub pairs: Vec<PairRow>,
    pub selected: Option<SelectedPair>,
    pub fault: Option<SignalFault>,
    /// The agent, still open: the caller closes it (after letting the
    /// peer finish, or after the channel measurements).
    pub agent: Arc<Agent>,
    /// The connection `dial`/`accept` returned, once it did.
    pub conn: SharedConn,
}

/// The ICE connection, set by the dial/accept task.
pub type SharedConn = Arc<std::sync::Mutex<Option<Arc<dyn Conn + Send + Sync>>>>;

impl PeerOutcome {
    /// The connection, waiting at most `wait` for dial/accept to hand it
    /// over (it returns right after the agent says connected).
    pub async fn conn(&self, wait: Duration) -> Option<Arc<dyn Conn + Send + Sync>> {
        let until = Instant::now() + wait;
        loop {
            if let Some(c) = self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone() {
                return Some(c);
            }
            if Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

enum Ev {
    Candidate(Option<Arc<dyn Candidate + Send + Sync>>),
    State(ConnectionState),
}

/// After connecting, how long we still wait for gathering to end.
const GATHER_GRACE: Duration = Duration::from_secs(1);

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// The endpoint of a candidate as the report shows it.
pub fn endpoint(c: &(dyn Candidate + Send + Sync)) -> Endpoint {
    Endpoint {
        kind: c.candidate_type().to_string(),
        address: c.address(),
        port: c.port(),
        protocol: c.network_type().network_short(),
    }
}

fn info(c: &(dyn Candidate + Send + Sync)) -> CandidateInfo {
    CandidateInfo {
        kind: c.candidate_type().to_string(),
        address: c.address(),
        port: c.port(),
        protocol: c.network_type().network_short(),
        priority: c.priority(),
        sdp: with_prefix(&c.marshal()),
    }
}

/// Creates the agent (exit 3 when it cannot).
pub async fn new_agent(cfg: &PeerConfig) -> Result<Arc<Agent>, String> {
    let interface_filter: Option<webrtc_ice::agent::agent_config::InterfaceFilterFn> =
        if cfg.interfaces.is_empty() {
            None
        } else {
            let names = cfg.interfaces.clone();
            Some(Box::new(move |name: &str| names.iter().any(|n| n == name)))
        };
    let agent = Agent::new(AgentConfig {
        urls: cfg.urls.clone(),
        network_types: vec![NetworkType::Udp4, NetworkType::Udp6],
        candidate_types: if cfg.relay_only {
            vec![CandidateType::Relay]
        } else {
            vec![]
        },
        // mDNS would hide host addresses behind .local names that the
        // peer must resolve by multicast: off, addresses as they are.
        multicast_dns_mode: MulticastDnsMode::Disabled,
        include_loopback: cfg.include_loopback,
        interface_filter: Arc::new(interface_filter),
        net: cfg.vnet.clone(),
        ..AgentConfig::default()
    })
    .await
    .map_err(|e| format!("cannot create the ICE agent: {e}"))?;
    Ok(Arc::new(agent))
}

/// Runs the negotiation over `link` with `agent`.
pub async fn run(cfg: PeerConfig, agent: Arc<Agent>, mut link: Link) -> PeerOutcome {
    let start = cfg.start;
    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<Ev>();
    {
        let tx = ev_tx.clone();
        agent.on_candidate(Box::new(move |c| {
            let _ = tx.send(Ev::Candidate(c));
            Box::pin(async {})
        }));
        let tx = ev_tx;
        agent.on_connection_state_change(Box::new(move |s| {
            let _ = tx.send(Ev::State(s));
            Box::pin(async {})
        }));
    }
    let (ufrag, pwd) = agent.get_local_user_credentials().await;
    let _ = link.outgoing.send(SignalMessage::Description {
        ufrag: ufrag.clone(),
        pwd: pwd.clone(),
        candidates: vec![],
        end_of_candidates: false,
        role: cfg.role.or(link.assigned_role),
    });

    let mut out = PeerOutcome {
        // Known before the peer's description when we were told it (a
        // room with nobody else still reports the role it gave us).
        role: cfg.role.or(link.assigned_role),
        connected: false,
        agent_failed: false,
        remote_description: false,
        gathered_ms: None,
        checking_ms: None,
        connected_ms: None,
        local: vec![],
        remote: vec![],
        pairs: vec![],
        selected: None,
        fault: None,
        agent: Arc::clone(&agent),
        conn: SharedConn::default(),
    };
    if let Err(e) = agent.gather_candidates() {
        out.fault = Some(SignalFault::Fatal(format!("cannot gather candidates: {e}")));
        return finish(out, &agent).await;
    }

    let mut remote = RemotePeer::default();
    // Dropping this cancels dial/accept.
    let mut cancel: Option<mpsc::Sender<()>> = None;
    let mut incoming_open = true;
    let deadline = tokio::time::sleep_until(tokio::time::Instant::from_std(cfg.deadline));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            Some(ev) = ev_rx.recv() => match ev {
                Ev::Candidate(Some(c)) => {
                    out.local.push(info(c.as_ref()));
                    let _ = link.outgoing.send(SignalMessage::Candidate(c.marshal()));
                }
                Ev::Candidate(None) => {
                    out.gathered_ms.get_or_insert(ms(start));
                    let _ = link.outgoing.send(SignalMessage::EndOfCandidates);
                    if out.connected {
                        break;
                    }
                }
                Ev::State(ConnectionState::Checking) => {
                    out.checking_ms.get_or_insert(ms(start));
                }
                Ev::State(ConnectionState::Connected | ConnectionState::Completed) => {
                    out.connected_ms.get_or_insert(ms(start));
                    out.connected = true;
                    if out.gathered_ms.is_some() {
                        break;
                    }
                    // Let gathering finish (srflx/relay rows for the
                    // report), briefly: a silent server takes the agent 5 s.
                    let until = (Instant::now() + GATHER_GRACE).min(cfg.deadline);
                    deadline.as_mut().reset(tokio::time::Instant::from_std(until));
                }
                Ev::State(ConnectionState::Failed) => {
                    out.agent_failed = true;
                    break;
                }
                Ev::State(_) => {}
            },
            inc = link.incoming.recv(), if incoming_open => match inc {
                Some(Incoming::Message(m)) => {
                    let actions = match remote.handle(m) {
                        Ok(a) => a,
                        Err(BadMessage(e)) => {
                            out.fault = Some(SignalFault::Bad(e));
                            break;
                        }
                    };
                    if let Err(e) = apply(&cfg, &agent, &ufrag, &link, &mut out, &mut cancel, actions).await {
                        out.fault = Some(SignalFault::Bad(e));
                        break;
                    }
                }
                Some(Incoming::Bad(BadMessage(e))) => {
                    out.fault = Some(SignalFault::Bad(e));
                    break;
                }
                Some(Incoming::Fatal(e)) => {
                    out.fault = Some(SignalFault::Fatal(e));
                    break;
                }
                Some(Incoming::Closed) | None => incoming_open = false,
            },
        }
    }
    drop(cancel);
    // The writer delivers what is queued (e.g. the file is written).
    drop(link.outgoing);
    if let Some(w) = link.writer.take() {
        let left = cfg
            .deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(500));
        let _ = tokio::time::timeout(left, w).await;
    }
    finish(out, &agent).await
}

async fn apply(
    cfg: &PeerConfig,
    agent: &Arc<Agent>,
    local_ufrag: &str,
    link: &Link,
    out: &mut PeerOutcome,
    cancel: &mut Option<mpsc::Sender<()>>,
    actions: Vec<Action>,
) -> Result<(), String> {
    for a in actions {
        match a {
            Action::Start {
                ufrag,
                pwd,
                role: theirs,
            } => {
                out.remote_description = true;
                let role = decide(cfg.role.or(link.assigned_role), theirs, local_ufrag, &ufrag)
                    .map_err(|e| e.0)?;
                out.role = Some(role);
                let (tx, rx) = mpsc::channel(1);
                *cancel = Some(tx);
                let agent = Arc::clone(agent);
                let slot = Arc::clone(&out.conn);
                // The connection is seen through the state callback; the
                // channel measurements take the Conn from here.
                tokio::spawn(async move {
                    let conn: Option<Arc<dyn Conn + Send + Sync>> = match role {
                        Role::Offer => agent.dial(rx, ufrag, pwd).await.ok().map(|c| c as _),
                        Role::Answer => agent.accept(rx, ufrag, pwd).await.ok().map(|c| c as _),
                    };
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = conn;
                });
            }
            Action::AddCandidate(c) => {
                let cand = unmarshal_candidate(&c).map_err(|e| {
                    format!(
                        "the peer's candidate {:?} does not parse: {e}",
                        with_prefix(&c)
                    )
                })?;
                let cand: Arc<dyn Candidate + Send + Sync> = Arc::new(cand);
                out.remote.push(info(cand.as_ref()));
                agent.add_remote_candidate(&cand).map_err(|e| {
                    format!(
                        "the peer's candidate {:?} was refused: {e}",
                        with_prefix(&c)
                    )
                })?;
            }
            Action::RemoteComplete => {}
        }
    }
    Ok(())
}

/// Reads the selected pair and every pair's end state from the agent.
async fn finish(mut out: PeerOutcome, agent: &Agent) -> PeerOutcome {
    if let Some(p) = agent.get_selected_candidate_pair() {
        let (l, r) = (endpoint(p.local.as_ref()), endpoint(p.remote.as_ref()));
        out.selected = Some(SelectedPair {
            prflx_learned: l.kind == "prflx" || r.kind == "prflx",
            relayed: p.local.candidate_type() == CandidateType::Relay
                || p.remote.candidate_type() == CandidateType::Relay,
            local: l,
            remote: r,
        });
    }
    let locals = agent.get_local_candidates_stats().await;
    let remotes = agent.get_remote_candidates_stats().await;
    let find = |stats: &[webrtc_ice::agent::agent_stats::CandidateStats], id: &str| {
        stats.iter().find(|s| s.id == id).map(|s| Endpoint {
            kind: s.candidate_type.to_string(),
            address: s.ip.clone(),
            port: s.port,
            protocol: s.network_type.network_short(),
        })
    };
    for s in agent.get_candidate_pairs_stats().await {
        let (Some(local), Some(remote)) = (
            find(locals.as_slice(), &s.local_candidate_id),
            find(remotes.as_slice(), &s.remote_candidate_id),
        ) else {
            continue;
        };
        out.pairs.push(PairRow {
            local,
            remote,
            state: match s.state {
                CandidatePairState::Waiting => "waiting",
                CandidatePairState::InProgress => "in-progress",
                CandidatePairState::Failed => "failed",
                CandidatePairState::Succeeded => "succeeded",
                CandidatePairState::Unspecified => "waiting",
            }
            .to_string(),
            nominated: s.nominated,
        });
    }
    out
}
