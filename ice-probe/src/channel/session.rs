//! One side of a channel measurement, sans-IO: it is fed datagrams and
//! `Instant`s and says what to send and when to wake it. Both sides run the
//! same machine (the protocol is symmetric): HELLO exchange, then sending
//! and receiving at the same time, then FIN / REPORT to swap the halves of
//! each direction, then a short linger to answer a repeated FIN.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use common::channel_report::{
    ChannelProfile, ChannelReport, ChannelSettings, ChannelStatus, DirectionReport, RttMs,
    CHANNEL_SCHEMA,
};

use super::receiver::{percentiles, Receiver};
use super::wire::{
    self, Message, Parsed, ReceiverSummary, SenderSummary, VideoPacket, DATA_HEADER_LEN,
    MAX_DATAGRAM, PROFILE_DATA, PROFILE_VIDEO, PROTOCOL_VERSION, VIDEO_HEADER_LEN,
};
use super::{ChannelConfig, Profile};

/// HELLO is repeated this often until both sides have heard each other.
pub const HELLO_INTERVAL: Duration = Duration::from_millis(250);
/// FIN is repeated this often until the REPORT arrives.
pub const FIN_INTERVAL: Duration = Duration::from_millis(100);
/// After the last FIN from the peer, we stay this long to answer a repeat
/// (our REPORT may have been lost).
pub const LINGER: Duration = Duration::from_millis(600);
/// After a version or profile mismatch, we stay this long answering the
/// peer's datagrams with our HELLO, so it learns why too.
pub const MISMATCH_LINGER: Duration = Duration::from_millis(1000);
/// Lingering never lasts longer than this after the end, however many FINs
/// a broken peer sends.
pub const MAX_LINGER: Duration = Duration::from_secs(2);
/// Video: the wait after the last frame before FIN, so packets still on the
/// path are counted.
pub const VIDEO_DRAIN: Duration = Duration::from_millis(100);
/// Data: a message unacknowledged this long (at most) is given up and its
/// window slot reused.
pub const MAX_RTO: Duration = Duration::from_secs(1);
const MIN_RTO: Duration = Duration::from_millis(200);
/// At most this many HELLOs answer a peer of another version.
const MAX_MISMATCH_REPLIES: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Hello,
    Running,
    Lingering { until: Instant },
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutState {
    Sending,
    Draining { until: Instant },
    Finishing { next_fin: Instant },
    Reported,
}

/// Our sending half.
#[derive(Debug)]
struct Outbound {
    state: OutState,
    started: Instant,
    send_end: Instant,
    sent_packets: u64,
    sent_payload_bytes: u64,
    frames_sent: u64,
    // Data: seq -> send time (us since the session epoch).
    in_flight: BTreeMap<u64, u64>,
    /// Given up (their slot reused) but not acknowledged yet: a late ack
    /// still gives an RTT sample, so queues show in the distribution.
    given_up: HashSet<u64>,
    next_seq: u64,
    rtt_us: Vec<u32>,
    srtt_us: Option<f64>,
    rttvar_us: f64,
    // Video.
    next_frame_at: Instant,
    next_frame_id: u32,
    next_video_seq: u32,
    summary: Option<SenderSummary>,
    peer_report: Option<ReceiverSummary>,
}

impl Outbound {
    fn rto(&self) -> Duration {
        match self.srtt_us {
            None => MAX_RTO,
            Some(srtt) => {
                Duration::from_micros((srtt + 4.0 * self.rttvar_us) as u64).clamp(MIN_RTO, MAX_RTO)
            }
        }
    }

    fn on_rtt(&mut self, rtt_us: u64) {
        let r = rtt_us as f64;
        self.rtt_us.push(rtt_us.min(u32::MAX as u64 - 1) as u32);
        match self.srtt_us {
            None => {
                self.srtt_us = Some(r);
                self.rttvar_us = r / 2.0;
            }
            Some(s) => {
                self.rttvar_us = 0.75 * self.rttvar_us + 0.25 * (s - r).abs();
                self.srtt_us = Some(0.875 * s + 0.125 * r);
            }
        }
    }

