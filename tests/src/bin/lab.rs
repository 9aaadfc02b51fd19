//! `lab`: the test suite's NAT lab for people, to run their own commands
//! behind real kernel NATs (root, iproute2, nftables).
//!
//! ```text
//! cargo build -p stun-server -p ice-probe -p e2e
//! sudo target/debug/lab up demo --nat symmetric --nat full-cone --stun-server
//! sudo target/debug/lab exec demo host1 -- ice-probe nat stun:203.0.113.1:3478
//! sudo target/debug/lab down demo
//! sudo target/debug/lab run --nat port-restricted-cone --stun-server host1 -- ice-probe nat stun:203.0.113.1:3478
//! ```

use std::ffi::OsString;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use e2e::lab::{
    named_labs, remove_named, turn_spec, Lab, LabBuilder, LabError, NatSpec, MAX_NATS,
    NAMED_PREFIX, STUN_ALTERNATE, STUN_PRIMARY, TURN_ADDR, TURN_PASSWORD, TURN_USER,
};

/// Where `--stun-server` serves signaling in the server namespace.
const SIGNAL: &str = "203.0.113.1:8080";

const AFTER_HELP: &str = "\
TOPOLOGY: a server namespace (203.0.113.1 and 203.0.113.2), an internet
router, and per --nat a NAT router (public 198.51.100.N) with a host behind
it (10.N.0.2; public hosts for none/firewall get 198.51.100.(100+N)). Nodes:
srv, inet, natN, hostN. Nothing is linked to the root namespace: traffic
stays in the lab.

NAT SPECS: BEHAVIOUR[+hairpin][+udp-timeout=SECONDS]; behaviours: none,
full-cone, restricted-cone, port-restricted-cone, address-dependent,
symmetric, firewall, udp-blocked (RFC 4787 mapping/filtering; see
tests/src/lab/plan.rs for the nftables behind each).

SERVERS (optional): --stun-server runs our stun-server in srv on
stun:203.0.113.1:3478 (RFC 5780 alternate 203.0.113.2:3479) with the
signaling rendezvous on http://203.0.113.1:8080; --turn runs coturn on
turn:203.0.113.1:3480, user lab, password lab-secret.

EXIT CODES: 0 ok (run: the command's own code), 1 the lab or a server could
not be brought up, 2 bad usage.";

#[derive(Parser)]
#[command(
    name = "lab",
    about = "Bring up a NAT lab of real kernel NATs in network namespaces, run commands behind it, tear it down",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build a named lab and leave it up (until `lab down NAME`).
    Up {
        /// Lab name: 1-16 of a-z, 0-9, - (namespaces lab-NAME-srv, lab-NAME-host1, ...).
        name: String,
        #[command(flatten)]
        setup: Setup,
    },
    /// Run a command in a node of a lab that is up (srv, inet, natN, hostN).
    Exec {
        name: String,
        node: String,
        /// The command and its arguments (after --).
        #[arg(last = true, required = true)]
        command: Vec<OsString>,
    },
    /// Tear a named lab down: kill what runs in it, delete its namespaces.
    Down { name: String },
    /// List the named labs that are up.
    List,
    /// Build a lab, run one command in one node, tear it down; exits with
    /// the command's code.
    Run {
        #[command(flatten)]
        setup: Setup,
        /// The node to run in (srv, inet, natN, hostN).
        node: String,
        /// The command and its arguments (after --).
        #[arg(last = true, required = true)]
        command: Vec<OsString>,
    },
}

#[derive(Args)]
struct Setup {
    /// A NAT router with a host behind it (repeat for more, at most 8):
    /// BEHAVIOUR[+hairpin][+udp-timeout=SECONDS].
    #[arg(long = "nat", value_name = "SPEC", required = true)]
    nats: Vec<NatSpec>,
    /// Run our stun-server in srv (STUN, RFC 5780, signaling).
    #[arg(long)]
    stun_server: bool,
    /// The stun-server binary (default: the one beside this binary, else
    /// on PATH).
    #[arg(long, value_name = "PATH", requires = "stun_server")]
    stun_server_bin: Option<PathBuf>,
    /// Run coturn (Debian package coturn) in srv as a TURN relay.
    #[arg(long)]
    turn: bool,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        // `lab` alone: the help, as a usage error.
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(2);
        }
        // One line, like stun-server's and ice-probe's usage errors.
        Err(e) => {
            let line = common::cli_error::one_line(&e.render().to_string());
            eprintln!("lab: {line} (see --help)");
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err((code, msg)) => {
            eprintln!("lab: {msg}");
            ExitCode::from(code)
        }
    }
}

