//! The receiving half of one direction: distinct packets and bytes, RFC 3550
//! interarrival jitter and frame completeness within the playout budget.
//! Times are microseconds: arrivals on our clock, timestamps on the
//! sender's; only differences of transit times are used, so the clocks
//! need not be synchronised.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::wire::{ReceiverSummary, VideoPacket};

/// RFC 3550 section 6.4.1 / A.8 interarrival jitter, in microseconds.
#[derive(Debug, Clone, Default)]
pub struct Jitter {
    prev_transit_us: Option<i64>,
    jitter_us: f64,
}

impl Jitter {
    /// One packet: `arrival_us` on our clock, `send_ts_us` on the sender's.
    pub fn on_packet(&mut self, arrival_us: i64, send_ts_us: i64) {
        let transit = arrival_us - send_ts_us;
        if let Some(prev) = self.prev_transit_us {
            let d = (transit - prev).abs() as f64;
            self.jitter_us += (d - self.jitter_us) / 16.0;
        }
        self.prev_transit_us = Some(transit);
    }

    pub fn jitter_us(&self) -> f64 {
        self.jitter_us
    }
}

#[derive(Debug, Clone)]
struct FrameRx {
    count: u16,
    got: u16,
    frame_ts_us: i64,
    last_arrival_us: i64,
}

/// Everything one side receives from the peer's sender.
#[derive(Debug, Clone, Default)]
pub struct Receiver {
    seen_data: HashSet<u64>,
    seen_video: HashSet<u32>,
    received_packets: u64,
    received_payload_bytes: u64,
    /// First and last arrival of a (new) measurement packet, our clock.
    arrivals_us: Option<(i64, i64)>,
    jitter: Jitter,
    frames: HashMap<u32, FrameRx>,
    /// Smallest one-way transit (our clock minus the sender's) of any video
    /// packet: what a packet crossing the idle path takes, plus the clock
    /// offset.
    min_transit_us: Option<i64>,
    video: bool,
}

impl Receiver {
    /// A DATA message arriving at `arrival_us`; false when it is a
    /// duplicate.
    pub fn on_data(&mut self, seq: u64, payload_len: usize, arrival_us: i64) -> bool {
        if !self.seen_data.insert(seq) {
            return false;
        }
        self.on_arrival(arrival_us);
        self.received_packets += 1;
        self.received_payload_bytes += payload_len as u64;
        true
    }

    /// A VIDEO packet arriving at `arrival_us` (our clock).
    pub fn on_video(&mut self, p: &VideoPacket, arrival_us: i64) {
        self.video = true;
        if !self.seen_video.insert(p.seq) {
            return;
        }
        self.on_arrival(arrival_us);
        self.received_packets += 1;
        self.received_payload_bytes += p.payload_len as u64;
        self.jitter.on_packet(arrival_us, p.send_ts_us as i64);
        let transit = arrival_us - p.send_ts_us as i64;
        self.min_transit_us = Some(self.min_transit_us.map_or(transit, |m| m.min(transit)));
        let f = self.frames.entry(p.frame_id).or_insert(FrameRx {
            count: p.count,
            got: 0,
            frame_ts_us: p.frame_ts_us as i64,
            last_arrival_us: arrival_us,
        });
        f.got = f.got.saturating_add(1);
        f.last_arrival_us = f.last_arrival_us.max(arrival_us);
    }

    fn on_arrival(&mut self, arrival_us: i64) {
        let (first, _) = self.arrivals_us.unwrap_or((arrival_us, arrival_us));
        self.arrivals_us = Some((first, arrival_us));
    }

    /// Frames whose packets all arrived by `capture + min_transit + playout`.
    pub fn frames_complete_in_time(&self, playout: Duration) -> u64 {
        let Some(min_transit) = self.min_transit_us else {
            return 0;
        };
        let budget = playout.as_micros() as i64;
        self.frames
            .values()
            .filter(|f| f.got >= f.count)
            .filter(|f| f.last_arrival_us - (f.frame_ts_us + min_transit) <= budget)
            .count() as u64
    }

    /// The receiver's half, as sent in REPORT.
    pub fn summary(&self, playout: Option<Duration>) -> ReceiverSummary {
        let video = playout.is_some() || self.video;
        ReceiverSummary {
            received_packets: self.received_packets,
            received_payload_bytes: self.received_payload_bytes,
            span_us: self.arrivals_us.map_or(0, |(a, b)| (b - a).max(0) as u64),
            jitter_us: video
                .then(|| self.jitter.jitter_us().round().min(u32::MAX as f64 - 1.0) as u32),
            frames_complete_in_time: playout.map(|p| self.frames_complete_in_time(p)),
        }
    }
}

/// Nearest-rank p50, p90, p99 and max of `samples` (sorted in place).
pub fn percentiles(samples: &mut [u32]) -> Option<[u32; 4]> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let n = samples.len();
    let rank = |p: f64| samples[((p / 100.0 * n as f64).ceil() as usize).clamp(1, n) - 1];
    Some([rank(50.0), rank(90.0), rank(99.0), samples[n - 1]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_transit_has_no_jitter_and_alternating_transit_converges() {
        let mut j = Jitter::default();
        for i in 0..100 {
            j.on_packet(i * 1000 + 5000, i * 1000);
        }
        assert_eq!(j.jitter_us(), 0.0);
        // Transit alternating 0 / 2 ms: |D| = 2 ms every packet, J -> 2 ms.
        let mut j = Jitter::default();
        for i in 0..500 {
            j.on_packet(i * 1000 + (i % 2) * 2000, i * 1000);
        }
        assert!((j.jitter_us() - 2000.0).abs() < 1.0, "{}", j.jitter_us());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<u32> = (1..=100).rev().collect();
        assert_eq!(percentiles(&mut v), Some([50, 90, 99, 100]));
        assert_eq!(percentiles(&mut [7]), Some([7, 7, 7, 7]));
        assert_eq!(percentiles(&mut []), None);
    }

    #[test]
    fn a_frame_is_late_when_its_last_packet_misses_the_budget() {
        let mut r = Receiver::default();
        let pkt = |seq, frame_id, index, ts| VideoPacket {
            seq,
            frame_id,
            index,
            count: 2,
            frame_ts_us: ts,
            send_ts_us: ts,
            payload_len: 100,
        };
        // Frame 0: both packets 10 ms after capture (the fastest path).
        r.on_video(&pkt(0, 0, 0, 0), 10_000);
        r.on_video(&pkt(1, 0, 1, 0), 10_000);
        // Frame 1: last packet 160 ms later than the fastest path.
        r.on_video(&pkt(2, 1, 0, 33_000), 43_000);
        r.on_video(&pkt(3, 1, 1, 33_000), 203_000);
        // Frame 2: one packet lost.
        r.on_video(&pkt(4, 2, 0, 66_000), 76_000);
        r.on_video(&pkt(4, 2, 0, 66_000), 76_000);
        assert_eq!(r.frames_complete_in_time(Duration::from_millis(150)), 1);
        assert_eq!(r.frames_complete_in_time(Duration::from_millis(170)), 2);
        assert_eq!(r.summary(None).received_packets, 5);
    }
}
