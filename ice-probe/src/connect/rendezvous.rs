//! Signaling through our stun-server's rendezvous (`--signal http://HOST:PORT
//! --room NAME`), plain HTTP/1.1 with hyper's client connection (one short
//! connection per request, no pool, no TLS):
//!
//! - `POST /v1/rooms/{room}/join[?role=offer|answer]` -> `{"peer","role",..}`
//! - `POST /v1/rooms/{room}/messages?peer=ID`, one JSON object
//! - `GET /v1/rooms/{room}/messages?peer=ID&wait=S` -> JSON array (long-poll)
//! - `DELETE /v1/rooms/{room}/peers/{peer}` when done

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::description::{BadMessage, SignalMessage};
use super::exchange::Role;
use super::link::{Incoming, Link};

/// Connecting to the rendezvous must not take long: a dead port is exit 3
/// at once, a black hole after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest long-poll we ask for (the server caps it at 30 s).
const MAX_WAIT_S: u64 = 25;
/// Largest answer we read.
const MAX_BODY: usize = 1 << 20;

/// `http://HOST:PORT[/]` -> the authority to connect to.
pub fn parse_signal_url(s: &str) -> Result<String, String> {
    let rest = s.strip_prefix("http://").ok_or_else(|| {
        if s.starts_with("https://") {
            format!("--signal {s}: https is not supported (use http://HOST:PORT of the rendezvous)")
        } else {
            format!("--signal {s}: expected http://HOST:PORT")
        }
    })?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains('/') || authority.contains('@') {
        return Err(format!(
            "--signal {s}: expected http://HOST:PORT with no path"
        ));
    }
    Ok(authority.to_string())
}

/// Room names are path segments: letters, digits, `-`, `_`, `.`.
pub fn check_room(room: &str) -> Result<(), String> {
    let ok = !room.is_empty()
        && room.len() <= 64
        && room
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--room {room:?}: use 1-64 letters, digits, '-', '_' or '.'"
        ))
    }
}

/// A rendezvous endpoint.
#[derive(Debug, Clone)]
pub struct Rendezvous {
    pub authority: String,
    pub addr: SocketAddr,
    pub room: String,
}

/// What joining gave us.
#[derive(Debug, Clone)]
pub struct Joined {
    pub peer: String,
    pub role: Option<Role>,
    /// Another peer was in the room when we joined, or something from
    /// the room (its `signal.peer-joined`, a message) reached us since.
    pub peer_seen: Arc<AtomicBool>,
}

impl Rendezvous {
    /// Resolves the authority (within the bound).
    pub async fn resolve(authority: &str, room: &str, deadline: Instant) -> Result<Self, String> {
        let lookup = tokio::net::lookup_host(authority.to_string());
        let addr =
            match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), lookup).await {
                Ok(Ok(mut a)) => a
                    .next()
                    .ok_or_else(|| format!("--signal {authority}: no address"))?,
                Ok(Err(e)) => return Err(format!("--signal {authority}: cannot resolve: {e}")),
                Err(_) => {
                    return Err(format!(
                        "--signal {authority}: did not resolve within --timeout"
                    ))
                }
            };
        Ok(Rendezvous {
            authority: authority.to_string(),
            addr,
            room: room.to_string(),
        })
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        wait: Duration,
    ) -> Result<(u16, Vec<u8>), String> {
        let connect = TcpStream::connect(self.addr);
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                return Err(format!(
                "signaling server http://{} unreachable: {e} (is stun-server running with --http?)",
                self.authority
            ))
            }
            Err(_) => {
                return Err(format!(
                    "signaling server http://{}: connect timed out",
                    self.authority
                ))
            }
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("signaling server http://{}: {e}", self.authority))?;
        let conn = tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.authority)
            .header(
                "user-agent",
                concat!("ice-probe/", env!("CARGO_PKG_VERSION")),
            );
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, body.to_vec()))
        };
        let r = tokio::time::timeout(wait + CONNECT_TIMEOUT, exchange).await;
        conn.abort();
        match r {
            Ok(Ok(x)) => Ok(x),
            Ok(Err(e)) => Err(format!(
                "signaling server http://{}: {method} {path}: {e}",
                self.authority
            )),
            Err(_) => Err(format!(
                "signaling server http://{}: {method} {path}: no answer",
                self.authority
            )),
        }
    }

    fn room_path(&self) -> String {
        format!("/v1/rooms/{}", self.room)
    }

    /// Joins the room (`role` asks for one).
    pub async fn join(&self, role: Option<Role>) -> Result<Joined, String> {
        let mut path = format!("{}/join", self.room_path());
        if let Some(r) = role {
            path.push_str(&format!("?role={}", r.as_str()));
        }
        let (status, body) = self.request("POST", &path, None, Duration::ZERO).await?;
        if status != 200 {
            return Err(format!(
                "signaling server refused to join room {:?}: HTTP {status} {}",
                self.room,
                String::from_utf8_lossy(&body).trim()
            ));
        }
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("signaling server: join answer is not JSON: {e}"))?;
        let peer = match &v["peer"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(format!(
                    "signaling server: join answer without \"peer\": {v}"
                ))
            }
        };
        let role = v["role"].as_str().and_then(Role::parse);
        let present = v["peer_present"].as_bool().unwrap_or(false);
        Ok(Joined {
            peer,
            role,
            peer_seen: Arc::new(AtomicBool::new(present)),
        })
    }

    /// Why the peer's description did not arrive: nobody else joined the
    /// room, or a peer joined and never sent it.
    pub fn no_description_why(&self, joined: &Joined, timeout: Duration) -> String {
        if joined.peer_seen.load(Ordering::Relaxed) {
            format!(
                "a peer joined room {:?} at http://{} but its description did not arrive within \
                 --timeout {timeout:?} (is it an ice-probe, or a page that sends SDP offers?)",
                self.room, self.authority
            )
        } else {
            format!(
                "no peer joined room {:?} at http://{} within --timeout {timeout:?} (start the \
                 other side with the same --signal and --room)",
                self.room, self.authority
            )
        }
    }

    /// Leaves the room (best effort, quick).
    pub async fn leave(&self, peer: &str) {
        let path = format!("{}/peers/{peer}", self.room_path());
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            self.request("DELETE", &path, None, Duration::ZERO),
        )
        .await;
    }
}