type Failure = (u8, String);

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Cmd::Up { name, setup } => {
            e2e::lab::validate_name(&name).map_err(|e| (2, e))?;
            let lab = build(&setup, Some(&name))?;
            let log_dir = std::env::temp_dir().join(format!("{NAMED_PREFIX}{name}"));
            std::fs::create_dir_all(&log_dir)
                .map_err(|e| (1, format!("{}: {e}", log_dir.display())))?;
            // Detached: their output goes to files, and `down` kills them.
            let servers = start_servers(&lab, &setup, &log_dir)?;
            print_summary(&lab, &servers);
            println!("logs: {}", log_dir.display());
            println!("run:  lab exec {name} host1 -- COMMAND ARGS    down: lab down {name}");
            lab.persist();
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Exec {
            name,
            node,
            command,
        } => {
            e2e::lab::validate_name(&name).map_err(|e| (2, e))?;
            let ns = format!("{NAMED_PREFIX}{name}-{node}");
            if !Path::new("/run/netns").join(&ns).exists() {
                let up = named_labs();
                return Err((
                    2,
                    format!(
                        "no node {node:?} in a lab named {name:?} (labs up: {})",
                        if up.is_empty() {
                            "none".into()
                        } else {
                            up.join(", ")
                        }
                    ),
                ));
            }
            let err = in_namespace(&ns, &command).exec();
            Err((1, format!("cannot run ip netns exec {ns}: {err}")))
        }
        Cmd::Down { name } => {
            let removed = remove_named(&name).map_err(|e| (2, e))?;
            if removed.is_empty() {
                eprintln!("lab: no lab named {name:?} is up");
            } else {
                println!("removed {}", removed.join(" "));
            }
            let _ =
                std::fs::remove_dir_all(std::env::temp_dir().join(format!("{NAMED_PREFIX}{name}")));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::List => {
            for name in named_labs() {
                println!("{name}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run {
            setup,
            node,
            command,
        } => {
            let lab = build(&setup, None)?;
            let ns = node_namespace(&lab, &node)?;
            let log_dir = std::env::temp_dir().join(lab.prefix().trim_end_matches('-'));
            std::fs::create_dir_all(&log_dir)
                .map_err(|e| (1, format!("{}: {e}", log_dir.display())))?;
            let servers = start_servers(&lab, &setup, &log_dir)?;
            eprint!("{}", summary(&lab, &servers));
            let status = in_namespace(&ns, &command)
                .status()
                .map_err(|e| (1, format!("cannot run the command in {node}: {e}")))?;
            let _ = std::fs::remove_dir_all(&log_dir);
            drop(lab); // tears down, killing the servers
            let code = status.code().unwrap_or(1).clamp(0, 255) as u8;
            Ok(ExitCode::from(code))
        }
    }
}

fn build(setup: &Setup, name: Option<&str>) -> Result<Lab, Failure> {
    if setup.nats.len() > MAX_NATS {
        return Err((
            2,
            format!("at most {MAX_NATS} --nat, not {}", setup.nats.len()),
        ));
    }
    let mut b: LabBuilder = Lab::builder();
    if let Some(name) = name {
        b = b.name(name);
    }
    for nat in &setup.nats {
        b = b.nat(nat.clone());
    }
    b.build().map_err(|e| match e {
        LabError::Unavailable(why) => (1, format!("cannot build a lab here: {why}")),
        LabError::Failed(why) => (1, why),
    })
}

fn node_namespace(lab: &Lab, node: &str) -> Result<String, Failure> {
    let ns = format!("{}{node}", lab.prefix());
    if lab.namespaces().iter().any(|n| n.name() == ns) {
        Ok(ns)
    } else {
        let nodes: Vec<&str> = lab
            .namespaces()
            .iter()
            .map(|n| n.name().trim_start_matches(lab.prefix()))
            .collect();
        Err((2, format!("no node {node:?}: one of {}", nodes.join(", "))))
    }
}

/// `ip netns exec NS command...`, with this binary's directory first on
/// PATH (so `stun-server` and `ice-probe` built beside it are found).
fn in_namespace(ns: &str, command: &[OsString]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).args(command);
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let mut paths = vec![dir];
        if let Some(p) = std::env::var_os("PATH") {
            paths.extend(std::env::split_paths(&p));
        }
        if let Ok(joined) = std::env::join_paths(paths) {
            c.env("PATH", joined);
        }
    }
    c
}

