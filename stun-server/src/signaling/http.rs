//! The HTTP shell of the rendezvous: JSON over plain HTTP/1.1 with
//! long-polling, under `/v1/`, merged into the `--http` router.
//!
//! - `POST /v1/rooms/{room}/join[?role=offer|answer]` (optional body
//!   `{"role":...}`) -> 200 `{"peer","role","room","peer_present"}`
//! - `POST /v1/rooms/{room}/messages?peer=ID`, body one JSON object -> 202
//! - `GET /v1/rooms/{room}/messages?peer=ID&wait=SECONDS` -> 200, a JSON
//!   array of what waited for the peer, oldest first; when nothing waits it
//!   holds the request until something arrives or `wait` (default 25, at
//!   most 30) runs out, then answers `[]`.
//! - `DELETE /v1/rooms/{room}/peers/{peer}` -> 204
//!
//! Errors are `{"error":"<reason>"}`. Every `/v1/` response carries
//! `Access-Control-Allow-Origin: *`; `OPTIONS` anywhere under `/v1/` is a
//! preflight answer (204).
//!
//! Expiry: a task ticks every [`EXPIRE_EVERY`] and calls
//! [`Rooms::expire`]; a join that finds [`super::rooms::MAX_ROOMS`] rooms
//! also expires first. On shutdown, open long-polls answer at once (503
//! when they have nothing to deliver), so the graceful stop does not wait
//! for them.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::{Body, HttpBody};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, post};
use axum::Router;
use serde::Deserialize;
use tokio::sync::{watch, Notify};

use super::rooms::{parse_role, validate_message, Rooms, SignalError, MAX_MESSAGE_BYTES};
use crate::metrics::SignalingMetrics;

/// Default long-poll wait.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(25);
/// Longest long-poll wait a client may ask for.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// How often the expiry task runs.
pub const EXPIRE_EVERY: Duration = Duration::from_secs(5);
/// A body over the limit is read (and thrown away) up to this many bytes
/// so the client gets its 413 instead of a reset connection; beyond it the
/// connection is closed.
const DRAIN_LIMIT: usize = 1 << 20;

struct Inner {
    rooms: Rooms,
    /// One per joined peer; removed with the peer.
    waiters: HashMap<String, Arc<Notify>>,
}

/// The rendezvous: the registry behind a mutex, the long-polls' wake-ups
/// and the shutdown switch.
pub struct Signaling {
    inner: Mutex<Inner>,
    metrics: Arc<SignalingMetrics>,
    shutdown: watch::Sender<bool>,
}

impl Signaling {
    pub fn new(metrics: Arc<SignalingMetrics>) -> Arc<Self> {
        Arc::new(Signaling {
            inner: Mutex::new(Inner {
                rooms: Rooms::new(),
                waiters: HashMap::new(),
            }),
            metrics,
            shutdown: watch::channel(false).0,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Releases every open long-poll and makes new ones answer at once.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Runs [`Rooms::expire`] every [`EXPIRE_EVERY`] until [`Self::shutdown`].
    pub fn spawn_expiry(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        let mut stop = self.shutdown.subscribe();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EXPIRE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => me.expire(Instant::now()),
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        })
    }

    /// One expiry pass (also what the task runs).
    pub fn expire(&self, now: Instant) {
        let mut g = self.lock();
        let e = g.rooms.expire(now);
        if e.rooms > 0 || !e.dropped.is_empty() {
            tracing::debug!(
                "signaling: expired {} rooms, dropped {} peers",
                e.rooms,
                e.dropped.len()
            );
        }
        for p in &e.dropped {
            if let Some(n) = g.waiters.remove(p) {
                n.notify_waiters();
            }
        }
        wake(&g, &e.wake);
        self.gauge(&g);
    }

    fn gauge(&self, g: &Inner) {
        self.metrics
            .rooms
            .store(g.rooms.len() as u64, Ordering::Relaxed);
    }

    fn reject(&self, e: SignalError) -> Response {
        self.metrics.reject(&e);
        error_response(&e)
    }
}

fn wake(g: &Inner, peers: &[String]) {
    for p in peers {
        if let Some(n) = g.waiters.get(p) {
            n.notify_waiters();
        }
    }
}

/// The `/v1/` routes, with CORS on every response.
pub fn router(sig: Arc<Signaling>) -> Router {
    Router::new()
        .route("/v1/rooms/{room}/join", post(join))
        .route(
            "/v1/rooms/{room}/messages",
            post(post_message).get(poll_messages),
        )
        .route("/v1/rooms/{room}/peers/{peer}", delete(leave))
        .route("/v1/{*rest}", any(not_found))
        .route("/v1", any(not_found))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(sig)
        .layer(middleware::from_fn(cors))
}

/// `Access-Control-Allow-Origin: *` on every response; `OPTIONS` is
/// answered here, before routing (a preflight never reaches a handler).
async fn cors(req: Request, next: Next) -> Response {
    let mut res = if req.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, DELETE, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        r
    } else {
        next.run(req).await
    };
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}

fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn error_json(status: StatusCode, reason: &str) -> Response {
    json(status, serde_json::json!({ "error": reason }).to_string())
}

/// The status for each refusal.
pub fn status_of(e: &SignalError) -> StatusCode {
    match e {
        SignalError::BadRoomName
        | SignalError::BadRole(_)
        | SignalError::BadJson(_)
        | SignalError::NotObject(_)
        | SignalError::BadRequest(_) => StatusCode::BAD_REQUEST,
        SignalError::RoomFull(_) | SignalError::RoleTaken { .. } => StatusCode::CONFLICT,
        SignalError::UnknownRoom(_) | SignalError::UnknownPeer { .. } => StatusCode::NOT_FOUND,
        SignalError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        SignalError::QueueFull => StatusCode::TOO_MANY_REQUESTS,
        SignalError::TooManyRooms | SignalError::ServerFull => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn error_response(e: &SignalError) -> Response {
    error_json(status_of(e), &e.to_string())
}

async fn not_found() -> Response {
    error_json(StatusCode::NOT_FOUND, "no such endpoint")
}

async fn method_not_allowed() -> Response {
    error_json(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
}

/// Reads at most [`MAX_MESSAGE_BYTES`]; a longer body is
/// [`SignalError::TooLarge`] (drained up to [`DRAIN_LIMIT`] first).
async fn read_body(headers: &HeaderMap, mut body: Body) -> Result<Vec<u8>, SignalError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut out = Vec::new();
    let mut seen = 0usize;
    let too_large = declared.is_some_and(|n| n > MAX_MESSAGE_BYTES);
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(SignalError::TooLarge);
    }
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => break,
            Some(Err(e)) => return Err(SignalError::BadRequest(format!("cannot read body: {e}"))),
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    seen += data.len();
                    if seen > DRAIN_LIMIT {
                        break;
                    }
                    if !too_large && seen <= MAX_MESSAGE_BYTES {
                        out.extend_from_slice(&data);
                    }
                }
            }
        }
    }
    if too_large || seen > MAX_MESSAGE_BYTES {
        return Err(SignalError::TooLarge);
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
struct JoinQuery {
    role: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    role: Option<String>,
}

fn bad_path(e: PathRejection) -> SignalError {
    SignalError::BadRequest(format!("bad path: {}", e.body_text()))
}

fn bad_query(e: axum::extract::rejection::QueryRejection) -> SignalError {
    SignalError::BadRequest(format!("bad query: {}", e.body_text()))
}

async fn join(
    State(s): State<Arc<Signaling>>,
    room: Result<Path<String>, PathRejection>,
    query: Result<Query<JoinQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let room = match room {
        Ok(Path(r)) => r,
        Err(e) => return s.reject(bad_path(e)),
    };
    let r = async {
        let Query(q) = query.map_err(bad_query)?;
        let body = read_body(&headers, body).await?;
        let from_body = if body.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            serde_json::from_slice::<JoinBody>(&body)
                .map_err(|e| SignalError::BadJson(e.to_string()))?
                .role
        };
        let want = match (q.role, from_body) {
            (Some(a), Some(b)) if a != b => {
                return Err(SignalError::BadRequest(format!(
                    "role {a:?} in the query and {b:?} in the body disagree"
                )))
            }
            (a, b) => a.or(b).map(|r| parse_role(&r)).transpose()?,
        };
        let mut g = s.lock();
        let j = g.rooms.join(&room, want, Instant::now())?;
        g.waiters.insert(j.peer.clone(), Arc::new(Notify::new()));
        wake(&g, &j.wake);
        s.gauge(&g);
        Ok::<_, SignalError>(j)
    }
    .await;
    match r {
        Ok(j) => json(
            StatusCode::OK,
            serde_json::json!({
                "peer": j.peer,
                "role": j.role.as_str(),
                "room": room,
                "peer_present": j.peer_present,
            })
            .to_string(),
        ),
        Err(e) => s.reject(e),
    }
}

