//! `ice-probe connect` against an ICE agent that is not ice-probe: aioice
//! (Debian's python3-aioice, driven by tests/peers/aioice_peer.py) behind
//! a port-restricted NAT, ice-probe behind a full-cone NAT, both with our
//! stun-server, trading descriptions through files. Each side takes each
//! role once. ice-probe must connect, report the pair (the aioice side's
//! NAT address), and say the channel was skipped because the peer does
//! not answer, with exit code 0.
//!
//! Skips (and says so) when the machine cannot run labs or has no aioice,
//! unless ICE_LAB_REQUIRED=1.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use e2e::lab::{Lab, NatBehaviour as B, NatSpec, STUN_PRIMARY};
use e2e::{workspace_bin, TempDir};
use serde_json::Value;

/// Debian's interpreter: python3-aioice installs for it, not for another
/// python3 that may come first on PATH.
const PYTHON: &str = "/usr/bin/python3";

fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/aioice_peer.py")
}

fn aioice_or_skip() -> bool {
    let ok = Command::new(PYTHON)
        .args(["-c", "import aioice"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let why = "aioice is not importable by /usr/bin/python3 (Debian package python3-aioice; scripts/test.sh installs it)";
        if std::env::var("ICE_LAB_REQUIRED").is_ok_and(|v| v == "1") {
            panic!("{why} (and ICE_LAB_REQUIRED=1)");
        }
        e2e::print_uncaptured(&format!("SKIPPED ({why})"));
    }
    ok
}

#[test]
fn connect_to_aioice_in_both_roles() {
    if !aioice_or_skip() {
        return;
    }
    let Some(lab) = Lab::builder()
        .nat(NatSpec::new(B::PortRestrictedCone))
        .nat(NatSpec::new(B::FullCone))
        .build_or_skip()
    else {
        return;
    };
    let server = lab.start_stun_server(&workspace_bin("stun-server"), &[]);
    let aioice_public = lab.site(0).public_ip().to_string();
    let mut lines = Vec::new();
    let mut wrong = Vec::new();
    for (aioice_role, probe_role) in [("offer", "answer"), ("answer", "offer")] {
        let dir = TempDir::new(&format!("interop-{aioice_role}"));
        let (a, b) = (dir.file("aioice.json"), dir.file("ice-probe.json"));
        let t0 = Instant::now();
        let peer = lab
            .host(0)
            .command(PYTHON)
            .arg(peer_script())
            .args([&a, &b])
            .args([aioice_role, &STUN_PRIMARY.to_string(), "10"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the aioice peer");
        let probe = lab
            .host(1)
            .command(workspace_bin("ice-probe"))
            .args([
                "connect", "--local", &b, "--remote", &a, "--role", probe_role,
            ])
            .args(["--stun", &format!("stun:{STUN_PRIMARY}")])
            .args(["--timeout", "10s", "--duration", "1s", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ice-probe");
        let until = t0 + Duration::from_secs(25);
        let (probe, peer) = (
            e2e::collect_until(probe, until),
            e2e::collect_until(peer, until),
        );
        let r: Value = serde_json::from_str(&probe.stdout).unwrap_or(Value::Null);
        let theirs: Value = peer
            .stdout
            .lines()
            .last()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or(Value::Null);
        let p = &r["selected_pair"];
        lines.push(format!(
            "aioice {aioice_role:<6} ice-probe {probe_role:<6}: exit {:?}, connected {}, pair {} {}:{} -> {} {}:{}, channel {} ({}); aioice says {theirs}",
            probe.code(),
            r["connected"],
            p["local"]["type"],
            p["local"]["address"],
            p["local"]["port"],
            p["remote"]["type"],
            p["remote"]["address"],
            p["remote"]["port"],
            r["channel"]["status"],
            r["channel"]["reason"],
        ));
        let mut problems = Vec::new();
        if probe.code() != 0 || r["connected"] != true {
            problems.push("ice-probe did not connect with exit 0".to_string());
        }
        if p["remote"]["address"] != aioice_public.as_str() {
            problems.push(format!("the pair's remote end is not {aioice_public}"));
        }
        if r["role"] != probe_role {
            problems.push(format!("role {} is not {probe_role}", r["role"]));
        }
        if r["channel"]["status"] != "skipped"
            || !r["channel"]["reason"]
                .as_str()
                .is_some_and(|s| s.contains("does not answer"))
        {
            problems.push("the channel must be skipped: the peer does not answer".to_string());
        }
        if theirs["connected"] != true {
            problems.push("aioice did not connect".to_string());
        }
        if !problems.is_empty() {
            wrong.push(format!(
                "aioice {aioice_role}: {}\nice-probe: {r:#}\nice-probe stderr: {}\naioice stdout: {}\naioice stderr: {}",
                problems.join("; "),
                probe.stderr,
                peer.stdout,
                peer.stderr
            ));
        }
    }
    e2e::print_uncaptured(&lines.join("\n"));
    drop(server);
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}
