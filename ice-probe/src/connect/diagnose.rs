//! From what a negotiation saw to what a person can act on (pure): the
//! stage that failed and its likely cause, pair counts, and the
//! command-line assertions.

use std::net::IpAddr;

use common::connect_report::{
    Assertion, CandidateInfo, ChannelOutcome, FailedStage, PairCounts, PairRow, SelectedPair,
};

/// What the negotiation observed.
#[derive(Debug, Default)]
pub struct Facts<'a> {
    pub connected: bool,
    /// The peer's credentials arrived.
    pub remote_description: bool,
    pub local: &'a [CandidateInfo],
    pub remote: &'a [CandidateInfo],
    pub pairs: &'a [PairRow],
    /// `--stun` URLs were given.
    pub stun_given: bool,
    /// `--turn` URLs were given.
    pub turn_given: bool,
    /// `--relay-only`: only relay candidates were gathered on purpose.
    pub relay_only: bool,
    /// The agent reported `failed` (all checks ended) before our bound.
    pub agent_failed: bool,
    /// What the signaling transport knows about a description that never
    /// came (the rendezvous: whether anybody joined the room).
    pub no_description_why: Option<&'a str>,
}

/// Counts pairs by the state they ended in.
pub fn count_pairs(pairs: &[PairRow]) -> PairCounts {
    let mut c = PairCounts {
        total: pairs.len() as u32,
        ..PairCounts::default()
    };
    for p in pairs {
        match p.state.as_str() {
            "succeeded" => c.succeeded += 1,
            "failed" => c.failed += 1,
            "in-progress" => c.in_progress += 1,
            _ => c.waiting += 1,
        }
    }
    c.tried = c.succeeded + c.failed + c.in_progress;
    c
}

fn has(c: &[CandidateInfo], kind: &str) -> bool {
    c.iter().any(|c| c.kind == kind)
}

fn is_private_or_local(addr: &str) -> bool {
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => a.is_private() || a.is_loopback() || a.is_link_local(),
        Ok(IpAddr::V6(a)) => {
            a.is_loopback()
                || (a.segments()[0] & 0xfe00) == 0xfc00
                || (a.segments()[0] & 0xffc0) == 0xfe80
        }
        Err(_) => false,
    }
}

/// The failed stage and likely cause, or `None` when connected.
pub fn diagnose(f: &Facts) -> Option<(FailedStage, String)> {
    if f.connected {
        return None;
    }
    if f.local.is_empty() && f.relay_only {
        return Some((
            FailedStage::Gathering,
            "--relay-only and no relay candidate was gathered: the TURN allocation failed (run \
             ice-probe gather --turn ... to see why)"
                .into(),
        ));
    }
    if f.local.is_empty() {
        return Some((
            FailedStage::Gathering,
            "no local candidate was gathered: no usable interface (on a host with only loopback, or \
             two peers on one machine, pass --include-loopback)"
                .into(),
        ));
    }
    if !f.remote_description {
        return Some((
            FailedStage::Signaling,
            f.no_description_why.map_or_else(
                || {
                    "the peer's description never arrived within --timeout (is the other side \
                     running, reading the same room/file?)"
                        .into()
                },
                str::to_string,
            ),
        ));
    }
    if f.remote.is_empty() {
        return Some((
            FailedStage::Signaling,
            "the peer signaled no candidates (it gathered none: it may need --include-loopback, \
             --stun or --turn)"
                .into(),
        ));
    }
    let mut why = Vec::new();
    if f.pairs.is_empty() {
        why.push(
            "no candidate pair could be formed: the two sides have no address family and \
             protocol in common (e.g. one side IPv6 only)"
                .to_string(),
        );
    }
    let local_srflx = has(f.local, "srflx");
    let remote_srflx = has(f.remote, "srflx");
    let any_relay = has(f.local, "relay") || has(f.remote, "relay");
    if f.stun_given && !f.relay_only && !local_srflx {
        why.push(
            "no srflx candidate gathered: the STUN server did not answer (check --stun and that UDP \
             to it is allowed)"
                .into(),
        );
    }
    if !remote_srflx
        && !has(f.remote, "relay")
        && f.remote.iter().all(|c| is_private_or_local(&c.address))
    {
        why.push(
            "the peer's candidates are unreachable from here: it offered only private/loopback host \
             addresses and no srflx or relay candidate (give both sides --stun, or --turn)"
                .into(),
        );
    }
    if local_srflx && remote_srflx && !any_relay {
        why.push(
            "both sides have srflx candidates and no pair worked: likely both behind symmetric \
             (address-dependent mapping) NATs or a firewall dropping UDP, and no TURN relay: add --turn"
                .into(),
        );
    }
    if any_relay {
        why.push(
            "even relay candidates failed: the TURN server may refuse the peer's permission or \
             drop relayed traffic"
                .into(),
        );
    } else if f.turn_given && !has(f.local, "relay") {
        why.push("no relay candidate gathered: TURN allocation failed (run ice-probe gather --turn ... to see why)".into());
    }
    if why.is_empty() {
        let c = count_pairs(f.pairs);
        why.push(format!(
            "connectivity checks did not succeed on any of {} pairs ({} failed, {} still in progress){}",
            c.total,
            c.failed,
            c.in_progress,
            if f.agent_failed { "" } else { " before --timeout" }
        ));
    }
    Some((FailedStage::Checking, why.join("; ")))
}