    fn summary_at(&self, end: Instant) -> SenderSummary {
        if let Some(s) = self.summary {
            return s;
        }
        let mut rtt = self.rtt_us.clone();
        SenderSummary {
            sent_packets: self.sent_packets,
            sent_payload_bytes: self.sent_payload_bytes,
            frames_sent: self.frames_sent,
            duration_us: end
                .min(self.send_end)
                .saturating_duration_since(self.started)
                .as_micros() as u64,
            rtt_us: percentiles(&mut rtt),
        }
    }
}

/// One side of a channel measurement.
#[derive(Debug)]
pub struct ChannelSession {
    config: ChannelConfig,
    version: u8,
    created: Instant,
    last_now: Instant,
    phase: Phase,
    status: Option<ChannelStatus>,
    peer_version: Option<u8>,
    heard_peer: bool,
    next_hello: Instant,
    duration: Duration,
    last_rx: Option<Instant>,
    queue: VecDeque<Vec<u8>>,
    out: Option<Outbound>,
    inbound: Receiver,
    peer_fin: Option<SenderSummary>,
    inbound_summary: Option<ReceiverSummary>,
    last_fin_rx: Option<Instant>,
    mismatch_replies: u32,
    ended: Option<Instant>,
    buf: Vec<u8>,
}

impl ChannelSession {
    /// A session whose first HELLO is due at `now`.
    pub fn new(config: ChannelConfig, now: Instant) -> Self {
        ChannelSession {
            duration: config.duration,
            config,
            version: PROTOCOL_VERSION,
            created: now,
            last_now: now,
            phase: Phase::Hello,
            status: None,
            peer_version: None,
            heard_peer: false,
            next_hello: now,
            last_rx: None,
            queue: VecDeque::new(),
            out: None,
            inbound: Receiver::default(),
            peer_fin: None,
            inbound_summary: None,
            last_fin_rx: None,
            mismatch_replies: 0,
            ended: None,
            buf: Vec::with_capacity(MAX_DATAGRAM),
        }
    }

    /// Speak another protocol version (tests of the mismatch path).
    #[cfg(test)]
    pub(crate) fn speaking_version(mut self, version: u8) -> Self {
        self.version = version;
        self
    }

    /// Nothing more to send or wait for: read [`Self::report`].
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// How it ended, `None` while running.
    pub fn status(&self) -> Option<&ChannelStatus> {
        self.status.as_ref()
    }

    fn profile_code(&self) -> u8 {
        match self.config.profile {
            Profile::Data { .. } => PROFILE_DATA,
            Profile::Video { .. } => PROFILE_VIDEO,
        }
    }

