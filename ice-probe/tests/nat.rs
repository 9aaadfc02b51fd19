//! `ice-probe nat` end to end: the real binary against the real server on
//! loopback (127.0.0.1 + 127.0.0.2 for RFC 5780, ::1), with exit codes.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::stun::{attr, Message, MessageWriter, BINDING_SUCCESS};

use e2e::{run_to_exit, workspace_bin, ServerProcess};
use serde_json::Value;

fn probe_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ice-probe")
}

fn server(args: &[&str]) -> ServerProcess {
    let mut all = vec!["--workers", "1", "--rate-limit", "off"];
    all.extend_from_slice(args);
    ServerProcess::start(workspace_bin("stun-server"), &all)
}

/// Runs `ice-probe nat ARGS --json`: (exit code, report, wall time).
fn nat_json(args: &[&str]) -> (i32, Value, Duration) {
    let t0 = Instant::now();
    let out = Command::new(probe_bin())
        .arg("nat")
        .args(args)
        .arg("--json")
        .output()
        .expect("run ice-probe");
    let took = t0.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v, took)
}

#[test]
fn rfc5780_server_on_loopback_is_open_and_fast() {
    let s = server(&["--listen", "127.0.0.1:0", "--alternate", "127.0.0.2:0"]);
    let (primary, alternate) = s.rfc5780.expect("RFC 5780 enabled line");
    let uri = format!("stun:{primary}");
    let (code, r, took) = nat_json(&[&uri]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["schema"], "ice-probe.nat/1");
    assert_eq!(r["mapping"], "no-nat", "{r:#}");
    assert_eq!(r["filtering"], "endpoint-independent", "{r:#}");
    assert_eq!(r["nat_type"], "open");
    assert_eq!(r["udp"], true);
    assert_eq!(r["hairpinning"], true);
    assert_eq!(r["primary_family"], "ipv4");
    let mapped = r["mapped_address"].as_str().unwrap();
    assert!(mapped.starts_with("127.0.0.1:"), "{mapped}");
    let fam = &r["families"][0];
    assert_eq!(fam["family"], "ipv4");
    assert_eq!(fam["port_preservation"]["value"], true);
    assert_eq!(fam["mapping_varies_by_destination"]["value"], false);
    assert_eq!(fam["other_address"], alternate.to_string());
    assert_eq!(fam["servers"][0]["rfc5780"], true, "{fam:#}");
    assert_eq!(fam["alg"]["value"], Value::Null);
    assert!(fam["alg"]["reason"]
        .as_str()
        .unwrap()
        .contains("MAPPED-ADDRESS"));
    assert_eq!(fam["lifetime"]["measured"], false);
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn legacy_server_lets_us_check_for_an_alg() {
    let s = server(&[
        "--listen",
        "127.0.0.1:0",
        "--alternate",
        "127.0.0.2:0",
        "--legacy",
    ]);
    let uri = format!("stun:{}", s.rfc5780.unwrap().0);
    let (code, r, _) = nat_json(&[&uri]);
    assert_eq!(code, 0);
    assert_eq!(r["families"][0]["alg"]["value"], false, "{r:#}");
}

#[test]
fn lifetime_search_on_loopback_outlives_a_short_max() {
    let s = server(&["--listen", "127.0.0.1:0", "--alternate", "127.0.0.2:0"]);
    let uri = format!("stun:{}", s.rfc5780.unwrap().0);
    let (code, r, took) = nat_json(&[&uri, "--lifetime", "1s"]);
    assert_eq!(code, 0);
    let l = &r["families"][0]["lifetime"];
    assert_eq!(l["measured"], true, "{l:#}");
    assert_eq!(l["survived_s"], 1.0);
    assert_eq!(l["expired_s"], Value::Null);
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[test]
fn server_without_rfc5780_still_reports_no_nat() {
    let s = server(&["--listen", "127.0.0.1:0"]);
    let uri = format!("stun:{}", s.addr());
    let (code, r, took) = nat_json(&[&uri]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["mapping"], "no-nat");
    assert_eq!(r["filtering"], "unknown");
    assert_eq!(r["udp"], true);
    let why = r["families"][0]["filtering_reason"].as_str().unwrap();
    assert!(why.contains("RFC 5780"), "{why}");
    assert_eq!(r["families"][0]["servers"][0]["rfc5780"], false);
    assert!(took < Duration::from_secs(2), "took {took:?}");
}

#[test]
fn ipv6_loopback_works() {
    let s = server(&["--listen", "[::1]:0"]);
    let uri = format!("stun:{}", s.addr());
    assert!(uri.starts_with("stun:[::1]:"), "{uri}");
    let (code, r, _) = nat_json(&[&uri]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["primary_family"], "ipv6");
    assert_eq!(r["udp"], true);
    assert_eq!(r["mapping"], "no-nat", "{r:#}");
    assert_eq!(r["filtering"], "unknown");
    assert!(r["mapped_address"].as_str().unwrap().starts_with("[::1]:"));
    assert_eq!(r["families"].as_array().unwrap().len(), 1);
}

#[test]
fn both_families_are_reported_separately() {
    let s4 = server(&["--listen", "127.0.0.1:0", "--alternate", "127.0.0.2:0"]);
    let s6 = server(&["--listen", "[::1]:0"]);
    let u4 = format!("stun:{}", s4.rfc5780.unwrap().0);
    let u6 = format!("stun:{}", s6.addr());
    let (code, r, _) = nat_json(&[&u6, &u4]);
    assert_eq!(code, 0);
    let fams = r["families"].as_array().unwrap();
    assert_eq!(fams.len(), 2);
    assert_eq!(fams[0]["family"], "ipv4");
    assert_eq!(fams[1]["family"], "ipv6");
    // The top level describes IPv4.
    assert_eq!(r["primary_family"], "ipv4");
    assert_eq!(r["nat_type"], "open");
    assert_eq!(fams[1]["filtering"], "unknown");
}

#[test]
fn dead_port_exits_1_within_the_timeout() {
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let uri = format!("stun:127.0.0.1:{port}");
    let (code, r, took) = nat_json(&[&uri, "--timeout", "500ms"]);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["udp"], false);
    assert_eq!(r["nat_type"], "udp-blocked");
    assert_eq!(r["mapping"], "unknown");
    assert_eq!(r["mapped_address"], Value::Null);
    assert_eq!(r["hairpinning"], Value::Null);
    assert!(took < Duration::from_millis(500 + 1500), "took {took:?}");
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let none = run_to_exit(probe_bin(), &["nat"], Duration::from_secs(10));
    assert_eq!(none.code(), Some(2));
    assert!(none.stderr.contains("stun:HOST"), "{}", none.stderr);
    assert!(none.stderr.contains("no built-in"), "{}", none.stderr);

    for bad in [
        "stun:",
        "http://example.com",
        "stun:1.2.3.4:99999",
        "stun://127.0.0.1",
    ] {
        let f = run_to_exit(probe_bin(), &["nat", bad], Duration::from_secs(10));
        assert_eq!(f.code(), Some(2), "{bad}: {}", f.stderr);
        assert!(f.stderr.starts_with("ice-probe: "), "{bad}: {}", f.stderr);
        assert_eq!(f.stdout, "", "{bad}");
    }
    let turn = run_to_exit(
        probe_bin(),
        &["nat", "turn:127.0.0.1"],
        Duration::from_secs(10),
    );
    assert_eq!(turn.code(), Some(2));
    assert!(turn.stderr.contains("stun:"), "{}", turn.stderr);
}

#[test]
fn table_by_default_without_colour_in_a_pipe() {
    let s = server(&["--listen", "127.0.0.1:0", "--alternate", "127.0.0.2:0"]);
    let uri = format!("stun:{}", s.rfc5780.unwrap().0);
    let out = Command::new(probe_bin())
        .args(["nat", &uri])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\x1b'), "{text}");
    for want in ["NAT type", "open", "filtering", "hairpinning", "no relay"] {
        assert!(text.contains(want), "{want}: {text}");
    }
    assert!(out.stderr.is_empty(), "no progress line in a pipe");
}

/// A fake RFC 5780 server that lies: it names OTHER-ADDRESS but answers
/// every request (CHANGE-REQUEST or not) from the socket it arrived on.
/// With `same_ip`, OTHER-ADDRESS even has the primary's IP.
struct LyingServer {
    primary: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl LyingServer {
    fn start(same_ip: bool) -> Self {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (p1, p2) = (
            a.local_addr().unwrap().port(),
            b.local_addr().unwrap().port(),
        );
        let mut socks = vec![a, b];
        let other: SocketAddr = if same_ip {
            format!("127.0.0.1:{p2}").parse().unwrap()
        } else {
            socks.push(UdpSocket::bind(format!("127.0.0.2:{p1}")).unwrap());
            socks.push(UdpSocket::bind(format!("127.0.0.2:{p2}")).unwrap());
            format!("127.0.0.2:{p2}").parse().unwrap()
        };
        let primary = socks[0].local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let threads = socks
            .into_iter()
            .map(|s| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
                    let local = s.local_addr().unwrap();
                    let mut buf = [0u8; 2048];
                    let mut out = [0u8; 512];
                    while !stop.load(Ordering::Relaxed) {
                        let Ok((n, src)) = s.recv_from(&mut buf) else {
                            continue;
                        };
                        let Ok(m) = Message::parse(&buf[..n], false) else {
                            continue;
                        };
                        let mut w = MessageWriter::new(
                            &mut out,
                            BINDING_SUCCESS,
                            m.cookie_and_transaction(),
                        )
                        .unwrap();
                        w.xor_address(attr::XOR_MAPPED_ADDRESS, src).unwrap();
                        w.address(attr::OTHER_ADDRESS, other).unwrap();
                        w.address(attr::RESPONSE_ORIGIN, local).unwrap();
                        let len = w.finish();
                        let _ = s.send_to(&out[..len], src);
                    }
                })
            })
            .collect();
        LyingServer {
            primary,
            stop,
            threads,
        }
    }
}

