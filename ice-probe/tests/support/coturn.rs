//! A real coturn (`turnserver`, Debian package coturn) on 127.0.0.1 for
//! the TURN tests of `gather` and `connect`.
//!
//! Optional locally: a test says loudly that it is skipped when coturn is
//! missing. With ICE_PROBE_REQUIRE_COTURN=1 (scripts/test.sh as root, CI) a missing coturn is a
//! failure.

// Each test binary that includes this uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The long-term credential coturn is started with: `--username alice
/// --credential secret`.
pub const USER: &str = "alice";
pub const PASSWORD: &str = "secret";
/// coturn's flags for that credential.
pub const LT_CRED: [&str; 3] = ["--lt-cred-mech", "--user", "alice:secret"];

/// The coturn binary, or None after saying loudly why the test is skipped
/// (a failure instead when ICE_PROBE_REQUIRE_COTURN=1).
pub fn need_coturn(test: &str) -> Option<PathBuf> {
    if let Some(p) = e2e::find_on_path("turnserver") {
        return Some(p);
    }
    let why = "turnserver (Debian package coturn) is not installed: scripts/test.sh installs it";
    if std::env::var("ICE_PROBE_REQUIRE_COTURN").as_deref() == Ok("1") {
        panic!("{test}: {why}, and ICE_PROBE_REQUIRE_COTURN=1 requires it");
    }
    // Straight to the process's stderr: the test harness captures
    // eprintln!, and a skip must be seen even when the test passes.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n!!! SKIPPED {test}: {why} !!!\n");
    None
}

/// A coturn on 127.0.0.1 with a free port and the `USER:PASSWORD`
/// long-term credential; killed on drop.
pub struct Coturn {
    child: Child,
    pub addr: SocketAddr,
    /// The relay ports it allocates from.
    pub relay_ports: std::ops::RangeInclusive<u16>,
    log: Arc<Mutex<String>>,
    dir: PathBuf,
}

impl Coturn {
    /// With the `USER:PASSWORD` long-term credential.
    pub fn start(bin: &PathBuf) -> Coturn {
        Coturn::start_with(bin, &LT_CRED)
    }

    /// With these authentication flags (e.g. a REST shared secret).
    pub fn start_with(bin: &PathBuf, auth: &[&str]) -> Coturn {
        static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
        let mut last_log = String::new();
        for _attempt in 0..5 {
            // A port free for UDP and TCP right now (coturn listens on both).
            let port = {
                let u = UdpSocket::bind("127.0.0.1:0").unwrap();
                let port = u.local_addr().unwrap().port();
                if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
                    continue;
                }
                port
            };
            // Tests run in parallel: each coturn of this process gets a
            // relay port block of its own.
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 50;
            let relay_min = 20_000 + (std::process::id() as u16 % 20) * 1_000 + n * 20;
            let relay_ports = relay_min..=relay_min + 19;
            let dir = std::env::temp_dir()
                .join(format!("ice-probe-coturn-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let (p, lo, hi) = (
                port.to_string(),
                relay_ports.start().to_string(),
                relay_ports.end().to_string(),
            );
            let pid = dir.join("turnserver.pid");
            let db = dir.join("turndb");
            let mut args = vec![
                "-n",
                "--listening-ip",
                "127.0.0.1",
                "--listening-port",
                &p,
                "--relay-ip",
                "127.0.0.1",
                "--min-port",
                &lo,
                "--max-port",
                &hi,
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--realm",
                "example.org",
                "--allow-loopback-peers",
                "--log-file",
                "stdout",
                "--pidfile",
                pid.to_str().unwrap(),
                "--userdb",
                db.to_str().unwrap(),
            ];
            args.extend_from_slice(auth);
            let mut child = Command::new(bin)
                .args(&args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start turnserver");
            let log = Arc::new(Mutex::new(String::new()));
            let out = child.stdout.take().unwrap();
            let l2 = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let mut l = l2.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let c = Coturn {
                child,
                addr,
                relay_ports,
                log,
                dir,
            };
            // Ready when it answers a Binding request.
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            let req = e2e::binding_request(false);
            if e2e::exchange_retry(&sock, addr, &req, 50, Duration::from_millis(100)).is_some() {
                return c;
            }
            last_log = c.log();
        }
        panic!("coturn did not start; last log:\n{last_log}");
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
