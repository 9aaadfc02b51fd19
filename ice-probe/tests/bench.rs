//! `ice-probe bench` end to end: the real binary against the real server on
//! loopback, short and bounded runs (these check correctness, not speed).

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::stun::{attr, Message, MessageWriter, BINDING_SUCCESS};
use e2e::{workspace_bin, ServerProcess};
use serde_json::Value;

fn probe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ice-probe"))
}

fn server(extra: &[&str]) -> ServerProcess {
    let mut args = vec!["--listen", "127.0.0.1:0", "--workers", "1"];
    args.extend_from_slice(extra);
    ServerProcess::start(workspace_bin("stun-server"), &args)
}

fn run_json(args: &[&str]) -> (i32, Value) {
    let out = probe()
        .args(args)
        .arg("--json")
        .output()
        .expect("run ice-probe");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

#[test]
fn validates_every_answer_and_reports_server_cost() {
    let s = server(&["--rate-limit", "off"]);
    let uri = format!("stun:{}", s.addr());
    let pid = s.pid().to_string();
    let (code, r) = run_json(&[
        "bench",
        &uri,
        "--sockets",
        "4",
        "--window",
        "8",
        "--duration",
        "500ms",
        "--warmup",
        "100ms",
        "--server-pid",
        &pid,
    ]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["schema"], "ice-probe.bench/1");
    assert_eq!(r["server_address"], s.addr().to_string());
    assert!(r["received"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["invalid"], 0);
    assert_eq!(r["lost"], 0);
    let l = &r["latency_us"];
    assert!(l["p50"].as_f64().unwrap() <= l["p99"].as_f64().unwrap());
    assert!(l["p99"].as_f64().unwrap() <= l["max"].as_f64().unwrap());
    let sv = &r["server"];
    assert_eq!(sv["pid"].as_u64().unwrap(), s.pid() as u64);
    assert!(sv["rss_kib_after"].as_u64().unwrap() > 0);
}

#[test]
fn table_on_a_pipe_has_no_colour_or_progress() {
    let s = server(&["--rate-limit", "off"]);
    let out = probe()
        .args([
            "bench",
            &format!("stun:{}", s.addr()),
            "--duration",
            "300ms",
            "--warmup",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("responses"), "{text}");
    assert!(text.contains("latency p50/p99/p99.9"), "{text}");
    assert!(!text.contains('\x1b'), "colour on a pipe: {text:?}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains('\r'));
}

#[test]
fn dead_port_is_a_failure_within_the_run() {
    let port = {
        let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        s.local_addr().unwrap().port()
    };
    let t = Instant::now();
    let (code, r) = run_json(&[
        "bench",
        &format!("stun:127.0.0.1:{port}"),
        "--duration",
        "300ms",
        "--warmup",
        "0",
        "--timeout",
        "100ms",
    ]);
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["received"], 0);
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn counts_answers_that_are_not_ours_as_invalid() {
    // A "server" that maps every client to the wrong port.
    let fake = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = fake.local_addr().unwrap();
    fake.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        let mut out = [0u8; 64];
        while !stop2.load(Ordering::Relaxed) {
            if let Ok((n, from)) = fake.recv_from(&mut buf) {
                let Ok(m) = Message::parse(&buf[..n], false) else {
                    continue;
                };
                let mut w =
                    MessageWriter::new(&mut out, BINDING_SUCCESS, m.cookie_and_transaction())
                        .unwrap();
                let wrong = SocketAddr::new(from.ip(), from.port() ^ 1);
                w.xor_address(attr::XOR_MAPPED_ADDRESS, wrong).unwrap();
                let len = w.finish();
                let _ = fake.send_to(&out[..len], from);
            }
        }
    });
    let (code, r) = run_json(&[
        "bench",
        &format!("stun:{addr}"),
        "--sockets",
        "1",
        "--window",
        "2",
        "--duration",
        "300ms",
        "--warmup",
        "0",
        "--timeout",
        "100ms",
    ]);
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap();
    assert_eq!(code, 1, "{r}");
    assert_eq!(r["received"], 0);
    assert!(r["invalid"].as_u64().unwrap() > 0, "{r}");
}

#[test]
fn distinct_sources_are_each_answered() {
    let s = server(&[]);
    let pid = s.pid().to_string();
    let (code, r) = run_json(&[
        "bench",
        &format!("stun:{}", s.addr()),
        "--distinct-sources",
        "2000",
        "--duration",
        "100ms",
        "--warmup",
        "0",
        "--server-pid",
        &pid,
    ]);
    assert_eq!(code, 0, "{r}");
    let d = &r["distinct_sources"];
    assert_eq!(d["requested"], 2000);
    assert_eq!(d["answered"], 2000, "{r}");
}

#[test]
fn usage_errors_exit_2_with_the_reason() {
    for (args, needle) in [
        (vec!["bench", "http://127.0.0.1:3478"], "unknown scheme"),
        (vec!["bench", "stun://127.0.0.1:3478"], "no '//'"),
        (
            vec!["bench", "stun:127.0.0.1:3478", "--sockets", "0"],
            "--sockets",
        ),
        (
            vec!["bench", "stun:127.0.0.1:3478", "--duration", "11m"],
            "--duration",
        ),
        (vec!["bench", "stun:127.0.0.1:3478", "--bogus"], "--bogus"),
        (vec!["bench", "turn:127.0.0.1:3478"], "stun: URI"),
        (vec!["bench"], "stun:HOST:PORT"),
    ] {
        let out = probe().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn help_documents_exit_codes_and_json() {
    let out = probe().args(["bench", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let h = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "ice-probe.bench/1",
        "EXIT CODES",
        "--server-pid",
        "--distinct-sources",
    ] {
        assert!(h.contains(needle), "missing {needle}");
    }
}
