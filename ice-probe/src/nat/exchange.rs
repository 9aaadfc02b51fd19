//! STUN transactions tied to local sockets. RFC 5780 tests send from one
//! socket and may expect the answer on another (hairpinning: a request
//! arriving on the first socket; RESPONSE-PORT: an answer sent to another
//! port), so each exchange names where it sends and where it listens.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::stun::{attr, binding_request, change, Class, Message};

use crate::stun_client::{new_transaction_id, Outcome, Transaction};

/// A local socket, named by the engine; the shell binds one per id.
pub type SockId = usize;

/// A datagram the engine wants sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub sock: SockId,
    pub to: SocketAddr,
    pub bytes: Vec<u8>,
}

/// What a STUN answer said, decoded once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// UDP source of the answer.
    pub from: SocketAddr,
    /// The socket it arrived on.
    pub on: SockId,
    pub rtt: Duration,
    /// Binding success (else an error response, or a request we sent
    /// ourselves arriving by hairpin).
    pub success: bool,
    pub class: Class,
    pub error_code: Option<u16>,
    pub xor_mapped: Option<SocketAddr>,
    pub mapped: Option<SocketAddr>,
    pub other: Option<SocketAddr>,
    pub origin: Option<SocketAddr>,
}

/// The result of one exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Answered(Answer),
    TimedOut,
}

impl Reply {
    pub fn answer(&self) -> Option<&Answer> {
        match self {
            Reply::Answered(a) => Some(a),
            Reply::TimedOut => None,
        }
    }
    /// The answer if it is a Binding success.
    pub fn success(&self) -> Option<&Answer> {
        self.answer().filter(|a| a.success)
    }
}

/// One request and where its answer may arrive.
#[derive(Debug)]
struct Exchange<K> {
    key: K,
    sock: SockId,
    also_on: Option<SockId>,
    tx: Transaction,
    answered_on: Option<SockId>,
}

/// Every exchange of one engine, looked up by a caller-chosen key.
#[derive(Debug)]
pub struct Exchanges<K> {
    list: Vec<Exchange<K>>,
}

impl<K: PartialEq + Copy + std::fmt::Debug> Default for Exchanges<K> {
    fn default() -> Self {
        Exchanges { list: Vec::new() }
    }
}

/// A Binding request with optional CHANGE-REQUEST flags and RESPONSE-PORT.
pub struct Request {
    pub change: u32,
    pub response_port: Option<u16>,
}

impl Request {
    pub const PLAIN: Request = Request {
        change: 0,
        response_port: None,
    };
    /// CHANGE-REQUEST: answer from the other IP and the other port.
    pub const CHANGE_IP_AND_PORT: Request = Request {
        change: change::IP | change::PORT,
        response_port: None,
    };
    /// CHANGE-REQUEST: answer from the other port.
    pub const CHANGE_PORT: Request = Request {
        change: change::PORT,
        response_port: None,
    };
}

impl<K: PartialEq + Copy + std::fmt::Debug> Exchanges<K> {
    /// Starts `key`: a Binding request from `sock` to `to`, answered on
    /// `sock` or `also_on`. Timing: first RTO `rto`, doubling, bounded by
    /// `timeout`.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        &mut self,
        key: K,
        now: Instant,
        sock: SockId,
        also_on: Option<SockId>,
        to: SocketAddr,
        req: Request,
        rto: Duration,
        timeout: Duration,
    ) {
        debug_assert!(!self.started(key), "{key:?} started twice");
        let tid = new_transaction_id();
        let mut b = [0u8; 64];
        // No FINGERPRINT: the answer would carry one too, and an ALG that
        // rewrites MAPPED-ADDRESS breaks it; we would drop the answer and
        // report UDP as blocked instead of reporting the ALG.
        let n = binding_request(&mut b, &tid, req.change, req.response_port, false)
            .expect("a Binding request fits in 64 bytes");
        let tx = Transaction::new(b[..n].to_vec(), tid, to, now, timeout, rto);
        self.list.push(Exchange {
            key,
            sock,
            also_on,
            tx,
            answered_on: None,
        });
    }

    pub fn started(&self, key: K) -> bool {
        self.list.iter().any(|e| e.key == key)
    }

    /// None while pending or not started.
    pub fn result(&self, key: K) -> Option<Reply> {
        let e = self.list.iter().find(|e| e.key == key)?;
        match e.tx.outcome()? {
            Outcome::TimedOut { .. } => Some(Reply::TimedOut),
            Outcome::Answered {
                from, rtt, bytes, ..
            } => {
                let on = e.answered_on.unwrap_or(e.sock);
                Some(match Message::parse(bytes, false) {
                    Ok(m) => Reply::Answered(decode(&m, *from, on, *rtt)),
                    Err(_) => Reply::TimedOut,
                })
            }
        }
    }

    /// Started and finished (answered or timed out).
    pub fn done(&self, key: K) -> bool {
        self.list.iter().any(|e| e.key == key && e.tx.is_done())
    }

    pub fn all_done(&self) -> bool {
        self.list.iter().all(|e| e.tx.is_done())
    }

    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        for e in &mut self.list {
            if let Some((to, bytes)) = e.tx.poll_transmit(now) {
                return Some(Transmit {
                    sock: e.sock,
                    to,
                    bytes: bytes.to_vec(),
                });
            }
        }
        None
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.list.iter().filter_map(|e| e.tx.poll_timeout()).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        for e in &mut self.list {
            e.tx.handle_timeout(now);
        }
    }

    /// Offers a datagram that arrived on `sock`; true if it answered one.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        sock: SockId,
        from: SocketAddr,
        bytes: &[u8],
    ) -> bool {
        for e in &mut self.list {
            if (e.sock == sock || e.also_on == Some(sock)) && e.tx.handle_datagram(now, from, bytes)
            {
                e.answered_on = Some(sock);
                return true;
            }
        }
        false
    }
}

fn decode(m: &Message<'_>, from: SocketAddr, on: SockId, rtt: Duration) -> Answer {
    let class = m.class();
    Answer {
        from,
        on,
        rtt,
        success: class == Class::SuccessResponse,
        class,
        error_code: m.error_code().map(|(c, _)| c),
        xor_mapped: m.xor_mapped_address(),
        mapped: m.address(attr::MAPPED_ADDRESS),
        other: m.address(attr::OTHER_ADDRESS),
        origin: m.address(attr::RESPONSE_ORIGIN),
    }
}
