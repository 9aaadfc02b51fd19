//! Error responses: 420 for unknown comprehension-required attributes
//! (listed in UNKNOWN-ATTRIBUTES), 400 for other methods and malformed
//! RFC 5780 attributes; unknown comprehension-optional attributes are
//! ignored.

mod support;

use common::stun::{attr, message_type, method, Class, Message, BINDING_REQUEST};
use support::*;

const ALLOCATE: u16 = 0x003;

/// Checks `b` is an error response to `req` with `code` for `method`,
/// and returns the UNKNOWN-ATTRIBUTES list.
fn assert_error(b: &[u8], req: &[u8], method: u16, code: u16) -> Vec<u16> {
    let m = parse(b);
    assert_eq!(m.class(), Class::ErrorResponse, "{b:02x?}");
    assert_eq!(m.method(), method);
    assert_eq!(&b[4..20], &req[4..20]);
    assert_eq!(m.error_code().map(|(c, _)| c), Some(code), "{b:02x?}");
    unknown_attributes(&m)
}

fn unknown_attributes(m: &Message<'_>) -> Vec<u16> {
    m.attribute(attr::UNKNOWN_ATTRIBUTES)
        .map(|v| {
            v.chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn unknown_comprehension_required_gets_420() {
    let s = server_v4(&["--software", "sw"]);
    let sock = udp_socket([127, 0, 0, 1]);
    let req = build_message(
        BINDING_REQUEST,
        &transaction_id(),
        &[(0x0777, b"abcd")],
        false,
    );
    let b = ask(&s, &sock, s.addr(), &req);
    assert_eq!(assert_error(&b, &req, method::BINDING, 420), vec![0x0777]);
    assert_eq!(
        u16::from_be_bytes([b[0], b[1]]),
        message_type(method::BINDING, Class::ErrorResponse)
    );
    // Only ERROR-CODE and UNKNOWN-ATTRIBUTES: no SOFTWARE on errors.
    assert_eq!(
        attr_types(&parse(&b)),
        vec![attr::ERROR_CODE, attr::UNKNOWN_ATTRIBUTES]
    );

    // Several unknown ones, a duplicate, FINGERPRINT and SOFTWARE: each is
    // listed once and FINGERPRINT is echoed.
    let req = build_message(
        BINDING_REQUEST,
        &transaction_id(),
        &[
            (0x0777, b""),
            (0xC001, b"xx"),
            (0x0778, b"12345"),
            (0x0777, b"again"),
        ],
        true,
    );
    let b = ask(&s, &sock, s.addr(), &req);
    assert_eq!(
        assert_error(&b, &req, method::BINDING, 420),
        vec![0x0777, 0x0778]
    );
    assert_eq!(
        attr_types(&parse(&b)),
        vec![
            attr::ERROR_CODE,
            attr::UNKNOWN_ATTRIBUTES,
            attr::FINGERPRINT
        ]
    );
    s.expect_metric("stun_responses_total{class=\"420\"}", 2.0);
    s.expect_metric("stun_responses_total{class=\"success\"}", 0.0);
}

#[test]
fn unknown_comprehension_optional_is_ignored() {
    let s = server_v4(&[]);
    let sock = udp_socket([127, 0, 0, 1]);
    let req = build_message(
        BINDING_REQUEST,
        &transaction_id(),
        &[(0xC001, b"optional"), (0xFFFF, b"")],
        true,
    );
    let b = ask(&s, &sock, s.addr(), &req);
    assert_success_for(&b, &req);
    let m = parse(&b);
    assert_eq!(m.xor_mapped_address(), Some(sock.local_addr().unwrap()));
    assert!(m.has_fingerprint());
}

#[test]
fn known_request_attributes_are_accepted() {
    // What ICE connectivity checks carry (RFC 8445), unauthenticated here.
    let s = server_v4(&[]);
    let sock = udp_socket([127, 0, 0, 1]);
    let req = build_message(
        BINDING_REQUEST,
        &transaction_id(),
        &[
            (attr::USERNAME, b"a:b"),
            (attr::PRIORITY, &[0x6e, 0, 1, 0xff]),
            (attr::ICE_CONTROLLING, &[1; 8]),
            (attr::USE_CANDIDATE, b""),
            (attr::MESSAGE_INTEGRITY, &[0; 20]),
        ],
        true,
    );
    let b = ask(&s, &sock, s.addr(), &req);
    assert_success_for(&b, &req);
}

#[test]
fn rfc5780_attributes_without_alternate_get_420() {
    let s = server_v4(&[]);
    let sock = udp_socket([127, 0, 0, 1]);
    let req = build_message(
        BINDING_REQUEST,
        &transaction_id(),
        &[(attr::CHANGE_REQUEST, &[0, 0, 0, 6])],
        false,
    );
    let b = ask(&s, &sock, s.addr(), &req);
    assert_eq!(
        assert_error(&b, &req, method::BINDING, 420),
        vec![attr::CHANGE_REQUEST]
    );
    let req = build_message(
        BINDING_REQUEST,
        &transaction_id(),
        &[(attr::RESPONSE_PORT, &[0x12, 0x34, 0, 0])],
        false,
    );
    let b = ask(&s, &sock, s.addr(), &req);
    assert_eq!(
        assert_error(&b, &req, method::BINDING, 420),
        vec![attr::RESPONSE_PORT]
    );
}

#[test]
fn other_method_gets_400() {
    let s = server_v4(&["--software", "sw"]);
    let sock = udp_socket([127, 0, 0, 1]);
    let req = build_message(
        message_type(ALLOCATE, Class::Request),
        &transaction_id(),
        &[],
        true,
    );
    assert_eq!(u16::from_be_bytes([req[0], req[1]]), 0x0003);
    let b = ask(&s, &sock, s.addr(), &req);
    assert_error(&b, &req, ALLOCATE, 400);
    assert_eq!(u16::from_be_bytes([b[0], b[1]]), 0x0113);
    let m = parse(&b);
    assert!(m.has_fingerprint());
    // Errors carry no SOFTWARE: they must stay small (amplification).
    assert_eq!(m.attribute(attr::SOFTWARE), None);
    assert_eq!(attr_types(&m), vec![attr::ERROR_CODE, attr::FINGERPRINT]);
    s.expect_metric("stun_responses_total{class=\"400\"}", 1.0);
}

#[test]
fn malformed_rfc5780_attributes_get_400() {
    let s = server(&[
        "--listen",
        "127.0.0.1:0",
        "--alternate",
        "127.0.0.2:0",
        "--workers",
        "1",
        "--http",
        "127.0.0.1:0",
    ]);
    let sock = udp_socket([127, 0, 0, 1]);
    let bad: [&[(u16, &[u8])]; 4] = [
        // CHANGE-REQUEST must be 4 bytes.
        &[(attr::CHANGE_REQUEST, &[0, 6])],
        // Twice.
        &[
            (attr::CHANGE_REQUEST, &[0, 0, 0, 0]),
            (attr::CHANGE_REQUEST, &[0, 0, 0, 0]),
        ],
        // RESPONSE-PORT is 4 bytes (or 2 without padding), and not port 0.
        &[(attr::RESPONSE_PORT, &[0x12, 0x34, 0])],
        &[(attr::RESPONSE_PORT, &[0, 0, 0, 0])],
    ];
    for attrs in bad {
        let req = build_message(BINDING_REQUEST, &transaction_id(), attrs, false);
        let b = ask(&s, &sock, s.addr(), &req);
        assert_eq!(
            assert_error(&b, &req, method::BINDING, 400),
            Vec::<u16>::new(),
            "for {attrs:?}"
        );
    }
    s.expect_metric("stun_responses_total{class=\"400\"}", 4.0);
}
