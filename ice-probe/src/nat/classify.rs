//! From the measured axes to the classic label, and what that label means
//! for a call, in plain words.

use common::nat_report::{FilteringBehaviour as F, MappingBehaviour as M, NatType};

/// The classic label. `varies` is "mapping varies by destination" from
/// several servers: when true, the mapping is at least address-dependent
/// (symmetric) even if RFC 5780 could not tell which kind.
pub fn nat_type(udp: bool, mapping: M, filtering: F, varies: Option<bool>) -> NatType {
    if !udp {
        return NatType::UdpBlocked;
    }
    match (mapping, filtering) {
        (M::NoNat, F::EndpointIndependent) => NatType::Open,
        (M::NoNat, F::AddressDependent | F::AddressAndPortDependent) => NatType::Firewall,
        (M::EndpointIndependent, F::EndpointIndependent) => NatType::FullCone,
        (M::EndpointIndependent, F::AddressDependent) => NatType::RestrictedCone,
        (M::EndpointIndependent, F::AddressAndPortDependent) => NatType::PortRestrictedCone,
        (M::AddressDependent | M::AddressAndPortDependent, _) => NatType::Symmetric,
        (M::Unknown, _) if varies == Some(true) => NatType::Symmetric,
        _ => NatType::Unknown,
    }
}

/// What the result means for peer-to-peer calls.
pub fn consequence(t: NatType, hairpinning: Option<bool>) -> String {
    let main = match t {
        NatType::Open => {
            "No NAT and no filtering: any peer can reach you directly; no relay is needed."
        }
        NatType::Firewall => {
            "No NAT, but a firewall drops unsolicited packets: direct connections work when both \
             sides send first (ICE does); a peer behind a symmetric NAT may need a TURN relay."
        }
        NatType::FullCone => {
            "Your public address is the same for every destination and anyone may send to it: \
             direct connections work with almost every peer."
        }
        NatType::RestrictedCone => {
            "Your public address is stable and opens to an IP address once you send to it: \
             direct connections work with most peers, including those behind symmetric NATs."
        }
        NatType::PortRestrictedCone => {
            "Your public address is stable but opens only to the exact address:port you sent to: \
             direct connections work with cone NATs; peers behind symmetric NATs will need a \
             TURN relay to reach you."
        }
        NatType::Symmetric => {
            "Your public port changes with each destination: peers behind symmetric or \
             port-restricted NATs will need a TURN relay to reach you; configure a TURN server."
        }
        NatType::UdpBlocked => {
            "No STUN server answered over UDP: from this network WebRTC needs a TURN relay over \
             TCP or TLS (turn:HOST?transport=tcp, turns:HOST)."
        }
        NatType::Unknown => {
            "Not enough evidence to classify the NAT; see the facts below for what could not be \
             measured and why."
        }
    };
    if hairpinning == Some(false) {
        format!(
            "{main} Hairpinning is not supported: two peers behind this NAT cannot reach each \
             other through its public address (they need host candidates or a relay)."
        )
    } else {
        main.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_from_axes() {
        assert_eq!(
            nat_type(true, M::NoNat, F::EndpointIndependent, None),
            NatType::Open
        );
        assert_eq!(
            nat_type(true, M::NoNat, F::AddressAndPortDependent, None),
            NatType::Firewall
        );
        assert_eq!(nat_type(true, M::NoNat, F::Unknown, None), NatType::Unknown);
        assert_eq!(
            nat_type(true, M::EndpointIndependent, F::AddressDependent, None),
            NatType::RestrictedCone
        );
        assert_eq!(
            nat_type(true, M::AddressDependent, F::Unknown, None),
            NatType::Symmetric
        );
        assert_eq!(
            nat_type(true, M::Unknown, F::Unknown, Some(true)),
            NatType::Symmetric
        );
        assert_eq!(
            nat_type(true, M::Unknown, F::Unknown, Some(false)),
            NatType::Unknown
        );
        assert_eq!(
            nat_type(false, M::Unknown, F::Unknown, None),
            NatType::UdpBlocked
        );
        assert!(consequence(NatType::Symmetric, None).contains("TURN relay"));
        assert!(consequence(NatType::FullCone, Some(false)).contains("Hairpinning"));
    }
}
