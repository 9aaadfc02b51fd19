//! The rendezvous registry, sans-IO: named rooms of at most two peers that
//! relay opaque JSON objects to each other. Time comes in as an [`Instant`];
//! nothing here sleeps, spawns or touches a socket. The HTTP shell
//! ([`super::http`]) wakes long-polls for the peers each call names.
//!
//! A room has two slots, `offer` and `answer`, each with a queue of the
//! messages for whoever holds (or will hold) that slot: what the first peer
//! posts before the second arrives waits for it. A peer that leaves (or is
//! dropped) empties its own queue; the other peer gets a
//! `{"type":"signal.peer-left",...}` notice in order with the messages, and a
//! `{"type":"signal.peer-joined",...}` notice when someone takes the free
//! slot. A room whose last peer goes is removed at once.
//!
//! Memory is bounded by the constants below: at most [`MAX_ROOMS`] rooms,
//! two peers each, and at most [`MAX_TOTAL_QUEUED_BYTES`] of queued
//! messages over all rooms (each queue also at most [`MAX_QUEUED_MESSAGES`]
//! messages and [`MAX_QUEUED_BYTES`]).

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

/// Longest room name; names are `[A-Za-z0-9_.-]{1,64}`.
pub const MAX_ROOM_NAME: usize = 64;
/// Peers per room: one offers, one answers.
pub const MAX_PEERS_PER_ROOM: usize = 2;
/// Rooms at once; a join that would create one more is refused (503).
pub const MAX_ROOMS: usize = 10_000;
/// Largest message body, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Messages waiting for one peer; one more is refused (429).
pub const MAX_QUEUED_MESSAGES: usize = 256;
/// Bytes waiting for one peer; one more message is refused (429).
pub const MAX_QUEUED_BYTES: usize = 1024 * 1024;
/// Bytes waiting over all rooms; one more message is refused (503).
pub const MAX_TOTAL_QUEUED_BYTES: usize = 64 * 1024 * 1024;
/// A room where nobody joined or posted for this long is removed.
pub const ROOM_IDLE_TIMEOUT: Duration = Duration::from_secs(600);
/// A peer that has not polled (or joined) for this long is dropped.
pub const PEER_POLL_TIMEOUT: Duration = Duration::from_secs(60);

/// Which side of the exchange a peer is: the first to arrive offers
/// (ICE controlling), the second answers.
pub use common::role::Role;

/// The slot a role holds in a room.
fn slot_of(role: Role) -> usize {
    match role {
        Role::Offer => 0,
        Role::Answer => 1,
    }
}

/// `"offer"` or `"answer"` from a client, else 400 `bad_role`.
pub fn parse_role(s: &str) -> Result<Role, SignalError> {
    Role::parse(s).ok_or_else(|| SignalError::BadRole(s.chars().take(32).collect()))
}

/// Why a call was refused. Each maps to one HTTP status and one metrics
/// label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("room names are 1 to 64 characters of A-Z a-z 0-9 _ . -")]
    BadRoomName,
    #[error("role must be \"offer\" or \"answer\", got {0:?}")]
    BadRole(String),
    #[error("room {0:?} already has two peers")]
    RoomFull(String),
    #[error("role {role} in room {room:?} is taken")]
    RoleTaken { room: String, role: &'static str },
    #[error("too many rooms (at most {MAX_ROOMS}); try again later")]
    TooManyRooms,
    #[error("no room {0:?} (never joined, expired, or everyone left)")]
    UnknownRoom(String),
    #[error("no peer {peer:?} in room {room:?} (never joined, left, or dropped after {}s without polling)", PEER_POLL_TIMEOUT.as_secs())]
    UnknownPeer { room: String, peer: String },
    #[error("message is not JSON: {0}")]
    BadJson(String),
    #[error("message must be a JSON object, got {0}")]
    NotObject(&'static str),
    #[error("message is larger than {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    #[error("the other peer has {MAX_QUEUED_MESSAGES} messages or {MAX_QUEUED_BYTES} bytes waiting; retry after it polls")]
    QueueFull,
    #[error("the server holds too many queued messages; try again later")]
    ServerFull,
    /// A malformed request (query, join body), with the reason.
    #[error("{0}")]
    BadRequest(String),
}

impl SignalError {
    /// The `reason` label of `stun_signaling_rejected_total`.
    pub fn label(&self) -> &'static str {
        match self {
            SignalError::BadRoomName => "bad_room_name",
            SignalError::BadRole(_) => "bad_role",
            SignalError::RoomFull(_) => "room_full",
            SignalError::RoleTaken { .. } => "role_taken",
            SignalError::TooManyRooms => "too_many_rooms",
            SignalError::UnknownRoom(_) => "unknown_room",
            SignalError::UnknownPeer { .. } => "unknown_peer",
            SignalError::BadJson(_) => "bad_json",
            SignalError::NotObject(_) => "not_object",
            SignalError::TooLarge => "too_large",
            SignalError::QueueFull => "queue_full",
            SignalError::ServerFull => "server_full",
            SignalError::BadRequest(_) => "bad_request",
        }
    }

    /// Every label of [`SignalError::label`], in a fixed order.
    pub const LABELS: [&'static str; 13] = [
        "bad_room_name",
        "bad_role",
        "room_full",
        "role_taken",
        "too_many_rooms",
        "unknown_room",
        "unknown_peer",
        "bad_json",
        "not_object",
        "too_large",
        "queue_full",
        "server_full",
        "bad_request",
    ];
}

