//! The signaling rendezvous of the real binary (`--http 127.0.0.1:0`):
//! roles, relay both ways, long-poll wake-up, refusals with their status
//! and reason, CORS, leaving, metrics, and a stop that does not wait for
//! open long-polls. Loopback only; no assertion on speed.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::*;

fn start() -> ServerProcess {
    server(&["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"])
}

fn body_json(r: &HttpResponse) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", r.body))
}

fn assert_json_headers(r: &HttpResponse) {
    assert_eq!(r.header("content-type"), Some("application/json"), "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{r:?}");
}

/// Asserts an error answer: `status`, JSON `{"error": ...}` containing `needle`.
fn assert_error(r: &HttpResponse, status: u16, needle: &str) {
    assert_eq!(r.status, status, "{r:?}");
    assert_json_headers(r);
    let v = body_json(r);
    let reason = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {v}"));
    assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
}

struct Peer {
    id: String,
    role: String,
    room: String,
}

fn join(s: &ServerProcess, room: &str, query: &str) -> Peer {
    let r = s.request("POST", &format!("/v1/rooms/{room}/join{query}"), None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_json_headers(&r);
    let v = body_json(&r);
    assert_eq!(v["room"], room);
    Peer {
        id: v["peer"].as_str().expect("peer").to_string(),
        role: v["role"].as_str().expect("role").to_string(),
        room: room.to_string(),
    }
}

fn send(s: &ServerProcess, p: &Peer, msg: &str) -> HttpResponse {
    s.request(
        "POST",
        &format!("/v1/rooms/{}/messages?peer={}", p.room, p.id),
        Some(msg),
    )
}

fn poll(s: &ServerProcess, p: &Peer, wait: u32) -> Vec<Value> {
    let r = s.request(
        "GET",
        &format!("/v1/rooms/{}/messages?peer={}&wait={wait}", p.room, p.id),
        None,
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_json_headers(&r);
    match body_json(&r) {
        Value::Array(a) => a,
        v => panic!("not an array: {v}"),
    }
}

/// Polls until a message that is not a `signal.*` notice comes (or
/// panics after a few polls): the relayed messages, in order.
fn poll_messages(s: &ServerProcess, p: &Peer) -> Vec<Value> {
    for _ in 0..5 {
        let got: Vec<Value> = poll(s, p, 10)
            .into_iter()
            .filter(|m| !m["type"].as_str().unwrap_or("").starts_with("signal."))
            .collect();
        if !got.is_empty() {
            return got;
        }
    }
    panic!("no message for {} in room {}", p.role, p.room);
}

#[test]
fn two_peers_relay_both_ways() {
    let s = start();
    let a = join(&s, "meet-1", "");
    assert_eq!(a.role, "offer");
    let b = join(&s, "meet-1", "");
    assert_eq!(b.role, "answer");
    assert_ne!(a.id, b.id);

    // The offerer learns the answerer arrived.
    let got = poll(&s, &a, 10);
    assert_eq!(got[0]["type"], "signal.peer-joined", "{got:?}");
    assert_eq!(got[0]["role"], "answer");

    let ice = r#"{"type":"ice-description","ufrag":"abcd","pwd":"0123456789abcdefghijkl","candidates":["candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host"]}"#;
    let offer = r#"{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}"#;
    for m in [ice, offer] {
        let r = send(&s, &a, m);
        assert_eq!(r.status, 202, "{r:?}");
        assert_json_headers(&r);
    }
    let got = poll_messages(&s, &b);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0], serde_json::from_str::<Value>(ice).unwrap());
    assert_eq!(got[1], serde_json::from_str::<Value>(offer).unwrap());

    let answer = r#"{"type":"answer","sdp":"v=0\r\n"}"#;
    for m in [ice, answer] {
        assert_eq!(send(&s, &b, m).status, 202);
    }
    let got = poll_messages(&s, &a);
    assert_eq!(got[0]["type"], "ice-description");
    assert_eq!(got[1], serde_json::from_str::<Value>(answer).unwrap());

    // Nothing left: a short poll answers an empty array.
    assert!(poll(&s, &b, 0).is_empty());

    s.expect_metric("stun_signaling_messages_total", 4.0);
    s.expect_metric("stun_signaling_rooms", 1.0);
}

