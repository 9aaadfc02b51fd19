//! A wildcard listener answers from the address each request was sent to
//! (IP_PKTINFO / IPV6_PKTINFO), and with several workers all datagrams of
//! one source IP reach the same worker (the SO_REUSEPORT steering that
//! makes per-source rate limits exact). Traffic stays on loopback: the
//! server binds the wildcard, clients only send to 127.0.0.x / ::1.

mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use support::*;

#[test]
fn wildcard_v4_answers_from_the_address_asked() {
    let s = server(&["--listen", "0.0.0.0:0", "--workers", "2"]);
    let port = s.addr().port();
    let client = udp_socket(Ipv4Addr::LOCALHOST);
    for last in [1u8, 2, 77] {
        let to = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), port);
        let req = binding_request(false);
        let (b, from) = exchange_retry(&client, to, &req, 3, ANSWER_TIMEOUT)
            .unwrap_or_else(|| panic!("no answer via {to}; log:\n{}", s.log()));
        assert_success_for(&b, &req);
        assert_eq!(
            from, to,
            "answer must leave from the address the request was sent to"
        );
        assert_eq!(
            parse(&b).xor_mapped_address(),
            Some(client.local_addr().unwrap())
        );
    }
}

#[test]
fn wildcard_v6_answers_from_the_address_asked() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: no IPv6 loopback on this machine");
        return;
    }
    let s = server(&["--listen", "[::]:0", "--workers", "1"]);
    let to = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), s.addr().port());
    let client = udp_socket(Ipv6Addr::LOCALHOST);
    let req = binding_request(true);
    let (b, from) = exchange_retry(&client, to, &req, 3, ANSWER_TIMEOUT).expect("answer");
    assert_success_for(&b, &req);
    assert_eq!(from, to);
    // v6-only: an IPv4 client of the same port is not answered as ::ffff:.
    assert_eq!(
        parse(&b).xor_mapped_address(),
        Some(client.local_addr().unwrap())
    );
}

#[test]
fn one_source_ip_lands_on_one_worker() {
    let s = server(&[
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "4",
        "--http",
        "127.0.0.1:0",
        "--rate-limit",
        "off",
    ]);
    // 32 sockets (32 source ports) on one IP.
    for _ in 0..32 {
        let c = udp_socket(Ipv4Addr::LOCALHOST);
        let req = binding_request(false);
        assert!(exchange_retry(&c, s.addr(), &req, 3, ANSWER_TIMEOUT).is_some());
    }
    // Counters are published after each batch's answers are sent: wait for
    // the last one to be counted.
    s.wait_metric("stun_requests_total", ANSWER_TIMEOUT, |v| v >= 32.0);
    let per_worker: Vec<f64> = metric_samples(&s.metrics(), "stun_worker_requests_total")
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(per_worker.len(), 4, "{per_worker:?}");
    let busy = per_worker.iter().filter(|v| **v > 0.0).count();
    assert_eq!(
        busy, 1,
        "datagrams from one IP spread over workers: {per_worker:?}"
    );
    assert_eq!(per_worker.iter().sum::<f64>(), 32.0);
}
