//! The `connect` / `selftest` report for people.

use std::fmt::Write;

use common::connect_report::{ConnectReport, Endpoint};

use super::Style;

fn ep(e: &Endpoint) -> String {
    let addr = if e.address.contains(':') {
        format!("[{}]:{}", e.address, e.port)
    } else {
        format!("{}:{}", e.address, e.port)
    };
    format!("{:<5} {} {}", e.kind, e.protocol, addr)
}

fn opt_ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1} ms"))
        .unwrap_or_else(|| "-".into())
}

/// The report as text.
pub fn table(r: &ConnectReport, s: Style) -> String {
    let mut o = String::new();
    let verdict = if r.connected {
        s.good("connected")
    } else {
        s.bad("not connected")
    };
    let _ = writeln!(
        o,
        "{} {} ({} mode, role {}, {:.1} ms of {} ms)",
        s.bold("ICE"),
        verdict,
        r.mode,
        r.role,
        r.elapsed_ms,
        r.timeout_ms
    );
    if let Some(p) = &r.selected_pair {
        let _ = writeln!(o, "  selected pair   local  {}", ep(&p.local));
        let _ = writeln!(o, "                  remote {}", ep(&p.remote));
        let mut notes = Vec::new();
        if p.prflx_learned {
            notes.push("prflx: an address learned from checks, not signaled (a NAT in between, or the checks outran trickled candidates)");
        }
        if p.relayed {
            notes.push("relayed through TURN");
        }
        if !notes.is_empty() {
            let _ = writeln!(o, "                  {}", s.dim(&notes.join("; ")));
        }
    }
    let _ = writeln!(
        o,
        "  time to         gathered {}, checking {}, connected {}",
        opt_ms(r.time_to_gathered_ms),
        opt_ms(r.time_to_checking_ms),
        opt_ms(r.time_to_connected_ms)
    );
    let _ = writeln!(
        o,
        "  candidates      {} local, {} remote",
        r.local_candidates.len(),
        r.remote_candidates.len()
    );
    let c = &r.pairs;
    let _ = writeln!(
        o,
        "  pairs           {} formed, {} tried: {} succeeded, {} failed, {} in progress, {} never checked",
        c.total, c.tried, c.succeeded, c.failed, c.in_progress, c.waiting
    );
    for p in &r.pair_list {
        let _ = writeln!(
            o,
            "    {:<11} {} -> {}{}",
            p.state,
            ep(&p.local),
            ep(&p.remote),
            if p.nominated { "  (nominated)" } else { "" }
        );
    }
    match r.channel.status.as_str() {
        "measured" => {
            let f = |v: Option<f64>, unit: &str| {
                v.map(|v| format!("{v:.2} {unit}"))
                    .unwrap_or_else(|| "-".into())
            };
            let _ = writeln!(
                o,
                "  channel         loss {}, goodput {}, rtt {}",
                f(r.channel.loss_percent, "%"),
                f(r.channel.goodput_bps.map(|b| b / 1e6), "Mbit/s"),
                f(r.channel.rtt_ms, "ms")
            );
        }
        st => {
            let _ = writeln!(
                o,
                "  channel         {st}{}",
                r.channel
                    .reason
                    .as_deref()
                    .map(|w| format!(" ({w})"))
                    .unwrap_or_default()
            );
        }
    }
    if let (Some(stage), Some(why)) = (&r.failed_stage, &r.diagnosis) {
        let stage = stage.as_str();
        let _ = writeln!(o, "  {}    {}: {}", s.bad("failed at"), stage, why);
    }
    for a in &r.assertions {
        let mark = match a.passed {
            Some(true) => s.good("pass"),
            Some(false) => s.bad("FAIL"),
            None => s.bad("n/a "),
        };
        let _ = writeln!(o, "  {mark} {}  {}", a.name, a.detail);
    }
    o
}
