//! `ice-probe gather` end to end: the real binary against our real
//! stun-server and a real coturn, all on loopback.
//!
//! coturn (`turnserver`, Debian package coturn) is optional locally: its
//! tests say loudly that they are skipped when it is missing. With
//! ICE_PROBE_REQUIRE_COTURN=1 (scripts/test.sh as root, CI) a missing coturn is a failure.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::{workspace_bin, ServerProcess};
use serde_json::Value;

fn probe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ice-probe"))
}

fn stun_server() -> ServerProcess {
    ServerProcess::start(
        workspace_bin("stun-server"),
        &["--listen", "127.0.0.1:0", "--workers", "1"],
    )
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn run(args: &[&str]) -> Run {
    let t = Instant::now();
    let out = probe().args(args).output().expect("run ice-probe");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: t.elapsed(),
    }
}

fn run_json(args: &[&str]) -> (Run, Value) {
    let mut a = vec!["gather", "--include-loopback", "--json"];
    a.extend_from_slice(args);
    let r = run(&a);
    let v: Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", r.stdout, r.stderr));
    (r, v)
}

fn candidates<'a>(r: &'a Value, kind: &str) -> Vec<&'a Value> {
    r["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .filter(|c| c["type"] == kind)
        .collect()
}

fn check_priority_split(r: &Value) {
    for c in r["candidates"].as_array().unwrap() {
        let p = c["priority"].as_u64().unwrap();
        let t = c["type_preference"].as_u64().unwrap();
        let l = c["local_preference"].as_u64().unwrap();
        let k = c["component_preference"].as_u64().unwrap();
        assert_eq!(p, (t << 24) + (l << 8) + k, "{c}");
        assert_eq!(k, 256 - c["component"].as_u64().unwrap(), "{c}");
    }
}

#[test]
fn gathers_host_and_srflx_through_our_stun_server() {
    let s = stun_server();
    let url = format!("stun:{}", s.addr());
    let (r, v) = run_json(&["--stun", &url]);
    assert_eq!(r.code, 0, "{v}\n{}", r.stderr);
    assert_eq!(v["schema"], "ice-probe.gather/1");
    assert!(
        candidates(&v, "host")
            .iter()
            .any(|c| c["address"] == "127.0.0.1" && c["type_preference"] == 126),
        "no 127.0.0.1 host candidate: {v}"
    );
    let srflx = candidates(&v, "srflx");
    assert_eq!(srflx.len(), 1, "{v}");
    assert_eq!(srflx[0]["address"], "127.0.0.1");
    assert_eq!(srflx[0]["url"], url.as_str());
    assert!(srflx[0]["related_port"].as_u64().is_some());
    check_priority_split(&v);

    let p = &v["probes"][0];
    assert_eq!(p["url"], url.as_str());
    assert_eq!(p["status"], "ok", "{p}");
    assert_eq!(p["reachable"], true);
    assert!(p["rtt_ms"].as_f64().unwrap() >= 0.0);
    let mapped: SocketAddr = p["mapped_address"].as_str().unwrap().parse().unwrap();
    assert_eq!(mapped.ip().to_string(), "127.0.0.1");
    assert_ne!(mapped.port(), 0);
    assert_eq!(v["gathering_complete"], true, "{v}");
    assert_eq!(v["agent_errors"].as_array().unwrap().len(), 0, "{v}");
    // Loopback gathering ends in milliseconds, far from the 3 s bound.
    assert!(v["elapsed_ms"].as_f64().unwrap() < 1500.0, "{v}");
    eprintln!(
        "gather against loopback stun-server: {:.1} ms in the run, {:?} for the process",
        v["elapsed_ms"].as_f64().unwrap(),
        r.took
    );
}

