//! The socket shell: one thread per socket of a SO_REUSEPORT group moves
//! batches of datagrams (recvmmsg/sendmmsg) through the responder. All
//! buffers are allocated once; nothing on this path allocates.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::metrics::{LocalCounts, WorkerMetrics};
use crate::rate_limit::RateLimiter;
use crate::responder::{BindingResponder, DropReason, Outcome, MAX_RESPONSE};
use crate::socket::{from_sockaddr, to_sockaddr};

/// Datagrams per recvmmsg/sendmmsg call.
pub const BATCH: usize = 32;
/// Receive buffer per datagram; anything larger is dropped as oversized.
const RECV_BUF: usize = 2048;
const CMSG_BUF: usize = 64;

#[repr(C, align(8))]
#[derive(Clone, Copy)]
struct CmsgBuf([u8; CMSG_BUF]);

/// Everything one worker needs.
pub struct Worker {
    pub socket: UdpSocket,
    /// The address the socket is bound to (real port).
    pub bound: SocketAddr,
    pub responder: BindingResponder,
    pub limiter: Option<RateLimiter>,
    /// Sockets answers may leave from when CHANGE-REQUEST asks for another
    /// address (RFC 5780), by local address.
    pub origins: Arc<Vec<(SocketAddr, UdpSocket)>>,
    pub metrics: Arc<WorkerMetrics>,
    pub stop: Arc<AtomicBool>,
    pub epoch: Instant,
}

struct Buffers {
    rx: Vec<[u8; RECV_BUF]>,
    rx_addr: Vec<libc::sockaddr_storage>,
    rx_cmsg: Vec<CmsgBuf>,
    rx_iov: Vec<libc::iovec>,
    rx_hdr: Vec<libc::mmsghdr>,
    tx: Vec<[u8; MAX_RESPONSE]>,
    tx_addr: Vec<libc::sockaddr_storage>,
    tx_cmsg: Vec<CmsgBuf>,
    tx_iov: Vec<libc::iovec>,
    tx_hdr: Vec<libc::mmsghdr>,
}

impl Buffers {
    fn new() -> Box<Self> {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let zeroed_ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
        let zeroed_hdr: libc::mmsghdr = unsafe { mem::zeroed() };
        let iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        let mut b = Box::new(Buffers {
            rx: vec![[0; RECV_BUF]; BATCH],
            rx_addr: vec![zeroed_ss; BATCH],
            rx_cmsg: vec![CmsgBuf([0; CMSG_BUF]); BATCH],
            rx_iov: vec![iov; BATCH],
            rx_hdr: vec![zeroed_hdr; BATCH],
            tx: vec![[0; MAX_RESPONSE]; BATCH],
            tx_addr: vec![zeroed_ss; BATCH],
            tx_cmsg: vec![CmsgBuf([0; CMSG_BUF]); BATCH],
            tx_iov: vec![iov; BATCH],
            tx_hdr: vec![zeroed_hdr; BATCH],
        });
        // The Vecs never reallocate, so these pointers stay valid.
        for i in 0..BATCH {
            b.rx_iov[i] = libc::iovec {
                iov_base: b.rx[i].as_mut_ptr().cast(),
                iov_len: RECV_BUF,
            };
            b.tx_iov[i] = libc::iovec {
                iov_base: b.tx[i].as_mut_ptr().cast(),
                iov_len: 0,
            };
        }
        b
    }

