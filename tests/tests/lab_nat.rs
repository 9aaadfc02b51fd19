//! `ice-probe nat` behind real kernel NATs: for each behaviour of the lab
//! (tests/src/lab), the real binary runs in the host namespace behind it
//! against the real `stun-server` (RFC 5780) in the server namespace, and
//! must report what the NAT was built to do. Skips (and says so) when the
//! machine cannot run labs, unless ICE_LAB_REQUIRED=1.

use std::process::Output;
use std::time::{Duration, Instant};

use e2e::lab::{Lab, NatBehaviour as B, NatSpec, STUN_PRIMARY};
use e2e::{workspace_bin, ServerProcess};
use serde_json::Value;

/// What `ice-probe nat --json` must say behind one NAT.
#[derive(Clone)]
struct Expected {
    udp: bool,
    mapping: &'static str,
    filtering: &'static str,
    nat_type: &'static str,
    /// `None`: JSON null (not measurable, e.g. behind a symmetric NAT).
    hairpinning: Option<bool>,
    exit: i32,
}

const EIM: &str = "endpoint-independent";
const EIF: &str = "endpoint-independent";
const ADF: &str = "address-dependent";
const APD: &str = "address-and-port-dependent";
const UNKNOWN: &str = "unknown";

fn ok(
    mapping: &'static str,
    filtering: &'static str,
    nat_type: &'static str,
    hairpinning: Option<bool>,
) -> Expected {
    Expected {
        udp: true,
        mapping,
        filtering,
        nat_type,
        hairpinning,
        exit: 0,
    }
}

/// Every row of the matrix: the NAT and what must be reported behind it.
fn cases() -> Vec<(NatSpec, Expected)> {
    let n = NatSpec::new;
    vec![
        (n(B::None), ok("no-nat", EIF, "open", Some(true))),
        (n(B::Firewall), ok("no-nat", APD, "firewall", Some(true))),
        (n(B::FullCone), ok(EIM, EIF, "full-cone", Some(false))),
        (
            n(B::FullCone).hairpinning(true),
            ok(EIM, EIF, "full-cone", Some(true)),
        ),
        (
            n(B::RestrictedCone),
            ok(EIM, ADF, "restricted-cone", Some(false)),
        ),
        (
            n(B::RestrictedCone).hairpinning(true),
            ok(EIM, ADF, "restricted-cone", Some(true)),
        ),
        (
            n(B::PortRestrictedCone),
            ok(EIM, APD, "port-restricted-cone", Some(false)),
        ),
        (
            n(B::PortRestrictedCone).hairpinning(true),
            ok(EIM, APD, "port-restricted-cone", Some(true)),
        ),
        // Behind a mapping that varies by destination ice-probe gives no
        // verdict it cannot check: the filtering control (CHANGE-REQUEST
        // answers on a socket that sent to every server address) fails,
        // since each destination got its own mapping, so filtering is
        // "unknown" (the NAT filters address-and-port-dependently); and a
        // hairpinned packet that does not arrive may have been filtered.
        (
            n(B::AddressDependent),
            ok("address-dependent", UNKNOWN, "symmetric", None),
        ),
        (n(B::Symmetric), ok(APD, UNKNOWN, "symmetric", None)),
        (
            n(B::Symmetric).hairpinning(true),
            ok(APD, UNKNOWN, "symmetric", Some(true)),
        ),
        (
            n(B::UdpBlocked),
            Expected {
                udp: false,
                mapping: UNKNOWN,
                filtering: UNKNOWN,
                nat_type: "udp-blocked",
                hairpinning: None,
                exit: 1,
            },
        ),
    ]
}

