//! A NAT lab of real kernel NATs in network namespaces, for tests that run
//! the real binaries behind them.
//!
//! [`Lab::builder`] creates a server namespace (203.0.113.1 and .2: RFC
//! 5780 primary and alternate), an "internet" router namespace and, per
//! [`NatSpec`], a NAT router namespace with a host namespace behind it
//! (see [`plan`] for the addresses and the nftables constructs, which are
//! those of `/work/shared/NETLAB.md`). Traffic never leaves the lab: no
//! link touches the root namespace and the internet router forwards only
//! between the lab's public ranges.
//!
//! Namespace names start with a prefix unique to the lab
//! (`ipl<pid>x<counter>-`), so labs run in parallel; dropping the [`Lab`]
//! kills what still runs in its namespaces and deletes them. The first lab
//! of a process also removes namespaces of this prefix family whose
//! process is gone (a crashed run).
//!
//! Needs root, `nft` and `ip` (iproute2). When the lab cannot run,
//! [`LabBuilder::build_or_skip`] prints `SKIPPED (lab unavailable: ...)`
//! and returns `None`, unless `ICE_LAB_REQUIRED=1`, when it panics.

pub mod plan;
mod spec;
mod turn;

use std::ffi::OsStr;
use std::fmt;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

pub use plan::{SERVER_ALTERNATE, SERVER_PRIMARY};
pub use spec::{LabSpec, NatBehaviour, NatSpec, MAX_NATS};
pub use turn::{turn_spec, TURN_ADDR, TURN_PASSWORD, TURN_USER};

use crate::{ServerProcess, StartOptions};

/// Every lab namespace name starts with this, then `<pid>x<counter>-`.
pub const PREFIX_FAMILY: &str = "ipl";
/// Set to `1` to make an unavailable lab a test failure instead of a skip.
pub const REQUIRED_ENV: &str = "ICE_LAB_REQUIRED";
/// Where `stun-server` listens in the lab's server namespace.
pub const STUN_PRIMARY: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(SERVER_PRIMARY), 3478);
pub const STUN_ALTERNATE: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(SERVER_ALTERNATE), 3479);

/// Why a lab could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabError {
    /// This machine cannot run labs (not root, no nft, no netns): skip.
    Unavailable(String),
    /// A bad spec or a command that failed on a machine that can: a bug.
    Failed(String),
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabError::Unavailable(why) => write!(f, "lab unavailable: {why}"),
            LabError::Failed(why) => write!(f, "lab failed: {why}"),
        }
    }
}

impl std::error::Error for LabError {}

/// One network namespace of a lab.
#[derive(Debug, Clone)]
pub struct Namespace {
    name: String,
}

