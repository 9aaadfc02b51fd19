//! `ice-probe connect` between two hosts behind real kernel NATs, for
//! every pair of the lab's NAT behaviours: the real binaries in the host
//! namespaces meet through the real `stun-server --http` rendezvous in the
//! server namespace, gather against its STUN port and, in a second run of
//! the matrix, against a real coturn with `--relay-only`.
//!
//! What must happen (RFC 4787 reasoning, and what NETLAB.md saw with
//! independent tools): without TURN, every pair among none / full-cone /
//! restricted-cone / port-restricted-cone / firewall connects directly;
//! address-dependent and symmetric (a new public port per destination)
//! connect only with none / full-cone / restricted-cone, whose filtering
//! lets the unexpected port in; UDP blocked never connects. A pair that
//! fails is reported with exit code 1 ("ran and failed") and the checking
//! stage. With TURN (relay-only) every pair that can reach the TURN server
//! over UDP connects through the relay; UDP blocked still fails because
//! webrtc-ice 0.17 has no TURN over TCP.
//!
//! Skips (and says so) when the machine cannot run labs, unless
//! ICE_LAB_REQUIRED=1; a missing coturn is a failure under
//! ICE_PROBE_REQUIRE_COTURN=1 (scripts/test.sh as root, CI), a loud skip of the TURN half elsewhere.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use e2e::lab::{
    Lab, NatBehaviour as B, NatSpec, STUN_PRIMARY, TURN_ADDR, TURN_PASSWORD, TURN_USER,
};
use e2e::{workspace_bin, ServerProcess};
use serde_json::Value;

/// Where the rendezvous listens in the server namespace.
const SIGNAL: &str = "203.0.113.1:8080";
/// ice-probe's own bound on the negotiation. Connected sides need about
/// 2.0 s (max 2.05 s over 98 in one run: webrtc-ice waits before it
/// nominates srflx/prflx/relay pairs); the pairs that must fail take all
/// of it, so it sets the matrix's wall time.
const TIMEOUT: &str = "6s";
/// Our bound on each process: its timeout plus the channel and slack.
const PROCESS_BOUND: Duration = Duration::from_secs(20);
/// Connects running at once (each is two processes); 2 cores.
const PARALLEL: usize = 8;

/// RFC 4787 outcome of hole punching between two behaviours.
fn direct_works(a: B, b: B) -> bool {
    use B::*;
    let cone_or_open = |x: B| matches!(x, None | FullCone | RestrictedCone);
    let friendly = |x: B| {
        matches!(
            x,
            None | FullCone | RestrictedCone | PortRestrictedCone | Firewall
        )
    };
    let per_destination = |x: B| matches!(x, AddressDependent | Symmetric);
    if a == UdpBlocked || b == UdpBlocked {
        return false;
    }
    if per_destination(a) {
        return cone_or_open(b);
    }
    if per_destination(b) {
        return cone_or_open(a);
    }
    friendly(a) && friendly(b)
}

