//! A TURN Allocate with the long-term credential mechanism, sans-IO:
//! build requests, read answers, decide the next request. No socket, no
//! clock; the caller retransmits (with a STUN `Transaction`) and feeds the
//! answers in.
//!
//! Flow (RFC 8656 section 7, RFC 8489 section 9.2): Allocate without
//! credentials -> 401 with REALM and NONCE -> Allocate with USERNAME,
//! REALM, NONCE, REQUESTED-TRANSPORT and MESSAGE-INTEGRITY -> success
//! (XOR-RELAYED-ADDRESS, LIFETIME) or an error; a 438 (stale nonce) is
//! retried once with the new nonce. A successful allocation is released
//! with a Refresh whose LIFETIME is 0.

use std::net::SocketAddr;

use common::stun::{attr, decode_address, message_type, Class, Message, MessageWriter};

use super::credentials::{hmac_sha1, long_term_key, Credentials};

/// TURN methods (RFC 8656 section 17).
pub mod method {
    pub const ALLOCATE: u16 = 0x003;
    pub const REFRESH: u16 = 0x004;
}

/// TURN attributes (RFC 8656 section 18).
pub mod turn_attr {
    pub const LIFETIME: u16 = 0x000D;
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
}

/// IANA protocol number for UDP, the value of REQUESTED-TRANSPORT.
pub const PROTOCOL_UDP: u8 = 17;
const MI_LEN: usize = 20;

/// Largest request we build.
const MAX_REQUEST: usize = 1024;

/// What an error code means for the person running the probe.
pub fn error_meaning(code: u16) -> &'static str {
    match code {
        300 => "try alternate server: the server redirects to another one",
        400 => "bad request: the server could not parse our request",
        401 => "unauthorized: credentials missing or rejected",
        403 => "forbidden: the server refuses this request (policy, e.g. peer or relay address denied)",
        420 => "unknown attribute: the server does not understand a required attribute",
        437 => "allocation mismatch: an allocation already exists for this 5-tuple, or none does for the Refresh",
        438 => "stale nonce: the nonce expired; retry with the new one",
        440 => "address family not supported",
        441 => "wrong credentials: the username does not match the allocation's",
        442 => "unsupported transport protocol: the server cannot relay the requested transport",
        443 => "peer address family mismatch",
        486 => "allocation quota reached: too many allocations for this user",
        500 => "server error: a temporary failure in the server",
        508 => "insufficient capacity: the server has no relay ports or bandwidth left",
        _ => "unknown error code",
    }
}

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    pub code: u16,
    pub reason: String,
}

/// A successful allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocated {
    pub relayed: SocketAddr,
    pub mapped: Option<SocketAddr>,
    pub lifetime_s: Option<u32>,
}

/// How the whole exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocateResult {
    Allocated(Allocated),
    /// The server sent an error we do not recover from.
    Rejected {
        error: ErrorResponse,
        /// Why the error is final, in words ("after our credentials"...).
        context: String,
    },
    /// An answer that is not a valid TURN answer.
    Invalid(String),
    /// The server stopped answering after the first exchange.
    NoAnswer {
        after: &'static str,
    },
}

/// The final report of the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocateOutcome {
    pub result: AllocateResult,
    pub realm: Option<String>,
    /// Some(true) if the Refresh (lifetime 0) was answered with success.
    pub released: Option<bool>,
    /// The success response's MESSAGE-INTEGRITY checked with our key
    /// (None: the answer had none).
    pub integrity_ok: Option<bool>,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this request (its transaction ID is `transaction_id`).
    Send {
        request: Vec<u8>,
        transaction_id: [u8; 12],
    },
    Done(AllocateOutcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// First Allocate, without credentials.
    Probe,
    /// Allocate with credentials.
    Authenticated,
    /// Refresh with LIFETIME 0.
    Releasing,
    Finished,
}

/// The Allocate / release exchange with one TURN server.
#[derive(Debug, Clone)]
pub struct AllocateFlow {
    creds: Option<Credentials>,
    phase: Phase,
    realm: Option<String>,
    nonce: Option<Vec<u8>>,
    key: Option<[u8; 16]>,
    stale_retried: bool,
    result: Option<AllocateResult>,
    integrity_ok: Option<bool>,
}

