//! The sans-IO Binding responder: request bytes, source and local address
//! in; response bytes with where they go (or why nothing goes) out. No
//! sockets, no clocks, no allocation.

use std::net::{IpAddr, SocketAddr};

use common::stun::{
    attr, change, message_type, method, Class, FrameError, Message, MessageWriter, BINDING_SUCCESS,
};

/// Largest response we ever build (a 420 listing 16 unknown attributes plus
/// every optional attribute fits easily).
pub const MAX_RESPONSE: usize = 512;
/// Unknown attributes listed in one 420.
const MAX_UNKNOWN: usize = 16;

/// The addresses of an RFC 5780 server: two IPs times two ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc5780 {
    pub primary: SocketAddr,
    pub alternate: SocketAddr,
}

impl Rfc5780 {
    /// The four listening addresses: (primary IP, alternate IP) x
    /// (primary port, alternate port).
    pub fn addresses(&self) -> [SocketAddr; 4] {
        let (p, a) = (self.primary, self.alternate);
        [
            p,
            SocketAddr::new(p.ip(), a.port()),
            SocketAddr::new(a.ip(), p.port()),
            a,
        ]
    }

    fn other_ip(&self, ip: IpAddr) -> IpAddr {
        if ip == self.primary.ip() {
            self.alternate.ip()
        } else {
            self.primary.ip()
        }
    }

    fn other_port(&self, port: u16) -> u16 {
        if port == self.primary.port() {
            self.alternate.port()
        } else {
            self.primary.port()
        }
    }
}

/// What the responder is configured to do.
#[derive(Debug, Clone, Default)]
pub struct ResponderConfig {
    /// SOFTWARE attribute value for success responses, if any (opt-in: it
    /// only adds bytes).
    pub software: Option<String>,
    /// Accept RFC 3489 requests and add MAPPED-ADDRESS to every success.
    pub legacy: bool,
    /// RFC 5780 NAT behaviour discovery.
    pub rfc5780: Option<Rfc5780>,
}

/// Which kind of answer was produced (metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyClass {
    Success,
    BadRequest,
    UnknownAttribute,
}

impl ReplyClass {
    pub const ALL: [ReplyClass; 3] = [
        ReplyClass::Success,
        ReplyClass::BadRequest,
        ReplyClass::UnknownAttribute,
    ];
    pub const fn label(self) -> &'static str {
        match self {
            ReplyClass::Success => "success",
            ReplyClass::BadRequest => "400",
            ReplyClass::UnknownAttribute => "420",
        }
    }
}

/// Why a datagram got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not a well-framed STUN message.
    Frame(FrameError),
    /// A response or an indication: nothing to answer.
    NotRequest,
    /// Source port 0 (or a RESPONSE-PORT to port 0): unanswerable.
    BadSource,
    /// The per-source rate limit (decided by the shell, counted here).
    RateLimited,
    /// Bigger than the receive buffer.
    Oversized,
}

impl DropReason {
    pub const fn label(self) -> &'static str {
        match self {
            DropReason::Frame(f) => f.label(),
            DropReason::NotRequest => "not_request",
            DropReason::BadSource => "bad_source",
            DropReason::RateLimited => "rate_limited",
            DropReason::Oversized => "oversized",
        }
    }

    /// Every reason, for metrics.
    pub fn all() -> impl Iterator<Item = DropReason> {
        FrameError::ALL.into_iter().map(DropReason::Frame).chain([
            DropReason::NotRequest,
            DropReason::BadSource,
            DropReason::RateLimited,
            DropReason::Oversized,
        ])
    }
}

/// The decision for one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Send `out[..len]` to `to`, leaving from local address `from`.
    Reply {
        len: usize,
        class: ReplyClass,
        to: SocketAddr,
        from: SocketAddr,
    },
    Drop(DropReason),
}

/// Answers Binding requests. Cheap to clone; one per worker.
#[derive(Debug, Clone)]
pub struct BindingResponder {
    config: ResponderConfig,
}

impl BindingResponder {
    pub fn new(config: ResponderConfig) -> Self {
        BindingResponder { config }
    }

    pub fn config(&self) -> &ResponderConfig {
        &self.config
    }

