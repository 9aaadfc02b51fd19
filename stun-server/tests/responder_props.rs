//! Randomized robustness of the sans-IO responder: well over a million
//! malformed and mutated datagrams through `BindingResponder::respond`
//! under several configurations, with a seeded RNG so a failure replays.
//!
//! Every datagram is checked against a small model of what the responder
//! must do (drop with the parser's reason, drop non-requests, 400, 420 with
//! the right list, success), every reply is parsed back, and the largest
//! reply/request ratio is recorded: error replies must stay at or under 2x
//! (they go to unauthenticated sources, so they must not amplify).
//!
//! `STUN_PROPS_ITERS` (per configuration) and `STUN_PROPS_SEED` override
//! the defaults for longer runs.

use std::net::SocketAddr;
use std::time::Instant;

use common::stun::{
    self, attr, binding_request, fingerprint, message_type, method, Class, FrameError, Message,
    MessageWriter, BINDING_REQUEST, HEADER_LEN, MAGIC_COOKIE,
};
use stun_server::responder::{
    BindingResponder, DropReason, Outcome, ReplyClass, ResponderConfig, Rfc5780, MAX_RESPONSE,
};

/// Datagrams per configuration (four configurations run in parallel).
const DEFAULT_ITERS: u64 = 300_000;

// ------------------------------------------------------------------ RNG

/// SplitMix64: tiny, fast in debug builds, good enough to drive a fuzzer.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
    /// True with probability 1/n.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let r = self.next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
    fn push_random(&mut self, p: &mut Vec<u8>, n: usize) {
        let at = p.len();
        p.resize(at + n, 0);
        self.fill(&mut p[at..]);
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
}

// ------------------------------------------------------------ generation

/// Attribute types worth drawing: every one the responder names, unknown
/// comprehension-required and optional ones, and the edges of the space.
const TYPES: [u16; 32] = [
    attr::MAPPED_ADDRESS,
    attr::RESPONSE_ADDRESS,
    attr::CHANGE_REQUEST,
    attr::SOURCE_ADDRESS,
    attr::CHANGED_ADDRESS,
    attr::USERNAME,
    attr::MESSAGE_INTEGRITY,
    attr::ERROR_CODE,
    attr::UNKNOWN_ATTRIBUTES,
    attr::REALM,
    attr::NONCE,
    attr::MESSAGE_INTEGRITY_SHA256,
    attr::PASSWORD_ALGORITHM,
    attr::USERHASH,
    attr::XOR_MAPPED_ADDRESS,
    attr::PRIORITY,
    attr::USE_CANDIDATE,
    attr::PADDING,
    attr::RESPONSE_PORT,
    attr::PASSWORD_ALGORITHMS,
    attr::ALTERNATE_DOMAIN,
    attr::SOFTWARE,
    attr::ALTERNATE_SERVER,
    attr::FINGERPRINT,
    attr::ICE_CONTROLLED,
    attr::ICE_CONTROLLING,
    attr::RESPONSE_ORIGIN,
    attr::OTHER_ADDRESS,
    0x0000,
    0x7FFF,
    0x8000,
    0xFFFF,
];

fn random_type(rng: &mut Rng) -> u16 {
    match rng.below(4) {
        0 | 1 => rng.pick(&TYPES),
        // A small pool of unknown comprehension-required types, so that
        // duplicates (listed once in a 420) happen.
        2 => 0x0040 + rng.below(24) as u16,
        _ => rng.next() as u16,
    }
}

fn random_len(rng: &mut Rng) -> usize {
    match rng.below(8) {
        0 => 0,
        1 => 2,
        2 => 4,
        3 => 8,
        4 => 20,
        5 => rng.below(8),
        6 => rng.below(64),
        _ => rng.below(300),
    }
}

/// Appends one attribute (padding random or zero).
fn push_attr(rng: &mut Rng, p: &mut Vec<u8>, t: u16, len: usize) {
    p.extend_from_slice(&t.to_be_bytes());
    p.extend_from_slice(&(len as u16).to_be_bytes());
    rng.push_random(p, len);
    let pad = (4 - len % 4) % 4;
    if rng.one_in(4) {
        rng.push_random(p, pad);
    } else {
        p.resize(p.len() + pad, 0);
    }
}

fn set_length_field(p: &mut [u8]) {
    if p.len() >= HEADER_LEN {
        let l = (p.len() - HEADER_LEN) as u16;
        p[2..4].copy_from_slice(&l.to_be_bytes());
    }
}

