//! Helpers for end-to-end tests that start the real binaries: a child
//! process whose stderr log is captured and parsed for the addresses it
//! serves, blocking HTTP requests over `std::net::TcpStream`, a STUN client on
//! plain UDP sockets, Prometheus text parsing and temporary files.
//!
//! Everything binds port 0 and reads the real port back, so tests run in
//! parallel without colliding. Only loopback addresses are ever used,
//! except in [`lab`], whose traffic stays inside the namespaces it creates.

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::stun::{MessageWriter, BINDING_REQUEST};

pub mod browser;
pub mod coturn;
pub mod lab;

/// How long a server may take to log that it is serving.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopped server may take to exit.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Default wait for a UDP answer. Generous: CI machines are noisy.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------
// Captured log
// ---------------------------------------------------------------------------

#[derive(Default)]
struct LogState {
    lines: Vec<String>,
    /// The child closed stderr (usually: it exited).
    eof: bool,
}

/// Lines read so far from a child's stderr, shared with the reader thread.
#[derive(Default)]
struct SharedLog {
    state: Mutex<LogState>,
    changed: Condvar,
}

impl SharedLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, LogState> {
        // A panicking reader thread must not hide the log from the test.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn text(&self) -> String {
        self.lock().lines.join("\n")
    }

    /// Waits until `done(lines)` or EOF or the deadline; returns whether
    /// `done` held.
    fn wait_until(&self, timeout: Duration, done: impl Fn(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if done(&st.lines) {
                return true;
            }
            let now = Instant::now();
            if st.eof || now >= deadline {
                return false;
            }
            st = self
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

fn spawn_reader(stream: impl Read + Send + 'static, log: Arc<SharedLog>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf);
                    let line = line.trim_end_matches(['\n', '\r']).to_string();
                    log.lock().lines.push(line);
                    log.changed.notify_all();
                }
            }
        }
        log.lock().eof = true;
        log.changed.notify_all();
    })
}

// ---------------------------------------------------------------------------
// Server process
// ---------------------------------------------------------------------------

/// When a started server counts as ready.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Substrings that must each appear in some stderr line. Default (for
    /// `stun-server`): `"rate limit"`, which is logged after every
    /// `listening on udp` and `RFC 5780 enabled` line.
    pub ready: Vec<String>,
    /// Also wait for `serving http on`. `None`: only when the arguments
    /// contain `--http` (set it when a config file enables http).
    pub expect_http: Option<bool>,
    pub timeout: Duration,
    /// Extra environment for the child (`RUST_LOG=info` is always set
    /// first, so the lines we parse are logged whatever the test's env).
    pub env: Vec<(String, String)>,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            ready: vec!["rate limit".to_string()],
            expect_http: None,
            timeout: START_TIMEOUT,
            env: Vec::new(),
        }
    }
}

/// A running server binary. Killed (SIGKILL) on drop if still running.
pub struct ServerProcess {
    child: Child,
    log: Arc<SharedLog>,
    reader: Option<JoinHandle<()>>,
    status: Option<ExitStatus>,
    /// UDP addresses from `listening on udp ADDR` lines, in log order.
    pub udp: Vec<SocketAddr>,
    /// The `serving http on ADDR` address.
    pub http: Option<SocketAddr>,
    /// (primary, alternate) from `RFC 5780 enabled: primary P alternate A`.
    pub rfc5780: Option<(SocketAddr, SocketAddr)>,
}

impl ServerProcess {
    /// Starts `bin` with `args` and waits until it is serving; panics with
    /// the captured log if it exits or does not get there in time.
    pub fn start<S: AsRef<OsStr>>(bin: impl AsRef<Path>, args: &[S]) -> Self {
        Self::start_with(bin, args, StartOptions::default())
    }

