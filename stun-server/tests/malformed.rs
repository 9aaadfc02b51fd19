//! Every class of bad input is dropped without an answer, counted under its
//! reason label in /metrics (and no other), and the server goes on
//! answering.

mod support;

use common::stun::{
    attr, fingerprint, message_type, method, Class, BINDING_ERROR, BINDING_REQUEST, BINDING_SUCCESS,
};
use support::*;

/// Every `reason` label the server exports.
const REASONS: [&str; 11] = [
    "truncated",
    "not_stun",
    "bad_cookie",
    "bad_length",
    "attribute_overflow",
    "bad_fingerprint",
    "attribute_after_fingerprint",
    "not_request",
    "bad_source",
    "rate_limited",
    "oversized",
];

fn dropped(reason: &str) -> String {
    format!("stun_dropped_total{{reason=\"{reason}\"}}")
}

/// Sends each of `datagrams`, checks each is counted under `reason`, then
/// checks the very next datagram we receive answers a valid request.
fn assert_dropped_as(reason: &str, datagrams: &[Vec<u8>]) {
    let s = server_v4(&[]);
    let text = s.metrics();
    for r in REASONS {
        assert_eq!(
            metric_value(&text, &dropped(r)),
            Some(0.0),
            "{r} in\n{text}"
        );
    }
    let sock = udp_socket([127, 0, 0, 1]);
    for (i, d) in datagrams.iter().enumerate() {
        sock.send_to(d, s.addr()).unwrap();
        s.wait_metric(&dropped(reason), ANSWER_TIMEOUT, |v| v >= (i + 1) as f64);
    }
    // One worker answers in order: had any bad datagram been answered,
    // that answer would arrive first.
    let req = binding_request(true);
    sock.send_to(&req, s.addr()).unwrap();
    let (b, _) = recv_any(&sock, ANSWER_TIMEOUT)
        .unwrap_or_else(|| panic!("no answer after {reason} input; log:\n{}", s.log()));
    assert_success_for(&b, &req);
    assert!(
        recv_any(&sock, SHORT).is_none(),
        "unexpected extra datagram"
    );

    let n = datagrams.len() as f64;
    s.expect_metric("stun_responses_total{class=\"success\"}", 1.0);
    s.expect_metric("stun_requests_total", n + 1.0);
    let text = s.metrics();
    for r in REASONS {
        let want = if r == reason { n } else { 0.0 };
        assert_eq!(
            metric_value(&text, &dropped(r)),
            Some(want),
            "reason {r} after {reason} input:\n{text}"
        );
    }
    for class in ["400", "420"] {
        let series = format!("stun_responses_total{{class=\"{class}\"}}");
        assert_eq!(metric_value(&text, &series), Some(0.0));
    }
}

fn valid() -> Vec<u8> {
    binding_request(true)
}

fn set_length(b: &mut [u8], len: u16) {
    b[2..4].copy_from_slice(&len.to_be_bytes());
}

#[test]
fn not_stun() {
    // First two bits set: RTP/RTCP, DTLS-looking bytes, or anything else.
    let mut rtp = vec![0x80, 0x60, 0x00, 0x01];
    rtp.resize(40, 0xAB);
    let mut b = valid();
    b[0] |= 0x40;
    assert_dropped_as("not_stun", &[rtp, b]);
}

#[test]
fn truncated() {
    let v = valid();
    assert_dropped_as(
        "truncated",
        &[v[..19].to_vec(), v[..1].to_vec(), Vec::new()],
    );
}

#[test]
fn bad_cookie() {
    let mut b = binding_request(false);
    b[4] ^= 0xFF;
    assert_dropped_as("bad_cookie", &[b]);
}

#[test]
fn length_not_matching_datagram() {
    // Says 8 bytes of attributes, has none.
    let mut short = binding_request(false);
    set_length(&mut short, 8);
    // Says none, carries 8 trailing bytes.
    let mut long = binding_request(false);
    long.extend_from_slice(&[0xC0, 0x01, 0, 4, 1, 2, 3, 4]);
    assert_dropped_as("bad_length", &[short, long]);
}

