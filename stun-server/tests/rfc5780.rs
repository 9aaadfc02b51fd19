//! RFC 5780 NAT behaviour discovery with `--listen 127.0.0.1:0 --alternate
//! 127.0.0.2:0`: OTHER-ADDRESS and RESPONSE-ORIGIN, answers that really
//! leave from the changed IP and/or port, RESPONSE-PORT, requests to each
//! of the four addresses, and RFC 3489 clients.

mod support;

use std::net::SocketAddr;

use common::stun::{attr, binding_request as build_binding, change, Message, BINDING_SUCCESS};
use support::*;

struct Rfc5780Server {
    s: ServerProcess,
    primary: SocketAddr,
    alternate: SocketAddr,
}

impl Rfc5780Server {
    fn start(extra: &[&str]) -> Self {
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--alternate",
            "127.0.0.2:0",
            "--workers",
            "2",
            "--http",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let s = server(&args);
        let (primary, alternate) = s.rfc5780.expect("RFC 5780 enabled line");
        assert_eq!(primary.ip().to_string(), "127.0.0.1");
        assert_eq!(alternate.ip().to_string(), "127.0.0.2");
        assert_ne!(primary.port(), 0);
        assert_ne!(alternate.port(), 0);
        assert_ne!(primary.port(), alternate.port());
        Rfc5780Server {
            s,
            primary,
            alternate,
        }
    }

    /// (primary IP, alternate port), (alternate IP, primary port).
    fn mixed(&self) -> (SocketAddr, SocketAddr) {
        (
            SocketAddr::new(self.primary.ip(), self.alternate.port()),
            SocketAddr::new(self.alternate.ip(), self.primary.port()),
        )
    }
}

fn request(change_flags: u32, response_port: Option<u16>) -> Vec<u8> {
    let mut buf = [0u8; 64];
    let n = build_binding(
        &mut buf,
        &transaction_id(),
        change_flags,
        response_port,
        true,
    )
    .unwrap();
    buf[..n].to_vec()
}

#[test]
fn serves_all_four_addresses() {
    let r = Rfc5780Server::start(&[]);
    let (pa, ap) = r.mixed();
    let mut udp = r.s.udp.clone();
    udp.sort();
    let mut want = vec![r.primary, pa, ap, r.alternate];
    want.sort();
    assert_eq!(udp, want, "{}", r.s.log());
    // Every address answers from itself, with OTHER-ADDRESS the address
    // differing in both IP and port.
    let sock = udp_socket([127, 0, 0, 1]);
    for (to, other) in [
        (r.primary, r.alternate),
        (r.alternate, r.primary),
        (pa, ap),
        (ap, pa),
    ] {
        let req = request(0, None);
        let (b, from) = exchange(&sock, to, &req, ANSWER_TIMEOUT).expect("answer");
        assert_eq!(from, to);
        assert_success_for(&b, &req);
        let m = parse(&b);
        assert_eq!(m.xor_mapped_address(), Some(sock.local_addr().unwrap()));
        assert_eq!(m.address(attr::OTHER_ADDRESS), Some(other), "asked {to}");
        assert_eq!(m.address(attr::RESPONSE_ORIGIN), Some(to), "asked {to}");
        assert!(m.has_fingerprint());
    }
}

#[test]
fn plain_request_names_other_address_and_origin() {
    let r = Rfc5780Server::start(&[]);
    let sock = udp_socket([127, 0, 0, 1]);
    let req = request(0, None);
    let (b, from) = exchange(&sock, r.primary, &req, ANSWER_TIMEOUT).expect("answer");
    assert_eq!(from, r.primary);
    let m = parse(&b);
    assert_eq!(
        attr_types(&m),
        vec![
            attr::XOR_MAPPED_ADDRESS,
            attr::OTHER_ADDRESS,
            attr::RESPONSE_ORIGIN,
            attr::FINGERPRINT
        ]
    );
    assert_eq!(m.address(attr::OTHER_ADDRESS), Some(r.alternate));
    assert_eq!(m.address(attr::RESPONSE_ORIGIN), Some(r.primary));
}

#[test]
fn change_request_answers_from_changed_address() {
    let r = Rfc5780Server::start(&[]);
    let (pa, ap) = r.mixed();
    let sock = udp_socket([127, 0, 0, 1]);
    let me = sock.local_addr().unwrap();
    for (flags, want_from) in [
        (0, r.primary),
        (change::PORT, pa),
        (change::IP, ap),
        (change::IP | change::PORT, r.alternate),
    ] {
        let req = request(flags, None);
        let (b, from) = exchange(&sock, r.primary, &req, ANSWER_TIMEOUT)
            .unwrap_or_else(|| panic!("no answer for flags {flags:#x}; log:\n{}", r.s.log()));
        assert_eq!(
            from, want_from,
            "flags {flags:#x}: UDP source of the answer"
        );
        assert_success_for(&b, &req);
        let m = parse(&b);
        assert_eq!(
            m.address(attr::RESPONSE_ORIGIN),
            Some(from),
            "flags {flags:#x}"
        );
        assert_eq!(m.address(attr::OTHER_ADDRESS), Some(r.alternate));
        assert_eq!(m.xor_mapped_address(), Some(me));
    }
    r.s.expect_metric("stun_responses_total{class=\"success\"}", 4.0);
    r.s.expect_metric("stun_send_errors_total", 0.0);
}

