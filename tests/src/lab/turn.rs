//! coturn in a lab's server namespace: a TURN relay on the lab's public
//! address, for tests where NATs that defeat hole punching still connect.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::plan::SERVER_PRIMARY;
use super::Namespace;

/// Where coturn listens (UDP and TCP) in the server namespace.
pub const TURN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(SERVER_PRIMARY), 3480);
/// The lab's TURN long-term credentials.
pub const TURN_USER: &str = "lab";
pub const TURN_PASSWORD: &str = "lab-secret";
/// coturn's realm in the lab.
const REALM: &str = "lab.example";

/// A running coturn; killed on drop (and by the lab's teardown).
pub struct TurnServer {
    child: Child,
    log: Arc<Mutex<String>>,
    dir: std::path::PathBuf,
}

impl TurnServer {
    pub(super) fn start(ns: &Namespace, bin: &Path) -> Result<TurnServer, String> {
        let dir = std::env::temp_dir().join(format!("lab-coturn-{}", ns.name()));
        let mut c = coturn_command(ns, bin, &dir)?;
        c.args(["--log-file", "stdout"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = c
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let log = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("stdout is piped");
        let l2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let mut l = l2.lock().unwrap_or_else(|e| e.into_inner());
                l.push_str(&line);
                l.push('\n');
            }
        });
        let server = TurnServer { child, log, dir };
        // Ready when it answers a Binding request from inside the lab.
        let answered = ns.stun_answers(TURN_ADDR, Duration::from_secs(5))?;
        if !answered {
            return Err(format!(
                "coturn did not answer on {TURN_ADDR} within 5 s; log:\n{}",
                server.log()
            ));
        }
        Ok(server)
    }

    /// `turn:203.0.113.1:3480` (UDP).
    pub fn url(&self) -> String {
        format!("turn:{TURN_ADDR}")
    }

    /// What coturn logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// coturn in `ns` on [`TURN_ADDR`] with the lab's credentials, keeping
/// its pid file and user database in `dir` (created); add the log
/// destination and stdio.
pub fn coturn_command(ns: &Namespace, bin: &Path, dir: &Path) -> Result<Command, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let user = format!("{TURN_USER}:{TURN_PASSWORD}");
    let mut c = ns.command(bin);
    c.args(["-n", "--no-tls", "--no-dtls", "--no-cli", "--lt-cred-mech"])
        .args(["--listening-ip", &SERVER_PRIMARY.to_string()])
        .args(["--listening-port", &TURN_ADDR.port().to_string()])
        .args(["--relay-ip", &SERVER_PRIMARY.to_string()])
        .args(["--realm", REALM, "--user", &user])
        .arg("--pidfile")
        .arg(dir.join("turnserver.pid"))
        .arg("--userdb")
        .arg(dir.join("turndb"));
    Ok(c)
}

impl Drop for TurnServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