impl AllocateFlow {
    pub fn new(creds: Option<Credentials>) -> Self {
        AllocateFlow {
            creds,
            phase: Phase::Probe,
            realm: None,
            nonce: None,
            key: None,
            stale_retried: false,
            result: None,
            integrity_ok: None,
        }
    }

    /// The first request: Allocate without credentials.
    pub fn start(&mut self, transaction_id: [u8; 12]) -> Step {
        self.phase = Phase::Probe;
        self.send(method::ALLOCATE, transaction_id)
    }

    /// Feeds the answer to the last request; `next_id` is used if another
    /// request is needed.
    pub fn handle_answer(&mut self, bytes: &[u8], next_id: [u8; 12]) -> Step {
        let m = match Message::parse(bytes, false) {
            Ok(m) => m,
            Err(e) => return self.finish_with(AllocateResult::Invalid(format!("not STUN: {e}"))),
        };
        let expected = match self.phase {
            Phase::Probe | Phase::Authenticated => method::ALLOCATE,
            Phase::Releasing => method::REFRESH,
            Phase::Finished => return self.done(),
        };
        if m.method() != expected {
            return self.finish_with(AllocateResult::Invalid(format!(
                "answer has method 0x{:03x}, expected 0x{expected:03x}",
                m.method()
            )));
        }
        match (self.phase, m.class()) {
            (Phase::Releasing, Class::SuccessResponse) => self.finish_release(true),
            (Phase::Releasing, Class::ErrorResponse) => {
                let e = error_of(&m);
                if e.code == 438 && !self.stale_retried {
                    self.stale_retried = true;
                    self.take_nonce(&m);
                    return self.send(method::REFRESH, next_id);
                }
                self.finish_release(false)
            }
            (_, Class::SuccessResponse) => {
                let cookie = m.cookie_and_transaction();
                let relayed = m
                    .attribute(turn_attr::XOR_RELAYED_ADDRESS)
                    .and_then(|v| decode_address(v, Some(cookie)));
                let Some(relayed) = relayed else {
                    return self.finish_with(AllocateResult::Invalid(
                        "Allocate success without a valid XOR-RELAYED-ADDRESS".into(),
                    ));
                };
                let lifetime_s = m
                    .attribute(turn_attr::LIFETIME)
                    .and_then(|v| v.try_into().ok())
                    .map(u32::from_be_bytes);
                if let Some(key) = self.key {
                    self.integrity_ok = check_message_integrity(bytes, &key);
                }
                self.result = Some(AllocateResult::Allocated(Allocated {
                    relayed,
                    mapped: m.xor_mapped_address(),
                    lifetime_s,
                }));
                self.stale_retried = false;
                self.phase = Phase::Releasing;
                self.send(method::REFRESH, next_id)
            }
            (phase, Class::ErrorResponse) => {
                let e = error_of(&m);
                match (phase, e.code) {
                    (Phase::Probe, 401) => {
                        self.take_nonce(&m);
                        self.realm = m
                            .attribute(attr::REALM)
                            .map(|r| String::from_utf8_lossy(r).into_owned());
                        let (Some(realm), Some(_)) = (&self.realm, &self.nonce) else {
                            return self.reject(e, "401 without REALM and NONCE: not the long-term credential mechanism");
                        };
                        let Some(c) = &self.creds else {
                            return self.reject(
                                e,
                                "the server requires credentials: give --username and --credential, or --turn-secret",
                            );
                        };
                        self.key = Some(long_term_key(&c.username, realm, &c.password));
                        self.phase = Phase::Authenticated;
                        self.send(method::ALLOCATE, next_id)
                    }
                    (Phase::Authenticated, 438) if !self.stale_retried => {
                        self.stale_retried = true;
                        self.take_nonce(&m);
                        self.send(method::ALLOCATE, next_id)
                    }
                    (Phase::Authenticated, 401) => self.reject(
                        e,
                        "wrong credentials: the server rejected our username/password (or the REST credential expired)",
                    ),
                    (Phase::Authenticated, 438) => {
                        self.reject(e, "stale nonce again after retrying with the new nonce")
                    }
                    (Phase::Probe, _) => self.reject(e, "on the first Allocate"),
                    _ => self.reject(e, "after our credentials"),
                }
            }
            (_, class) => self.finish_with(AllocateResult::Invalid(format!(
                "answer of class {class:?}, expected a response"
            ))),
        }
    }

