//! Binding-lifetime search (RFC 5780 section 4.6), sans-IO.
//!
//! Socket X makes a mapping with one Binding request and then stays
//! silent. After waiting T, socket Y sends the same server a request with
//! RESPONSE-PORT = X's mapped port: the answer goes to (Y's public IP, that
//! port), which is X's mapping if it still exists. Each round tests
//! several waits at once on fresh X/Y socket pairs (a socket is used for
//! one wait only, so no probe refreshes another's binding), then narrows
//! the interval between the longest wait that survived and the shortest
//! that expired. Round 1 includes a wait of 0 as the control: if even that
//! answer does not arrive, the server (or the NAT's address pooling) makes
//! the test impossible and we say so instead of reporting a lifetime of 0.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::exchange::{Exchanges, Request, SockId, Transmit};

/// Round 1 tests waits of 0, 1/8, ..., 8/8 x MAX.
const FIRST_ROUND_STEPS: u32 = 8;
/// Probes per later round, evenly inside the remaining interval.
const PROBES_PER_ROUND: u32 = 7;

/// Which exchange: (round, probe index, is the RESPONSE-PORT check).
type Key = (u32, usize, bool);

#[derive(Debug)]
struct Probe {
    wait: Duration,
    x: SockId,
    y: SockId,
    mapped_port: Option<u16>,
    check_at: Option<Instant>,
    alive: Option<bool>,
}

/// The search's result.
#[derive(Debug, Clone, PartialEq)]
pub enum LifetimeResult {
    /// Bindings survived `survived` idle and were gone after `expired`
    /// (None: they outlived the maximum searched).
    Measured {
        survived: Duration,
        expired: Option<Duration>,
    },
    /// The test cannot run here; the reason.
    Impossible(String),
}

#[derive(Debug)]
pub struct LifetimeSearch {
    server: SocketAddr,
    max: Duration,
    resolution: Duration,
    rto: Duration,
    timeout: Duration,
    next_sock: SockId,
    ex: Exchanges<Key>,
    round: u32,
    probes: Vec<Probe>,
    survived: Duration,
    expired: Option<Duration>,
    result: Option<LifetimeResult>,
}

impl LifetimeSearch {
    /// Starts round 1 at `now`. Socket ids from `first_sock` upwards are
    /// this search's (the shell binds each on first use).
    pub fn new(
        now: Instant,
        server: SocketAddr,
        max: Duration,
        rto: Duration,
        timeout: Duration,
        first_sock: SockId,
    ) -> Self {
        let mut s = LifetimeSearch {
            server,
            max,
            resolution: (max / 64).max(Duration::from_secs(1)),
            rto,
            timeout,
            next_sock: first_sock,
            ex: Exchanges::default(),
            round: 0,
            probes: Vec::new(),
            survived: Duration::ZERO,
            expired: None,
            result: None,
        };
        let waits = (0..=FIRST_ROUND_STEPS)
            .map(|i| max * i / FIRST_ROUND_STEPS)
            .collect();
        s.start_round(now, waits);
        s
    }

    fn start_round(&mut self, now: Instant, waits: Vec<Duration>) {
        self.round += 1;
        self.probes.clear();
        for (i, wait) in waits.into_iter().enumerate() {
            let (x, y) = (self.next_sock, self.next_sock + 1);
            self.next_sock += 2;
            self.ex.start(
                (self.round, i, false),
                now,
                x,
                None,
                self.server,
                Request::PLAIN,
                self.rto,
                self.timeout,
            );
            self.probes.push(Probe {
                wait,
                x,
                y,
                mapped_port: None,
                check_at: None,
                alive: None,
            });
        }
    }

    pub fn result(&self) -> Option<&LifetimeResult> {
        self.result.as_ref()
    }

    pub fn is_done(&self) -> bool {
        self.result.is_some()
    }

