//! Whole requests through the tracker: UDP datagrams into `Tracker::handle_udp` and HTTP
//! receive buffers, framed with `http::parse_request` as the server frames them, into
//! `Tracker::handle_http`, on one tracker kept across iterations so that swarms, expiry and
//! stats pages see the state earlier inputs built.
//!
//! An input is a sequence of requests, each:
//!
//! ```text
//! flags u8 | address (4 or 16 bytes, none for loopback) | port u16 | [clock step u8] | len u16 | payload
//! flags: bit 0     0 = UDP datagram, 1 = HTTP receive buffer
//!        bits 1-2  0 = IPv4, 1 = IPv6, 2 = IPv4 as v4-mapped IPv6 (dual-stack socket), 3 = loopback
//!        bit 3     UDP: replace the connection id with a valid one for this address and time
//!        bits 4-5  advance the clock before the request: 0 no, 1 by n s, 2 by n min, 3 by n h
//!        bit 6     loopback family: 0 = 127.0.0.1, 1 = ::1
//!        bit 7     sweep every shard (expiry) before the request
//! ```
//!
//! The tracker blacklists one info_hash, stores at most 16 peers per torrent and family and
//! 2048 torrents, believes `X-Forwarded-For` from 10.0.0.0/8 and honours `ip=`, so refusals
//! and client-address rules are reached too.
//!
//! A truncated request takes what is left. The clock only moves forward, as the server's does,
//! and the store is swept whenever a sweep interval has passed, as the server's sweeper does
//! (only the shards announces went to: the others are empty).
//!
//! Invariants checked on every reply:
//! - UDP: a reply is never longer than the datagram unless it is a connect, announce or scrape
//!   success (no amplification towards a forged source); it parses as a BEP 15 reply (or is
//!   opentracker's 8-byte refusal of an access-listed announce) with the
//!   request's transaction id; success replies match the request (connect 16 bytes, announce
//!   peers of the client's family within the per-family cap, one scrape entry per hash); no
//!   reply only for datagrams without a transaction id.
//! - HTTP: every reply starts with `HTTP/1.`, has a head that parses, and either carries a
//!   Content-Length equal to its body or is a chunked stream that ends and de-chunks (and
//!   gunzips when gzip); `Connection: close` is sent exactly when the server will close; error
//!   bodies and announce/scrape bodies are valid bencode.
#![no_main]

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};

use ferrotracker_core::access::{Access, HashList, Mode};
use ferrotracker_core::fullscrape::{self, Progress};
use ferrotracker_core::nets::{Net, Nets};
use ferrotracker_core::tracker::{UDP_MAX_PEERS_V4, UDP_MAX_PEERS_V6};
use ferrotracker_core::config::Config;
use ferrotracker_core::{After, Tracker, Worker};
use ferrotracker_proto::forwarded::ProxyHeader;
use ferrotracker_proto::http::{self, Parsed, Request, Route};
use ferrotracker_proto::udp::{self, Response};
use ferrotracker_proto::{bencode, query, InfoHash};
use ferrotracker_swarm::SHARDS;
use libfuzzer_sys::fuzz_target;

/// The tracker clock at start (Unix seconds, as the server's clock).
const START: u32 = 1_700_000_000;
/// The tracker refuses new torrents beyond this many (so the "tracker full" replies are
/// reached), and the store is thrown away once it is full (checked every `CHECK_EVERY`
/// inputs), so memory and full-scrape time stay bounded over millions of runs.
const MAX_TORRENTS: u64 = 2_048;
const CHECK_EVERY: u64 = 128;
/// ... or when the clock has run this far, so it never nears `u32::MAX`.
const MAX_CLOCK: u32 = START + (1 << 28);
/// A streamed reply must end within this many chunks.
const MAX_CHUNKS: usize = 10_000;
/// Announces for these hashes are refused (the second hash of the seeds).
const BLACKLIST: &[u8] = b"ffeeddccbbaa99887766554433221100ffeeddcc\n";

struct State {
    tracker: Tracker,
    worker: Worker,
    now: u32,
    /// Sweep interval index of the last sweep.
    swept: u32,
    /// Shards that an announce may have put a torrent in since the store was made: sweeping
    /// these is sweeping the whole store, at a fraction of the cost of `sweep_all`'s walk over
    /// every shard (which would dominate each run).
    touched: Vec<usize>,
    is_touched: Vec<bool>,
    inputs: u64,
    udp_out: Vec<u8>,
    http_out: Vec<u8>,
}

