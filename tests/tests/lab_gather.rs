//! `ice-probe gather` behind real kernel NATs: the srflx candidate must be
//! the NAT's public address and the very port the NAT mapped the
//! candidate's socket to, read back from the router's conntrack table
//! (`conntrack`, Debian package conntrack). With coturn, the relay
//! candidate's related address is that public address too.
//!
//! Skips (and says so) when the machine cannot run labs, unless
//! ICE_LAB_REQUIRED=1.

use e2e::lab::{
    Lab, NatBehaviour as B, NatSpec, STUN_PRIMARY, TURN_ADDR, TURN_PASSWORD, TURN_USER,
};
use e2e::workspace_bin;
use serde_json::Value;

/// The public port conntrack in router `i` gave the UDP flow from the
/// host's `port` to the STUN server: the reply tuple's destination port.
fn conntrack_mapping(lab: &Lab, i: usize, host_port: u16) -> Option<u16> {
    let out = lab
        .router(i)
        .run(
            "conntrack",
            &[
                "-L",
                "-p",
                "udp",
                "--orig-dst",
                &STUN_PRIMARY.ip().to_string(),
            ],
        )
        .expect("conntrack -L in the router");
    // udp 17 29 src=10.1.0.2 dst=203.0.113.1 sport=A dport=3478 ...
    //   src=203.0.113.1 dst=198.51.100.1 sport=3478 dport=B ...
    for line in out.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let values = |key: &str| -> Vec<&str> {
            fields.iter().filter_map(|f| f.strip_prefix(key)).collect()
        };
        let (sports, dports) = (values("sport="), values("dport="));
        if sports.len() == 2
            && dports.len() == 2
            && sports[0] == host_port.to_string()
            && dports[0] == STUN_PRIMARY.port().to_string()
        {
            return dports[1].parse().ok();
        }
    }
    None
}

