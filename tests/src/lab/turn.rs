//! coturn in a lab's server namespace: a TURN relay on the lab's public
//! address, for tests where NATs that defeat hole punching still connect.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use super::plan::SERVER_PRIMARY;
use super::Namespace;
use crate::coturn::{Coturn, CoturnSpec};

/// Where coturn listens (UDP and TCP) in the server namespace.
pub const TURN_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(SERVER_PRIMARY), 3480);
/// The lab's TURN long-term credentials.
pub const TURN_USER: &str = "lab";
pub const TURN_PASSWORD: &str = "lab-secret";

/// The lab's coturn: on [`TURN_ADDR`], relaying on its IP, with
/// [`TURN_USER`] / [`TURN_PASSWORD`].
pub fn turn_spec() -> CoturnSpec {
    CoturnSpec::long_term(TURN_ADDR, "lab.example", TURN_USER, TURN_PASSWORD)
}

/// Starts coturn (`bin`) in `ns` with [`turn_spec`]; ready when it answers
/// a Binding request from inside the lab.
pub(super) fn start(ns: &Namespace, bin: &Path) -> Result<Coturn, String> {
    let dir = std::env::temp_dir().join(format!("lab-coturn-{}", ns.name()));
    let server = Coturn::spawn(ns.command(bin), &turn_spec(), dir)?;
    if !ns.stun_answers(TURN_ADDR, Duration::from_secs(5))? {
        return Err(format!(
            "coturn did not answer on {TURN_ADDR} within 5 s; log:\n{}",
            server.log()
        ));
    }
    Ok(server)
}
