//! The command line: config file and flag precedence, exit codes (2 for
//! bad flags or config, 1 when the server cannot serve) with one clear
//! line, and clean shutdown on SIGTERM and SIGINT.

mod support;

use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use common::stun::attr;
use support::*;

const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

fn software_of(s: &ServerProcess) -> Option<String> {
    let sock = udp_socket([127, 0, 0, 1]);
    let req = binding_request(false);
    let b = ask(s, &sock, s.addr(), &req);
    parse(&b)
        .attribute(attr::SOFTWARE)
        .map(|v| String::from_utf8(v.to_vec()).unwrap())
}

/// Non-empty stderr lines.
fn lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// Runs a start that must fail; returns its single stderr line.
fn fails_with(code: i32, args: &[&str]) -> String {
    let f = run_to_exit(bin(), args, EXIT_TIMEOUT);
    assert_eq!(
        f.code(),
        Some(code),
        "args {args:?}: status {}, stderr:\n{}",
        f.status,
        f.stderr
    );
    f.stderr
}

fn one_line(stderr: &str) -> String {
    let l = lines(stderr);
    assert_eq!(l.len(), 1, "expected one stderr line, got:\n{stderr}");
    l[0].to_string()
}

#[test]
fn config_file_and_flag_precedence() {
    let cfg = TempFile::new(
        ".toml",
        "software = \"from-file\"\nlisten = [\"127.0.0.1:0\"]\nworkers = 1\n",
    );
    let from_file = server(&["--config", cfg.path_str()]);
    assert_eq!(from_file.udp.len(), 1, "{}", from_file.log());
    assert_eq!(from_file.addr().ip().to_string(), "127.0.0.1");
    assert!(
        from_file.log().contains("(1 workers)"),
        "{}",
        from_file.log()
    );
    assert_eq!(software_of(&from_file).as_deref(), Some("from-file"));

    let from_flag = server(&["--config", cfg.path_str(), "--software", "from-flag"]);
    assert_eq!(software_of(&from_flag).as_deref(), Some("from-flag"));
}

#[test]
fn config_file_settings_apply() {
    let cfg = TempFile::new(
        ".toml",
        "listen = [\"127.0.0.1:0\"]\n\
         http = \"127.0.0.1:0\"\n\
         workers = 2\n\
         legacy = true\n\
         rate-limit = 100\n\
         rate-burst = 7\n\
         socket-buffer = \"256K\"\n",
    );
    let s = ServerProcess::start_with(
        bin(),
        &["--config", cfg.path_str()],
        StartOptions {
            expect_http: Some(true),
            ..Default::default()
        },
    );
    assert!(s.log().contains("rate limit 100 requests/s"), "{}", s.log());
    assert!(s.log().contains("burst 7"), "{}", s.log());
    assert!(s.log().contains("(2 workers)"), "{}", s.log());
    let sock = udp_socket([127, 0, 0, 1]);
    let b = ask(&s, &sock, s.addr(), &binding_request(false));
    // legacy = true: MAPPED-ADDRESS too.
    assert_eq!(
        parse(&b).address(attr::MAPPED_ADDRESS),
        Some(sock.local_addr().unwrap())
    );
    // Flags win: --listen replaces the file's list, --rate-limit its rate.
    let s2 = server(&[
        "--config",
        cfg.path_str(),
        "--listen",
        "127.0.0.1:0",
        "--listen",
        "127.0.0.1:0",
        "--rate-limit",
        "off",
    ]);
    assert_eq!(s2.udp.len(), 2, "{}", s2.log());
    assert!(s2.log().contains("rate limit off"), "{}", s2.log());
}

#[test]
fn unparseable_config_exits_2_naming_the_file() {
    let cfg = TempFile::new(".toml", "listen = 5\n");
    let line = one_line(&fails_with(2, &["--config", cfg.path_str()]));
    assert!(line.contains(cfg.path_str()), "{line}");
    assert!(line.contains("config file"), "{line}");
    assert!(line.contains("line 1"), "{line}");

    let cfg = TempFile::new(".toml", "listen = [\"127.0.0.1:0\"]\nbogus = 1\n");
    let line = one_line(&fails_with(
        2,
        &["--config", cfg.path_str(), "--listen", "127.0.0.1:0"],
    ));
    assert!(line.contains(cfg.path_str()), "{line}");
    assert!(line.contains("bogus"), "{line}");

    let cfg = TempFile::new(".toml", "listen = [\"127.0.0.1:0\"\n");
    let line = one_line(&fails_with(
        2,
        &["--config", cfg.path_str(), "--listen", "127.0.0.1:0"],
    ));
    assert!(line.contains(cfg.path_str()), "{line}");
}

#[test]
fn missing_config_exits_2() {
    let path = std::env::temp_dir().join(format!("e2e-missing-{}.toml", std::process::id()));
    let path = path.to_str().unwrap();
    let line = one_line(&fails_with(
        2,
        &["--config", path, "--listen", "127.0.0.1:0"],
    ));
    assert!(line.contains(path), "{line}");
    assert!(line.contains("cannot read"), "{line}");
}

