//! RFC 5769 test vectors against the running server: the sample request is
//! answered; the sample responses decode to the documented addresses and
//! are dropped (responses are never answered).

mod support;

use common::stun::{attr, Class, Message};
use support::*;

/// RFC 5769 section 2.1: Binding request with SOFTWARE, PRIORITY,
/// ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY and FINGERPRINT.
const SAMPLE_REQUEST: [u8; 108] = [
    0x00, 0x01, 0x00, 0x58, // Request type and message length
    0x21, 0x12, 0xa4, 0x42, // Magic cookie
    0xb7, 0xe7, 0xa7, 0x01, // Transaction ID
    0xbc, 0x34, 0xd6, 0x86, //
    0xfa, 0x87, 0xdf, 0xae, //
    0x80, 0x22, 0x00, 0x10, // SOFTWARE attribute header
    0x53, 0x54, 0x55, 0x4e, // "STUN test client"
    0x20, 0x74, 0x65, 0x73, //
    0x74, 0x20, 0x63, 0x6c, //
    0x69, 0x65, 0x6e, 0x74, //
    0x00, 0x24, 0x00, 0x04, // PRIORITY attribute header
    0x6e, 0x00, 0x01, 0xff, // ICE priority value
    0x80, 0x29, 0x00, 0x08, // ICE-CONTROLLED attribute header
    0x93, 0x2f, 0xf9, 0xb1, // Tie breaker
    0x51, 0x26, 0x3b, 0x36, //
    0x00, 0x06, 0x00, 0x09, // USERNAME attribute header
    0x65, 0x76, 0x74, 0x6a, // "evtj:h6vY" and padding
    0x3a, 0x68, 0x36, 0x76, //
    0x59, 0x20, 0x20, 0x20, //
    0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY attribute header
    0x9a, 0xea, 0xa7, 0x0c, // HMAC-SHA1
    0xbf, 0xd8, 0xcb, 0x56, //
    0x78, 0x1e, 0xf2, 0xb5, //
    0xb2, 0xd3, 0xf2, 0x49, //
    0xc1, 0xb5, 0x71, 0xa2, //
    0x80, 0x28, 0x00, 0x04, // FINGERPRINT attribute header
    0xe5, 0x7a, 0x3b, 0xcf, // CRC32 fingerprint
];

/// RFC 5769 section 2.2: IPv4 Binding success, mapped 192.0.2.1:32853.
const SAMPLE_IPV4_RESPONSE: [u8; 80] = [
    0x01, 0x01, 0x00, 0x3c, // Response type and message length
    0x21, 0x12, 0xa4, 0x42, // Magic cookie
    0xb7, 0xe7, 0xa7, 0x01, // Transaction ID
    0xbc, 0x34, 0xd6, 0x86, //
    0xfa, 0x87, 0xdf, 0xae, //
    0x80, 0x22, 0x00, 0x0b, // SOFTWARE attribute header
    0x74, 0x65, 0x73, 0x74, // "test vector "
    0x20, 0x76, 0x65, 0x63, //
    0x74, 0x6f, 0x72, 0x20, //
    0x00, 0x20, 0x00, 0x08, // XOR-MAPPED-ADDRESS attribute header
    0x00, 0x01, 0xa1, 0x47, // IPv4, xor'd port
    0xe1, 0x12, 0xa6, 0x43, // xor'd address
    0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY attribute header
    0x2b, 0x91, 0xf5, 0x99, // HMAC-SHA1
    0xfd, 0x9e, 0x90, 0xc3, //
    0x8c, 0x74, 0x89, 0xf9, //
    0x2a, 0xf9, 0xba, 0x53, //
    0xf0, 0x6b, 0xe7, 0xd7, //
    0x80, 0x28, 0x00, 0x04, // FINGERPRINT attribute header
    0xc0, 0x7d, 0x4c, 0x96, // CRC32 fingerprint
];