/// A successful join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub peer: String,
    pub role: Role,
    /// Whether the other slot is held (so a `peer-joined` notice went to it).
    pub peer_present: bool,
    /// Peers whose queue grew (the other peer, when present).
    pub wake: Vec<String>,
}

/// A message accepted for relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// The recipient, when it has joined (else the message waits for it).
    pub wake: Option<String>,
}

/// What [`Rooms::expire`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Expired {
    /// Rooms removed for inactivity.
    pub rooms: usize,
    /// Peers dropped (their own long-polls should end).
    pub dropped: Vec<String>,
    /// Peers that got a `peer-left` notice.
    pub wake: Vec<String>,
}

/// The reason given in a `signal.peer-left` notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeftReason {
    Left,
    Timeout,
}

#[derive(Debug)]
struct Peer {
    id: String,
    last_poll: Instant,
}

#[derive(Debug, Default)]
struct Slot {
    peer: Option<Peer>,
    /// Messages for this slot, oldest first (raw JSON object text).
    queue: VecDeque<String>,
    queued_bytes: usize,
}

#[derive(Debug)]
struct Room {
    slots: [Slot; MAX_PEERS_PER_ROOM],
    last_activity: Instant,
}

impl Room {
    fn is_empty(&self) -> bool {
        self.slots.iter().all(|s| s.peer.is_none())
    }

    /// The slot `peer` holds in this room (`room` names it in the error).
    fn role_of(&self, room: &str, peer: &str) -> Result<Role, SignalError> {
        [Role::Offer, Role::Answer]
            .into_iter()
            .find(|r| {
                self.slots[slot_of(*r)]
                    .peer
                    .as_ref()
                    .is_some_and(|p| p.id == peer)
            })
            .ok_or_else(|| SignalError::UnknownPeer {
                room: room.to_string(),
                peer: peer.to_string(),
            })
    }
}

/// All rooms. Not thread-safe by itself: the shell keeps it in a mutex.
#[derive(Debug)]
pub struct Rooms {
    rooms: HashMap<String, Room>,
    total_queued_bytes: usize,
    ids: RandomState,
    counter: u64,
}

impl Default for Rooms {
    fn default() -> Self {
        Self::new()
    }
}

/// Checks a room name against `[A-Za-z0-9_.-]{1,64}`.
pub fn valid_room_name(name: &str) -> bool {
    (1..=MAX_ROOM_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Checks a message body: at most [`MAX_MESSAGE_BYTES`], UTF-8 JSON, an
/// object. Returns the text to relay (the body with surrounding
/// whitespace trimmed; the object itself is relayed as sent).
pub fn validate_message(body: &[u8]) -> Result<String, SignalError> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(SignalError::TooLarge);
    }
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| SignalError::BadJson(e.to_string()))?;
    let kind = match v {
        serde_json::Value::Object(_) => {
            // from_slice accepted it, so it is UTF-8.
            let text =
                std::str::from_utf8(body).map_err(|e| SignalError::BadJson(e.to_string()))?;
            return Ok(text.trim().to_string());
        }
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
    };
    Err(SignalError::NotObject(kind))
}

