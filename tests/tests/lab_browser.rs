//! A real browser behind the lab's NATs: Debian's headless Chromium
//! (tests/src/browser.rs) runs in lab host namespaces and uses only what
//! this workspace serves in the lab's server namespace: `stun-server` at
//! `stun:203.0.113.1:3478` and, for two browsers, its signaling rendezvous
//! (`--http`). Nothing else is reachable from the lab.
//!
//! - [`browser_srflx_is_the_nat_mapping`]: a browser behind a
//!   port-preserving NAT and one behind a symmetric (fully-random) NAT
//!   gather; each must get a srflx candidate whose address is its NAT's
//!   public address and whose port is the mapping the NAT really made (as
//!   an nft rule in the router records it), and no `icecandidateerror`.
//! - [`two_browsers_open_a_data_channel`]: browsers behind a full-cone and
//!   a port-restricted-cone NAT meet through our signaling, open an
//!   RTCDataChannel, exchange a message each way, and `getStats()` shows a
//!   succeeded, nominated candidate pair.
//! - [`without_our_stun_server_there_is_no_srflx`]: the same gathering with
//!   no server running fails the same check.
//!
//! Skips (and says so) when the machine cannot run labs or has no
//! Chromium, unless ICE_LAB_REQUIRED=1.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e::browser::{chromium_or_skip, Chromium};
use e2e::lab::{
    Lab, NatBehaviour as B, NatSpec, STUN_PRIMARY, TURN_ADDR, TURN_PASSWORD, TURN_USER,
};
use e2e::workspace_bin;
use serde_json::{json, Value};

/// Longest a gathering with a working server may take. Measured: the
/// srflx arrives 0.07-0.9 s after the page creates its RTCPeerConnection
/// (three browsers at once on two cores) and gathering completes 0.1 s
/// later; the margin is for loaded CI machines.
const GATHER_WAIT: Duration = Duration::from_secs(10);

/// How long the no-server test watches the gathering. Chromium reports a
/// silent STUN server only when its Binding retransmissions run out:
/// measured in this lab, `icecandidateerror` 701 ("STUN binding request
/// timed out.") and the end of gathering came 39.96 s after the start,
/// after 9 requests to an address where nothing listens (NETLAB.md says
/// ~39.9 s for a silent server). Waiting for that would
/// make this the slowest test by far and prove nothing more about our
/// server: with it running the srflx arrives within 0.9 s even on a
/// loaded machine (see [`GATHER_WAIT`]). So the failure checked here is:
/// no srflx within 5 s, while the server namespace counts the browser's
/// Binding requests arriving and a host candidate shows the browser did
/// gather. An error that does arrive in the window must be a 701 for our
/// URL.
const NO_SERVER_WAIT: Duration = Duration::from_secs(5);

/// How long two browsers may take to meet, connect and exchange messages
/// (the pages give up at this; our side waits a little longer).
const CONNECT_WAIT: Duration = Duration::from_secs(25);

/// How long a page reads `getStats()` for a succeeded nominated pair
/// (see PEER_JS).
const STATS_WAIT: Duration = Duration::from_secs(5);

/// The server's STUN URL, an IP literal (Chromium's WebRTC resolver
/// ignores /etc/hosts).
fn stun_url() -> String {
    format!("stun:{STUN_PRIMARY}")
}

/// Gathers with `iceServers: [{urls: stun}]` until gathering completes or
/// `maxWaitMs` passes; every candidate and `icecandidateerror`, with the
/// time since the page started (just before `new RTCPeerConnection`).
const GATHER_JS: &str = r#"async (stun, maxWaitMs) => {
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  const pc = new RTCPeerConnection({iceServers: [{urls: stun}]});
  const candidates = [], errors = [];
  let finished;
  const complete = new Promise(r => finished = r);
  pc.onicecandidate = e => {
    if (!e.candidate) { finished('complete'); return; }
    const c = e.candidate;
    candidates.push({type: c.type, protocol: c.protocol, address: c.address, port: c.port,
                     relatedAddress: c.relatedAddress, relatedPort: c.relatedPort,
                     url: c.url ?? null, candidate: c.candidate, at_ms: ms()});
  };
  pc.onicecandidateerror = e => errors.push({url: e.url, errorCode: e.errorCode,
      errorText: e.errorText, address: e.address, port: e.port, at_ms: ms()});
  pc.createDataChannel('gather');
  await pc.setLocalDescription();
  const outcome = await Promise.race([complete,
      new Promise(r => setTimeout(() => r('timeout'), maxWaitMs))]);
  const result = {outcome, gatheringState: pc.iceGatheringState, candidates, errors,
                  elapsed_ms: ms()};
  pc.close();
  return result;
}"#;