fn relay_works(a: B, b: B) -> bool {
    a != B::UdpBlocked && b != B::UdpBlocked
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Column {
    /// `--stun` only: hole punching.
    Direct,
    /// `--turn ... --relay-only`: the relay path.
    Relay,
}

/// One connect between site `a` and site `b` of lab `lab`.
#[derive(Clone)]
struct Job {
    lab: usize,
    a: usize,
    b: usize,
    column: Column,
}

/// One side's result.
struct Side {
    code: i32,
    report: Value,
    stderr: String,
}

struct Outcome {
    job: Job,
    sides: [Side; 2],
}

fn start_side(lab: &Lab, site: usize, room: &str, column: Column) -> Child {
    let mut args = vec!["--stun".to_string(), format!("stun:{STUN_PRIMARY}")];
    if column == Column::Relay {
        args.extend(
            [
                "--turn",
                &format!("turn:{TURN_ADDR}"),
                "--username",
                TURN_USER,
                "--credential",
                TURN_PASSWORD,
                "--relay-only",
            ]
            .map(String::from),
        );
    }
    start_connect(lab, site, room, &args)
}

/// `ice-probe connect` through the lab's rendezvous in room `room`, from
/// host `site`, with the server flags `servers`.
fn start_connect(lab: &Lab, site: usize, room: &str, servers: &[String]) -> Child {
    lab.host(site)
        .command(workspace_bin("ice-probe"))
        .args([
            "connect",
            "--signal",
            &format!("http://{SIGNAL}"),
            "--room",
            room,
        ])
        .args(servers)
        .args(["--timeout", TIMEOUT, "--duration", "500ms", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ice-probe in the lab")
}

/// Waits for `child` at most until `until`, killing it then; its result.
fn finish(child: Child, until: Instant) -> Side {
    let c = e2e::collect_until(child, until);
    Side {
        code: c.code(),
        report: serde_json::from_str(&c.stdout).unwrap_or(Value::Null),
        stderr: c.stderr,
    }
}

fn run_job(labs: &[Lab], job: &Job) -> Outcome {
    let lab = &labs[job.lab];
    let room = format!("l{}-{}-{}-{:?}", job.lab, job.a, job.b, job.column);
    let t0 = Instant::now();
    let a = start_side(lab, job.a, &room, job.column);
    let b = start_side(lab, job.b, &room, job.column);
    let until = t0 + PROCESS_BOUND;
    let sides = [finish(a, until), finish(b, until)];
    Outcome {
        job: job.clone(),
        sides,
    }
}

/// The address a peer's packets come from, seen from outside its NAT.
fn public_address(lab: &Lab, site: usize) -> Ipv4Addr {
    let s = lab.site(site);
    if s.spec.behaviour.is_public() {
        s.host_ip()
    } else {
        s.public_ip()
    }
}

/// What is wrong with `o`, if anything.
fn check(labs: &[Lab], o: &Outcome) -> Option<String> {
    let lab = &labs[o.job.lab];
    let (ba, bb) = (
        lab.site(o.job.a).spec.behaviour,
        lab.site(o.job.b).spec.behaviour,
    );
    let want = match o.job.column {
        Column::Direct => direct_works(ba, bb),
        Column::Relay => relay_works(ba, bb),
    };
    let mut wrong = Vec::new();
    for (i, side) in o.sides.iter().enumerate() {
        let (me, peer) = if i == 0 {
            (o.job.a, o.job.b)
        } else {
            (o.job.b, o.job.a)
        };
        let r = &side.report;
        let tag = format!("{} side", lab.site(me).spec.behaviour);
        if r.is_null() {
            wrong.push(format!(
                "{tag}: no JSON report (exit {}); stderr:\n{}",
                side.code, side.stderr
            ));
            continue;
        }
        let want_code = if want { 0 } else { 1 };
        if side.code != want_code || r["connected"] != want {
            wrong.push(format!(
                "{tag}: want connected={want} exit {want_code}, got connected={} exit {}: {}",
                r["connected"], side.code, r["diagnosis"]
            ));
            continue;
        }
        if !want {
            // Relay-only behind UDP blocked gathers nothing (no TURN
            // allocation), so its peer receives no candidates: the stages
            // are gathering and signaling. Every other failure is checks
            // that never succeed.
            let my_beh = lab.site(me).spec.behaviour;
            let want_stage = match o.job.column {
                Column::Relay if my_beh == B::UdpBlocked => "gathering",
                Column::Relay => "signaling",
                Column::Direct => "checking",
            };
            if r["failed_stage"] != want_stage || !r["diagnosis"].is_string() {
                wrong.push(format!(
                    "{tag}: a failure must be at the {want_stage} stage with a diagnosis: {} / {}",
                    r["failed_stage"], r["diagnosis"]
                ));
            }
            continue;
        }
        let p = &r["selected_pair"];
        let (lt, rt) = (
            p["local"]["type"].as_str().unwrap_or("?"),
            p["remote"]["type"].as_str().unwrap_or("?"),
        );
        match o.job.column {
            Column::Direct => {
                // The peer is reached at its public mapping: its host
                // address if it has a public one, else its NAT's.
                let peer_ip = public_address(lab, peer).to_string();
                let peer_public = lab.site(peer).spec.behaviour.is_public();
                let remote_ok = if peer_public {
                    matches!(rt, "host" | "srflx" | "prflx")
                } else {
                    matches!(rt, "srflx" | "prflx")
                };
                let local_ok = matches!(lt, "host" | "srflx" | "prflx");
                if p["relayed"] != false
                    || !remote_ok
                    || !local_ok
                    || p["remote"]["address"] != peer_ip.as_str()
                {
                    wrong.push(format!(
                        "{tag}: want a direct pair to {peer_ip} ({}), got {p}",
                        if peer_public {
                            "host/srflx/prflx"
                        } else {
                            "srflx/prflx"
                        }
                    ));
                }
            }
            Column::Relay => {
                if p["relayed"] != true
                    || lt != "relay"
                    || p["local"]["address"] != TURN_ADDR.ip().to_string().as_str()
                {
                    wrong.push(format!(
                        "{tag}: want a local relay candidate on {}, got {p}",
                        TURN_ADDR.ip()
                    ));
                }
            }
        }
        if r["channel"]["status"] != "measured" {
            wrong.push(format!(
                "{tag}: connected, but the channel was not measured: {}",
                r["channel"]
            ));
        }
    }
    if wrong.is_empty() {
        None
    } else {
        Some(format!(
            "{ba} <-> {bb} ({:?}): {}",
            o.job.column,
            wrong.join("\n  ")
        ))
    }
}

/// A cell of the printed matrix: the pair types of the first side
/// (`local/remote`), or the exit code of a failure.
fn cell(o: &Outcome) -> String {
    let r = &o.sides[0].report;
    if r["connected"] == true {
        let p = &r["selected_pair"];
        format!(
            "{}/{}",
            p["local"]["type"].as_str().unwrap_or("?"),
            p["remote"]["type"].as_str().unwrap_or("?")
        )
    } else {
        format!("fail({})", o.sides[0].code)
    }
}

fn table(title: &str, labs: &[Lab], outcomes: &[Outcome], column: Column) -> String {
    let names: Vec<&str> = B::ALL.iter().map(|b| b.as_str()).collect();
    let short = |s: &str| {
        s.replace("-cone", "")
            .replace("address-dependent", "addr-dep")
    };
    let mut grid = vec![vec![String::from("-"); names.len()]; names.len()];
    for o in outcomes.iter().filter(|o| o.job.column == column) {
        let lab = &labs[o.job.lab];
        let ia = B::ALL
            .iter()
            .position(|b| *b == lab.site(o.job.a).spec.behaviour)
            .unwrap();
        let ib = B::ALL
            .iter()
            .position(|b| *b == lab.site(o.job.b).spec.behaviour)
            .unwrap();
        let mark = if check(labs, o).is_none() { "" } else { " !" };
        grid[ia][ib] = format!("{}{mark}", cell(o));
    }
    let mut s = format!("{title}\n{:<16}", "A \\ B");
    for n in &names {
        s.push_str(&format!("{:<16}", short(n)));
    }
    for (i, row) in grid.iter().enumerate() {
        s.push_str(&format!("\n{:<16}", short(names[i])));
        for c in row {
            s.push_str(&format!("{c:<16}"));
        }
    }
    s
}

/// Three labs cover all 36 pairs: one with every behaviour (28 pairs of
/// different behaviours) and two with each behaviour twice (the 8 pairs
/// of equal ones). Each lab has its own stun-server and coturn; the
/// connects run `PARALLEL` at a time.
#[test]
fn connect_matrix_through_real_nats() {
    let t0 = Instant::now();
    let n = NatSpec::new;
    let layouts: Vec<Vec<B>> = vec![
        B::ALL.to_vec(),
        B::ALL[..4].iter().flat_map(|b| [*b, *b]).collect(),
        B::ALL[4..].iter().flat_map(|b| [*b, *b]).collect(),
    ];
    let stun_bin = workspace_bin("stun-server");
    workspace_bin("ice-probe");
    let turn_bin = e2e::coturn::turnserver_or_skip("the TURN half of the connect matrix");

    let mut labs = Vec::new();
    for layout in &layouts {
        let mut b = Lab::builder();
        for beh in layout {
            b = b.nat(n(*beh));
        }
        let Some(lab) = b.build_or_skip() else {
            return;
        };
        labs.push(lab);
    }
    let servers: Vec<ServerProcess> = labs
        .iter()
        .map(|lab| lab.start_stun_server(&stun_bin, &["--http", SIGNAL]))
        .collect();
    let turns: Vec<e2e::coturn::Coturn> = match &turn_bin {
        Some(bin) => labs
            .iter()
            .map(|lab| {
                lab.start_turn_server(Path::new(bin))
                    .expect("coturn in the lab")
            })
            .collect(),
        None => Vec::new(),
    };

    let mut jobs = VecDeque::new();
    let mut columns = vec![Column::Direct];
    if turn_bin.is_some() {
        columns.push(Column::Relay);
    }
    for column in columns {
        for a in 0..8 {
            for b in a + 1..8 {
                jobs.push_back(Job {
                    lab: 0,
                    a,
                    b,
                    column,
                });
            }
        }
        for lab in 1..3 {
            for k in 0..4 {
                jobs.push_back(Job {
                    lab,
                    a: 2 * k,
                    b: 2 * k + 1,
                    column,
                });
            }
        }
    }
    let total = jobs.len();
    let queue = Mutex::new(jobs);
    let outcomes = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| loop {
                let Some(job) = queue.lock().unwrap().pop_front() else {
                    return;
                };
                let o = run_job(&labs, &job);
                outcomes.lock().unwrap().push(o);
            });
        }
    });
    let outcomes = outcomes.into_inner().unwrap();
    assert_eq!(outcomes.len(), total);

    e2e::print_uncaptured(&table(
        "ice-probe connect through the lab, STUN only (cell: A's selected local/remote candidate types, or fail(exit code); ! = unexpected)",
        &labs,
        &outcomes,
        Column::Direct,
    ));
    if turn_bin.is_some() {
        e2e::print_uncaptured(&table(
            "ice-probe connect through the lab, coturn --relay-only",
            &labs,
            &outcomes,
            Column::Relay,
        ));
    }
    // How much of the --timeout a connected pair used: the margin.
    let mut connected_ms: Vec<f64> = outcomes
        .iter()
        .flat_map(|o| o.sides.iter())
        .filter_map(|s| s.report["time_to_connected_ms"].as_f64())
        .collect();
    connected_ms.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        connected_ms
            .get(((connected_ms.len() as f64 - 1.0) * q).round() as usize)
            .map_or(f64::NAN, |ms| ms / 1000.0)
    };
    e2e::print_uncaptured(&format!(
        "{total} connects in {} labs, {PARALLEL} at a time: {:.1} s; time to connected over {} \
         connected sides: median {:.2} s, max {:.2} s (--timeout {TIMEOUT})",
        labs.len(),
        t0.elapsed().as_secs_f64(),
        connected_ms.len(),
        pick(0.5),
        pick(1.0)
    ));
    let wrong: Vec<String> = outcomes.iter().filter_map(|o| check(&labs, o)).collect();
    let logs = if wrong.is_empty() {
        String::new()
    } else {
        turns
            .iter()
            .map(|t| {
                t.log()
                    .lines()
                    .rev()
                    .take(20)
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    drop(turns);
    drop(servers);
    assert!(
        wrong.is_empty(),
        "{} of {total} connects went wrong:\n{}\ncoturn (last lines):\n{logs}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// STUN and TURN URLs of one server (coturn answers both), without
/// `--relay-only`, as most apps configure it: two symmetric NATs connect
/// through the relay, a full-cone and a port-restricted NAT directly. The
/// webrtc-util simulator deadlocks on this setup (the ignored case in
/// ice-probe/tests/vnet_matrix.rs); the real network stack must not.
#[test]
fn stun_and_turn_urls_of_one_server() {
    let Some(turn_bin) = e2e::coturn::turnserver_or_skip("stun_and_turn_urls_of_one_server") else {
        return;
    };
    let n = NatSpec::new;
    let Some(lab) = Lab::builder()
        .nat(n(B::Symmetric))
        .nat(n(B::Symmetric))
        .nat(n(B::FullCone))
        .nat(n(B::PortRestrictedCone))
        .build_or_skip()
    else {
        return;
    };
    let server = lab.start_stun_server(&workspace_bin("stun-server"), &["--http", SIGNAL]);
    let turn = lab.start_turn_server(&turn_bin).expect("coturn in the lab");
    let servers: Vec<String> = [
        "--stun",
        &format!("stun:{TURN_ADDR}"),
        "--turn",
        &format!("turn:{TURN_ADDR}"),
        "--username",
        TURN_USER,
        "--credential",
        TURN_PASSWORD,
    ]
    .map(String::from)
    .to_vec();
    let t0 = Instant::now();
    let until = t0 + PROCESS_BOUND;
    let children: Vec<Child> = [(0, "sym"), (1, "sym"), (2, "cone"), (3, "cone")]
        .into_iter()
        .map(|(site, room)| start_connect(&lab, site, room, &servers))
        .collect();
    let sides: Vec<Side> = children.into_iter().map(|c| finish(c, until)).collect();
    let mut lines = Vec::new();
    for (i, side) in sides.iter().enumerate() {
        let r = &side.report;
        let p = &r["selected_pair"];
        let beh = lab.site(i).spec.behaviour;
        lines.push(format!(
            "{:<22} exit {} {}/{} relayed {}",
            beh.as_str(),
            side.code,
            p["local"]["type"].as_str().unwrap_or("-"),
            p["remote"]["type"].as_str().unwrap_or("-"),
            p["relayed"]
        ));
        assert_eq!(
            (side.code, &r["connected"]),
            (0, &Value::Bool(true)),
            "{beh}: {r}\nstderr: {}\ncoturn: {}",
            side.stderr,
            turn.log()
        );
        let want_relayed = beh == B::Symmetric;
        assert_eq!(p["relayed"], want_relayed, "{beh}: {p}");
    }
    lines.push(format!(
        "STUN+TURN of one coturn: 2 connects in {:.1} s",
        t0.elapsed().as_secs_f64()
    ));
    e2e::print_uncaptured(&lines.join("\n"));
    drop(turn);
    drop(server);
}
