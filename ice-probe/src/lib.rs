//! `ice-probe`: diagnose WebRTC connectivity. Each subcommand's engine is a
//! module; rendering is apart from measuring.

pub mod bench;
pub mod channel;
pub mod cli;
pub mod connect;
pub mod error;
pub mod gather;
pub mod nat;
pub mod render;
pub mod resolve;
pub mod stun_client;
pub mod time_arg;

pub use error::{exit, ProbeError};