    fn arm_receive(&mut self) {
        for i in 0..BATCH {
            let h = &mut self.rx_hdr[i].msg_hdr;
            h.msg_name = (&mut self.rx_addr[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.rx_iov[i];
            h.msg_iovlen = 1;
            h.msg_control = self.rx_cmsg[i].0.as_mut_ptr().cast();
            h.msg_controllen = CMSG_BUF as _;
            h.msg_flags = 0;
            self.rx_hdr[i].msg_len = 0;
        }
    }
}

impl Worker {
    /// Serves until `stop` is set. Errors only when the socket itself fails.
    pub fn run(mut self) -> io::Result<()> {
        let fd = self.socket.as_raw_fd();
        let wildcard = self.bound.ip().is_unspecified();
        let mut b = Buffers::new();
        let mut counts = LocalCounts::default();
        while !self.stop.load(Ordering::Relaxed) {
            b.arm_receive();
            // SAFETY: every header points into `b`, which outlives the call.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    b.rx_hdr.as_mut_ptr(),
                    BATCH as _,
                    libc::MSG_WAITFORONE,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => continue,
                    // ICMP errors from earlier sends surface here on Linux.
                    _ if e.raw_os_error() == Some(libc::ECONNREFUSED) => continue,
                    _ => return Err(e),
                }
            }
            let n = n as usize;
            let now_ms = self.epoch.elapsed().as_millis() as u32;
            counts.batches += 1;
            let mut out = 0;
            for i in 0..n {
                counts.datagrams += 1;
                let hdr = &b.rx_hdr[i];
                if hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                    counts.drop(DropReason::Oversized);
                    continue;
                }
                let Some(src) = from_sockaddr(&b.rx_addr[i]) else {
                    counts.drop(DropReason::BadSource);
                    continue;
                };
                let (local, ifindex) = if wildcard {
                    match packet_destination(&hdr.msg_hdr) {
                        Some((ip, ifx)) => (SocketAddr::new(ip, self.bound.port()), ifx),
                        None => (self.bound, 0),
                    }
                } else {
                    (self.bound, 0)
                };
                if let Some(l) = &mut self.limiter {
                    if !l.allow(src.ip(), now_ms) {
                        counts.drop(DropReason::RateLimited);
                        continue;
                    }
                }
                let len = hdr.msg_len as usize;
                let outcome = self
                    .responder
                    .respond(&b.rx[i][..len], src, local, &mut b.tx[out]);
                match outcome {
                    Outcome::Drop(r) => counts.drop(r),
                    Outcome::Reply {
                        len,
                        class,
                        to,
                        from,
                    } => {
                        counts.reply(class);
                        if from != local {
                            self.send_from_other(from, to, &b.tx[out][..len], &mut counts);
                            continue;
                        }
                        let namelen = to_sockaddr(to, &mut b.tx_addr[out]);
                        b.tx_iov[out].iov_len = len;
                        let h = &mut b.tx_hdr[out].msg_hdr;
                        h.msg_name = (&mut b.tx_addr[out] as *mut libc::sockaddr_storage).cast();
                        h.msg_namelen = namelen;
                        h.msg_iov = &mut b.tx_iov[out];
                        h.msg_iovlen = 1;
                        h.msg_flags = 0;
                        if wildcard && !local.ip().is_unspecified() {
                            let clen = write_source_cmsg(&mut b.tx_cmsg[out], local.ip(), ifindex);
                            h.msg_control = b.tx_cmsg[out].0.as_mut_ptr().cast();
                            h.msg_controllen = clen as _;
                        } else {
                            h.msg_control = std::ptr::null_mut();
                            h.msg_controllen = 0;
                        }
                        out += 1;
                    }
                }
            }
            let mut sent = 0;
            while sent < out {
                // SAFETY: headers 0..out were filled above and point into `b`.
                let r = unsafe {
                    libc::sendmmsg(fd, b.tx_hdr[sent..].as_mut_ptr(), (out - sent) as _, 0)
                };
                if r < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    // This datagram cannot go (unreachable, EPERM from a
                    // firewall...): skip it, keep serving the rest.
                    counts.send_errors += 1;
                    sent += 1;
                } else {
                    sent += r as usize;
                }
            }
            self.metrics.publish(&mut counts);
        }
        self.metrics.publish(&mut counts);
        Ok(())
    }

    fn send_from_other(&self, from: SocketAddr, to: SocketAddr, data: &[u8], c: &mut LocalCounts) {
        match self.origins.iter().find(|(a, _)| *a == from) {
            Some((_, s)) => {
                if s.send_to(data, to).is_err() {
                    c.send_errors += 1;
                }
            }
            None => c.send_errors += 1,
        }
    }
}

/// The destination address of a received datagram (IP_PKTINFO /
/// IPV6_PKTINFO) and the interface it came in on.
fn packet_destination(h: &libc::msghdr) -> Option<(IpAddr, u32)> {
    // SAFETY: the kernel filled msg_control/msg_controllen; the CMSG
    // macros walk within them.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            let (level, ty) = ((*c).cmsg_level, (*c).cmsg_type);
            if level == libc::IPPROTO_IP && ty == libc::IP_PKTINFO {
                let info = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::in_pktinfo);
                let ip = Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr));
                return Some((IpAddr::V4(ip), info.ipi_ifindex as u32));
            }
            if level == libc::IPPROTO_IPV6 && ty == libc::IPV6_PKTINFO {
                let info = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::in6_pktinfo);
                let ip = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                return Some((IpAddr::V6(ip), info.ipi6_ifindex));
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    None
}

/// Writes the control message that makes a reply leave from `ip`.
fn write_source_cmsg(buf: &mut CmsgBuf, ip: IpAddr, ifindex: u32) -> usize {
    buf.0.fill(0);
    // SAFETY: a msghdr pointing at our aligned buffer of CMSG_BUF bytes,
    // which is larger than CMSG_SPACE of either pktinfo struct.
    unsafe {
        let mut h: libc::msghdr = mem::zeroed();
        h.msg_control = buf.0.as_mut_ptr().cast();
        h.msg_controllen = CMSG_BUF as _;
        let c = libc::CMSG_FIRSTHDR(&h);
        match ip {
            IpAddr::V4(v4) => {
                let size = mem::size_of::<libc::in_pktinfo>() as u32;
                (*c).cmsg_level = libc::IPPROTO_IP;
                (*c).cmsg_type = libc::IP_PKTINFO;
                (*c).cmsg_len = libc::CMSG_LEN(size) as _;
                let info = libc::in_pktinfo {
                    ipi_ifindex: 0,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(v4).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut libc::in_pktinfo, info);
                libc::CMSG_SPACE(size) as usize
            }
            IpAddr::V6(v6) => {
                let size = mem::size_of::<libc::in6_pktinfo>() as u32;
                (*c).cmsg_level = libc::IPPROTO_IPV6;
                (*c).cmsg_type = libc::IPV6_PKTINFO;
                (*c).cmsg_len = libc::CMSG_LEN(size) as _;
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: v6.octets(),
                    },
                    ipi6_ifindex: ifindex,
                };
                std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut libc::in6_pktinfo, info);
                libc::CMSG_SPACE(size) as usize
            }
        }
    }
}
