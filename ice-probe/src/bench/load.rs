//! The closed-loop load: each socket keeps `window` Binding requests in
//! flight, validates every answer and sends the next request on the slot it
//! freed. Batched with sendmmsg/recvmmsg so the generator is cheap per
//! request; bounded by the caller's deadline.

use std::io;
use std::mem;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::stun::{binding_request, Message, BINDING_SUCCESS};
use hdrhistogram::Histogram;

/// Datagrams per recvmmsg/sendmmsg.
const BATCH: usize = 64;
const RECV_BUF: usize = 512;
const REQ_LEN: usize = 20;

/// Counters of one load thread.
#[derive(Debug, Clone)]
pub struct LoadStats {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub invalid: u64,
    pub late: u64,
    /// Round-trip times in nanoseconds.
    pub latency: Histogram<u64>,
}

impl LoadStats {
    pub fn new() -> Self {
        LoadStats {
            sent: 0,
            received: 0,
            lost: 0,
            invalid: 0,
            late: 0,
            latency: Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("static bounds"),
        }
    }

    pub fn merge(&mut self, o: &LoadStats) {
        self.sent += o.sent;
        self.received += o.received;
        self.lost += o.lost;
        self.invalid += o.invalid;
        self.late += o.late;
        let _ = self.latency.add(&o.latency);
    }

    fn reset(&mut self) {
        *self = LoadStats::new();
    }
}

impl Default for LoadStats {
    fn default() -> Self {
        Self::new()
    }
}

struct Slot {
    seq: u64,
    sent_at: Instant,
}

/// One connected socket and its in-flight requests.
struct Flow {
    sock: UdpSocket,
    local: SocketAddr,
    slots: Vec<Slot>,
    /// Slots whose next request is waiting to be sent.
    pending: Vec<u16>,
}

/// Shared phase flags: the driver flips them, threads read them.
pub struct Phase {
    /// Set when the measured window starts: threads reset their counters.
    pub measuring: AtomicBool,
    /// Set when the run is over.
    pub done: AtomicBool,
    /// Responses so far in the measured window (for the progress line).
    pub progress: AtomicU64,
}

/// Opens `n` sockets connected to `target`.
pub fn open_flows(target: SocketAddr, n: usize) -> io::Result<Vec<UdpSocket>> {
    let bind: SocketAddr = if target.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    (0..n)
        .map(|_| {
            let s = UdpSocket::bind(bind)?;
            s.connect(target)?;
            s.set_nonblocking(true)?;
            let s2 = socket2::SockRef::from(&s);
            let _ = s2.set_recv_buffer_size(1 << 20);
            let _ = s2.set_send_buffer_size(1 << 20);
            Ok(s)
        })
        .collect()
}