    /// The last request got no answer in time.
    pub fn handle_no_answer(&mut self) -> AllocateOutcome {
        match self.phase {
            // The allocation stands; `outcome` reports it as not released.
            Phase::Releasing => {}
            Phase::Authenticated => {
                self.result = Some(AllocateResult::NoAnswer {
                    after: "the authenticated Allocate",
                });
            }
            Phase::Probe => {
                self.result = Some(AllocateResult::NoAnswer {
                    after: "the first Allocate",
                });
            }
            Phase::Finished => {}
        }
        self.phase = Phase::Finished;
        self.outcome(None)
    }

    /// The phase is the release (Refresh lifetime 0).
    pub fn is_releasing(&self) -> bool {
        self.phase == Phase::Releasing
    }

    fn finish_release(&mut self, ok: bool) -> Step {
        self.phase = Phase::Finished;
        Step::Done(self.outcome(Some(ok)))
    }

    fn reject(&mut self, error: ErrorResponse, context: &str) -> Step {
        self.finish_with(AllocateResult::Rejected {
            error,
            context: context.to_string(),
        })
    }

    fn finish_with(&mut self, r: AllocateResult) -> Step {
        // An invalid answer to the release still leaves the allocation's
        // result as it was.
        if self.phase == Phase::Releasing {
            return self.finish_release(false);
        }
        self.result = Some(r);
        self.phase = Phase::Finished;
        Step::Done(self.outcome(None))
    }

    fn done(&self) -> Step {
        Step::Done(self.outcome(None))
    }

    fn outcome(&self, released: Option<bool>) -> AllocateOutcome {
        let released = match (&self.result, released) {
            (Some(AllocateResult::Allocated(_)), None) => Some(false),
            (_, r) => r,
        };
        AllocateOutcome {
            result: self.result.clone().unwrap_or(AllocateResult::NoAnswer {
                after: "the first Allocate",
            }),
            realm: self.realm.clone(),
            released,
            integrity_ok: self.integrity_ok,
        }
    }

    fn take_nonce(&mut self, m: &Message<'_>) {
        if let Some(n) = m.attribute(attr::NONCE) {
            self.nonce = Some(n.to_vec());
        }
    }

    fn send(&mut self, method: u16, transaction_id: [u8; 12]) -> Step {
        let mut buf = [0u8; MAX_REQUEST];
        let authenticated = matches!(self.phase, Phase::Authenticated | Phase::Releasing);
        let auth = match (&self.creds, &self.realm, &self.nonce, &self.key) {
            (Some(c), Some(r), Some(n), Some(k)) if authenticated => {
                Some((c.username.as_str(), r.as_str(), n.as_slice(), k))
            }
            _ => None,
        };
        let lifetime = (method == method::REFRESH).then_some(0);
        let n = build_request(&mut buf, method, &transaction_id, auth, lifetime)
            .expect("TURN request fits in 1 KiB");
        Step::Send {
            request: buf[..n].to_vec(),
            transaction_id,
        }
    }
}

fn error_of(m: &Message<'_>) -> ErrorResponse {
    match m.error_code() {
        Some((code, reason)) => ErrorResponse {
            code,
            reason: reason.to_string(),
        },
        None => ErrorResponse {
            code: 0,
            reason: "error response without ERROR-CODE".into(),
        },
    }
}

