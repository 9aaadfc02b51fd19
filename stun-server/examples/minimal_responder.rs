//! A yardstick, not a server: the least work that still answers a Binding
//! request validly (one recvmmsg/sendmmsg batch of 32, XOR-MAPPED-ADDRESS
//! written by hand, no checks, no limits, no metrics). Measuring it beside
//! `stun-server` in one run shows how close the server is to what the
//! kernel allows on the machine at hand (`scripts/bench-compare.sh`).
//!
//!   cargo run --release -p stun-server --example minimal_responder -- 127.0.0.1:34800

use std::mem;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use stun_server::socket::{from_sockaddr, to_sockaddr};

const BATCH: usize = 32;

fn main() {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:34800".into())
        .parse()
        .expect("usage: minimal_responder IP:PORT");
    let sock = UdpSocket::bind(addr).expect("bind");
    let fd = sock.as_raw_fd();
    let mut rx = vec![[0u8; 1500]; BATCH];
    let mut tx = vec![[0u8; 64]; BATCH];
    // SAFETY: all-zero is valid for these C structs.
    let mut rx_addr: Vec<libc::sockaddr_storage> = vec![unsafe { mem::zeroed() }; BATCH];
    let mut tx_addr: Vec<libc::sockaddr_storage> = vec![unsafe { mem::zeroed() }; BATCH];
    let mut rx_iov: Vec<libc::iovec> = rx
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: 1500,
        })
        .collect();
    let mut tx_iov: Vec<libc::iovec> = tx
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: 0,
        })
        .collect();
    let mut rx_hdr: Vec<libc::mmsghdr> = vec![unsafe { mem::zeroed() }; BATCH];
    let mut tx_hdr: Vec<libc::mmsghdr> = vec![unsafe { mem::zeroed() }; BATCH];
    eprintln!("minimal responder on {addr}");
    loop {
        for i in 0..BATCH {
            let h = &mut rx_hdr[i].msg_hdr;
            h.msg_name = (&mut rx_addr[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = mem::size_of::<libc::sockaddr_storage>() as _;
            h.msg_iov = &mut rx_iov[i];
            h.msg_iovlen = 1;
        }
        // SAFETY: headers point into the vectors above, alive for the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                rx_hdr.as_mut_ptr(),
                BATCH as _,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            continue;
        }
        let mut out = 0;
        for i in 0..n as usize {
            let Some(SocketAddr::V4(src)) = from_sockaddr(&rx_addr[i]) else {
                continue;
            };
            if rx_hdr[i].msg_len < 20 {
                continue;
            }
            let t = &mut tx[out];
            t[0..2].copy_from_slice(&0x0101u16.to_be_bytes());
            t[2..4].copy_from_slice(&12u16.to_be_bytes());
            t[4..20].copy_from_slice(&rx[i][4..20]);
            t[20..24].copy_from_slice(&[0x00, 0x20, 0x00, 0x08]);
            t[24] = 0;
            t[25] = 1;
            t[26..28].copy_from_slice(&(src.port() ^ 0x2112).to_be_bytes());
            t[28..32].copy_from_slice(&(u32::from(*src.ip()) ^ 0x2112_A442).to_be_bytes());
            let namelen = to_sockaddr(SocketAddr::V4(src), &mut tx_addr[out]);
            tx_iov[out].iov_len = 32;
            let h = &mut tx_hdr[out].msg_hdr;
            h.msg_name = (&mut tx_addr[out] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = namelen;
            h.msg_iov = &mut tx_iov[out];
            h.msg_iovlen = 1;
            out += 1;
        }
        let mut sent = 0;
        while sent < out {
            // SAFETY: as above.
            let r =
                unsafe { libc::sendmmsg(fd, tx_hdr[sent..].as_mut_ptr(), (out - sent) as _, 0) };
            sent += if r <= 0 { 1 } else { r as usize };
        }
    }
}
