//! `ice-probe connect` / `selftest` end to end: real processes on loopback
//! only (`--include-loopback --interface lo`), signaling through files,
//! pipes, and our stun-server's rendezvous.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use e2e::{workspace_bin, ServerProcess, TempDir};
use serde_json::Value;

#[path = "support/coturn.rs"]
mod coturn;

/// Only loopback: never traffic to the host's other addresses.
const LOOPBACK: [&str; 4] = ["--include-loopback", "--interface", "lo", "--json"];
/// No channel measurement unless the test is about it.
const NO_CHANNEL: [&str; 2] = ["--duration", "0"];

fn probe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ice-probe"))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn finish(child: Child, t: Instant) -> Run {
    let out = child.wait_with_output().expect("wait ice-probe");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: t.elapsed(),
    }
}

fn spawn(args: &[&str]) -> Child {
    probe()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ice-probe")
}

fn run(args: &[&str]) -> Run {
    finish(spawn(args), Instant::now())
}

/// Like `finish`, but a child still running `limit` after `t` is killed
/// and the test fails with what it printed: the hang these tests guard
/// against must not hang the suite.
fn finish_within(child: Child, t: Instant, limit: Duration) -> Run {
    let c = e2e::collect_until(child, t + limit);
    let took = t.elapsed();
    if c.status.is_none() {
        panic!(
            "ice-probe still running {limit:?} after the start, killed\nstdout: {}\nstderr: {}",
            c.stdout, c.stderr
        );
    }
    Run {
        code: c.code(),
        stdout: c.stdout,
        stderr: c.stderr,
        took,
    }
}

/// Polls `ready` every 20 ms for at most `limit`.
fn wait_for(what: &str, limit: Duration, ready: impl Fn() -> bool) {
    let t = Instant::now();
    while !ready() {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", r.stdout, r.stderr))
}

fn check_connected(v: &Value, what: &str) {
    assert_eq!(v["schema"], "ice-probe.connect/1", "{what}: {v}");
    assert_eq!(v["connected"], true, "{what}: {v}");
    assert_eq!(v["passed"], true, "{what}: {v}");
    let p = &v["selected_pair"];
    for side in ["local", "remote"] {
        // A check can arrive before the candidate it comes from was
        // signaled (trickle, or the peer read our file first): the agent
        // then learns that address as prflx.
        let t = p[side]["type"].as_str().unwrap();
        assert!(t == "host" || t == "prflx", "{what}: {v}");
        let a = p[side]["address"].as_str().unwrap();
        assert!(a == "127.0.0.1" || a == "::1", "{what}: {a}");
        assert!(p[side]["port"].as_u64().unwrap() > 0);
    }
    assert!(v["time_to_connected_ms"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["pairs"]["succeeded"].as_u64().unwrap() >= 1, "{v}");
}

/// Both directions measured over loopback: nothing lost, data moved.
fn check_channel(v: &Value, what: &str) {
    let c = &v["channel"];
    assert_eq!(c["status"], "measured", "{what}: {c}");
    assert_eq!(c["report"]["schema"], "ice-probe.channel/1", "{what}: {c}");
    assert!(c["goodput_bps"].as_f64().unwrap() > 0.0, "{what}: {c}");
    assert!(c["rtt_ms"].as_f64().unwrap() < 1000.0, "{what}: {c}");
    assert!(c["loss_percent"].as_f64().unwrap() < 5.0, "{what}: {c}");
}

#[test]
fn two_processes_connect_through_files() {
    let d = TempDir::new("files");
    let (a, b) = (d.file("a.json"), d.file("b.json"));
    let mut args_a = vec![
        "connect",
        "--local",
        &a,
        "--remote",
        &b,
        "--timeout",
        "10s",
        "--duration",
        "1s",
    ];
    args_a.extend(LOOPBACK);
    let mut args_b = vec![
        "connect",
        "--local",
        &b,
        "--remote",
        &a,
        "--timeout",
        "10s",
        "--duration",
        "1s",
    ];
    args_b.extend(LOOPBACK);
    let t = Instant::now();
    let (pa, pb) = (spawn(&args_a), spawn(&args_b));
    let (ra, rb) = (finish(pa, t), finish(pb, t));
    assert_eq!(ra.code, 0, "A: {}\n{}", ra.stdout, ra.stderr);
    assert_eq!(rb.code, 0, "B: {}\n{}", rb.stdout, rb.stderr);
    let (va, vb) = (json(&ra), json(&rb));
    check_connected(&va, "A");
    check_connected(&vb, "B");
    check_channel(&va, "A");
    check_channel(&vb, "B");
    assert_eq!(va["mode"], "files");
    // The ufrag election gives exactly one offerer.
    let mut roles = [va["role"].as_str().unwrap(), vb["role"].as_str().unwrap()];
    roles.sort();
    assert_eq!(roles, ["answer", "offer"]);
    // Each wrote one complete description, as the contract says.
    let desc: Value = serde_json::from_str(std::fs::read_to_string(&a).unwrap().trim()).unwrap();
    assert_eq!(desc["type"], "ice-description");
    assert_eq!(desc["version"], 1);
    assert_eq!(desc["end_of_candidates"], true);
    assert!(desc["candidates"][0]
        .as_str()
        .unwrap()
        .starts_with("candidate:"));
    // A's selected remote is B's selected local.
    for k in ["address", "port"] {
        assert_eq!(
            va["selected_pair"]["remote"][k],
            vb["selected_pair"]["local"][k]
        );
    }
    eprintln!("files: both connected in {:?}", t.elapsed());
}

/// Copies lines from one child's stdout to the other's stdin.
fn relay(
    from: impl std::io::Read + Send + 'static,
    mut to: impl Write + Send + 'static,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { return };
            if writeln!(to, "{line}").and_then(|_| to.flush()).is_err() {
                return;
            }
        }
    })
}