/// One side of a call through our rendezvous at `cfg.base`
/// (`http://203.0.113.1:PORT/v1/rooms/ROOM`): joins (the first to join
/// offers), relays SDP and trickled candidates through posts and
/// long-polls, opens a data channel, sends `cfg.message` when it opens and
/// waits for the other side's; then reads the candidate pairs from
/// `getStats()` (for up to `cfg.statsWaitMs`). Gives up waiting for the
/// message after `cfg.timeoutMs`.
const PEER_JS: &str = r#"async (cfg) => {
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  const log = (...a) => console.log(`[${ms()} ms]`, ...a);
  const http = async (method, path, body) => {
    const r = await fetch(cfg.base + path, {method,
        headers: body ? {'Content-Type': 'application/json'} : {},
        body: body ? JSON.stringify(body) : undefined});
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: HTTP ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  const me = await http('POST', '/join');
  log('joined', JSON.stringify(me));
  const q = `?peer=${encodeURIComponent(me.peer)}`;
  // Posts go out one after another, so the other side gets them in order;
  // one that fails fails the call (until it is over: a post after the
  // other side left is no error).
  let chain = Promise.resolve();
  let done = false, failed;
  const failure = new Promise((_, reject) => failed = reject);
  const send = m => (chain = chain.then(() => http('POST', '/messages' + q, m))
      .catch(e => { if (!done) failed(e); }));

  const pc = new RTCPeerConnection({iceServers: cfg.iceServers,
      iceTransportPolicy: cfg.policy || 'all'});
  const errors = [], localCandidates = [], remoteCandidates = [];
  pc.onicecandidate = e => {
    if (!e.candidate) return;
    localCandidates.push(e.candidate.candidate);
    send({type: 'candidate', candidate: e.candidate.toJSON()});
  };
  pc.onicecandidateerror = e => errors.push({url: e.url, errorCode: e.errorCode,
      errorText: e.errorText});
  pc.oniceconnectionstatechange = () => log('ice', pc.iceConnectionState);

  pc.onconnectionstatechange = () => {
    log('connection', pc.connectionState);
    if (pc.connectionState === 'failed') failed(new Error(
        `connection failed (ice ${pc.iceConnectionState})`));
  };
  let opened, received;
  const open = new Promise(r => opened = r);
  const message = new Promise(r => received = r);
  const wire = ch => {
    ch.onmessage = e => { log('received', e.data); received(e.data); };
    const onopen = () => { log('channel open'); ch.send(cfg.message); opened(); };
    if (ch.readyState === 'open') onopen(); else ch.onopen = onopen;
  };
  if (me.role === 'offer') {
    wire(pc.createDataChannel('lab'));
    await pc.setLocalDescription();
    send({type: 'offer', sdp: pc.localDescription.sdp});
  } else {
    pc.ondatachannel = e => wire(e.channel);
  }

  const waiting = [];
  (async () => {
    while (!done) {
      const msgs = await http('GET', `/messages${q}&wait=2`);
      for (const m of msgs) {
        if (m.type === 'offer' || m.type === 'answer') {
          log('got', m.type);
          await pc.setRemoteDescription({type: m.type, sdp: m.sdp});
          for (const c of waiting.splice(0)) await pc.addIceCandidate(c);
          if (m.type === 'offer') {
            await pc.setLocalDescription();
            send({type: 'answer', sdp: pc.localDescription.sdp});
          }
        } else if (m.type === 'candidate') {
          remoteCandidates.push(m.candidate.candidate);
          if (pc.remoteDescription) await pc.addIceCandidate(m.candidate);
          else waiting.push(m.candidate);
        } else {
          log('signal', JSON.stringify(m));
        }
      }
    }
  })().catch(e => { if (!done) failed(e); });

  const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error(
      `no message within ${cfg.timeoutMs} ms (ice ${pc.iceConnectionState}, ` +
      `connection ${pc.connectionState})`)), cfg.timeoutMs));
  const [got] = await Promise.race([Promise.all([message, open]), failure, timeout]);
  done = true;

  // libwebrtc puts a pair back to "in-progress" whenever it sends a check
  // (keepalives included) and to "succeeded" when the answer comes: read
  // the stats until a nominated pair is between the two, for a while.
  const readPairs = async () => {
    const stats = await pc.getStats();
    const all = [];
    stats.forEach(s => all.push(s));
    const transport = all.find(s => s.type === 'transport');
    const cand = id => {
      const c = id && stats.get(id);
      return c ? {type: c.candidateType, address: c.address, port: c.port,
                  protocol: c.protocol, relayProtocol: c.relayProtocol} : null;
    };
    return all.filter(s => s.type === 'candidate-pair').map(p => ({
      id: p.id, state: p.state, nominated: !!p.nominated,
      selected: !!transport && transport.selectedCandidatePairId === p.id,
      local: cand(p.localCandidateId), remote: cand(p.remoteCandidateId)}));
  };
  const statsUntil = performance.now() + cfg.statsWaitMs;
  let pairs = [], statsReads = 0;
  for (;;) {
    pairs = await readPairs();
    statsReads++;
    if (pairs.some(p => p.state === 'succeeded' && p.nominated)) break;
    if (performance.now() >= statsUntil) break;
    await new Promise(r => setTimeout(r, 100));
  }
  await chain;
  await http('DELETE', `/peers/${encodeURIComponent(me.peer)}`).catch(() => {});
  const result = {role: me.role, sent: cfg.message, received: got, pairs, statsReads, errors,
                  localCandidates, remoteCandidates, ice: pc.iceConnectionState,
                  elapsed_ms: ms()};
  // Left open: the other page may still be reading its stats, and a
  // closed connection stops answering its checks. Killing the browser
  // ends it.
  window.labConnection = pc;
  return result;
}"#;