    /// [`ServerProcess::start`] with explicit readiness options.
    pub fn start_with<S: AsRef<OsStr>>(
        bin: impl AsRef<Path>,
        args: &[S],
        opts: StartOptions,
    ) -> Self {
        match Self::try_start_with(bin.as_ref(), args, opts) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`ServerProcess::start_with`] but returns the failure (with
    /// the captured log) instead of panicking.
    pub fn try_start_with<S: AsRef<OsStr>>(
        bin: &Path,
        args: &[S],
        opts: StartOptions,
    ) -> Result<Self, String> {
        let mut cmd = Command::new(bin);
        cmd.args(args);
        Self::try_start_command(cmd, opts)
    }

    /// Starts a prepared command (e.g. `ip netns exec NS stun-server ...`,
    /// see [`lab::Namespace::command`]) and waits until it is serving; panics
    /// with the captured log if it exits or does not get there in time.
    /// stdin/stdout/stderr and `RUST_LOG` are set here.
    pub fn start_command(cmd: Command, opts: StartOptions) -> Self {
        match Self::try_start_command(cmd, opts) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`ServerProcess::start_command`] but returns the failure.
    pub fn try_start_command(mut cmd: Command, opts: StartOptions) -> Result<Self, String> {
        let expect_http = opts
            .expect_http
            .unwrap_or_else(|| cmd.get_args().any(|a| a == "--http"));
        let label = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        cmd.env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {label}: {e}"))?;
        let log = Arc::new(SharedLog::default());
        let stderr = child.stderr.take().expect("stderr is piped");
        let reader = Some(spawn_reader(stderr, log.clone()));
        let mut p = ServerProcess {
            child,
            log,
            reader,
            status: None,
            udp: Vec::new(),
            http: None,
            rfc5780: None,
        };
        let ready = |lines: &[String]| {
            opts.ready
                .iter()
                .all(|pat| lines.iter().any(|l| l.contains(pat.as_str())))
                && (!expect_http || lines.iter().any(|l| l.contains("serving http on ")))
        };
        if !p.log.wait_until(opts.timeout, ready) {
            let why = match p.child.try_wait() {
                Ok(Some(st)) => format!("exited with {st} before it was ready"),
                _ => format!("was not ready within {:?}", opts.timeout),
            };
            let _ = p.child.kill();
            let _ = p.child.wait();
            if let Some(r) = p.reader.take() {
                let _ = r.join();
            }
            return Err(format!("{label} {why}; log:\n{}", p.log.text()));
        }
        p.parse_addresses()?;
        Ok(p)
    }

    fn parse_addresses(&mut self) -> Result<(), String> {
        let text = self.log.text();
        let addr_after = |line: &str, marker: &str| -> Option<SocketAddr> {
            let rest = &line[line.find(marker)? + marker.len()..];
            rest.split_whitespace().next()?.parse().ok()
        };
        for line in text.lines() {
            if let Some(a) = addr_after(line, "listening on udp ") {
                self.udp.push(a);
            }
            if let Some(a) = addr_after(line, "serving http on ") {
                self.http = Some(a);
            }
            if let (Some(p), Some(a)) = (
                addr_after(line, "RFC 5780 enabled: primary "),
                addr_after(line, " alternate "),
            ) {
                self.rfc5780 = Some((p, a));
            }
        }
        if self.udp.is_empty() {
            return Err(format!("no 'listening on udp' line in the log:\n{text}"));
        }
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first UDP address served.
    pub fn addr(&self) -> SocketAddr {
        self.udp[0]
    }

    /// Everything the child wrote to stderr so far.
    pub fn log(&self) -> String {
        self.log.text()
    }

    /// Waits until a log line contains `pattern`.
    pub fn wait_for_log(&self, pattern: &str, timeout: Duration) -> bool {
        self.log
            .wait_until(timeout, |lines| lines.iter().any(|l| l.contains(pattern)))
    }

    /// Sends `sig` (e.g. `libc::SIGTERM`) to the child.
    pub fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) with our own child's pid; no memory involved.
        let r = unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        assert_eq!(r, 0, "kill: {}", io::Error::last_os_error());
    }

    /// Waits up to `timeout` for the child to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if let Some(s) = self.status {
            return Some(s);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.status = Some(s);
                // stderr is closed now; let the reader catch the last lines.
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `sig` and waits for the exit; panics with the log on timeout.
    /// Sent at once: a server must handle signals from the moment it says
    /// it is ready.
    pub fn stop_with(&mut self, sig: libc::c_int) -> ExitStatus {
        if self.status.is_none() {
            self.signal(sig);
        }
        match self.wait_timeout(STOP_TIMEOUT) {
            Some(s) => s,
            None => panic!(
                "server (pid {}) did not exit within {STOP_TIMEOUT:?} of signal {sig}; log:\n{}",
                self.pid(),
                self.log()
            ),
        }
    }

