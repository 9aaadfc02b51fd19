//! Binding requests over IPv4 and IPv6: the exact success layout,
//! FINGERPRINT echo, SOFTWARE, --legacy (RFC 3489 clients), several
//! workers.

mod support;

use std::net::{Ipv6Addr, SocketAddr, UdpSocket};

use common::stun::{attr, Message, BINDING_SUCCESS, MAGIC_COOKIE};
use support::*;

#[test]
fn bare_request_gets_exact_32_byte_success() {
    let s = server_v4(&[]);
    let sock = udp_socket([127, 0, 0, 1]);
    let req = binding_request(false);
    assert_eq!(req.len(), 20);
    let (b, from) = exchange(&sock, s.addr(), &req, ANSWER_TIMEOUT).expect("answer");
    assert_eq!(from, s.addr(), "answer leaves from the address asked");
    // Header + XOR-MAPPED-ADDRESS (4 + 8) and nothing else.
    assert_eq!(b.len(), 32, "{b:02x?}");
    assert_eq!(u16::from_be_bytes([b[0], b[1]]), BINDING_SUCCESS);
    assert_eq!(u16::from_be_bytes([b[2], b[3]]), 12);
    assert_eq!(b[4..8], MAGIC_COOKIE.to_be_bytes());
    assert_eq!(b[4..20], req[4..20]);
    let m = parse(&b);
    assert_eq!(attr_types(&m), vec![attr::XOR_MAPPED_ADDRESS]);
    assert_eq!(m.xor_mapped_address(), Some(sock.local_addr().unwrap()));
    assert!(!m.has_fingerprint());
    s.expect_metric("stun_responses_total{class=\"success\"}", 1.0);
}

#[test]
fn fingerprint_is_echoed() {
    let s = server_v4(&[]);
    let sock = udp_socket([127, 0, 0, 1]);
    let req = binding_request(true);
    let b = ask(&s, &sock, s.addr(), &req);
    assert_success_for(&b, &req);
    // parse() checks the CRC; also check it is the last attribute.
    let m = parse(&b);
    assert!(m.has_fingerprint());
    assert_eq!(
        attr_types(&m),
        vec![attr::XOR_MAPPED_ADDRESS, attr::FINGERPRINT]
    );
    assert_eq!(m.xor_mapped_address(), Some(sock.local_addr().unwrap()));
}

#[test]
fn software_flag_adds_software() {
    let s = server_v4(&["--software", "e2e-test 1.0"]);
    let sock = udp_socket([127, 0, 0, 1]);
    let req = binding_request(true);
    let b = ask(&s, &sock, s.addr(), &req);
    let m = parse(&b);
    assert_eq!(m.attribute(attr::SOFTWARE), Some(&b"e2e-test 1.0"[..]));
    assert_eq!(
        attr_types(&m),
        vec![attr::XOR_MAPPED_ADDRESS, attr::SOFTWARE, attr::FINGERPRINT]
    );
}

#[test]
fn legacy_adds_mapped_address_and_answers_rfc3489() {
    let s = server_v4(&["--legacy"]);
    let sock = udp_socket([127, 0, 0, 1]);
    let me = sock.local_addr().unwrap();

    // RFC 5389 request: both XOR-MAPPED-ADDRESS and MAPPED-ADDRESS.
    let req = binding_request(false);
    let b = ask(&s, &sock, s.addr(), &req);
    let m = parse(&b);
    assert_eq!(
        attr_types(&m),
        vec![attr::XOR_MAPPED_ADDRESS, attr::MAPPED_ADDRESS]
    );
    assert_eq!(m.xor_mapped_address(), Some(me));
    assert_eq!(m.address(attr::MAPPED_ADDRESS), Some(me));

    // RFC 3489 request: a 128-bit transaction ID, no magic cookie.
    let classic = rfc3489_request();
    let b = ask(&s, &sock, s.addr(), &classic);
    assert_eq!(&b[4..20], &classic[4..20], "128-bit transaction echoed");
    let m = Message::parse(&b, true).expect("classic framing");
    assert!(!m.has_cookie());
    assert_eq!(m.msg_type(), BINDING_SUCCESS);
    assert_eq!(attr_types(&m), vec![attr::MAPPED_ADDRESS]);
    assert_eq!(m.address(attr::MAPPED_ADDRESS), Some(me));
}

#[test]
fn rfc3489_request_is_dropped_without_legacy() {
    let s = server_v4(&[]);
    let sock = udp_socket([127, 0, 0, 1]);
    sock.send_to(&rfc3489_request(), s.addr()).unwrap();
    s.expect_metric("stun_dropped_total{reason=\"bad_cookie\"}", 1.0);
    let req = binding_request(false);
    sock.send_to(&req, s.addr()).unwrap();
    let (b, _) = recv_any(&sock, ANSWER_TIMEOUT).expect("answer");
    assert_success_for(&b, &req);
}