/// One ICE candidate as the page saw it.
#[derive(Debug, Clone)]
struct Candidate {
    kind: String,
    protocol: String,
    address: String,
    port: u16,
    related_port: Option<u16>,
    /// Milliseconds after the page started gathering.
    at_ms: u64,
}

impl Candidate {
    fn from_json(v: &Value) -> Candidate {
        Candidate {
            kind: v["type"].as_str().unwrap_or("?").to_string(),
            protocol: v["protocol"].as_str().unwrap_or("?").to_string(),
            address: v["address"].as_str().unwrap_or("?").to_string(),
            port: v["port"].as_u64().unwrap_or(0) as u16,
            related_port: v["relatedPort"].as_u64().map(|p| p as u16),
            at_ms: v["at_ms"].as_u64().unwrap_or(0),
        }
    }
}

/// What one gathering produced.
#[derive(Debug)]
struct Gathering {
    /// `complete` (end-of-candidates) or `timeout`.
    outcome: String,
    candidates: Vec<Candidate>,
    errors: Vec<Value>,
    elapsed_ms: u64,
}

impl Gathering {
    fn of_kind(&self, kind: &str) -> Vec<&Candidate> {
        self.candidates
            .iter()
            .filter(|c| c.kind == kind && c.protocol == "udp")
            .collect()
    }
}

/// Starts Chromium in host `i` of `lab` and gathers against `stun` for at
/// most `max_wait`.
fn gather(lab: &Lab, i: usize, stun: &str, max_wait: Duration) -> (Gathering, String) {
    let browser = Chromium::launch(lab.host(i)).unwrap_or_else(|e| panic!("{e}"));
    let page = browser.new_page().unwrap_or_else(|e| panic!("{e}"));
    let expr = format!("({GATHER_JS})({}, {})", json!(stun), max_wait.as_millis());
    let v = page
        .evaluate(&expr, max_wait + Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("gathering in {}: {e}", lab.host(i).name()));
    let g = Gathering {
        outcome: v["outcome"].as_str().unwrap_or("?").to_string(),
        candidates: v["candidates"]
            .as_array()
            .map(|a| a.iter().map(Candidate::from_json).collect())
            .unwrap_or_default(),
        errors: v["errors"].as_array().cloned().unwrap_or_default(),
        elapsed_ms: v["elapsed_ms"].as_u64().unwrap_or(0),
    };
    (g, browser.product().to_string())
}

/// A UDP mapping NAT router `i` made: the inside host's port and the
/// public port the NAT gave it, for one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mapping {
    inside_port: u16,
    public_port: u16,
}