#[derive(Debug, Deserialize)]
struct PeerQuery {
    peer: Option<String>,
    wait: Option<f64>,
}

fn peer_of(q: &PeerQuery) -> Result<&str, SignalError> {
    q.peer
        .as_deref()
        .ok_or_else(|| SignalError::BadRequest("missing ?peer=ID (from the join answer)".into()))
}

async fn post_message(
    State(s): State<Arc<Signaling>>,
    room: Result<Path<String>, PathRejection>,
    query: Result<Query<PeerQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let room = match room {
        Ok(Path(r)) => r,
        Err(e) => return s.reject(bad_path(e)),
    };
    let r = async {
        let Query(q) = query.map_err(bad_query)?;
        let peer = peer_of(&q)?;
        let body = read_body(&headers, body).await?;
        let msg = validate_message(&body)?;
        let mut g = s.lock();
        let p = g.rooms.post(&room, peer, msg, Instant::now())?;
        wake(&g, p.wake.as_slice());
        Ok::<_, SignalError>(())
    }
    .await;
    match r {
        Ok(()) => {
            s.metrics.messages.fetch_add(1, Ordering::Relaxed);
            json(StatusCode::ACCEPTED, "{\"status\":\"queued\"}".into())
        }
        Err(e) => s.reject(e),
    }
}

async fn poll_messages(
    State(s): State<Arc<Signaling>>,
    room: Result<Path<String>, PathRejection>,
    query: Result<Query<PeerQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let room = match room {
        Ok(Path(r)) => r,
        Err(e) => return s.reject(bad_path(e)),
    };
    let q = match query.map_err(bad_query) {
        Ok(Query(q)) => q,
        Err(e) => return s.reject(e),
    };
    let peer = match peer_of(&q) {
        Ok(p) => p.to_string(),
        Err(e) => return s.reject(e),
    };
    let wait = match q.wait {
        None => DEFAULT_WAIT,
        Some(w) if w.is_finite() && w >= 0.0 => Duration::from_secs_f64(w).min(MAX_WAIT),
        Some(w) => {
            return s.reject(SignalError::BadRequest(format!(
                "wait must be seconds from 0 to {}, got {w}",
                MAX_WAIT.as_secs()
            )))
        }
    };
    let deadline = tokio::time::Instant::now() + wait;
    let mut stop = s.shutdown.subscribe();
    loop {
        let notify = s.lock().waiters.get(&peer).cloned();
        let notify = notify.unwrap_or_default();
        let notified = notify.notified();
        tokio::pin!(notified);
        {
            let mut g = s.lock();
            // Enabled under the lock: a post after this wakes us.
            notified.as_mut().enable();
            let msgs = match g.rooms.take(&room, &peer, Instant::now()) {
                Ok(m) => m,
                Err(e) => {
                    drop(g);
                    return s.reject(e);
                }
            };
            let stopping = *stop.borrow();
            if stopping && msgs.is_empty() {
                return error_json(StatusCode::SERVICE_UNAVAILABLE, "server is shutting down");
            }
            if !msgs.is_empty() || stopping || tokio::time::Instant::now() >= deadline {
                return json(StatusCode::OK, format!("[{}]", msgs.join(",")));
            }
        }
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }
}

async fn leave(
    State(s): State<Arc<Signaling>>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let (room, peer) = match path {
        Ok(Path(p)) => p,
        Err(e) => return s.reject(bad_path(e)),
    };
    let mut g = s.lock();
    match g.rooms.leave(&room, &peer, Instant::now()) {
        Ok(wake_list) => {
            if let Some(n) = g.waiters.remove(&peer) {
                n.notify_waiters();
            }
            wake(&g, &wake_list);
            s.gauge(&g);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => {
            drop(g);
            s.reject(e)
        }
    }
}