#[test]
fn two_processes_connect_through_pipes() {
    let d = TempDir::new("pipes");
    let (ra_path, rb_path) = (d.file("a.report"), d.file("b.report"));
    let start = |report: &str| {
        probe()
            .args([
                "connect",
                "--local",
                "-",
                "--remote",
                "-",
                "--timeout",
                "10s",
                "--duration",
                "1s",
            ])
            .args([
                "--include-loopback",
                "--interface",
                "lo",
                "--report",
                report,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ice-probe")
    };
    let t = Instant::now();
    let mut a = start(&ra_path);
    let mut b = start(&rb_path);
    let ra = relay(a.stdout.take().unwrap(), b.stdin.take().unwrap());
    let rb = relay(b.stdout.take().unwrap(), a.stdin.take().unwrap());
    let (oa, ob) = (finish(a, t), finish(b, t));
    let _ = (ra.join(), rb.join());
    assert_eq!(oa.code, 0, "A stderr: {}", oa.stderr);
    assert_eq!(ob.code, 0, "B stderr: {}", ob.stderr);
    // The table goes to stderr when stdout carries signaling.
    assert!(
        oa.stderr.contains("ICE connected (pipe mode"),
        "{}",
        oa.stderr
    );
    for p in [&ra_path, &rb_path] {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        check_connected(&v, p);
        check_channel(&v, p);
        assert_eq!(v["mode"], "pipe");
    }
    eprintln!("pipes: both connected in {:?}", t.elapsed());
}

fn stun_server(http: bool) -> ServerProcess {
    let mut args = vec!["--listen", "127.0.0.1:0", "--workers", "1"];
    if http {
        args.extend(["--http", "127.0.0.1:0"]);
    }
    ServerProcess::start(workspace_bin("stun-server"), &args)
}

#[test]
fn selftest_through_our_stun_server_connects_in_well_under_a_second() {
    let s = stun_server(false);
    let url = format!("stun:{}", s.addr());
    let mut args = vec!["selftest", "--stun", &url, "--duration", "1s"];
    args.extend(LOOPBACK);
    let r = run(&args);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v = json(&r);
    check_connected(&v, "selftest");
    check_channel(&v, "selftest");
    assert_eq!(v["mode"], "selftest");
    let ttc = v["time_to_connected_ms"].as_f64().unwrap();
    assert!(ttc < 500.0, "time to connected {ttc} ms");
    // 1 s of channel plus its HELLO and FIN/REPORT swap.
    assert!(r.took < Duration::from_secs(5), "took {:?}", r.took);
    // Our server answered the agent: a srflx candidate (on loopback its
    // address is the host's own).
    let srflx = v["local_candidates"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "srflx");
    assert!(srflx, "no srflx through {url}: {v}");
    eprintln!(
        "selftest: time to connected {ttc:.1} ms, process {:?}",
        r.took
    );

    // The table names the pair.
    let r = run(&[
        "selftest",
        "--stun",
        &url,
        "--duration",
        "0",
        "--include-loopback",
        "--interface",
        "lo",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("ICE connected (selftest mode"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("selected pair   local  host  udp 127.0.0.1:")
            || r.stdout.contains("selected pair   local  host  udp [::1]:"),
        "{}",
        r.stdout
    );
}

#[test]
fn require_direct_passes_on_host_pair_and_channel_assertions_are_not_faked() {
    let mut args = vec!["selftest", "--require", "direct"];
    args.extend(LOOPBACK);
    args.extend(NO_CHANNEL);
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(json(&r)["assertions"][0]["passed"], true);

    // Channel off: a channel assertion cannot be evaluated, and fails.
    let mut args = vec!["selftest", "--max-rtt", "50"];
    args.extend(LOOPBACK);
    args.extend(NO_CHANNEL);
    let r = run(&args);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v = json(&r);
    assert_eq!(v["connected"], true);
    assert_eq!(v["passed"], false);
    assert_eq!(v["channel"]["status"], "skipped");
    assert_eq!(v["assertions"][0]["passed"], Value::Null);
    assert!(r.stderr.contains("--max-rtt"), "{}", r.stderr);

    // Measured: generous bounds pass, an impossible one fails with exit 1.
    let mut args = vec![
        "selftest",
        "--duration",
        "1s",
        "--max-rtt",
        "1000",
        "--min-goodput",
        "1k",
        "--max-loss",
        "50",
    ];
    args.extend(LOOPBACK);
    let r = run(&args);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v = json(&r);
    assert!(
        v["assertions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["passed"] == true),
        "{v}"
    );
    let mut args = vec!["selftest", "--duration", "1s", "--min-goodput", "100G"];
    args.extend(LOOPBACK);
    let r = run(&args);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(json(&r)["assertions"][0]["passed"], false);
}

fn connect_to_file(remote: &Path, timeout: &str, d: &TempDir) -> Run {
    let local = d.file("ours.json");
    let remote = remote.to_string_lossy().into_owned();
    let mut args = vec![
        "connect",
        "--local",
        &local,
        "--remote",
        &remote,
        "--timeout",
        timeout,
    ];
    args.extend(LOOPBACK);
    run(&args)
}

#[test]
fn a_peer_that_sends_garbage_is_bad_input_exit_2() {
    let d = TempDir::new("garbage");
    let remote = d.path().join("peer.json");
    std::fs::write(&remote, "hello, this is not JSON\n").unwrap();
    let r = connect_to_file(&remote, "5s", &d);
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains("bad signaling input from the peer: not JSON"),
        "{}",
        r.stderr
    );
    assert!(r.took < Duration::from_secs(3), "took {:?}", r.took);
    let v = json(&r);
    assert_eq!(v["connected"], false);
    assert_eq!(v["failed_stage"], "signaling");

    // A malformed candidate inside a well-formed description.
    std::fs::write(
        &remote,
        r#"{"type":"ice-description","version":1,"ufrag":"zzzz","pwd":"abcdefghijklmnopqrstuvwx","candidates":["candidate:1 1 udp"]}"#,
    )
    .unwrap();
    let r = connect_to_file(&remote, "5s", &d);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("malformed candidate"), "{}", r.stderr);
}

#[test]
fn a_remote_file_that_never_appears_is_exit_3_at_the_deadline() {
    let d = TempDir::new("never");
    let r = connect_to_file(&d.path().join("never.json"), "1s", &d);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("signaling timed out"), "{}", r.stderr);
    assert!(r.took >= Duration::from_millis(900), "took {:?}", r.took);
    assert!(r.took < Duration::from_secs(4), "took {:?}", r.took);
    let v = json(&r);
    assert_eq!(v["failed_stage"], "signaling");
    // Our own description was still written for a late peer.
    assert!(Path::new(&d.file("ours.json")).exists());
}

#[test]
fn a_dead_signaling_server_is_exit_3_quickly() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let mut args = vec![
        "connect",
        "--signal",
        &url,
        "--room",
        "r1",
        "--timeout",
        "10s",
    ];
    args.extend(LOOPBACK);
    let r = run(&args);
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("unreachable"), "{}", r.stderr);
    assert!(r.took < Duration::from_secs(2), "took {:?}", r.took);
}

