//! The lab as text, before anything runs: addresses, `ip -batch` scripts
//! and nftables rulesets. Pure, so it is unit-tested without root.
//!
//! ```text
//!  server ns                internet ns                NAT router i           host i
//!  eth0: 203.0.113.1/24 <->  srv: 203.0.113.254/24
//!      203.0.113.2/24       nat<i>: 198.51.100.254/32 <-> wan: 198.51.100.<i>/32
//!                                                         lan: 10.<i>.0.1/24 <-> eth0: 10.<i>.0.2/24
//!                                                               (public kinds: 198.51.100.<100+i>/32)
//! ```
//! Nothing links to the root namespace. The internet router forwards only
//! between the lab's public ranges and has no default route; every other
//! namespace's default route leads to it, and it silently drops whatever
//! is not for the lab (so no `sendto` ever fails with ENETUNREACH).

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::spec::{NatBehaviour, NatSpec};

/// RFC 5780 primary and alternate addresses of the lab's server.
pub const SERVER_PRIMARY: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);
pub const SERVER_ALTERNATE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
/// The internet router's address on the server link.
pub const INTERNET_SERVER_SIDE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 254);
/// The internet router's address on every NAT link (a /32 per link).
pub const INTERNET_NAT_SIDE: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 254);
/// The ranges the internet router forwards between.
pub const PUBLIC_RANGES: [&str; 2] = ["203.0.113.0/24", "198.51.100.0/24"];

/// Conntrack's default UDP stream timeout, used for cone maps when the
/// spec keeps the kernel's timeouts.
const DEFAULT_MAP_TIMEOUT: Duration = Duration::from_secs(120);
/// Ports an address-dependent mapping picks from (jhash mod this).
const ADM_PORTS: u16 = 1024;
const ADM_FIRST_PORT: u16 = 40000;

/// Router number `n` (1-based): its WAN (public) address.
pub fn wan_ip(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, n as u8)
}

/// Router number `n`: its LAN-side address.
pub fn lan_gateway(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, n as u8, 0, 1)
}

/// The address of host `n`: private behind a NAT, public otherwise.
pub fn host_ip(n: usize, b: NatBehaviour) -> Ipv4Addr {
    if b.is_public() {
        Ipv4Addr::new(198, 51, 100, 100 + n as u8)
    } else {
        Ipv4Addr::new(10, n as u8, 0, 2)
    }
}

/// `ip -batch` lines run in the root namespace that only create veth
/// pairs with both ends directly inside lab namespaces.
pub fn veth_batch(server: &str, internet: &str, routers: &[String], hosts: &[String]) -> String {
    let mut s =
        format!("link add name eth0 netns {server} type veth peer name srv netns {internet}\n");
    for (i, (r, h)) in routers.iter().zip(hosts).enumerate() {
        let n = i + 1;
        writeln!(
            s,
            "link add name wan netns {r} type veth peer name nat{n} netns {internet}"
        )
        .unwrap();
        writeln!(
            s,
            "link add name lan netns {r} type veth peer name eth0 netns {h}"
        )
        .unwrap();
    }
    s
}

pub fn server_batch() -> String {
    format!(
        "link set dev lo up\n\
         link set dev eth0 up\n\
         addr add {SERVER_PRIMARY}/24 dev eth0\n\
         addr add {SERVER_ALTERNATE}/24 dev eth0\n\
         route add default via {INTERNET_SERVER_SIDE} dev eth0\n"
    )
}

pub fn internet_batch(nats: &[NatSpec]) -> String {
    let mut s = format!(
        "link set dev lo up\n\
         link set dev srv up\n\
         addr add {INTERNET_SERVER_SIDE}/24 dev srv\n"
    );
    for (i, nat) in nats.iter().enumerate() {
        let n = i + 1;
        let wan = wan_ip(n);
        writeln!(s, "link set dev nat{n} up").unwrap();
        writeln!(s, "addr add {INTERNET_NAT_SIDE}/32 dev nat{n}").unwrap();
        writeln!(s, "route add {wan}/32 dev nat{n}").unwrap();
        if nat.behaviour.is_public() {
            let host = host_ip(n, nat.behaviour);
            writeln!(s, "route add {host}/32 via {wan} dev nat{n}").unwrap();
        }
    }
    s
}

pub fn router_batch(n: usize, nat: &NatSpec) -> String {
    let (wan, gw) = (wan_ip(n), lan_gateway(n));
    let mut s = format!(
        "link set dev lo up\n\
         link set dev wan up\n\
         link set dev lan up\n\
         addr add {wan}/32 dev wan\n\
         route add {INTERNET_NAT_SIDE}/32 dev wan\n\
         route add default via {INTERNET_NAT_SIDE} dev wan\n\
         addr add {gw}/24 dev lan\n"
    );
    if nat.behaviour.is_public() {
        writeln!(s, "route add {}/32 dev lan", host_ip(n, nat.behaviour)).unwrap();
    }
    s
}

