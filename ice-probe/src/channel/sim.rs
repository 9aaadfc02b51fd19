//! Two sessions against each other through simulated links, in simulated
//! time: no sockets, no sleeps, deterministic (seeded).

use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use common::channel_report::{ChannelReport, ChannelStatus};

use super::{ChannelConfig, ChannelSession, Profile};

/// A small deterministic PRNG (xorshift64*).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One direction of the path.
#[derive(Debug, Clone, Copy)]
pub struct LinkSpec {
    pub delay: Duration,
    /// Each datagram gets an extra delay uniform in `[0, jitter]`.
    pub jitter: Duration,
    pub loss: f64,
    /// Serialisation rate in bits per second (a FIFO before the delay).
    pub bandwidth_bps: Option<u64>,
    /// Everything sent this long after the start is dropped (a path that
    /// breaks one way).
    pub cut_after: Option<Duration>,
}

impl LinkSpec {
    pub fn delay_ms(ms: u64) -> Self {
        LinkSpec {
            delay: Duration::from_millis(ms),
            jitter: Duration::ZERO,
            loss: 0.0,
            bandwidth_bps: None,
            cut_after: None,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
struct InFlight {
    at: Instant,
    order: u64,
    data: Vec<u8>,
}

impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Min-heap on (arrival, order).
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

struct Link {
    spec: LinkSpec,
    start: Instant,
    rng: Rng,
    queue: BinaryHeap<InFlight>,
    busy_until: Option<Instant>,
    order: u64,
}

impl Link {
    fn new(spec: LinkSpec, seed: u64, start: Instant) -> Self {
        Link {
            spec,
            start,
            rng: Rng(seed | 1),
            queue: BinaryHeap::new(),
            busy_until: None,
            order: 0,
        }
    }

    fn send(&mut self, now: Instant, data: Vec<u8>) {
        if self.rng.next_f64() < self.spec.loss
            || matches!(self.spec.cut_after, Some(c) if now >= self.start + c)
        {
            return;
        }
        let mut at = now;
        if let Some(bw) = self.spec.bandwidth_bps {
            let start = self.busy_until.map_or(now, |b| b.max(now));
            let tx = Duration::from_nanos((data.len() as u64 * 8 * 1_000_000_000) / bw);
            self.busy_until = Some(start + tx);
            at = start + tx;
        }
        let jitter = self.spec.jitter.mul_f64(self.rng.next_f64());
        self.order += 1;
        self.queue.push(InFlight {
            at: at + self.spec.delay + jitter,
            order: self.order,
            data,
        });
    }

    fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|p| p.at)
    }

    fn pop_due(&mut self, now: Instant) -> Option<Vec<u8>> {
        if self.queue.peek()?.at <= now {
            self.queue.pop().map(|p| p.data)
        } else {
            None
        }
    }
}

/// A side: a session, or nobody (a silent peer), or a session that
/// vanishes (stops being driven) at a time.
pub struct Side {
    pub session: Option<ChannelSession>,
    pub vanish_at: Option<Instant>,
}

/// Drives `a` and `b` over links `ab` (a to b) and `ba` until both are done
/// (or gone); returns the simulated time it took. Panics past 120 s of
/// simulated time: nothing may hang.
pub fn drive(a: &mut Side, b: &mut Side, ab: LinkSpec, ba: LinkSpec, start: Instant) -> Duration {
    let mut links = [
        Link::new(ab, 0x1234_5678, start),
        Link::new(ba, 0x9abc_def0, start),
    ];
    let mut now = start;
    let alive = |s: &Side, now: Instant| {
        s.session.as_ref().is_some_and(|x| !x.is_done())
            && !matches!(s.vanish_at, Some(v) if now >= v)
    };
    for _ in 0..10_000_000 {
        assert!(now - start < Duration::from_secs(120), "simulation hung");
        for (i, side) in [&mut *a, &mut *b].into_iter().enumerate() {
            if !alive(side, now) {
                continue;
            }
            let s = side.session.as_mut().unwrap();
            s.handle_timeout(now);
            while let Some(d) = s.poll_transmit(now) {
                links[i].send(now, d);
            }
        }
        if !alive(a, now) && !alive(b, now) {
            return now - start;
        }
        let mut next: Option<Instant> = None;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        };
        for side in [&*a, &*b] {
            if alive(side, now) {
                consider(side.session.as_ref().unwrap().poll_timeout());
                consider(side.vanish_at);
            }
        }
        consider(links[0].next_arrival());
        consider(links[1].next_arrival());
        now = next.expect("something to wait for").max(now);
        // Deliver: link 0 feeds b, link 1 feeds a.
        for (link, side) in [(0, &mut *b), (1, &mut *a)] {
            while let Some(d) = links[link].pop_due(now) {
                if alive(side, now) {
                    let s = side.session.as_mut().unwrap();
                    s.handle_datagram(now, &d);
                    while let Some(out) = s.poll_transmit(now) {
                        links[1 - link].send(now, out);
                    }
                }
            }
        }
    }
    panic!("simulation did not end");
}