#[test]
fn gathers_srflx_over_ipv6_loopback() {
    let s = ServerProcess::start(
        workspace_bin("stun-server"),
        &["--listen", "[::1]:0", "--workers", "1"],
    );
    let url = format!("stun:{}", s.addr());
    let (r, v) = run_json(&["--stun", &url, "--interface", "lo"]);
    assert_eq!(r.code, 0, "{v}\n{}", r.stderr);
    let srflx = candidates(&v, "srflx");
    assert_eq!(srflx.len(), 1, "{v}");
    assert_eq!(srflx[0]["address"], "::1");
    assert_eq!(srflx[0]["url"], url.as_str());
    let mapped: SocketAddr = v["probes"][0]["mapped_address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(mapped.ip().to_string(), "::1");
}

#[test]
fn interface_filter_keeps_only_the_named_interface() {
    let (r, v) = run_json(&[
        "--stun",
        "stun:127.0.0.1:9",
        "--interface",
        "lo",
        "--timeout",
        "300ms",
    ]);
    assert_eq!(r.code, 1, "{v}");
    let hosts = candidates(&v, "host");
    assert!(!hosts.is_empty(), "{v}");
    for c in hosts {
        let a = c["address"].as_str().unwrap();
        assert!(a == "127.0.0.1" || a == "::1", "{a} is not on lo: {v}");
    }
    assert_eq!(v["interfaces"][0], "lo");
}

#[test]
fn silent_stun_server_is_unreachable_within_the_timeout() {
    // A socket that never answers (and, unlike a closed port, sends no
    // ICMP): what a filtered or dead server looks like.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let url = format!("stun:{}", silent.local_addr().unwrap());
    let (r, v) = run_json(&["--stun", &url, "--timeout", "1s"]);
    assert_eq!(r.code, 1, "{v}");
    let p = &v["probes"][0];
    assert_eq!(p["status"], "unreachable", "{p}");
    assert_eq!(p["reachable"], false);
    assert!(p["rtt_ms"].is_null());
    // RFC 8489 retransmissions at 0, 500 ms within the 1 s bound.
    assert_eq!(p["requests_sent"], 2, "{p}");
    assert!(r.took < Duration::from_millis(2500), "took {:?}", r.took);
    assert!(!candidates(&v, "host").is_empty());
    assert!(candidates(&v, "srflx").is_empty());
    eprintln!("silent server reported after {:?} (bound 1 s)", r.took);

    // The table says it too, with the reason on stderr.
    let r = run(&[
        "gather",
        "--stun",
        &url,
        "--timeout",
        "300ms",
        "--include-loopback",
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("unreachable"), "{}", r.stdout);
    assert!(!r.stdout.contains('\x1b'), "colour on a pipe: {}", r.stdout);
    assert!(
        r.stderr.contains("none of the 1 URL(s) worked"),
        "{}",
        r.stderr
    );
}

#[test]
fn table_output_reads_like_trickle_ice() {
    let s = stun_server();
    let url = format!("stun:{}", s.addr());
    let r = run(&["gather", "--stun", &url, "--include-loopback"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    for needle in [
        "type-pref",
        "local-pref",
        "256-comp",
        "srflx",
        &url,
        "mapped address 127.0.0.1:",
    ] {
        assert!(r.stdout.contains(needle), "no {needle:?} in:\n{}", r.stdout);
    }
    assert!(!r.stdout.contains('\x1b'));
    // No progress line when stderr is not a terminal.
    assert!(!r.stderr.contains("gathering:"), "{}", r.stderr);
}

#[test]
fn no_url_is_a_usage_error_that_says_how_to_give_one() {
    let r = run(&["gather", "--include-loopback"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--stun stun:"), "{}", r.stderr);
    assert!(r.stderr.contains("--turn turn:"), "{}", r.stderr);
    assert!(r.stderr.contains("no built-in"), "{}", r.stderr);
}

#[test]
fn malformed_or_misplaced_urls_are_usage_errors() {
    for (args, needle) in [
        (vec!["--stun", "stun://127.0.0.1:3478"], "no '//'"),
        (vec!["--stun", "stun:127.0.0.1:99999"], "99999"),
        (vec!["--turn", "turn:127.0.0.1?transport=sctp"], "sctp"),
        (vec!["--stun", "turn:127.0.0.1:3478"], "--turn"),
        (vec!["--turn", "stun:127.0.0.1:3478"], "--stun"),
        (
            vec!["--turn", "turn:127.0.0.1:3478", "--credential", "x"],
            "--username",
        ),
        (
            vec![
                "--turn",
                "turn:127.0.0.1:3478",
                "--username",
                "u",
                "--credential",
                "x",
                "--turn-secret",
                "s",
            ],
            "--turn-secret",
        ),
    ] {
        let mut a = vec!["gather"];
        a.extend_from_slice(&args);
        let r = run(&a);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn tls_urls_are_not_supported_and_a_closed_tcp_port_is_unreachable() {
    // A listener bound and dropped gives a loopback port that refuses.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tcp = format!("turn:127.0.0.1:{port}?transport=tcp");
    let (r, v) = run_json(&[
        "--stun",
        "stuns:127.0.0.1:5349",
        "--turn",
        "turns:127.0.0.1:5349",
        "--turn",
        &tcp,
        "--timeout",
        "500ms",
    ]);
    assert_eq!(r.code, 1, "{v}");
    let probes = v["probes"].as_array().unwrap();
    for p in &probes[..2] {
        assert_eq!(p["status"], "not_supported", "{p}");
        assert!(p["detail"]
            .as_str()
            .unwrap()
            .contains("not supported by this probe"));
    }
    assert_eq!(probes[2]["status"], "unreachable", "{}", probes[2]);
    assert_eq!(probes[2]["reachable"], false);
    assert!(probes[2]["detail"]
        .as_str()
        .unwrap()
        .contains("TCP connect"));
}

// --------------------------------------------------------------------------
// coturn
// --------------------------------------------------------------------------

#[path = "support/coturn.rs"]
mod coturn;
use coturn::need_coturn;

#[test]
fn turn_allocation_with_the_right_credentials() {
    let Some(bin) = need_coturn("turn_allocation_with_the_right_credentials") else {
        return;
    };
    let t = coturn::start(&bin);
    let url = format!("turn:{}", t.addr);
    let (r, v) = run_json(&[
        "--turn",
        &url,
        "--username",
        coturn::USER,
        "--credential",
        coturn::PASSWORD,
    ]);
    assert_eq!(r.code, 0, "{v}\n{}\ncoturn:\n{}", r.stderr, t.log());
    let p = &v["probes"][0];
    assert_eq!(p["kind"], "turn");
    assert_eq!(p["status"], "ok", "{p}");
    let relayed: SocketAddr = p["allocation"]["relayed_address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(relayed.ip().to_string(), "127.0.0.1");
    assert!(p["allocation"]["lifetime_s"].as_u64().unwrap() > 0, "{p}");
    assert_eq!(p["allocation"]["realm"], "example.org");
    assert_eq!(p["allocation"]["released"], true, "{p}");
    assert!(p["mapped_address"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    // The agent's relay candidate, attributed to the URL.
    let relay = candidates(&v, "relay");
    assert_eq!(relay.len(), 1, "{v}");
    assert_eq!(relay[0]["url"], url.as_str());
    assert_eq!(relay[0]["address"], "127.0.0.1");
    assert_eq!(relay[0]["type_preference"], 0);
    assert_eq!(relay[0]["relay_protocol"], "udp");
    check_priority_split(&v);
}

#[test]
fn turn_wrong_password_is_reported_as_wrong_credentials() {
    let Some(bin) = need_coturn("turn_wrong_password_is_reported_as_wrong_credentials") else {
        return;
    };
    let t = coturn::start(&bin);
    let url = format!("turn:{}?transport=udp", t.addr);
    let (r, v) = run_json(&[
        "--turn",
        &url,
        "--username",
        coturn::USER,
        "--credential",
        "wrong",
    ]);
    assert_eq!(r.code, 1, "{v}");
    let p = &v["probes"][0];
    assert_eq!(p["status"], "error", "{p}");
    assert_eq!(p["reachable"], true);
    // coturn answers a bad MESSAGE-INTEGRITY with 401 again.
    assert_eq!(p["error"]["code"], 401, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("wrong credentials"),
        "{p}"
    );
    assert!(candidates(&v, "relay").is_empty());

    // Without credentials: the 401 and what to pass.
    let (r, v) = run_json(&["--turn", &url]);
    assert_eq!(r.code, 1, "{v}");
    let p = &v["probes"][0];
    assert_eq!(p["error"]["code"], 401, "{p}");
    assert!(
        p["detail"].as_str().unwrap().contains("--credential"),
        "{p}"
    );
}

#[test]
fn turn_rest_credentials_from_a_shared_secret() {
    let Some(bin) = need_coturn("turn_rest_credentials_from_a_shared_secret") else {
        return;
    };
    let t = coturn::start_with(
        &bin,
        &["--use-auth-secret", "--static-auth-secret", "n0t-s0-s3cret"],
    );
    let url = format!("turn:{}", t.addr);
    let (r, v) = run_json(&["--turn", &url, "--turn-secret", "n0t-s0-s3cret"]);
    assert_eq!(r.code, 0, "{v}\n{}\ncoturn:\n{}", r.stderr, t.log());
    assert_eq!(v["probes"][0]["status"], "ok");
    assert_eq!(candidates(&v, "relay").len(), 1, "{v}");

    let (r, v) = run_json(&[
        "--turn",
        &url,
        "--turn-secret",
        "another",
        "--username",
        "bob",
    ]);
    assert_eq!(r.code, 1, "{v}");
    assert_eq!(v["probes"][0]["error"]["code"], 401, "{v}");
}

#[test]
fn turn_over_tcp_allocates_on_the_same_port() {
    let Some(bin) = need_coturn("turn_over_tcp_allocates_on_the_same_port") else {
        return;
    };
    let t = coturn::start(&bin);
    let url = format!("turn:{}?transport=tcp", t.addr);
    let (r, v) = run_json(&[
        "--turn",
        &url,
        "--username",
        coturn::USER,
        "--credential",
        coturn::PASSWORD,
    ]);
    assert_eq!(r.code, 0, "{v}\n{}\ncoturn:\n{}", r.stderr, t.log());
    let p = &v["probes"][0];
    assert_eq!(p["status"], "ok", "{p}");
    assert_eq!(p["allocation"]["released"], true, "{p}");
    // Sent once each over TCP: Allocate, authenticated Allocate, Refresh.
    assert_eq!(p["requests_sent"], 3, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("over TCP"), "{p}");
    // The agent gathers no relay candidate over TCP.
    assert!(candidates(&v, "relay").is_empty(), "{v}");

    let (r, v) = run_json(&[
        "--turn",
        &url,
        "--username",
        coturn::USER,
        "--credential",
        "nope",
    ]);
    assert_eq!(r.code, 1, "{v}");
    assert_eq!(v["probes"][0]["error"]["code"], 401, "{v}");
}