impl State {
    fn new() -> Self {
        let blocked = HashList::parse(BLACKLIST).list;
        let mut cfg = Config::default();
        cfg.store.max_torrents = MAX_TORRENTS;
        cfg.store.max_peers_per_torrent = 16;
        cfg.tracker.full_scrape_interval = 0;
        cfg.access.proxies = Nets(vec![Net::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), 8)]);
        cfg.access.allow_ip_param = true;
        cfg.access.proxy_header = ProxyHeader::XForwardedFor;
        let access = Arc::new(Access::new(Mode::Black, blocked));
        State {
            tracker: Tracker::new(&cfg, access, START, *b"ferrotracker fuz"),
            worker: Worker::new(0x5eed),
            now: START,
            swept: 0,
            touched: Vec::new(),
            is_touched: vec![false; SHARDS],
            inputs: 0,
            udp_out: Vec::new(),
            http_out: Vec::new(),
        }
    }
}

static STATE: OnceLock<Mutex<State>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let mut guard = STATE
        .get_or_init(|| Mutex::new(State::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let st = &mut *guard;
    st.inputs += 1;
    if st.now > MAX_CLOCK
        || (st.inputs % CHECK_EVERY == 0 && st.tracker.store.totals().torrents >= MAX_TORRENTS)
    {
        *st = State::new();
    }

    let mut input = Cursor(data);
    while let Some(flags) = input.byte() {
        let ip = match (flags >> 1) & 3 {
            0 => IpAddr::V4(Ipv4Addr::from(input.array::<4>())),
            1 => IpAddr::V6(Ipv6Addr::from(input.array::<16>())),
            2 => IpAddr::V6(Ipv4Addr::from(input.array::<4>()).to_ipv6_mapped()),
            _ if flags & 0x40 == 0 => IpAddr::V4(Ipv4Addr::LOCALHOST),
            _ => IpAddr::V6(Ipv6Addr::LOCALHOST),
        };
        let client = SocketAddr::new(ip, u16::from_be_bytes(input.array::<2>()));
        let step = match (flags >> 4) & 3 {
            0 => 0,
            1 => u32::from(input.byte().unwrap_or(0)),
            2 => u32::from(input.byte().unwrap_or(0)) * 60,
            _ => u32::from(input.byte().unwrap_or(0)) * 3600,
        };
        let len = usize::from(u16::from_be_bytes(input.array::<2>()));
        let payload = input.take(len);

        advance(st, step, flags & 0x80 != 0);
        if flags & 1 == 0 {
            udp_request(st, payload, client, flags & 0x08 != 0);
        } else {
            http_buffer(st, payload, ip);
        }
    }
});

/// Moves the clock forward and sweeps as the server's sweeper would.
fn advance(st: &mut State, step: u32, force_sweep: bool) {
    st.now = st.now.saturating_add(step);
    let interval = st.tracker.store.sweep_interval_secs().max(1);
    let index = st.now / interval;
    if force_sweep || index != st.swept {
        st.swept = index;
        for &shard in &st.touched {
            st.tracker.store.sweep_shard(shard, st.now);
        }
    }
}

/// Notes the shard of an info_hash that is about to be announced.
fn touch(st: &mut State, h: &InfoHash) {
    let top = u32::from_be_bytes([h.0[0], h.0[1], h.0[2], h.0[3]]);
    let shard = (top >> (32 - SHARDS.trailing_zeros())) as usize;
    if !st.is_touched[shard] {
        st.is_touched[shard] = true;
        st.touched.push(shard);
    }
}

// ------------------------------------------------------------------------------------ UDP

fn udp_request(st: &mut State, payload: &[u8], client: SocketAddr, fix_connection_id: bool) {
    let mut packet = payload.to_vec();
    if fix_connection_id && packet.len() >= 8 {
        let id = connect(st, client);
        packet[..8].copy_from_slice(&id.to_be_bytes());
    }
    if let Ok(udp::Request::Announce(a)) = udp::parse_request(&packet) {
        touch(st, &a.info_hash);
    }
    let mut out = std::mem::take(&mut st.udp_out);
    st.tracker
        .handle_udp(&mut st.worker, &packet, client, st.now, &mut out);
    check_udp(&packet, &out, client);
    st.udp_out = out;
}

/// Sends a connect from `client` now and returns the connection id it got.
fn connect(st: &mut State, client: SocketAddr) -> u64 {
    let mut packet = Vec::new();
    udp::encode_connect(&mut packet, 0x1234_5678);
    let mut out = Vec::new();
    st.tracker
        .handle_udp(&mut st.worker, &packet, client, st.now, &mut out);
    check_udp(&packet, &out, client);
    match udp::parse_response(&out) {
        Ok(Response::Connect { connection_id, .. }) => connection_id,
        other => panic!("connect answered with {other:?}"),
    }
}