fn side(config: ChannelConfig, start: Instant) -> Side {
    Side {
        session: Some(ChannelSession::new(config, start)),
        vanish_at: None,
    }
}

fn video(bitrate_bps: u64) -> Profile {
    Profile::Video {
        bitrate_bps,
        fps: 30,
        playout: Duration::from_millis(150),
    }
}

/// Runs a symmetric pair over the same link spec both ways.
fn pair(profile: Profile, secs: u64, link: LinkSpec) -> (ChannelReport, ChannelReport, Duration) {
    let start = Instant::now();
    let config = ChannelConfig::new(profile, Duration::from_secs(secs));
    let (mut a, mut b) = (side(config, start), side(config, start));
    let took = drive(&mut a, &mut b, link, link, start);
    assert!(took <= config.bound(), "{took:?}");
    (
        a.session.unwrap().report(),
        b.session.unwrap().report(),
        took,
    )
}

fn failed_reason(r: &ChannelReport) -> &str {
    match &r.status {
        ChannelStatus::Failed { reason } => reason,
        other => panic!("expected failed, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_delay_without_loss_gives_twice_the_delay_and_no_jitter() {
        let (a, b, took) = pair(Profile::data(), 3, LinkSpec::delay_ms(20));
        for r in [&a, &b] {
            assert_eq!(r.status, ChannelStatus::Completed, "{r:#?}");
            assert_eq!(r.peer_protocol_version, Some(1));
            for d in [r.outbound.as_ref().unwrap(), r.inbound.as_ref().unwrap()] {
                assert_eq!(d.lost_packets, Some(0), "{d:#?}");
                let rtt = d.rtt_ms.unwrap();
                assert!((rtt.p50 - 40.0).abs() < 0.01, "{rtt:?}");
                assert!((rtt.max - 40.0).abs() < 0.01, "{rtt:?}");
                // A window of 32 x 1178 payload bytes per 40 ms RTT.
                let expected = 32.0 * 1178.0 * 8.0 / 0.040;
                let g = d.goodput_bps.unwrap();
                assert!((g - expected).abs() / expected < 0.05, "{g} vs {expected}");
                assert!((d.duration_s.unwrap() - 3.0).abs() < 0.01);
            }
        }
        // Both directions agree: a's outbound is b's inbound.
        assert_eq!(a.outbound, b.inbound);
        assert_eq!(a.inbound, b.outbound);
        assert!(took < Duration::from_secs(5), "{took:?}");

        let (a, b, _) = pair(video(2_500_000), 3, LinkSpec::delay_ms(20));
        for r in [&a, &b] {
            assert_eq!(r.status, ChannelStatus::Completed, "{r:#?}");
            for d in [r.outbound.as_ref().unwrap(), r.inbound.as_ref().unwrap()] {
                assert_eq!(d.lost_packets, Some(0), "{d:#?}");
                assert_eq!(d.jitter_ms, Some(0.0));
                assert_eq!(d.frames_sent, Some(90));
                assert_eq!(d.frames_complete_in_time_pct, Some(100.0));
                let g = d.goodput_bps.unwrap();
                assert!((g - 2_500_000.0).abs() / 2_500_000.0 < 0.02, "{g}");
            }
        }
        // 2.5 Mbit/s at 30 fps: 10,416-byte frames in 9 packets of <= 1,200.
        assert_eq!(a.outbound.as_ref().unwrap().sent_packets, Some(90 * 9));
    }

    #[test]
    fn five_percent_loss_shows_as_about_five_percent() {
        let link = LinkSpec {
            loss: 0.05,
            ..LinkSpec::delay_ms(20)
        };
        for profile in [Profile::data(), video(2_500_000)] {
            let (a, b, took) = pair(profile, 5, link);
            for r in [&a, &b] {
                assert_eq!(r.status, ChannelStatus::Completed, "{r:#?}");
                for d in [r.outbound.as_ref().unwrap(), r.inbound.as_ref().unwrap()] {
                    let loss = d.loss_pct.unwrap();
                    assert!((3.0..=7.0).contains(&loss), "{profile:?}: {loss}% {d:#?}");
                    assert!(d.sent_packets.unwrap() > 1000);
                }
            }
            assert!(took < Duration::from_secs(10), "{took:?}");
        }
    }

    #[test]
    fn link_jitter_shows_as_rfc3550_jitter_of_the_right_order() {
        // Uniform extra delay in [0, 10 ms]: E|D| = 10/3 ms, so J ~ 3.3 ms.
        let link = LinkSpec {
            jitter: Duration::from_millis(10),
            ..LinkSpec::delay_ms(20)
        };
        let (a, b, _) = pair(video(2_500_000), 4, link);
        for r in [&a, &b] {
            assert_eq!(r.status, ChannelStatus::Completed, "{r:#?}");
            for d in [r.outbound.as_ref().unwrap(), r.inbound.as_ref().unwrap()] {
                let j = d.jitter_ms.unwrap();
                assert!((1.5..=6.0).contains(&j), "jitter {j} ms");
                assert_eq!(d.lost_packets, Some(0));
                // 10 ms of jitter is well inside a 150 ms playout budget.
                assert_eq!(d.frames_complete_in_time_pct, Some(100.0));
            }
        }
        // And the data profile's RTT spreads over [40, 60] ms.
        let (a, _, _) = pair(Profile::data(), 3, link);
        let rtt = a.outbound.unwrap().rtt_ms.unwrap();
        assert!(
            rtt.p50 > 42.0 && rtt.p50 < 58.0 && rtt.max <= 60.01,
            "{rtt:?}"
        );

        // Both directions capped at 2 Mbit/s: the windows' queues (and acks
        // waiting behind the reverse data) show in the RTT.
        let capped = LinkSpec {
            bandwidth_bps: Some(2_000_000),
            ..LinkSpec::delay_ms(20)
        };
        let (a, _, _) = pair(Profile::data(), 5, capped);
        let out = a.outbound.unwrap();
        let rtt = out.rtt_ms.unwrap();
        assert!(rtt.p50 > 100.0, "{rtt:?}");
        assert_eq!(out.lost_packets, Some(0));
    }

    #[test]
    fn a_bandwidth_cap_below_the_bitrate_makes_frames_late() {
        let capped = LinkSpec {
            bandwidth_bps: Some(1_500_000),
            ..LinkSpec::delay_ms(20)
        };
        let roomy = LinkSpec {
            bandwidth_bps: Some(10_000_000),
            ..LinkSpec::delay_ms(20)
        };
        let (fast, _, _) = pair(video(2_500_000), 3, roomy);
        let (slow, _, took) = pair(video(2_500_000), 3, capped);
        let fast = fast.outbound.unwrap();
        let slow_out = slow.outbound.as_ref().unwrap();
        assert_eq!(fast.frames_complete_in_time_pct, Some(100.0));
        let pct = slow_out.frames_complete_in_time_pct.unwrap();
        assert!(pct < 30.0, "{pct}% {slow:#?}");
        // The queue drains: the link loses nothing, frames arrive late.
        assert_eq!(slow_out.lost_packets, Some(0));
        assert!(slow_out.goodput_bps.unwrap() < 2_000_000.0);
        assert!(took < Duration::from_secs(10), "{took:?}");
    }

    #[test]
    fn a_windowed_sender_sustains_the_bottleneck_rate() {
        // 32 x 1,200 B per 40 ms RTT would be 7.7 Mbit/s: a 2 Mbit/s link
        // is the limit, and goodput is its payload share.
        // The cap is on a -> b only (an uplink): b's acks do not queue
        // behind b's data, so a's window alone sets a's rate.
        let up = LinkSpec {
            bandwidth_bps: Some(2_000_000),
            ..LinkSpec::delay_ms(20)
        };
        let start = Instant::now();
        let config = ChannelConfig::new(Profile::data(), Duration::from_secs(5));
        let (mut a, mut b) = (side(config, start), side(config, start));
        drive(&mut a, &mut b, up, LinkSpec::delay_ms(20), start);
        let a = a.session.unwrap().report();
        assert_eq!(a.status, ChannelStatus::Completed);
        let out = a.outbound.unwrap();
        let expected = 2_000_000.0 * 1178.0 / 1200.0;
        let g = out.goodput_bps.unwrap();
        assert!((g - expected).abs() / expected < 0.05, "{g} vs {expected}");
        assert_eq!(out.lost_packets, Some(0));
        // The queue the window builds shows in the RTT.
        assert!(out.rtt_ms.unwrap().p50 > 100.0, "{:?}", out.rtt_ms);
    }

    #[test]
    fn a_version_mismatch_fails_clearly_on_both_sides() {
        let start = Instant::now();
        let config = ChannelConfig::new(Profile::data(), Duration::from_secs(3));
        let mut old = side(config, start);
        let mut new = Side {
            session: Some(ChannelSession::new(config, start).speaking_version(2)),
            vanish_at: None,
        };
        let took = drive(
            &mut old,
            &mut new,
            LinkSpec::delay_ms(20),
            LinkSpec::delay_ms(20),
            start,
        );
        let old = old.session.unwrap().report();
        let new = new.session.unwrap().report();
        assert!(
            failed_reason(&old).starts_with("peer speaks channel protocol v2, we speak v1"),
            "{old:#?}"
        );
        assert!(
            failed_reason(&new).starts_with("peer speaks channel protocol v1, we speak v2"),
            "{new:#?}"
        );
        assert_eq!(old.peer_protocol_version, Some(2));
        assert!(old.outbound.is_none() && new.inbound.is_none());
        assert!(took < Duration::from_secs(2), "{took:?}");

        // A lossy path too: the first HELLOs may be lost, the later ones
        // (and the replies to them) get through.
        let lossy = LinkSpec {
            loss: 0.3,
            ..LinkSpec::delay_ms(20)
        };
        let mut old = side(config, start);
        let mut new = Side {
            session: Some(ChannelSession::new(config, start).speaking_version(2)),
            vanish_at: None,
        };
        drive(&mut old, &mut new, lossy, lossy, start);
        assert!(failed_reason(&old.session.unwrap().report()).contains("v2, we speak v1"));
        assert!(failed_reason(&new.session.unwrap().report()).contains("v1, we speak v2"));
    }

    #[test]
    fn a_profile_mismatch_fails_clearly_on_both_sides() {
        let start = Instant::now();
        let d = Duration::from_secs(3);
        let mut a = side(ChannelConfig::new(Profile::data(), d), start);
        let mut b = side(ChannelConfig::new(video(1_000_000), d), start);
        let link = LinkSpec::delay_ms(10);
        drive(&mut a, &mut b, link, link, start);
        let a = a.session.unwrap().report();
        let b = b.session.unwrap().report();
        assert!(failed_reason(&a)
            .starts_with("peer measures --profile video, we measure --profile data"));
        assert!(failed_reason(&b)
            .starts_with("peer measures --profile data, we measure --profile video"));
    }

    #[test]
    fn a_silent_peer_is_skipped_within_the_bound() {
        let start = Instant::now();
        let config = ChannelConfig::new(Profile::data(), Duration::from_secs(10));
        let mut a = side(config, start);
        let mut nobody = Side {
            session: None,
            vanish_at: None,
        };
        let link = LinkSpec::delay_ms(20);
        let took = drive(&mut a, &mut nobody, link, link, start);
        let r = a.session.unwrap().report();
        assert_eq!(
            r.status,
            ChannelStatus::Skipped {
                reason: "the peer does not answer (not ice-probe?)".into()
            }
        );
        assert_eq!(r.peer_protocol_version, None);
        assert!(r.outbound.is_none());
        assert_eq!(took, Duration::from_secs(2));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["status"]["state"], "skipped");
        assert_eq!(json["schema"], "ice-probe.channel/1");
    }

    #[test]
    fn a_peer_vanishing_mid_run_ends_it_within_the_bound() {
        for profile in [Profile::data(), video(2_500_000)] {
            let start = Instant::now();
            let config = ChannelConfig::new(profile, Duration::from_secs(10));
            let mut a = side(config, start);
            let mut b = side(config, start);
            b.vanish_at = Some(start + Duration::from_millis(3240));
            let link = LinkSpec::delay_ms(20);
            let took = drive(&mut a, &mut b, link, link, start);
            let r = a.session.unwrap().report();
            let reason = failed_reason(&r);
            assert!(
                reason.starts_with("peer stopped answering after 3.2 s"),
                "{reason}"
            );
            // 3.24 s + one-way delay + the 2 s bound.
            assert!(took <= Duration::from_millis(5300), "{took:?}");
            // What was measured until then is kept.
            let out = r.outbound.as_ref().unwrap();
            assert!(out.sent_packets.unwrap() > 100);
            assert!(r.inbound.as_ref().unwrap().received_packets.unwrap() > 100);
            // The JSON: status with its reason, the halves that arrived.
            let v = serde_json::to_value(&r).unwrap();
            assert_eq!(v["schema"], "ice-probe.channel/1");
            assert_eq!(v["status"]["state"], "failed");
            assert_eq!(v["status"]["reason"], reason);
            assert!(v["outbound"]["received_packets"].is_null());
            assert!(v["outbound"]["sent_packets"].as_u64().unwrap() > 100);
            let back: ChannelReport = serde_json::from_value(v).unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn a_path_broken_one_way_mid_run_ends_both_sides_within_the_bound() {
        // a -> b dies at 2.5 s; b -> a keeps working. b hears nothing and
        // ends at the peer timeout; a still hears b (data, then FINs) until
        // b gives up, and ends at its own bound.
        for profile in [Profile::data(), video(2_500_000)] {
            let start = Instant::now();
            let config = ChannelConfig::new(profile, Duration::from_secs(4));
            let (mut a, mut b) = (side(config, start), side(config, start));
            let ab = LinkSpec {
                cut_after: Some(Duration::from_millis(2500)),
                ..LinkSpec::delay_ms(20)
            };
            let took = drive(&mut a, &mut b, ab, LinkSpec::delay_ms(20), start);
            assert!(took <= config.bound(), "{took:?}");
            let a = a.session.unwrap().report();
            let b = b.session.unwrap().report();
            assert!(
                failed_reason(&b).starts_with("peer stopped answering after 2.5 s"),
                "{b:#?}"
            );
            let reason = failed_reason(&a);
            assert!(
                reason.starts_with("peer stopped answering") || reason.contains("not confirmed"),
                "{reason}"
            );
            // What a received until b gave up is kept.
            assert!(a.inbound.unwrap().received_packets.unwrap() > 0);
        }
    }

    #[test]
    fn a_peer_that_talks_but_never_confirms_the_end_cannot_hold_us() {
        // a -> b dies just after sending stops: b's FINs keep reaching a
        // (so a never sees a silent peer) but a's FIN never reaches b.
        let start = Instant::now();
        // Video: its FIN leaves 100 ms after the last frame, inside the cut.
        let config = ChannelConfig::new(video(1_000_000), Duration::from_secs(4));
        let (mut a, mut b) = (side(config, start), side(config, start));
        let ab = LinkSpec {
            cut_after: Some(Duration::from_millis(4100)),
            ..LinkSpec::delay_ms(20)
        };
        let took = drive(&mut a, &mut b, ab, LinkSpec::delay_ms(20), start);
        assert!(took <= config.bound(), "{took:?}");
        let a = a.session.unwrap().report();
        let reason = failed_reason(&a);
        assert!(
            reason.starts_with("the end of the measurement was not confirmed 3.0 s after sending stopped (no REPORT for our FIN)"),
            "{reason}"
        );
        // Both halves of a's inbound arrived; its outbound lacks b's half.
        assert_eq!(a.inbound.as_ref().unwrap().lost_packets, Some(0));
        assert!(a.outbound.as_ref().unwrap().received_packets.is_none());
    }

    #[test]
    fn garbage_with_our_magic_never_panics_a_session() {
        let start = Instant::now();
        for (code, profile) in [(1, Profile::data()), (2, video(2_500_000))] {
            let mut s =
                ChannelSession::new(ChannelConfig::new(profile, Duration::from_secs(1)), start);
            let mut rng = Rng(0xdead_beef);
            let mut now = start;
            // A HELLO that starts the session, then garbage while running.
            let hello = [0x0C, b'I', b'P', b'C', 1, 1, 1, code, 0, 0, 3, 0xe8];
            s.handle_datagram(now, &hello);
            assert!(s.status().is_none());
            for i in 0..20_000u32 {
                let len = (rng.next_f64() * 64.0) as usize;
                let mut d = vec![0x0C, b'I', b'P', b'C', 1, 1 + (i % 7) as u8];
                d.extend((0..len).map(|_| (rng.next_f64() * 256.0) as u8));
                now += Duration::from_micros(100);
                s.handle_datagram(now, &d);
                while s.poll_transmit(now).is_some() {}
            }
            let _ = s.report();
        }
    }

    #[test]
    fn the_peers_report_lost_on_the_way_back_is_asked_again() {
        // Heavy loss on the way back: FIN / REPORT need their repeats.
        let start = Instant::now();
        let config = ChannelConfig::new(Profile::data(), Duration::from_secs(2));
        let (mut a, mut b) = (side(config, start), side(config, start));
        let ba = LinkSpec {
            loss: 0.4,
            ..LinkSpec::delay_ms(5)
        };
        drive(&mut a, &mut b, LinkSpec::delay_ms(5), ba, start);
        for r in [a.session.unwrap().report(), b.session.unwrap().report()] {
            assert_eq!(r.status, ChannelStatus::Completed, "{r:#?}");
            assert!(r.outbound.unwrap().received_packets.is_some());
            assert!(r.inbound.unwrap().sent_packets.is_some());
        }
    }
}