/// Runs one load thread over `sockets` until `phase.done`. `tag` makes
/// this run's transaction IDs unique.
pub fn run_load(
    sockets: Vec<UdpSocket>,
    window: usize,
    timeout: Duration,
    tag: u16,
    phase: &Phase,
) -> io::Result<LoadStats> {
    let now = Instant::now();
    let mut flows: Vec<Flow> = sockets
        .into_iter()
        .map(|sock| {
            let local = sock.local_addr()?;
            Ok(Flow {
                sock,
                local,
                slots: (0..window)
                    .map(|_| Slot {
                        seq: 0,
                        sent_at: now,
                    })
                    .collect(),
                pending: (0..window as u16).collect(),
            })
        })
        .collect::<io::Result<_>>()?;
    let mut stats = LoadStats::new();
    let mut measuring = false;
    let mut next_seq: u64 = 1;
    let mut last_sweep = Instant::now();
    let mut rx = vec![[0u8; RECV_BUF]; BATCH];
    let mut tx = vec![[0u8; REQ_LEN]; BATCH];
    let mut lens = [0usize; BATCH];
    let mut progress_batch = 0u64;
    // Built once: the idle path polls every socket without allocating.
    let mut pollfds: Vec<libc::pollfd> = flows
        .iter()
        .map(|f| libc::pollfd {
            fd: f.sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();

    while !phase.done.load(Ordering::Relaxed) {
        if !measuring && phase.measuring.load(Ordering::Relaxed) {
            measuring = true;
            stats.reset();
        }
        let mut got_any = false;
        for f in flows.iter_mut() {
            // Send everything pending on this flow.
            while !f.pending.is_empty() {
                let n = f.pending.len().min(BATCH);
                let t = Instant::now();
                for (i, &slot) in f.pending[..n].iter().enumerate() {
                    let seq = next_seq;
                    next_seq += 1;
                    f.slots[slot as usize] = Slot { seq, sent_at: t };
                    let tid = transaction_id(tag, slot, seq);
                    let _ = binding_request(&mut tx[i], &tid, 0, None, false);
                }
                let sent = send_batch(&f.sock, &tx[..n])?;
                stats.sent += sent as u64;
                if sent == 0 {
                    break; // socket buffer full: try again next pass
                }
                f.pending.drain(..sent);
            }
            // Receive what has arrived.
            loop {
                let got = recv_batch(&f.sock, &mut rx, &mut lens)?;
                if got == 0 {
                    break;
                }
                got_any = true;
                let t = Instant::now();
                for (i, &len) in lens[..got].iter().enumerate() {
                    match check_response(&rx[i][..len], tag, f.local) {
                        Some((slot, seq)) if (slot as usize) < f.slots.len() => {
                            let s = &f.slots[slot as usize];
                            if s.seq == seq {
                                let rtt = t.duration_since(s.sent_at).as_nanos() as u64;
                                let _ = stats.latency.record(rtt.max(1_000));
                                stats.received += 1;
                                f.pending.push(slot);
                            } else {
                                stats.late += 1;
                            }
                        }
                        _ => stats.invalid += 1,
                    }
                }
                progress_batch += got as u64;
                if got < BATCH {
                    break;
                }
            }
        }
        if measuring && progress_batch > 0 {
            phase.progress.fetch_add(progress_batch, Ordering::Relaxed);
        }
        progress_batch = 0;
        let t = Instant::now();
        if t.duration_since(last_sweep) > Duration::from_millis(10) {
            last_sweep = t;
            for f in flows.iter_mut() {
                for (i, s) in f.slots.iter_mut().enumerate() {
                    if s.seq != 0 && t.duration_since(s.sent_at) > timeout {
                        // Lost: count it and reuse the slot.
                        s.seq = 0;
                        stats.lost += 1;
                        f.pending.push(i as u16);
                    }
                }
            }
        }
        if !got_any {
            wait_readable(&mut pollfds, Duration::from_millis(5));
        }
    }
    Ok(stats)
}

fn transaction_id(tag: u16, slot: u16, seq: u64) -> [u8; 12] {
    let mut t = [0u8; 12];
    t[0..2].copy_from_slice(&tag.to_be_bytes());
    t[2..4].copy_from_slice(&slot.to_be_bytes());
    t[4..12].copy_from_slice(&seq.to_be_bytes());
    t
}

/// (slot, seq) of a valid answer: a Binding success for this run whose
/// XOR-MAPPED-ADDRESS is the socket's own address.
fn check_response(b: &[u8], tag: u16, local: SocketAddr) -> Option<(u16, u64)> {
    let m = Message::parse(b, false).ok()?;
    if m.msg_type() != BINDING_SUCCESS {
        return None;
    }
    let t = m.transaction_id();
    if t[0..2] != tag.to_be_bytes() {
        return None;
    }
    if m.xor_mapped_address()? != local {
        return None;
    }
    let slot = u16::from_be_bytes([t[2], t[3]]);
    let seq = u64::from_be_bytes(t[4..12].try_into().ok()?);
    Some((slot, seq))
}

fn send_batch(sock: &UdpSocket, msgs: &[[u8; REQ_LEN]]) -> io::Result<usize> {
    let mut iov: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
    let mut hdr: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    for (i, m) in msgs.iter().enumerate() {
        iov[i] = libc::iovec {
            iov_base: m.as_ptr() as *mut libc::c_void,
            iov_len: REQ_LEN,
        };
        hdr[i].msg_hdr.msg_iov = &mut iov[i];
        hdr[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: headers point at `iov` and `msgs`, alive for the call; the
    // socket is connected, so no addresses.
    let r = unsafe {
        libc::sendmmsg(
            sock.as_raw_fd(),
            hdr.as_mut_ptr(),
            msgs.len() as _,
            libc::MSG_DONTWAIT,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
            // An ICMP error from the server's port; keep going, the
            // requests will count as lost.
            _ if e.raw_os_error() == Some(libc::ECONNREFUSED) => Ok(0),
            _ => Err(e),
        };
    }
    Ok(r as usize)
}

fn recv_batch(
    sock: &UdpSocket,
    bufs: &mut [[u8; RECV_BUF]],
    lens: &mut [usize; BATCH],
) -> io::Result<usize> {
    let n = bufs.len().min(BATCH);
    let mut iov: [libc::iovec; BATCH] = unsafe { mem::zeroed() };
    let mut hdr: [libc::mmsghdr; BATCH] = unsafe { mem::zeroed() };
    for i in 0..n {
        iov[i] = libc::iovec {
            iov_base: bufs[i].as_mut_ptr().cast(),
            iov_len: RECV_BUF,
        };
        hdr[i].msg_hdr.msg_iov = &mut iov[i];
        hdr[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: headers point at `iov` and `bufs`, alive for the call.
    let r = unsafe {
        libc::recvmmsg(
            sock.as_raw_fd(),
            hdr.as_mut_ptr(),
            n as _,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
            _ if e.raw_os_error() == Some(libc::ECONNREFUSED) => Ok(0),
            _ => Err(e),
        };
    }
    let r = r as usize;
    for (l, h) in lens.iter_mut().zip(&hdr[..r]) {
        *l = h.msg_len as usize;
    }
    Ok(r)
}

/// Blocks until one of the sockets is readable or `timeout` passes.
fn wait_readable(fds: &mut [libc::pollfd], timeout: Duration) {
    for f in fds.iter_mut() {
        f.revents = 0;
    }
    // SAFETY: `fds` is a valid array of pollfd for the call.
    unsafe {
        libc::poll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            timeout.as_millis() as libc::c_int,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::stun::{attr, MessageWriter};

    #[test]
    fn checks_answers() {
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let tid = transaction_id(7, 3, 99);
        let mut b = [0u8; 64];
        let mut w = MessageWriter::with_transaction_id(&mut b, BINDING_SUCCESS, &tid).unwrap();
        w.xor_address(attr::XOR_MAPPED_ADDRESS, local).unwrap();
        let n = w.finish();
        assert_eq!(check_response(&b[..n], 7, local), Some((3, 99)));
        assert_eq!(check_response(&b[..n], 8, local), None, "other run");
        let other: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        assert_eq!(check_response(&b[..n], 7, other), None, "wrong mapping");
        assert_eq!(check_response(&b[..n - 1], 7, local), None, "truncated");
    }
}
