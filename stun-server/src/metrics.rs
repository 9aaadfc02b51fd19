//! Counters per worker, rendered in the Prometheus text format.
//!
//! Workers count into a plain local struct and publish it once per batch,
//! so the hot path touches no shared cache line per packet.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::responder::{DropReason, ReplyClass};
use crate::signaling::rooms::SignalError;

/// Number of drop reasons (see [`DropReason::all`]).
pub const DROP_REASONS: usize = 11;

fn drop_index(r: DropReason) -> usize {
    DropReason::all()
        .position(|x| x == r)
        .expect("every reason is listed")
}

fn reply_index(c: ReplyClass) -> usize {
    match c {
        ReplyClass::Success => 0,
        ReplyClass::BadRequest => 1,
        ReplyClass::UnknownAttribute => 2,
    }
}

/// What one worker counted since its last publish.
#[derive(Debug, Default, Clone)]
pub struct LocalCounts {
    pub datagrams: u64,
    pub replies: [u64; 3],
    pub drops: [u64; DROP_REASONS],
    pub send_errors: u64,
    pub batches: u64,
}

impl LocalCounts {
    pub fn reply(&mut self, c: ReplyClass) {
        self.replies[reply_index(c)] += 1;
    }
    pub fn drop(&mut self, r: DropReason) {
        self.drops[drop_index(r)] += 1;
    }
}

/// The published counters of one worker.
#[derive(Debug)]
pub struct WorkerMetrics {
    pub worker: usize,
    pub listen: SocketAddr,
    datagrams: AtomicU64,
    replies: [AtomicU64; 3],
    drops: [AtomicU64; DROP_REASONS],
    send_errors: AtomicU64,
    batches: AtomicU64,
}

impl WorkerMetrics {
    pub fn new(worker: usize, listen: SocketAddr) -> Self {
        WorkerMetrics {
            worker,
            listen,
            datagrams: AtomicU64::new(0),
            replies: Default::default(),
            drops: Default::default(),
            send_errors: AtomicU64::new(0),
            batches: AtomicU64::new(0),
        }
    }

    /// Adds `c` to the published counters and clears it.
    pub fn publish(&self, c: &mut LocalCounts) {
        let add = |a: &AtomicU64, v: u64| {
            if v != 0 {
                a.fetch_add(v, Ordering::Relaxed);
            }
        };
        add(&self.datagrams, c.datagrams);
        for (a, v) in self.replies.iter().zip(c.replies) {
            add(a, v);
        }
        for (a, v) in self.drops.iter().zip(c.drops) {
            add(a, v);
        }
        add(&self.send_errors, c.send_errors);
        add(&self.batches, c.batches);
        *c = LocalCounts::default();
    }

    pub fn datagrams(&self) -> u64 {
        self.datagrams.load(Ordering::Relaxed)
    }
    pub fn replies(&self, c: ReplyClass) -> u64 {
        self.replies[reply_index(c)].load(Ordering::Relaxed)
    }
    pub fn drops(&self, r: DropReason) -> u64 {
        self.drops[drop_index(r)].load(Ordering::Relaxed)
    }
}

/// The signaling rendezvous's counters (see [`crate::signaling`]).
#[derive(Debug, Default)]
pub struct SignalingMetrics {
    /// Rooms that exist now (a gauge the shell sets after each change).
    pub rooms: AtomicU64,
    /// Messages accepted for relay.
    pub messages: AtomicU64,
    /// Refused requests, by [`SignalError::LABELS`] index.
    rejected: [AtomicU64; SignalError::LABELS.len()],
}

impl SignalingMetrics {
    pub fn reject(&self, e: &SignalError) {
        let i = SignalError::LABELS
            .iter()
            .position(|l| *l == e.label())
            .expect("every label is listed");
        self.rejected[i].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, label: &str) -> u64 {
        SignalError::LABELS
            .iter()
            .position(|l| *l == label)
            .map_or(0, |i| self.rejected[i].load(Ordering::Relaxed))
    }