/// Makes router `i` record every UDP mapping it makes towards `to`: a
/// rule after SNAT (as the lab's own cone maps) adds conntrack's original
/// source port and the translated one to a set, so the record is what the
/// NAT really did to packets that left its WAN. (`conntrack` is not
/// installed, and `/proc/net/nf_conntrack` depends on a kernel option.)
fn record_nat_mappings(lab: &Lab, i: usize, to: SocketAddr) {
    let rules = format!(
        "add table ip browser_nat; \
         add set ip browser_nat mappings {{ type inet_service . inet_service; flags dynamic; }}; \
         add chain ip browser_nat track {{ type filter hook postrouting priority 200; policy accept; }}; \
         add rule ip browser_nat track oifname \"wan\" ct direction original ip daddr {} udp dport {} \
         update @mappings {{ ct original proto-src . udp sport }}",
        to.ip(),
        to.port()
    );
    lab.router(i)
        .run("nft", &[&rules])
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The mappings [`record_nat_mappings`] saw router `i` make.
fn nat_mappings(lab: &Lab, i: usize) -> Result<Vec<Mapping>, String> {
    let out = lab.router(i).run(
        "nft",
        &["-n", "list", "set", "ip", "browser_nat", "mappings"],
    )?;
    // `elements = { 39252 . 39252, 54017 . 45340 }`
    let Some(elements) = out.split_once("elements = {").map(|(_, e)| e) else {
        return Ok(Vec::new());
    };
    let elements = elements.split('}').next().unwrap_or("");
    elements
        .split(',')
        .map(|e| {
            let (a, b) = e
                .split_once('.')
                .ok_or_else(|| format!("unexpected element {e:?} in:\n{out}"))?;
            let port = |p: &str| {
                p.trim()
                    .parse::<u16>()
                    .map_err(|_| format!("unexpected element {e:?} in:\n{out}"))
            };
            Ok(Mapping {
                inside_port: port(a)?,
                public_port: port(b)?,
            })
        })
        .collect()
}

/// A srflx candidate that passed [`check_srflx`], and what backed it.
#[derive(Debug)]
struct SrflxCheck {
    srflx: Candidate,
    host: Candidate,
    /// The NAT's mapping, as recorded in the router.
    mapping: Mapping,
}

/// Test 1's verdict on a gathering behind NAT `i`: exactly the srflx our
/// server must produce. No `icecandidateerror`; a UDP srflx at the NAT's
/// public address; a UDP host candidate; and the router having mapped
/// that host port to the srflx port towards our server (see
/// [`record_nat_mappings`], which must have run before the gathering).
fn check_srflx(lab: &Lab, i: usize, g: &Gathering) -> Result<SrflxCheck, String> {
    if !g.errors.is_empty() {
        return Err(format!("icecandidateerror: {:?}", g.errors));
    }
    let srflx = match g.of_kind("srflx").as_slice() {
        [] => {
            return Err(format!(
                "no srflx candidate (gathering {}, {} ms, candidates {:?})",
                g.outcome, g.elapsed_ms, g.candidates
            ))
        }
        [one] => (*one).clone(),
        many => return Err(format!("{} srflx candidates: {many:?}", many.len())),
    };
    let public = lab.site(i).public_ip();
    if srflx.address.parse::<Ipv4Addr>() != Ok(public) {
        return Err(format!(
            "srflx {srflx:?} is not at the NAT's public address {public}"
        ));
    }
    let hosts = g.of_kind("host");
    let mappings = nat_mappings(lab, i)?;
    let Some(mapping) = mappings
        .iter()
        .copied()
        .find(|m| m.public_port == srflx.port)
    else {
        return Err(format!(
            "srflx port {} is no mapping the NAT made towards {STUN_PRIMARY}: {mappings:?}",
            srflx.port
        ));
    };
    let Some(host) = hosts.iter().find(|h| h.port == mapping.inside_port) else {
        return Err(format!(
            "the NAT mapped inside port {} to {}, but no host candidate has it: {hosts:?}",
            mapping.inside_port, srflx.port
        ));
    };
    let host_ip = lab.site(i).host_ip().to_string();
    if host.address != host_ip {
        return Err(format!("host candidate {host:?} is not at {host_ip}"));
    }
    if let Some(rp) = srflx.related_port.filter(|p| *p != 0) {
        if rp != host.port {
            return Err(format!(
                "srflx related port {rp} is not the host port {}",
                host.port
            ));
        }
    }
    Ok(SrflxCheck {
        srflx,
        host: (*host).clone(),
        mapping,
    })
}

/// The candidate pair a page's `getStats()` showed succeeded and
/// nominated (the selected one, if several).
fn nominated_pair(page_result: &Value) -> Option<&Value> {
    let pairs = page_result["pairs"].as_array()?;
    let good = |p: &&Value| p["state"] == "succeeded" && p["nominated"] == true;
    pairs
        .iter()
        .filter(good)
        .find(|p| p["selected"] == true)
        .or_else(|| pairs.iter().find(good))
}

/// Packets to UDP port 3478 that reached the server namespace, counted by
/// a rule [`count_stun_requests`] added.
fn stun_requests_seen(lab: &Lab) -> u64 {
    let out = lab
        .server()
        .run("nft", &["list", "chain", "ip", "browser_count", "input"])
        .unwrap_or_else(|e| panic!("{e}"));
    out.split_whitespace()
        .skip_while(|w| *w != "packets")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no packet counter in:\n{out}"))
}

/// Adds a counter of UDP packets to port 3478 arriving in the server
/// namespace (the lab puts no rules there).
fn count_stun_requests(lab: &Lab) {
    let rules = "add table ip browser_count; \
                 add chain ip browser_count input { type filter hook input priority 0; policy accept; }; \
                 add rule ip browser_count input udp dport 3478 counter";
    lab.server()
        .run("nft", &[rules])
        .unwrap_or_else(|e| panic!("{e}"));
}

/// A room name no other test (or run) uses.
fn unique_room(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{tag}-{}-{nanos}", std::process::id())
}

fn print_both(lines: &[String]) {
    e2e::print_uncaptured(&lines.join("\n"));
}

/// Chromium behind a port-preserving (port-restricted-cone) NAT and one
/// behind a symmetric NAT, with only our STUN server: each gets a srflx
/// whose address is its NAT's public address and whose port is the
/// mapping its NAT really made (the symmetric NAT picks a random port, so
/// this is not port preservation passing for a check), and no error.
#[test]
fn browser_srflx_is_the_nat_mapping() {
    let t0 = Instant::now();
    let Some(version) = chromium_or_skip() else {
        return;
    };
    let Some(lab) = Lab::builder()
        .nat(NatSpec::new(B::PortRestrictedCone))
        .nat(NatSpec::new(B::Symmetric))
        .build_or_skip()
    else {
        return;
    };
    for i in 0..lab.sites().len() {
        record_nat_mappings(&lab, i, STUN_PRIMARY);
    }
    let server = lab.start_stun_server(&workspace_bin("stun-server"), &[]);
    let runs: Vec<(Gathering, String)> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..lab.sites().len())
            .map(|i| {
                let lab = &lab;
                s.spawn(move || gather(lab, i, &stun_url(), GATHER_WAIT))
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("gather thread"))
            .collect()
    });
    let checks: Vec<Result<SrflxCheck, String>> = runs
        .iter()
        .enumerate()
        .map(|(i, (g, _))| check_srflx(&lab, i, g))
        .collect();
    drop(server);

    let mut lines = vec![
        format!("{version}, {}; iceServers [{}]", runs[0].1, stun_url()),
        format!(
            "{:<22} {:<15} {:<22} {:<22} {:<20} {:>8} {:>9}  ok",
            "NAT (lab)",
            "public ip",
            "host candidate",
            "srflx candidate",
            "NAT mapping",
            "srflx ms",
            "gathered"
        ),
        "-".repeat(130),
    ];
    for (i, ((g, _), check)) in runs.iter().zip(&checks).enumerate() {
        let site = lab.site(i);
        let (host, srflx, mapping, at) = match check {
            Ok(c) => (
                format!("{}:{}", c.host.address, c.host.port),
                format!("{}:{}", c.srflx.address, c.srflx.port),
                format!("{} -> {}", c.mapping.inside_port, c.mapping.public_port),
                c.srflx.at_ms.to_string(),
            ),
            Err(_) => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        lines.push(format!(
            "{:<22} {:<15} {:<22} {:<22} {:<20} {:>8} {:>9}  {}",
            site.spec.to_string(),
            site.public_ip().to_string(),
            host,
            srflx,
            mapping,
            at,
            format!("{} {}ms", g.outcome, g.elapsed_ms),
            match check {
                Ok(_) => "yes".to_string(),
                Err(e) => format!("NO: {e}"),
            }
        ));
    }
    lines.push(format!("whole test {:.1} s", t0.elapsed().as_secs_f64()));
    print_both(&lines);

    for (i, check) in checks.iter().enumerate() {
        let site = lab.site(i);
        let c = check
            .as_ref()
            .unwrap_or_else(|e| panic!("behind {}: {e}", site.spec));
        assert_eq!(runs[i].0.outcome, "complete", "behind {}", site.spec);
        // Plain SNAT keeps the source port when it is free. (The symmetric
        // NAT's random port may equal the host's by a 1-in-64k accident;
        // the mapping check in check_srflx is what counts there.)
        if site.spec.behaviour == B::PortRestrictedCone {
            assert_eq!(c.srflx.port, c.host.port, "{c:?}");
        }
    }
}