fn check_udp(packet: &[u8], reply: &[u8], client: SocketAddr) {
    let req = udp::parse_request(packet);
    if reply.is_empty() {
        // Only datagrams with no transaction id to echo go unanswered.
        match req {
            Err(e) => assert_eq!(e.transaction_id(), None, "{e:?} dropped without a reply"),
            Ok(r) => panic!("no reply to {r:?}"),
        }
        return;
    }
    let tid = u32::from_be_bytes(packet[12..16].try_into().unwrap());
    if reply.len() == 8 && reply[..4] == 1u32.to_be_bytes() {
        // opentracker's refusal of an access-listed hash: an announce reply's first 8 bytes.
        assert!(matches!(req, Ok(udp::Request::Announce(_))), "{req:?}");
        assert_eq!(reply[4..], tid.to_be_bytes());
        return;
    }
    let resp = udp::parse_response(reply)
        .unwrap_or_else(|e| panic!("reply does not parse ({e:?}): {reply:02x?}"));
    let success = match resp {
        Response::Connect { transaction_id, .. } => {
            assert_eq!(transaction_id, tid);
            assert!(matches!(req, Ok(udp::Request::Connect { .. })), "{req:?}");
            assert_eq!(reply.len(), 16);
            true
        }
        Response::Announce {
            transaction_id,
            peers,
            ..
        } => {
            assert_eq!(transaction_id, tid);
            assert!(matches!(req, Ok(udp::Request::Announce(_))), "{req:?}");
            let (record, cap) = match client.ip().to_canonical() {
                IpAddr::V4(_) => (6, UDP_MAX_PEERS_V4),
                IpAddr::V6(_) => (18, UDP_MAX_PEERS_V6),
            };
            assert_eq!(peers.len() % record, 0, "peers of another family");
            assert!(
                peers.len() / record <= cap,
                "{} peers",
                peers.len() / record
            );
            true
        }
        Response::Scrape {
            transaction_id,
            entries,
        } => {
            assert_eq!(transaction_id, tid);
            match req {
                Ok(udp::Request::Scrape(s)) => assert_eq!(entries.len() / 12, s.len()),
                other => panic!("scrape reply to {other:?}"),
            }
            true
        }
        Response::Error { transaction_id, .. } => {
            assert_eq!(transaction_id, tid);
            false
        }
    };
    assert!(
        success || reply.len() <= packet.len(),
        "{}-byte error reply to a {}-byte datagram: amplification",
        reply.len(),
        packet.len()
    );
}

// ----------------------------------------------------------------------------------- HTTP

/// Answers every request framed in `buf`, as the server answers a connection's receive buffer.
fn http_buffer(st: &mut State, buf: &[u8], client: IpAddr) {
    let mut out = std::mem::take(&mut st.http_out);
    let mut rest = buf;
    while !rest.is_empty() {
        out.clear();
        match http::parse_request(rest, st.tracker.client_header()) {
            Ok(Parsed::Incomplete) => break,
            Err(e) => {
                st.tracker.http_framing_error(&mut st.worker, e, &mut out);
                let reply = check_http_reply(&out);
                assert!(reply.close, "a framing error must close the connection");
                assert!(matches!(reply.status, 400 | 500));
                check_failure_body(&reply);
                break;
            }
            Ok(Parsed::Complete(req)) => {
                if let Ok(q) = query::parse_announce(req.query.unwrap_or_default()) {
                    if let Some(h) = q.info_hash {
                        touch(st, &h);
                    }
                }
                let after = st
                    .tracker
                    .handle_http(&mut st.worker, &req, client, st.now, &mut out);
                check_http(st, &req, after, &out);
                let used = req.head_len + req.body_len;
                let closes = matches!(after, After::Close | After::Stream { keep_alive: false });
                if closes || used > rest.len() {
                    break;
                }
                rest = &rest[used..];
            }
        }
    }
    st.http_out = out;
}

struct Reply<'a> {
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
    gzip: bool,
    close: bool,
    body: &'a [u8],
}