    fn render(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "# HELP stun_signaling_rooms Signaling rooms that exist now.\n# TYPE stun_signaling_rooms gauge\nstun_signaling_rooms {}",
            self.rooms.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP stun_signaling_messages_total Signaling messages accepted for relay.\n# TYPE stun_signaling_messages_total counter\nstun_signaling_messages_total {}",
            self.messages.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP stun_signaling_rejected_total Signaling requests refused, by reason.\n# TYPE stun_signaling_rejected_total counter"
        );
        for (label, n) in SignalError::LABELS.iter().zip(&self.rejected) {
            let _ = writeln!(
                s,
                "stun_signaling_rejected_total{{reason=\"{label}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
    }
}

/// All workers' counters, and the signaling endpoint's.
#[derive(Debug, Default, Clone)]
pub struct Metrics {
    pub workers: Vec<Arc<WorkerMetrics>>,
    pub signaling: Arc<SignalingMetrics>,
}

impl Metrics {
    pub fn total_replies(&self, c: ReplyClass) -> u64 {
        self.workers.iter().map(|w| w.replies(c)).sum()
    }
    pub fn total_drops(&self, r: DropReason) -> u64 {
        self.workers.iter().map(|w| w.drops(r)).sum()
    }
    pub fn total_datagrams(&self) -> u64 {
        self.workers.iter().map(|w| w.datagrams()).sum()
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self, uptime_s: f64) -> String {
        let mut s = String::with_capacity(4096);
        let totals =
            |f: &dyn Fn(&WorkerMetrics) -> u64| -> u64 { self.workers.iter().map(|w| f(w)).sum() };
        let _ = writeln!(
            s,
            "# HELP stun_requests_total Datagrams received on the STUN ports.\n# TYPE stun_requests_total counter\nstun_requests_total {}",
            totals(&|w| w.datagrams())
        );
        let _ = writeln!(
            s,
            "# HELP stun_responses_total Responses sent, by class (success, 400, 420).\n# TYPE stun_responses_total counter"
        );
        for c in ReplyClass::ALL {
            let _ = writeln!(
                s,
                "stun_responses_total{{class=\"{}\"}} {}",
                c.label(),
                totals(&|w| w.replies(c))
            );
        }
        let _ = writeln!(
            s,
            "# HELP stun_dropped_total Datagrams dropped without an answer, by reason.\n# TYPE stun_dropped_total counter"
        );
        for r in DropReason::all() {
            let _ = writeln!(
                s,
                "stun_dropped_total{{reason=\"{}\"}} {}",
                r.label(),
                totals(&|w| w.drops(r))
            );
        }
        let _ = writeln!(
            s,
            "# HELP stun_rate_limited_total Requests dropped by the per-source rate limit.\n# TYPE stun_rate_limited_total counter\nstun_rate_limited_total {}",
            totals(&|w| w.drops(DropReason::RateLimited))
        );
        let _ = writeln!(
            s,
            "# HELP stun_send_errors_total Responses the kernel refused to send.\n# TYPE stun_send_errors_total counter\nstun_send_errors_total {}",
            totals(&|w| w.send_errors.load(Ordering::Relaxed))
        );
        let _ = writeln!(
            s,
            "# HELP stun_worker_requests_total Datagrams received, per worker socket.\n# TYPE stun_worker_requests_total counter"
        );
        for w in &self.workers {
            let _ = writeln!(
                s,
                "stun_worker_requests_total{{worker=\"{}\",listen=\"{}\"}} {}",
                w.worker,
                w.listen,
                w.datagrams()
            );
        }
        let _ = writeln!(
            s,
            "# HELP stun_worker_responses_total Responses sent, per worker socket.\n# TYPE stun_worker_responses_total counter"
        );
        for w in &self.workers {
            let sent: u64 = ReplyClass::ALL.iter().map(|c| w.replies(*c)).sum();
            let _ = writeln!(
                s,
                "stun_worker_responses_total{{worker=\"{}\",listen=\"{}\"}} {}",
                w.worker, w.listen, sent
            );
        }
        let _ = writeln!(
            s,
            "# HELP stun_worker_batches_total Receive batches (recvmmsg calls that returned data), per worker socket.\n# TYPE stun_worker_batches_total counter"
        );
        for w in &self.workers {
            let _ = writeln!(
                s,
                "stun_worker_batches_total{{worker=\"{}\",listen=\"{}\"}} {}",
                w.worker,
                w.listen,
                w.batches.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            s,
            "# HELP stun_uptime_seconds Seconds since the server started.\n# TYPE stun_uptime_seconds gauge\nstun_uptime_seconds {uptime_s:.3}"
        );
        self.signaling.render(&mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reason_count_matches() {
        assert_eq!(DropReason::all().count(), DROP_REASONS);
    }

    #[test]
    fn render_has_every_family() {
        let w = Arc::new(WorkerMetrics::new(0, "127.0.0.1:3478".parse().unwrap()));
        let mut c = LocalCounts {
            datagrams: 3,
            ..Default::default()
        };
        c.reply(ReplyClass::Success);
        c.drop(DropReason::RateLimited);
        w.publish(&mut c);
        let m = Metrics {
            workers: vec![w],
            ..Default::default()
        };
        m.signaling.reject(&SignalError::TooLarge);
        m.signaling.messages.fetch_add(2, Ordering::Relaxed);
        let text = m.render(1.0);
        assert!(text.contains("stun_requests_total 3"));
        assert!(text.contains("stun_responses_total{class=\"success\"} 1"));
        assert!(text.contains("stun_dropped_total{reason=\"rate_limited\"} 1"));
        assert!(text.contains("stun_rate_limited_total 1"));
        assert!(
            text.contains("stun_worker_requests_total{worker=\"0\",listen=\"127.0.0.1:3478\"} 3")
        );
        assert!(text.contains("# TYPE stun_signaling_rooms gauge\nstun_signaling_rooms 0"));
        assert!(text.contains("stun_signaling_messages_total 2"));
        assert!(text.contains("stun_signaling_rejected_total{reason=\"too_large\"} 1"));
        assert!(text.contains("stun_signaling_rejected_total{reason=\"bad_json\"} 0"));
        assert_eq!(m.signaling.rejected("too_large"), 1);
    }
}
