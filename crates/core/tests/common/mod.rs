//! The core handlers' test harness, shared by every test file here: a tracker and one worker
//! driven in memory on a clock the test advances, one builder each for HTTP announce and scrape
//! targets and for UDP announce packets, and decoders of the replies.

// Each test file uses its own part of the harness.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use ferrotracker_core::access::Access;
use ferrotracker_core::config::Config;
use ferrotracker_core::{After, Counters, Tracker, Worker};
use ferrotracker_proto::bencode::{decode, Value};
use ferrotracker_proto::http::{parse_request, Parsed};
use ferrotracker_proto::testutil::percent_encode;
use ferrotracker_proto::udp::{self, AnnounceRequest, Response};
use ferrotracker_proto::{Event, InfoHash, PeerId};

/// A start time on a peer tick (27 s with the default 45-minute timeout) and a connection-id
/// window (60 s), so that expiry and id lifetimes fall on exact seconds.
pub const T0: u32 = 1_700_000_000 / 2700 * 2700;

/// One tracker, one worker whose counters the tracker reads, and the clock.
pub struct Harness {
    pub t: Tracker,
    pub w: Worker,
    pub now: u32,
}

/// An HTTP reply split into status, head and body.
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
    pub after: After,
}

/// The fields of an announce reply.
#[derive(Debug)]
pub struct Ann {
    pub complete: i64,
    pub incomplete: i64,
    pub downloaded: Option<i64>,
    pub interval: i64,
    pub min_interval: i64,
    /// Raw compact lists, `None` when the key is absent.
    pub peers: Option<Vec<u8>>,
    pub peers6: Option<Vec<u8>>,
}

impl Ann {
    /// Every compact peer, both families, sorted.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        let mut v: Vec<SocketAddr> = Vec::new();
        for c in self.peers.as_deref().unwrap_or_default().chunks(6) {
            let ip: [u8; 4] = c[..4].try_into().unwrap();
            v.push((ip, u16::from_be_bytes([c[4], c[5]])).into());
        }
        for c in self.peers6.as_deref().unwrap_or_default().chunks(18) {
            let ip: [u8; 16] = c[..16].try_into().unwrap();
            v.push((ip, u16::from_be_bytes([c[16], c[17]])).into());
        }
        v.sort();
        v
    }
}

impl Harness {
    pub fn new() -> Self {
        Self::with(|_| {})
    }

    /// A tracker on the default configuration as `f` changes it, with no access list.
    pub fn with(f: impl FnOnce(&mut Config)) -> Self {
        Self::with_access(Access::open(), f)
    }

    /// [`Harness::with`] with the access list `access`.
    pub fn with_access(access: Access, f: impl FnOnce(&mut Config)) -> Self {
        let mut cfg = Config::default();
        // Full scrapes as often as a test likes.
        cfg.tracker.full_scrape_interval = 0;
        f(&mut cfg);
        let t = Tracker::new(&cfg, Arc::new(access), T0, [7; 16]);
        let w = t.worker(1);
        Harness { t, w, now: T0 }
    }

    pub fn advance(&mut self, secs: u32) {
        self.now += secs;
    }

    pub fn sweep(&self) -> (u64, u64) {
        let s = self.t.store.sweep_all(self.now);
        (s.peers, s.torrents)
    }

    pub fn counters(&self) -> Counters {
        self.t.total_counters()
    }

    /// `GET target` from `client` over HTTP/1.1.
    pub fn get(&mut self, client: &str, target: &str) -> Reply {
        self.get_with(client, target, "")
    }

    /// [`Harness::get`] with `headers` (whole `Name: value\r\n` lines) after `Host`.
    pub fn get_with(&mut self, client: &str, target: &str, headers: &str) -> Reply {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: t\r\n{headers}\r\n");
        // Framed as the server frames it, keeping the configured client header.
        let header = self.t.client_header();
        let Ok(Parsed::Complete(req)) = parse_request(raw.as_bytes(), header) else {
            panic!("bad test request {raw:?}");
        };
        let mut out = Vec::new();
        let after = self.t.handle_http(
            &mut self.w,
            &req,
            client.parse().unwrap(),
            self.now,
            &mut out,
        );
        let split = out.windows(4).position(|x| x == b"\r\n\r\n").unwrap() + 4;
        let body = out.split_off(split);
        let head = String::from_utf8(out).unwrap();
        let status = head[9..12].parse().unwrap();
        if !matches!(after, After::Stream { .. }) {
            let len = format!("Content-Length: {}\r\n", body.len());
            assert!(
                head.contains(&len),
                "{head:?} for a {}-byte body",
                body.len()
            );
        }
        Reply {
            status,
            head,
            body,
            after,
        }
    }

    /// An announce that must succeed, decoded.
    pub fn announce(
        &mut self,
        client: &str,
        h: &InfoHash,
        port: u16,
        left: u64,
        extra: &str,
    ) -> Ann {
        let r = self.get(client, &announce_target(h, port, left, extra));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        parse_announce(&r.body)
    }

    /// An HTTP scrape that must succeed: (hash, complete, downloaded, incomplete) in reply order.
    pub fn scrape(&mut self, hashes: &[InfoHash]) -> Vec<(InfoHash, i64, i64, i64)> {
        let r = self.get("10.9.9.9", &scrape_target(hashes));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        parse_scrape(&r.body)
    }