    /// SIGTERM, then the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_with(libc::SIGTERM)
    }

    /// The HTTP address; panics when the server was started without one.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
            .expect("server started without --http (no 'serving http on' line)")
    }

    /// GET `path` on the server's HTTP address.
    pub fn get(&self, path: &str) -> HttpResponse {
        http_get_full(self.http_addr(), path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}; log:\n{}", self.log()))
    }

    /// `method path` on the server's HTTP address, with a JSON body when
    /// given (`Content-Type: application/json`).
    pub fn request(&self, method: &str, path: &str, json_body: Option<&str>) -> HttpResponse {
        let headers: &[(&str, &str)] = match json_body {
            Some(_) => &[("Content-Type", "application/json")],
            None => &[],
        };
        http_request(
            self.http_addr(),
            method,
            path,
            headers,
            json_body.map(str::as_bytes),
        )
        .unwrap_or_else(|e| panic!("{method} {path}: {e}; log:\n{}", self.log()))
    }

    /// The /metrics text.
    pub fn metrics(&self) -> String {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "GET /metrics: {}", r.body);
        r.body
    }

    /// One sample of /metrics; `series` is the name with its labels exactly
    /// as rendered, e.g. `stun_dropped_total{reason="truncated"}`. Panics
    /// if the series is missing.
    pub fn metric(&self, series: &str) -> f64 {
        let text = self.metrics();
        metric_value(&text, series)
            .unwrap_or_else(|| panic!("no series {series} in /metrics:\n{text}"))
    }

    /// Polls /metrics until `series` satisfies `ok`, returning its value;
    /// panics with the last value after `timeout`.
    pub fn wait_metric(&self, series: &str, timeout: Duration, ok: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.metric(series);
            if ok(v) {
                return v;
            }
            if Instant::now() >= deadline {
                panic!("{series} is still {v} after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (up to [`ANSWER_TIMEOUT`]) for `series` to equal `value`.
    /// Workers publish their counters after sending a batch's answers, so
    /// a client can see an answer before the counters move.
    pub fn expect_metric(&self, series: &str, value: f64) {
        self.wait_metric(series, ANSWER_TIMEOUT, |v| v == value);
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

/// What a process that ran to its end left behind.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Runs `bin` with `args` to its end (for failures at start); kills it and
/// panics if it is still running after `timeout`.
pub fn run_to_exit<S: AsRef<OsStr>>(
    bin: impl AsRef<Path>,
    args: &[S],
    timeout: Duration,
) -> Finished {
    let bin = bin.as_ref();
    let mut child = Command::new(bin)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let out_log = Arc::new(SharedLog::default());
    let err_log = Arc::new(SharedLog::default());
    let r1 = spawn_reader(child.stdout.take().expect("piped"), out_log.clone());
    let r2 = spawn_reader(child.stderr.take().expect("piped"), err_log.clone());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = r2.join();
            panic!(
                "{} {:?} still running after {timeout:?}; stderr:\n{}",
                bin.display(),
                args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
                err_log.text()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = r1.join();
    let _ = r2.join();
    Finished {
        status,
        stdout: out_log.text(),
        stderr: err_log.text(),
    }
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Blocking `GET path` over HTTP/1.1 (one connection, closed after);
/// returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> io::Result<(u16, String)> {
    http_get_full(addr, path).map(|r| (r.status, r.body))
}

/// [`http_get`] with the headers.
pub fn http_get_full(addr: SocketAddr, path: &str) -> io::Result<HttpResponse> {
    http_request(addr, "GET", path, &[], None)
}

/// How long [`http_request`] waits to connect, send and read the answer.
/// Above the longest signaling long-poll (30 s).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(40);

/// Blocking `METHOD path` over HTTP/1.1 (one connection, closed after)
/// with extra `headers` and an optional body (sent with Content-Length;
/// add a Content-Type header yourself). For POST, DELETE, OPTIONS.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> io::Result<HttpResponse> {
    let timeout = HTTP_TIMEOUT;
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    let mut req = head.into_bytes();
    req.extend_from_slice(body.unwrap_or_default());
    s.write_all(&req)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_http_response(&raw)
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn parse_http_response(raw: &[u8]) -> io::Result<HttpResponse> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of HTTP headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("headers are not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        match headers.iter().find(|(k, _)| k == "content-length") {
            Some((_, v)) => {
                let n: usize = v.parse().map_err(|_| bad("bad content-length"))?;
                rest.get(..n)
                    .ok_or_else(|| bad("body shorter than content-length"))?
                    .to_vec()
            }
            None => rest.to_vec(),
        }
    };
    Ok(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut b: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("truncated chunk size"))?;
        let size_text = std::str::from_utf8(&b[..eol]).map_err(|_| bad("bad chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("bad chunk size"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(b.get(..size).ok_or_else(|| bad("truncated chunk"))?);
        b = b.get(size + 2..).ok_or_else(|| bad("truncated chunk"))?;
    }
}

// ---------------------------------------------------------------------------
// Prometheus text
// ---------------------------------------------------------------------------

/// The value of `series` (name and labels exactly as rendered, e.g.
/// `stun_responses_total{class="success"}`) in a Prometheus text page.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        (k == series).then(|| v.parse().ok()).flatten()
    })
}

/// Every sample of the metric family `name`: (labels text, value). The
/// labels text is what is between the braces ("" without labels).
pub fn metric_samples(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            let v: f64 = v.parse().ok()?;
            if k == name {
                return Some((String::new(), v));
            }
            let labels = k.strip_prefix(name)?.strip_prefix('{')?.strip_suffix('}')?;
            Some((labels.to_string(), v))
        })
        .collect()
}