/// Appends FINGERPRINT (valid, or a random value), fixing the length
/// field first: the CRC covers it.
fn push_fingerprint(p: &mut Vec<u8>, valid: bool, rng: &mut Rng) {
    let at = p.len();
    let total = (at + 8 - HEADER_LEN) as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    let v = if valid {
        fingerprint(p)
    } else {
        rng.next() as u32
    };
    p.extend_from_slice(&attr::FINGERPRINT.to_be_bytes());
    p.extend_from_slice(&4u16.to_be_bytes());
    p.extend_from_slice(&v.to_be_bytes());
}

fn header(rng: &mut Rng, p: &mut Vec<u8>, classic: bool) {
    p.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    if classic {
        rng.push_random(p, 16);
    } else {
        p.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        rng.push_random(p, 12);
    }
}

/// A well-framed request without FINGERPRINT (which is added, or not,
/// later). Returns false if the seed must not get a FINGERPRINT (classic).
fn seed(rng: &mut Rng, p: &mut Vec<u8>) -> bool {
    p.clear();
    match rng.below(8) {
        // What real clients send.
        0 | 1 => {
            let mut buf = [0u8; 64];
            let mut tid = [0u8; 12];
            rng.fill(&mut tid);
            let change = rng.pick(&[0, 0, stun::change::IP, stun::change::PORT, 6]);
            let port = if rng.one_in(3) {
                Some(rng.next() as u16)
            } else {
                None
            };
            let n = binding_request(&mut buf, &tid, change, port, false).unwrap();
            p.extend_from_slice(&buf[..n]);
            true
        }
        // ICE connectivity check.
        2 => {
            header(rng, p, false);
            let ulen = 1 + rng.below(40);
            push_attr(rng, p, attr::USERNAME, ulen);
            push_attr(rng, p, attr::PRIORITY, 4);
            let role = rng.pick(&[attr::ICE_CONTROLLED, attr::ICE_CONTROLLING]);
            push_attr(rng, p, role, 8);
            if rng.one_in(2) {
                push_attr(rng, p, attr::USE_CANDIDATE, 0);
            }
            push_attr(rng, p, attr::MESSAGE_INTEGRITY, 20);
            set_length_field(p);
            true
        }
        // RFC 3489 classic request.
        3 => {
            header(rng, p, true);
            if rng.one_in(2) {
                push_attr(rng, p, attr::CHANGE_REQUEST, 4);
            }
            if rng.one_in(4) {
                push_attr(rng, p, attr::RESPONSE_ADDRESS, 8);
            }
            set_length_field(p);
            false
        }
        // Random attribute soup, framed.
        _ => {
            let classic = rng.one_in(8);
            header(rng, p, classic);
            if rng.one_in(6) {
                // Any method and class.
                let t = (rng.next() as u16) & 0x3FFF;
                p[0..2].copy_from_slice(&t.to_be_bytes());
            }
            for _ in 0..rng.below(12) {
                let t = random_type(rng);
                if t == attr::FINGERPRINT {
                    continue;
                }
                let len = random_len(rng);
                push_attr(rng, p, t, len);
            }
            set_length_field(p);
            !classic
        }
    }
}

/// Offsets of the attributes of a framed message (for insertion).
fn boundaries(p: &[u8], out: &mut Vec<usize>) {
    out.clear();
    let mut at = HEADER_LEN;
    out.push(at);
    while at + 4 <= p.len() {
        let l = u16::from_be_bytes([p[at + 2], p[at + 3]]) as usize;
        at += 4 + ((l + 3) & !3);
        if at > p.len() {
            break;
        }
        out.push(at);
    }
}

