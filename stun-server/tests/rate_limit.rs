//! Per-source rate limiting: a flood from one IP is cut to about burst +
//! rate x time, while another source IP is still answered.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use support::*;

const RATE: f64 = 50.0;
const BURST: f64 = 50.0;
const WORKERS: f64 = 2.0;
const FLOOD: usize = 2000;
const SOCKETS: usize = 8;

/// Counts answers on `sock` until `stop` and nothing arrived for a while.
fn count_answers(sock: UdpSocket, stop: Arc<AtomicUsize>, answered: Arc<AtomicUsize>) {
    let mut buf = [0u8; 1500];
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut quiet_since = Instant::now();
    loop {
        match sock.recv_from(&mut buf) {
            Ok(_) => {
                answered.fetch_add(1, Ordering::Relaxed);
                quiet_since = Instant::now();
            }
            Err(_) => {
                if stop.load(Ordering::Relaxed) == 1
                    && quiet_since.elapsed() > Duration::from_millis(500)
                {
                    return;
                }
            }
        }
    }
}

#[test]
fn flood_is_limited_and_other_sources_still_served() {
    let s = server(&[
        "--listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--rate-limit",
        "50",
        "--rate-burst",
        "50",
        "--workers",
        "2",
    ]);
    assert!(
        s.log()
            .contains("rate limit 50 requests/s per source IP (IPv6 /64), burst 50"),
        "{}",
        s.log()
    );
    let target = s.addr();
    let bystander = udp_socket([127, 0, 0, 3]);

    let socks: Vec<UdpSocket> = (0..SOCKETS).map(|_| udp_socket([127, 0, 0, 1])).collect();
    let stop = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = socks
        .iter()
        .map(|sock| {
            let (sock, stop, answered) =
                (sock.try_clone().unwrap(), stop.clone(), answered.clone());
            thread::spawn(move || count_answers(sock, stop, answered))
        })
        .collect();

    let start = Instant::now();
    let half = Arc::new(Barrier::new(2));
    let sender = {
        let socks: Vec<UdpSocket> = socks.iter().map(|s| s.try_clone().unwrap()).collect();
        let half = half.clone();
        thread::spawn(move || {
            let mut sent = 0;
            for i in 0..FLOOD {
                let req = binding_request(false);
                if socks[i % SOCKETS].send_to(&req, target).is_ok() {
                    sent += 1;
                }
                if i == FLOOD / 2 {
                    half.wait();
                }
            }
            sent
        })
    };

    // During the flood: another source IP has its own bucket.
    half.wait();
    let req = binding_request(false);
    let during = exchange_retry(&bystander, target, &req, 5, Duration::from_secs(2));
    assert!(during.is_some(), "127.0.0.3 not answered during the flood");
    assert_success_for(&during.unwrap().0, &req);

    let sent = sender.join().unwrap();
    assert!(sent > FLOOD / 2, "only {sent} of {FLOOD} sent");
    stop.store(1, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let answered = answered.load(Ordering::Relaxed);

    // Each worker keeps its own table. The server steers a source IP to
    // one worker, but that is best effort: count as many buckets as
    // workers that saw the flood (the bystander sends at most 10). Tokens
    // accrue for at most `elapsed` (measured after the last answer).
    s.wait_metric("stun_rate_limited_total", ANSWER_TIMEOUT, |v| v > 0.0);
    let flooded = metric_samples(&s.metrics(), "stun_worker_requests_total")
        .iter()
        .filter(|(_, v)| *v > 10.0)
        .count();
    assert!((1..=WORKERS as usize).contains(&flooded));
    let bound = flooded as f64 * (BURST + RATE * elapsed) + 10.0;
    assert!(answered > 0, "the flood got no answer at all");
    assert!(
        (answered as f64) <= bound,
        "{answered} of {sent} answered in {elapsed:.2} s by {flooded} workers; expected at most {bound:.0}"
    );

    // After the flood: the bystander is still served.
    let req = binding_request(true);
    let after = exchange_retry(&bystander, target, &req, 5, Duration::from_secs(2));
    assert!(after.is_some(), "127.0.0.3 not answered after the flood");
    let b = after.unwrap().0;
    assert_eq!(
        parse(&b).xor_mapped_address(),
        Some(bystander.local_addr().unwrap())
    );

    let limited = s.wait_metric("stun_rate_limited_total", ANSWER_TIMEOUT, |v| v > 0.0);
    let text = s.metrics();
    assert_eq!(
        metric_value(&text, "stun_dropped_total{reason=\"rate_limited\"}"),
        Some(limited)
    );
    // Everything received was either answered or limited (or the bystander).
    let received = metric_value(&text, "stun_requests_total").unwrap();
    let success = metric_value(&text, "stun_responses_total{class=\"success\"}").unwrap();
    assert!(received <= sent as f64 + 10.0, "{text}");
    assert_eq!(success + limited, received, "{text}");
    eprintln!(
        "sent {sent}, server received {received}, answered {answered}, limited {limited}, {elapsed:.2} s, {flooded} worker(s)"
    );
}

#[test]
fn rate_limit_off_answers_everything() {
    let s = server(&[
        "--listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--rate-limit",
        "off",
        "--workers",
        "1",
    ]);
    assert!(s.log().contains("rate limit off"), "{}", s.log());
    let sock = udp_socket([127, 0, 0, 1]);
    // Sequential request/answer: no loss expected, and more than any
    // default burst would matter for.
    for _ in 0..200 {
        let req = binding_request(false);
        let _: SocketAddr = exchange_retry(&sock, s.addr(), &req, 3, ANSWER_TIMEOUT)
            .map(|(_, from)| from)
            .expect("answer");
    }
    s.expect_metric("stun_responses_total{class=\"success\"}", 200.0);
    assert_eq!(s.metric("stun_rate_limited_total"), 0.0);
}