fn notice(kind: &str, role: Role, reason: Option<LeftReason>) -> String {
    let mut v = serde_json::json!({ "type": kind, "role": role.as_str() });
    if let Some(r) = reason {
        v["reason"] = match r {
            LeftReason::Left => "left",
            LeftReason::Timeout => "timeout",
        }
        .into();
    }
    v.to_string()
}

impl Rooms {
    pub fn new() -> Self {
        Rooms {
            rooms: HashMap::new(),
            total_queued_bytes: 0,
            ids: RandomState::new(),
            counter: 0,
        }
    }

    /// Rooms that exist now.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Bytes of messages waiting over all rooms.
    pub fn queued_bytes(&self) -> usize {
        self.total_queued_bytes
    }

    /// A 128-bit peer ID as 32 hex digits: SipHash, keyed with the
    /// process's random keys, of a counter.
    fn new_peer_id(&mut self) -> String {
        let mut out = String::with_capacity(32);
        for _ in 0..2 {
            self.counter += 1;
            let mut h = self.ids.build_hasher();
            h.write_u64(self.counter);
            out.push_str(&format!("{:016x}", h.finish()));
        }
        out
    }

    /// Joins `room` (created if needed), in the role asked for or the free
    /// one (offer first). A notice goes to the peer already there.
    pub fn join(
        &mut self,
        room: &str,
        want: Option<Role>,
        now: Instant,
    ) -> Result<Joined, SignalError> {
        if !valid_room_name(room) {
            return Err(SignalError::BadRoomName);
        }
        if !self.rooms.contains_key(room) && self.rooms.len() >= MAX_ROOMS {
            self.expire(now);
            if self.rooms.len() >= MAX_ROOMS {
                return Err(SignalError::TooManyRooms);
            }
        }
        let id = self.new_peer_id();
        let r = self.rooms.entry(room.to_string()).or_insert_with(|| Room {
            slots: Default::default(),
            last_activity: now,
        });
        let free = |role: Role| r.slots[slot_of(role)].peer.is_none();
        let role = match want {
            _ if !free(Role::Offer) && !free(Role::Answer) => {
                return Err(SignalError::RoomFull(room.to_string()))
            }
            Some(w) if !free(w) => {
                return Err(SignalError::RoleTaken {
                    room: room.to_string(),
                    role: w.as_str(),
                })
            }
            Some(w) => w,
            None if free(Role::Offer) => Role::Offer,
            None => Role::Answer,
        };
        r.last_activity = now;
        r.slots[slot_of(role)].peer = Some(Peer {
            id: id.clone(),
            last_poll: now,
        });
        let other = &mut r.slots[slot_of(role.other())];
        let mut wake = Vec::new();
        let peer_present = if let Some(p) = &other.peer {
            wake.push(p.id.clone());
            let n = notice("signal.peer-joined", role, None);
            self.total_queued_bytes += n.len();
            other.queued_bytes += n.len();
            other.queue.push_back(n);
            true
        } else {
            false
        };
        Ok(Joined {
            peer: id,
            role,
            peer_present,
            wake,
        })
    }

    fn room_mut(&mut self, room: &str) -> Result<&mut Room, SignalError> {
        if !valid_room_name(room) {
            return Err(SignalError::BadRoomName);
        }
        self.rooms
            .get_mut(room)
            .ok_or_else(|| SignalError::UnknownRoom(room.to_string()))
    }