#[test]
fn bad_flags_exit_2() {
    let err = fails_with(2, &["--listen", "127.0.0.1:0", "--no-such-flag"]);
    assert!(err.contains("--no-such-flag"), "{err}");
    let err = fails_with(2, &["--listen", "127.0.0.1:0", "--rate-limit", "fast"]);
    assert!(err.contains("'fast' is not a rate"), "{err}");
    let err = fails_with(2, &["--listen", "not-an-address"]);
    assert!(err.contains("not-an-address"), "{err}");
    let line = one_line(&fails_with(
        2,
        &["--listen", "127.0.0.1:0", "--workers", "0"],
    ));
    assert!(line.contains("workers"), "{line}");
    let line = one_line(&fails_with(
        2,
        &["--listen", "127.0.0.1:0", "--alternate", "127.0.0.1:0"],
    ));
    assert!(line.contains("different IP"), "{line}");
    let line = one_line(&fails_with(
        2,
        &[
            "--listen",
            "127.0.0.1:0",
            "--listen",
            "127.0.0.1:0",
            "--alternate",
            "127.0.0.2:0",
        ],
    ));
    assert!(line.contains("exactly one --listen"), "{line}");
}

#[test]
fn help_and_version_exit_0() {
    let f = run_to_exit(bin(), &["--help"], EXIT_TIMEOUT);
    assert_eq!(f.code(), Some(0));
    assert!(f.stdout.contains("--alternate"), "{}", f.stdout);
    assert!(f.stdout.contains("EXIT CODES"), "{}", f.stdout);
    let f = run_to_exit(bin(), &["--version"], EXIT_TIMEOUT);
    assert_eq!(f.code(), Some(0));
    assert!(f.stdout.starts_with("stun-server "), "{}", f.stdout);
}

#[test]
fn port_in_use_exits_1() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = fails_with(1, &["--listen", &addr]);
    let line = one_line(&err);
    assert!(line.contains("in use"), "{line}");
    assert!(line.contains(&addr), "{line}");
    drop(taken);
}

#[test]
fn second_server_on_same_port_exits_1() {
    // SO_REUSEPORT would let a second group share the port; the server
    // probes for that.
    let first = server(&["--listen", "127.0.0.1:0", "--workers", "1"]);
    let addr = first.addr().to_string();
    let line = one_line(&fails_with(1, &["--listen", &addr, "--workers", "1"]));
    assert!(line.contains("in use"), "{line}");
    // The first is unharmed.
    let sock = udp_socket([127, 0, 0, 1]);
    ask(&first, &sock, first.addr(), &binding_request(false));
}

#[test]
fn http_port_in_use_exits_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = fails_with(1, &["--listen", "127.0.0.1:0", "--http", &addr]);
    let last = *lines(&err).last().unwrap();
    assert!(last.contains("http") && last.contains(&addr), "{err}");
}

#[test]
fn sigterm_stops_cleanly() {
    let mut s = server(&[
        "--listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--workers",
        "2",
    ]);
    let sock = udp_socket([127, 0, 0, 1]);
    ask(&s, &sock, s.addr(), &binding_request(false));
    s.expect_metric("stun_requests_total", 1.0);
    let status = s.stop();
    assert_eq!(status.code(), Some(0), "{status}; log:\n{}", s.log());
    let log = s.log();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("stopped after 1 datagrams"), "{log}");
}

#[test]
fn sigint_stops_cleanly() {
    let mut s = server(&[
        "--listen",
        "127.0.0.1:0",
        "--alternate",
        "127.0.0.2:0",
        "--http",
        "127.0.0.1:0",
        "--workers",
        "2",
    ]);
    // stop_with waits until SIGINT is handled: the server installs its
    // handlers only after logging that it serves (see
    // `signal_right_after_start`).
    let sock = udp_socket([127, 0, 0, 1]);
    ask(&s, &sock, s.addr(), &binding_request(false));
    let status = s.stop_with(libc::SIGINT);
    assert_eq!(status.code(), Some(0), "{status}; log:\n{}", s.log());
    assert!(s.log().contains("stopped after"), "{}", s.log());
    // The ports are released.
    for a in &s.udp {
        UdpSocket::bind(a).unwrap_or_else(|e| panic!("{a} still taken: {e}"));
    }
}

/// SIGTERM/SIGINT right after the server logged its addresses still stop
/// it cleanly: the handlers are installed before anything is logged.
#[test]
fn signal_right_after_start() {
    for (i, sig) in [libc::SIGTERM, libc::SIGINT]
        .repeat(10)
        .into_iter()
        .enumerate()
    {
        let mut s = server(&[
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
            "--workers",
            "1",
        ]);
        // Right away, without waiting for the handler as stop_with does.
        s.signal(sig);
        let status = s.stop_with(sig);
        assert_eq!(
            status.code(),
            Some(0),
            "try {i}: {status}; log:\n{}",
            s.log()
        );
    }
}
