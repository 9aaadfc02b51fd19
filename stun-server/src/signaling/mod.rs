//! The signaling rendezvous served next to /metrics: two peers meet in a
//! named room and relay opaque JSON objects (SDP offers and answers, ICE
//! descriptions) to each other over long-polled HTTP.
//!
//! [`rooms`] is the registry (sans-IO, bounded); [`http`] is the axum
//! shell (routes, CORS, long-poll wake-ups, expiry task).

pub mod http;
pub mod rooms;

pub use http::Signaling;
