//! The webrtc-ice agents that gather candidates. One agent gathers host
//! candidates and one agent per STUN/TURN URL gathers that URL's srflx or
//! relay candidate: the agent does not record which URL produced a
//! candidate, so this is how each row gets its URL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;
use webrtc_ice::agent::agent_config::AgentConfig;
use webrtc_ice::agent::Agent;
use webrtc_ice::candidate::{Candidate, CandidateType};
use webrtc_ice::mdns::MulticastDnsMode;
use webrtc_ice::network_type::NetworkType;
use webrtc_ice::url::{ProtoType, SchemeType, Url};

use common::gather_report::CandidateRow;

use super::credentials::Credentials;
use super::priority::PriorityParts;

/// What one agent gathers.
#[derive(Debug, Clone)]
pub enum AgentJob {
    /// Host candidates on the chosen interfaces.
    Host,
    /// The srflx candidate from one STUN server (UDP).
    Srflx { server: SocketAddr },
    /// The relay candidate from one TURN server (UDP).
    Relay {
        server: SocketAddr,
        creds: Option<Credentials>,
    },
}

/// Where candidates may come from.
#[derive(Debug, Clone, Default)]
pub struct InterfaceChoice {
    /// Only these interfaces (empty: all).
    pub interfaces: Vec<String>,
    pub include_loopback: bool,
}

/// What an agent reports while gathering.
pub enum AgentEvent {
    Candidate {
        agent: usize,
        at: Instant,
        candidate: Arc<dyn Candidate + Send + Sync>,
    },
    /// The agent finished gathering.
    Complete { agent: usize },
}

fn url_for(server: SocketAddr, scheme: SchemeType, creds: Option<&Credentials>) -> Url {
    let host = match server {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    Url {
        scheme,
        host,
        port: server.port(),
        username: creds.map(|c| c.username.clone()).unwrap_or_default(),
        password: creds.map(|c| c.password.clone()).unwrap_or_default(),
        proto: ProtoType::Udp,
    }
}

fn family(server: SocketAddr) -> Vec<NetworkType> {
    if server.is_ipv4() {
        vec![NetworkType::Udp4]
    } else {
        vec![NetworkType::Udp6]
    }
}

/// Creates agent `index` for `job` and starts gathering; candidates and
/// completion go to `events`.
pub async fn start(
    index: usize,
    job: &AgentJob,
    choice: &InterfaceChoice,
    events: UnboundedSender<AgentEvent>,
) -> Result<Agent, webrtc_ice::Error> {
    let (candidate_types, urls, network_types) = match job {
        AgentJob::Host => (
            vec![CandidateType::Host],
            vec![],
            vec![NetworkType::Udp4, NetworkType::Udp6],
        ),
        AgentJob::Srflx { server } => (
            vec![CandidateType::ServerReflexive],
            vec![url_for(*server, SchemeType::Stun, None)],
            family(*server),
        ),
        AgentJob::Relay { server, creds } => (
            vec![CandidateType::Relay],
            vec![url_for(*server, SchemeType::Turn, creds.as_ref())],
            family(*server),
        ),
    };
    let interface_filter: Option<webrtc_ice::agent::agent_config::InterfaceFilterFn> =
        if choice.interfaces.is_empty() {
            None
        } else {
            let names = choice.interfaces.clone();
            Some(Box::new(move |name: &str| names.iter().any(|n| n == name)))
        };
    let agent = Agent::new(AgentConfig {
        urls,
        network_types,
        candidate_types,
        // mDNS would hide host addresses behind .local names and send
        // multicast: off, so the table shows real addresses.
        multicast_dns_mode: MulticastDnsMode::Disabled,
        include_loopback: choice.include_loopback,
        interface_filter: Arc::new(interface_filter),
        ..AgentConfig::default()
    })
    .await?;
    agent.on_candidate(Box::new(move |c| {
        let at = Instant::now();
        let ev = match c {
            Some(candidate) => AgentEvent::Candidate {
                agent: index,
                at,
                candidate,
            },
            None => AgentEvent::Complete { agent: index },
        };
        // The receiver is gone only when we stopped waiting.
        let _ = events.send(ev);
        Box::pin(async {})
    }));
    agent.gather_candidates()?;
    Ok(agent)
}

/// A table row for `c`, gathered `time_ms` after the start.
pub fn row(c: &(dyn Candidate + Send + Sync), time_ms: f64, url: Option<String>) -> CandidateRow {
    let priority = c.priority();
    let parts = PriorityParts::of(priority);
    let kind = c.candidate_type();
    let related = c.related_address();
    CandidateRow {
        time_ms,
        component: c.component(),
        kind: kind.to_string(),
        foundation: c.foundation(),
        protocol: c.network_type().network_short(),
        address: c.address(),
        port: c.port(),
        priority,
        type_preference: parts.type_preference,
        local_preference: parts.local_preference,
        component_preference: parts.component_preference,
        related_address: related.as_ref().map(|r| r.address.clone()),
        related_port: related.as_ref().map(|r| r.port),
        url,
        relay_protocol: (kind == CandidateType::Relay).then(|| "udp".to_string()),
        sdp: format!("candidate:{}", c.marshal()),
    }
}
