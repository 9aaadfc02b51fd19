//! Opening the UDP sockets: SO_REUSEPORT groups, big buffers, packet info
//! on wildcard addresses, and conversions between `SocketAddr` and the
//! kernel's sockaddr structures.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// What happened when asking for socket buffers.
#[derive(Debug, Clone, Copy)]
pub struct BufferSizes {
    pub recv: usize,
    pub send: usize,
}

/// Opens one socket of a SO_REUSEPORT group on `addr` (IPv6 sockets are
/// v6-only, so IPv4 clients never see IPv4-mapped addresses).
pub fn open_reuseport(addr: SocketAddr, buffer: usize) -> io::Result<(UdpSocket, BufferSizes)> {
    let s = udp_for(addr)?;
    s.set_reuse_port(true)?;
    let sizes = set_buffers(&s, buffer);
    if addr.ip().is_unspecified() {
        enable_pktinfo(&s, addr.is_ipv6())?;
    }
    // Workers wake at least this often to notice shutdown.
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    s.bind(&addr.into())?;
    Ok((s.into(), sizes))
}

/// Checks that `addr` is free for us: a socket without SO_REUSEPORT cannot
/// bind where another process holds a SO_REUSEPORT group, so this catches a
/// second server on the same port, which SO_REUSEPORT alone would let in.
pub fn check_free(addr: SocketAddr) -> io::Result<()> {
    udp_for(addr)?.bind(&addr.into())
}

/// An unbound UDP socket of `addr`'s family; IPv6 ones are v6-only.
fn udp_for(addr: SocketAddr) -> io::Result<Socket> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    Ok(s)
}

fn set_buffers(s: &Socket, want: usize) -> BufferSizes {
    let fd = s.as_raw_fd();
    // SO_*BUFFORCE passes the sysctl caps when we have CAP_NET_ADMIN.
    let force = |opt: libc::c_int| unsafe {
        let v: libc::c_int = want.min(i32::MAX as usize / 2) as libc::c_int;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            &v as *const _ as *const libc::c_void,
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    };
    if !force(libc::SO_RCVBUFFORCE) {
        let _ = s.set_recv_buffer_size(want);
    }
    if !force(libc::SO_SNDBUFFORCE) {
        let _ = s.set_send_buffer_size(want);
    }
    // Linux reports twice the requested value (it counts bookkeeping).
    BufferSizes {
        recv: s.recv_buffer_size().unwrap_or(0) / 2,
        send: s.send_buffer_size().unwrap_or(0) / 2,
    }
}

fn enable_pktinfo(s: &Socket, v6: bool) -> io::Result<()> {
    let on: libc::c_int = 1;
    let (level, opt) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
    } else {
        (libc::IPPROTO_IP, libc::IP_PKTINFO)
    };
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            opt,
            &on as *const _ as *const libc::c_void,
            mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads a kernel socket address.
///
/// # Safety
/// `ss` must hold an address the kernel wrote (family set accordingly).
pub fn from_sockaddr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let sin = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))),
                u16::from_be(sin.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)),
                u16::from_be(sin6.sin6_port),
            ))
        }
        _ => None,
    }
}

/// Writes `addr` into `ss`, returning the length to pass to the kernel.
pub fn to_sockaddr(addr: SocketAddr, ss: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in.
            let sin = unsafe { &mut *(ss as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from(*a.ip()).to_be();
            sin.sin_zero = [0; 8];
            mem::size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(ss as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = 0;
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Makes the kernel hand every datagram from one source IP (IPv6: one /64)
/// to the same socket of the group, so each worker's rate limiter sees all
/// of a source's traffic however many ports it sends from. A classic BPF
/// program on the SO_REUSEPORT group returns the socket index.
pub fn steer_by_source(s: &UdpSocket, sockets: usize, v6: bool) -> io::Result<()> {
    // Classic BPF opcodes (linux/filter.h).
    const LD_W_ABS: u16 = 0x20;
    const TAX: u16 = 0x07;
    const XOR_X: u16 = 0xac;
    const MUL_K: u16 = 0x24;
    const RSH_K: u16 = 0x74;
    const MOD_K: u16 = 0x94;
    const RET_A: u16 = 0x16;
    const SKF_NET_OFF: u32 = (-0x0010_0000i32) as u32;
    let op = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let mut prog = Vec::new();
    if v6 {
        // A = first word of the source /64 ^ its second word.
        prog.push(op(LD_W_ABS, SKF_NET_OFF.wrapping_add(8)));
        prog.push(op(TAX, 0));
        prog.push(op(LD_W_ABS, SKF_NET_OFF.wrapping_add(12)));
        prog.push(op(XOR_X, 0));
    } else {
        // A = IPv4 source address.
        prog.push(op(LD_W_ABS, SKF_NET_OFF.wrapping_add(12)));
    }
    // Mix the bits, then reduce to a socket index.
    prog.push(op(MUL_K, 0x9E37_79B1));
    prog.push(op(RSH_K, 16));
    prog.push(op(MOD_K, sockets as u32));
    prog.push(op(RET_A, 0));
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: fprog points at `prog`, alive for the call; the kernel copies it.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            51, /* SO_ATTACH_REUSEPORT_CBPF */
            &fprog as *const _ as *const libc::c_void,
            mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
