//! The channel measurement over real sockets: two tokio UDP sockets on
//! 127.0.0.1, connected to each other, used as `Transport`s.

use std::time::{Duration, Instant};

use common::channel_report::{ChannelReport, ChannelStatus};
use ice_probe::channel::{run, ChannelConfig, Profile};
use tokio::net::UdpSocket;

async fn socket_pair() -> (UdpSocket, UdpSocket) {
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    a.connect(b.local_addr().unwrap()).await.unwrap();
    b.connect(a.local_addr().unwrap()).await.unwrap();
    (a, b)
}

fn assert_clean(r: &ChannelReport) {
    assert_eq!(r.status, ChannelStatus::Completed, "{r:#?}");
    for d in [r.outbound.as_ref().unwrap(), r.inbound.as_ref().unwrap()] {
        assert_eq!(d.lost_packets, Some(0), "{r:#?}");
        assert!(d.sent_packets.unwrap() > 0);
        assert!(d.goodput_bps.unwrap() > 0.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_second_of_data_and_of_video_over_loopback_both_ways_without_loss() {
    let (a, b) = socket_pair().await;
    let data = ChannelConfig::new(Profile::data(), Duration::from_secs(1));
    let started = Instant::now();
    // One side on its own task: `run`'s future is Send.
    let side_b = tokio::spawn(async move { run(&b, &data).await });
    let ra = run(&a, &data).await;
    let rb = side_b.await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    for r in [&ra, &rb] {
        assert_clean(r);
        assert!(r.outbound.as_ref().unwrap().rtt_ms.is_some());
    }
    eprintln!("{}", serde_json::to_string_pretty(&ra).unwrap());

    let video = ChannelConfig::new(
        Profile::Video {
            bitrate_bps: 2_500_000,
            fps: 30,
            playout: Duration::from_millis(150),
        },
        Duration::from_secs(1),
    );
    let (a, b) = socket_pair().await;
    let (ra, rb) = tokio::join!(run(&a, &video), run(&b, &video));
    for r in [&ra, &rb] {
        assert_clean(r);
        let out = r.outbound.as_ref().unwrap();
        assert_eq!(out.frames_sent, Some(30), "{r:#?}");
        assert!(out.jitter_ms.is_some());
    }
    eprintln!("{}", serde_json::to_string_pretty(&ra).unwrap());
}

#[tokio::test]
async fn a_socket_nobody_answers_is_skipped_in_two_seconds() {
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    a.connect(silent.local_addr().unwrap()).await.unwrap();
    let started = Instant::now();
    let r = run(
        &a,
        &ChannelConfig::new(Profile::data(), Duration::from_secs(5)),
    )
    .await;
    assert!(matches!(r.status, ChannelStatus::Skipped { .. }), "{r:#?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(3),
        "{took:?}"
    );
}