#[test]
fn length_not_multiple_of_4() {
    let mut b = binding_request(false);
    b.extend_from_slice(&[0xC0, 0x01]);
    set_length(&mut b, 2);
    let mut c = binding_request(false);
    c.extend_from_slice(&[0xC0, 0x01, 0x00, 0x01, 0x55, 0, 0]);
    set_length(&mut c, 7);
    assert_dropped_as("bad_length", &[b, c]);
}

#[test]
fn attribute_overflowing_message() {
    // An attribute claiming 100 bytes in an 8-byte body.
    let mut b = binding_request(false);
    b.extend_from_slice(&[0xC0, 0x01, 0x00, 100, 1, 2, 3, 4]);
    set_length(&mut b, 8);
    // One whose padding runs past the end: 5 bytes need 8.
    let mut c = binding_request(false);
    c.extend_from_slice(&[0x80, 0x22, 0x00, 5, b'a', b'b', b'c', b'd']);
    set_length(&mut c, 8);
    assert_dropped_as("attribute_overflow", &[b, c]);
}

#[test]
fn wrong_fingerprint() {
    let mut b = valid();
    let last = b.len() - 1;
    b[last] ^= 0x01;
    // Right CRC, wrong length (FINGERPRINT is exactly 4 bytes).
    let mut c = binding_request(false);
    let fp = fingerprint(&{
        let mut h = c.clone();
        set_length(&mut h, 12);
        h
    });
    c.extend_from_slice(&[0x80, 0x28, 0x00, 0x08]);
    c.extend_from_slice(&fp.to_be_bytes());
    c.extend_from_slice(&fp.to_be_bytes());
    set_length(&mut c, 12);
    assert_dropped_as("bad_fingerprint", &[b, c]);
}

#[test]
fn attribute_after_fingerprint() {
    // A correct FINGERPRINT (computed with the final length field, as a
    // receiver checks it) followed by another attribute.
    let mut b = binding_request(false);
    set_length(&mut b, 16);
    let fp = fingerprint(&b);
    b.extend_from_slice(&[0x80, 0x28, 0x00, 0x04]);
    b.extend_from_slice(&fp.to_be_bytes());
    b.extend_from_slice(&[0x80, 0x22, 0x00, 0x04, b'a', b'f', b't', b'r']);
    assert_eq!(b.len(), 36);
    assert_dropped_as("attribute_after_fingerprint", &[b]);
}

#[test]
fn responses_and_indications() {
    let tid = transaction_id();
    let mut xma = [0u8; 8];
    xma[1] = 1;
    let success = build_message(
        BINDING_SUCCESS,
        &tid,
        &[(attr::XOR_MAPPED_ADDRESS, &xma)],
        true,
    );
    let error = build_message(
        BINDING_ERROR,
        &tid,
        &[(attr::ERROR_CODE, &[0, 0, 4, 0])],
        false,
    );
    let indication = build_message(
        message_type(method::BINDING, Class::Indication),
        &transaction_id(),
        &[],
        false,
    );
    assert_eq!(u16::from_be_bytes([indication[0], indication[1]]), 0x0011);
    // An indication of another method is not answered either.
    let other_indication = build_message(message_type(0x006, Class::Indication), &tid, &[], true);
    assert_dropped_as(
        "not_request",
        &[success, error, indication, other_indication],
    );
}

#[test]
fn oversized_datagram() {
    // Bigger than the server's 2 KiB receive buffer.
    let mut b = build_message(
        BINDING_REQUEST,
        &transaction_id(),
        &[(0xC001, &[7; 3000])],
        false,
    );
    assert!(b.len() > 3000);
    b.truncate(3020);
    assert_dropped_as("oversized", &[b]);
}