/// `ice-probe nat stun:203.0.113.1:3478 --json ARGS` in `lab`'s host `i`:
/// (exit code, report, wall time).
fn probe(lab: &Lab, i: usize, args: &[&str]) -> (i32, Value, Duration) {
    let t0 = Instant::now();
    let out: Output = lab
        .host(i)
        .command(workspace_bin("ice-probe"))
        .args(["nat", &format!("stun:{STUN_PRIMARY}"), "--json"])
        .args(args)
        .output()
        .expect("run ice-probe in the lab");
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

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_both(lines: &[String]) {
    e2e::print_uncaptured(&lines.join("\n"));
}

/// One lab per group of up to 3 NATs, each with its own server; built and
/// probed in parallel.
#[test]
fn nat_matrix_matches_the_configured_behaviour() {
    let t0 = Instant::now();
    let cases = cases();
    let groups: Vec<&[(NatSpec, Expected)]> = cases.chunks(3).collect();
    let stun_server = workspace_bin("stun-server");
    workspace_bin("ice-probe");

    let results: Vec<Option<Vec<(i32, Value, Duration)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .iter()
            .map(|group| {
                let stun_server = &stun_server;
                scope.spawn(move || {
                    let mut b = Lab::builder();
                    for (spec, _) in group.iter() {
                        b = b.nat(spec.clone());
                    }
                    let lab = b.build_or_skip()?;
                    let server: ServerProcess = lab.start_stun_server(stun_server, &[]);
                    let runs = std::thread::scope(|inner| {
                        let hs: Vec<_> = (0..group.len())
                            .map(|i| {
                                let lab = &lab;
                                inner.spawn(move || probe(lab, i, &[]))
                            })
                            .collect();
                        hs.into_iter()
                            .map(|h| h.join().expect("probe thread"))
                            .collect::<Vec<_>>()
                    });
                    drop(server);
                    Some(runs)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("lab thread"))
            .collect()
    });
    if results.iter().any(Option::is_none) {
        return; // skipped (printed by build_or_skip)
    }

    let mut lines = vec![
        format!(
            "{:<34} {:<28} {:<28} {:<22} {:<9} {:<5} {:<4} {:>6}  ok",
            "NAT (lab)", "mapping", "filtering", "nat_type", "hairpin", "udp", "exit", "ms"
        ),
        "-".repeat(146),
    ];
    let mut wrong = Vec::new();
    let runs = results.into_iter().flatten().flatten();
    for ((spec, want), (code, r, took)) in cases.iter().zip(runs) {
        let hair = r["hairpinning"].as_bool();
        let good = r["udp"] == want.udp
            && r["mapping"] == want.mapping
            && r["filtering"] == want.filtering
            && r["nat_type"] == want.nat_type
            && hair == want.hairpinning
            && code == want.exit;
        lines.push(format!(
            "{:<34} {:<28} {:<28} {:<22} {:<9} {:<5} {:<4} {:>6}  {}",
            spec.to_string(),
            show(&r["mapping"]),
            show(&r["filtering"]),
            show(&r["nat_type"]),
            show(&r["hairpinning"]),
            show(&r["udp"]),
            code,
            took.as_millis(),
            if good { "yes" } else { "NO" }
        ));
        if !good {
            wrong.push(format!(
                "{spec}: want mapping {} filtering {} nat_type {} hairpinning {:?} udp {} exit {}; got exit {code}, report:\n{r:#}",
                want.mapping, want.filtering, want.nat_type, want.hairpinning, want.udp, want.exit
            ));
        }
    }
    lines.push(format!(
        "{} NATs in {} labs, {:.1} s",
        cases.len(),
        groups.len(),
        t0.elapsed().as_secs_f64()
    ));
    print_both(&lines);
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// The binding lifetime `ice-probe nat --lifetime` finds is the router's
/// conntrack UDP timeout.
#[test]
fn lifetime_matches_the_conntrack_timeout() {
    const TIMEOUT_S: f64 = 5.0;
    const MAX: &str = "8s";
    let t0 = Instant::now();
    let Some(lab) = Lab::builder()
        .nat(NatSpec::new(B::PortRestrictedCone).udp_timeout(Duration::from_secs(TIMEOUT_S as u64)))
        .build_or_skip()
    else {
        return;
    };
    let _server = lab.start_stun_server(&workspace_bin("stun-server"), &[]);
    let (code, r, took) = probe(&lab, 0, &["--lifetime", MAX]);
    let l = &r["families"][0]["lifetime"];
    print_both(&[format!(
        "lifetime behind {} (conntrack udp timeout {TIMEOUT_S} s, --lifetime {MAX}): survived {} s, expired {} s, probe {:.1} s, whole test {:.1} s",
        lab.site(0).spec,
        show(&l["survived_s"]),
        show(&l["expired_s"]),
        took.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    )]);
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["nat_type"], "port-restricted-cone", "{r:#}");
    assert_eq!(l["measured"], true, "{l:#}");
    let survived = l["survived_s"].as_f64().expect("survived_s");
    let expired = l["expired_s"]
        .as_f64()
        .expect("a 5 s binding expires within 8 s");
    // Resolution is 1 s; conntrack expires entries exactly on lookup.
    assert!(
        (TIMEOUT_S - 1.5..=TIMEOUT_S + 0.5).contains(&survived),
        "survived {survived}"
    );
    assert!(
        (TIMEOUT_S - 0.5..=TIMEOUT_S + 1.5).contains(&expired),
        "expired {expired}"
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

/// The lab leaves nothing behind and touches nothing outside it.
#[test]
fn lab_is_isolated_and_torn_down() {
    let Some(lab) = Lab::builder()
        .nat(NatSpec::new(B::FullCone))
        .nat(NatSpec::new(B::None))
        .build_or_skip()
    else {
        return;
    };
    let names: Vec<String> = lab
        .namespaces()
        .iter()
        .map(|n| n.name().to_string())
        .collect();
    assert_eq!(names.len(), 6);
    // No default route in the internet router, and it forwards nothing
    // outside the lab's ranges.
    let routes = lab.internet().run("ip", &["route"]).unwrap();
    assert!(!routes.contains("default"), "{routes}");
    // Every lab interface is a veth whose peer is in the lab: the root
    // namespace holds none of our interfaces.
    let root = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    let root = String::from_utf8_lossy(&root.stdout);
    for ifname in ["nat1:", "nat2:", "srv@", "wan@", "lan@"] {
        assert!(
            !root.contains(ifname),
            "{ifname} in the root namespace: {root}"
        );
    }
    drop(lab);
    let left = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| names.contains(n))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}