pub fn host_batch(n: usize, nat: &NatSpec) -> String {
    let gw = lan_gateway(n);
    let host = host_ip(n, nat.behaviour);
    let mut s = "link set dev lo up\nlink set dev eth0 up\n".to_string();
    if nat.behaviour.is_public() {
        writeln!(s, "addr add {host}/32 dev eth0").unwrap();
        writeln!(s, "route add {gw}/32 dev eth0").unwrap();
    } else {
        writeln!(s, "addr add {host}/24 dev eth0").unwrap();
    }
    writeln!(s, "route add default via {gw} dev eth0").unwrap();
    s
}

/// The internet router: forwards only between the public ranges; drops
/// anything else before routing, so nothing is answered with ICMP and
/// nothing could leave the lab even if a link existed.
pub fn internet_rules() -> String {
    let ranges = PUBLIC_RANGES.join(", ");
    format!(
        "table ip lab {{\n\
         \tset public {{ type ipv4_addr; flags interval; elements = {{ {ranges} }} }}\n\
         \tchain prerouting {{ type filter hook prerouting priority raw; policy accept;\n\
         \t\tip daddr != @public drop\n\
         \t\tip saddr != @public drop\n\
         \t}}\n\
         \tchain forward {{ type filter hook forward priority filter; policy drop;\n\
         \t\tip saddr @public ip daddr @public accept\n\
         \t}}\n\
         }}\n"
    )
}

/// Conntrack sysctls of a router (`key=value`), besides forwarding.
pub fn router_sysctls(nat: &NatSpec) -> Vec<String> {
    let mut v = vec!["net.ipv4.ip_forward=1".to_string()];
    if let Some(t) = nat.udp_timeout {
        let secs = t.as_secs().max(1);
        v.push(format!("net.netfilter.nf_conntrack_udp_timeout={secs}"));
        v.push(format!(
            "net.netfilter.nf_conntrack_udp_timeout_stream={secs}"
        ));
    }
    v
}

