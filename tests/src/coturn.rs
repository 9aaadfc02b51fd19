//! coturn (`turnserver`, Debian package coturn) for tests: the command
//! line both the loopback tests and the lab use, and a running server
//! whose output is captured like [`crate::ServerProcess`]'s.

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use crate::{spawn_reader, SharedLog};

/// What one coturn serves.
#[derive(Debug, Clone)]
pub struct CoturnSpec {
    /// Listening address (UDP and TCP); relays are allocated on its IP.
    pub listen: SocketAddr,
    /// The relay ports, or coturn's default range.
    pub relay_ports: Option<RangeInclusive<u16>>,
    pub realm: String,
    /// Authentication flags, e.g. `--lt-cred-mech --user U:P` or
    /// `--use-auth-secret --static-auth-secret S`.
    pub auth: Vec<String>,
    /// Anything else (e.g. `--allow-loopback-peers`).
    pub extra: Vec<String>,
}

impl CoturnSpec {
    /// Long-term credentials `user:password`.
    pub fn long_term(listen: SocketAddr, realm: &str, user: &str, password: &str) -> Self {
        CoturnSpec {
            listen,
            relay_ports: None,
            realm: realm.to_string(),
            auth: vec![
                "--lt-cred-mech".into(),
                "--user".into(),
                format!("{user}:{password}"),
            ],
            extra: Vec::new(),
        }
    }

    /// The arguments, with the pid file and user database in `dir`; no
    /// TLS/DTLS, no CLI; the caller adds `--log-file`.
    pub fn args(&self, dir: &Path) -> Vec<OsString> {
        let ip: IpAddr = self.listen.ip();
        let mut a: Vec<OsString> = ["-n", "--no-tls", "--no-dtls", "--no-cli"]
            .map(OsString::from)
            .to_vec();
        let mut push = |k: &str, v: String| {
            a.push(k.into());
            a.push(v.into());
        };
        push("--listening-ip", ip.to_string());
        push("--listening-port", self.listen.port().to_string());
        push("--relay-ip", ip.to_string());
        push("--realm", self.realm.clone());
        if let Some(r) = &self.relay_ports {
            push("--min-port", r.start().to_string());
            push("--max-port", r.end().to_string());
        }
        a.push("--pidfile".into());
        a.push(dir.join("turnserver.pid").into());
        a.push("--userdb".into());
        a.push(dir.join("turndb").into());
        a.extend(self.auth.iter().chain(&self.extra).map(OsString::from));
        a
    }
}

/// A running coturn; killed on drop, its directory removed.
pub struct Coturn {
    child: Child,
    log: Arc<SharedLog>,
    dir: PathBuf,
    pub addr: SocketAddr,
    pub relay_ports: Option<RangeInclusive<u16>>,
}

impl Coturn {
    /// Runs `base` (the `turnserver` program, directly or through `ip
    /// netns exec`) with `spec`'s arguments, keeping its files in `dir`
    /// (created) and its log (stdout) in memory. Not yet known to answer:
    /// the caller checks that from where it can reach `spec.listen`.
    pub fn spawn(mut base: Command, spec: &CoturnSpec, dir: PathBuf) -> Result<Coturn, String> {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut child = base
            .args(spec.args(&dir))
            .args(["--log-file", "stdout"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", base.get_program()))?;
        let log = Arc::new(SharedLog::default());
        let out = child.stdout.take().expect("stdout is piped");
        // Not joined: it ends at EOF, when coturn is gone.
        spawn_reader(out, log.clone());
        Ok(Coturn {
            child,
            log,
            dir,
            addr: spec.listen,
            relay_ports: spec.relay_ports.clone(),
        })
    }

    /// What coturn logged so far.
    pub fn log(&self) -> String {
        self.log.text()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The `turnserver` binary, or `None` after saying loudly (uncaptured)
/// that `what` is skipped; a panic instead when
/// `ICE_PROBE_REQUIRE_COTURN=1` (scripts/test.sh as root, CI).
pub fn turnserver_or_skip(what: &str) -> Option<PathBuf> {
    if let Some(p) = crate::find_on_path("turnserver") {
        return Some(p);
    }
    let why = "turnserver (Debian package coturn) is not installed: scripts/test.sh installs it";
    if std::env::var("ICE_PROBE_REQUIRE_COTURN").is_ok_and(|v| v == "1") {
        panic!("{what}: {why}, and ICE_PROBE_REQUIRE_COTURN=1 requires it");
    }
    crate::print_uncaptured(&format!("SKIPPED {what} ({why})"));
    None
}