/// Joins and starts the writer (POST per message) and the long-poll reader.
pub async fn link(
    rv: &Rendezvous,
    role: Option<Role>,
    deadline: Instant,
) -> Result<(Link, Joined), String> {
    let joined = rv.join(role).await?;
    let (out_tx, out_rx) = unbounded_channel::<SignalMessage>();
    let (in_tx, in_rx) = unbounded_channel::<Incoming>();
    let writer = tokio::spawn(post_all(
        rv.clone(),
        joined.peer.clone(),
        out_rx,
        in_tx.clone(),
    ));
    tokio::spawn(poll_all(
        rv.clone(),
        joined.peer.clone(),
        Arc::clone(&joined.peer_seen),
        in_tx,
        deadline,
    ));
    Ok((
        Link {
            outgoing: out_tx,
            incoming: in_rx,
            assigned_role: role.or(joined.role),
            writer: Some(writer),
        },
        joined,
    ))
}

async fn post_all(
    rv: Rendezvous,
    peer: String,
    mut rx: UnboundedReceiver<SignalMessage>,
    fatal: UnboundedSender<Incoming>,
) {
    let path = format!("{}/messages?peer={peer}", rv.room_path());
    while let Some(m) = rx.recv().await {
        match rv
            .request("POST", &path, Some(m.to_line()), Duration::ZERO)
            .await
        {
            Ok((s, _)) if (200..300).contains(&s) => {}
            Ok((s, b)) => {
                let _ = fatal.send(Incoming::Fatal(format!(
                    "signaling server refused our message: HTTP {s} {}",
                    String::from_utf8_lossy(&b).trim()
                )));
                return;
            }
            Err(e) => {
                let _ = fatal.send(Incoming::Fatal(e));
                return;
            }
        }
    }
}

async fn poll_all(
    rv: Rendezvous,
    peer: String,
    peer_seen: Arc<AtomicBool>,
    tx: UnboundedSender<Incoming>,
    deadline: Instant,
) {
    loop {
        if tx.is_closed() {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        let wait = left.as_secs().clamp(1, MAX_WAIT_S);
        let path = format!("{}/messages?peer={peer}&wait={wait}", rv.room_path());
        let (status, body) = match rv
            .request("GET", &path, None, Duration::from_secs(wait))
            .await
        {
            Ok(x) => x,
            Err(e) => {
                let _ = tx.send(Incoming::Fatal(e));
                return;
            }
        };
        if status != 200 {
            let _ = tx.send(Incoming::Fatal(format!(
                "signaling server: GET messages: HTTP {status} {}",
                String::from_utf8_lossy(&body).trim()
            )));
            return;
        }
        let v: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                let _ = tx.send(Incoming::Fatal(format!(
                    "signaling server: messages are not JSON: {e}"
                )));
                return;
            }
        };
        let Some(items) = v.as_array() else {
            let _ = tx.send(Incoming::Fatal(format!(
                "signaling server: expected a JSON array, got {v}"
            )));
            return;
        };
        for item in items {
            // Only a peer (or the notice that one joined) puts anything
            // in our queue.
            peer_seen.store(true, Ordering::Relaxed);
            let ev = match SignalMessage::from_value(item) {
                Ok(m) => Incoming::Message(m),
                Err(BadMessage(e)) => {
                    Incoming::Bad(BadMessage(format!("from the peer via the rendezvous: {e}")))
                }
            };
            if tx.send(ev).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_rooms() {
        assert_eq!(
            parse_signal_url("http://127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(
            parse_signal_url("http://[::1]:8080/").unwrap(),
            "[::1]:8080"
        );
        assert!(parse_signal_url("https://x:1")
            .unwrap_err()
            .contains("https"));
        assert!(parse_signal_url("127.0.0.1:80").is_err());
        assert!(parse_signal_url("http://h:1/v1").is_err());
        assert!(check_room("call-42_a.b").is_ok());
        assert!(check_room("a/b").is_err());
        assert!(check_room("").is_err());
    }
}
