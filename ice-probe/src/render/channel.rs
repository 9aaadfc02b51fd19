//! A channel measurement as text: the status, then one block per direction
//! ("we -> peer", "peer -> we"), each fact or "not measured" when its half
//! never arrived.

use std::fmt::Write as _;

use common::channel_report::{ChannelProfile, ChannelReport, ChannelStatus, DirectionReport};

use super::{thousands, Style};

/// 2500000 -> "2.50 Mbit/s".
pub fn bits_per_second(bps: f64) -> String {
    if bps >= 1e9 {
        format!("{:.2} Gbit/s", bps / 1e9)
    } else if bps >= 1e6 {
        format!("{:.2} Mbit/s", bps / 1e6)
    } else if bps >= 1e3 {
        format!("{:.1} kbit/s", bps / 1e3)
    } else {
        format!("{bps:.0} bit/s")
    }
}

fn or_unmeasured<T>(v: Option<T>, f: impl Fn(T) -> String, st: Style) -> String {
    v.map(f).unwrap_or_else(|| st.dim("not measured"))
}

fn direction(out: &mut String, name: &str, d: &DirectionReport, video: bool, st: Style) {
    let _ = writeln!(out, "  {}", st.bold(name));
    let row = |out: &mut String, k: &str, v: String| {
        let _ = writeln!(out, "    {k:<22} {v}");
    };
    row(
        out,
        "packets",
        format!(
            "{}, {}",
            d.sent_packets.map_or_else(
                || st.dim("sent: not measured"),
                |n| format!("{} sent", thousands(n))
            ),
            d.received_packets.map_or_else(
                || st.dim("received: not measured"),
                |n| format!("{} received", thousands(n))
            ),
        ),
    );
    let loss = match (d.loss_pct, d.lost_packets) {
        (Some(pct), Some(lost)) => {
            let text = format!("{pct:.2} % ({} lost)", thousands(lost));
            if lost == 0 {
                st.good(&text)
            } else {
                text
            }
        }
        _ => st.dim("not measured"),
    };
    row(out, "loss", loss);
    row(
        out,
        "goodput",
        or_unmeasured(d.goodput_bps, bits_per_second, st),
    );
    if video {
        row(
            out,
            "jitter (RFC 3550)",
            or_unmeasured(d.jitter_ms, |j| format!("{j:.2} ms"), st),
        );
        row(
            out,
            "frames in time",
            match (d.frames_complete_in_time_pct, d.frames_sent) {
                (Some(pct), Some(n)) => format!("{pct:.1} % of {} frames", thousands(n)),
                _ => st.dim("not measured"),
            },
        );
    } else {
        row(
            out,
            "RTT p50/p90/p99/max",
            or_unmeasured(
                d.rtt_ms,
                |r| {
                    format!(
                        "{:.1} / {:.1} / {:.1} / {:.1} ms",
                        r.p50, r.p90, r.p99, r.max
                    )
                },
                st,
            ),
        );
    }
}

/// The report as a block of text (no trailing blank line).
pub fn table(r: &ChannelReport, st: Style) -> String {
    let mut out = String::new();
    let set = &r.settings;
    let what = match r.profile {
        ChannelProfile::Data => format!(
            "data, {:.1} s, window {} x {} B",
            set.duration_s,
            set.window.unwrap_or(0),
            set.message_bytes.unwrap_or(0)
        ),
        ChannelProfile::Video => format!(
            "video, {:.1} s, {} at {} fps, playout {:.0} ms",
            set.duration_s,
            bits_per_second(set.bitrate_bps.unwrap_or(0) as f64),
            set.fps.unwrap_or(0),
            set.playout_ms.unwrap_or(0.0)
        ),
    };
    let status = match &r.status {
        ChannelStatus::Completed => st.good("completed"),
        ChannelStatus::Skipped { .. } => st.dim(&r.status.to_string()),
        ChannelStatus::Failed { .. } => st.bad(&r.status.to_string()),
    };
    let _ = writeln!(out, "{} ({what}): {status}", st.bold("channel"));
    let video = r.profile == ChannelProfile::Video;
    if let Some(d) = &r.outbound {
        direction(&mut out, "we -> peer", d, video, st);
    }
    if let Some(d) = &r.inbound {
        direction(&mut out, "peer -> we", d, video, st);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::channel_report::{ChannelSettings, RttMs, CHANNEL_SCHEMA};

    fn report(profile: ChannelProfile, status: ChannelStatus) -> ChannelReport {
        ChannelReport {
            schema: CHANNEL_SCHEMA.into(),
            protocol_version: 1,
            peer_protocol_version: Some(1),
            profile,
            settings: ChannelSettings {
                duration_s: 5.0,
                window: Some(32),
                message_bytes: Some(1200),
                bitrate_bps: Some(2_500_000),
                fps: Some(30),
                playout_ms: Some(150.0),
            },
            status,
            outbound: Some(DirectionReport {
                sent_packets: Some(16_320),
                received_packets: Some(16_320),
                lost_packets: Some(0),
                loss_pct: Some(0.0),
                goodput_bps: Some(153_799_680.0),
                rtt_ms: Some(RttMs {
                    p50: 1.86,
                    p90: 2.39,
                    p99: 2.93,
                    max: 9.56,
                }),
                jitter_ms: Some(0.02),
                frames_sent: Some(150),
                frames_complete_in_time_pct: Some(98.0),
                duration_s: Some(5.0),
            }),
            inbound: Some(DirectionReport {
                received_packets: Some(900),
                ..Default::default()
            }),
            elapsed_s: 5.7,
        }
    }

    #[test]
    fn data_shows_rtt_and_both_directions() {
        let t = table(
            &report(ChannelProfile::Data, ChannelStatus::Completed),
            Style::plain(),
        );
        assert_eq!(
            t,
            "channel (data, 5.0 s, window 32 x 1200 B): completed
  we -> peer
    packets                16,320 sent, 16,320 received
    loss                   0.00 % (0 lost)
    goodput                153.80 Mbit/s
    RTT p50/p90/p99/max    1.9 / 2.4 / 2.9 / 9.6 ms
  peer -> we
    packets                sent: not measured, 900 received
    loss                   not measured
    goodput                not measured
    RTT p50/p90/p99/max    not measured
"
        );
    }

    #[test]
    fn video_shows_jitter_and_frames_and_the_failure() {
        let t = table(
            &report(
                ChannelProfile::Video,
                ChannelStatus::Failed {
                    reason: "peer stopped answering after 3.2 s (nothing for 2.0 s)".into(),
                },
            ),
            Style::plain(),
        );
        assert!(t.starts_with(
            "channel (video, 5.0 s, 2.50 Mbit/s at 30 fps, playout 150 ms): failed: peer stopped answering after 3.2 s"
        ));
        assert!(t.contains("jitter (RFC 3550)      0.02 ms"), "{t}");
        assert!(
            t.contains("frames in time         98.0 % of 150 frames"),
            "{t}"
        );
        assert!(!t.contains("RTT"));
    }
}