/// RFC 5769 section 2.3: IPv6 Binding success, mapped
/// [2001:db8:1234:5678:11:2233:4455:6677]:32853.
const SAMPLE_IPV6_RESPONSE: [u8; 92] = [
    0x01, 0x01, 0x00, 0x48, // Response type and message length
    0x21, 0x12, 0xa4, 0x42, // Magic cookie
    0xb7, 0xe7, 0xa7, 0x01, // Transaction ID
    0xbc, 0x34, 0xd6, 0x86, //
    0xfa, 0x87, 0xdf, 0xae, //
    0x80, 0x22, 0x00, 0x0b, // SOFTWARE attribute header
    0x74, 0x65, 0x73, 0x74, // "test vector "
    0x20, 0x76, 0x65, 0x63, //
    0x74, 0x6f, 0x72, 0x20, //
    0x00, 0x20, 0x00, 0x14, // XOR-MAPPED-ADDRESS attribute header
    0x00, 0x02, 0xa1, 0x47, // IPv6, xor'd port
    0x01, 0x13, 0xa9, 0xfa, // xor'd address
    0xa5, 0xd3, 0xf1, 0x79, //
    0xbc, 0x25, 0xf4, 0xb5, //
    0xbe, 0xd2, 0xb9, 0xd9, //
    0x00, 0x08, 0x00, 0x14, // MESSAGE-INTEGRITY attribute header
    0xa3, 0x82, 0x95, 0x4e, // HMAC-SHA1
    0x4b, 0xe6, 0x7b, 0xf1, //
    0x17, 0x84, 0xc9, 0x7c, //
    0x82, 0x92, 0xc2, 0x75, //
    0xbf, 0xe3, 0xed, 0x41, //
    0x80, 0x28, 0x00, 0x04, // FINGERPRINT attribute header
    0xc8, 0xfb, 0x0b, 0x4c, // CRC32 fingerprint
];

#[test]
fn vectors_are_typed_correctly() {
    // FINGERPRINT covers every byte before it, so a typo fails here.
    let req = Message::parse(&SAMPLE_REQUEST, false).expect("sample request frames");
    assert!(req.has_fingerprint());
    assert_eq!(req.class(), Class::Request);
    assert_eq!(
        req.attribute(attr::SOFTWARE),
        Some(&b"STUN test client"[..])
    );
    assert_eq!(req.attribute(attr::USERNAME), Some(&b"evtj:h6vY"[..]));
    assert_eq!(
        attr_types(&req),
        vec![
            attr::SOFTWARE,
            attr::PRIORITY,
            attr::ICE_CONTROLLED,
            attr::USERNAME,
            attr::MESSAGE_INTEGRITY,
            attr::FINGERPRINT
        ]
    );

    let v4 = Message::parse(&SAMPLE_IPV4_RESPONSE, false).expect("IPv4 sample frames");
    assert!(v4.has_fingerprint());
    assert_eq!(v4.class(), Class::SuccessResponse);
    assert_eq!(v4.attribute(attr::SOFTWARE), Some(&b"test vector"[..]));
    assert_eq!(
        v4.xor_mapped_address(),
        Some("192.0.2.1:32853".parse().unwrap())
    );

    let v6 = Message::parse(&SAMPLE_IPV6_RESPONSE, false).expect("IPv6 sample frames");
    assert!(v6.has_fingerprint());
    assert_eq!(v6.class(), Class::SuccessResponse);
    assert_eq!(
        v6.xor_mapped_address(),
        Some(
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                .parse()
                .unwrap()
        )
    );
}

#[test]
fn sample_request_is_answered_with_fingerprint() {
    let s = server_v4(&[]);
    let sock = udp_socket([127, 0, 0, 1]);
    let b = ask(&s, &sock, s.addr(), &SAMPLE_REQUEST);
    assert_success_for(&b, &SAMPLE_REQUEST);
    let m = parse(&b);
    assert!(m.has_fingerprint(), "request had FINGERPRINT: {b:02x?}");
    assert_eq!(m.xor_mapped_address(), Some(sock.local_addr().unwrap()));
    // The server does not authenticate, so it signs nothing.
    assert_eq!(m.attribute(attr::MESSAGE_INTEGRITY), None);
    s.expect_metric("stun_responses_total{class=\"success\"}", 1.0);
}

#[test]
fn sample_responses_are_dropped() {
    let s = server_v4(&[]);
    let sock = udp_socket([127, 0, 0, 1]);
    let series = "stun_dropped_total{reason=\"not_request\"}";
    assert_eq!(s.metric(series), 0.0);
    for (i, sample) in [&SAMPLE_IPV4_RESPONSE[..], &SAMPLE_IPV6_RESPONSE[..]]
        .iter()
        .enumerate()
    {
        sock.send_to(sample, s.addr()).unwrap();
        s.wait_metric(series, ANSWER_TIMEOUT, |v| v >= (i + 1) as f64);
    }
    // One worker handles datagrams in order: the next thing we receive is
    // the answer to this request, not to the samples.
    let req = binding_request(false);
    sock.send_to(&req, s.addr()).unwrap();
    let (b, _) = recv_any(&sock, ANSWER_TIMEOUT).expect("server still answers");
    assert_success_for(&b, &req);
    s.expect_metric("stun_requests_total", 3.0);
    s.expect_metric(series, 2.0);
    s.expect_metric("stun_responses_total{class=\"success\"}", 1.0);
}
