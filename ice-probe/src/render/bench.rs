//! The bench report as a table.

use std::fmt::Write as _;

use common::bench_report::BenchReport;

use super::{thousands, Style};

/// A table of the report, one fact per line.
pub fn table(r: &BenchReport, st: Style) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} {} ({})",
        st.bold("ice-probe bench"),
        r.target,
        r.server_address
    );
    let row = |s: &mut String, k: &str, v: String| {
        let _ = writeln!(s, "  {k:<22} {v}");
    };
    row(
        &mut s,
        "in flight",
        format!(
            "{} sockets x {} window = {} ({} thread{})",
            r.sockets,
            r.window,
            r.sockets * r.window,
            r.threads,
            if r.threads == 1 { "" } else { "s" }
        ),
    );
    row(&mut s, "measured", format!("{:.2} s", r.duration_s));
    row(
        &mut s,
        "responses",
        format!(
            "{}  ({} /s)",
            thousands(r.received),
            thousands(r.responses_per_sec.round() as u64)
        ),
    );
    row(&mut s, "requests sent", thousands(r.sent));
    let lost = thousands(r.lost);
    row(
        &mut s,
        "lost",
        format!(
            "{}  (no answer within {} ms)",
            if r.lost > 0 {
                st.bad(&lost)
            } else {
                st.good(&lost)
            },
            r.timeout_ms
        ),
    );
    let invalid = thousands(r.invalid);
    row(
        &mut s,
        "invalid",
        if r.invalid > 0 {
            st.bad(&invalid)
        } else {
            st.good(&invalid)
        },
    );
    if r.late > 0 {
        row(&mut s, "late", thousands(r.late));
    }
    let l = &r.latency_us;
    row(
        &mut s,
        "latency p50/p99/p99.9",
        format!(
            "{} / {} / {}  (max {}, mean {})",
            us(l.p50),
            us(l.p99),
            us(l.p999),
            us(l.max),
            us(l.mean)
        ),
    );
    if let Some(sv) = &r.server {
        row(
            &mut s,
            "server CPU",
            format!("{:.2} s (pid {})", sv.cpu_seconds, sv.pid),
        );
        if let Some(per) = sv.responses_per_cpu_second {
            row(
                &mut s,
                "per server core",
                st.bold(&format!(
                    "{} responses per CPU-second",
                    thousands(per.round() as u64)
                )),
            );
        }
        if let (Some(a), Some(b)) = (sv.rss_kib_before, sv.rss_kib_after) {
            row(
                &mut s,
                "server RSS",
                format!(
                    "{:.1} MiB before, {:.1} MiB after",
                    a as f64 / 1024.0,
                    b as f64 / 1024.0
                ),
            );
        }
    }
    if let Some(d) = &r.distinct_sources {
        row(
            &mut s,
            "distinct sources",
            format!(
                "{} answered of {} ({} unanswered)",
                thousands(d.answered),
                thousands(d.requested),
                thousands(d.unanswered)
            ),
        );
    }
    s
}

fn us(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} ms", v / 1000.0)
    } else {
        format!("{v:.0} us")
    }
}
