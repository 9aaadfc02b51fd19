//! A real headless Chromium (Debian's `chromium`) inside a lab namespace,
//! driven over the DevTools protocol, for tests that need a browser's own
//! WebRTC stack behind the lab's NATs.
//!
//! The browser is started with `--remote-debugging-pipe`: the protocol runs
//! over its fds 3 (commands in) and 4 (replies and events out) as
//! NUL-terminated JSON, so no socket has to cross from the root namespace
//! into the lab. [`Chromium::launch`] starts it with `ip netns exec` in its
//! own process group; [`Chromium::new_page`] opens a tab (a flat
//! `Target.attachToTarget` session) and [`Page::evaluate`] runs JavaScript
//! there, awaiting its promise and returning the JSON value. Every wait is
//! bounded, and dropping the [`Chromium`] kills its whole process group and
//! removes its fresh profile directory.
//!
//! When Chromium is not installed, [`chromium_or_skip`] prints `SKIPPED
//! (chromium unavailable: ...)` and returns `None`, unless
//! `ICE_LAB_REQUIRED=1`, when it panics (as the lab's `build_or_skip`).

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::lab::{Namespace, REQUIRED_ENV};

/// The program started (Debian's launcher script, which execs the browser).
pub const CHROMIUM: &str = "chromium";
/// How long the browser may take to answer its first protocol command.
pub const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);
/// Default wait for a protocol command that does not run page code.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Flags for a headless browser run as root in a lab (NETLAB.md), that
/// talks to nothing but what a page asks for.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-breakpad",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-dev-shm-usage",
    // A tab opened over the protocol counts as a background tab: its
    // timers must not be throttled while a test waits on them.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    // Real host addresses instead of mDNS names (nobody in the lab answers
    // mDNS). Chromium keeps only the last --disable-features flag.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--remote-debugging-pipe",
];

/// `--host-resolver-rules` under which no host name resolves but IPv4
/// literals still work (a rule's pattern is matched against the literal
/// too, so those starting with a digit are excluded). Even with
/// [`FLAGS`], Chromium looks up clients2.google.com and
/// update.googleapis.com at start (seen from a namespace); lab pages use
/// IP literals only, so it looks up nothing.
fn host_resolver_rules() -> String {
    let mut rules = "--host-resolver-rules=MAP * ~NOTFOUND".to_string();
    for digit in 0..10 {
        rules.push_str(&format!(", EXCLUDE {digit}*"));
    }
    rules
}

/// Lines of the browser's stderr kept for error messages.
const STDERR_LINES: usize = 40;
/// Console lines kept per browser.
const CONSOLE_LINES: usize = 200;

/// Whether Chromium can run here: its `--version` line, or why not.
/// Checked once.
pub fn availability() -> Result<&'static str, &'static str> {
    static RESULT: OnceLock<Result<String, String>> = OnceLock::new();
    RESULT
        .get_or_init(version)
        .as_ref()
        .map(String::as_str)
        .map_err(String::as_str)
}