impl Drop for LyingServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn lying_servers_give_unknown_filtering_not_a_wrong_verdict() {
    let liar = LyingServer::start(false);
    let (code, r, took) = nat_json(&[&format!("stun:{}", liar.primary)]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["mapping"], "no-nat");
    // Answers that ignore CHANGE-REQUEST would look like an open NAT.
    assert_eq!(r["filtering"], "unknown", "{r:#}");
    assert_eq!(r["nat_type"], "unknown");
    let why = r["families"][0]["filtering_reason"].as_str().unwrap();
    assert!(
        why.starts_with("server lacks RFC 5780 (") && why.contains("came from"),
        "{why}"
    );
    assert_eq!(r["families"][0]["servers"][0]["rfc5780"], false);
    assert!(took < Duration::from_secs(2), "took {took:?}");

    let liar = LyingServer::start(true);
    let (code, r, _) = nat_json(&[&format!("stun:{}", liar.primary)]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["filtering"], "unknown");
    let why = r["families"][0]["filtering_reason"].as_str().unwrap();
    assert!(why.contains("same IP"), "{why}");
}

#[test]
fn a_name_is_probed_in_each_family_it_resolves_to() {
    let s = server(&["--listen", "127.0.0.1:0", "--alternate", "127.0.0.2:0"]);
    let port = s.rfc5780.unwrap().0.port();
    let (code, r, _) = nat_json(&[&format!("stun:localhost:{port}"), "--timeout", "300ms"]);
    // IPv4 answers; IPv6 (if localhost has ::1) reaches nothing on that port.
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["primary_family"], "ipv4");
    assert_eq!(r["nat_type"], "open");
    let fams = r["families"].as_array().unwrap();
    assert_eq!(
        fams[0]["servers"][0]["uri"],
        format!("stun:localhost:{port}")
    );
    if let Some(v6) = fams.get(1) {
        assert_eq!(v6["family"], "ipv6");
        assert_eq!(v6["udp"], false);
        assert_eq!(v6["nat_type"], "udp-blocked");
    }
}