#[test]
fn change_request_sent_to_alternate() {
    let r = Rfc5780Server::start(&[]);
    let (pa, ap) = r.mixed();
    let sock = udp_socket([127, 0, 0, 1]);
    for (flags, want_from) in [
        (0, r.alternate),
        (change::PORT, ap),
        (change::IP, pa),
        (change::IP | change::PORT, r.primary),
    ] {
        let req = request(flags, None);
        let (b, from) = exchange(&sock, r.alternate, &req, ANSWER_TIMEOUT).expect("answer");
        assert_eq!(from, want_from, "flags {flags:#x}");
        let m = parse(&b);
        assert_eq!(m.address(attr::RESPONSE_ORIGIN), Some(from));
        assert_eq!(m.address(attr::OTHER_ADDRESS), Some(r.primary));
    }
}

#[test]
fn request_to_alternate_names_primary_as_other() {
    let r = Rfc5780Server::start(&[]);
    let sock = udp_socket([127, 0, 0, 1]);
    let req = request(0, None);
    let (b, from) = exchange(&sock, r.alternate, &req, ANSWER_TIMEOUT).expect("answer");
    assert_eq!(from, r.alternate);
    let m = parse(&b);
    assert_eq!(m.address(attr::OTHER_ADDRESS), Some(r.primary));
    assert_eq!(m.address(attr::RESPONSE_ORIGIN), Some(r.alternate));
}

#[test]
fn response_port_sends_answer_to_other_port() {
    let r = Rfc5780Server::start(&[]);
    let sock = udp_socket([127, 0, 0, 1]);
    let other = udp_socket([127, 0, 0, 1]);
    let other_port = other.local_addr().unwrap().port();
    let req = request(0, Some(other_port));
    sock.send_to(&req, r.primary).unwrap();
    let (b, from) = recv_answer(&other, &req, ANSWER_TIMEOUT)
        .unwrap_or_else(|| panic!("nothing on port {other_port}; log:\n{}", r.s.log()));
    assert_eq!(from, r.primary);
    assert_success_for(&b, &req);
    let m = parse(&b);
    // The mapping is still that of the socket the request came from.
    assert_eq!(m.xor_mapped_address(), Some(sock.local_addr().unwrap()));
    assert!(
        recv_any(&sock, SHORT).is_none(),
        "answer also went to the source"
    );

    // Combined with CHANGE-REQUEST.
    let req = request(change::IP | change::PORT, Some(other_port));
    sock.send_to(&req, r.primary).unwrap();
    let (_, from) = recv_answer(&other, &req, ANSWER_TIMEOUT).expect("answer");
    assert_eq!(from, r.alternate);
}

#[test]
fn two_byte_response_port_is_accepted() {
    // Some clients (stuntman, stun-rs) send RESPONSE-PORT without padding.
    let r = Rfc5780Server::start(&[]);
    let sock = udp_socket([127, 0, 0, 1]);
    let other = udp_socket([127, 0, 0, 1]);
    let port = other.local_addr().unwrap().port().to_be_bytes();
    let req = build_message(
        common::stun::BINDING_REQUEST,
        &transaction_id(),
        &[(attr::RESPONSE_PORT, &port)],
        true,
    );
    sock.send_to(&req, r.primary).unwrap();
    let (b, from) = recv_answer(&other, &req, ANSWER_TIMEOUT).expect("answer on the other port");
    assert_eq!(from, r.primary);
    assert_success_for(&b, &req);
    assert_eq!(
        parse(&b).xor_mapped_address(),
        Some(sock.local_addr().unwrap())
    );
}

#[test]
fn rfc3489_client_gets_source_and_changed_address() {
    let r = Rfc5780Server::start(&["--legacy"]);
    let sock = udp_socket([127, 0, 0, 1]);
    let mut req = vec![0x00, 0x01, 0x00, 0x08, 0xde, 0xad, 0xbe, 0xef];
    req.extend_from_slice(&transaction_id());
    req.extend_from_slice(&[0x00, 0x03, 0x00, 0x04, 0, 0, 0, 6]);
    let (b, from) = exchange(&sock, r.primary, &req, ANSWER_TIMEOUT).expect("answer");
    assert_eq!(from, r.alternate);
    let m = Message::parse(&b, true).unwrap();
    assert_eq!(m.msg_type(), BINDING_SUCCESS);
    assert_eq!(
        attr_types(&m),
        vec![
            attr::MAPPED_ADDRESS,
            attr::SOURCE_ADDRESS,
            attr::CHANGED_ADDRESS
        ]
    );
    assert_eq!(
        m.address(attr::MAPPED_ADDRESS),
        Some(sock.local_addr().unwrap())
    );
    assert_eq!(m.address(attr::SOURCE_ADDRESS), Some(r.alternate));
    assert_eq!(m.address(attr::CHANGED_ADDRESS), Some(r.alternate));
}

#[test]
fn healthz_probes_the_primary() {
    let r = Rfc5780Server::start(&[]);
    let resp = r.s.get("/healthz");
    assert_eq!(resp.status, 200, "{}", resp.body);
    let v: serde_json::Value = serde_json::from_str(&resp.body).unwrap();
    assert_eq!(v["target"], r.primary.to_string());
}