// ---------------------------------------------------------------------------
// STUN over UDP
// ---------------------------------------------------------------------------

/// A fresh, unique-enough 96-bit transaction ID.
pub fn transaction_id() -> [u8; 12] {
    common::stun::random_transaction_id()
}

/// A message of `msg_type` with the magic cookie, `tid` and `attrs` in
/// order, with FINGERPRINT last when `fingerprint`.
pub fn build_message(
    msg_type: u16,
    tid: &[u8; 12],
    attrs: &[(u16, &[u8])],
    fingerprint: bool,
) -> Vec<u8> {
    let mut buf = vec![0u8; 20 + 65535];
    let mut w = MessageWriter::with_transaction_id(&mut buf, msg_type, tid).expect("buffer");
    for (t, v) in attrs {
        w.attribute(*t, v).expect("message fits 64 KiB");
    }
    if fingerprint {
        w.fingerprint().expect("fits");
    }
    let n = w.finish();
    buf.truncate(n);
    buf
}

/// A Binding request with a fresh transaction ID and no attributes (20
/// bytes), or with FINGERPRINT (28 bytes).
pub fn binding_request(fingerprint: bool) -> Vec<u8> {
    build_message(BINDING_REQUEST, &transaction_id(), &[], fingerprint)
}

/// A UDP socket on `ip`, port 0 (the kernel picks).
pub fn udp_socket(ip: impl Into<IpAddr>) -> UdpSocket {
    let ip = ip.into();
    UdpSocket::bind(SocketAddr::new(ip, 0)).unwrap_or_else(|e| panic!("bind {ip}:0: {e}"))
}

/// The next datagram on `sock` within `timeout`: (bytes, source).
pub fn recv_any(sock: &UdpSocket, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65536];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        if left.is_zero() {
            return None;
        }
        sock.set_read_timeout(Some(left)).ok()?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => return Some((buf[..n].to_vec(), from)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            // ICMP errors from earlier sends (ECONNREFUSED): keep waiting.
            Err(_) => continue,
        }
    }
}

/// Waits for the datagram answering `req`: the first whose bytes 4..20
/// (cookie and transaction ID) equal the request's; others are skipped.
/// Requests shorter than 20 bytes match any datagram.
pub fn recv_answer(
    sock: &UdpSocket,
    req: &[u8],
    timeout: Duration,
) -> Option<(Vec<u8>, SocketAddr)> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let (b, from) = recv_any(sock, left)?;
        if req.len() < 20 || (b.len() >= 20 && b[4..20] == req[4..20]) {
            return Some((b, from));
        }
    }
}

/// Sends `req` to `to` once and waits up to `timeout` for its answer
/// (see [`recv_answer`]): (bytes, source address of the answer).
pub fn exchange(
    sock: &UdpSocket,
    to: SocketAddr,
    req: &[u8],
    timeout: Duration,
) -> Option<(Vec<u8>, SocketAddr)> {
    sock.send_to(req, to)
        .unwrap_or_else(|e| panic!("send to {to}: {e}"));
    recv_answer(sock, req, timeout)
}