    fn us(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.created).as_micros() as u64
    }

    fn push(&mut self, msg: Message) {
        wire::encode(self.version, &msg, &mut self.buf);
        self.queue.push_back(self.buf.clone());
    }

    fn push_hello(&mut self) {
        self.push(Message::Hello {
            heard_you: self.heard_peer,
            profile: self.profile_code(),
            duration_ms: self.config.duration.as_millis().min(u32::MAX as u128) as u32,
        });
    }

    fn end(&mut self, now: Instant, status: ChannelStatus, linger: Option<Duration>) {
        if self.status.is_none() {
            self.status = Some(status);
        }
        self.ended.get_or_insert(now);
        // Freeze both halves as they are.
        if let Some(out) = &mut self.out {
            out.summary = Some(out.summary_at(now));
        }
        if self.out.is_some() && self.inbound_summary.is_none() {
            self.inbound_summary = Some(self.inbound.summary(self.playout()));
        }
        self.phase = match linger {
            Some(d) => Phase::Lingering { until: now + d },
            None => Phase::Done,
        };
    }

    fn playout(&self) -> Option<Duration> {
        match self.config.profile {
            Profile::Video { playout, .. } => Some(playout),
            Profile::Data { .. } => None,
        }
    }

    fn start(&mut self, now: Instant) {
        self.phase = Phase::Running;
        self.out = Some(Outbound {
            state: OutState::Sending,
            started: now,
            send_end: now + self.duration,
            sent_packets: 0,
            sent_payload_bytes: 0,
            frames_sent: 0,
            in_flight: BTreeMap::new(),
            given_up: HashSet::new(),
            next_seq: 0,
            rtt_us: Vec::new(),
            srtt_us: None,
            rttvar_us: 0.0,
            next_frame_at: now,
            next_frame_id: 0,
            next_video_seq: 0,
            summary: None,
            peer_report: None,
        });
    }

    /// Feeds one received datagram. Datagrams that are not ours (no magic)
    /// are ignored.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        self.last_now = now;
        if self.phase == Phase::Done {
            return;
        }
        match wire::parse(self.version, datagram) {
            Parsed::NotOurs | Parsed::Malformed => {}
            Parsed::OtherVersion(v) => {
                self.peer_version = Some(v);
                if self.status.is_none() {
                    let reason = format!(
                        "peer speaks channel protocol v{v}, we speak v{}: run the same ice-probe version on both sides",
                        self.version
                    );
                    self.end(now, ChannelStatus::Failed { reason }, Some(MISMATCH_LINGER));
                }
                if self.mismatch_replies < MAX_MISMATCH_REPLIES {
                    self.mismatch_replies += 1;
                    self.push_hello();
                }
            }
            Parsed::Ours(msg) => {
                self.peer_version = Some(self.version);
                self.last_rx = Some(now);
                self.on_message(now, msg);
            }
        }
        self.advance(now);
    }

    fn on_message(&mut self, now: Instant, msg: Message) {
        if let Message::Hello {
            heard_you,
            profile,
            duration_ms,
        } = msg
        {
            return self.on_hello(now, heard_you, profile, duration_ms);
        }
        match self.phase {
            // The peer started: it heard our HELLO saying we heard it. Only
            // its measurement traffic says so (a late FIN or REPORT of an
            // earlier run on the same pair does not).
            Phase::Hello
                if self.heard_peer && matches!(msg, Message::Data { .. } | Message::Video(_)) =>
            {
                self.start(now);
            }
            Phase::Running => {}
            Phase::Lingering { until } => {
                if matches!(msg, Message::Fin(_)) {
                    if let Some(r) = self.inbound_summary {
                        self.push(Message::Report(r));
                        let cap = self.ended.unwrap_or(now) + MAX_LINGER;
                        self.phase = Phase::Lingering {
                            until: until.max(now + LINGER).min(cap),
                        };
                    }
                }
                return;
            }
            _ => return,
        }
        let now_us = self.us(now);
        match msg {
            Message::Hello { .. } => {}
            Message::Data {
                seq,
                send_ts_us,
                payload_len,
            } => {
                if self.inbound_summary.is_none() {
                    self.inbound.on_data(seq, payload_len, now_us as i64);
                }
                self.push(Message::DataAck {
                    seq,
                    echo_ts_us: send_ts_us,
                });
            }
            Message::DataAck { seq, echo_ts_us } => {
                if let Some(out) = &mut self.out {
                    if let Some(sent_us) = out.in_flight.remove(&seq) {
                        out.on_rtt(now_us.saturating_sub(sent_us));
                    } else if out.given_up.remove(&seq) {
                        out.on_rtt(now_us.saturating_sub(echo_ts_us));
                    }
                }
            }
            Message::Video(p) => {
                if self.inbound_summary.is_none() {
                    self.inbound.on_video(&p, now_us as i64);
                }
            }
            Message::Fin(s) => {
                self.peer_fin.get_or_insert(s);
                self.last_fin_rx = Some(now);
                let r = match self.inbound_summary {
                    Some(r) => r,
                    None => {
                        let r = self.inbound.summary(self.playout());
                        self.inbound_summary = Some(r);
                        r
                    }
                };
                self.push(Message::Report(r));
            }
            Message::Report(r) => {
                if let Some(out) = &mut self.out {
                    if matches!(out.state, OutState::Finishing { .. }) {
                        out.peer_report = Some(r);
                        out.state = OutState::Reported;
                    }
                }
            }
        }
    }

    fn on_hello(&mut self, now: Instant, heard_you: bool, profile: u8, duration_ms: u32) {
        match self.phase {
            Phase::Hello => {
                if profile != self.profile_code() {
                    let name = |p| if p == PROFILE_DATA { "data" } else { "video" };
                    let reason = format!(
                        "peer measures --profile {}, we measure --profile {}: give both sides the same profile",
                        name(profile),
                        name(self.profile_code())
                    );
                    self.end(now, ChannelStatus::Failed { reason }, Some(MISMATCH_LINGER));
                    self.push_hello();
                    return;
                }
                self.heard_peer = true;
                self.duration = self
                    .config
                    .duration
                    .min(Duration::from_millis(duration_ms as u64));
                self.push_hello();
                self.next_hello = now + HELLO_INTERVAL;
                if heard_you {
                    self.start(now);
                }
            }
            // The peer has not heard us yet: say again that we heard it.
            Phase::Running if !heard_you => self.push_hello(),
            // A mismatch: answer so the peer learns why too.
            Phase::Lingering { .. }
                if self.mismatch_replies < MAX_MISMATCH_REPLIES
                    && matches!(self.status, Some(ChannelStatus::Failed { .. }))
                    && self.last_fin_rx.is_none() =>
            {
                self.mismatch_replies += 1;
                self.push_hello();
            }
            _ => {}
        }
    }

    /// Moves timers that are due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        self.advance(now);
    }

    fn advance(&mut self, now: Instant) {
        match self.phase {
            Phase::Hello => {
                if now >= self.created + self.config.hello_timeout {
                    let reason = if self.heard_peer {
                        format!(
                            "the peer's HELLO arrived but it never heard ours within {:.1} s",
                            self.config.hello_timeout.as_secs_f64()
                        )
                    } else {
                        "the peer does not answer (not ice-probe?)".to_string()
                    };
                    self.end(now, ChannelStatus::Skipped { reason }, None);
                } else if now >= self.next_hello {
                    self.push_hello();
                    self.next_hello = now + HELLO_INTERVAL;
                }
            }
            Phase::Running => self.advance_running(now),
            Phase::Lingering { until } => {
                if now >= until {
                    self.phase = Phase::Done;
                }
            }
            Phase::Done => {}
        }
    }

    fn advance_running(&mut self, now: Instant) {
        let last_rx = self.last_rx.unwrap_or(self.created);
        if now >= last_rx + self.config.peer_timeout {
            let started = self.out.as_ref().map_or(self.created, |o| o.started);
            let reason = format!(
                "peer stopped answering after {:.1} s (nothing for {:.1} s: it exited, or the path to it broke)",
                last_rx.saturating_duration_since(started).as_secs_f64(),
                now.saturating_duration_since(last_rx).as_secs_f64()
            );
            self.end(now, ChannelStatus::Failed { reason }, None);
            return;
        }
        // A peer that keeps talking but never finishes (its FIN or our
        // REPORT never gets through) cannot hold us either.
        if let Some(out) = &self.out {
            if now >= out.send_end + MAX_RTO + self.config.peer_timeout {
                let reason = format!(
                    "the end of the measurement was not confirmed {:.1} s after sending stopped ({})",
                    now.saturating_duration_since(out.send_end).as_secs_f64(),
                    match (out.state == OutState::Reported, self.peer_fin.is_some()) {
                        (false, false) => "no FIN from the peer, no REPORT for ours",
                        (false, true) => "no REPORT for our FIN",
                        _ => "no FIN from the peer",
                    }
                );
                self.end(now, ChannelStatus::Failed { reason }, None);
                return;
            }
        }
        let now_us = self.us(now);
        let profile = self.config.profile;
        let Some(out) = self.out.as_mut() else { return };
        // Data: give up messages unacknowledged for an RTO.
        let rto_us = out.rto().as_micros() as u64;
        while let Some((&seq, &sent)) = out.in_flight.first_key_value() {
            if sent + rto_us > now_us {
                break;
            }
            out.in_flight.remove(&seq);
            out.given_up.insert(seq);
        }
        let mut frames = Vec::new();
        if out.state == OutState::Sending {
            if let Profile::Video { fps, .. } = profile {
                while out.next_frame_at <= now && out.next_frame_at < out.send_end {
                    let frame_ts = out.next_frame_at.saturating_duration_since(self.created);
                    frames.push((out.next_frame_id, frame_ts.as_micros() as u64));
                    out.next_frame_id += 1;
                    out.frames_sent += 1;
                    // Frame k at k / fps exactly: no drift from a rounded interval.
                    let k = out.next_frame_id as u128;
                    let at_ns = k * 1_000_000_000 / fps.max(1) as u128;
                    out.next_frame_at = out.started + Duration::from_nanos(at_ns as u64);
                }
            }
            if now >= out.send_end {
                let wait = match profile {
                    Profile::Data { .. } => out.rto(),
                    Profile::Video { .. } => VIDEO_DRAIN,
                };
                out.state = OutState::Draining { until: now + wait };
            }
        }
        if let OutState::Draining { until } = out.state {
            if now >= until || (matches!(profile, Profile::Data { .. }) && out.in_flight.is_empty())
            {
                out.summary = Some(out.summary_at(now));
                out.state = OutState::Finishing { next_fin: now };
            }
        }
        let mut fin = None;
        if let OutState::Finishing { next_fin } = out.state {
            if now >= next_fin {
                fin = out.summary;
                out.state = OutState::Finishing {
                    next_fin: now + FIN_INTERVAL,
                };
            }
        }
        let reported = out.state == OutState::Reported;
        for (frame_id, frame_ts_us) in frames {
            self.push_frame(frame_id, frame_ts_us, now_us);
        }
        if let Some(s) = fin {
            self.push(Message::Fin(s));
        }
        if reported && self.inbound_summary.is_some() {
            let last_fin = self.last_fin_rx.unwrap_or(now);
            self.end(now, ChannelStatus::Completed, Some(LINGER));
            self.phase = Phase::Lingering {
                until: (last_fin + LINGER).max(now),
            };
            self.advance(now);
        }
    }

    /// Splits one frame into packets of at most [`MAX_DATAGRAM`] bytes.
    fn push_frame(&mut self, frame_id: u32, frame_ts_us: u64, now_us: u64) {
        let Profile::Video {
            bitrate_bps, fps, ..
        } = self.config.profile
        else {
            return;
        };
        let frame_bytes = (bitrate_bps / 8 / fps.max(1) as u64).max(1) as usize;
        let chunk = MAX_DATAGRAM - VIDEO_HEADER_LEN;
        let count = frame_bytes.div_ceil(chunk).min(u16::MAX as usize) as u16;
        for index in 0..count {
            let payload_len = chunk.min(frame_bytes - index as usize * chunk);
            let out = self.out.as_mut().expect("sending");
            let seq = out.next_video_seq;
            out.next_video_seq = seq.wrapping_add(1);
            out.sent_packets += 1;
            out.sent_payload_bytes += payload_len as u64;
            self.push(Message::Video(VideoPacket {
                seq,
                frame_id,
                index,
                count,
                frame_ts_us,
                send_ts_us: now_us,
                payload_len,
            }));
        }
    }

    /// The next datagram to send now, if any. Call until `None` after every
    /// `handle_*`.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Vec<u8>> {
        self.last_now = now;
        self.advance(now);
        if let Some(d) = self.queue.pop_front() {
            return Some(d);
        }
        let now_us = self.us(now);
        let Profile::Data {
            window,
            message_bytes,
        } = self.config.profile
        else {
            return None;
        };
        if self.phase != Phase::Running {
            return None;
        }
        let out = self.out.as_mut()?;
        if out.state != OutState::Sending
            || now >= out.send_end
            || out.in_flight.len() >= window as usize
        {
            return None;
        }
        let seq = out.next_seq;
        out.next_seq += 1;
        out.in_flight.insert(seq, now_us);
        let payload_len = message_bytes.clamp(DATA_HEADER_LEN, MAX_DATAGRAM) - DATA_HEADER_LEN;
        out.sent_packets += 1;
        out.sent_payload_bytes += payload_len as u64;
        self.push(Message::Data {
            seq,
            send_ts_us: now_us,
            payload_len,
        });
        self.queue.pop_front()
    }

    /// When to call [`Self::handle_timeout`] next; `None` when done.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.queue.is_empty() {
            return Some(self.last_now);
        }
        match self.phase {
            Phase::Done => None,
            Phase::Lingering { until } => Some(until),
            Phase::Hello => Some(
                self.next_hello
                    .min(self.created + self.config.hello_timeout),
            ),
            Phase::Running => {
                let last_rx = self.last_rx.unwrap_or(self.created);
                let out = self.out.as_ref()?;
                let mut t = (last_rx + self.config.peer_timeout)
                    .min(out.send_end + MAX_RTO + self.config.peer_timeout);
                if let Some((_, &sent)) = out.in_flight.first_key_value() {
                    t = t.min(self.created + Duration::from_micros(sent) + out.rto());
                }
                match out.state {
                    OutState::Sending => {
                        t = t.min(out.send_end);
                        if matches!(self.config.profile, Profile::Video { .. })
                            && out.next_frame_at < out.send_end
                        {
                            t = t.min(out.next_frame_at);
                        }
                    }
                    OutState::Draining { until } => t = t.min(until),
                    OutState::Finishing { next_fin } => t = t.min(next_fin),
                    OutState::Reported => {}
                }
                Some(t)
            }
        }
    }

    /// The report so far (final once [`Self::is_done`]).
    pub fn report(&self) -> ChannelReport {
        let end = self.ended.unwrap_or(self.last_now);
        let (profile, settings) = self.settings();
        let video = profile == ChannelProfile::Video;
        let status = self
            .status
            .clone()
            .unwrap_or_else(|| ChannelStatus::Failed {
                reason: "the measurement was stopped before it ended".to_string(),
            });
        let (outbound, inbound) = match &self.out {
            None => (None, None),
            Some(out) => {
                let ours = out.summary_at(end);
                let received = self
                    .inbound_summary
                    .unwrap_or_else(|| self.inbound.summary(self.playout()));
                (
                    Some(direction(Some(ours), out.peer_report, video)),
                    Some(direction(self.peer_fin, Some(received), video)),
                )
            }
        };
        ChannelReport {
            schema: CHANNEL_SCHEMA.to_string(),
            protocol_version: self.version,
            peer_protocol_version: self.peer_version,
            profile,
            settings,
            status,
            outbound,
            inbound,
            elapsed_s: end.saturating_duration_since(self.created).as_secs_f64(),
        }
    }

    fn settings(&self) -> (ChannelProfile, ChannelSettings) {
        let mut s = ChannelSettings {
            duration_s: self.duration.as_secs_f64(),
            window: None,
            message_bytes: None,
            bitrate_bps: None,
            fps: None,
            playout_ms: None,
        };
        match self.config.profile {
            Profile::Data {
                window,
                message_bytes,
            } => {
                s.window = Some(window);
                s.message_bytes = Some(message_bytes.clamp(DATA_HEADER_LEN, MAX_DATAGRAM) as u32);
                (ChannelProfile::Data, s)
            }
            Profile::Video {
                bitrate_bps,
                fps,
                playout,
            } => {
                s.bitrate_bps = Some(bitrate_bps);
                s.fps = Some(fps);
                s.playout_ms = Some(playout.as_secs_f64() * 1e3);
                (ChannelProfile::Video, s)
            }
        }
    }
}

