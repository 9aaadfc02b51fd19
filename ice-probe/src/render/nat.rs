//! `ice-probe nat` as a table: one block of facts per family, each fact
//! yes / no / "not measured: <reason>", then the servers and what the
//! result means for calls.

use std::fmt::Write as _;

use common::nat_report::{Fact, FamilyReport, NatReport, NatType};

use super::Style;

fn fact(f: &Fact, s: Style) -> String {
    match (f.value, &f.reason) {
        (Some(true), _) => s.good("yes"),
        (Some(false), _) => "no".to_string(),
        (None, Some(r)) => s.dim(&format!("not measured: {r}")),
        (None, None) => s.dim("not measured"),
    }
}

fn with_reason(value: &str, reason: &Option<String>, s: Style) -> String {
    match reason {
        Some(r) => format!("{value}  {}", s.dim(&format!("({r})"))),
        None => value.to_string(),
    }
}

fn label(t: NatType, s: Style) -> String {
    match t {
        NatType::Open | NatType::FullCone | NatType::RestrictedCone => s.good(t.as_str()),
        NatType::Symmetric | NatType::UdpBlocked => s.bad(t.as_str()),
        _ => s.bold(t.as_str()),
    }
}

fn family(out: &mut String, f: &FamilyReport, s: Style) {
    let name = if f.family == "ipv4" { "IPv4" } else { "IPv6" };
    let _ = writeln!(out, "{}", s.bold(name));
    if let Some(e) = &f.error {
        let _ = writeln!(out, "  {} {e}\n", s.bad("could not probe:"));
        return;
    }
    let row = |out: &mut String, k: &str, v: String| {
        let _ = writeln!(out, "  {k:<24} {v}");
    };
    row(out, "NAT type", label(f.nat_type, s));
    row(
        out,
        "UDP",
        if f.udp {
            s.good("yes")
        } else {
            s.bad("no answer")
        },
    );
    row(
        out,
        "mapping",
        with_reason(f.mapping.as_str(), &f.mapping_reason, s),
    );
    row(
        out,
        "filtering",
        with_reason(f.filtering.as_str(), &f.filtering_reason, s),
    );
    let mapped = match (&f.mapped_address, &f.local_address) {
        (Some(m), Some(l)) => format!("{m}  {}", s.dim(&format!("(local {l})"))),
        (Some(m), None) => m.clone(),
        _ => s.dim("none"),
    };
    row(out, "mapped address", mapped);
    row(out, "hairpinning", fact(&f.hairpinning, s));
    row(out, "port preservation", fact(&f.port_preservation, s));
    row(out, "ALG rewriting", fact(&f.alg, s));
    row(
        out,
        "mapping varies by dest.",
        fact(&f.mapping_varies_by_destination, s),
    );
    let lifetime = match (&f.lifetime.survived_s, &f.lifetime.expired_s) {
        (Some(a), Some(b)) if f.lifetime.measured => format!("{a:.1}s to {b:.1}s idle"),
        (Some(a), None) if f.lifetime.measured => format!("more than {a:.0}s idle"),
        _ => s.dim(&format!(
            "not measured: {}",
            f.lifetime.reason.as_deref().unwrap_or("")
        )),
    };
    row(out, "binding lifetime", lifetime);
    if let Some(r) = f.rtt_ms {
        row(out, "RTT", format!("{r:.2} ms"));
    }
    if let (Some(p), Some(o)) = (&f.rfc5780_server, &f.other_address) {
        row(out, "RFC 5780 server", format!("{p} (other address {o})"));
    }
    let _ = writeln!(
        out,
        "\n  {:<28} {:<24} {:>8}  {:<24} RFC 5780",
        "server", "address", "rtt ms", "mapped"
    );
    for sv in &f.servers {
        let rtt = sv.rtt_ms.map_or("-".into(), |r| format!("{r:.2}"));
        let mapped = match (&sv.mapped_address, sv.error_code) {
            (Some(m), _) => m.clone(),
            (None, Some(c)) => format!("error {c}"),
            (None, None) if sv.answered => "?".into(),
            (None, None) => s.bad("no answer"),
        };
        let rfc = match sv.rfc5780 {
            Some(true) => s.good("yes"),
            Some(false) => "no".into(),
            None => s.dim("?"),
        };
        let why = sv
            .rfc5780_reason
            .as_ref()
            .map(|r| format!(" {}", s.dim(&format!("({r})"))))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<28} {:<24} {:>8}  {:<24} {rfc}{why}",
            sv.uri, sv.address, rtt, mapped
        );
    }
    let _ = writeln!(out, "\n  {}\n", f.consequence);
}

/// The whole report for a terminal or a pipe.
pub fn table(r: &NatReport, s: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}  {}",
        s.bold("ice-probe nat"),
        r.servers.join(" "),
        s.dim(&format!(
            "({:.0} ms, each test bounded by {} ms)",
            r.elapsed_ms, r.timeout_ms
        ))
    );
    let _ = writeln!(out);
    if r.families.is_empty() {
        let _ = writeln!(out, "no address family could be measured");
    }
    for f in &r.families {
        family(&mut out, f, s);
    }
    out
}