#[test]
fn bad_usage_is_exit_2() {
    for args in [
        vec!["connect", "--include-loopback"],
        vec!["connect", "--signal", "https://127.0.0.1:1", "--room", "r"],
        vec!["connect", "--signal", "http://127.0.0.1:1", "--room", "a/b"],
        vec!["connect", "--local", "x", "--remote", "x"],
        vec!["connect", "--local", "-", "--remote", "y", "--json"],
        vec!["selftest", "--min-goodput", "fast"],
        vec!["selftest", "--stun", "turn:127.0.0.1:1"],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.starts_with("ice-probe: "),
            "{args:?}: {}",
            r.stderr
        );
    }
}

#[test]
fn two_processes_connect_through_our_rendezvous() {
    let s = stun_server(true);
    let http = s.http.expect("http address");
    let signal = format!("http://{http}");
    let stun = format!("stun:{}", s.addr());
    let args = |role: &'static str| {
        let mut a = vec![
            "connect".to_string(),
            "--signal".into(),
            signal.clone(),
            "--room".into(),
            "e2e-room".into(),
            "--stun".into(),
            stun.clone(),
            "--timeout".into(),
            "10s".into(),
        ];
        if !role.is_empty() {
            a.extend(["--role".into(), role.into()]);
        }
        a.extend(LOOPBACK.iter().map(|s| s.to_string()));
        a.extend(["--duration".into(), "1s".into()]);
        a
    };
    let t = Instant::now();
    let a_args = args("");
    let a = spawn(&a_args.iter().map(String::as_str).collect::<Vec<_>>());
    // The first joiner offers; give it the head start a person would.
    std::thread::sleep(Duration::from_millis(200));
    let b_args = args("");
    let b = spawn(&b_args.iter().map(String::as_str).collect::<Vec<_>>());
    let (ra, rb) = (finish(a, t), finish(b, t));
    assert_eq!(
        ra.code,
        0,
        "A: {}\n{}\nserver: {}",
        ra.stdout,
        ra.stderr,
        s.log()
    );
    assert_eq!(rb.code, 0, "B: {}\n{}", rb.stdout, rb.stderr);
    let (va, vb) = (json(&ra), json(&rb));
    check_connected(&va, "A");
    check_connected(&vb, "B");
    check_channel(&va, "A");
    check_channel(&vb, "B");
    assert_eq!(va["mode"], "signal");
    assert_eq!(va["role"], "offer");
    assert_eq!(vb["role"], "answer");
    eprintln!("rendezvous: both connected in {:?}", t.elapsed());
}