/// One datagram: usually a mutated valid request, sometimes pure noise.
fn datagram(rng: &mut Rng, p: &mut Vec<u8>, scratch: &mut Vec<usize>) {
    if rng.one_in(10) {
        // Pure random bytes, sometimes behind a plausible header.
        p.clear();
        let n = match rng.below(4) {
            0 => rng.below(HEADER_LEN + 4),
            1 => rng.below(64),
            2 => rng.below(600),
            _ => rng.below(2000),
        };
        rng.push_random(p, n);
        if p.len() >= HEADER_LEN && rng.one_in(2) {
            p[0] &= 0x3F;
            p[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            if rng.one_in(2) {
                let l = (p.len() - HEADER_LEN) & !3;
                p.truncate(HEADER_LEN + l);
                set_length_field(p);
            }
        }
        return;
    }

    let fp_ok = seed(rng, p);

    // Structural mutations that keep (or re-establish) framing.
    if rng.one_in(3) {
        boundaries(p, scratch);
        let at = rng.pick(scratch);
        let mut a = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let t = random_type(rng);
            let len = random_len(rng);
            push_attr(rng, &mut a, t, len);
        }
        p.splice(at..at, a);
        set_length_field(p);
    }
    if rng.one_in(12) {
        // Many unknown comprehension-required attributes (420 list cap).
        for _ in 0..rng.below(40) {
            let t = 0x0040 + rng.below(64) as u16;
            push_attr(rng, p, t, 0);
        }
        set_length_field(p);
    }
    // FINGERPRINT: valid, random, or none. A classic message cannot carry
    // one (no cookie), so it gets one only rarely, to be rejected.
    let roll = if fp_ok { rng.below(3) } else { rng.below(16) };
    match roll {
        0 => push_fingerprint(p, true, rng),
        1 if rng.one_in(4) => push_fingerprint(p, false, rng),
        1 if rng.one_in(3) => {
            // A valid FINGERPRINT with an attribute after it: FINGERPRINT
            // covers the length field, which must already count the
            // trailing attribute.
            let t = random_type(rng);
            let len = random_len(rng) & !3;
            let total = p.len() + 8 + 4 + len - HEADER_LEN;
            p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            let fp = fingerprint(p);
            p.extend_from_slice(&attr::FINGERPRINT.to_be_bytes());
            p.extend_from_slice(&4u16.to_be_bytes());
            p.extend_from_slice(&fp.to_be_bytes());
            push_attr(rng, p, t, len);
        }
        _ => {}
    }

    // Byte-level mutations, applied after FINGERPRINT.
    let n_mut = match rng.below(4) {
        0 | 1 => 0,
        2 => 1,
        _ => 1 + rng.below(4),
    };
    for _ in 0..n_mut {
        match rng.below(7) {
            0 if !p.is_empty() => {
                // Bit flip.
                let i = rng.below(p.len());
                p[i] ^= 1 << rng.below(8);
            }
            1 if !p.is_empty() => {
                // Random byte.
                let i = rng.below(p.len());
                p[i] = rng.byte();
            }
            2 => {
                // Truncate.
                let n = rng.below(p.len() + 1);
                p.truncate(n);
            }
            3 if p.len() >= 4 => {
                // Length field: random, off by a little, or off by 4.
                let l = u16::from_be_bytes([p[2], p[3]]);
                let l = match rng.below(3) {
                    0 => rng.next() as u16,
                    1 => l.wrapping_add(rng.below(9) as u16).wrapping_sub(4),
                    _ => l ^ 4,
                };
                p[2..4].copy_from_slice(&l.to_be_bytes());
            }
            4 => {
                // Appended garbage, length fixed up or not.
                let n = rng.below(64);
                rng.push_random(p, n);
                if rng.one_in(2) {
                    let keep = p.len() - (p.len().saturating_sub(HEADER_LEN) % 4);
                    p.truncate(keep);
                    set_length_field(p);
                }
            }
            5 if p.len() > HEADER_LEN + 4 => {
                // An attribute length field inside the message.
                boundaries(p, scratch);
                let at = rng.pick(scratch);
                if at + 4 <= p.len() {
                    let v = rng.next() as u16 % 64;
                    p[at + 2..at + 4].copy_from_slice(&v.to_be_bytes());
                }
            }
            _ => {
                // Message type: any method and class.
                if p.len() >= 2 {
                    let t = (rng.next() as u16) & if rng.one_in(8) { 0xFFFF } else { 0x3FFF };
                    p[0..2].copy_from_slice(&t.to_be_bytes());
                }
            }
        }
    }
}

// --------------------------------------------------------------- the model

/// The comprehension-required attributes a Binding server accepts
/// (RFC 8489 and RFC 8445 request attributes; credentials ignored).
fn understood(t: u16, rfc5780: bool) -> bool {
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
    ) || (rfc5780 && matches!(t, attr::CHANGE_REQUEST | attr::RESPONSE_PORT))
}

#[derive(Debug, PartialEq)]
enum Expect {
    Drop(DropReason),
    E400,
    E420(Vec<u16>),
    Success {
        change: u32,
        response_port: Option<u16>,
    },
}

