//! Batched UDP receive and send with `recvmmsg`/`sendmmsg`: one system call moves up to
//! `BATCH` datagrams each way, which is most of the cost of a UDP tracker.
//!
//! This is the only `unsafe` in ferrotracker: the two calls need raw `mmsghdr` arrays that
//! point into buffers owned by `Batch`. The buffers are allocated once per worker and never
//! move (boxed slices), so the pointers stay valid for the lifetime of the `Batch`.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams per system call.
pub const BATCH: usize = 64;
/// Largest datagram we read; the largest valid request (a 74-hash scrape) is 1496 bytes, and a
/// larger datagram is read truncated and refused by the parser.
pub const RECV_SIZE: usize = 2048;

/// Receive buffers, reply buffers and the headers pointing into them.
pub struct Batch {
    recv_bufs: Box<[[u8; RECV_SIZE]]>,
    addrs: Box<[libc::sockaddr_storage]>,
    iovecs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    send_iov: Box<[libc::iovec]>,
    send_hdrs: Box<[libc::mmsghdr]>,
    send_addrs: Box<[libc::sockaddr_storage]>,
}

// SAFETY: the raw pointers inside point only into this struct's own boxes, which move with it;
// nothing else holds them.
unsafe impl Send for Batch {}

impl Default for Batch {
    fn default() -> Self {
        Self::new()
    }
}

impl Batch {
    pub fn new() -> Self {
        // SAFETY: all-zero is a valid value for these plain C structs.
        let zero_addr: libc::sockaddr_storage = unsafe { zeroed() };
        // SAFETY: as above; its null pointers are set before any syscall reads them.
        let zero_hdr: libc::mmsghdr = unsafe { zeroed() };
        let zero_iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        let mut b = Batch {
            recv_bufs: vec![[0u8; RECV_SIZE]; BATCH].into_boxed_slice(),
            addrs: vec![zero_addr; BATCH].into_boxed_slice(),
            iovecs: vec![zero_iov; BATCH].into_boxed_slice(),
            hdrs: vec![zero_hdr; BATCH].into_boxed_slice(),
            send_iov: vec![zero_iov; BATCH].into_boxed_slice(),
            send_hdrs: vec![zero_hdr; BATCH].into_boxed_slice(),
            send_addrs: vec![zero_addr; BATCH].into_boxed_slice(),
        };
        for i in 0..BATCH {
            // Touch every page now: fixed buffers belong to the idle footprint, not to the
            // memory that grows with the peers stored.
            b.recv_bufs[i].fill(1);
            b.iovecs[i] = libc::iovec {
                iov_base: b.recv_bufs[i].as_mut_ptr().cast(),
                iov_len: RECV_SIZE,
            };
        }
        b
    }

    /// One reply buffer per batch slot, touched like the receive buffers.
    pub fn reply_buffers() -> Vec<Vec<u8>> {
        (0..BATCH)
            .map(|_| {
                let mut v = vec![1u8; RECV_SIZE];
                v.clear();
                v
            })
            .collect()
    }

    /// Receives up to `BATCH` datagrams without blocking; returns how many (0 when none are
    /// waiting). Read them with `datagram(i)`.
    #[inline]
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for i in 0..BATCH {
            let h = &mut self.hdrs[i];
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut self.iovecs[i];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            h.msg_len = 0;
        }
        // SAFETY: every header points at live buffers owned by self, sized as declared.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(0);
            }
            return Err(e);
        }
        Ok(n as usize)
    }

    /// Whether datagram `i` of the last `recv` was longer than `RECV_SIZE` (and so cut).
    #[inline]
    pub fn truncated(&self, i: usize) -> bool {
        self.hdrs.get(i).is_some_and(|h| {
            h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 || h.msg_len as usize > RECV_SIZE
        })
    }

    /// The bytes of datagram `i` of the last `recv` (cut at `RECV_SIZE`).
    #[inline]
    pub fn payload(&self, i: usize) -> &[u8] {
        let len = self
            .hdrs
            .get(i)
            .map_or(0, |h| (h.msg_len as usize).min(RECV_SIZE));
        self.recv_bufs.get(i).map_or(&[], |b| &b[..len])
    }

    /// Datagram `i` of the last `recv`: its bytes and source, or `None` for an address family
    /// we don't serve.
    #[inline]
    pub fn datagram(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let h = self.hdrs.get(i)?;
        let len = (h.msg_len as usize).min(RECV_SIZE);
        let addr = from_storage(&self.addrs[i])?;
        Some((&self.recv_bufs[i][..len], addr))
    }

    /// Sends every non-empty `replies[i]` of slots `0..n` to the source of the same slot. Replies that
    /// the kernel can't take right now (full socket buffer) are dropped, as UDP allows.
    /// Returns (sent, dropped).
    #[inline]
    pub fn send(&mut self, fd: RawFd, replies: &[Vec<u8>], n: usize) -> (usize, usize) {
        let mut count = 0;
        for (i, reply) in replies.iter().enumerate().take(n.min(BATCH)) {
            if reply.is_empty() {
                continue;
            }
            self.send_addrs[count] = self.addrs[i];
            self.send_iov[count] = libc::iovec {
                iov_base: reply.as_ptr() as *mut libc::c_void,
                iov_len: reply.len(),
            };
            let h = &mut self.send_hdrs[count];
            h.msg_hdr.msg_name =
                (&mut self.send_addrs[count] as *mut libc::sockaddr_storage).cast();
            h.msg_hdr.msg_namelen = self.hdrs[i].msg_hdr.msg_namelen;
            h.msg_hdr.msg_iov = &mut self.send_iov[count];
            h.msg_hdr.msg_iovlen = 1;
            h.msg_hdr.msg_control = std::ptr::null_mut();
            h.msg_hdr.msg_controllen = 0;
            h.msg_hdr.msg_flags = 0;
            count += 1;
        }
        let (mut sent, mut dropped) = (0, 0);
        while sent < count {
            // SAFETY: headers [sent..count) point at live buffers owned by self.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    self.send_hdrs[sent..].as_mut_ptr(),
                    (count - sent) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r <= 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // Buffer full or a per-destination error: drop the first reply and go on.
                sent += 1;
                dropped += 1;
                continue;
            }
            sent += r as usize;
        }
        (count - dropped, dropped)
    }
}

fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: ss_family says this storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: ss_family says this storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