impl Namespace {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program` run inside this namespace (`ip netns exec NAME program`);
    /// add arguments, env and stdio as with any [`Command`].
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `f` on a fresh thread that has entered this namespace
    /// (`setns(2)` is per thread): sockets `f` opens live here, whatever
    /// thread uses them later.
    pub fn enter<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
            use std::os::fd::AsRawFd;
            // SAFETY: setns on an open netns fd; it changes only this
            // thread, which ends when `f` returns.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
            }
            Ok(f())
        })
        .join()
        .map_err(|_| "the thread in the namespace panicked".to_string())?
    }

    /// Whether a STUN server at `to` answers a Binding request sent from
    /// inside this namespace within `within` (retransmitting every 100 ms).
    pub fn stun_answers(&self, to: SocketAddr, within: Duration) -> Result<bool, String> {
        self.enter(move || -> Result<bool, String> {
            let any = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
            let sock = std::net::UdpSocket::bind(any).map_err(|e| e.to_string())?;
            let req = crate::binding_request(false);
            let per_try = Duration::from_millis(100);
            let tries = (within.as_millis() / per_try.as_millis()).max(1) as usize;
            Ok(crate::exchange_retry(&sock, to, &req, tries, per_try).is_some())
        })?
    }

    /// Runs `program args` here to its end; its stdout, or the failure
    /// with stderr.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String, String> {
        let mut c = self.command(program);
        c.args(args);
        run(c, None)
    }
}

/// A NAT router and the host behind it.
#[derive(Debug, Clone)]
pub struct Site {
    pub spec: NatSpec,
    /// 1-based: LAN 10.N.0.0/24, WAN 198.51.100.N.
    pub number: usize,
    pub router: Namespace,
    pub host: Namespace,
}

impl Site {
    /// The router's public (WAN) address.
    pub fn public_ip(&self) -> Ipv4Addr {
        plan::wan_ip(self.number)
    }

    /// The host's own address (public for `none` and `firewall`).
    pub fn host_ip(&self) -> Ipv4Addr {
        plan::host_ip(self.number, self.spec.behaviour)
    }
}

/// Builds a [`Lab`] from NAT specs.
#[derive(Debug, Clone, Default)]
pub struct LabBuilder {
    spec: LabSpec,
    name: Option<String>,
}

impl LabBuilder {
    pub fn nat(mut self, nat: NatSpec) -> Self {
        self.spec.nats.push(nat);
        self
    }

    /// A named lab (namespaces `lab-NAME-srv`, `lab-NAME-host1`, ...)
    /// instead of the per-process test prefix: for labs a person brings
    /// up and tears down by name ([`Lab::persist`], [`remove_named`]).
    /// Test runs never clean named labs up.
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    pub fn build(self) -> Result<Lab, LabError> {
        Lab::with_prefix(self.spec, self.name.as_deref())
    }

    /// [`LabBuilder::build`] for tests: `None` (after printing `SKIPPED
    /// (lab unavailable: why)` to stdout and, uncaptured, to stderr) when
    /// this machine cannot run labs, unless `ICE_LAB_REQUIRED=1`; panics on
    /// any other failure.
    pub fn build_or_skip(self) -> Option<Lab> {
        match self.build() {
            Ok(lab) => Some(lab),
            Err(LabError::Unavailable(why)) => {
                if std::env::var(REQUIRED_ENV).is_ok_and(|v| v == "1") {
                    panic!("lab unavailable: {why} (and {REQUIRED_ENV}=1)");
                }
                let line = format!("SKIPPED (lab unavailable: {why})");
                println!("{line}");
                // Straight to stderr: the test harness does not capture it.
                let _ = writeln!(std::io::stderr(), "{line}");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// A built lab; torn down on drop.
pub struct Lab {
    prefix: String,
    server: Namespace,
    internet: Namespace,
    sites: Vec<Site>,
    /// Every namespace created so far, in creation order.
    created: Vec<Namespace>,
}

impl Lab {
    pub fn builder() -> LabBuilder {
        LabBuilder::default()
    }

    pub fn new(spec: LabSpec) -> Result<Lab, LabError> {
        Lab::with_prefix(spec, None)
    }

    fn with_prefix(spec: LabSpec, name: Option<&str>) -> Result<Lab, LabError> {
        if let Some(name) = name {
            validate_name(name).map_err(LabError::Failed)?;
        }
        if spec.nats.is_empty() || spec.nats.len() > MAX_NATS {
            return Err(LabError::Failed(format!(
                "a lab has 1 to {MAX_NATS} NATs, not {}",
                spec.nats.len()
            )));
        }
        availability().map_err(|e| LabError::Unavailable(e.clone()))?;
        remove_leftovers();

        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let prefix = match name {
            Some(name) => {
                let prefix = named_prefix(name);
                if !namespaces_of_named(name).is_empty() {
                    return Err(LabError::Failed(format!(
                        "a lab named {name:?} is already up (namespaces {prefix}*): take it down first"
                    )));
                }
                prefix
            }
            None => format!(
                "{PREFIX_FAMILY}{}x{}-",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ),
        };
        let ns = |role: &str| Namespace {
            name: format!("{prefix}{role}"),
        };
        let sites = spec
            .nats
            .iter()
            .enumerate()
            .map(|(i, nat)| Site {
                spec: nat.clone(),
                number: i + 1,
                router: ns(&format!("nat{}", i + 1)),
                host: ns(&format!("host{}", i + 1)),
            })
            .collect();
        let mut lab = Lab {
            server: ns("srv"),
            internet: ns("inet"),
            prefix,
            sites,
            created: Vec::new(),
        };
        // On error, dropping `lab` removes what was created.
        lab.create().map_err(LabError::Failed)?;
        Ok(lab)
    }

    fn create(&mut self) -> Result<(), String> {
        let mut all = vec![self.server.clone(), self.internet.clone()];
        for s in &self.sites {
            all.push(s.router.clone());
            all.push(s.host.clone());
        }
        for ns in all {
            let mut c = Command::new("ip");
            c.args(["netns", "add", ns.name()]);
            run(c, None)?;
            self.created.push(ns);
        }
        let routers: Vec<String> = self.sites.iter().map(|s| s.router.name.clone()).collect();
        let hosts: Vec<String> = self.sites.iter().map(|s| s.host.name.clone()).collect();
        ip_batch(
            None,
            &plan::veth_batch(self.server.name(), self.internet.name(), &routers, &hosts),
        )?;
        ip_batch(Some(&self.server), &plan::server_batch())?;
        let nats: Vec<NatSpec> = self.sites.iter().map(|s| s.spec.clone()).collect();
        ip_batch(Some(&self.internet), &plan::internet_batch(&nats))?;
        sysctl(&self.internet, &["net.ipv4.ip_forward=1".to_string()])?;
        nft(&self.internet, &plan::internet_rules())?;
        for s in &self.sites {
            ip_batch(Some(&s.router), &plan::router_batch(s.number, &s.spec))?;
            ip_batch(Some(&s.host), &plan::host_batch(s.number, &s.spec))?;
            // Rules first: they load conntrack, whose sysctls come after.
            nft(&s.router, &plan::router_rules(s.number, &s.spec))?;
            sysctl(&s.router, &plan::router_sysctls(&s.spec))?;
        }
        Ok(())
    }

    /// Leaves the lab up after this value is gone (no teardown on drop);
    /// its namespaces and what runs in them stay until [`remove_named`]
    /// (or `ip netns delete`).
    pub fn persist(mut self) {
        self.created.clear();
    }

    /// This lab's namespace name prefix (`ipl<pid>x<n>-`, or
    /// `lab-NAME-` for a named lab).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn server(&self) -> &Namespace {
        &self.server
    }

    pub fn internet(&self) -> &Namespace {
        &self.internet
    }

    pub fn sites(&self) -> &[Site] {
        &self.sites
    }

    /// Site `i` (0-based, in the order the NATs were given).
    pub fn site(&self, i: usize) -> &Site {
        &self.sites[i]
    }

    /// The host namespace behind NAT `i` (0-based).
    pub fn host(&self, i: usize) -> &Namespace {
        &self.sites[i].host
    }

    /// The NAT router namespace `i` (0-based).
    pub fn router(&self, i: usize) -> &Namespace {
        &self.sites[i].router
    }

    /// Every namespace of the lab.
    pub fn namespaces(&self) -> &[Namespace] {
        &self.created
    }

    /// Starts `stun-server` (`bin`) in the server namespace on
    /// [`STUN_PRIMARY`] with `--alternate` [`STUN_ALTERNATE`], one worker
    /// and no rate limit, plus `extra` arguments. Drop it before the lab
    /// (the lab kills it otherwise).
    pub fn start_stun_server(&self, bin: &Path, extra: &[&str]) -> ServerProcess {
        let mut c = self.server.command(bin);
        c.args(["--listen", &STUN_PRIMARY.to_string()])
            .args(["--alternate", &STUN_ALTERNATE.to_string()])
            .args(["--workers", "1", "--rate-limit", "off"])
            .args(extra);
        ServerProcess::start_command(c, StartOptions::default())
    }

    /// Starts coturn (`bin`, Debian's `turnserver`) in the server
    /// namespace on [`TURN_ADDR`] with the long-term credentials
    /// [`TURN_USER`] / [`TURN_PASSWORD`]; ready when it answers a Binding
    /// request from inside the lab.
    pub fn start_turn_server(&self, bin: &Path) -> Result<crate::coturn::Coturn, String> {
        turn::start(&self.server, bin)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            delete_namespace(ns.name());
        }
    }
}

/// Runs `c` (with `stdin` fed, if any) to its end: stdout, or an error
/// naming the command with its stderr.
fn run(mut c: Command, stdin: Option<&str>) -> Result<String, String> {
    let label = std::iter::once(c.get_program())
        .chain(c.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().map_err(|e| format!("cannot run {label}: {e}"))?;
    if let Some(text) = stdin {
        let mut w = child.stdin.take().expect("stdin is piped");
        w.write_all(text.as_bytes())
            .map_err(|e| format!("{label}: writing stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{label}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let mut msg = format!(
            "{label} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        if let Some(text) = stdin {
            msg.push_str(&format!("\ninput was:\n{text}"));
        }
        Err(msg)
    }
}

/// `ip [-n NS] -batch -` fed with `script`.
fn ip_batch(ns: Option<&Namespace>, script: &str) -> Result<(), String> {
    let mut c = Command::new("ip");
    if let Some(ns) = ns {
        c.args(["-n", ns.name()]);
    }
    c.args(["-batch", "-"]);
    run(c, Some(script)).map(drop)
}

fn nft(ns: &Namespace, rules: &str) -> Result<(), String> {
    let mut c = ns.command("nft");
    c.args(["-f", "-"]);
    run(c, Some(rules)).map(drop)
}

fn sysctl(ns: &Namespace, settings: &[String]) -> Result<(), String> {
    let mut c = ns.command("sysctl");
    c.arg("-qw").args(settings);
    run(c, None).map(drop)
}

/// Kills what still runs in `name` (processes the lab's user started
/// there) and deletes it; errors are ignored (it may be gone already).
fn delete_namespace(name: &str) {
    let mut c = Command::new("ip");
    c.args(["netns", "pids", name]);
    if let Ok(pids) = run(c, None) {
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            // SAFETY: kill(2) on a pid inside the lab's own namespace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let mut c = Command::new("ip");
    c.args(["netns", "delete", name]);
    let _ = run(c, None);
}

/// Namespace names of named labs start with this.
pub const NAMED_PREFIX: &str = "lab-";

fn named_prefix(name: &str) -> String {
    format!("{NAMED_PREFIX}{name}-")
}

/// A lab name: 1 to 16 of `a-z`, `0-9`, `-` (namespace names must stay
/// short and safe to type).
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 16
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "bad lab name {name:?}: use 1 to 16 characters of a-z, 0-9 and -"
        ))
    }
}

/// Existing namespaces whose name starts with `prefix`, sorted.
pub fn namespaces_with_prefix(prefix: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// The namespaces of the named lab `name` (`lab-NAME-ROLE`, where ROLE
/// has no `-`, so lab `a` does not claim lab `a-b`'s).
fn namespaces_of_named(name: &str) -> Vec<String> {
    let prefix = named_prefix(name);
    namespaces_with_prefix(&prefix)
        .into_iter()
        .filter(|n| {
            n.strip_prefix(&prefix)
                .is_some_and(|role| !role.contains('-'))
        })
        .collect()
}

/// Takes the named lab down: kills what runs in its namespaces and deletes
/// them. Returns the namespaces removed (empty: there was no such lab).
pub fn remove_named(name: &str) -> Result<Vec<String>, String> {
    validate_name(name)?;
    let names = namespaces_of_named(name);
    // Any order: deleting a namespace also removes its veth ends.
    for n in names.iter().rev() {
        delete_namespace(n);
    }
    Ok(names)
}

/// Names of the named labs that are up.
pub fn named_labs() -> Vec<String> {
    let mut labs: Vec<String> = namespaces_with_prefix(NAMED_PREFIX)
        .iter()
        .filter_map(|n| {
            let rest = n.strip_prefix(NAMED_PREFIX)?;
            let (name, _role) = rest.rsplit_once('-')?;
            Some(name.to_string())
        })
        .collect();
    labs.sort();
    labs.dedup();
    labs
}

/// The pid in a lab namespace name (`ipl<pid>x<n>-<role>`), if it is one.
pub fn owner_pid(ns_name: &str) -> Option<u32> {
    let rest = ns_name.strip_prefix(PREFIX_FAMILY)?;
    let (pid, rest) = rest.split_once('x')?;
    let (counter, _role) = rest.split_once('-')?;
    if counter.is_empty() || !counter.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Deletes namespaces of this prefix family whose owning process is dead
/// (left by a crashed run); once per process.
fn remove_leftovers() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let Ok(dir) = std::fs::read_dir("/run/netns") else {
            return;
        };
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = owner_pid(&name) else {
                continue;
            };
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                delete_namespace(&name);
            }
        }
    });
}

