//! Listening sockets: one per worker per configured address, all bound with SO_REUSEPORT so
//! the kernel spreads connections and datagrams over the workers without a shared queue.
//!
//! `[::]` is bound dual-stack (IPV6_V6ONLY off), so one address serves IPv4 and IPv6 as
//! opentracker's default does; if the host has no IPv6 it falls back to `0.0.0.0`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::Context;
use ferrotracker_core::config::{Listen, Proto};
use socket2::{Domain, Protocol, Socket, Type};

/// The sockets of one configured address, one per worker, all bound to the same address
/// (port 0 becomes the port the kernel chose for the first, shared by the others).
pub struct Bound {
    pub proto: Proto,
    pub sockets: Vec<Socket>,
}

/// Binds every configured address `workers` times.
pub fn bind_all(listen: &[Listen], workers: usize) -> anyhow::Result<Vec<Bound>> {
    let mut out = Vec::with_capacity(listen.len());
    for l in listen {
        let first = match bind_one(l.proto, l.addr) {
            Ok(s) => s,
            Err(e) if is_unspecified_v6(l.addr) && no_ipv6(&e) => {
                let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), l.addr.port());
                tracing::warn!(
                    "IPv6 is not available ({e}); binding {v4} instead of {}",
                    l.addr
                );
                bind_one(l.proto, v4)
                    .with_context(|| format!("binding {} {v4}", proto_name(l.proto)))?
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("binding {} {}", proto_name(l.proto), l.addr))
            }
        };
        let addr = first
            .local_addr()?
            .as_socket()
            .context("bound socket has no IP address")?;
        let mut sockets = vec![first];
        for _ in 1..workers {
            sockets.push(
                bind_one(l.proto, addr)
                    .with_context(|| format!("binding {} {addr} again", proto_name(l.proto)))?,
            );
        }
        tracing::info!("listening on {} {addr}", proto_name(l.proto));
        out.push(Bound {
            proto: l.proto,
            sockets,
        });
    }
    Ok(out)
}

pub fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Tls => "tls",
    }
}

fn is_unspecified_v6(a: SocketAddr) -> bool {
    matches!(a.ip(), IpAddr::V6(ip) if ip.is_unspecified())
}

fn no_ipv6(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL) | Some(libc::EPROTONOSUPPORT)
    )
}

fn bind_one(proto: Proto, addr: SocketAddr) -> io::Result<Socket> {
    let domain = Domain::for_address(addr);
    let (ty, p) = match proto {
        Proto::Tcp | Proto::Tls => (Type::STREAM, Protocol::TCP),
        Proto::Udp => (Type::DGRAM, Protocol::UDP),
    };
    let s = Socket::new(domain, ty, Some(p))?;
    if addr.is_ipv6() {
        s.set_only_v6(!is_unspecified_v6(addr))?;
    }
    s.set_reuse_address(true)?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    if proto == Proto::Udp {
        // Room for bursts; the kernel caps this at net.core.rmem_max, which is fine.
        let _ = s.set_recv_buffer_size(8 << 20);
        let _ = s.set_send_buffer_size(8 << 20);
    }
    s.bind(&addr.into())?;
    if proto != Proto::Udp {
        s.set_nodelay(true)?;
        s.listen(4096)?;
    }
    Ok(s)
}