/// Parses one reply head with httparse (not with our own code) and checks its framing.
fn check_http_reply(out: &[u8]) -> Reply<'_> {
    assert!(
        out.starts_with(b"HTTP/1."),
        "reply: {:?}",
        String::from_utf8_lossy(out)
    );
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(out) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!(
            "reply head does not parse ({other:?}): {:?}",
            String::from_utf8_lossy(out)
        ),
    };
    let mut reply = Reply {
        status: resp.code.expect("status code"),
        content_length: None,
        chunked: false,
        gzip: false,
        close: false,
        body: &out[head_len..],
    };
    for h in resp.headers.iter() {
        let value = std::str::from_utf8(h.value).expect("header values are ASCII");
        match h.name.to_ascii_lowercase().as_str() {
            "content-length" => {
                assert!(reply.content_length.is_none(), "two Content-Length headers");
                reply.content_length = Some(value.parse().expect("Content-Length is a number"));
            }
            "transfer-encoding" => reply.chunked = value == "chunked",
            "content-encoding" => reply.gzip = value == "gzip",
            "connection" => reply.close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    if reply.chunked {
        assert!(
            reply.content_length.is_none(),
            "chunked with a Content-Length"
        );
    } else if reply.content_length.is_none() && reply.close && reply.body.is_empty() {
        // A stream to an HTTP/1.0 client: the body follows unframed and the close ends it
        // (check_http makes sure only streams do this).
    } else {
        let n = reply
            .content_length
            .expect("a Content-Length on every unstreamed reply");
        assert_eq!(
            n,
            reply.body.len(),
            "Content-Length does not match the body"
        );
    }
    reply
}

fn check_http(st: &mut State, req: &Request<'_>, after: After, out: &[u8]) {
    let reply = check_http_reply(out);
    match after {
        After::KeepOpen => {
            assert!(req.keep_alive && !reply.close && !reply.chunked);
            assert!(reply.content_length.is_some());
        }
        After::Close => assert!(reply.close && !reply.chunked && reply.content_length.is_some()),
        After::Stream { keep_alive } => {
            assert!(reply.body.is_empty(), "a streamed reply's head comes alone");
            // HTTP/1.0 has no chunks: unframed, no length, and the close ends the body.
            assert_eq!(reply.chunked, !req.http10, "chunked exactly for HTTP/1.1");
            assert!(reply.chunked || (reply.close && reply.content_length.is_none()));
            assert_eq!(keep_alive, !reply.close);
            assert!(!keep_alive || req.keep_alive);
            let body = drain_stream(st, reply.gzip, reply.chunked);
            if http::route(req, st.tracker.stats_path().as_bytes()) == Route::FullScrape {
                bencode::decode(&body).expect("full scrape is bencode");
            }
            return;
        }
    }
    assert!(
        st.worker.stream.is_none(),
        "a stream left behind by an unstreamed reply"
    );
    match reply.status {
        200 => {
            let route = http::route(req, st.tracker.stats_path().as_bytes());
            if matches!(route, Route::Announce | Route::Scrape) {
                let v = bencode::decode(reply.body).unwrap_or_else(|e| {
                    panic!(
                        "{route:?} reply is not bencode ({e:?}): {:?}",
                        String::from_utf8_lossy(reply.body)
                    )
                });
                assert!(v.as_dict().is_some(), "{route:?} reply is not a dict");
            }
        }
        302 => assert!(reply.body.is_empty()),
        400 | 403 | 404 | 500 | 503 => check_failure_body(&reply),
        s => panic!("unexpected status {s}"),
    }
}

fn check_failure_body(reply: &Reply<'_>) {
    let v = bencode::decode(reply.body).unwrap_or_else(|e| {
        panic!(
            "error body is not bencode ({e:?}): {:?}",
            String::from_utf8_lossy(reply.body)
        )
    });
    let why = v.get(b"failure reason").and_then(|r| r.as_bytes());
    assert!(
        why.is_some_and(|w| !w.is_empty()),
        "error body without a failure reason"
    );
}

/// Drives the streamed reply the last `handle_http` started to its end, as the server does,
/// and returns its body (de-chunked, gunzipped).
fn drain_stream(st: &mut State, gzip: bool, chunked: bool) -> Vec<u8> {
    let mut s = st
        .worker
        .stream
        .take()
        .expect("After::Stream leaves a stream in the worker");
    assert_eq!(s.is_gzip(), gzip);
    let mut framed = Vec::new();
    let mut chunks = 0;
    while st
        .tracker
        .continue_stream(&mut st.worker, &mut s, &mut framed)
        == Progress::More
    {
        chunks += 1;
        assert!(chunks < MAX_CHUNKS, "a streamed reply that does not end");
    }
    assert_eq!(
        st.tracker
            .continue_stream(&mut st.worker, &mut s, &mut Vec::new()),
        Progress::Done
    );
    let body = if chunked {
        fullscrape::dechunk(&framed).expect("a complete chunked body")
    } else {
        framed
    };
    if !gzip {
        return body;
    }
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut plain)
        .expect("valid gzip");
    plain
}

// ---------------------------------------------------------------------------------- input

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    /// `N` bytes, zero-filled past the end of the input.
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        let n = N.min(self.0.len());
        a[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        a
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}
