//! What a lab is made of: one behaviour per NAT router, and its options.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// One RFC 4787 behaviour of a lab router (NETLAB.md lists the construct
/// behind each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatBehaviour {
    /// No NAT, no filter: the host has a public address.
    None,
    /// Endpoint-independent mapping and filtering (EIM/EIF).
    FullCone,
    /// EIM, address-dependent filtering (ADF).
    RestrictedCone,
    /// EIM, address-and-port-dependent filtering (APDF): plain SNAT.
    PortRestrictedCone,
    /// Address-dependent mapping (ADM), APDF.
    AddressDependent,
    /// Address-and-port-dependent mapping (APDM), APDF.
    Symmetric,
    /// No NAT, but a stateful filter: the host has a public address and
    /// only replies come in.
    Firewall,
    /// NAT whose router drops every UDP packet it forwards.
    UdpBlocked,
}

impl NatBehaviour {
    pub const ALL: [NatBehaviour; 8] = [
        NatBehaviour::None,
        NatBehaviour::FullCone,
        NatBehaviour::RestrictedCone,
        NatBehaviour::PortRestrictedCone,
        NatBehaviour::AddressDependent,
        NatBehaviour::Symmetric,
        NatBehaviour::Firewall,
        NatBehaviour::UdpBlocked,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            NatBehaviour::None => "none",
            NatBehaviour::FullCone => "full-cone",
            NatBehaviour::RestrictedCone => "restricted-cone",
            NatBehaviour::PortRestrictedCone => "port-restricted-cone",
            NatBehaviour::AddressDependent => "address-dependent",
            NatBehaviour::Symmetric => "symmetric",
            NatBehaviour::Firewall => "firewall",
            NatBehaviour::UdpBlocked => "udp-blocked",
        }
    }

    /// The host behind this router has a public address (no translation).
    pub const fn is_public(self) -> bool {
        matches!(self, NatBehaviour::None | NatBehaviour::Firewall)
    }
}

impl fmt::Display for NatBehaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NatBehaviour {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        NatBehaviour::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = NatBehaviour::ALL.iter().map(|b| b.as_str()).collect();
                format!("unknown NAT behaviour {s:?}: one of {}", names.join(", "))
            })
    }
}

/// One NAT router of a lab and the host behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatSpec {
    pub behaviour: NatBehaviour,
    /// LAN-side packets to the public address are sent back in (with the
    /// sender's public mapping as source). Public hosts hairpin anyway:
    /// their public address is their own.
    pub hairpinning: bool,
    /// `nf_conntrack_udp_timeout` and `..._stream` in this router's
    /// namespace (and the timeout of its cone maps); `None` keeps the
    /// kernel's defaults (30 s / 120 s).
    pub udp_timeout: Option<Duration>,
}

impl NatSpec {
    pub fn new(behaviour: NatBehaviour) -> Self {
        NatSpec {
            behaviour,
            hairpinning: false,
            udp_timeout: None,
        }
    }

    pub fn hairpinning(mut self, on: bool) -> Self {
        self.hairpinning = on;
        self
    }

    /// Whole seconds, at least 1 (conntrack's unit).
    pub fn udp_timeout(mut self, timeout: Duration) -> Self {
        self.udp_timeout = Some(timeout.max(Duration::from_secs(1)));
        self
    }
}

impl fmt::Display for NatSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.behaviour)?;
        if self.hairpinning && !self.behaviour.is_public() {
            f.write_str("+hairpin")?;
        }
        if let Some(t) = self.udp_timeout {
            write!(f, "+udp-timeout={}s", t.as_secs())?;
        }
        Ok(())
    }
}

/// The [`fmt::Display`] form: `BEHAVIOUR[+hairpin][+udp-timeout=SECONDS]`,
/// e.g. `symmetric`, `full-cone+hairpin`, `port-restricted-cone+udp-timeout=5`.
impl FromStr for NatSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.split('+');
        let behaviour: NatBehaviour = parts.next().unwrap_or_default().parse()?;
        let mut spec = NatSpec::new(behaviour);
        for opt in parts {
            if opt == "hairpin" {
                spec = spec.hairpinning(true);
            } else if let Some(v) = opt.strip_prefix("udp-timeout=") {
                let secs: u64 = v
                    .trim_end_matches('s')
                    .parse()
                    .ok()
                    .filter(|n| (1..=86_400).contains(n))
                    .ok_or_else(|| {
                        format!("bad udp-timeout {v:?} in {s:?}: whole seconds, 1 to 86400")
                    })?;
                spec = spec.udp_timeout(Duration::from_secs(secs));
            } else {
                return Err(format!(
                    "unknown NAT option {opt:?} in {s:?}: +hairpin or +udp-timeout=SECONDS"
                ));
            }
        }
        Ok(spec)
    }
}

/// Most NAT routers in one lab (their numbers are the third octet of the
/// LAN and the last of the WAN address).
pub const MAX_NATS: usize = 8;

/// A whole lab: a server namespace, the "internet" router and these NATs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabSpec {
    pub nats: Vec<NatSpec>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nat_spec_parses_its_display_form() {
        for s in [
            "symmetric",
            "full-cone+hairpin",
            "port-restricted-cone+udp-timeout=5s",
            "restricted-cone+hairpin+udp-timeout=30s",
        ] {
            let spec: NatSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
        let spec: NatSpec = "symmetric+udp-timeout=7".parse().unwrap();
        assert_eq!(spec.udp_timeout, Some(Duration::from_secs(7)));
        assert!("cone"
            .parse::<NatSpec>()
            .unwrap_err()
            .contains("one of none"));
        assert!("symmetric+fast".parse::<NatSpec>().is_err());
        assert!("symmetric+udp-timeout=0".parse::<NatSpec>().is_err());
    }
}
