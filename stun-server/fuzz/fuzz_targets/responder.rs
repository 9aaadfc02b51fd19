//! Arbitrary datagrams through `Message::parse` and
//! `BindingResponder::respond`. The first byte picks the configuration,
//! the local address and the source; the second may ask for the datagram's
//! length field to be set, or a valid FINGERPRINT appended (which a fuzzer
//! cannot compute); the rest is the datagram.
//!
//! Beyond "no panic", every reply must fit its buffer, parse back as a
//! response of the request's method and transaction, and an error reply
//! must not be more than twice the request's size.

#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;

use common::stun::{attr, Class, Message, HEADER_LEN};
use libfuzzer_sys::fuzz_target;
use stun_server::responder::{
    BindingResponder, Outcome, ReplyClass, ResponderConfig, Rfc5780, MAX_RESPONSE,
};

struct Fixture {
    /// All eight combinations of legacy, RFC 5780 and SOFTWARE.
    responders: Vec<BindingResponder>,
    locals: [SocketAddr; 4],
    sources: [SocketAddr; 8],
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let r5 = Rfc5780 {
            primary: "192.0.2.10:3478".parse().unwrap(),
            alternate: "192.0.2.11:3479".parse().unwrap(),
        };
        let responders = (0..8u8)
            .map(|c| {
                BindingResponder::new(ResponderConfig {
                    legacy: c & 1 != 0,
                    rfc5780: (c & 2 != 0).then_some(r5),
                    software: (c & 4 != 0).then(|| "s".repeat(127)),
                })
            })
            .collect();
        let sources = [
            "192.0.2.1:32853",
            "203.0.113.200:1",
            "198.51.100.7:65535",
            "10.0.0.1:0",
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
            "[::1]:9",
            "[fe80::1]:3478",
            "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535",
        ]
        .map(|s| s.parse().unwrap());
        Fixture {
            responders,
            locals: r5.addresses(),
            sources,
        }
    })
}

/// Touches every accessor of a parsed message.
fn walk(m: &Message<'_>) {
    let _ = (
        m.method(),
        m.class(),
        m.transaction_id(),
        m.has_fingerprint(),
    );
    for (t, v) in m.attributes() {
        assert!(v.len() <= m.bytes().len());
        let _ = common::stun::decode_address(v, Some(m.cookie_and_transaction()));
        let _ = t;
    }
    let _ = m.xor_mapped_address();
    let _ = m.address(attr::MAPPED_ADDRESS);
    let _ = m.error_code();
}

/// Sets the length field (trimming the body to a multiple of 4) and, if
/// `fingerprint`, appends a valid FINGERPRINT.
fn frame(raw: &[u8], fingerprint: bool) -> Vec<u8> {
    let body = (raw.len() - HEADER_LEN) & !3;
    let mut p = raw[..HEADER_LEN + body].to_vec();
    let total = body + if fingerprint { 8 } else { 0 };
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    if fingerprint {
        let fp = common::stun::fingerprint(&p);
        p.extend_from_slice(&attr::FINGERPRINT.to_be_bytes());
        p.extend_from_slice(&4u16.to_be_bytes());
        p.extend_from_slice(&fp.to_be_bytes());
    }
    p
}

fuzz_target!(|data: &[u8]| {
    let [sel, fix, raw @ ..] = data else {
        return;
    };
    let (sel, fix) = (*sel, *fix);
    let framed;
    let req = if fix & 3 != 0 && raw.len() >= HEADER_LEN && raw.len() <= 0xFFF0 {
        framed = frame(raw, fix & 2 != 0);
        &framed[..]
    } else {
        raw
    };
    let f = fixture();
    let r = &f.responders[(sel & 7) as usize];
    let local = f.locals[((sel >> 3) & 3) as usize];
    let src = f.sources[(sel >> 5) as usize];

    for classic in [false, true] {
        if let Ok(m) = Message::parse(req, classic) {
            walk(&m);
        }
    }

    let mut out = [0u8; MAX_RESPONSE];
    let Outcome::Reply { len, class, to, .. } = r.respond(req, src, local, &mut out) else {
        return;
    };
    let legacy = r.config().legacy;
    assert!(len <= out.len());
    let q = Message::parse(req, legacy).expect("answered an unparseable request");
    let m = Message::parse(&out[..len], legacy).expect("reply does not parse");
    walk(&m);
    assert_eq!(m.cookie_and_transaction(), q.cookie_and_transaction());
    assert_eq!(m.method(), q.method());
    assert_eq!(m.has_fingerprint(), q.has_fingerprint());
    assert_eq!(to.ip(), src.ip());
    match class {
        ReplyClass::Success => {
            assert_eq!(m.class(), Class::SuccessResponse);
            if q.has_cookie() {
                assert_eq!(m.xor_mapped_address(), Some(src));
            } else {
                assert_eq!(m.address(attr::MAPPED_ADDRESS), Some(src));
            }
        }
        ReplyClass::BadRequest | ReplyClass::UnknownAttribute => {
            assert_eq!(m.class(), Class::ErrorResponse);
            let (code, _) = m.error_code().expect("ERROR-CODE");
            assert_eq!(code == 420, class == ReplyClass::UnknownAttribute);
            assert!(len * 2 <= req.len() * 4, "{} -> {len}", req.len());
        }
    }
});