fn expect(req: &[u8], src: SocketAddr, cfg: &ResponderConfig) -> Expect {
    if src.port() == 0 {
        return Expect::Drop(DropReason::BadSource);
    }
    let m = match Message::parse(req, cfg.legacy) {
        Ok(m) => m,
        Err(e) => return Expect::Drop(DropReason::Frame(e)),
    };
    if m.class() != Class::Request {
        return Expect::Drop(DropReason::NotRequest);
    }
    if m.method() != method::BINDING {
        return Expect::E400;
    }
    let rfc5780 = cfg.rfc5780.is_some();
    let mut unknown = Vec::new();
    for (t, _) in m.attributes() {
        if t < 0x8000 && !understood(t, rfc5780) && !unknown.contains(&t) {
            unknown.push(t);
        }
    }
    if !unknown.is_empty() {
        unknown.truncate(16);
        return Expect::E420(unknown);
    }
    let mut change = None;
    let mut port = None;
    let mut bad = false;
    if rfc5780 {
        for (t, v) in m.attributes() {
            match t {
                attr::CHANGE_REQUEST => {
                    bad |= v.len() != 4 || change.is_some();
                    if v.len() == 4 {
                        change = Some(u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
                    }
                }
                attr::RESPONSE_PORT => {
                    // RFC 5780: a 16-bit port followed by 16 bits of
                    // padding; clients send length 4 (coturn, us) or 2
                    // (stuntman, stun-rs).
                    bad |= !(v.len() == 2 || v.len() == 4) || port.is_some();
                    if v.len() >= 2 {
                        port = Some(u16::from_be_bytes([v[0], v[1]]));
                    }
                }
                _ => {}
            }
        }
    }
    if bad || port == Some(0) {
        return Expect::E400;
    }
    Expect::Success {
        change: change.unwrap_or(0),
        response_port: port,
    }
}

// ----------------------------------------------------------------- checks

#[derive(Default, Debug)]
struct Stats {
    datagrams: u64,
    replies: u64,
    success: u64,
    e400: u64,
    e420: u64,
    /// Replies to requests that carried a valid FINGERPRINT.
    fingerprinted: u64,
    drops: std::collections::BTreeMap<&'static str, u64>,
    /// (ratio, request len, reply len) of the worst error reply.
    max_error_amp: (f64, usize, usize),
    max_success_amp: (f64, usize, usize),
}

fn check_one(
    r: &BindingResponder,
    req: &[u8],
    src: SocketAddr,
    local: SocketAddr,
    out: &mut [u8],
    stats: &mut Stats,
) {
    let cfg = r.config();
    let cap = out.len();
    let outcome = r.respond(req, src, local, out);
    let want = expect(req, src, cfg);
    stats.datagrams += 1;
    let ctx = || format!("request {req:02x?} from {src} to {local}, config {cfg:?}");
    let (len, class, to, from) = match outcome {
        Outcome::Drop(DropReason::Frame(FrameError::BadLength))
            if cap < MAX_RESPONSE && !matches!(want, Expect::Drop(_)) =>
        {
            // The out buffer was too small for the reply: dropped, fine.
            *stats.drops.entry("buffer_too_small").or_default() += 1;
            return;
        }
        Outcome::Drop(reason) => {
            assert_eq!(Expect::Drop(reason), want, "{}", ctx());
            *stats.drops.entry(reason.label()).or_default() += 1;
            return;
        }
        Outcome::Reply {
            len,
            class,
            to,
            from,
        } => (len, class, to, from),
    };
    stats.replies += 1;
    assert!(len <= cap, "reply of {len} bytes in a {cap}-byte buffer");
    let resp = &out[..len];
    let m = Message::parse(resp, cfg.legacy)
        .unwrap_or_else(|e| panic!("reply {resp:02x?} does not parse ({e}); {}", ctx()));
    let q = Message::parse(req, cfg.legacy).expect("replied to an unparseable request");
    assert_eq!(m.cookie_and_transaction(), q.cookie_and_transaction());
    assert_eq!(m.method(), q.method());
    assert_eq!(m.has_fingerprint(), q.has_fingerprint(), "{}", ctx());
    stats.fingerprinted += u64::from(q.has_fingerprint());
    assert_eq!(to.ip(), src.ip());
    let amp = len as f64 / req.len() as f64;
    match class {
        ReplyClass::Success => {
            stats.success += 1;
            let Expect::Success {
                change,
                response_port,
            } = want
            else {
                panic!("success, expected {want:?}; {}", ctx());
            };
            assert_eq!(m.class(), Class::SuccessResponse);
            if q.has_cookie() {
                assert_eq!(m.xor_mapped_address(), Some(src));
            }
            if cfg.legacy || !q.has_cookie() {
                assert_eq!(m.address(attr::MAPPED_ADDRESS), Some(src));
            } else {
                assert_eq!(m.attribute(attr::MAPPED_ADDRESS), None);
            }
            assert_eq!(to.port(), response_port.unwrap_or(src.port()));
            match &cfg.rfc5780 {
                None => assert_eq!(from, local),
                Some(r5) => {
                    let all = r5.addresses();
                    assert!(all.contains(&from), "from {from}; {}", ctx());
                    assert_eq!(
                        from.ip() != local.ip(),
                        change & stun::change::IP != 0,
                        "{}",
                        ctx()
                    );
                    assert_eq!(
                        from.port() != local.port(),
                        change & stun::change::PORT != 0
                    );
                    let (origin, other) = if q.has_cookie() {
                        (attr::RESPONSE_ORIGIN, attr::OTHER_ADDRESS)
                    } else {
                        (attr::SOURCE_ADDRESS, attr::CHANGED_ADDRESS)
                    };
                    assert_eq!(m.address(origin), Some(from));
                    let other = m.address(other).expect("OTHER-ADDRESS");
                    assert!(all.contains(&other));
                    assert!(other.ip() != local.ip() && other.port() != local.port());
                }
            }
            if amp > stats.max_success_amp.0 {
                stats.max_success_amp = (amp, req.len(), len);
            }
        }
        ReplyClass::BadRequest | ReplyClass::UnknownAttribute => {
            assert_eq!(m.class(), Class::ErrorResponse);
            assert_eq!(from, local);
            assert_eq!(to, src);
            let (code, _) = m.error_code().expect("ERROR-CODE");
            if class == ReplyClass::BadRequest {
                stats.e400 += 1;
                assert_eq!(want, Expect::E400, "{}", ctx());
                assert_eq!(code, 400);
            } else {
                stats.e420 += 1;
                assert_eq!(code, 420);
                let listed: Vec<u16> = m
                    .attribute(attr::UNKNOWN_ATTRIBUTES)
                    .expect("UNKNOWN-ATTRIBUTES")
                    .chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                assert_eq!(want, Expect::E420(listed), "{}", ctx());
            }
            assert!(
                amp <= 2.0,
                "error reply of {len} bytes to {} bytes ({amp:.2}x); {}",
                req.len(),
                ctx()
            );
            if amp > stats.max_error_amp.0 {
                stats.max_error_amp = (amp, req.len(), len);
            }
        }
    }
}

fn sources() -> Vec<SocketAddr> {
    [
        "192.0.2.1:32853",
        "203.0.113.200:1",
        "198.51.100.7:65535",
        "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
        "[fe80::1]:3478",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect()
}

/// Unanswerable sources (port 0), drawn rarely.
fn port_zero_sources() -> [SocketAddr; 2] {
    ["10.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()]
}

fn rfc5780() -> Rfc5780 {
    Rfc5780 {
        primary: "192.0.2.10:3478".parse().unwrap(),
        alternate: "192.0.2.11:3479".parse().unwrap(),
    }
}

fn run(name: &str, cfg: ResponderConfig, seed: u64) -> Stats {
    let iters = std::env::var("STUN_PROPS_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_ITERS);
    let seed = std::env::var("STUN_PROPS_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(seed, |s| s ^ seed);
    let locals: Vec<SocketAddr> = match &cfg.rfc5780 {
        Some(r) => r.addresses().to_vec(),
        None => vec!["192.0.2.10:3478".parse().unwrap()],
    };
    let r = BindingResponder::new(cfg);
    let srcs = sources();
    let zero = port_zero_sources();
    let mut rng = Rng(seed);
    let mut p = Vec::with_capacity(4096);
    let mut scratch = Vec::new();
    let mut out = [0u8; MAX_RESPONSE];
    let mut stats = Stats::default();
    let started = Instant::now();
    for _ in 0..iters {
        datagram(&mut rng, &mut p, &mut scratch);
        let src = if rng.one_in(32) {
            rng.pick(&zero)
        } else {
            rng.pick(&srcs)
        };
        let local = rng.pick(&locals);
        let cap = if rng.one_in(64) {
            rng.below(MAX_RESPONSE)
        } else {
            MAX_RESPONSE
        };
        check_one(&r, &p, src, local, &mut out[..cap], &mut stats);
    }
    let took = started.elapsed();
    eprintln!(
        "{name}: {} datagrams in {:.2?} (seed {seed:#x}): {} replies \
         ({} success, {} 400, {} 420, {} with FINGERPRINT), drops {:?}; max error amplification \
         {:.3}x ({} -> {} bytes), max success amplification {:.3}x ({} -> {} bytes)",
        stats.datagrams,
        took,
        stats.replies,
        stats.success,
        stats.e400,
        stats.e420,
        stats.fingerprinted,
        stats.drops,
        stats.max_error_amp.0,
        stats.max_error_amp.1,
        stats.max_error_amp.2,
        stats.max_success_amp.0,
        stats.max_success_amp.1,
        stats.max_success_amp.2,
    );
    // The generator must reach every branch, or the run proves little.
    let floor = stats.datagrams / 1000;
    assert!(stats.success > floor, "{stats:?}");
    assert!(stats.e400 > floor, "{stats:?}");
    assert!(stats.e420 > floor, "{stats:?}");
    assert!(stats.fingerprinted > stats.replies / 10, "{stats:?}");
    for reason in [
        "truncated",
        "not_stun",
        "bad_length",
        "attribute_overflow",
        "bad_fingerprint",
        "attribute_after_fingerprint",
        "not_request",
        "bad_source",
    ] {
        assert!(
            stats.drops.get(reason).copied().unwrap_or(0) > floor / 10,
            "{reason}: {stats:?}"
        );
    }
    stats
}

#[test]
fn random_datagrams_default() {
    let s = run("default", ResponderConfig::default(), 0xD5A1);
    assert!(s.drops.get("bad_cookie").copied().unwrap_or(0) > 0);
    assert!(s.max_error_amp.0 <= 1.5);
}

#[test]
fn random_datagrams_legacy() {
    let cfg = ResponderConfig {
        legacy: true,
        ..Default::default()
    };
    run("legacy", cfg, 0x1E6AC7);
}

#[test]
fn random_datagrams_rfc5780_software() {
    let cfg = ResponderConfig {
        software: Some("stun-server 0.1.0 (props)".into()),
        rfc5780: Some(rfc5780()),
        ..Default::default()
    };
    run("rfc5780+software", cfg, 0x5780);
}

#[test]
fn random_datagrams_everything() {
    // Longest possible SOFTWARE (127 characters) on every reply.
    let cfg = ResponderConfig {
        software: Some("s".repeat(127)),
        legacy: true,
        rfc5780: Some(rfc5780()),
    };
    run("legacy+rfc5780+software", cfg, 0xA11);
}

// ------------------------------------------------------- fixed properties

fn respond(cfg: ResponderConfig, req: &[u8], src: SocketAddr) -> (Outcome, Vec<u8>) {
    let mut out = [0u8; MAX_RESPONSE];
    let local: SocketAddr = match &cfg.rfc5780 {
        Some(r) => r.primary,
        None => "192.0.2.10:3478".parse().unwrap(),
    };
    let o = BindingResponder::new(cfg).respond(req, src, local, &mut out);
    let len = match o {
        Outcome::Reply { len, .. } => len,
        Outcome::Drop(_) => 0,
    };
    (o, out[..len].to_vec())
}

#[test]
fn bare_request_gets_32_bytes() {
    let mut buf = [0u8; 20];
    let n = binding_request(&mut buf, &[7; 12], 0, None, false).unwrap();
    assert_eq!(n, 20);
    let v4: SocketAddr = "192.0.2.1:32853".parse().unwrap();
    let (o, resp) = respond(ResponderConfig::default(), &buf, v4);
    assert!(matches!(
        o,
        Outcome::Reply {
            len: 32,
            class: ReplyClass::Success,
            ..
        }
    ));
    assert_eq!(
        Message::parse(&resp, false).unwrap().xor_mapped_address(),
        Some(v4)
    );
    // IPv6 needs 12 more bytes of address; FINGERPRINT echoes 8 bytes.
    let v6: SocketAddr = "[2001:db8::1]:5".parse().unwrap();
    assert_eq!(respond(ResponderConfig::default(), &buf, v6).1.len(), 44);
    let mut buf = [0u8; 28];
    binding_request(&mut buf, &[7; 12], 0, None, true).unwrap();
    assert_eq!(respond(ResponderConfig::default(), &buf, v4).1.len(), 40);
}

#[test]
fn error_replies_stay_small_with_software() {
    // The smallest requests that draw each error, under the configuration
    // with the most to add: SOFTWARE must not ride on error replies.
    let cfg = ResponderConfig {
        software: Some("s".repeat(127)),
        legacy: true,
        rfc5780: Some(rfc5780()),
    };
    let src: SocketAddr = "192.0.2.1:32853".parse().unwrap();
    let tid = [1u8; 12];
    let mut buf = [0u8; 64];
    // 400: another method (Allocate), 20 bytes.
    let allocate = message_type(0x003, Class::Request);
    let n = MessageWriter::with_transaction_id(&mut buf, allocate, &tid)
        .unwrap()
        .finish();
    let (o, resp) = respond(cfg.clone(), &buf[..n], src);
    assert!(matches!(
        o,
        Outcome::Reply {
            class: ReplyClass::BadRequest,
            ..
        }
    ));
    assert!(resp.len() * 2 <= n * 3, "{} -> {}", n, resp.len());
    // 420: one unknown attribute, 24 bytes.
    let mut w = MessageWriter::with_transaction_id(&mut buf, BINDING_REQUEST, &tid).unwrap();
    w.attribute(0x0777, &[]).unwrap();
    let n = w.finish();
    let (o, resp) = respond(cfg.clone(), &buf[..n], src);
    assert!(matches!(
        o,
        Outcome::Reply {
            class: ReplyClass::UnknownAttribute,
            ..
        }
    ));
    assert!(resp.len() * 2 <= n * 3, "{} -> {}", n, resp.len());
    // 400: CHANGE-REQUEST of length 0, 24 bytes.
    let mut w = MessageWriter::with_transaction_id(&mut buf, BINDING_REQUEST, &tid).unwrap();
    w.attribute(attr::CHANGE_REQUEST, &[]).unwrap();
    let n = w.finish();
    let (o, resp) = respond(cfg, &buf[..n], src);
    assert!(matches!(
        o,
        Outcome::Reply {
            class: ReplyClass::BadRequest,
            ..
        }
    ));
    assert!(resp.len() * 2 <= n * 3, "{} -> {}", n, resp.len());
}

mod stun_rs_clients {
    //! Requests as `stun-rs` builds them, answers as `stun-rs` reads them.
    use super::*;
    use stun_rs::attributes::discovery::{
        ChangeRequest, ChangeRequestFlags, OtherAddress, ResponseOrigin, ResponsePort,
    };
    use stun_rs::attributes::ice::{IceControlling, Priority, UseCandidate};
    use stun_rs::attributes::stun::{
        ErrorCode, Fingerprint, MessageIntegrity, Software, UnknownAttributes, UserName,
        XorMappedAddress,
    };
    use stun_rs::methods::BINDING;
    use stun_rs::{
        DecoderContextBuilder, HMACKey, MessageClass, MessageDecoderBuilder, MessageEncoderBuilder,
        StunMessage, StunMessageBuilder, TransactionId,
    };

    fn encode(msg: &StunMessage) -> Vec<u8> {
        let mut buf = [0u8; 1024];
        let n = MessageEncoderBuilder::default()
            .build()
            .encode(&mut buf, msg)
            .unwrap();
        buf[..n].to_vec()
    }

    fn decode(bytes: &[u8]) -> StunMessage {
        let ctx = DecoderContextBuilder::default().with_validation().build();
        MessageDecoderBuilder::default()
            .with_context(ctx)
            .build()
            .decode(bytes)
            .unwrap_or_else(|e| panic!("stun-rs rejects {bytes:02x?}: {e:?}"))
            .0
    }

    fn request(tid: [u8; 12]) -> StunMessageBuilder {
        StunMessageBuilder::new(BINDING, MessageClass::Request)
            .with_transaction_id(TransactionId::from(tid))
    }

    #[test]
    fn ice_check_is_answered() {
        let key = HMACKey::new_short_term("VOkJxbRl1RmTxUk/WvJxBt").unwrap();
        let req = encode(
            &request([3; 12])
                .with_attribute(UserName::new("evtj:h6vY").unwrap())
                .with_attribute(Priority::new(0x6e0001ff))
                .with_attribute(IceControlling::new(42))
                .with_attribute(UseCandidate::default())
                .with_attribute(MessageIntegrity::new(key))
                .with_attribute(Fingerprint::default())
                .build(),
        );
        let src: SocketAddr = "[2001:db8::7]:50000".parse().unwrap();
        let cfg = ResponderConfig {
            software: Some("stun-server".into()),
            ..Default::default()
        };
        let (o, resp) = respond(cfg, &req, src);
        assert!(matches!(
            o,
            Outcome::Reply {
                class: ReplyClass::Success,
                ..
            }
        ));
        let m = decode(&resp);
        assert_eq!(m.class(), MessageClass::SuccessResponse);
        assert_eq!(m.transaction_id().as_bytes(), &[3; 12]);
        let x = m.get::<XorMappedAddress>().unwrap();
        assert_eq!(x.expect_xor_mapped_address().socket_address(), &src);
        assert_eq!(
            m.get::<Software>().unwrap().expect_software().as_str(),
            "stun-server"
        );
        assert!(m.get::<Fingerprint>().is_some());
    }

    #[test]
    fn rfc5780_requests_are_answered() {
        // stun-rs sends RESPONSE-PORT with length 2 (as stuntman does);
        // that is a valid request and must not draw a 400.
        let src: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let r5 = rfc5780();
        let cfg = ResponderConfig {
            rfc5780: Some(r5),
            ..Default::default()
        };
        use ChangeRequestFlags::{ChangeIp, ChangePort};
        let cases = [
            (None, SocketAddr::new(r5.primary.ip(), r5.primary.port())),
            (
                Some(ChangeRequest::new(Some(ChangePort.into()))),
                SocketAddr::new(r5.primary.ip(), r5.alternate.port()),
            ),
            (
                Some(ChangeRequest::new(Some(ChangeIp.into()))),
                SocketAddr::new(r5.alternate.ip(), r5.primary.port()),
            ),
            (
                Some(ChangeRequest::new(Some(ChangeIp | ChangePort))),
                r5.alternate,
            ),
        ];
        for (cr, want_from) in cases {
            for port in [None, Some(40000u16)] {
                let mut b = request([9; 12]);
                if let Some(cr) = cr {
                    b = b.with_attribute(cr);
                }
                if let Some(p) = port {
                    b = b.with_attribute(ResponsePort::new(p));
                }
                let req = encode(&b.with_attribute(Fingerprint::default()).build());
                let (o, resp) = respond(cfg.clone(), &req, src);
                let Outcome::Reply {
                    class, to, from, ..
                } = o
                else {
                    panic!("dropped: {o:?}");
                };
                assert_eq!(class, ReplyClass::Success, "{req:02x?}");
                assert_eq!(from, want_from);
                assert_eq!(to, SocketAddr::new(src.ip(), port.unwrap_or(src.port())));
                let m = decode(&resp);
                let origin = m.get::<ResponseOrigin>().unwrap();
                assert_eq!(origin.expect_response_origin().socket_address(), &from);
                let other = m.get::<OtherAddress>().unwrap();
                assert_eq!(other.expect_other_address().socket_address(), &r5.alternate);
            }
        }
    }

    #[test]
    fn unknown_attribute_gets_420() {
        // stun-rs cannot encode an unknown attribute; append one by hand
        // and re-frame (no FINGERPRINT).
        let mut req = encode(&request([5; 12]).build());
        req.extend_from_slice(&[0x00, 0x2F, 0x00, 0x01, 0xAA, 0, 0, 0]);
        req[2..4].copy_from_slice(&8u16.to_be_bytes());
        let src: SocketAddr = "192.0.2.1:32853".parse().unwrap();
        let (o, resp) = respond(ResponderConfig::default(), &req, src);
        assert!(matches!(
            o,
            Outcome::Reply {
                class: ReplyClass::UnknownAttribute,
                ..
            }
        ));
        let m = decode(&resp);
        assert_eq!(m.class(), MessageClass::ErrorResponse);
        let e = m.get::<ErrorCode>().unwrap();
        assert_eq!(e.expect_error_code().error_code().error_code(), 420);
        let u = m.get::<UnknownAttributes>().unwrap();
        assert_eq!(u.expect_unknown_attributes().attributes(), &[0x002F]);
    }
}

#[test]
fn classic_and_cookie_share_nothing() {
    // Sanity for the model: a classic request in a non-legacy server is a
    // framing drop, in a legacy server an answer with MAPPED-ADDRESS only.
    let mut rng = Rng(1);
    let mut p = Vec::new();
    header(&mut rng, &mut p, true);
    set_length_field(&mut p);
    let src: SocketAddr = "192.0.2.1:32853".parse().unwrap();
    let (o, _) = respond(ResponderConfig::default(), &p, src);
    assert_eq!(o, Outcome::Drop(DropReason::Frame(FrameError::BadCookie)));
    let legacy = ResponderConfig {
        legacy: true,
        ..Default::default()
    };
    let (o, resp) = respond(legacy, &p, src);
    assert!(matches!(o, Outcome::Reply { len: 32, .. }));
    let m = Message::parse(&resp, true).unwrap();
    assert!(!m.has_cookie());
    assert_eq!(m.address(attr::MAPPED_ADDRESS), Some(src));
    assert_eq!(m.xor_mapped_address(), None);
}