/// `chromium --version`, given [`LAUNCH_TIMEOUT`] to answer.
fn version() -> Result<String, String> {
    let mut child = Command::new(CHROMIUM)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{CHROMIUM}` ({e}); apt-get install -y chromium"))?;
    let deadline = Instant::now() + LAUNCH_TIMEOUT;
    while child.try_wait().map_err(|e| e.to_string())?.is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "`{CHROMIUM} --version` still runs after {LAUNCH_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || version.is_empty() {
        return Err(format!(
            "`{CHROMIUM} --version` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(version)
}

/// [`availability`] for tests: the version, or `None` after printing
/// `SKIPPED (chromium unavailable: why)` to stdout and, uncaptured, to
/// stderr; panics instead when `ICE_LAB_REQUIRED=1`.
pub fn chromium_or_skip() -> Option<&'static str> {
    match availability() {
        Ok(v) => Some(v),
        Err(why) => {
            if std::env::var(REQUIRED_ENV).is_ok_and(|v| v == "1") {
                panic!("chromium unavailable: {why} (and {REQUIRED_ENV}=1)");
            }
            let line = format!("SKIPPED (chromium unavailable: {why})");
            println!("{line}");
            let _ = writeln!(io::stderr(), "{line}");
            None
        }
    }
}

// ---------------------------------------------------------------------------
// The protocol connection
// ---------------------------------------------------------------------------

#[derive(Default)]
struct PipeState {
    /// Replies by command id, until taken.
    replies: HashMap<u64, Value>,
    /// `sessionId: text` of console calls and uncaught exceptions.
    console: VecDeque<String>,
    /// Why no more replies can come (the browser closed its end).
    closed: Option<String>,
}

/// Our ends of the two pipes and what the reader thread has seen.
struct Pipe {
    to_browser: Mutex<File>,
    state: Mutex<PipeState>,
    changed: Condvar,
    next_id: AtomicU64,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, PipeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads NUL-terminated messages until EOF, filing replies and console
    /// lines.
    fn read_loop(&self, from_browser: File) {
        let mut r = BufReader::new(from_browser);
        let mut buf = Vec::new();
        let why = loop {
            buf.clear();
            match r.read_until(0, &mut buf) {
                Ok(0) => break "the browser closed the protocol pipe".to_string(),
                Ok(_) => {}
                Err(e) => break format!("reading the protocol pipe: {e}"),
            }
            if buf.last() == Some(&0) {
                buf.pop();
            }
            let Ok(msg) = serde_json::from_slice::<Value>(&buf) else {
                continue;
            };
            let mut st = self.lock();
            if let Some(id) = msg["id"].as_u64() {
                st.replies.insert(id, msg);
            } else if let Some(line) = console_line(&msg) {
                if st.console.len() == CONSOLE_LINES {
                    st.console.pop_front();
                }
                st.console.push_back(line);
            } else {
                continue;
            }
            drop(st);
            self.changed.notify_all();
        };
        self.lock().closed = Some(why);
        self.changed.notify_all();
    }

    /// Sends `method` (to `session`, or the browser) and waits for its
    /// result.
    fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("JSON");
        bytes.push(0);
        {
            let mut w = self.to_browser.lock().unwrap_or_else(|e| e.into_inner());
            w.write_all(&bytes)
                .map_err(|e| format!("{method}: writing the protocol pipe: {e}"))?;
        }
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            if let Some(reply) = st.replies.remove(&id) {
                if let Some(err) = reply.get("error") {
                    return Err(format!("{method}: {err}"));
                }
                return Ok(reply["result"].clone());
            }
            if let Some(why) = &st.closed {
                return Err(format!("{method}: {why}"));
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(format!("{method}: no answer within {timeout:?}"));
            }
            st = self
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn console(&self, session: &str) -> Vec<String> {
        let prefix = format!("{session}: ");
        self.lock()
            .console
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }
}

/// `sessionId: text` for a console call or an uncaught exception event.
fn console_line(msg: &Value) -> Option<String> {
    let session = msg["sessionId"].as_str().unwrap_or("browser");
    let p = &msg["params"];
    let text = match msg["method"].as_str()? {
        "Runtime.consoleAPICalled" => {
            let args: Vec<String> = p["args"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| match &v["value"] {
                            Value::String(s) => s.clone(),
                            Value::Null => v["description"].as_str().unwrap_or("").to_string(),
                            other => other.to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "console.{}: {}",
                p["type"].as_str().unwrap_or("log"),
                args.join(" ")
            )
        }
        "Runtime.exceptionThrown" => {
            let d = &p["exceptionDetails"];
            let what = d["exception"]["description"]
                .as_str()
                .or(d["text"].as_str())
                .unwrap_or("?");
            format!("uncaught: {what}")
        }
        _ => return None,
    };
    Some(format!("{session}: {text}"))
}

/// A close-on-exec pipe: (read end, write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

// ---------------------------------------------------------------------------
// The browser
// ---------------------------------------------------------------------------

/// A headless Chromium in a lab namespace; its process group is killed
/// and its profile removed on drop.
pub struct Chromium {
    child: Mutex<Child>,
    pipe: Arc<Pipe>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    profile: PathBuf,
    /// `Browser.getVersion`'s product, e.g. `Chrome/156.0.8078.108`.
    product: String,
    namespace: String,
}

impl Chromium {
    /// Starts Chromium in `ns` with a fresh profile and waits until it
    /// answers over the protocol pipe.
    pub fn launch(ns: &Namespace) -> Result<Chromium, String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let profile = std::env::temp_dir().join(format!(
            "e2e-chromium-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile)
            .map_err(|e| format!("create {}: {e}", profile.display()))?;

        let (cmd_read, cmd_write) = pipe().map_err(|e| format!("pipe: {e}"))?;
        let (out_read, out_write) = pipe().map_err(|e| format!("pipe: {e}"))?;
        let (child_in, child_out) = (cmd_read.as_raw_fd(), out_write.as_raw_fd());

        let mut cmd = ns.command(CHROMIUM);
        cmd.args(FLAGS)
            .arg(host_resolver_rules())
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own group, so drop can kill the renderers and helpers too.
            .process_group(0);
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork
        // and exec. The fds are first copied above 10 so that the dup2s
        // cannot overwrite each other; the copies are close-on-exec, the
        // dup2 targets 3 and 4 are not.
        unsafe {
            cmd.pre_exec(move || {
                let a = libc::fcntl(child_in, libc::F_DUPFD_CLOEXEC, 10);
                let b = libc::fcntl(child_out, libc::F_DUPFD_CLOEXEC, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {CHROMIUM} in {}: {e}", ns.name()))?;
        // The child's ends live on in the child only.
        drop((cmd_read, out_write));

        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        {
            let lines = stderr.clone();
            let err = child.stderr.take().expect("stderr is piped");
            std::thread::spawn(move || keep_tail(err, &lines));
        }
        let pipe = Arc::new(Pipe {
            to_browser: Mutex::new(File::from(cmd_write)),
            state: Mutex::new(PipeState::default()),
            changed: Condvar::new(),
            next_id: AtomicU64::new(1),
        });
        {
            let pipe = pipe.clone();
            let from_browser = File::from(out_read);
            // Not joined: it ends at EOF, when the last browser process dies.
            std::thread::spawn(move || pipe.read_loop(from_browser));
        }
        let mut browser = Chromium {
            child: Mutex::new(child),
            pipe,
            stderr,
            profile,
            product: String::new(),
            namespace: ns.name().to_string(),
        };
        let version = browser
            .call("Browser.getVersion", json!({}), LAUNCH_TIMEOUT)
            .map_err(|e| browser.failure(&format!("{CHROMIUM} did not start: {e}")))?;
        browser.product = version["product"].as_str().unwrap_or("?").to_string();
        Ok(browser)
    }

    /// `Browser.getVersion`'s product (`Chrome/...`).
    pub fn product(&self) -> &str {
        &self.product
    }

    /// The browser's pid (the leader of its process group).
    pub fn pid(&self) -> u32 {
        self.child().id()
    }

    fn child(&self) -> MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A browser-level protocol command.
    pub fn call(&self, method: &str, params: Value, timeout: Duration) -> Result<Value, String> {
        self.pipe.call(None, method, params, timeout)
    }

    /// Opens a tab on `about:blank`, attaches a session to it and enables
    /// `Runtime` (so its console lines are kept, see [`Page::console`]).
    pub fn new_page(&self) -> Result<Page<'_>, String> {
        let t = self
            .call(
                "Target.createTarget",
                json!({"url": "about:blank"}),
                CALL_TIMEOUT,
            )
            .map_err(|e| self.failure(&e))?;
        let target = t["targetId"]
            .as_str()
            .ok_or_else(|| format!("Target.createTarget answered {t}"))?
            .to_string();
        let a = self
            .call(
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
                CALL_TIMEOUT,
            )
            .map_err(|e| self.failure(&e))?;
        let session = a["sessionId"]
            .as_str()
            .ok_or_else(|| format!("Target.attachToTarget answered {a}"))?
            .to_string();
        let page = Page {
            browser: self,
            session,
            target,
        };
        page.call("Runtime.enable", json!({}), CALL_TIMEOUT)
            .map_err(|e| self.failure(&e))?;
        Ok(page)
    }

    /// The last lines the browser wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        let lines = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// `what`, with whether the browser still runs and its stderr tail.
    fn failure(&self, what: &str) -> String {
        let state = match self.child().try_wait() {
            Ok(Some(st)) => format!("browser exited with {st}"),
            _ => "browser still running".to_string(),
        };
        format!(
            "{what} ({state}, namespace {}); stderr tail:\n{}",
            self.namespace,
            self.stderr_tail()
        )
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let pgid = child.id() as libc::pid_t;
        // SAFETY: kill(2) on the process group our own child leads.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Keeps the last [`STDERR_LINES`] lines of `stream` in `lines`.
fn keep_tail(stream: impl Read, lines: &Mutex<VecDeque<String>>) {
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        let mut l = lines.lock().unwrap_or_else(|e| e.into_inner());
        if l.len() == STDERR_LINES {
            l.pop_front();
        }
        l.push_back(line);
    }
}

/// One tab of a [`Chromium`], with its protocol session.
pub struct Page<'a> {
    browser: &'a Chromium,
    session: String,
    target: String,
}

impl Page<'_> {
    /// A protocol command in this tab's session.
    pub fn call(&self, method: &str, params: Value, timeout: Duration) -> Result<Value, String> {
        self.browser
            .pipe
            .call(Some(&self.session), method, params, timeout)
    }

    pub fn target_id(&self) -> &str {
        &self.target
    }

    /// Evaluates `expression` in the tab, awaits the promise it gives (if
    /// any) and returns its value as JSON (`null` for `undefined`). A thrown
    /// error or rejection is an `Err` with its description and the tab's
    /// console; so is no answer within `timeout` (give the page's own
    /// timeouts a margin below it).
    pub fn evaluate(&self, expression: &str, timeout: Duration) -> Result<Value, String> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({
                    "expression": expression,
                    "awaitPromise": true,
                    "returnByValue": true,
                }),
                timeout,
            )
            .map_err(|e| self.failure(&e))?;
        if let Some(d) = r.get("exceptionDetails") {
            let what = d["exception"]["description"]
                .as_str()
                .or(d["text"].as_str())
                .unwrap_or("exception");
            return Err(self.failure(&format!("the page threw: {what}")));
        }
        Ok(r["result"].get("value").cloned().unwrap_or(Value::Null))
    }

    /// This tab's console lines (`console.log: ...`, `uncaught: ...`), in
    /// order.
    pub fn console(&self) -> Vec<String> {
        self.browser.pipe.console(&self.session)
    }

    fn failure(&self, what: &str) -> String {
        format!(
            "{what}\nconsole:\n  {}\nbrowser stderr tail:\n{}",
            self.console().join("\n  "),
            self.browser.stderr_tail()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_name_their_session() {
        let log = json!({"method": "Runtime.consoleAPICalled", "sessionId": "S1",
            "params": {"type": "log", "args": [{"type": "string", "value": "[3 ms] ice"},
                                               {"type": "number", "value": 2},
                                               {"type": "undefined"}]}});
        assert_eq!(
            console_line(&log).as_deref(),
            Some("S1: console.log: [3 ms] ice 2 ")
        );
        let thrown = json!({"method": "Runtime.exceptionThrown", "sessionId": "S2",
            "params": {"exceptionDetails": {"text": "Uncaught",
                "exception": {"description": "Error: boom"}}}});
        assert_eq!(
            console_line(&thrown).as_deref(),
            Some("S2: uncaught: Error: boom")
        );
        assert_eq!(
            console_line(&json!({"method": "Target.targetCreated"})),
            None
        );
    }

    #[test]
    fn host_names_do_not_resolve_but_ip_literals_do() {
        let r = host_resolver_rules();
        assert!(r.starts_with("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 0*"));
        assert!(r.ends_with(", EXCLUDE 9*"));
    }
}