/// Whether this machine can build labs: root, `ip netns`, `nft`,
/// `sysctl`. Checked once, with a throwaway namespace.
pub fn availability() -> Result<(), &'static String> {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    RESULT
        .get_or_init(|| {
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                return Err("not root (network namespaces and nftables need root)".into());
            }
            for (tool, package) in [
                ("ip", "iproute2"),
                ("nft", "nftables"),
                ("sysctl", "procps"),
            ] {
                let mut c = Command::new(tool);
                c.arg("-V");
                if let Err(e) = run(c, None) {
                    return Err(format!(
                        "no usable `{tool}` ({e}); apt-get install -y {package}"
                    ));
                }
            }
            let name = format!("{PREFIX_FAMILY}{}x-probe", std::process::id());
            let mut c = Command::new("ip");
            c.args(["netns", "add", &name]);
            run(c, None).map_err(|e| format!("cannot create a network namespace: {e}"))?;
            let ns = Namespace { name: name.clone() };
            let check = nft(
                &ns,
                "table ip probe { chain c { type nat hook postrouting priority srcnat; }; }\n",
            )
            .map_err(|e| format!("nftables NAT does not work in a namespace: {e}"));
            delete_namespace(&name);
            check
        })
        .as_ref()
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_parses_only_lab_names() {
        assert_eq!(owner_pid("ipl1234x0-srv"), Some(1234));
        assert_eq!(owner_pid("ipl1234x17-host2"), Some(1234));
        assert_eq!(owner_pid("ipl1234x-probe"), None);
        assert_eq!(owner_pid("iplx0-srv"), None);
        assert_eq!(owner_pid("other1234x0-srv"), None);
        assert_eq!(owner_pid("ipl12a4x0-srv"), None);
    }
}
