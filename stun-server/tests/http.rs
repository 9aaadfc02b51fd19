//! The HTTP side: Prometheus /metrics (content type, every family, counts
//! that follow real traffic per class, reason and worker) and /healthz (a
//! real STUN round trip: 200 when answered, 503 when not).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::stun::{message_type, BINDING_REQUEST};
use support::*;

#[test]
fn metrics_format_and_counts() {
    let s = server(&[
        "--listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--workers",
        "2",
    ]);
    let r = s.get("/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    for family in [
        "stun_requests_total",
        "stun_responses_total",
        "stun_dropped_total",
        "stun_rate_limited_total",
        "stun_send_errors_total",
        "stun_worker_requests_total",
        "stun_worker_responses_total",
        "stun_worker_batches_total",
        "stun_uptime_seconds",
    ] {
        assert!(
            r.body.contains(&format!("# TYPE {family} ")),
            "no {family} in\n{}",
            r.body
        );
    }
    assert!(r.body.contains("# TYPE stun_uptime_seconds gauge"));
    assert_eq!(metric_value(&r.body, "stun_requests_total"), Some(0.0));
    for class in ["success", "400", "420"] {
        let series = format!("stun_responses_total{{class=\"{class}\"}}");
        assert_eq!(metric_value(&r.body, &series), Some(0.0), "{series}");
    }
    assert_eq!(metric_samples(&r.body, "stun_dropped_total").len(), 11);
    assert_eq!(
        metric_samples(&r.body, "stun_worker_requests_total").len(),
        2
    );

    // 3 successes, one 400, two 420s, one truncated, one indication.
    let sock = udp_socket([127, 0, 0, 1]);
    for _ in 0..3 {
        let req = binding_request(false);
        ask(&s, &sock, s.addr(), &req);
    }
    let allocate = build_message(0x0003, &transaction_id(), &[], false);
    ask(&s, &sock, s.addr(), &allocate);
    for _ in 0..2 {
        let req = build_message(BINDING_REQUEST, &transaction_id(), &[(0x0777, b"")], false);
        ask(&s, &sock, s.addr(), &req);
    }
    sock.send_to(&[0, 1, 0], s.addr()).unwrap();
    let ind = build_message(
        message_type(1, common::stun::Class::Indication),
        &transaction_id(),
        &[],
        false,
    );
    sock.send_to(&ind, s.addr()).unwrap();

    s.expect_metric("stun_requests_total", 8.0);
    s.expect_metric("stun_responses_total{class=\"success\"}", 3.0);
    s.expect_metric("stun_responses_total{class=\"400\"}", 1.0);
    s.expect_metric("stun_responses_total{class=\"420\"}", 2.0);
    s.expect_metric("stun_dropped_total{reason=\"truncated\"}", 1.0);
    s.expect_metric("stun_dropped_total{reason=\"not_request\"}", 1.0);

    // One source IP goes to one worker of the group (or at least the
    // workers' counts add up to the totals).
    let text = s.metrics();
    let per_worker: f64 = metric_samples(&text, "stun_worker_requests_total")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert_eq!(per_worker, 8.0, "{text}");
    let sent: f64 = metric_samples(&text, "stun_worker_responses_total")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert_eq!(sent, 6.0, "{text}");
    let batches: f64 = metric_samples(&text, "stun_worker_batches_total")
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert!((1.0..=8.0).contains(&batches), "{text}");
    for (labels, _) in metric_samples(&text, "stun_worker_requests_total") {
        assert!(
            labels.ends_with(&format!("listen=\"{}\"", s.addr())),
            "{labels}"
        );
    }
    assert!(metric_value(&text, "stun_uptime_seconds").unwrap() >= 0.0);
}

#[test]
fn healthz_ok() {
    let s = server(&["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"]);
    let r = s.get("/healthz");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("application/json"),
        "{:?}",
        r.headers
    );
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("JSON");
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["target"], s.addr().to_string());
    assert!(v["rtt_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{v}");
    // The probe is a real request through the UDP side.
    s.expect_metric("stun_responses_total{class=\"success\"}", 1.0);
}

#[test]
fn unknown_path_is_404() {
    let s = server(&["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"]);
    let (status, _) = http_get(s.http_addr(), "/nope").unwrap();
    assert_eq!(status, 404);
}

#[test]
fn healthz_503_when_probe_is_not_answered() {
    // The probe comes from 127.0.0.1; with a rate of 1/s and a flood from
    // 127.0.0.1 keeping that bucket empty, the probe gets no answer within
    // its 1 s deadline.
    let s = server(&[
        "--listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--rate-limit",
        "1",
        "--rate-burst",
        "1",
    ]);
    let target = s.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let sock = udp_socket([127, 0, 0, 1]);
            let req = binding_request(false);
            while !stop.load(Ordering::Relaxed) {
                let _ = sock.send_to(&req, target);
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    s.wait_metric("stun_rate_limited_total", ANSWER_TIMEOUT, |v| v > 10.0);
    // A token that frees up might go to the probe; a few tries suffice.
    let mut last = None;
    for _ in 0..5 {
        let r = s.get("/healthz");
        if r.status == 503 {
            last = Some(r);
            break;
        }
        last = Some(r);
    }
    stop.store(true, Ordering::Relaxed);
    flooder.join().unwrap();
    let r = last.unwrap();
    assert_eq!(r.status, 503, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["status"], "failing", "{v}");
    assert_eq!(v["target"], target.to_string());
    assert!(v["reason"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
}