/// A `--min-goodput` rate in bits per second: `500k`, `2M`, `1.5Mbit`,
/// `100000` (bits/s); `B` suffix means bytes (`10MB` = 80 Mbit/s).
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let i = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(i);
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{t:?} is not a rate (e.g. 500k, 2M, 2Mbit, 1MB)"))?;
    let unit = unit.trim_end_matches("/s").trim_end_matches("ps");
    let (prefix, bytes) = if let Some(p) = unit.strip_suffix("bit") {
        (p, false)
    } else if let Some(p) = unit.strip_suffix('B') {
        (p, true)
    } else if let Some(p) = unit.strip_suffix('b') {
        (p, false)
    } else {
        (unit, false)
    };
    let mult = match prefix.to_ascii_lowercase().as_str() {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        _ => return Err(format!("{t:?}: unknown unit (use k, M, G; bit or B)")),
    };
    if !n.is_finite() || n < 0.0 {
        return Err(format!("{t:?}: the rate must be positive"));
    }
    Ok(n * mult * if bytes { 8.0 } else { 1.0 })
}

/// What the command line asserts.
#[derive(Debug, Clone, Default)]
pub struct Requirements {
    /// `--require direct`: a relay pair fails.
    pub direct: bool,
    pub max_loss_percent: Option<f64>,
    /// bits per second
    pub min_goodput_bps: Option<f64>,
    pub max_rtt_ms: Option<f64>,
}

fn channel_metric(
    name: String,
    value: Option<f64>,
    channel: &ChannelOutcome,
    ok: impl Fn(f64) -> bool,
    unit: &str,
) -> Assertion {
    match value {
        Some(v) => Assertion {
            name,
            passed: Some(ok(v)),
            detail: format!("measured {v:.2} {unit}"),
        },
        None => Assertion {
            name,
            passed: None,
            detail: format!(
                "not evaluated: the channel was not measured ({})",
                channel.reason.as_deref().unwrap_or(&channel.status)
            ),
        },
    }
}