/// Builds an Allocate (REQUESTED-TRANSPORT UDP) or Refresh (`lifetime`)
/// request. With `auth` = (username, realm, nonce, key) it carries
/// USERNAME, REALM, NONCE and MESSAGE-INTEGRITY.
pub fn build_request(
    buf: &mut [u8],
    method: u16,
    transaction_id: &[u8; 12],
    auth: Option<(&str, &str, &[u8], &[u8; 16])>,
    lifetime: Option<u32>,
) -> Result<usize, common::stun::BufferFull> {
    let mut w = MessageWriter::with_transaction_id(
        buf,
        message_type(method, Class::Request),
        transaction_id,
    )?;
    if method == method::ALLOCATE {
        w.attribute(turn_attr::REQUESTED_TRANSPORT, &[PROTOCOL_UDP, 0, 0, 0])?;
    }
    if let Some(l) = lifetime {
        w.attribute(turn_attr::LIFETIME, &l.to_be_bytes())?;
    }
    let Some((username, realm, nonce, key)) = auth else {
        return Ok(w.finish());
    };
    w.attribute(attr::USERNAME, username.as_bytes())?;
    w.attribute(attr::REALM, realm.as_bytes())?;
    w.attribute(attr::NONCE, nonce)?;
    w.attribute(attr::MESSAGE_INTEGRITY, &[0u8; MI_LEN])?;
    let n = w.finish();
    // The length field already counts MESSAGE-INTEGRITY, as the HMAC needs.
    let mac = hmac_sha1(key, &buf[..n - MI_LEN - 4]);
    buf[n - MI_LEN..n].copy_from_slice(&mac);
    Ok(n)
}