#[test]
fn unreachable_peer_candidates_fail_at_checking_with_exit_1_at_the_deadline() {
    let d = TempDir::new("unreachable");
    let port = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let remote = d.path().join("peer.json");
    std::fs::write(
        &remote,
        format!(
            r#"{{"type":"ice-description","version":1,"ufrag":"zzzz","pwd":"abcdefghijklmnopqrstuvwx","candidates":["candidate:1 1 udp 2130706431 127.0.0.1 {port} typ host"],"end_of_candidates":true}}"#
        ),
    )
    .unwrap();
    let r = connect_to_file(&remote, "2s", &d);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.took < Duration::from_secs(5), "took {:?}", r.took);
    let v = json(&r);
    assert_eq!(v["connected"], false);
    assert_eq!(v["selected_pair"], Value::Null);
    assert_eq!(v["failed_stage"], "checking");
    assert!(v["pairs"]["tried"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["pairs"]["succeeded"], 0, "{v}");
    let why = v["diagnosis"].as_str().unwrap();
    assert!(why.contains("unreachable from here"), "{why}");
    assert!(r.stderr.contains("not connected"), "{}", r.stderr);
}

fn pair_through_files(tag: &str, role_a: Option<&str>, role_b: Option<&str>) -> (Run, Run) {
    let d = TempDir::new(tag);
    let (a, b) = (d.file("a.json"), d.file("b.json"));
    let args = |ours: &str, theirs: &str, role: Option<&str>| {
        let mut v: Vec<String> = [
            "connect",
            "--local",
            ours,
            "--remote",
            theirs,
            "--timeout",
            "5s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(r) = role {
            v.extend(["--role".to_string(), r.to_string()]);
        }
        v.extend(LOOPBACK.iter().chain(&NO_CHANNEL).map(|s| s.to_string()));
        v
    };
    let (aa, ab) = (args(&a, &b, role_a), args(&b, &a, role_b));
    let t = Instant::now();
    let pa = spawn(&aa.iter().map(String::as_str).collect::<Vec<_>>());
    let pb = spawn(&ab.iter().map(String::as_str).collect::<Vec<_>>());
    (finish(pa, t), finish(pb, t))
}

