//! One Binding request from each of many source addresses (127.0.0.0/8),
//! to show that the server's memory does not grow with its clients.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::stun::{binding_request, Message, BINDING_SUCCESS};

use super::Progress;
use crate::error::ProbeError;

/// Sources are 127.1.0.1, 127.1.0.2, ... (the kernel answers for all of
/// 127.0.0.0/8 on `lo`).
const FIRST_SOURCE: u32 = 0x7F01_0001;
/// Sockets open at once.
const CHUNK: usize = 512;

/// Sends from `n` distinct source addresses; returns (answered, requested).
pub fn run(
    target: SocketAddr,
    n: u64,
    timeout: Duration,
    progress: bool,
) -> Result<(u64, u64), ProbeError> {
    if !target.ip().is_loopback() || !target.is_ipv4() {
        return Err(ProbeError::Usage(format!(
            "--distinct-sources sends from addresses in 127.0.0.0/8, so the server must be on IPv4 loopback (got {target})"
        )));
    }
    let mut answered = 0u64;
    let mut shown = Progress::new(progress);
    let mut buf = [0u8; 256];
    let mut done = 0u64;
    while done < n {
        let count = (n - done).min(CHUNK as u64) as usize;
        let mut socks = Vec::with_capacity(count);
        for i in 0..count {
            let ip = Ipv4Addr::from(FIRST_SOURCE + (done as u32) + i as u32);
            let s = UdpSocket::bind(SocketAddr::new(IpAddr::V4(ip), 0)).map_err(|e| {
                ProbeError::CannotRun(format!("cannot bind a source socket on {ip}: {e}"))
            })?;
            s.set_nonblocking(true)
                .map_err(|e| ProbeError::CannotRun(e.to_string()))?;
            let local = s
                .local_addr()
                .map_err(|e| ProbeError::CannotRun(e.to_string()))?;
            socks.push((s, local, false));
        }
        // Up to three tries per source, as a client would retransmit.
        for attempt in 0..3 {
            for (i, (s, _, ok)) in socks.iter().enumerate() {
                if !*ok {
                    let tid = tid_for(done + i as u64, attempt);
                    if let Ok(len) = binding_request(&mut buf, &tid, 0, None, false) {
                        let _ = s.send_to(&buf[..len], target);
                    }
                }
            }
            let until = Instant::now() + timeout.min(Duration::from_millis(500));
            while Instant::now() < until && socks.iter().any(|(_, _, ok)| !ok) {
                let mut progressed = false;
                for (s, local, ok) in socks.iter_mut() {
                    if *ok {
                        continue;
                    }
                    while let Ok((len, _)) = s.recv_from(&mut buf) {
                        let Ok(m) = Message::parse(&buf[..len], false) else {
                            continue;
                        };
                        if m.msg_type() == BINDING_SUCCESS && m.xor_mapped_address() == Some(*local)
                        {
                            *ok = true;
                            progressed = true;
                            break;
                        }
                    }
                }
                if !progressed {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            if socks.iter().all(|(_, _, ok)| *ok) {
                break;
            }
        }
        answered += socks.iter().filter(|(_, _, ok)| *ok).count() as u64;
        done += count as u64;
        shown.show(&format!(
            "distinct sources  {done}/{n}  answered {answered}"
        ));
    }
    shown.clear();
    Ok((answered, n))
}

fn tid_for(i: u64, attempt: u8) -> [u8; 12] {
    let mut t = [0u8; 12];
    t[0] = 0xD5;
    t[1] = attempt;
    t[4..12].copy_from_slice(&i.to_be_bytes());
    t
}
