//! Turning a STUN/TURN URI into a socket address.

use std::net::{SocketAddr, ToSocketAddrs};

use common::uri::{Host, IceUri};

use crate::error::ProbeError;

/// The address for `uri`: IP literals as written, names through the
/// system resolver (first answer, IPv4 preferred as browsers do for STUN).
pub fn resolve(uri: &IceUri) -> Result<SocketAddr, ProbeError> {
    match &uri.host {
        Host::Ip(ip) => Ok(SocketAddr::new(*ip, uri.port())),
        Host::Name(name) => {
            let addrs: Vec<SocketAddr> = (name.as_str(), uri.port())
                .to_socket_addrs()
                .map_err(|e| {
                    ProbeError::CannotRun(format!("cannot resolve {name} (from {uri}): {e}"))
                })?
                .collect();
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or(addrs.first())
                .copied()
                .ok_or_else(|| ProbeError::CannotRun(format!("{name} (from {uri}) has no address")))
        }
    }
}
