//! `ice-probe gather`: the Trickle ICE table from webrtc-ice agents, and
//! beside them our own probe of every STUN/TURN URL (the agent only logs
//! failures), all bounded by one `--timeout`.
//!
//! We stop waiting when every probe has finished and each agent has either
//! completed or belongs to a URL our probe found dead, or at the bound:
//! never the agent's fixed 5 s for a silent STUN server.

pub mod agent;
pub mod credentials;
pub mod priority;
pub mod probe;
pub mod turn_probe;

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::gather_report::{GatherReport, ProbeStatus, UrlProbe, GATHER_SCHEMA};
use common::uri::IceUri;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::error::ProbeError;
use crate::resolve::resolve;
use agent::{AgentEvent, AgentJob, InterfaceChoice};
use credentials::{rest_credentials, Credentials, DEFAULT_REST_USER, REST_TTL_S};

/// How long closing one agent may take before we report it and go on.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Credentials for TURN URLs.
#[derive(Debug, Clone, Default)]
pub enum TurnAuth {
    /// None given: the probe reports the 401 and what to pass.
    #[default]
    None,
    /// `--username` and `--credential`.
    Static(Credentials),
    /// `--turn-secret` (and `--username` as the user part).
    RestSecret { secret: String, user: String },
}

impl TurnAuth {
    /// The credentials to use now (REST ones are generated here).
    pub fn credentials(&self) -> Option<Credentials> {
        match self {
            TurnAuth::None => None,
            TurnAuth::Static(c) => Some(c.clone()),
            TurnAuth::RestSecret { secret, user } => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let user = if user.is_empty() {
                    DEFAULT_REST_USER
                } else {
                    user
                };
                Some(rest_credentials(secret, user, now + REST_TTL_S))
            }
        }
    }
}

/// What to gather and probe.
#[derive(Debug, Clone)]
pub struct GatherOptions {
    /// STUN and TURN URLs, in command-line order.
    pub urls: Vec<IceUri>,
    pub auth: TurnAuth,
    pub choice: InterfaceChoice,
    pub timeout: Duration,
    /// Show a progress line on stderr.
    pub progress: bool,
}

/// Runs gathering and the probes.
pub fn run(opts: &GatherOptions) -> Result<GatherReport, ProbeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ProbeError::CannotRun(format!("cannot start the async runtime: {e}")))?;
    let report = rt.block_on(run_async(opts));
    // Tasks the agents leave behind must not keep us alive.
    rt.shutdown_timeout(CLOSE_TIMEOUT);
    report
}

/// Per URL: its agent (if any) and whether its probe is done.
struct UrlState {
    agent: Option<usize>,
    probe: Option<UrlProbe>,
}

