//! One STUN client transaction over UDP, sans-IO: RFC 8489 section 6.2.1
//! retransmission (RTO doubling, Rc sends, a final wait of Rm x RTO), bounded
//! by the caller's deadline. The caller moves packets and time.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::stun::Message;

/// RFC 8489 defaults.
pub const DEFAULT_RTO: Duration = Duration::from_millis(500);
/// Rc: transmissions in all.
pub const MAX_SENDS: u32 = 7;
/// Rm: the last wait is this many RTOs.
pub const LAST_WAIT_RTO: u32 = 16;

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A message with our transaction ID arrived.
    Answered {
        /// Where it came from (RFC 5780 tests check this).
        from: SocketAddr,
        /// From the last transmission to the answer.
        rtt: Duration,
        /// Retransmissions before the answer.
        retransmits: u32,
        bytes: Vec<u8>,
    },
    /// Nothing came before the deadline.
    TimedOut { sends: u32, waited: Duration },
}

/// A request in flight.
#[derive(Debug, Clone)]
pub struct Transaction {
    transaction_id: [u8; 12],
    request: Vec<u8>,
    target: SocketAddr,
    started: Instant,
    deadline: Instant,
    rto: Duration,
    initial_rto: Duration,
    sends: u32,
    last_send: Option<Instant>,
    next_send: Instant,
    /// When retransmissions are over, the time to give up.
    give_up: Option<Instant>,
    outcome: Option<Outcome>,
}

impl Transaction {
    /// `request` must be a STUN message whose transaction ID is
    /// `transaction_id`. The first send is due at `now`.
    pub fn new(
        request: Vec<u8>,
        transaction_id: [u8; 12],
        target: SocketAddr,
        now: Instant,
        timeout: Duration,
        rto: Duration,
    ) -> Self {
        Transaction {
            transaction_id,
            request,
            target,
            started: now,
            deadline: now + timeout,
            rto: rto.max(Duration::from_millis(1)),
            initial_rto: rto.max(Duration::from_millis(1)),
            sends: 0,
            last_send: None,
            next_send: now,
            give_up: None,
            outcome: None,
        }
    }

    pub fn transaction_id(&self) -> &[u8; 12] {
        &self.transaction_id
    }
    pub fn target(&self) -> SocketAddr {
        self.target
    }
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }
    pub fn is_done(&self) -> bool {
        self.outcome.is_some()
    }

    /// The datagram to send now, if one is due.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<(SocketAddr, &[u8])> {
        self.handle_timeout(now);
        if self.outcome.is_some() || self.give_up.is_some() || now < self.next_send {
            return None;
        }
        self.sends += 1;
        self.last_send = Some(now);
        if self.sends >= MAX_SENDS {
            // RFC 8489: the last wait is Rm times the initial RTO.
            self.give_up = Some((now + self.initial_rto * LAST_WAIT_RTO).min(self.deadline));
        } else {
            self.next_send = now + self.rto;
            self.rto *= 2;
        }
        Some((self.target, &self.request))
    }

    /// When to call again (next send or giving up), if still pending.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.outcome.is_some() {
            return None;
        }
        Some(match self.give_up {
            Some(g) => g,
            None => self.next_send.min(self.deadline),
        })
    }

    /// Ends the transaction if its time is up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.outcome.is_some() {
            return;
        }
        let over = now >= self.deadline || self.give_up.is_some_and(|g| now >= g);
        if over {
            self.outcome = Some(Outcome::TimedOut {
                sends: self.sends,
                waited: now.duration_since(self.started),
            });
        }
    }

    /// Offers a received datagram; true if it answered this transaction.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> bool {
        if self.outcome.is_some() {
            return false;
        }
        let Ok(m) = Message::parse(bytes, false) else {
            return false;
        };
        if m.transaction_id() != &self.transaction_id {
            return false;
        }
        let sent = self.last_send.unwrap_or(self.started);
        self.outcome = Some(Outcome::Answered {
            from,
            rtt: now.duration_since(sent),
            retransmits: self.sends.saturating_sub(1),
            bytes: bytes.to_vec(),
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::stun::{attr, binding_request, MessageWriter, BINDING_SUCCESS};

    fn tx(now: Instant, timeout_ms: u64) -> Transaction {
        let tid = [3u8; 12];
        let mut b = [0u8; 64];
        let n = binding_request(&mut b, &tid, 0, None, false).unwrap();
        Transaction::new(
            b[..n].to_vec(),
            tid,
            "127.0.0.1:3478".parse().unwrap(),
            now,
            Duration::from_millis(timeout_ms),
            Duration::from_millis(100),
        )
    }

    /// Drives `t` with nobody answering until it gives up: the send
    /// times, milliseconds after `t0`.
    fn run_silent(t: &mut Transaction, t0: Instant) -> Vec<u128> {
        let mut sends = vec![];
        let mut now = t0;
        while !t.is_done() {
            if t.poll_transmit(now).is_some() {
                sends.push(now.duration_since(t0).as_millis());
            }
            now = t.poll_timeout().unwrap_or(now);
            t.handle_timeout(now);
        }
        sends
    }

    #[test]
    fn retransmits_with_doubling_rto_until_deadline() {
        let t0 = Instant::now();
        let mut t = tx(t0, 1_000);
        let sends = run_silent(&mut t, t0);
        assert_eq!(sends, vec![0, 100, 300, 700]);
        match t.outcome().unwrap() {
            Outcome::TimedOut { sends, waited } => {
                assert_eq!(*sends, 4);
                assert_eq!(*waited, Duration::from_millis(1_000));
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn full_schedule_is_rfc_8489() {
        // Rc = 7 sends at 0, 1, 3, 7, 15, 31, 63 RTO; gives up 16 RTO later.
        let t0 = Instant::now();
        let mut t = tx(t0, 60_000);
        let sends = run_silent(&mut t, t0);
        assert_eq!(sends, vec![0, 100, 300, 700, 1500, 3100, 6300]);
        assert!(
            matches!(t.outcome(), Some(Outcome::TimedOut { waited, .. }) if *waited == Duration::from_millis(7900))
        );
    }

    #[test]
    fn answer_matches_transaction_id_only() {
        let t0 = Instant::now();
        let mut t = tx(t0, 1_000);
        t.poll_transmit(t0).unwrap();
        let from: SocketAddr = "127.0.0.1:3478".parse().unwrap();
        let mut b = [0u8; 64];
        let mut w =
            MessageWriter::with_transaction_id(&mut b, BINDING_SUCCESS, &[4u8; 12]).unwrap();
        w.xor_address(attr::XOR_MAPPED_ADDRESS, from).unwrap();
        let n = w.finish();
        assert!(!t.handle_datagram(t0, from, &b[..n]));
        let mut w =
            MessageWriter::with_transaction_id(&mut b, BINDING_SUCCESS, &[3u8; 12]).unwrap();
        w.xor_address(attr::XOR_MAPPED_ADDRESS, from).unwrap();
        let n = w.finish();
        let later = t0 + Duration::from_millis(7);
        assert!(t.handle_datagram(later, from, &b[..n]));
        assert!(
            matches!(t.outcome(), Some(Outcome::Answered { rtt, retransmits: 0, .. }) if *rtt == Duration::from_millis(7))
        );
        assert!(t.poll_transmit(later + Duration::from_secs(1)).is_none());
    }
}