    /// The reply to one datagram (empty: none).
    pub fn udp(&mut self, client: SocketAddr, packet: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.t
            .handle_udp(&mut self.w, packet, client, self.now, &mut out);
        out
    }

    pub fn connect(&mut self, client: SocketAddr) -> u64 {
        let mut pkt = Vec::new();
        udp::encode_connect(&mut pkt, 0x1234);
        let out = self.udp(client, &pkt);
        assert_eq!(out.len(), 16);
        match udp::parse_response(&out) {
            Ok(Response::Connect {
                transaction_id: 0x1234,
                connection_id,
            }) => connection_id,
            other => panic!("no connect reply: {other:?}"),
        }
    }

    pub fn udp_announce(
        &mut self,
        client: SocketAddr,
        connection_id: u64,
        h: InfoHash,
        left: u64,
        event: Event,
        num_want: i32,
    ) -> Vec<u8> {
        let pkt = udp_announce_packet(connection_id, h, client.port(), left, event, num_want);
        self.udp(client, &pkt)
    }

    pub fn udp_scrape(
        &mut self,
        client: SocketAddr,
        connection_id: u64,
        hashes: &[InfoHash],
    ) -> Vec<u8> {
        let mut pkt = Vec::new();
        udp::encode_scrape(&mut pkt, connection_id, 0x5c, hashes);
        self.udp(client, &pkt)
    }
}

/// A test info_hash: `n` in every byte.
pub fn hash(n: u8) -> InfoHash {
    InfoHash([n; 20])
}

/// `/announce?info_hash=..&peer_id=..&port=..&left=..` followed by `extra` (e.g.
/// `&event=started`); every announce carries the same peer_id.
pub fn announce_target(h: &InfoHash, port: u16, left: u64, extra: &str) -> String {
    format!(
        "/announce?info_hash={}&peer_id=-FT0001-000000000000&port={port}&left={left}{extra}",
        percent_encode(&h.0)
    )
}

/// `/scrape?info_hash=..&info_hash=..` in the order given.
pub fn scrape_target(hashes: &[InfoHash]) -> String {
    let q: Vec<String> = hashes
        .iter()
        .map(|h| format!("info_hash={}", percent_encode(&h.0)))
        .collect();
    format!("/scrape?{}", q.join("&"))
}

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A BEP 15 announce with transaction id `0xabcd` (what [`udp_peers`] expects back).
pub fn udp_announce_packet(
    connection_id: u64,
    h: InfoHash,
    port: u16,
    left: u64,
    event: Event,
    num_want: i32,
) -> Vec<u8> {
    let mut pkt = Vec::new();
    udp::encode_announce(
        &mut pkt,
        &AnnounceRequest {
            connection_id,
            transaction_id: 0xabcd,
            info_hash: h,
            peer_id: PeerId([1; 20]),
            downloaded: 0,
            left,
            uploaded: 0,
            event,
            ip: 0,
            key: 0,
            num_want,
            port,
        },
    );
    pkt
}

pub fn int(v: &Value<'_>, key: &str) -> i64 {
    v.get(key.as_bytes())
        .and_then(Value::as_int)
        .unwrap_or_else(|| panic!("no integer {key} in {v:?}"))
}

/// An announce reply that must not be a failure, decoded.
pub fn parse_announce(body: &[u8]) -> Ann {
    let v = decode(body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)));
    assert!(v.get(b"failure reason").is_none(), "{v:?}");
    let bytes = |k: &[u8]| v.get(k).map(|p| p.as_bytes().unwrap().to_vec());
    Ann {
        complete: int(&v, "complete"),
        incomplete: int(&v, "incomplete"),
        downloaded: v.get(b"downloaded").and_then(Value::as_int),
        interval: int(&v, "interval"),
        min_interval: int(&v, "min interval"),
        peers: bytes(b"peers"),
        peers6: bytes(b"peers6"),
    }
}

/// A scrape reply's files: (hash, complete, downloaded, incomplete) in reply order.
pub fn parse_scrape(body: &[u8]) -> Vec<(InfoHash, i64, i64, i64)> {
    let v = decode(body).unwrap();
    let files = v.get(b"files").and_then(Value::as_dict).unwrap();
    files
        .iter()
        .map(|(k, e)| {
            (
                InfoHash((*k).try_into().unwrap()),
                int(e, "complete"),
                int(e, "downloaded"),
                int(e, "incomplete"),
            )
        })
        .collect()
}

/// The `failure reason` of a refused request.
pub fn failure(body: &[u8]) -> String {
    let v = decode(body).unwrap();
    let r = v.get(b"failure reason").and_then(Value::as_bytes).unwrap();
    String::from_utf8(r.to_vec()).unwrap()
}

/// The peers of a UDP announce reply, after checking its header.
pub fn udp_peers(out: &[u8]) -> (u32, u32, u32, Vec<u8>) {
    match udp::parse_response(out) {
        Ok(Response::Announce {
            transaction_id: 0xabcd,
            interval,
            leechers,
            seeders,
            peers,
        }) => (interval, leechers, seeders, peers.to_vec()),
        other => panic!("not an announce reply: {other:?}"),
    }
}
