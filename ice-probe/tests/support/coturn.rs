//! A real coturn (e2e::coturn) on 127.0.0.1 for the TURN tests of
//! `gather` and `connect`: a free port, a relay port block of its own and
//! the `USER:PASSWORD` long-term credential unless told otherwise.
//!
//! Optional locally: a test says loudly that it is skipped when coturn is
//! missing. With ICE_PROBE_REQUIRE_COTURN=1 (scripts/test.sh as root, CI)
//! a missing coturn is a failure.

// Each test binary that includes this uses part of it.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use e2e::coturn::CoturnSpec;
pub use e2e::coturn::{turnserver_or_skip as need_coturn, Coturn};

/// The long-term credential coturn is started with: `--username alice
/// --credential secret`.
pub const USER: &str = "alice";
pub const PASSWORD: &str = "secret";

/// With the `USER:PASSWORD` long-term credential.
pub fn start(bin: &PathBuf) -> Coturn {
    start_with(
        bin,
        &["--lt-cred-mech", "--user", &format!("{USER}:{PASSWORD}")],
    )
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
        // Tests run in parallel: each coturn of this process gets a relay
        // port block of its own.
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 50;
        let relay_min = 20_000 + (std::process::id() as u16 % 20) * 1_000 + n * 20;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let spec = CoturnSpec {
            listen: addr,
            relay_ports: Some(relay_min..=relay_min + 19),
            realm: "example.org".into(),
            auth: auth.iter().map(|a| a.to_string()).collect(),
            extra: vec!["--allow-loopback-peers".into()],
        };
        let dir =
            std::env::temp_dir().join(format!("ice-probe-coturn-{}-{port}", std::process::id()));
        let c = Coturn::spawn(Command::new(bin), &spec, dir).expect("start turnserver");
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