/// The ruleset of router `n` with behaviour `nat` (NETLAB.md's constructs).
pub fn router_rules(n: usize, nat: &NatSpec) -> String {
    use NatBehaviour as B;
    let b = nat.behaviour;
    let public = wan_ip(n);
    let secs = nat
        .udp_timeout
        .unwrap_or(DEFAULT_MAP_TIMEOUT)
        .as_secs()
        .max(1);
    let cone_filter = matches!(b, B::FullCone | B::RestrictedCone);
    let hairpin = nat.hairpinning && !b.is_public() && b != B::UdpBlocked;
    // public port -> (internal address, port): who a packet to that port is for.
    let eim_map = cone_filter || hairpin;

    let mut r = String::from("table ip lab {\n");
    if eim_map {
        writeln!(
            r,
            "\tmap eim {{ type inet_service : ipv4_addr . inet_service; flags dynamic,timeout; timeout {secs}s; }}"
        )
        .unwrap();
    }
    if b == B::RestrictedCone {
        writeln!(
            r,
            "\tset adf {{ type ipv4_addr . inet_service; flags dynamic,timeout; timeout {secs}s; }}"
        )
        .unwrap();
    }

    // Unsolicited WAN packets must not reach the router's own stack: the
    // conntrack entry they would leave changes the next mapping (NETLAB.md).
    r.push_str(
        "\tchain input { type filter hook input priority filter; policy accept;\n\
         \t\tiifname \"wan\" ct state established,related accept\n\
         \t\tiifname \"wan\" drop\n\
         \t}\n",
    );

    let policy = if b == B::None { "accept" } else { "drop" };
    writeln!(
        r,
        "\tchain forward {{ type filter hook forward priority filter; policy {policy};"
    )
    .unwrap();
    if b == B::UdpBlocked {
        r.push_str("\t\tmeta l4proto udp drop\n");
    }
    r.push_str("\t\tiifname \"lan\" oifname \"wan\" accept\n");
    r.push_str("\t\tiifname \"wan\" oifname \"lan\" ct state established,related accept\n");
    if cone_filter {
        r.push_str("\t\tiifname \"wan\" oifname \"lan\" ct status dnat accept\n");
    }
    if hairpin {
        r.push_str("\t\tiifname \"lan\" oifname \"lan\" ct status dnat accept\n");
    }
    r.push_str("\t}\n");

    if b.is_public() {
        r.push_str("}\n");
        return r;
    }

    r.push_str("\tchain prerouting { type nat hook prerouting priority dstnat; policy accept;\n");
    match b {
        B::FullCone => writeln!(
            r,
            "\t\tiifname \"wan\" ip daddr {public} dnat ip to udp dport map @eim"
        )
        .unwrap(),
        B::RestrictedCone => writeln!(
            r,
            "\t\tiifname \"wan\" ip daddr {public} ip saddr . udp dport @adf dnat ip to udp dport map @eim"
        )
        .unwrap(),
        _ => {}
    }
    if hairpin {
        writeln!(
            r,
            "\t\tiifname \"lan\" ip daddr {public} dnat ip to udp dport map @eim"
        )
        .unwrap();
    }
    r.push_str("\t}\n");

    r.push_str("\tchain postrouting { type nat hook postrouting priority srcnat; policy accept;\n");
    if hairpin {
        // The receiver sees the sender's public address (Linux keeps the
        // port when it is free, which it is for a port-preserving mapping).
        writeln!(
            r,
            "\t\tiifname \"lan\" oifname \"lan\" ct status dnat snat ip to {public}"
        )
        .unwrap();
    }
    match b {
        B::AddressDependent => {
            // jhash's result is host-endian: map it to ports explicitly.
            let ports: Vec<String> = (0..ADM_PORTS)
                .map(|i| format!("{i} : {}", ADM_FIRST_PORT + i))
                .collect();
            writeln!(
                r,
                "\t\toifname \"wan\" meta l4proto udp snat ip to {public} : jhash ip saddr . udp sport . ip daddr mod {ADM_PORTS} seed 0x5eed{n:02x} map {{ {} }}",
                ports.join(", ")
            )
            .unwrap();
            writeln!(r, "\t\toifname \"wan\" snat ip to {public}").unwrap();
        }
        B::Symmetric => {
            writeln!(r, "\t\toifname \"wan\" snat ip to {public} fully-random").unwrap()
        }
        _ => writeln!(r, "\t\toifname \"wan\" snat ip to {public}").unwrap(),
    }
    r.push_str("\t}\n");

    if eim_map || b == B::RestrictedCone {
        // After SNAT (priority 100) the header holds the public port.
        r.push_str("\tchain track { type filter hook postrouting priority 200; policy accept;\n");
        if eim_map {
            writeln!(
                r,
                "\t\toifname \"wan\" ct direction original meta l4proto udp update @eim {{ udp sport timeout {secs}s : ct original ip saddr . ct original proto-src }}"
            )
            .unwrap();
        }
        if b == B::RestrictedCone {
            writeln!(
                r,
                "\t\toifname \"wan\" ct direction original meta l4proto udp update @adf {{ ip daddr . udp sport timeout {secs}s }}"
            )
            .unwrap();
        }
        r.push_str("\t}\n");
    }
    r.push_str("}\n");
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_behaviour_uses_its_construct() {
        let rules = |b| router_rules(1, &NatSpec::new(b));
        assert!(rules(NatBehaviour::PortRestrictedCone).contains("snat ip to 198.51.100.1\n"));
        assert!(!rules(NatBehaviour::PortRestrictedCone).contains("dnat"));
        assert!(rules(NatBehaviour::Symmetric).contains("fully-random"));
        assert!(
            rules(NatBehaviour::AddressDependent).contains("jhash ip saddr . udp sport . ip daddr")
        );
        assert!(rules(NatBehaviour::FullCone).contains("dnat ip to udp dport map @eim"));
        assert!(rules(NatBehaviour::RestrictedCone).contains("ip saddr . udp dport @adf"));
        assert!(rules(NatBehaviour::UdpBlocked).contains("meta l4proto udp drop"));
        assert!(rules(NatBehaviour::Firewall).contains("policy drop"));
        assert!(!rules(NatBehaviour::Firewall).contains("snat"));
        assert!(rules(NatBehaviour::None).contains("policy accept;\n\t\tiifname \"lan\""));
        for b in NatBehaviour::ALL {
            let r = rules(b);
            assert!(r.contains("iifname \"wan\" drop"), "{b}: {r}");
            assert!(
                !r.contains("iifname \"lan\" ip daddr"),
                "{b}: hairpin is off"
            );
        }
        let hp = router_rules(2, &NatSpec::new(NatBehaviour::Symmetric).hairpinning(true));
        assert!(hp.contains("iifname \"lan\" ip daddr 198.51.100.2 dnat ip to udp dport map @eim"));
        assert!(
            hp.contains("iifname \"lan\" oifname \"lan\" ct status dnat snat ip to 198.51.100.2")
        );
        assert!(hp.contains("ct direction original meta l4proto udp update @eim"));
    }

    #[test]
    fn timeouts_and_addresses() {
        let spec = NatSpec::new(NatBehaviour::FullCone).udp_timeout(Duration::from_secs(5));
        assert!(router_rules(3, &spec).contains("timeout 5s;"));
        assert_eq!(
            router_sysctls(&spec),
            [
                "net.ipv4.ip_forward=1",
                "net.netfilter.nf_conntrack_udp_timeout=5",
                "net.netfilter.nf_conntrack_udp_timeout_stream=5"
            ]
        );
        assert_eq!(host_ip(2, NatBehaviour::Symmetric).to_string(), "10.2.0.2");
        assert_eq!(
            host_ip(2, NatBehaviour::Firewall).to_string(),
            "198.51.100.102"
        );
        let veths = veth_batch("s", "i", &["r1".into()], &["h1".into()]);
        // Every veth end is created inside a lab namespace.
        for line in veths.lines() {
            assert_eq!(line.matches(" netns ").count(), 2, "{line}");
        }
        assert!(!internet_batch(&[spec]).contains("default"));
    }
}
