//! Helpers for the stats and full-scrape black-box tests, beside the shared harness in
//! `common` (which starts the binary): HTTP GET with Content-Length, chunked or streamed
//! bodies, and a fast BEP 15 filler.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use ferrotracker_proto::udp::{self, AnnounceRequest, Response};
use ferrotracker_proto::{Event, InfoHash, PeerId};

use crate::common;

pub use ferrotracker_proto::testutil::percent_encode;

pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A running tracker on 127.0.0.1: the shared harness's [`common::Tracker`] (stopped by PID
/// when dropped), with its one HTTP and one UDP address.
pub struct Tracker {
    pub inner: common::Tracker,
    pub http: SocketAddr,
    pub udp: SocketAddr,
}

impl Tracker {
    /// `-i 127.0.0.1 -p 0 -P 0` plus `extra` flags, plus `-f` with `config` if non-empty.
    pub fn start(extra: &[&str], config: &str) -> Tracker {
        let args = [common::V4, extra].concat();
        let inner = common::Tracker::start(&args, Some(config).filter(|c| !c.is_empty()));
        Tracker {
            http: inner.http4(),
            udp: inner.udp4(),
            inner,
        }
    }

    pub fn pid(&self) -> u32 {
        self.inner.pid()
    }

    /// The process's resident memory in KiB (`VmRSS` of /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn connect(addr: SocketAddr, local: Option<IpAddr>) -> TcpStream {
    let s = match local {
        None => TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap(),
        Some(ip) => {
            let sock =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            sock.bind(&SocketAddr::new(ip, 0).into()).unwrap();
            sock.connect_timeout(&addr.into(), IO_TIMEOUT).unwrap();
            sock.into()
        }
    };
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// One GET on a fresh connection (`Connection: close`), body de-chunked if chunked.
pub fn get(addr: SocketAddr, target: &str, headers: &str, local: Option<IpAddr>) -> Reply {
    let mut s = connect(addr, local);
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    parse_reply(&raw)
}

pub fn parse_reply(raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("complete head")
        + 4;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut r = Reply {
        status,
        head,
        body: Vec::new(),
    };
    let rest = &raw[end..];
    r.body = if r
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)
    } else if let Some(n) = r.header("content-length") {
        let n: usize = n.parse().unwrap();
        rest[..n].to_vec()
    } else {
        // Neither: the body is whatever came before the server closed (HTTP/1.0 streaming).
        assert!(
            r.header("connection").is_some_and(|v| v == "close"),
            "{}",
            r.head
        );
        rest.to_vec()
    };
    r
}

/// Decodes a complete chunked body; panics on bad framing or truncation.
pub fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap(), 16).unwrap();
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        assert_eq!(&b[eol + 2 + size..eol + 4 + size], b"\r\n");
        b = &b[eol + 4 + size..];
        if size == 0 {
            assert!(b.is_empty(), "bytes after the last chunk");
            return out;
        }
    }
}

pub fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// The `i`th test hash: spread over every shard.
pub fn hash(i: u32) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
    h[16..].copy_from_slice(&i.to_be_bytes());
    h[4] = 0x5a;
    h
}

/// One HTTP announce of `hash(i)` from port `port`; returns the status.
pub fn announce(addr: SocketAddr, i: u32, port: u16, left: u64, event: &str) -> u16 {
    let t = format!(
        "/announce?info_hash={}&peer_id=-FT0001-{port:012}&port={port}&left={left}{event}",
        percent_encode(&hash(i))
    );
    get(addr, &t, "", None).status
}

/// Announces torrents `0..n` over UDP, one leecher each (port 6881), in windows so that the
/// socket buffers never overflow. Returns how many announces were answered.
pub fn fill_udp(server: SocketAddr, n: u32) -> u32 {
    fill_udp_with(server, n, hash)
}

/// [`fill_udp`] with the info_hashes `hash_of(0..n)`.
pub fn fill_udp_with(server: SocketAddr, n: u32, hash_of: impl Fn(u32) -> [u8; 20]) -> u32 {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(4 << 20);
    let mut pkt = Vec::new();
    udp::encode_connect(&mut pkt, 1);
    sock.send_to(&pkt, server).unwrap();
    let mut buf = [0u8; 2048];
    let (len, _) = sock.recv_from(&mut buf).unwrap();
    let connection_id = match udp::parse_response(&buf[..len]).unwrap() {
        Response::Connect { connection_id, .. } => connection_id,
        other => panic!("connect reply: {other:?}"),
    };
    const WINDOW: u32 = 128;
    let mut answered = 0;
    let mut next = 0;
    while next < n {
        let end = (next + WINDOW).min(n);
        for i in next..end {
            pkt.clear();
            udp::encode_announce(
                &mut pkt,
                &AnnounceRequest {
                    connection_id,
                    transaction_id: i,
                    info_hash: InfoHash(hash_of(i)),
                    peer_id: PeerId([b'x'; 20]),
                    downloaded: 0,
                    left: 100,
                    uploaded: 0,
                    event: Event::None,
                    ip: 0,
                    key: 0,
                    num_want: 0,
                    port: 6881,
                },
            );
            sock.send_to(&pkt, server).unwrap();
        }
        for _ in next..end {
            match sock.recv_from(&mut buf) {
                Ok(_) => answered += 1,
                Err(_) => break,
            }
        }
        next = end;
    }
    answered
}