#[test]
fn long_poll_wakes_on_a_message() {
    let s = start();
    let a = join(&s, "wake", "");
    let b = join(&s, "wake", "");
    poll(&s, &a, 0); // the peer-joined notice
    let addr = s.http_addr();
    let path = format!("/v1/rooms/wake/messages?peer={}&wait=30", b.id);
    let waiter = std::thread::spawn(move || http_request(addr, "GET", &path, &[], None));
    // Give the poll a moment to be waiting (it returns the message either way).
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(send(&s, &a, r#"{"type":"offer","sdp":"v=0"}"#).status, 202);
    let r = waiter.join().unwrap().expect("long-poll answer");
    assert_eq!(r.status, 200, "{r:?}");
    let v = body_json(&r);
    assert_eq!(v[0]["type"], "offer", "{v}");
    assert_eq!(v[0]["sdp"], "v=0");
}

#[test]
fn third_peer_and_taken_role_get_409() {
    let s = start();
    let a = join(&s, "full", "?role=answer");
    assert_eq!(a.role, "answer");
    let r = s.request("POST", "/v1/rooms/full/join", Some(r#"{"role":"answer"}"#));
    assert_error(&r, 409, "taken");
    let b = join(&s, "full", "");
    assert_eq!(b.role, "offer");
    let r = s.request("POST", "/v1/rooms/full/join", None);
    assert_error(&r, 409, "two peers");
    let r = s.request("POST", "/v1/rooms/x/join?role=boss", None);
    assert_error(&r, 400, "offer");
    let r = s.request("POST", "/v1/rooms/bad%20name/join", None);
    assert_error(&r, 400, "room names");
    s.expect_metric("stun_signaling_rejected_total{reason=\"room_full\"}", 1.0);
    s.expect_metric("stun_signaling_rejected_total{reason=\"role_taken\"}", 1.0);
}

#[test]
fn bad_messages_are_refused_with_the_reason() {
    let s = start();
    let a = join(&s, "bad", "");
    let r = send(&s, &a, r#"{"type":"offer","sdp":"#);
    assert_error(&r, 400, "not JSON");
    assert_error(&send(&s, &a, "[1,2]"), 400, "must be a JSON object");
    assert_error(&send(&s, &a, "\"hi\""), 400, "must be a JSON object");
    let big = format!(r#"{{"type":"offer","sdp":"{}"}}"#, "x".repeat(70_000));
    assert_error(&send(&s, &a, &big), 413, "larger than");
    // The connection is still usable for the next request.
    assert_eq!(send(&s, &a, "{}").status, 202);
    s.expect_metric("stun_signaling_rejected_total{reason=\"bad_json\"}", 1.0);
    s.expect_metric("stun_signaling_rejected_total{reason=\"not_object\"}", 2.0);
    s.expect_metric("stun_signaling_rejected_total{reason=\"too_large\"}", 1.0);
}

#[test]
fn unknown_room_peer_and_path_are_404() {
    let s = start();
    let a = join(&s, "known", "");
    let ghost = Peer {
        id: "0123456789abcdef0123456789abcdef".into(),
        role: "offer".into(),
        room: "known".into(),
    };
    assert_error(&send(&s, &ghost, "{}"), 404, "no peer");
    let r = s.request("GET", "/v1/rooms/known/messages?peer=nobody&wait=0", None);
    assert_error(&r, 404, "no peer");
    let r = s.request("GET", "/v1/rooms/nowhere/messages?peer=x&wait=0", None);
    assert_error(&r, 404, "no room");
    let r = s.request("POST", "/v1/rooms/known/messages", Some("{}"));
    assert_error(&r, 400, "peer");
    let r = s.request(
        "GET",
        &format!("/v1/rooms/known/messages?peer={}&wait=-1", a.id),
        None,
    );
    assert_error(&r, 400, "wait");
    let r = s.request("GET", "/v1/rooms/known/messages?peer=x&wait=soon", None);
    assert_error(&r, 400, "wait");
    let r = s.request("POST", "/v1/rooms/%FF/join", None);
    assert_error(&r, 400, "UTF-8");
    assert_error(
        &s.request("GET", "/v1/rooms/known/join", None),
        405,
        "method",
    );
    assert_error(&s.request("GET", "/v1/nope", None), 404, "no such endpoint");
    let (status, _) = http_get(s.http_addr(), "/nope").unwrap();
    assert_eq!(status, 404);
}

#[test]
fn preflight_has_cors_headers() {
    let s = start();
    let r = http_request(
        s.http_addr(),
        "OPTIONS",
        "/v1/rooms/any/messages",
        &[
            ("Origin", "http://localhost:8080"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        None,
    )
    .unwrap();
    assert!(r.status == 204 || r.status == 200, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let methods = r.header("access-control-allow-methods").unwrap_or("");
    for m in ["GET", "POST", "DELETE", "OPTIONS"] {
        assert!(methods.contains(m), "{methods:?}");
    }
    let headers = r.header("access-control-allow-headers").unwrap_or("");
    assert!(
        headers.to_ascii_lowercase().contains("content-type"),
        "{headers:?}"
    );
    // And a real cross-origin answer carries the origin header too.
    let j = s.request("POST", "/v1/rooms/cors/join", None);
    assert_eq!(j.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn delete_leaves_and_the_other_side_sees_it() {
    let s = start();
    let a = join(&s, "bye", "");
    let b = join(&s, "bye", "");
    let r = s.request("DELETE", &format!("/v1/rooms/bye/peers/{}", a.id), None);
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    let got = poll(&s, &b, 10);
    let left = got
        .iter()
        .find(|m| m["type"] == "signal.peer-left")
        .unwrap_or_else(|| panic!("no peer-left in {got:?}"));
    assert_eq!(left["role"], "offer");
    assert_eq!(left["reason"], "left");
    // a is gone; its slot is free again.
    assert_error(&send(&s, &a, "{}"), 404, "no peer");
    let c = join(&s, "bye", "");
    assert_eq!(c.role, "offer");
    // Everyone leaves: the room goes.
    for p in [&b, &c] {
        let r = s.request("DELETE", &format!("/v1/rooms/bye/peers/{}", p.id), None);
        assert_eq!(r.status, 204, "{r:?}");
    }
    s.expect_metric("stun_signaling_rooms", 0.0);
    let r = s.request("DELETE", &format!("/v1/rooms/bye/peers/{}", a.id), None);
    assert_error(&r, 404, "no room");
}

#[test]
fn stop_releases_open_long_polls() {
    let mut s = start();
    let a = join(&s, "stop", "");
    let addr = s.http_addr();
    let path = format!("/v1/rooms/stop/messages?peer={}&wait=30", a.id);
    let waiter = std::thread::spawn(move || http_request(addr, "GET", &path, &[], None));
    std::thread::sleep(Duration::from_millis(200));
    // stop() panics if the server takes longer than STOP_TIMEOUT (10 s).
    let st = s.stop();
    assert!(st.success(), "{st:?}; log:\n{}", s.log());
    // The open poll was answered at once with the reason (a poll that
    // arrived after the listener closed would see the connection end).
    if let Ok(r) = waiter.join().unwrap() {
        assert_error(&r, 503, "shutting down");
    }
}

#[test]
fn help_mentions_the_endpoint() {
    let f = run_to_exit(bin(), &["--help"], Duration::from_secs(10));
    assert_eq!(f.code(), Some(0));
    assert!(f.stdout.contains("/v1/rooms/NAME/"), "{}", f.stdout);
}