    /// One line for the progress display.
    pub fn progress(&self) -> String {
        if self.result.is_some() {
            return "lifetime done".to_string();
        }
        let checked = self.probes.iter().filter(|p| p.alive.is_some()).count();
        let longest = self.probes.iter().map(|p| p.wait).max().unwrap_or_default();
        format!(
            "lifetime (max {:.0}s) round {}: {checked}/{} waits checked, up to {:.1}s; survived {:.1}s so far",
            self.max.as_secs_f64(),
            self.round,
            self.probes.len(),
            longest.as_secs_f64(),
            self.survived.as_secs_f64()
        )
    }

    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        if self.result.is_some() {
            return None;
        }
        self.advance(now);
        self.ex.poll_transmit(now)
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.result.is_some() {
            return None;
        }
        let checks = self
            .probes
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.ex.started((self.round, *i, true)))
            .filter_map(|(_, p)| p.check_at);
        self.ex.poll_timeout().into_iter().chain(checks).min()
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        self.ex.handle_timeout(now);
        self.advance(now);
    }

    pub fn handle_datagram(
        &mut self,
        now: Instant,
        sock: SockId,
        from: SocketAddr,
        b: &[u8],
    ) -> bool {
        let mine = self.ex.handle_datagram(now, sock, from, b);
        if mine {
            self.advance(now);
        }
        mine
    }

    fn fail(&mut self, why: String) {
        self.result = Some(LifetimeResult::Impossible(why));
    }

    fn advance(&mut self, now: Instant) {
        if self.result.is_some() {
            return;
        }
        let round = self.round;
        for i in 0..self.probes.len() {
            let p = &self.probes[i];
            if p.alive.is_some() {
                continue;
            }
            if p.check_at.is_none() {
                match self.ex.result((round, i, false)) {
                    None => continue,
                    Some(r) => match r.success().and_then(|a| a.xor_mapped) {
                        Some(m) => {
                            let p = &mut self.probes[i];
                            p.mapped_port = Some(m.port());
                            p.check_at = Some(now + p.wait);
                        }
                        None => {
                            return self.fail(format!(
                                "no usable answer from {} to a lifetime probe's first request",
                                self.server
                            ))
                        }
                    },
                }
            }
            let p = &self.probes[i];
            let (x, y, port) = (p.x, p.y, p.mapped_port.expect("set with check_at"));
            if p.check_at.is_some_and(|t| t <= now) && !self.ex.started((round, i, true)) {
                let req = Request {
                    change: 0,
                    response_port: Some(port),
                };
                self.ex.start(
                    (round, i, true),
                    now,
                    y,
                    Some(x),
                    self.server,
                    req,
                    self.rto,
                    self.timeout,
                );
            }
            match self.ex.result((round, i, true)) {
                None => {}
                Some(r) => match r.answer() {
                    None => self.probes[i].alive = Some(false),
                    Some(a) if a.on == x && a.success => self.probes[i].alive = Some(true),
                    Some(a) if !a.success => {
                        return self.fail(format!(
                            "server lacks RFC 5780 (error {} to RESPONSE-PORT)",
                            a.error_code.unwrap_or(0)
                        ))
                    }
                    Some(_) => {
                        return self.fail(
                            "server lacks RFC 5780 (it ignored RESPONSE-PORT and answered the sending socket)"
                                .to_string(),
                        )
                    }
                },
            }
        }
        // Waits are in increasing order: once every shorter wait survived
        // and one expired, the longer ones cannot tell us more, so the next
        // round starts now instead of after the longest wait.
        let first_open = self.probes.iter().position(|p| p.alive != Some(true));
        if first_open.is_some_and(|i| self.probes[i].alive.is_none()) {
            return;
        }
        if round == 1 && first_open == Some(0) {
            return self.fail(
                "an answer sent with RESPONSE-PORT did not arrive even without waiting: the server \
                 ignores RESPONSE-PORT, or the NAT gives each socket a different public IP"
                    .to_string(),
            );
        }
        match first_open {
            Some(i) => {
                self.expired = Some(self.probes[i].wait);
                if i > 0 {
                    self.survived = self.survived.max(self.probes[i - 1].wait);
                }
            }
            None => {
                let last = self.probes.last().map(|p| p.wait).unwrap_or_default();
                self.survived = self.survived.max(last);
            }
        }
        match self.expired {
            Some(hi) if hi.saturating_sub(self.survived) > self.resolution => {
                let lo = self.survived;
                let waits = (1..=PROBES_PER_ROUND)
                    .map(|j| lo + (hi - lo) * j / (PROBES_PER_ROUND + 1))
                    .collect();
                self.start_round(now, waits);
                // The new round's first requests go out on the next poll.
            }
            _ => {
                self.result = Some(LifetimeResult::Measured {
                    survived: self.survived,
                    expired: self.expired,
                })
            }
        }
    }
}