fn find_binary(name: &str, given: Option<&Path>) -> Result<PathBuf, Failure> {
    if let Some(p) = given {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err((2, format!("{}: no such file", p.display())))
        };
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(name)))
        .filter(|p| p.is_file());
    beside.or_else(|| e2e::find_on_path(name)).ok_or_else(|| {
        (
            1,
            format!("cannot find {name} beside this binary or on PATH (cargo build -p {name}, or give its path)"),
        )
    })
}

/// What runs in the lab's server namespace.
struct Servers {
    stun: bool,
    turn: bool,
}

fn start_servers(lab: &Lab, setup: &Setup, log_dir: &Path) -> Result<Servers, Failure> {
    let file = |name: &str| -> Result<std::fs::File, Failure> {
        let p = log_dir.join(name);
        std::fs::File::create(&p).map_err(|e| (1, format!("{}: {e}", p.display())))
    };
    if setup.stun_server {
        let bin = find_binary("stun-server", setup.stun_server_bin.as_deref())?;
        let log = file("stun-server.log")?;
        lab.server()
            .command(&bin)
            .args(["--listen", &STUN_PRIMARY.to_string()])
            .args(["--alternate", &STUN_ALTERNATE.to_string()])
            .args(["--http", SIGNAL, "--rate-limit", "off"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| (1, e.to_string()))?)
            .stderr(log)
            .spawn()
            .map_err(|e| (1, format!("cannot start {}: {e}", bin.display())))?;
        wait_stun(
            lab,
            STUN_PRIMARY,
            "stun-server",
            &log_dir.join("stun-server.log"),
        )?;
    }
    if setup.turn {
        let bin = find_binary("turnserver", None)
            .map_err(|(c, m)| (c, format!("{m}; apt-get install coturn")))?;
        let log = file("coturn.log")?;
        let dir = log_dir.join("coturn");
        std::fs::create_dir_all(&dir).map_err(|e| (1, format!("{}: {e}", dir.display())))?;
        // Detached, unlike the tests' Coturn: its log goes to a file.
        lab.server()
            .command(&bin)
            .args(turn_spec().args(&dir))
            .args(["--log-file", "stdout"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| (1, format!("cannot start {}: {e}", bin.display())))?;
        wait_stun(lab, TURN_ADDR, "coturn", &log_dir.join("coturn.log"))?;
    }
    Ok(Servers {
        stun: setup.stun_server,
        turn: setup.turn,
    })
}

fn wait_stun(lab: &Lab, addr: SocketAddr, what: &str, log: &Path) -> Result<(), Failure> {
    match lab.server().stun_answers(addr, Duration::from_secs(10)) {
        Ok(true) => Ok(()),
        Ok(false) => Err((
            1,
            format!(
                "{what} did not answer on {addr} within 10 s; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ),
        )),
        Err(e) => Err((1, format!("probing {what}: {e}"))),
    }
}

fn summary(lab: &Lab, servers: &Servers) -> String {
    let mut s = format!(
        "lab {} up\n{:<8} {:<28} {:<16} {:<16}\n",
        lab.prefix().trim_end_matches('-'),
        "node",
        "namespace",
        "address",
        "public address"
    );
    s.push_str(&format!(
        "{:<8} {:<28} {:<16} {:<16}\n",
        "srv",
        lab.server().name(),
        format!("{} + .2", STUN_PRIMARY.ip()),
        "(public)"
    ));
    for site in lab.sites() {
        s.push_str(&format!(
            "{:<8} {:<28} {:<16} {:<16} {}\n",
            format!("host{}", site.number),
            site.host.name(),
            site.host_ip(),
            if site.spec.behaviour.is_public() {
                site.host_ip()
            } else {
                site.public_ip()
            },
            site.spec
        ));
    }
    if servers.stun {
        s.push_str(&format!(
            "stun-server: stun:{STUN_PRIMARY} (RFC 5780 alternate {STUN_ALTERNATE}), signaling http://{SIGNAL}\n"
        ));
    }
    if servers.turn {
        s.push_str(&format!(
            "coturn: turn:{TURN_ADDR} --username {TURN_USER} --credential {TURN_PASSWORD}\n"
        ));
    }
    s
}

fn print_summary(lab: &Lab, servers: &Servers) {
    print!("{}", summary(lab, servers));
}