async fn run_async(opts: &GatherOptions) -> Result<GatherReport, ProbeError> {
    let start = Instant::now();
    let deadline = start + opts.timeout;
    let creds = opts.auth.credentials();

    let (tx, mut rx) = mpsc::unbounded_channel::<AgentEvent>();
    let mut agents = Vec::new();
    let mut agent_urls: Vec<Option<String>> = Vec::new();
    let host = agent::start(0, &AgentJob::Host, &opts.choice, tx.clone())
        .await
        .map_err(|e| ProbeError::CannotRun(format!("cannot create the ICE agent: {e}")))?;
    agents.push(host);
    agent_urls.push(None);

    let mut urls: Vec<UrlState> = Vec::new();
    let mut probes = JoinSet::new();
    for (i, uri) in opts.urls.iter().enumerate() {
        let mut st = UrlState {
            agent: None,
            probe: None,
        };
        if let Some(why) = probe::unsupported(uri) {
            st.probe = Some(probe::not_probed(
                uri,
                ProbeStatus::NotSupported,
                why.to_string(),
            ));
            urls.push(st);
            continue;
        }
        // Names go through the system resolver, off the runtime and
        // within the bound.
        let resolving = {
            let uri = uri.clone();
            tokio::task::spawn_blocking(move || resolve(&uri))
        };
        let resolved = match tokio::time::timeout_at(
            tokio::time::Instant::from_std(deadline),
            resolving,
        )
        .await
        {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(ProbeError::CannotRun(format!("resolving {uri}: {e}"))),
            Err(_) => Err(ProbeError::CannotRun(format!(
                "{uri} did not resolve within --timeout"
            ))),
        };
        let server: SocketAddr = match resolved {
            Ok(a) => a,
            Err(e) => {
                st.probe = Some(probe::not_probed(
                    uri,
                    ProbeStatus::Unresolved,
                    e.to_string(),
                ));
                urls.push(st);
                continue;
            }
        };
        let (uri, creds) = (uri.clone(), creds.clone());
        // The agent cannot gather relay candidates over TCP: probe only.
        if uri.transport == Some(common::uri::Transport::Tcp) {
            probes.spawn(async move { (i, probe::probe_url(&uri, server, creds, deadline).await) });
            urls.push(st);
            continue;
        }
        let job = if uri.scheme.is_turn() {
            AgentJob::Relay {
                server,
                creds: creds.clone(),
            }
        } else {
            AgentJob::Srflx { server }
        };
        let index = agents.len();
        let a = agent::start(index, &job, &opts.choice, tx.clone())
            .await
            .map_err(|e| {
                ProbeError::CannotRun(format!("cannot create the ICE agent for {uri}: {e}"))
            })?;
        agents.push(a);
        agent_urls.push(Some(uri.to_string()));
        st.agent = Some(index);
        probes.spawn(async move { (i, probe::probe_url(&uri, server, creds, deadline).await) });
        urls.push(st);
    }
    drop(tx);

    let mut complete = vec![false; agents.len()];
    let mut candidates = Vec::new();
    let mut progress = Progress::new(opts.progress);
    // At the deadline we stop waiting for the agents; the probes end by
    // themselves then (a TURN release may take RELEASE_GRACE more), so
    // the hard stop only guards against a stuck task.
    let soft = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline));
    let hard = tokio::time::sleep_until(tokio::time::Instant::from_std(
        deadline + probe::RELEASE_GRACE + Duration::from_millis(200),
    ));
    tokio::pin!(soft, hard);
    // Keeps the progress line's clock moving while nothing happens.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut past_deadline = false;
    let mut probe_error = None;
    loop {
        let probes_done = urls.iter().all(|u| u.probe.is_some());
        let agents_settled = complete[0]
            && urls.iter().all(|u| match (&u.probe, u.agent) {
                (_, None) => true,
                (None, Some(a)) => complete[a],
                (Some(p), Some(a)) => complete[a] || p.status != ProbeStatus::Ok,
            });
        if probes_done && (agents_settled || past_deadline) {
            break;
        }
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(AgentEvent::Candidate { agent, at, candidate }) => {
                    let t = at.saturating_duration_since(start).as_secs_f64() * 1e3;
                    candidates.push(agent::row(candidate.as_ref(), t, agent_urls[agent].clone()));
                }
                Some(AgentEvent::Complete { agent }) => complete[agent] = true,
                None => {
                    // Every handler is gone: nothing more will come.
                    complete.iter_mut().for_each(|c| *c = true);
                }
            },
            Some(done) = probes.join_next() => match done {
                Ok((i, Ok(p))) => urls[i].probe = Some(p),
                Ok((_, Err(e))) => {
                    probe_error = Some(e);
                    break;
                }
                Err(e) => {
                    probe_error = Some(ProbeError::CannotRun(format!("a probe task failed: {e}")));
                    break;
                }
            },
            _ = &mut soft, if !past_deadline => past_deadline = true,
            _ = &mut hard => break,
            _ = tick.tick(), if progress.on => {}
        }
        progress.show(
            start,
            candidates.len(),
            urls.iter().filter(|u| u.probe.is_some()).count(),
            urls.len(),
        );
    }
    progress.clear();
    let elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
    let gathering_complete = complete.iter().all(|c| *c);

    // The probes are bounded by the deadline; this only collects them
    // when we left the loop early at the bound.
    probes.abort_all();
    // Close every agent at once, each bounded, so a stuck one costs at
    // most CLOSE_TIMEOUT in all.
    let mut closing = JoinSet::new();
    for (a, url) in agents.into_iter().zip(&agent_urls) {
        let what = url
            .as_deref()
            .map(|u| format!("the agent for {u}"))
            .unwrap_or_else(|| "the host agent".to_string());
        closing.spawn(async move {
            match tokio::time::timeout(CLOSE_TIMEOUT, a.close()).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("closing {what}: {e}")),
                Err(_) => Some(format!(
                    "closing {what} took more than {} ms",
                    CLOSE_TIMEOUT.as_millis()
                )),
            }
        });
    }
    let mut agent_errors = Vec::new();
    while let Some(r) = closing.join_next().await {
        match r {
            Ok(Some(e)) => agent_errors.push(e),
            Ok(None) => {}
            Err(e) => agent_errors.push(format!("closing an agent: {e}")),
        }
    }
    agent_errors.sort();
    if let Some(e) = probe_error {
        return Err(e);
    }

    let probes = urls
        .into_iter()
        .zip(&opts.urls)
        .map(|(u, uri)| {
            u.probe.unwrap_or_else(|| {
                probe::not_probed(
                    uri,
                    ProbeStatus::Unreachable,
                    format!("no result within --timeout {} ms", opts.timeout.as_millis()),
                )
            })
        })
        .collect();
    Ok(GatherReport {
        schema: GATHER_SCHEMA.to_string(),
        timeout_ms: opts.timeout.as_millis() as u64,
        elapsed_ms,
        gathering_complete,
        include_loopback: opts.choice.include_loopback,
        interfaces: opts.choice.interfaces.clone(),
        mdns: false,
        candidates,
        probes,
        agent_errors,
    })
}

/// Why the run counts as failed (exit 1), if it does: no candidate at all,
/// or URLs were given and none of them worked.
pub fn failed(r: &GatherReport) -> Option<String> {
    if r.candidates.is_empty() {
        return Some(
            "gathering produced no candidate (no usable interface: try --include-loopback or another --interface)"
                .to_string(),
        );
    }
    if !r.probes.is_empty() && !r.probes.iter().any(|p| p.status == ProbeStatus::Ok) {
        return Some(format!(
            "none of the {} URL(s) worked (see the probe results)",
            r.probes.len()
        ));
    }
    None
}

/// A one-line progress display on stderr (terminals only).
struct Progress {
    on: bool,
    shown: bool,
}

impl Progress {
    fn new(wanted: bool) -> Self {
        Progress {
            on: wanted && std::io::stderr().is_terminal(),
            shown: false,
        }
    }
    fn show(&mut self, start: Instant, candidates: usize, done: usize, total: usize) {
        if !self.on {
            return;
        }
        let mut e = std::io::stderr();
        let _ = write!(
            e,
            "\r\x1b[2Kgathering: {:>5.0} ms, {candidates} candidates, {done}/{total} URLs probed",
            start.elapsed().as_secs_f64() * 1e3
        );
        let _ = e.flush();
        self.shown = true;
    }
    fn clear(&mut self) {
        if self.shown {
            let mut e = std::io::stderr();
            let _ = write!(e, "\r\x1b[2K");
            let _ = e.flush();
        }
    }
}
