//! The report of `ice-probe nat` (JSON schema `ice-probe.nat/1`): RFC 5780
//! NAT behaviour discovery, one section per address family.
//!
//! Every fact is tri-state: a value, or `null` with a reason saying why it
//! was not measured ("server lacks RFC 5780 (...)", "no answer ..."). A
//! fact we could not measure is never reported as `false`.
//!
//! Top level (the primary family: IPv4 if it was measured, else IPv6):
//! `schema`, `servers`, `timeout_ms`, `elapsed_ms`, `primary_family`,
//! `udp`, `mapping`, `filtering`, `nat_type`, `hairpinning`,
//! `mapped_address`, `consequence`, `families` (every family measured,
//! IPv4 first). Fields are never removed or renamed within a schema version.

use serde::{Deserialize, Serialize};

/// Schema identifier written in every nat report.
pub const NAT_SCHEMA: &str = "ice-probe.nat/1";

/// How the NAT picks the public address for a socket (RFC 4787 / 5780).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MappingBehaviour {
    /// The mapped address is one of our own addresses: no translation.
    NoNat,
    EndpointIndependent,
    AddressDependent,
    AddressAndPortDependent,
    Unknown,
}

/// Which unsolicited inbound packets the NAT (or firewall) lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilteringBehaviour {
    EndpointIndependent,
    AddressDependent,
    AddressAndPortDependent,
    Unknown,
}

/// The classic label derived from mapping x filtering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatType {
    Open,
    FullCone,
    RestrictedCone,
    PortRestrictedCone,
    Symmetric,
    UdpBlocked,
    Firewall,
    Unknown,
}

macro_rules! labels {
    ($t:ty { $($v:ident => $s:literal),* $(,)? }) => {
        impl $t {
            /// The JSON (kebab-case) spelling.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$v => $s),* }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

labels!(MappingBehaviour {
    NoNat => "no-nat",
    EndpointIndependent => "endpoint-independent",
    AddressDependent => "address-dependent",
    AddressAndPortDependent => "address-and-port-dependent",
    Unknown => "unknown",
});
labels!(FilteringBehaviour {
    EndpointIndependent => "endpoint-independent",
    AddressDependent => "address-dependent",
    AddressAndPortDependent => "address-and-port-dependent",
    Unknown => "unknown",
});
labels!(NatType {
    Open => "open",
    FullCone => "full-cone",
    RestrictedCone => "restricted-cone",
    PortRestrictedCone => "port-restricted-cone",
    Symmetric => "symmetric",
    UdpBlocked => "udp-blocked",
    Firewall => "firewall",
    Unknown => "unknown",
});

/// A yes/no fact, or `value: null` with the reason it was not measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    pub value: Option<bool>,
    /// Why `value` is null (or a note on how it was measured).
    pub reason: Option<String>,
}

impl Fact {
    pub fn yes_no(v: bool) -> Self {
        Fact {
            value: Some(v),
            reason: None,
        }
    }
    pub fn unknown(reason: impl Into<String>) -> Self {
        Fact {
            value: None,
            reason: Some(reason.into()),
        }
    }
}

/// One whole `ice-probe nat` run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NatReport {
    /// Always [`NAT_SCHEMA`].
    pub schema: String,
    /// The server URIs as given.
    pub servers: Vec<String>,
    /// `--timeout` (the bound of each test), milliseconds.
    pub timeout_ms: u64,
    pub elapsed_ms: f64,
    /// `"ipv4"` or `"ipv6"`: the family the top-level fields describe
    /// (null when no family could be measured).
    pub primary_family: Option<String>,
    /// Some server answered over UDP in the primary family.
    pub udp: bool,
    pub mapping: MappingBehaviour,
    pub filtering: FilteringBehaviour,
    pub nat_type: NatType,
    pub hairpinning: Option<bool>,
    /// `"ip:port"` the primary server saw, or null.
    pub mapped_address: Option<String>,
    /// What the primary family's result means for calls, in plain words.
    pub consequence: String,
    /// The full report of every measured family, IPv4 first.
    pub families: Vec<FamilyReport>,
}

/// Everything measured in one address family.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FamilyReport {
    /// `"ipv4"` or `"ipv6"`.
    pub family: String,
    /// Some server answered a Binding request.
    pub udp: bool,
    pub mapping: MappingBehaviour,
    /// Why mapping is unknown (or how it was derived), else null.
    pub mapping_reason: Option<String>,
    pub filtering: FilteringBehaviour,
    pub filtering_reason: Option<String>,
    pub nat_type: NatType,
    pub consequence: String,
    /// Local address of the socket used for the mapping tests.
    pub local_address: Option<String>,
    /// What the RFC 5780 (or first answering) server saw for it.
    pub mapped_address: Option<String>,
    /// The server used for the RFC 5780 tests and its OTHER-ADDRESS.
    pub rfc5780_server: Option<String>,
    pub other_address: Option<String>,
    pub hairpinning: Fact,
    /// Mapped port equals the local port.
    pub port_preservation: Fact,
    /// MAPPED-ADDRESS differs from XOR-MAPPED-ADDRESS: something on the
    /// path (an ALG) rewrites addresses inside packets.
    pub alg: Fact,
    /// The mapped address differs between destinations.
    pub mapping_varies_by_destination: Fact,
    pub lifetime: LifetimeReport,
    /// Round-trip time to the RFC 5780 server, milliseconds.
    pub rtt_ms: Option<f64>,
    pub servers: Vec<ServerResult>,
    pub elapsed_ms: f64,
    /// Why this family could not be probed at all (no socket, no route);
    /// then every fact is unknown. Null when it ran.
    pub error: Option<String>,
}

/// The binding-lifetime search (`--lifetime`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LifetimeReport {
    /// The search ran to a result.
    pub measured: bool,
    /// The upper bound searched (`--lifetime MAX`), seconds; null when not asked.
    pub max_s: Option<f64>,
    /// The longest idle time a binding was seen to survive, seconds.
    pub survived_s: Option<f64>,
    /// The shortest idle time after which a binding was gone, seconds
    /// (null: it outlived `max_s`).
    pub expired_s: Option<f64>,
    /// Why not measured, or how to read the result.
    pub reason: Option<String>,
}

/// What one server said to the mapping socket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerResult {
    pub uri: String,
    pub address: String,
    pub answered: bool,
    pub rtt_ms: Option<f64>,
    pub mapped_address: Option<String>,
    pub other_address: Option<String>,
    pub response_origin: Option<String>,
    /// Usable for RFC 5780 tests: true (checked), false, or null (not tested).
    pub rfc5780: Option<bool>,
    pub rfc5780_reason: Option<String>,
    /// An error response (code), if it sent one.
    pub error_code: Option<u16>,
}