/// srflx behind every translating behaviour: address and port are the
/// NAT's real mapping, whatever the mapping policy (port-preserving plain
/// SNAT, a cone map, per-destination ports, fully random ports).
#[test]
fn gather_reports_the_nat_mapping_as_srflx() {
    let behaviours = [
        B::FullCone,
        B::RestrictedCone,
        B::PortRestrictedCone,
        B::AddressDependent,
        B::Symmetric,
    ];
    if e2e::find_on_path("conntrack").is_none() {
        let why =
            "conntrack (Debian package conntrack) is not installed: scripts/test.sh installs it";
        if std::env::var("ICE_LAB_REQUIRED").is_ok_and(|v| v == "1") {
            panic!("{why} (and ICE_LAB_REQUIRED=1)");
        }
        e2e::print_uncaptured(&format!("SKIPPED ({why})"));
        return;
    }
    let mut b = Lab::builder();
    for beh in behaviours {
        b = b.nat(NatSpec::new(beh));
    }
    let Some(lab) = b.build_or_skip() else {
        return;
    };
    let stun_bin = workspace_bin("stun-server");
    let server = lab.start_stun_server(&stun_bin, &[]);
    let turn = e2e::coturn::turnserver_or_skip("the relay part of lab_gather")
        .map(|bin| lab.start_turn_server(&bin).expect("coturn"));

    let mut lines = vec![format!(
        "{:<22} {:<26} {:<22} {:<22} {:<18}",
        "NAT", "host candidate", "srflx", "NAT mapping (conntrack)", "TURN mapped"
    )];
    let mut wrong = Vec::new();
    for (i, beh) in behaviours.iter().enumerate() {
        let mut c = lab.host(i).command(workspace_bin("ice-probe"));
        c.args(["gather", "--stun", &format!("stun:{STUN_PRIMARY}")])
            .args(["--timeout", "3s", "--json"]);
        if turn.is_some() {
            c.args(["--turn", &format!("turn:{TURN_ADDR}")]).args([
                "--username",
                TURN_USER,
                "--credential",
                TURN_PASSWORD,
            ]);
        }
        let out = c.output().expect("run ice-probe gather in the lab");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{beh}: not JSON ({e}); stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let cands = v["candidates"].as_array().cloned().unwrap_or_default();
        let of = |t: &str| -> Vec<&Value> { cands.iter().filter(|c| c["type"] == t).collect() };
        let public = lab.site(i).public_ip().to_string();
        let host_ip = lab.site(i).host_ip().to_string();
        let (srflx, hosts, relays) = (of("srflx"), of("host"), of("relay"));
        let row_srflx = srflx
            .first()
            .map(|c| format!("{}:{}", c["address"], c["port"]).replace('"', ""))
            .unwrap_or_else(|| "none".into());
        let mut mapping_text = String::from("-");
        if out.status.code() != Some(0) {
            wrong.push(format!("{beh}: exit {:?}, want 0: {v}", out.status.code()));
        }
        if !hosts.iter().any(|c| c["address"] == host_ip.as_str()) {
            wrong.push(format!("{beh}: no host candidate on {host_ip}: {v}"));
        }
        if srflx.len() != 1 {
            wrong.push(format!(
                "{beh}: want exactly one srflx, got {}: {v}",
                srflx.len()
            ));
        }
        for s in &srflx {
            let related = s["related_port"].as_u64().unwrap_or(0) as u16;
            let port = s["port"].as_u64().unwrap_or(0) as u16;
            let mapped = conntrack_mapping(&lab, i, related);
            mapping_text = match mapped {
                Some(m) => format!("{public}:{m}"),
                None => "not found".into(),
            };
            if s["address"] != public.as_str() {
                wrong.push(format!(
                    "{beh}: srflx address {} is not the NAT's {public}",
                    s["address"]
                ));
            }
            // webrtc-ice gives the socket's bound address (0.0.0.0) as raddr.
            if s["related_address"] != host_ip.as_str() && s["related_address"] != "0.0.0.0" {
                wrong.push(format!(
                    "{beh}: srflx related address {} is neither the host's {host_ip} nor 0.0.0.0",
                    s["related_address"]
                ));
            }
            if mapped != Some(port) {
                wrong.push(format!(
                    "{beh}: srflx port {port} (from local port {related}) but conntrack mapped it to {mapped:?}"
                ));
            }
        }
        // Our own probe of each URL saw the same public address (for
        // TURN: the XOR-MAPPED-ADDRESS of the Allocate answer).
        let probes = v["probes"].as_array().cloned().unwrap_or_default();
        let mut relay_text = String::from("-");
        for p in &probes {
            let mapped = p["mapped_address"].as_str().unwrap_or("none");
            if !mapped.starts_with(&format!("{public}:")) {
                wrong.push(format!(
                    "{beh}: the probe of {} saw {mapped}, not {public}",
                    p["url"]
                ));
            }
        }
        if turn.is_some() {
            let turn_probe = probes.iter().find(|p| p["kind"] == "turn");
            relay_text = turn_probe
                .and_then(|p| p["mapped_address"].as_str())
                .unwrap_or("none")
                .to_string();
            match relays.first() {
                Some(r) if r["address"] == TURN_ADDR.ip().to_string().as_str() => {}
                other => wrong.push(format!(
                    "{beh}: want a relay candidate on {}, got {other:?}: {v}",
                    TURN_ADDR.ip()
                )),
            }
        }
        let host_text = hosts
            .iter()
            .find(|c| c["address"] == host_ip.as_str())
            .map(|c| format!("{}:{}", c["address"], c["port"]).replace('"', ""))
            .unwrap_or_else(|| "none".into());
        lines.push(format!(
            "{:<22} {:<26} {:<22} {:<22} {:<18}",
            beh.as_str(),
            host_text,
            row_srflx,
            mapping_text,
            relay_text
        ));
    }
    e2e::print_uncaptured(&lines.join("\n"));
    drop(turn);
    drop(server);
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
