//! A BEP 15 client built on `ferrotracker_proto::udp`.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ferrotracker_proto::udp::{self as pudp, AnnounceRequest, Response};
use ferrotracker_proto::{Event, InfoHash, PeerId};

use super::peer_id;

/// A decoded UDP announce reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpAnnounce {
    pub interval: u32,
    pub leechers: u32,
    pub seeders: u32,
    /// Raw compact peers (6 bytes each for IPv4 requesters, 18 for IPv6).
    pub raw_peers: Vec<u8>,
}

/// A BEP 15 client socket talking to one tracker address.
pub struct Udp {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    next_tid: u32,
    pub connection_id: Option<u64>,
}

impl Udp {
    /// Bound to the loopback address of the server's family.
    pub fn new(server: SocketAddr) -> Udp {
        let local: IpAddr = match server {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        };
        Udp::bind(local, server)
    }

    pub fn bind(local: IpAddr, server: SocketAddr) -> Udp {
        let sock = UdpSocket::bind(SocketAddr::new(local, 0))
            .unwrap_or_else(|e| panic!("bind udp {local}: {e}"));
        sock.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        static SEED: AtomicU32 = AtomicU32::new(0x1000);
        Udp {
            sock,
            server,
            next_tid: SEED.fetch_add(0x10000, Ordering::Relaxed),
            connection_id: None,
        }
    }

    pub fn tid(&mut self) -> u32 {
        self.next_tid = self.next_tid.wrapping_add(1);
        self.next_tid
    }

    /// Sends `pkt` and returns the first reply carrying `tid`, retrying (UDP may drop) up to
    /// three times. Replies with other transaction ids (late duplicates) are skipped.
    pub fn request(&self, pkt: &[u8], tid: u32) -> Vec<u8> {
        self.try_request(pkt, tid)
            .unwrap_or_else(|| panic!("no UDP reply from {} for tid {tid:#x}", self.server))
    }

    pub fn try_request(&self, pkt: &[u8], tid: u32) -> Option<Vec<u8>> {
        for _ in 0..3 {
            self.sock.send_to(pkt, self.server).expect("send_to");
            let end = Instant::now() + Duration::from_secs(2);
            while let Some(reply) = self.recv_until(end) {
                if reply.len() >= 8 && reply[4..8] == tid.to_be_bytes() {
                    return Some(reply);
                }
            }
        }
        None
    }

    /// Receives one datagram from the server before `end`.
    pub fn recv_until(&self, end: Instant) -> Option<Vec<u8>> {
        let mut buf = [0u8; 65536];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock.set_read_timeout(Some(left)).expect("timeout");
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) if from == self.server => return Some(buf[..n].to_vec()),
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => panic!("recv_from: {e}"),
            }
        }
    }

    pub fn send_raw(&self, pkt: &[u8]) {
        self.sock.send_to(pkt, self.server).expect("send_to");
    }

    /// Connects and remembers the connection id.
    pub fn connect(&mut self) -> u64 {
        let tid = self.tid();
        let mut pkt = Vec::new();
        pudp::encode_connect(&mut pkt, tid);
        let reply = self.request(&pkt, tid);
        assert_eq!(reply.len(), 16, "connect reply length: {reply:?}");
        match pudp::parse_response(&reply) {
            Ok(Response::Connect {
                transaction_id,
                connection_id,
            }) => {
                assert_eq!(transaction_id, tid);
                self.connection_id = Some(connection_id);
                connection_id
            }
            other => panic!("not a connect reply: {other:?} {reply:?}"),
        }
    }

    fn conn_id(&mut self) -> u64 {
        match self.connection_id {
            Some(c) => c,
            None => self.connect(),
        }
    }

    pub fn announce_request(
        &mut self,
        h: &[u8; 20],
        port: u16,
        left: u64,
        event: Event,
        num_want: i32,
    ) -> AnnounceRequest {
        AnnounceRequest {
            connection_id: self.conn_id(),
            transaction_id: self.tid(),
            info_hash: InfoHash(*h),
            peer_id: PeerId(peer_id(port)),
            downloaded: 0,
            left,
            uploaded: 0,
            event,
            ip: 0,
            key: 0x1234,
            num_want,
            port,
        }
    }

    /// Sends an announce and returns the raw reply.
    pub fn announce_raw(&mut self, req: &AnnounceRequest) -> Vec<u8> {
        let mut pkt = Vec::new();
        pudp::encode_announce(&mut pkt, req);
        assert_eq!(pkt.len(), pudp::ANNOUNCE_MIN_LEN);
        self.request(&pkt, req.transaction_id)
    }

    pub fn announce(
        &mut self,
        h: &[u8; 20],
        port: u16,
        left: u64,
        event: Event,
        num_want: i32,
    ) -> UdpAnnounce {
        let req = self.announce_request(h, port, left, event, num_want);
        let reply = self.announce_raw(&req);
        parse_udp_announce(&reply, req.transaction_id)
    }

    pub fn scrape_raw(&mut self, hashes: &[[u8; 20]]) -> (u32, Vec<u8>) {
        let cid = self.conn_id();
        let tid = self.tid();
        let hs: Vec<InfoHash> = hashes.iter().map(|h| InfoHash(*h)).collect();
        let mut pkt = Vec::new();
        pudp::encode_scrape(&mut pkt, cid, tid, &hs);
        (tid, self.request(&pkt, tid))
    }

    /// (seeders, completed, leechers) per hash.
    pub fn scrape(&mut self, hashes: &[[u8; 20]]) -> Vec<(u32, u32, u32)> {
        let (tid, reply) = self.scrape_raw(hashes);
        match pudp::parse_response(&reply) {
            Ok(Response::Scrape {
                transaction_id,
                entries,
            }) => {
                assert_eq!(transaction_id, tid);
                pudp::scrape_entries(entries).collect()
            }
            other => panic!("not a scrape reply: {other:?} {reply:?}"),
        }
    }
}

pub fn parse_udp_announce(reply: &[u8], tid: u32) -> UdpAnnounce {
    match pudp::parse_response(reply) {
        Ok(Response::Announce {
            transaction_id,
            interval,
            leechers,
            seeders,
            peers,
        }) => {
            assert_eq!(transaction_id, tid);
            UdpAnnounce {
                interval,
                leechers,
                seeders,
                raw_peers: peers.to_vec(),
            }
        }
        other => panic!("not an announce reply: {other:?} {reply:?}"),
    }
}

/// The exact error packet for a wrong connection id, cut to `request_len` bytes if shorter.
pub fn mismatch_packet(tid: u32, request_len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&3u32.to_be_bytes());
    v.extend_from_slice(&tid.to_be_bytes());
    v.extend_from_slice(pudp::CONNECTION_ID_MISMATCH);
    v.truncate(request_len);
    v
}

/// A UDP port free on `ip` now, for a tracker that must know it before it starts (live-sync
/// peers name each other's ports). It is taken from below the kernel's ephemeral range, so that
/// no socket bound to port 0 (by this test or a concurrent one) can be handed it between this
/// check and the tracker's bind.
pub fn free_udp_port(ip: IpAddr) -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (from, to) = (10_000u16, low.max(10_001));
    // Different tests and processes start from different places in the range.
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
        ^ NEXT.fetch_add(7919, Ordering::Relaxed);
    let span = u32::from(to - from);
    (0..span)
        .map(|i| from + ((seed.wrapping_add(i)) % span) as u16)
        .find(|&port| UdpSocket::bind((ip, port)).is_ok())
        .expect("a free UDP port below the ephemeral range")
}