    /// Queues `message` (already checked by [`validate_message`]) for the
    /// other slot of `peer`'s room.
    pub fn post(
        &mut self,
        room: &str,
        peer: &str,
        message: String,
        now: Instant,
    ) -> Result<Posted, SignalError> {
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(SignalError::TooLarge);
        }
        let total = self.total_queued_bytes;
        let r = self.room_mut(room)?;
        let role = r.role_of(room, peer)?;
        let to = &mut r.slots[slot_of(role.other())];
        if to.queue.len() >= MAX_QUEUED_MESSAGES
            || to.queued_bytes + message.len() > MAX_QUEUED_BYTES
        {
            return Err(SignalError::QueueFull);
        }
        if total + message.len() > MAX_TOTAL_QUEUED_BYTES {
            return Err(SignalError::ServerFull);
        }
        to.queued_bytes += message.len();
        let n = message.len();
        to.queue.push_back(message);
        let wake = to.peer.as_ref().map(|p| p.id.clone());
        r.last_activity = now;
        self.total_queued_bytes += n;
        Ok(Posted { wake })
    }

    /// Takes every message waiting for `peer`, oldest first, and marks it
    /// as alive (it polled).
    pub fn take(
        &mut self,
        room: &str,
        peer: &str,
        now: Instant,
    ) -> Result<Vec<String>, SignalError> {
        let r = self.room_mut(room)?;
        let role = r.role_of(room, peer)?;
        let slot = &mut r.slots[slot_of(role)];
        if let Some(p) = &mut slot.peer {
            p.last_poll = now;
        }
        let freed = slot.queued_bytes;
        slot.queued_bytes = 0;
        let out: Vec<String> = slot.queue.drain(..).collect();
        self.total_queued_bytes -= freed;
        Ok(out)
    }

    /// Removes `peer` from `room`; returns the peers to wake (the other
    /// one, which gets a `peer-left` notice).
    pub fn leave(
        &mut self,
        room: &str,
        peer: &str,
        now: Instant,
    ) -> Result<Vec<String>, SignalError> {
        let r = self.room_mut(room)?;
        let role = r.role_of(room, peer)?;
        r.last_activity = now;
        let wake = self.remove_peer(room, role, LeftReason::Left);
        Ok(wake.into_iter().collect())
    }

    /// Empties `role`'s slot of `room`, notices the other peer (returned),
    /// and removes the room when nobody is left.
    fn remove_peer(&mut self, room: &str, role: Role, reason: LeftReason) -> Option<String> {
        let r = self.rooms.get_mut(room)?;
        let slot = &mut r.slots[slot_of(role)];
        slot.peer = None;
        let freed = slot.queued_bytes;
        slot.queued_bytes = 0;
        slot.queue.clear();
        self.total_queued_bytes -= freed;
        let other = &mut r.slots[slot_of(role.other())];
        let wake = other.peer.as_ref().map(|p| p.id.clone());
        if wake.is_some() && other.queue.len() < MAX_QUEUED_MESSAGES {
            // The notice goes in even over the byte bound: it is small and
            // at most one per departure.
            let n = notice("signal.peer-left", role, Some(reason));
            other.queued_bytes += n.len();
            self.total_queued_bytes += n.len();
            other.queue.push_back(n);
        }
        if r.is_empty() {
            self.drop_room(room);
        }
        wake
    }

    fn drop_room(&mut self, room: &str) -> Vec<String> {
        let Some(r) = self.rooms.remove(room) else {
            return Vec::new();
        };
        let mut ids = Vec::new();
        for s in r.slots {
            self.total_queued_bytes -= s.queued_bytes;
            if let Some(p) = s.peer {
                ids.push(p.id);
            }
        }
        ids
    }

    /// Drops peers that have not polled for [`PEER_POLL_TIMEOUT`] (the
    /// other peer gets a `peer-left` notice with reason `timeout`) and
    /// removes rooms idle for [`ROOM_IDLE_TIMEOUT`].
    pub fn expire(&mut self, now: Instant) -> Expired {
        let mut out = Expired::default();
        let idle: Vec<String> = self
            .rooms
            .iter()
            .filter(|(_, r)| now.saturating_duration_since(r.last_activity) >= ROOM_IDLE_TIMEOUT)
            .map(|(k, _)| k.clone())
            .collect();
        for name in idle {
            out.rooms += 1;
            out.dropped.extend(self.drop_room(&name));
        }
        let mut stale: Vec<(String, Role, String)> = Vec::new();
        for (name, r) in &self.rooms {
            for role in [Role::Offer, Role::Answer] {
                if let Some(p) = &r.slots[slot_of(role)].peer {
                    if now.saturating_duration_since(p.last_poll) >= PEER_POLL_TIMEOUT {
                        stale.push((name.clone(), role, p.id.clone()));
                    }
                }
            }
        }
        for (name, role, id) in stale {
            out.dropped.push(id);
            if let Some(w) = self.remove_peer(&name, role, LeftReason::Timeout) {
                out.wake.push(w);
            }
        }
        // A peer dropped in this pass is not woken for a notice.
        out.wake.retain(|w| !out.dropped.contains(w));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> serde_json::Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn roles_in_arrival_order_and_third_refused() {
        let t = Instant::now();
        let mut rs = Rooms::new();
        let a = rs.join("r1", None, t).unwrap();
        assert_eq!(a.role, Role::Offer);
        assert!(!a.peer_present);
        assert!(a.wake.is_empty());
        let b = rs.join("r1", None, t).unwrap();
        assert_eq!(b.role, Role::Answer);
        assert!(b.peer_present);
        assert_eq!(b.wake, vec![a.peer.clone()]);
        assert_ne!(a.peer, b.peer);
        assert_eq!(a.peer.len(), 32);
        assert_eq!(
            rs.join("r1", None, t),
            Err(SignalError::RoomFull("r1".into()))
        );
        assert_eq!(rs.len(), 1);
        // The offerer learns the answerer arrived.
        let got = rs.take("r1", &a.peer, t).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(v(&got[0])["type"], "signal.peer-joined");
        assert_eq!(v(&got[0])["role"], "answer");
    }

    #[test]
    fn asked_roles() {
        let t = Instant::now();
        let mut rs = Rooms::new();
        let a = rs.join("x", Some(Role::Answer), t).unwrap();
        assert_eq!(a.role, Role::Answer);
        let err = rs.join("x", Some(Role::Answer), t).unwrap_err();
        assert_eq!(err.label(), "role_taken");
        assert!(err.to_string().contains("answer"), "{err}");
        let b = rs.join("x", None, t).unwrap();
        assert_eq!(b.role, Role::Offer);
        assert_eq!(parse_role("offer"), Ok(Role::Offer));
        assert_eq!(parse_role("boss").unwrap_err().label(), "bad_role");
    }

    #[test]
    fn relays_both_ways_in_order() {
        let t = Instant::now();
        let mut rs = Rooms::new();
        let a = rs.join("r", None, t).unwrap();
        // Posted before the answerer arrives: it waits for it.
        let p = rs.post("r", &a.peer, "{\"n\":1}".into(), t).unwrap();
        assert_eq!(p.wake, None);
        let b = rs.join("r", None, t).unwrap();
        let p = rs.post("r", &a.peer, "{\"n\":2}".into(), t).unwrap();
        assert_eq!(p.wake.as_deref(), Some(b.peer.as_str()));
        assert_eq!(
            rs.take("r", &b.peer, t).unwrap(),
            vec!["{\"n\":1}", "{\"n\":2}"]
        );
        assert!(rs.take("r", &b.peer, t).unwrap().is_empty());
        rs.post("r", &b.peer, "{\"n\":3}".into(), t).unwrap();
        let got = rs.take("r", &a.peer, t).unwrap();
        assert_eq!(v(&got[0])["type"], "signal.peer-joined");
        assert_eq!(got[1], "{\"n\":3}");
        assert_eq!(rs.queued_bytes(), 0);
    }

    #[test]
    fn unknown_room_and_peer() {
        let t = Instant::now();
        let mut rs = Rooms::new();
        assert_eq!(rs.take("nope", "p", t).unwrap_err().label(), "unknown_room");
        rs.join("r", None, t).unwrap();
        assert_eq!(
            rs.post("r", "p", "{}".into(), t).unwrap_err().label(),
            "unknown_peer"
        );
        assert_eq!(rs.leave("r", "p", t).unwrap_err().label(), "unknown_peer");
    }

    #[test]
    fn every_label_listed() {
        let all = [
            SignalError::BadRoomName,
            SignalError::BadRole(String::new()),
            SignalError::RoomFull(String::new()),
            SignalError::RoleTaken {
                room: String::new(),
                role: "offer",
            },
            SignalError::TooManyRooms,
            SignalError::UnknownRoom(String::new()),
            SignalError::UnknownPeer {
                room: String::new(),
                peer: String::new(),
            },
            SignalError::BadJson(String::new()),
            SignalError::NotObject("null"),
            SignalError::TooLarge,
            SignalError::QueueFull,
            SignalError::ServerFull,
            SignalError::BadRequest(String::new()),
        ];
        let labels: Vec<_> = all.iter().map(|e| e.label()).collect();
        assert_eq!(labels, SignalError::LABELS);
    }

    #[test]
    fn room_names() {
        let t = Instant::now();
        let mut rs = Rooms::new();
        for ok in ["a", "A-b_c.9", &"x".repeat(64)] {
            assert!(valid_room_name(ok), "{ok}");
        }
        for bad in ["", &"x".repeat(65), "a b", "a/b", "é", "a%20"] {
            assert!(!valid_room_name(bad), "{bad}");
            assert_eq!(rs.join(bad, None, t), Err(SignalError::BadRoomName));
        }
    }

    #[test]
    fn messages_are_checked() {
        assert_eq!(
            validate_message(b"  {\"type\":\"offer\",\"sdp\":\"v=0\"}\n").unwrap(),
            "{\"type\":\"offer\",\"sdp\":\"v=0\"}"
        );
        let e = validate_message(b"{\"type\":").unwrap_err();
        assert_eq!(e.label(), "bad_json");
        assert!(e.to_string().contains("EOF"), "{e}");
        assert_eq!(
            validate_message(b"[1]").unwrap_err(),
            SignalError::NotObject("an array")
        );
        assert_eq!(
            validate_message(b"\"s\"").unwrap_err().label(),
            "not_object"
        );
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_MESSAGE_BYTES));
        assert_eq!(validate_message(big.as_bytes()), Err(SignalError::TooLarge));
        let edge = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_MESSAGE_BYTES - 8));
        assert_eq!(edge.len(), MAX_MESSAGE_BYTES);
        assert!(validate_message(edge.as_bytes()).is_ok());
    }

    #[test]
    fn queue_bounds() {
        let t = Instant::now();
        let mut rs = Rooms::new();
        let a = rs.join("r", None, t).unwrap();
        let b = rs.join("r", None, t).unwrap();
        rs.take("r", &a.peer, t).unwrap();
        for i in 0..MAX_QUEUED_MESSAGES {
            rs.post("r", &a.peer, format!("{{\"i\":{i}}}"), t).unwrap();
        }
        assert_eq!(
            rs.post("r", &a.peer, "{}".into(), t),
            Err(SignalError::QueueFull)
        );
        // The other direction is independent.
        rs.post("r", &b.peer, "{}".into(), t).unwrap();
        let got = rs.take("r", &b.peer, t).unwrap();
        assert_eq!(got.len(), MAX_QUEUED_MESSAGES);
        assert_eq!(got[0], "{\"i\":0}");
        assert_eq!(got[255], "{\"i\":255}");
        // Bytes: 16 messages of 64 KiB fill 1 MiB.
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_MESSAGE_BYTES - 8));
        for _ in 0..MAX_QUEUED_BYTES / MAX_MESSAGE_BYTES {
            rs.post("r", &a.peer, big.clone(), t).unwrap();
        }
        assert_eq!(
            rs.post("r", &a.peer, "{}".into(), t),
            Err(SignalError::QueueFull)
        );
        rs.take("r", &b.peer, t).unwrap();
        rs.take("r", &a.peer, t).unwrap();
        assert_eq!(rs.queued_bytes(), 0);
    }

    #[test]
    fn total_bytes_bounded() {
        let t = Instant::now();
        let mut rs = Rooms::new();
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_MESSAGE_BYTES - 8));
        let per_room = MAX_QUEUED_BYTES / MAX_MESSAGE_BYTES;
        let rooms = MAX_TOTAL_QUEUED_BYTES / MAX_QUEUED_BYTES;
        for i in 0..rooms {
            let a = rs.join(&format!("r{i}"), None, t).unwrap();
            for _ in 0..per_room {
                rs.post(&format!("r{i}"), &a.peer, big.clone(), t).unwrap();
            }
        }
        assert_eq!(rs.queued_bytes(), MAX_TOTAL_QUEUED_BYTES);
        let a = rs.join("last", None, t).unwrap();
        assert_eq!(
            rs.post("last", &a.peer, "{}".into(), t),
            Err(SignalError::ServerFull)
        );
    }

    #[test]
    fn room_count_bounded() {
        let t = Instant::now();
        let mut rs = Rooms::new();
        for i in 0..MAX_ROOMS {
            rs.join(&format!("r{i}"), None, t).unwrap();
        }
        assert_eq!(rs.join("one-more", None, t), Err(SignalError::TooManyRooms));
        // Joining an existing room still works.
        rs.join("r0", None, t).unwrap();
        // Once old rooms expire, a join makes room for itself.
        let later = t + ROOM_IDLE_TIMEOUT;
        let j = rs.join("one-more", None, later).unwrap();
        assert_eq!(j.role, Role::Offer);
        assert_eq!(rs.len(), 1);
    }

    #[test]
    fn leave_notices_and_rejoin() {
        let t = Instant::now();
        let mut rs = Rooms::new();
        let a = rs.join("r", None, t).unwrap();
        let b = rs.join("r", None, t).unwrap();
        rs.post("r", &b.peer, "{\"for\":\"a\"}".into(), t).unwrap();
        assert_eq!(rs.leave("r", &a.peer, t).unwrap(), vec![b.peer.clone()]);
        // a's undelivered messages went with it.
        assert_eq!(
            rs.queued_bytes(),
            rs.take("r", &b.peer, t).unwrap().concat().len()
        );
        assert_eq!(
            rs.take("r", &a.peer, t).unwrap_err().label(),
            "unknown_peer"
        );
        // The free slot (offer) is taken by the next joiner.
        let c = rs.join("r", None, t).unwrap();
        assert_eq!(c.role, Role::Offer);
        let got = rs.take("r", &b.peer, t).unwrap();
        assert_eq!(v(&got[0])["type"], "signal.peer-joined");
        // Everyone leaves: the room goes; joining again starts over.
        rs.leave("r", &b.peer, t).unwrap();
        let got = rs.take("r", &c.peer, t).unwrap();
        assert_eq!(v(&got[0])["type"], "signal.peer-left");
        assert_eq!(v(&got[0])["role"], "answer");
        assert_eq!(v(&got[0])["reason"], "left");
        rs.leave("r", &c.peer, t).unwrap();
        assert!(rs.is_empty());
        assert_eq!(rs.queued_bytes(), 0);
        assert_eq!(rs.join("r", None, t).unwrap().role, Role::Offer);
    }

    #[test]
    fn silent_peer_is_dropped() {
        let t = Instant::now();
        let mut rs = Rooms::new();
        let a = rs.join("r", None, t).unwrap();
        let b = rs.join("r", None, t).unwrap();
        let half = t + PEER_POLL_TIMEOUT / 2;
        rs.take("r", &b.peer, half).unwrap();
        assert_eq!(rs.expire(half), Expired::default());
        let e = rs.expire(t + PEER_POLL_TIMEOUT);
        assert_eq!(e.dropped, vec![a.peer.clone()]);
        assert_eq!(e.wake, vec![b.peer.clone()]);
        assert_eq!(e.rooms, 0);
        let got = rs.take("r", &b.peer, t + PEER_POLL_TIMEOUT).unwrap();
        assert_eq!(v(&got[0])["type"], "signal.peer-left");
        assert_eq!(v(&got[0])["reason"], "timeout");
        // Left alone and silent: dropped too, and the room goes with it.
        let e = rs.expire(t + PEER_POLL_TIMEOUT * 3);
        assert_eq!(e.dropped, vec![b.peer.clone()]);
        assert!(e.wake.is_empty());
        assert!(rs.is_empty());
    }

    #[test]
    fn idle_room_expires() {
        let t = Instant::now();
        let mut rs = Rooms::new();
        let a = rs.join("r", None, t).unwrap();
        let b = rs.join("r", None, t).unwrap();
        // Both keep polling; polls keep peers, not rooms, alive.
        let mut now = t;
        while now < t + ROOM_IDLE_TIMEOUT - Duration::from_secs(60) {
            now += Duration::from_secs(30);
            rs.take("r", &a.peer, now).unwrap();
            rs.take("r", &b.peer, now).unwrap();
            assert_eq!(rs.expire(now).rooms, 0);
        }
        // A post counts as activity: the room lives 10 minutes from it.
        rs.post("r", &a.peer, "{}".into(), now).unwrap();
        let posted = now;
        while now < posted + ROOM_IDLE_TIMEOUT - Duration::from_secs(30) {
            now += Duration::from_secs(30);
            rs.take("r", &a.peer, now).unwrap();
            rs.take("r", &b.peer, now).unwrap();
            assert_eq!(rs.expire(now).rooms, 0);
        }
        assert_eq!(rs.len(), 1);
        let e = rs.expire(posted + ROOM_IDLE_TIMEOUT);
        assert_eq!(e.rooms, 1);
        assert_eq!(e.dropped.len(), 2);
        assert!(rs.is_empty());
        assert_eq!(rs.queued_bytes(), 0);
    }
}
