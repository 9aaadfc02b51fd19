//! Shared by the end-to-end test files: start the real `stun-server`
//! binary on loopback, ports chosen by the kernel.

#![allow(dead_code)] // each test file uses a different part

use std::net::SocketAddr;
use std::time::Duration;

use common::stun::{Class, Message};
pub use e2e::*;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_stun-server")
}

/// Starts the server with `args` (which should bind port 0).
pub fn server(args: &[&str]) -> ServerProcess {
    ServerProcess::start(bin(), args)
}

/// One worker on 127.0.0.1 with metrics, plus `extra` flags: datagrams
/// are handled strictly in order, so "the next datagram is the answer to
/// the valid request" proves the one before it was not answered.
pub fn server_v4(extra: &[&str]) -> ServerProcess {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--http",
        "127.0.0.1:0",
        "--workers",
        "1",
    ];
    args.extend_from_slice(extra);
    server(&args)
}

/// Sends `req` from `sock` and returns the answer, panicking with the
/// server log if none comes.
pub fn ask(s: &ServerProcess, sock: &std::net::UdpSocket, to: SocketAddr, req: &[u8]) -> Vec<u8> {
    match exchange(sock, to, req, ANSWER_TIMEOUT) {
        Some((b, _)) => b,
        None => panic!(
            "no answer from {to} within {ANSWER_TIMEOUT:?}; log:\n{}",
            s.log()
        ),
    }
}

/// Parses a response (RFC 5389 framing), panicking on bad framing.
pub fn parse(b: &[u8]) -> Message<'_> {
    Message::parse(b, false).unwrap_or_else(|e| panic!("bad response {b:02x?}: {e}"))
}

/// Asserts `b` is a Binding success answering `req`.
pub fn assert_success_for(b: &[u8], req: &[u8]) {
    let m = parse(b);
    assert_eq!(m.class(), Class::SuccessResponse, "not a success: {b:02x?}");
    assert_eq!(m.method(), common::stun::method::BINDING);
    assert_eq!(&b[4..20], &req[4..20], "transaction does not match");
}

/// Attribute types of a message, in order.
pub fn attr_types(m: &Message<'_>) -> Vec<u16> {
    m.attributes().map(|(t, _)| t).collect()
}

pub const SHORT: Duration = Duration::from_millis(300);