#[test]
fn role_on_one_side_makes_the_other_take_the_opposite() {
    for (ra, want_a, want_b) in [("offer", "offer", "answer"), ("answer", "answer", "offer")] {
        let (a, b) = pair_through_files("role-one", Some(ra), None);
        assert_eq!(a.code, 0, "A: {}", a.stderr);
        assert_eq!(b.code, 0, "B: {}", b.stderr);
        assert_eq!(json(&a)["role"], want_a);
        assert_eq!(json(&b)["role"], want_b);
    }
}

#[test]
fn both_sides_told_to_offer_is_bad_input_exit_2() {
    let (a, b) = pair_through_files("role-both", Some("offer"), Some("offer"));
    for r in [&a, &b] {
        assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains("give one of them --role answer"),
            "{}",
            r.stderr
        );
        assert!(r.took < Duration::from_secs(3), "took {:?}", r.took);
    }
}

/// Issue 4: a peer that vanishes mid-measurement. Two connect processes
/// through files measure for 20 s; 4 s after both wrote their description
/// (connected on loopback within ~1.3 s: webrtc-ice nominates a prflx pair
/// after 1 s) one is SIGKILLed. The survivor must notice within the
/// channel's peer timeout (2 s), long before its 20 s of sending end, and
/// fail: exit 1, the channel "failed" with the reason, the partial figures
/// kept.
#[test]
fn a_peer_killed_mid_measurement_fails_the_survivor_within_the_peer_timeout() {
    let d = TempDir::new("vanish");
    let (a, b) = (d.file("a.json"), d.file("b.json"));
    let args = |ours: &str, theirs: &str| -> Vec<String> {
        let mut v: Vec<String> = [
            "connect",
            "--local",
            ours,
            "--remote",
            theirs,
            "--timeout",
            "10s",
            "--duration",
            "20s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(LOOPBACK.iter().map(|s| s.to_string()));
        v
    };
    let (aa, ab) = (args(&a, &b), args(&b, &a));
    let survivor = spawn(&aa.iter().map(String::as_str).collect::<Vec<_>>());
    let mut victim = spawn(&ab.iter().map(String::as_str).collect::<Vec<_>>());
    wait_for("both descriptions written", Duration::from_secs(10), || {
        Path::new(&a).exists() && Path::new(&b).exists()
    });
    std::thread::sleep(Duration::from_secs(4));
    victim.kill().expect("SIGKILL the peer");
    let _ = victim.wait();
    let killed = Instant::now();
    // Unbounded, the survivor would send for 16 s more.
    let r = finish_within(survivor, killed, Duration::from_secs(15));
    eprintln!("survivor ended {:?} after the kill", r.took);
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    // The channel's 2 s peer timeout, then closing (each step bounded at
    // 1 s): a generous bound, far below the 16 s of sending left.
    assert!(r.took < Duration::from_secs(6), "took {:?}", r.took);
    assert!(
        r.stderr
            .contains("the channel measurement failed: peer stopped answering after"),
        "{}",
        r.stderr
    );
    let v = json(&r);
    assert_eq!(v["connected"], true, "{v}");
    assert_eq!(v["passed"], false, "{v}");
    // Connected fine: nothing to diagnose about ICE.
    assert_eq!(v["failed_stage"], Value::Null, "{v}");
    let c = &v["channel"];
    assert_eq!(c["status"], "failed", "{c}");
    let reason = c["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("peer stopped answering after") && reason.contains("it exited"),
        "{reason}"
    );
    // It was measuring when the peer vanished: both directions moved, and
    // the figures measured until then are in the report.
    let report = &c["report"];
    assert_eq!(report["status"]["state"], "failed", "{report}");
    assert!(
        report["outbound"]["sent_packets"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert!(
        report["inbound"]["received_packets"].as_u64().unwrap() > 0,
        "{report}"
    );
    assert!(c["rtt_ms"].as_f64().is_some(), "{c}");
}

/// Issue 4: a room nobody joins ends at --timeout with exit 3 and says so,
/// naming the room; a peer that joins and never sends its description is
/// told apart.
#[test]
fn a_room_nobody_joins_is_exit_3_at_the_deadline_naming_the_room() {
    let s = stun_server(true);
    let http = s.http.expect("http address");
    let signal = format!("http://{http}");
    let connect = |room: &str| {
        let mut args = vec![
            "connect",
            "--signal",
            &signal,
            "--room",
            room,
            "--timeout",
            "2s",
        ];
        args.extend(LOOPBACK);
        finish_within(spawn(&args), Instant::now(), Duration::from_secs(10))
    };

    let r = connect("lonely");
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    let want = format!(
        "ice-probe: signaling timed out: no peer joined room \"lonely\" at {signal} within --timeout 2s"
    );
    assert!(r.stderr.contains(&want), "{}", r.stderr);
    // At the deadline: not before, and not long after.
    assert!(r.took >= Duration::from_millis(1900), "took {:?}", r.took);
    assert!(r.took < Duration::from_secs(5), "took {:?}", r.took);
    let v = json(&r);
    assert_eq!(v["connected"], false);
    assert_eq!(v["failed_stage"], "signaling");
    assert!(
        v["diagnosis"]
            .as_str()
            .unwrap()
            .contains("no peer joined room \"lonely\""),
        "{v}"
    );
    // The rendezvous made us the offerer: the report says so.
    assert_eq!(v["role"], "offer");
    eprintln!("lonely room: exit 3 after {:?}", r.took);

    // Somebody joins (a page, curl) but never sends a description.
    let joined = s.request("POST", "/v1/rooms/half/join", None);
    assert_eq!(joined.status, 200, "{}", joined.body);
    let r = connect("half");
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("a peer joined room \"half\" at http://")
            && r.stderr.contains("but its description did not arrive"),
        "{}",
        r.stderr
    );
    assert_eq!(json(&r)["role"], "answer");
}

/// Issue 4: connect through a TURN relay. Both peers gather only relay
/// candidates from a real coturn (`--relay-only`; with loopback host
/// candidates a host pair would win), so the pair, and the channel
/// measured over it, go through coturn's relay ports. `--require direct`
/// on one side fails it (exit 1) for that reason.
#[test]
fn two_processes_connect_through_a_coturn_relay() {
    let Some(bin) = coturn::need_coturn("two_processes_connect_through_a_coturn_relay") else {
        return;
    };
    let turn = coturn::start(&bin);
    let url = format!("turn:{}", turn.addr);
    let d = TempDir::new("relay");
    let (a, b) = (d.file("a.json"), d.file("b.json"));
    let args = |ours: &str, theirs: &str, extra: &[&str]| -> Vec<String> {
        let v: Vec<String> = [
            "connect",
            "--local",
            ours,
            "--remote",
            theirs,
            "--turn",
            &url,
            "--username",
            coturn::USER,
            "--credential",
            coturn::PASSWORD,
            "--relay-only",
            "--timeout",
            "10s",
            "--duration",
            "1s",
        ]
        .iter()
        .chain(extra)
        .chain(&LOOPBACK)
        .map(|s| s.to_string())
        .collect();
        v
    };
    let (aa, ab) = (args(&a, &b, &[]), args(&b, &a, &["--require", "direct"]));
    let t = Instant::now();
    let pa = spawn(&aa.iter().map(String::as_str).collect::<Vec<_>>());
    let pb = spawn(&ab.iter().map(String::as_str).collect::<Vec<_>>());
    let limit = Duration::from_secs(30);
    let (ra, rb) = (finish_within(pa, t, limit), finish_within(pb, t, limit));
    assert_eq!(
        ra.code,
        0,
        "A: {}\n{}\ncoturn:\n{}",
        ra.stdout,
        ra.stderr,
        turn.log()
    );
    assert_eq!(rb.code, 1, "B: {}\n{}", rb.stdout, rb.stderr);
    assert!(
        rb.stderr
            .contains("--require direct: only a relay (TURN) pair was selected"),
        "{}",
        rb.stderr
    );
    let (va, vb) = (json(&ra), json(&rb));
    for (side, v) in [("A", &va), ("B", &vb)] {
        assert_eq!(v["connected"], true, "{side}: {v}");
        let p = &v["selected_pair"];
        assert_eq!(p["relayed"], true, "{side}: {p}");
        for end in ["local", "remote"] {
            assert_eq!(p[end]["type"], "relay", "{side}: {p}");
            assert_eq!(p[end]["address"], "127.0.0.1", "{side}: {p}");
            let port = p[end]["port"].as_u64().unwrap() as u16;
            let relay_ports = turn.relay_ports.as_ref().expect("a relay port block");
            assert!(
                relay_ports.contains(&port),
                "{side}: {port} is not one of coturn's relay ports {relay_ports:?}"
            );
        }
        for c in v["local_candidates"].as_array().unwrap() {
            assert_eq!(c["type"], "relay", "{side}: --relay-only gathered {c}");
        }
        let nominated: Vec<&Value> = v["pair_list"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["nominated"] == true)
            .collect();
        assert_eq!(nominated.len(), 1, "{side}: {v}");
        assert_eq!(nominated[0]["state"], "succeeded", "{side}: {v}");
        assert_eq!(nominated[0]["local"]["type"], "relay", "{side}: {v}");
        // The channel ran over the relay, both ways.
        check_channel(v, side);
    }
    assert_eq!(
        va["selected_pair"]["remote"]["port"],
        vb["selected_pair"]["local"]["port"]
    );
    assert_eq!(vb["assertions"][0]["passed"], false);
    eprintln!(
        "relay: connected in {} / {} ms, channel rtt {} ms",
        va["time_to_connected_ms"], vb["time_to_connected_ms"], va["channel"]["rtt_ms"]
    );
}