/// Checks MESSAGE-INTEGRITY of `bytes` with `key`; None if it has none.
/// Attributes after it (FINGERPRINT) are excluded from the length, as
/// RFC 8489 section 14.5 says.
pub fn check_message_integrity(bytes: &[u8], key: &[u8]) -> Option<bool> {
    let m = Message::parse(bytes, false).ok()?;
    let mut at = common::stun::HEADER_LEN;
    for (t, v) in m.attributes() {
        if t == attr::MESSAGE_INTEGRITY {
            if v.len() != MI_LEN {
                return Some(false);
            }
            let mut head = bytes[..at].to_vec();
            let len = (at + 4 + MI_LEN - common::stun::HEADER_LEN) as u16;
            head[2..4].copy_from_slice(&len.to_be_bytes());
            return Some(hmac_sha1(key, &head) == v);
        }
        at += 4 + ((v.len() + 3) & !3);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::stun::split_type;

    const TID: [u8; 12] = [1; 12];

    /// RFC 5769 section 2.4: a request with long-term authentication.
    /// Username "マトリックス", password "TheMatrIX" (SASLprep of
    /// "The\u{AD}M\u{AA}tr\u{2168}"), realm "example.org".
    const RFC5769_LONG_TERM: [u8; 116] = [
        0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42, 0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72,
        0xc0, 0x29, 0xda, 0x41, 0x2e, 0x00, 0x06, 0x00, 0x12, 0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88,
        0xe3, 0x83, 0xaa, 0xe3, 0x83, 0x83, 0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9, 0x00, 0x00, 0x00,
        0x15, 0x00, 0x1c, 0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39, 0x35, 0x34, 0x64, 0x36,
        0x4f, 0x4c, 0x33, 0x34, 0x6f, 0x4c, 0x39, 0x46, 0x53, 0x54, 0x76, 0x79, 0x36, 0x34, 0x73,
        0x41, 0x00, 0x14, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x6f, 0x72,
        0x67, 0x00, 0x00, 0x08, 0x00, 0x14, 0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e, 0x02,
        0xb8, 0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2, 0x8c, 0xa8, 0x96, 0x66,
    ];
    const RFC_USER: &str = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";

    #[test]
    fn message_integrity_matches_rfc5769_vector() {
        let key = long_term_key(RFC_USER, "example.org", "TheMatrIX");
        assert_eq!(
            check_message_integrity(&RFC5769_LONG_TERM, &key),
            Some(true)
        );
        let wrong = long_term_key(RFC_USER, "example.org", "TheMatrix");
        assert_eq!(
            check_message_integrity(&RFC5769_LONG_TERM, &wrong),
            Some(false)
        );

        // Our writer, given the vector's attributes in the vector's order,
        // produces the same HMAC.
        let mut buf = [0u8; 256];
        let mut w = MessageWriter::new(
            &mut buf,
            0x0001,
            RFC5769_LONG_TERM[4..20].try_into().unwrap(),
        )
        .unwrap();
        w.attribute(attr::USERNAME, RFC_USER.as_bytes()).unwrap();
        w.attribute(attr::NONCE, b"f//499k954d6OL34oL9FSTvy64sA")
            .unwrap();
        w.attribute(attr::REALM, b"example.org").unwrap();
        w.attribute(attr::MESSAGE_INTEGRITY, &[0; 20]).unwrap();
        let n = w.finish();
        let mac = hmac_sha1(&key, &buf[..n - 24]);
        buf[n - 20..n].copy_from_slice(&mac);
        assert_eq!(&buf[..n], &RFC5769_LONG_TERM[..]);
    }

    #[test]
    fn integrity_ignores_a_trailing_fingerprint() {
        let key = long_term_key("alice", "example.org", "secret");
        let mut buf = [0u8; 512];
        let n = build_request(
            &mut buf,
            method::ALLOCATE,
            &TID,
            Some(("alice", "example.org", b"nonce", &key)),
            None,
        )
        .unwrap();
        assert_eq!(check_message_integrity(&buf[..n], &key), Some(true));
        // Append FINGERPRINT by hand: MESSAGE-INTEGRITY must still verify.
        let mut v = buf[..n].to_vec();
        let total = (v.len() + 8 - 20) as u16;
        v[2..4].copy_from_slice(&total.to_be_bytes());
        let fp = common::stun::fingerprint(&v);
        v.extend_from_slice(&attr::FINGERPRINT.to_be_bytes());
        v.extend_from_slice(&4u16.to_be_bytes());
        v.extend_from_slice(&fp.to_be_bytes());
        assert_eq!(check_message_integrity(&v, &key), Some(true));
    }

    #[test]
    fn stun_rs_decodes_and_validates_our_requests() {
        use stun_rs::attributes::turn::{LifeTime, RequestedTrasport};
        use stun_rs::{
            Algorithm, AlgorithmId, DecoderContextBuilder, HMACKey, MessageClass,
            MessageDecoderBuilder,
        };
        let decoder = |password: &str| {
            let key = HMACKey::new_long_term(
                "alice",
                "example.org",
                password,
                Algorithm::from(AlgorithmId::MD5),
            )
            .unwrap();
            MessageDecoderBuilder::default()
                .with_context(
                    DecoderContextBuilder::default()
                        .with_key(key)
                        .with_validation()
                        .build(),
                )
                .build()
        };
        let key = long_term_key("alice", "example.org", "secret");
        let auth = Some(("alice", "example.org", &b"abcd1234"[..], &key));
        let mut buf = [0u8; 512];
        for (m, lifetime) in [(method::ALLOCATE, None), (method::REFRESH, Some(0))] {
            let n = build_request(&mut buf, m, &TID, auth, lifetime).unwrap();
            let (msg, size) = decoder("secret")
                .decode(&buf[..n])
                .unwrap_or_else(|e| panic!("stun-rs rejects our 0x{m:03x}: {e:?}"));
            assert_eq!(size, n);
            assert_eq!(msg.class(), MessageClass::Request);
            assert_eq!(msg.method().as_u16(), m);
            assert_eq!(
                msg.get::<RequestedTrasport>().is_some(),
                m == method::ALLOCATE
            );
            assert_eq!(msg.get::<LifeTime>().is_some(), m == method::REFRESH);
            assert!(
                decoder("wrong").decode(&buf[..n]).is_err(),
                "a wrong key must fail validation"
            );
        }
    }

    // --- A scripted server for the flow ------------------------------------

    fn request_of(step: &Step) -> (Vec<u8>, [u8; 12]) {
        match step {
            Step::Send {
                request,
                transaction_id,
            } => (request.clone(), *transaction_id),
            Step::Done(o) => panic!("expected a request, got {o:?}"),
        }
    }

    fn error_answer(req: &[u8], code: u16, realm_nonce: Option<(&str, &str)>) -> Vec<u8> {
        let m = Message::parse(req, false).unwrap();
        let mut b = [0u8; 512];
        let mut w = MessageWriter::with_transaction_id(
            &mut b,
            message_type(m.method(), Class::ErrorResponse),
            m.transaction_id(),
        )
        .unwrap();
        w.error_code(code, "Some Reason").unwrap();
        if let Some((r, n)) = realm_nonce {
            w.attribute(attr::REALM, r.as_bytes()).unwrap();
            w.attribute(attr::NONCE, n.as_bytes()).unwrap();
        }
        let n = w.finish();
        b[..n].to_vec()
    }

    fn success_answer(req: &[u8], key: &[u8; 16]) -> Vec<u8> {
        let m = Message::parse(req, false).unwrap();
        let mut b = [0u8; 512];
        let mut w = MessageWriter::with_transaction_id(
            &mut b,
            message_type(m.method(), Class::SuccessResponse),
            m.transaction_id(),
        )
        .unwrap();
        if m.method() == method::ALLOCATE {
            w.xor_address(
                turn_attr::XOR_RELAYED_ADDRESS,
                "127.0.0.1:50000".parse().unwrap(),
            )
            .unwrap();
            w.xor_address(attr::XOR_MAPPED_ADDRESS, "127.0.0.1:40000".parse().unwrap())
                .unwrap();
        }
        w.attribute(turn_attr::LIFETIME, &600u32.to_be_bytes())
            .unwrap();
        w.attribute(attr::MESSAGE_INTEGRITY, &[0; 20]).unwrap();
        let n = w.finish();
        let mac = hmac_sha1(key, &b[..n - 24]);
        b[n - 20..n].copy_from_slice(&mac);
        b[..n].to_vec()
    }

    fn alice() -> Option<Credentials> {
        Some(Credentials {
            username: "alice".into(),
            password: "secret".into(),
        })
    }

    #[test]
    fn first_allocate_has_no_credentials() {
        let mut f = AllocateFlow::new(alice());
        let (req, tid) = request_of(&f.start(TID));
        let m = Message::parse(&req, false).unwrap();
        assert_eq!(split_type(m.msg_type()), (method::ALLOCATE, Class::Request));
        assert_eq!(m.transaction_id(), &tid);
        assert_eq!(
            m.attribute(turn_attr::REQUESTED_TRANSPORT),
            Some(&[17u8, 0, 0, 0][..])
        );
        assert!(m.attribute(attr::USERNAME).is_none());
        assert!(m.attribute(attr::MESSAGE_INTEGRITY).is_none());
    }

    #[test]
    fn full_allocation_and_release() {
        let key = long_term_key("alice", "example.org", "secret");
        let mut f = AllocateFlow::new(alice());
        let (req, _) = request_of(&f.start(TID));
        let step = f.handle_answer(
            &error_answer(&req, 401, Some(("example.org", "n1"))),
            [2; 12],
        );
        let (req, tid) = request_of(&step);
        assert_eq!(tid, [2; 12]);
        let m = Message::parse(&req, false).unwrap();
        assert_eq!(m.attribute(attr::USERNAME), Some(&b"alice"[..]));
        assert_eq!(m.attribute(attr::REALM), Some(&b"example.org"[..]));
        assert_eq!(m.attribute(attr::NONCE), Some(&b"n1"[..]));
        assert_eq!(check_message_integrity(&req, &key), Some(true));
        assert_eq!(
            m.attribute(turn_attr::REQUESTED_TRANSPORT),
            Some(&[17u8, 0, 0, 0][..])
        );

        let step = f.handle_answer(&success_answer(&req, &key), [3; 12]);
        let (req, _) = request_of(&step);
        let m = Message::parse(&req, false).unwrap();
        assert_eq!(split_type(m.msg_type()), (method::REFRESH, Class::Request));
        assert_eq!(m.attribute(turn_attr::LIFETIME), Some(&[0u8, 0, 0, 0][..]));
        assert_eq!(check_message_integrity(&req, &key), Some(true));
        assert!(f.is_releasing());

        let Step::Done(o) = f.handle_answer(&success_answer(&req, &key), [4; 12]) else {
            panic!("expected done");
        };
        assert_eq!(
            o.result,
            AllocateResult::Allocated(Allocated {
                relayed: "127.0.0.1:50000".parse().unwrap(),
                mapped: Some("127.0.0.1:40000".parse().unwrap()),
                lifetime_s: Some(600),
            })
        );
        assert_eq!(o.released, Some(true));
        assert_eq!(o.integrity_ok, Some(true));
        assert_eq!(o.realm.as_deref(), Some("example.org"));
    }

    #[test]
    fn stale_nonce_is_retried_once_with_the_new_nonce() {
        let mut f = AllocateFlow::new(alice());
        let (req, _) = request_of(&f.start(TID));
        let (req, _) = request_of(&f.handle_answer(
            &error_answer(&req, 401, Some(("example.org", "n1"))),
            [2; 12],
        ));
        let (req, _) = request_of(&f.handle_answer(
            &error_answer(&req, 438, Some(("example.org", "n2"))),
            [3; 12],
        ));
        let m = Message::parse(&req, false).unwrap();
        assert_eq!(m.attribute(attr::NONCE), Some(&b"n2"[..]));
        let Step::Done(o) = f.handle_answer(
            &error_answer(&req, 438, Some(("example.org", "n3"))),
            [4; 12],
        ) else {
            panic!("a second 438 must end the flow");
        };
        assert!(
            matches!(o.result, AllocateResult::Rejected { ref error, .. } if error.code == 438)
        );
        assert_eq!(o.released, None);
    }

    #[test]
    fn wrong_credentials_and_missing_credentials() {
        let mut f = AllocateFlow::new(alice());
        let (req, _) = request_of(&f.start(TID));
        let (req, _) = request_of(&f.handle_answer(
            &error_answer(&req, 401, Some(("example.org", "n1"))),
            [2; 12],
        ));
        let Step::Done(o) = f.handle_answer(
            &error_answer(&req, 401, Some(("example.org", "n1"))),
            [3; 12],
        ) else {
            panic!("done");
        };
        match o.result {
            AllocateResult::Rejected { error, context } => {
                assert_eq!(error.code, 401);
                assert!(context.contains("wrong credentials"), "{context}");
            }
            r => panic!("{r:?}"),
        }

        let mut f = AllocateFlow::new(None);
        let (req, _) = request_of(&f.start(TID));
        let Step::Done(o) = f.handle_answer(
            &error_answer(&req, 401, Some(("example.org", "n1"))),
            [2; 12],
        ) else {
            panic!("done");
        };
        match o.result {
            AllocateResult::Rejected { context, .. } => {
                assert!(context.contains("--turn-secret"), "{context}")
            }
            r => panic!("{r:?}"),
        }
    }

    #[test]
    fn other_errors_are_final_with_their_code() {
        for code in [403u16, 437, 441, 442, 486, 508] {
            let mut f = AllocateFlow::new(alice());
            let (req, _) = request_of(&f.start(TID));
            let (req, _) =
                request_of(&f.handle_answer(&error_answer(&req, 401, Some(("r", "n"))), [2; 12]));
            let Step::Done(o) = f.handle_answer(&error_answer(&req, code, None), [3; 12]) else {
                panic!("done");
            };
            assert!(
                matches!(o.result, AllocateResult::Rejected { ref error, .. } if error.code == code && error.reason == "Some Reason"),
                "{code}: {o:?}"
            );
            assert_ne!(error_meaning(code), "unknown error code");
        }
    }

    #[test]
    fn silence_and_garbage() {
        let mut f = AllocateFlow::new(alice());
        let _ = f.start(TID);
        let o = f.handle_no_answer();
        assert!(matches!(o.result, AllocateResult::NoAnswer { .. }));
        let mut f = AllocateFlow::new(alice());
        let _ = f.start(TID);
        let Step::Done(o) = f.handle_answer(b"not stun at all, not at all", [2; 12]) else {
            panic!("done");
        };
        assert!(matches!(o.result, AllocateResult::Invalid(_)));
    }

    #[test]
    fn release_without_answer_is_reported() {
        let key = long_term_key("alice", "r", "secret");
        let mut f = AllocateFlow::new(alice());
        let (req, _) = request_of(&f.start(TID));
        let (req, _) =
            request_of(&f.handle_answer(&error_answer(&req, 401, Some(("r", "n"))), [2; 12]));
        let _ = request_of(&f.handle_answer(&success_answer(&req, &key), [3; 12]));
        let o = f.handle_no_answer();
        assert!(matches!(o.result, AllocateResult::Allocated(_)));
        assert_eq!(o.released, Some(false));
    }
}