fn rfc3489_request() -> Vec<u8> {
    let mut r = vec![0x00, 0x01, 0x00, 0x00];
    r.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    r.extend_from_slice(&transaction_id());
    r
}

/// Binds [::1]:0, or None (with a note) when this machine has no IPv6
/// loopback: then there is nothing to test.
fn ipv6_socket() -> Option<UdpSocket> {
    match UdpSocket::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("skipping: no IPv6 loopback here ({e})");
            None
        }
    }
}

#[test]
fn ipv6_binding() {
    let Some(sock) = ipv6_socket() else { return };
    let s = server(&[
        "--listen",
        "[::1]:0",
        "--http",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--software",
        "v6",
    ]);
    assert!(
        s.addr().is_ipv6() && s.addr().ip().is_loopback(),
        "{:?}",
        s.udp
    );
    let me = sock.local_addr().unwrap();

    let req = binding_request(false);
    let (b, from) = exchange(&sock, s.addr(), &req, ANSWER_TIMEOUT).expect("answer");
    assert_eq!(from, s.addr());
    let m = parse(&b);
    assert_success_for(&b, &req);
    assert_eq!(m.xor_mapped_address(), Some(me));
    // XOR-MAPPED-ADDRESS for IPv6 is 4 + 20 bytes; SOFTWARE "v6" 4 + 4.
    assert_eq!(b.len(), 20 + 24 + 8);
    assert!(!m.has_fingerprint());

    let req = binding_request(true);
    let b = ask(&s, &sock, s.addr(), &req);
    let m = parse(&b);
    assert!(m.has_fingerprint());
    assert_eq!(m.xor_mapped_address(), Some(me));
    assert_eq!(m.attribute(attr::SOFTWARE), Some(&b"v6"[..]));

    // Malformed input over IPv6 is dropped too.
    sock.send_to(&req[..19], s.addr()).unwrap();
    s.expect_metric("stun_dropped_total{reason=\"truncated\"}", 1.0);
    s.expect_metric("stun_responses_total{class=\"success\"}", 2.0);
}

#[test]
fn ipv6_legacy_mapped_address() {
    let Some(sock) = ipv6_socket() else { return };
    let s = server(&["--listen", "[::1]:0", "--workers", "1", "--legacy"]);
    let me = sock.local_addr().unwrap();
    let req = binding_request(false);
    let b = ask(&s, &sock, s.addr(), &req);
    let m = parse(&b);
    assert_eq!(m.xor_mapped_address(), Some(me));
    assert_eq!(m.address(attr::MAPPED_ADDRESS), Some(me));
}

#[test]
fn v4_and_v6_on_one_server() {
    let Some(sock6) = ipv6_socket() else { return };
    let s = server(&[
        "--listen",
        "127.0.0.1:0",
        "--listen",
        "[::1]:0",
        "--workers",
        "1",
    ]);
    assert_eq!(s.udp.len(), 2, "{}", s.log());
    let (v4, v6) = (s.udp[0], s.udp[1]);
    assert!(v4.is_ipv4() && v6.is_ipv6());
    let sock4 = udp_socket([127, 0, 0, 1]);
    for (sock, to) in [(&sock4, v4), (&sock6, v6)] {
        let req = binding_request(false);
        let b = ask(&s, sock, to, &req);
        assert_eq!(
            parse(&b).xor_mapped_address(),
            Some(sock.local_addr().unwrap())
        );
    }
}

#[test]
fn three_workers_start_and_serve() {
    let s = server(&[
        "--listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--workers",
        "3",
    ]);
    assert!(s.log().contains("(3 workers)"), "{}", s.log());
    let workers = metric_samples(&s.metrics(), "stun_worker_requests_total");
    assert_eq!(workers.len(), 3, "{workers:?}");
    for (i, (labels, _)) in workers.iter().enumerate() {
        assert_eq!(
            labels,
            &format!("worker=\"{i}\",listen=\"{}\"", s.addr()),
            "{workers:?}"
        );
    }
    // Many sources (ports): whichever socket of the group gets them, all
    // are answered.
    let socks: Vec<_> = (0..12).map(|_| udp_socket([127, 0, 0, 1])).collect();
    for sock in &socks {
        let req = binding_request(false);
        let b = ask(&s, sock, s.addr(), &req);
        assert_eq!(
            parse(&b).xor_mapped_address(),
            Some(sock.local_addr().unwrap())
        );
    }
    s.expect_metric("stun_responses_total{class=\"success\"}", 12.0);
    s.expect_metric("stun_requests_total", 12.0);
}