    /// Decides what to do with `req`, received from `src` on the local
    /// address `local`, writing any response into `out`
    /// (at least [`MAX_RESPONSE`] bytes).
    pub fn respond(
        &self,
        req: &[u8],
        src: SocketAddr,
        local: SocketAddr,
        out: &mut [u8],
    ) -> Outcome {
        if src.port() == 0 {
            return Outcome::Drop(DropReason::BadSource);
        }
        let msg = match Message::parse(req, self.config.legacy) {
            Ok(m) => m,
            Err(e) => return Outcome::Drop(DropReason::Frame(e)),
        };
        if msg.class() != Class::Request {
            return Outcome::Drop(DropReason::NotRequest);
        }
        let reply = |len, class| Outcome::Reply {
            len,
            class,
            to: src,
            from: local,
        };
        if msg.method() != method::BINDING {
            // A STUN-only server: other methods (Allocate...) are a client
            // error, not something to ignore silently.
            return match self.error(&msg, 400, &[], out) {
                Some(len) => reply(len, ReplyClass::BadRequest),
                None => Outcome::Drop(DropReason::Frame(FrameError::BadLength)),
            };
        }

        // One walk over the attributes: unknown comprehension-required
        // ones, and the RFC 5780 requests.
        let mut unknown = [0u16; MAX_UNKNOWN];
        let mut n_unknown = 0;
        let mut change_flags: Option<u32> = None;
        let mut response_port: Option<u16> = None;
        let mut malformed = false;
        for (t, v) in msg.attributes() {
            match t {
                attr::CHANGE_REQUEST if self.config.rfc5780.is_some() => {
                    if v.len() != 4 || change_flags.is_some() {
                        malformed = true;
                    } else {
                        change_flags = Some(u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
                    }
                }
                attr::RESPONSE_PORT if self.config.rfc5780.is_some() => {
                    // A 16-bit port and 16 bits of padding: clients send
                    // length 4 (coturn) or 2 (stuntman, stun-rs).
                    if !(v.len() == 2 || v.len() == 4) || response_port.is_some() {
                        malformed = true;
                    } else {
                        response_port = Some(u16::from_be_bytes([v[0], v[1]]));
                    }
                }
                t if understood(t) => {}
                t if attr::is_comprehension_required(t)
                    && n_unknown < MAX_UNKNOWN
                    && !unknown[..n_unknown].contains(&t) =>
                {
                    unknown[n_unknown] = t;
                    n_unknown += 1;
                }
                _ => {}
            }
        }
        if n_unknown > 0 {
            return match self.error(&msg, 420, &unknown[..n_unknown], out) {
                Some(len) => reply(len, ReplyClass::UnknownAttribute),
                None => Outcome::Drop(DropReason::Frame(FrameError::BadLength)),
            };
        }
        if malformed || response_port == Some(0) {
            return match self.error(&msg, 400, &[], out) {
                Some(len) => reply(len, ReplyClass::BadRequest),
                None => Outcome::Drop(DropReason::Frame(FrameError::BadLength)),
            };
        }

        let mut from = local;
        let mut other = None;
        if let Some(r) = &self.config.rfc5780 {
            let flags = change_flags.unwrap_or(0);
            let other_ip = r.other_ip(local.ip());
            let other_port = r.other_port(local.port());
            if flags & change::IP != 0 {
                from.set_ip(other_ip);
            }
            if flags & change::PORT != 0 {
                from.set_port(other_port);
            }
            other = Some(SocketAddr::new(other_ip, other_port));
        }
        let to = SocketAddr::new(src.ip(), response_port.unwrap_or(src.port()));
        match self.success(&msg, src, from, other, out) {
            Some(len) => Outcome::Reply {
                len,
                class: ReplyClass::Success,
                to,
                from,
            },
            None => Outcome::Drop(DropReason::Frame(FrameError::BadLength)),
        }
    }

    fn success(
        &self,
        msg: &Message<'_>,
        src: SocketAddr,
        origin: SocketAddr,
        other: Option<SocketAddr>,
        out: &mut [u8],
    ) -> Option<usize> {
        let mut w = MessageWriter::new(out, BINDING_SUCCESS, msg.cookie_and_transaction()).ok()?;
        if msg.has_cookie() {
            w.xor_address(attr::XOR_MAPPED_ADDRESS, src).ok()?;
            if self.config.legacy {
                w.address(attr::MAPPED_ADDRESS, src).ok()?;
            }
            if let Some(other) = other {
                w.address(attr::OTHER_ADDRESS, other).ok()?;
                w.address(attr::RESPONSE_ORIGIN, origin).ok()?;
            }
        } else {
            // RFC 3489 clients know only the classic attributes.
            w.address(attr::MAPPED_ADDRESS, src).ok()?;
            if let Some(other) = other {
                w.address(attr::SOURCE_ADDRESS, origin).ok()?;
                w.address(attr::CHANGED_ADDRESS, other).ok()?;
            }
        }
        if let Some(s) = &self.config.software {
            w.attribute(attr::SOFTWARE, s.as_bytes()).ok()?;
        }
        if msg.has_fingerprint() {
            w.fingerprint().ok()?;
        }
        Some(w.finish())
    }

    /// Error responses carry no reason phrase and no SOFTWARE: the code is
    /// the contract, and keeping them small keeps amplification under 1.5x
    /// (errors go to anyone who can forge a 20-byte datagram).
    fn error(
        &self,
        msg: &Message<'_>,
        code: u16,
        unknown: &[u16],
        out: &mut [u8],
    ) -> Option<usize> {
        let ty = message_type(msg.method(), Class::ErrorResponse);
        let mut w = MessageWriter::new(out, ty, msg.cookie_and_transaction()).ok()?;
        w.error_code(code, "").ok()?;
        if !unknown.is_empty() {
            w.unknown_attributes(unknown).ok()?;
        }
        if msg.has_fingerprint() {
            w.fingerprint().ok()?;
        }
        Some(w.finish())
    }
}

/// Comprehension-required attributes a Binding server understands (and
/// ignores): those RFC 8489 and RFC 8445 define for requests. We do not
/// authenticate Binding requests, so credentials are accepted and unused.
fn understood(t: u16) -> bool {
    matches!(
        t,
        attr::MAPPED_ADDRESS
            | attr::USERNAME
            | attr::MESSAGE_INTEGRITY
            | attr::ERROR_CODE
            | attr::UNKNOWN_ATTRIBUTES
            | attr::REALM
            | attr::NONCE
            | attr::MESSAGE_INTEGRITY_SHA256
            | attr::PASSWORD_ALGORITHM
            | attr::USERHASH
            | attr::XOR_MAPPED_ADDRESS
            | attr::PRIORITY
            | attr::USE_CANDIDATE
    )
}