/// Evaluates the requirements (no connection: each fails).
pub fn assertions(
    req: &Requirements,
    selected: Option<&SelectedPair>,
    channel: &ChannelOutcome,
) -> Vec<Assertion> {
    let mut out = Vec::new();
    if req.direct {
        out.push(match selected {
            Some(p) => Assertion {
                name: "--require direct".into(),
                passed: Some(!p.relayed),
                detail: if p.relayed {
                    "only a relay (TURN) pair was selected".into()
                } else {
                    format!("direct pair {} -> {}", p.local.kind, p.remote.kind)
                },
            },
            None => Assertion {
                name: "--require direct".into(),
                passed: Some(false),
                detail: "no pair was selected".into(),
            },
        });
    }
    if let Some(m) = req.max_loss_percent {
        out.push(channel_metric(
            format!("--max-loss {m}"),
            channel.loss_percent,
            channel,
            |v| v <= m,
            "%",
        ));
    }
    if let Some(m) = req.min_goodput_bps {
        out.push(channel_metric(
            format!("--min-goodput {m}"),
            channel.goodput_bps,
            channel,
            |v| v >= m,
            "bit/s",
        ));
    }
    if let Some(m) = req.max_rtt_ms {
        out.push(channel_metric(
            format!("--max-rtt {m}"),
            channel.rtt_ms,
            channel,
            |v| v <= m,
            "ms",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::connect_report::Endpoint;

    fn cand(kind: &str, addr: &str) -> CandidateInfo {
        CandidateInfo {
            kind: kind.into(),
            address: addr.into(),
            port: 1,
            protocol: "udp".into(),
            priority: 1,
            sdp: String::new(),
        }
    }
    fn ep(kind: &str) -> Endpoint {
        Endpoint {
            kind: kind.into(),
            address: "1.2.3.4".into(),
            port: 1,
            protocol: "udp".into(),
        }
    }
    fn pair(state: &str) -> PairRow {
        PairRow {
            local: ep("host"),
            remote: ep("host"),
            state: state.into(),
            nominated: false,
        }
    }

    #[test]
    fn relay_only_blames_turn_not_stun_or_interfaces() {
        let f = Facts {
            relay_only: true,
            stun_given: true,
            turn_given: true,
            ..Facts::default()
        };
        let (stage, why) = diagnose(&f).unwrap();
        assert_eq!(stage, FailedStage::Gathering);
        assert!(why.contains("TURN allocation failed"), "{why}");
        let l = [cand("relay", "203.0.113.1")];
        let r = [cand("host", "10.0.0.2"), cand("srflx", "198.51.100.2")];
        let p = [pair("failed")];
        let f = Facts {
            local: &l,
            remote: &r,
            pairs: &p,
            remote_description: true,
            relay_only: true,
            stun_given: true,
            turn_given: true,
            ..Facts::default()
        };
        let why = diagnose(&f).unwrap().1;
        assert!(!why.contains("no srflx"), "{why}");
        assert!(why.contains("even relay candidates failed"), "{why}");
    }

    #[test]
    fn the_transport_explains_a_missing_description() {
        let l = [cand("host", "10.0.0.1")];
        let f = Facts {
            local: &l,
            no_description_why: Some("no peer joined room \"r\""),
            ..Facts::default()
        };
        assert_eq!(
            diagnose(&f).unwrap(),
            (
                FailedStage::Signaling,
                "no peer joined room \"r\"".to_string()
            )
        );
    }

    #[test]
    fn stages() {
        let l = [cand("host", "10.0.0.1")];
        let f = Facts::default();
        assert_eq!(diagnose(&f).unwrap().0, FailedStage::Gathering);
        let f = Facts {
            local: &l,
            ..Facts::default()
        };
        assert_eq!(diagnose(&f).unwrap().0, FailedStage::Signaling);
        let f = Facts {
            local: &l,
            remote_description: true,
            ..Facts::default()
        };
        assert!(diagnose(&f).unwrap().1.contains("no candidates"));
        let f = Facts {
            connected: true,
            ..Facts::default()
        };
        assert!(diagnose(&f).is_none());
    }

    #[test]
    fn causes() {
        let l = [cand("host", "10.0.0.1")];
        let r = [cand("host", "192.168.1.5")];
        let p = [pair("failed")];
        let f = Facts {
            local: &l,
            remote: &r,
            pairs: &p,
            remote_description: true,
            stun_given: true,
            ..Facts::default()
        };
        let (stage, why) = diagnose(&f).unwrap();
        assert_eq!(stage, FailedStage::Checking);
        assert!(why.contains("no srflx candidate gathered"), "{why}");
        assert!(why.contains("unreachable from here"), "{why}");

        let l = [cand("host", "10.0.0.1"), cand("srflx", "198.51.100.1")];
        let r = [cand("host", "10.0.0.2"), cand("srflx", "203.0.113.9")];
        let f = Facts {
            local: &l,
            remote: &r,
            pairs: &p,
            remote_description: true,
            stun_given: true,
            ..Facts::default()
        };
        let why = diagnose(&f).unwrap().1;
        assert!(why.contains("symmetric"), "{why}");
        assert!(!why.contains("unreachable from here"), "{why}");
    }

    #[test]
    fn pair_counts() {
        let c = count_pairs(&[
            pair("failed"),
            pair("succeeded"),
            pair("waiting"),
            pair("in-progress"),
        ]);
        assert_eq!(
            (c.total, c.tried, c.succeeded, c.failed, c.waiting),
            (4, 3, 1, 1, 1)
        );
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("500k").unwrap(), 500e3);
        assert_eq!(parse_rate("2M").unwrap(), 2e6);
        assert_eq!(parse_rate("2Mbit").unwrap(), 2e6);
        assert_eq!(parse_rate("1MB").unwrap(), 8e6);
        assert_eq!(parse_rate("100000").unwrap(), 1e5);
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("2X").is_err());
    }

    #[test]
    fn require_direct_and_unmeasured_channel() {
        let relay = SelectedPair {
            local: ep("relay"),
            remote: ep("host"),
            prflx_learned: false,
            relayed: true,
        };
        let ch = ChannelOutcome::skipped("not built yet");
        let req = Requirements {
            direct: true,
            max_rtt_ms: Some(50.0),
            ..Requirements::default()
        };
        let a = assertions(&req, Some(&relay), &ch);
        assert_eq!(a[0].passed, Some(false));
        assert_eq!(a[1].passed, None);
        assert!(a[1].detail.contains("not built yet"));
    }
}