/// [`exchange`] retransmitting up to `attempts` times, `per_try` apart, for
/// when loss is possible (a server under load). Same transaction each time.
pub fn exchange_retry(
    sock: &UdpSocket,
    to: SocketAddr,
    req: &[u8],
    attempts: usize,
    per_try: Duration,
) -> Option<(Vec<u8>, SocketAddr)> {
    (0..attempts).find_map(|_| exchange(sock, to, req, per_try))
}

// ---------------------------------------------------------------------------
// Temporary files
// ---------------------------------------------------------------------------

/// A fresh directory in the system temp directory, removed (with what is
/// in it) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// `<tmp>/e2e-<tag>-<pid>-<n>`, created empty.
    pub fn new(tag: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "e2e-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The path of `name` in this directory, as a string (for arguments).
    pub fn file(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A file in the system temp directory, removed on drop.
pub struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// Writes `contents` to a new uniquely named file ending in `suffix`.
    pub fn new(suffix: &str, contents: &str) -> Self {
        let id = transaction_id();
        let name: String = id[..8].iter().map(|b| format!("{b:02x}")).collect();
        let path = std::env::temp_dir().join(format!("e2e-{}-{name}{suffix}", std::process::id()));
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        TempFile { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().expect("temp paths are UTF-8")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What a child printed and how it ended, from [`collect_until`].
pub struct Collected {
    /// `None`: still running at the deadline, so it was killed.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Collected {
    /// The exit code; -1 when killed (at the deadline or by a signal).
    pub fn code(&self) -> i32 {
        self.status.and_then(|s| s.code()).unwrap_or(-1)
    }
}

/// Waits for `child` (stdout and stderr piped) until `deadline`, reading
/// both pipes meanwhile so a child that prints a lot cannot block on them;
/// a child still running at the deadline is killed.
pub fn collect_until(mut child: Child, deadline: Instant) -> Collected {
    let drain = |from: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut from) = from {
                let _ = from.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as _));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as _));
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    Collected {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

// ---------------------------------------------------------------------------
// Workspace binaries and tools
// ---------------------------------------------------------------------------

/// `name` in a directory of `PATH`, if there is one.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Prints `text` to stdout (seen with `--nocapture`) and straight to the
/// process's stderr, which the test harness does not capture, so tables
/// and skips show in CI logs even when the test passes.
pub fn print_uncaptured(text: &str) {
    println!("{text}");
    let _ = writeln!(io::stderr(), "{text}");
}

/// Path of a workspace binary (`stun-server`, `ice-probe`) built in the
/// same profile as the running test, for tests of one package that start
/// another package's binary. Builds it with cargo if it is missing.
pub fn workspace_bin(name: &str) -> PathBuf {
    static BUILD: Mutex<()> = Mutex::new(());
    // target/<profile>/deps/<test-binary> -> target/<profile>/<name>
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps");
    let path = profile_dir.join(name);
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let release = profile_dir.file_name().is_some_and(|p| p == "release");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["build", "--bin", name])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build --bin {name} failed");
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_and_chunked() {
        let r = parse_http_response(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\ncontent-length: 5\r\n\r\nhello",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "hello"));
        assert_eq!(r.header("Content-Type"), Some("text/plain"));
        let r = parse_http_response(
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_str()), (503, "abcde"));
    }

    #[test]
    fn metric_lookup() {
        let text = "# HELP a b\n# TYPE a counter\na 3\nb{x=\"1\"} 4\nb{x=\"2\"} 5.5\n";
        assert_eq!(metric_value(text, "a"), Some(3.0));
        assert_eq!(metric_value(text, "b{x=\"2\"}"), Some(5.5));
        assert_eq!(metric_value(text, "c"), None);
        assert_eq!(
            metric_samples(text, "b"),
            vec![("x=\"1\"".to_string(), 4.0), ("x=\"2\"".to_string(), 5.5)]
        );
    }

    #[test]
    fn messages_parse() {
        let r = binding_request(true);
        let m = common::stun::Message::parse(&r, false).unwrap();
        assert!(m.has_fingerprint());
        assert_eq!(binding_request(false).len(), 20);
        assert_ne!(transaction_id(), transaction_id());
    }
}