/// Joins the sender's and the receiver's halves of one direction.
fn direction(
    sender: Option<SenderSummary>,
    receiver: Option<ReceiverSummary>,
    video: bool,
) -> DirectionReport {
    let mut d = DirectionReport::default();
    if let Some(s) = sender {
        d.sent_packets = Some(s.sent_packets);
        d.duration_s = Some(s.duration_us as f64 / 1e6);
        if video {
            d.frames_sent = Some(s.frames_sent);
        } else {
            d.rtt_ms = s.rtt_us.map(|[p50, p90, p99, max]| RttMs {
                p50: p50 as f64 / 1e3,
                p90: p90 as f64 / 1e3,
                p99: p99 as f64 / 1e3,
                max: max as f64 / 1e3,
            });
        }
    }
    if let Some(r) = receiver {
        d.received_packets = Some(r.received_packets);
        if video {
            d.jitter_ms = r.jitter_us.map(|j| j as f64 / 1e3);
        }
    }
    if let (Some(s), Some(r)) = (sender, receiver) {
        let lost = s.sent_packets.saturating_sub(r.received_packets);
        d.lost_packets = Some(lost);
        if s.sent_packets > 0 {
            d.loss_pct = Some(lost as f64 * 100.0 / s.sent_packets as f64);
        }
        // Over the sending time, or the arrivals' spread when a queue on
        // the path stretched it.
        let over_us = s.duration_us.max(r.span_us);
        if over_us > 0 {
            d.goodput_bps = Some(r.received_payload_bytes as f64 * 8.0 / (over_us as f64 / 1e6));
        }
        if video && s.frames_sent > 0 {
            d.frames_complete_in_time_pct = r
                .frames_complete_in_time
                .map(|c| c.min(s.frames_sent) as f64 * 100.0 / s.frames_sent as f64);
        }
    }
    d
}