/// Two Chromiums behind a full-cone and a port-restricted-cone NAT meet in
/// a room of our rendezvous, connect with only our STUN server, exchange
/// one message each way over an RTCDataChannel, and `getStats()` shows a
/// succeeded, nominated (and selected) candidate pair.
#[test]
fn two_browsers_open_a_data_channel() {
    let t0 = Instant::now();
    let Some(version) = chromium_or_skip() else {
        return;
    };
    let Some(lab) = Lab::builder()
        .nat(NatSpec::new(B::FullCone))
        .nat(NatSpec::new(B::PortRestrictedCone))
        .build_or_skip()
    else {
        return;
    };
    let http_listen = SocketAddr::new(STUN_PRIMARY.ip(), 0).to_string();
    let server = lab.start_stun_server(&workspace_bin("stun-server"), &["--http", &http_listen]);
    let http = server.http.expect("stun-server logs its http address");
    let room = unique_room("browser-dc");
    let base = format!("http://{http}/v1/rooms/{room}");

    let results = two_pages(&lab, &base, |i| {
        json!({
            "iceServers": [{"urls": stun_url()}],
            "message": format!("hello from {} behind {}", lab.host(i).name(), lab.site(i).spec),
        })
    });
    drop(server);

    let describe = |c: &Value| {
        let address = c["address"].as_str().filter(|a| !a.is_empty());
        format!(
            "{} {}:{}",
            c["type"].as_str().unwrap_or("?"),
            address.unwrap_or("(hidden)"),
            c["port"]
        )
    };
    let mut lines = vec![
        format!(
            "{version}; room {room} at http://{http}, iceServers [{}]",
            stun_url()
        ),
        format!(
            "{:<22} {:<7} {:<28} {:<28} {:<10} {:<9} {:>5} {:>6}  ok",
            "NAT (lab)",
            "role",
            "local candidate",
            "remote candidate",
            "state",
            "nominated",
            "reads",
            "ms"
        ),
        "-".repeat(132),
    ];
    let mut wrong = Vec::new();
    for (i, r) in results.iter().enumerate() {
        let site = lab.site(i);
        let v = match r {
            Ok(v) => v,
            Err(e) => {
                lines.push(format!("{:<22} failed", site.spec.to_string()));
                wrong.push(format!("browser behind {}: {e}", site.spec));
                continue;
            }
        };
        let other = results[1 - i].as_ref().ok();
        let good_pair = nominated_pair(v);
        let mut problems = Vec::new();
        match other {
            Some(o) if v["received"] == o["sent"] => {}
            Some(o) => problems.push(format!(
                "received {} but the other side sent {}",
                v["received"], o["sent"]
            )),
            None => problems.push("the other side failed".to_string()),
        }
        if good_pair.is_none() {
            problems.push(format!(
                "no succeeded nominated candidate pair: {:#}",
                v["pairs"]
            ));
        }
        // No pair of host addresses can work across the lab's NATs: the
        // remote end must be the other NAT's public address, as a srflx our
        // server gave the other side, or learned from its checks as prflx.
        // Chromium hides a prflx address (nobody signaled it): then its
        // port must be the local port of the pair the other side chose.
        let other_public = lab.site(1 - i).public_ip().to_string();
        if let Some(p) = good_pair {
            let remote = &p["remote"];
            match remote["address"].as_str().filter(|a| !a.is_empty()) {
                Some(a) if a == other_public => {}
                Some(a) => problems.push(format!(
                    "the pair's remote end {a} is not the other NAT's public address {other_public}"
                )),
                None => {
                    let theirs = other.and_then(nominated_pair);
                    if remote["type"] != "prflx"
                        || theirs.is_none_or(|t| t["local"]["port"] != remote["port"])
                    {
                        problems.push(format!(
                            "the pair's remote end {remote} is hidden and is not the other side's local end {}",
                            theirs.map_or(Value::Null, |t| t["local"].clone())
                        ));
                    }
                }
            }
        }
        if !v["errors"].as_array().is_none_or(|e| e.is_empty()) {
            problems.push(format!("icecandidateerror: {}", v["errors"]));
        }
        let (local, remote, state, nominated) = match good_pair {
            Some(p) => (
                describe(&p["local"]),
                describe(&p["remote"]),
                p["state"].as_str().unwrap_or("?").to_string(),
                p["nominated"].to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into()),
        };
        lines.push(format!(
            "{:<22} {:<7} {:<28} {:<28} {:<10} {:<9} {:>5} {:>6}  {}",
            site.spec.to_string(),
            v["role"].as_str().unwrap_or("?"),
            local,
            remote,
            state,
            nominated,
            v["statsReads"],
            v["elapsed_ms"],
            if problems.is_empty() { "yes" } else { "NO" }
        ));
        if !problems.is_empty() {
            wrong.push(format!(
                "browser behind {} ({}): {}\nits result: {v:#}",
                site.spec,
                v["role"],
                problems.join("; ")
            ));
        }
    }
    lines.push(format!("whole test {:.1} s", t0.elapsed().as_secs_f64()));
    print_both(&lines);
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// Runs [`PEER_JS`] in a Chromium in hosts 0 and 1 of `lab`, both in the
/// room at `base`, each with `cfg(i)` plus the waits; the two results.
/// Both browsers live until both pages are done: one that went away would
/// stop answering the other's ICE checks while it reads stats.
fn two_pages(
    lab: &Lab,
    base: &str,
    cfg: impl Fn(usize) -> Value + Sync,
) -> Vec<Result<Value, String>> {
    let browsers: Vec<Result<Chromium, String>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|i| s.spawn(move || Chromium::launch(lab.host(i))))
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("launch thread"))
            .collect()
    });
    std::thread::scope(|s| {
        let hs: Vec<_> = browsers
            .iter()
            .enumerate()
            .map(|(i, browser)| {
                let cfg = &cfg;
                s.spawn(move || {
                    let page = browser.as_ref().map_err(Clone::clone)?.new_page()?;
                    let mut c = cfg(i);
                    c["base"] = json!(base);
                    c["timeoutMs"] = json!(CONNECT_WAIT.as_millis() as u64);
                    c["statsWaitMs"] = json!(STATS_WAIT.as_millis() as u64);
                    page.evaluate(
                        &format!("({PEER_JS})({c})"),
                        CONNECT_WAIT + STATS_WAIT + Duration::from_secs(10),
                    )
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("peer thread"))
            .collect()
    })
}

/// Two Chromiums behind NATs that drop all UDP reach each other through
/// coturn over TCP (`turn:...?transport=tcp`, `iceTransportPolicy:
/// "relay"`), with our signaling: the relay the lab's ice-probe matrix
/// cannot use (webrtc-ice has no TURN over TCP) works for browsers.
#[test]
fn browsers_behind_udp_blocked_nats_connect_through_turn_over_tcp() {
    let t0 = Instant::now();
    let Some(version) = chromium_or_skip() else {
        return;
    };
    let Some(turn_bin) = e2e::coturn::turnserver_or_skip(
        "browsers_behind_udp_blocked_nats_connect_through_turn_over_tcp",
    ) else {
        return;
    };
    let Some(lab) = Lab::builder()
        .nat(NatSpec::new(B::UdpBlocked))
        .nat(NatSpec::new(B::UdpBlocked))
        .build_or_skip()
    else {
        return;
    };
    let http_listen = SocketAddr::new(STUN_PRIMARY.ip(), 0).to_string();
    let server = lab.start_stun_server(&workspace_bin("stun-server"), &["--http", &http_listen]);
    let http = server.http.expect("stun-server logs its http address");
    let turn = lab.start_turn_server(&turn_bin).expect("coturn in the lab");
    let room = unique_room("browser-turn-tcp");
    let base = format!("http://{http}/v1/rooms/{room}");
    let turn_url = format!("turn:{TURN_ADDR}?transport=tcp");
    let results = two_pages(&lab, &base, |i| {
        json!({
            "iceServers": [{"urls": turn_url, "username": TURN_USER, "credential": TURN_PASSWORD}],
            "policy": "relay",
            "message": format!("hello over TCP TURN from host{}", i + 1),
        })
    });
    let mut lines = vec![format!(
        "{version}; iceServers [{turn_url}], iceTransportPolicy relay, both NATs udp-blocked"
    )];
    let mut wrong = Vec::new();
    for (i, r) in results.iter().enumerate() {
        let v = match r {
            Ok(v) => v,
            Err(e) => {
                wrong.push(format!("browser {}: {e}", i + 1));
                continue;
            }
        };
        let other_sent = results[1 - i].as_ref().ok().map(|o| o["sent"].clone());
        let pair = nominated_pair(v);
        let local = pair.map(|p| p["local"].clone()).unwrap_or(Value::Null);
        lines.push(format!(
            "host{}: received {} over local {} {}:{} (relay protocol {}), {} ms",
            i + 1,
            v["received"],
            local["type"],
            local["address"],
            local["port"],
            local["relayProtocol"],
            v["elapsed_ms"]
        ));
        if other_sent.as_ref() != Some(&v["received"]) {
            wrong.push(format!(
                "browser {} received {} but the other sent {other_sent:?}",
                i + 1,
                v["received"]
            ));
        }
        if local["type"] != "relay" || local["relayProtocol"] != "tcp" {
            wrong.push(format!(
                "browser {}: want a nominated pair on a TCP relay candidate, got {:#}",
                i + 1,
                v["pairs"]
            ));
        }
    }
    lines.push(format!("whole test {:.1} s", t0.elapsed().as_secs_f64()));
    print_both(&lines);
    let log = if wrong.is_empty() {
        String::new()
    } else {
        turn.log()
    };
    drop(turn);
    drop(server);
    assert!(wrong.is_empty(), "{}\ncoturn:\n{log}", wrong.join("\n"));
}

/// Test 1 without our server: nothing listens on 203.0.113.1:3478 (the
/// browser's Binding requests are counted arriving there), and the same
/// check fails with no srflx. See [`NO_SERVER_WAIT`] for why a bounded
/// window and not Chromium's ~40 s 701 error.
#[test]
fn without_our_stun_server_there_is_no_srflx() {
    let t0 = Instant::now();
    let Some(version) = chromium_or_skip() else {
        return;
    };
    let Some(lab) = Lab::builder()
        .nat(NatSpec::new(B::PortRestrictedCone))
        .build_or_skip()
    else {
        return;
    };
    count_stun_requests(&lab);
    record_nat_mappings(&lab, 0, STUN_PRIMARY);
    let (g, product) = gather(&lab, 0, &stun_url(), NO_SERVER_WAIT);
    let requests = stun_requests_seen(&lab);
    let check = check_srflx(&lab, 0, &g);
    let kinds: Vec<String> = g
        .candidates
        .iter()
        .map(|c| format!("{} {} {}:{}", c.kind, c.protocol, c.address, c.port))
        .collect();
    print_both(&[
        format!(
            "{version}, {product}; iceServers [{}], no server running",
            stun_url()
        ),
        format!(
            "behind {}: gathering {} after {} ms; candidates {kinds:?}; errors {}; \
             Binding requests reaching {STUN_PRIMARY}: {requests}; check: {}; whole test {:.1} s",
            lab.site(0).spec,
            g.outcome,
            g.elapsed_ms,
            json!(g.errors),
            match &check {
                Ok(c) => format!("PASSED ({c:?})"),
                Err(e) => format!("failed as it must: {e}"),
            },
            t0.elapsed().as_secs_f64()
        ),
    ]);
    let err = check.expect_err("a srflx with no STUN server running");
    assert!(
        err.starts_with("no srflx candidate") || err.starts_with("icecandidateerror"),
        "{err}"
    );
    assert!(g.of_kind("srflx").is_empty(), "{:?}", g.candidates);
    // The browser did gather and did ask our address: the failure is the
    // missing server, not a browser that never tried.
    assert!(
        !g.of_kind("host").is_empty(),
        "no host candidate: {:?}",
        g.candidates
    );
    assert!(requests > 0, "no Binding request reached {STUN_PRIMARY}");
    for e in &g.errors {
        assert_eq!(
            e["url"],
            json!(stun_url()),
            "an error about another URL: {e}"
        );
        assert_eq!(e["errorCode"], 701, "{e}");
    }
}
