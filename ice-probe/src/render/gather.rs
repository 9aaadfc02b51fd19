//! The gather report as text: the Trickle ICE candidate table, then one
//! line per URL probe.

use std::fmt::Write;

use common::gather_report::{GatherReport, ProbeStatus};

use super::Style;

const HEADERS: [&str; 12] = [
    "time(ms)",
    "comp",
    "type",
    "foundation",
    "proto",
    "address",
    "port",
    "type-pref",
    "local-pref",
    "256-comp",
    "related",
    "url",
];

/// The whole report as a table.
pub fn table(r: &GatherReport, style: Style) -> String {
    let mut out = String::new();
    let rows: Vec<[String; 12]> = r
        .candidates
        .iter()
        .map(|c| {
            [
                format!("{:.1}", c.time_ms),
                c.component.to_string(),
                c.kind.clone(),
                c.foundation.clone(),
                c.protocol.clone(),
                c.address.clone(),
                c.port.to_string(),
                c.type_preference.to_string(),
                c.local_preference.to_string(),
                c.component_preference.to_string(),
                match (&c.related_address, c.related_port) {
                    (Some(a), Some(p)) if a.contains(':') => format!("[{a}]:{p}"),
                    (Some(a), Some(p)) => format!("{a}:{p}"),
                    _ => "-".to_string(),
                },
                c.url.clone().unwrap_or_else(|| "-".to_string()),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = HEADERS.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            // Numbers right-aligned, words left-aligned.
            let right = matches!(i, 0 | 1 | 6 | 7 | 8 | 9);
            if right {
                let _ = write!(s, "{c:>w$}  ");
            } else {
                let _ = write!(s, "{c:<w$}  ");
            }
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(
        out,
        "{}",
        style.bold(&format!(
            "Candidates ({}; priority = 2^24*type-pref + 2^8*local-pref + (256-comp))",
            r.candidates.len()
        ))
    );
    if rows.is_empty() {
        let _ = writeln!(out, "  {}", style.bad("none gathered"));
    } else {
        let heads: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
        let _ = writeln!(out, "  {}", style.dim(&line(&heads)));
        for row in &rows {
            let _ = writeln!(out, "  {}", line(row));
        }
    }
    let _ = writeln!(out);
    if !r.probes.is_empty() {
        let _ = writeln!(out, "{}", style.bold("Servers (our own probe of each URL)"));
        for p in &r.probes {
            let status = match p.status {
                ProbeStatus::Ok => style.good("ok"),
                ProbeStatus::NotSupported => style.dim("not supported"),
                s => style.bad(s.label()),
            };
            let rtt = p
                .rtt_ms
                .map(|t| format!("rtt {t:.2} ms"))
                .unwrap_or_else(|| "rtt -".to_string());
            let _ = writeln!(out, "  {}  {status}  {rtt}", p.url);
            if let Some(a) = &p.server_address {
                let _ = writeln!(out, "      server {a}, {} request(s) sent", p.requests_sent);
            }
            if let Some(m) = &p.mapped_address {
                let _ = writeln!(out, "      mapped address {m}");
            }
            if let Some(a) = &p.allocation {
                let _ = writeln!(
                    out,
                    "      relayed address {}, lifetime {}, {}",
                    a.relayed_address,
                    a.lifetime_s
                        .map(|l| format!("{l} s"))
                        .unwrap_or_else(|| "-".into()),
                    if a.released {
                        "released"
                    } else {
                        "not released"
                    }
                );
            }
            if let Some(e) = &p.error {
                let _ = writeln!(out, "      error {} {:?}: {}", e.code, e.reason, e.meaning);
            }
            let _ = writeln!(out, "      {}", p.detail);
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "{}",
        style.dim(&format!(
            "{} in {:.0} ms (bound {} ms){}",
            if r.gathering_complete {
                "gathering complete"
            } else {
                "stopped waiting for the agent"
            },
            r.elapsed_ms,
            r.timeout_ms,
            if r.include_loopback {
                ", loopback included"
            } else {
                ""
            }
        ))
    );
    for e in &r.agent_errors {
        let _ = writeln!(out, "{}", style.bad(&format!("agent: {e}")));
    }
    out
}
