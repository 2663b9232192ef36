//! The HTTP and UDP handlers driven in memory on a clock the test advances: announce, scrape,
//! expiry, connection ids, stats and counters, with no socket and no sleep. What needs a real
//! socket (framing over TCP, the server's periodic sweep, address families of real sockets)
//! stays in the black-box tests of crates/server/tests.

use std::net::SocketAddr;

use ferrotracker_core::counters::RENEW_BUCKETS;
use ferrotracker_core::fullscrape::{dechunk, Progress};
use ferrotracker_core::nets::Nets;
use ferrotracker_core::tracker::MISSING_INFO_HASH;
use ferrotracker_core::{After, Counters, Settings, Tracker, Worker};
use ferrotracker_proto::bencode::{decode, Value};
use ferrotracker_proto::http::{parse_request, Parsed};
use ferrotracker_proto::udp::{self, AnnounceRequest, Response};
use ferrotracker_proto::{Event, InfoHash, PeerId};

/// A start time on a peer tick (27 s with the default 45-minute timeout) and a connection-id
/// window (60 s), so that expiry and id lifetimes fall on exact seconds.
const T0: u32 = 1_700_000_000 / 2700 * 2700;

/// One tracker, one worker whose counters the tracker reads, and the clock.
struct Harness {
    t: Tracker,
    w: Worker,
    now: u32,
}

/// An HTTP reply split into status, head and body.
struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
    after: After,
}

/// The fields of an announce reply.
#[derive(Debug)]
struct Ann {
    complete: i64,
    incomplete: i64,
    downloaded: Option<i64>,
    interval: i64,
    min_interval: i64,
    /// Raw compact lists, `None` when the key is absent.
    peers: Option<Vec<u8>>,
    peers6: Option<Vec<u8>>,
}

impl Ann {
    /// Every compact peer, both families, sorted.
    fn addrs(&self) -> Vec<SocketAddr> {
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
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(f: impl FnOnce(&mut Settings)) -> Self {
        let mut s = Settings {
            started: T0,
            ..Settings::default()
        };
        f(&mut s);
        let t = Tracker::new(s, [7; 16]);
        let w = t.worker(1);
        Harness { t, w, now: T0 }
    }

    fn advance(&mut self, secs: u32) {
        self.now += secs;
    }

    fn sweep(&self) -> (u64, u64) {
        let s = self.t.store.sweep_all(self.now);
        (s.peers, s.torrents)
    }

    fn counters(&self) -> Counters {
        self.t.total_counters()
    }

    /// `GET target` from `client` over HTTP/1.1.
    fn get(&mut self, client: &str, target: &str) -> Reply {
        let raw = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
        let header = self.t.settings.client_ip.header;
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
    fn announce(&mut self, client: &str, h: &InfoHash, port: u16, left: u64, extra: &str) -> Ann {
        let r = self.get(client, &announce_target(h, port, left, extra));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        parse_announce(&r.body)
    }

    /// An HTTP scrape that must succeed: (hash, complete, downloaded, incomplete) in reply order.
    fn scrape(&mut self, hashes: &[InfoHash]) -> Vec<(InfoHash, i64, i64, i64)> {
        let r = self.get("10.9.9.9", &scrape_target(hashes));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        parse_scrape(&r.body)
    }

    /// The reply to one datagram (empty: none).
    fn udp(&mut self, client: SocketAddr, packet: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.t
            .handle_udp(&mut self.w, packet, client, self.now, &mut out);
        out
    }

    fn connect(&mut self, client: SocketAddr) -> u64 {
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

    fn udp_announce(
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

    fn udp_scrape(
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

fn hash(n: u8) -> InfoHash {
    InfoHash([n; 20])
}

fn pct(b: &[u8]) -> String {
    b.iter().map(|b| format!("%{b:02x}")).collect()
}

fn announce_target(h: &InfoHash, port: u16, left: u64, extra: &str) -> String {
    format!(
        "/announce?info_hash={}&peer_id=-FT0001-000000000000&port={port}&left={left}{extra}",
        pct(&h.0)
    )
}

fn scrape_target(hashes: &[InfoHash]) -> String {
    let q: Vec<String> = hashes
        .iter()
        .map(|h| format!("info_hash={}", pct(&h.0)))
        .collect();
    format!("/scrape?{}", q.join("&"))
}

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn udp_announce_packet(
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

fn int(v: &Value<'_>, key: &str) -> i64 {
    v.get(key.as_bytes())
        .and_then(Value::as_int)
        .unwrap_or_else(|| panic!("no integer {key} in {v:?}"))
}

fn parse_announce(body: &[u8]) -> Ann {
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

fn parse_scrape(body: &[u8]) -> Vec<(InfoHash, i64, i64, i64)> {
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

fn failure(body: &[u8]) -> String {
    let v = decode(body).unwrap();
    let r = v.get(b"failure reason").and_then(Value::as_bytes).unwrap();
    String::from_utf8(r.to_vec()).unwrap()
}

/// The peers of a UDP announce reply, after checking its header.
fn udp_peers(out: &[u8]) -> (u32, u32, u32, Vec<u8>) {
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

// ---------------------------------------------------------------- announce

#[test]
fn announce_stores_the_peer_and_lists_it_with_counts() {
    // A 5-second interval has no room to jitter: the reply is exact.
    let mut h = Harness::with(|s| s.interval = 5);
    let x = hash(1);
    let r = h.get(
        "10.0.0.1",
        &announce_target(&x, 0x1ae1, 100, "&event=started"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.after, After::KeepOpen);
    assert!(r
        .head
        .starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"));
    // As opentracker, the announcing peer is in its own list.
    let mut want =
        b"d8:completei0e10:downloadedi0e10:incompletei1e8:intervali5e12:min intervali2e5:peers6:"
            .to_vec();
    want.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1, b'e']);
    assert_eq!(r.body, want);

    let b = h.announce("10.0.0.2", &x, 7002, 0, "&event=started");
    assert_eq!((b.complete, b.incomplete, b.downloaded), (1, 1, Some(0)));
    assert_eq!(b.addrs(), [sa("10.0.0.1:6881"), sa("10.0.0.2:7002")]);
    assert!(b.peers6.is_none(), "no IPv6 peer, no peers6 key");

    // Another torrent is not mixed in.
    let o = h.announce("10.0.0.3", &hash(2), 7003, 5, "");
    assert_eq!((o.complete, o.incomplete), (0, 1));
    assert_eq!(o.addrs(), [sa("10.0.0.3:7003")]);

    // Same address and port, another peer_id: the same peer, now seeding.
    let target = announce_target(&x, 0x1ae1, 0, "").replace("-FT0001-", "-XX9999-");
    let a = parse_announce(&h.get("10.0.0.1", &target).body);
    assert_eq!((a.complete, a.incomplete), (2, 0));
    assert_eq!(a.addrs().len(), 2);
    assert_eq!(h.t.store.totals().peers4, 3);
    assert_eq!(h.counters().http_announces, 4);
}

#[test]
fn completed_counts_once_per_peer_and_only_with_left_zero() {
    let mut h = Harness::new();
    let x = hash(3);
    let a = h.announce("10.0.0.1", &x, 1, 50, "&event=completed");
    assert_eq!((a.complete, a.incomplete, a.downloaded), (0, 1, Some(0)));
    let a = h.announce("10.0.0.1", &x, 1, 0, "&event=completed");
    assert_eq!((a.complete, a.incomplete, a.downloaded), (1, 0, Some(1)));
    let a = h.announce("10.0.0.1", &x, 1, 0, "&event=completed");
    assert_eq!(a.downloaded, Some(1), "the same peer completing again");
    let a = h.announce("10.0.0.2", &x, 1, 0, "&event=completed");
    assert_eq!((a.complete, a.downloaded), (2, Some(2)));
    assert_eq!(h.scrape(&[x]), [(x, 2, 2, 0)]);
    assert_eq!(h.t.store.totals().downloaded, 2);
    // `/stats?mode=completed` counts downloads, as opentracker: not the repeated completion.
    assert_eq!(h.t.total_counters().completed, 2);
}

#[test]
fn stopped_removes_the_peer_and_answers_an_empty_list_of_its_family() {
    let mut h = Harness::with(|s| s.interval = 5);
    let x = hash(4);
    h.announce("10.0.0.1", &x, 1, 0, "");
    h.announce("10.0.0.2", &x, 2, 9, "");
    h.announce("2001:db8::3", &x, 3, 9, "");
    let r = h.get("10.0.0.2", &announce_target(&x, 2, 9, "&event=stopped"));
    assert_eq!(
        r.body,
        b"d8:completei1e10:incompletei1e8:intervali5e12:min intervali2e5:peers0:e"
    );
    let r = h.get("2001:db8::3", &announce_target(&x, 3, 9, "&event=stopped"));
    assert_eq!(
        r.body,
        b"d8:completei1e10:incompletei0e8:intervali5e12:min intervali2e6:peers60:e"
    );
    let a = h.announce("10.0.0.1", &x, 1, 0, "");
    assert_eq!(a.addrs(), [sa("10.0.0.1:1")], "the stopped peers are gone");
    assert_eq!(h.scrape(&[x]), [(x, 1, 0, 0)]);

    // Stopping on a torrent the tracker never saw answers zeros and creates nothing.
    let r = h.get(
        "10.0.0.1",
        &announce_target(&hash(5), 1, 0, "&event=stopped"),
    );
    assert_eq!(
        r.body,
        b"d8:completei0e10:incompletei0e8:intervali5e12:min intervali2e5:peers0:e"
    );
    assert_eq!(h.t.store.totals().torrents, 1);
    // Only 10.0.0.1's re-announce renewed a peer: a stop is not a renewal.
    let mut renewed = [0; RENEW_BUCKETS];
    renewed[0] = 1;
    assert_eq!(h.counters().renewed, renewed);
}

#[test]
fn numwant_default_cap_zero_and_negative() {
    let mut h = Harness::with(|s| {
        s.numwant_default = 3;
        s.numwant_max = 5;
    });
    let x = hash(6);
    for port in 1..=10 {
        h.announce("10.0.0.1", &x, port, 1, "&numwant=0");
    }
    let n = |a: &Ann| a.addrs().len();
    assert_eq!(n(&h.announce("10.0.0.1", &x, 1, 1, "")), 3);
    assert_eq!(n(&h.announce("10.0.0.1", &x, 1, 1, "&numwant=-1")), 3);
    assert_eq!(n(&h.announce("10.0.0.1", &x, 1, 1, "&numwant=4")), 4);
    assert_eq!(n(&h.announce("10.0.0.1", &x, 1, 1, "&numwant=100")), 5);
    // Distinct peers, all of the swarm.
    let mut p = h.announce("10.0.0.1", &x, 1, 1, "&numwant=5").addrs();
    p.dedup();
    assert_eq!(p.len(), 5);
    assert!(p.iter().all(|a| (1..=10).contains(&a.port())));
    // numwant=0: no peers key at all, counts still there.
    let r = h.get("10.0.0.1", &announce_target(&x, 1, 1, "&numwant=0"));
    let a = parse_announce(&r.body);
    assert!(a.peers.is_none() && a.peers6.is_none(), "{a:?}");
    assert_eq!(a.incomplete, 10);

    // The histogram counts what was asked for; missing or negative is the default.
    let c = h.counters();
    assert_eq!((c.numwants[0], c.numwants[3]), (11, 2));
    assert_eq!((c.numwants[4], c.numwants[5], c.numwants[100]), (1, 1, 1));
    assert_eq!(c.numwants.iter().sum::<u64>(), 16);
}

#[test]
fn compact_zero_answers_dicts_of_both_families() {
    let mut h = Harness::new();
    let x = hash(7);
    h.announce("10.0.0.1", &x, 7400, 0, "");
    h.announce("2001:db8::1", &x, 7401, 0, "");
    let r = h.get("10.0.0.2", &announce_target(&x, 7402, 3, "&compact=0"));
    let v = decode(&r.body).unwrap();
    let list = v.get(b"peers").and_then(Value::as_list).unwrap();
    let mut got: Vec<(String, i64)> = list
        .iter()
        .map(|p| {
            let ip = p.get(b"ip").and_then(Value::as_bytes).unwrap();
            (String::from_utf8(ip.to_vec()).unwrap(), int(p, "port"))
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("10.0.0.1".to_string(), 7400),
            ("10.0.0.2".to_string(), 7402),
            ("2001:db8::1".to_string(), 7401)
        ]
    );
    assert!(v.get(b"peers6").is_none(), "dicts carry both families");
    // compact=0 with numwant=0: no peers key.
    let r = h.get(
        "10.0.0.2",
        &announce_target(&x, 7402, 3, "&compact=0&numwant=0"),
    );
    let v = decode(&r.body).unwrap();
    assert!(v.get(b"peers").is_none(), "{v:?}");
    assert_eq!(int(&v, "complete"), 2);
}

#[test]
fn http_gives_both_families_and_udp_only_the_clients_own() {
    let mut h = Harness::new();
    let x = hash(8);
    h.announce("10.0.0.1", &x, 1, 0, "");
    h.announce("2001:db8::1", &x, 2, 0, "");
    // A v4-mapped address is an IPv4 peer.
    h.announce("::ffff:10.0.0.3", &x, 3, 0, "");
    let mut want = vec![sa("10.0.0.1:1"), sa("10.0.0.3:3"), sa("[2001:db8::1]:2")];
    for (client, me) in [
        ("10.0.0.9", "10.0.0.9:1"),
        ("2001:db8::9", "[2001:db8::9]:1"),
    ] {
        want.push(sa(me));
        want.sort();
        let a = h.announce(client, &x, 1, 0, "&numwant=2");
        assert_eq!(a.addrs().len(), 2, "numwant spans both families");
        let a = h.announce(client, &x, 1, 0, "");
        assert_eq!(a.addrs(), want, "from {client}");
        assert!(a.peers.is_some() && a.peers6.is_some());
    }

    let c4 = sa("10.0.0.20:6881");
    let id = h.connect(c4);
    let (_, leechers, seeders, peers) = udp_peers(&h.udp_announce(c4, id, x, 0, Event::None, 50));
    assert_eq!((leechers, seeders), (0, 6));
    assert_eq!(peers.len(), 4 * 6, "only the four IPv4 peers");
    assert!(peers.chunks(6).any(|p| p == [10, 0, 0, 20, 0x1a, 0xe1]));

    let c6 = sa("[2001:db8::20]:6882");
    let id = h.connect(c6);
    let (_, _, seeders, peers) = udp_peers(&h.udp_announce(c6, id, x, 0, Event::None, 50));
    assert_eq!(seeders, 7);
    assert_eq!(peers.len(), 3 * 18, "only the three IPv6 peers");
    let mut me = "2001:db8::20"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets()
        .to_vec();
    me.extend_from_slice(&6882u16.to_be_bytes());
    assert!(peers.chunks(18).any(|p| p == me));
}

#[test]
fn interval_jitters_within_ten_percent_and_min_interval_is_half() {
    let mut h = Harness::with(|s| s.interval = 1800);
    let x = hash(9);
    let (mut lo, mut hi) = (i64::MAX, 0);
    for _ in 0..500 {
        let a = h.announce("10.0.0.1", &x, 1, 0, "");
        assert!((1620..1980).contains(&a.interval), "{}", a.interval);
        assert_eq!(a.min_interval, a.interval / 2);
        lo = lo.min(a.interval);
        hi = hi.max(a.interval);
    }
    assert!(lo < 1650 && hi > 1950, "jitter spans the range: {lo}..{hi}");
    let c = sa("10.0.0.1:1");
    let id = h.connect(c);
    for _ in 0..100 {
        let (interval, ..) = udp_peers(&h.udp_announce(c, id, x, 0, Event::None, -1));
        assert!((1620..1980).contains(&interval), "{interval}");
    }
}

#[test]
fn bad_parameters_get_400_with_a_reason() {
    let mut h = Harness::new();
    let ih = pct(&[1; 20]);
    let cases = [
        (
            format!("info_hash={ih}&port=65536"),
            "port must be a decimal number from 0 to 65535",
        ),
        (
            format!("info_hash={ih}&port=x"),
            "port must be a decimal number from 0 to 65535",
        ),
        (
            format!("info_hash={ih}&port=-1"),
            "port must be a decimal number from 0 to 65535",
        ),
        (
            format!("info_hash={}", pct(&[1; 19])),
            "info_hash must be 20 bytes, url-encoded",
        ),
        (
            format!("info_hash={ih}&info_hash={ih}"),
            "info_hash given more than once",
        ),
        (
            format!("info_hash={ih}%2"),
            "malformed %-escape in query string",
        ),
        (
            format!("info_hash={ih}&left=-5"),
            "left must be a non-negative decimal number",
        ),
        (
            format!("info_hash={ih}&numwant=lots"),
            "numwant must be a decimal number",
        ),
        (
            format!("info_hash={ih}&compact=yes"),
            "compact must be a decimal number",
        ),
        (
            format!("info_hash={ih}&peer_id=short"),
            "peer_id must be 20 bytes, url-encoded",
        ),
    ];
    for (q, reason) in &cases {
        let r = h.get("10.0.0.1", &format!("/announce?{q}"));
        assert_eq!((r.status, failure(&r.body).as_str()), (400, *reason), "{q}");
        assert_eq!(r.after, After::KeepOpen);
    }
    // Without an info_hash, opentracker's 200 with a failure reason.
    let r = h.get("10.0.0.1", "/announce?port=1&left=0");
    assert_eq!(
        (r.status, failure(&r.body)),
        (200, MISSING_INFO_HASH.to_string())
    );
    let r = h.get("10.0.0.1", "/scrape?port=1");
    assert_eq!(
        (r.status, failure(&r.body).as_str()),
        (400, "scrape needs at least one info_hash")
    );
    let r = h.get("10.0.0.1", "/nothing-here");
    assert_eq!((r.status, failure(&r.body).as_str()), (404, "not found"));

    assert_eq!(
        h.t.store.totals().torrents,
        0,
        "no bad request stored anything"
    );
    let c = h.counters();
    assert_eq!(c.http_400_param, cases.len() as u64 + 1);
    assert_eq!(c.http_announces, cases.len() as u64 + 1);
    assert_eq!((c.http_scrapes, c.http_404), (1, 1));
}

// ---------------------------------------------------------------- expiry

#[test]
fn a_peer_is_listed_until_its_timeout_then_swept() {
    // A timeout under 100 s ticks in whole seconds.
    let mut h = Harness::with(|s| s.peer_timeout = 90);
    let x = hash(10);
    h.announce("10.0.0.1", &x, 1, 0, "");
    h.advance(50);
    h.announce("10.0.0.2", &x, 2, 0, "");
    h.advance(39); // T0 + peer_timeout - 1
    assert_eq!(h.sweep(), (0, 0));
    assert_eq!(h.scrape(&[x]), [(x, 2, 0, 0)]);
    h.advance(2); // T0 + peer_timeout + 1
    assert_eq!(h.sweep(), (1, 0));
    let a = h.announce("10.0.0.3", &x, 3, 5, "");
    assert_eq!(a.addrs(), [sa("10.0.0.2:2"), sa("10.0.0.3:3")]);
    assert_eq!((a.complete, a.incomplete), (1, 1));
    // Everyone silent: the peers go, then the torrent (no downloads) with them.
    h.advance(90);
    assert_eq!(h.sweep(), (2, 1));
    assert_eq!(h.scrape(&[x]), []);
    assert_eq!(h.t.store.totals(), Default::default());
}

#[test]
fn default_timeout_expires_a_peer_after_45_minutes() {
    let mut h = Harness::new();
    let x = hash(11);
    h.announce("10.0.0.1", &x, 1, 0, "");
    h.advance(45 * 60 - 1);
    assert_eq!(h.sweep(), (0, 0));
    assert_eq!(h.scrape(&[x]), [(x, 1, 0, 0)]);
    h.advance(2);
    assert_eq!(h.sweep(), (1, 1));
    assert_eq!(h.scrape(&[x]), []);
}

#[test]
fn a_reannounce_keeps_a_peer_alive() {
    let mut h = Harness::with(|s| s.peer_timeout = 90);
    let x = hash(12);
    for _ in 0..10 {
        h.announce("10.0.0.1", &x, 1, 0, "");
        h.advance(80);
        assert_eq!(h.sweep(), (0, 0));
    }
    assert_eq!(h.scrape(&[x]), [(x, 1, 0, 0)]);
}

#[test]
fn a_torrent_with_downloads_is_kept_until_the_torrent_timeout() {
    let mut h = Harness::with(|s| {
        s.peer_timeout = 90;
        s.torrent_timeout = 1000;
    });
    let (done, idle) = (hash(13), hash(14));
    h.announce("10.0.0.1", &done, 1, 0, "&event=completed");
    h.announce("10.0.0.1", &idle, 1, 0, "");
    h.advance(91);
    assert_eq!(
        h.sweep(),
        (2, 1),
        "both peers, and the torrent without downloads"
    );
    assert_eq!(h.scrape(&[done, idle]), [(done, 0, 1, 0)]);
    h.advance(1000 - 91 - 1);
    assert_eq!(h.sweep(), (0, 0));
    assert_eq!(h.scrape(&[done]), [(done, 0, 1, 0)]);
    h.advance(1);
    assert_eq!(h.sweep(), (0, 1));
    assert_eq!(h.scrape(&[done]), []);
}

#[test]
fn renew_stats_bucket_reannounces_by_age_in_minutes() {
    let mut h = Harness::new();
    let x = hash(15);
    h.announce("10.0.0.1", &x, 1, 0, "");
    // Ages on the default 27-second tick: 81 s, 621 s, 1350 s; then 27 s twice.
    for age in [81, 621, 1350, 27, 27] {
        h.advance(age);
        h.announce("10.0.0.1", &x, 1, 0, "");
    }
    // A new peer and a stop are not renewals.
    h.announce("10.0.0.2", &x, 2, 0, "");
    h.announce("10.0.0.2", &x, 2, 0, "&event=stopped");
    let mut want = [0u64; RENEW_BUCKETS];
    want[0] = 2;
    want[1] = 1;
    want[10] = 1;
    want[22] = 1;
    assert_eq!(h.counters().renewed, want);
    let r = h.get("127.0.0.1", "/stats?mode=renew");
    assert_eq!(r.status, 200);
    let page: String = want
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{i:02} {n}\n"))
        .collect();
    assert_eq!(String::from_utf8(r.body).unwrap(), page);
}

// ---------------------------------------------------------------- UDP

#[test]
fn connection_ids_live_two_to_three_windows() {
    let mut h = Harness::new();
    let c = sa("10.0.0.1:6881");
    let x = hash(16);
    // Made at the start of a window: valid for 180 s.
    let id = h.connect(c);
    h.advance(179);
    assert_eq!(
        udp_peers(&h.udp_announce(c, id, x, 0, Event::None, -1)).2,
        1
    );
    h.advance(1);
    let mut want = vec![0, 0, 0, 3, 0, 0, 0xab, 0xcd];
    want.extend_from_slice(udp::CONNECTION_ID_MISMATCH);
    assert_eq!(h.udp_announce(c, id, x, 0, Event::None, -1), want);
    // Made at the end of a window: still valid for 120 s (BEP 15's two minutes), not 121.
    h.advance(59);
    let id = h.connect(c);
    h.advance(120);
    assert_eq!(h.udp_scrape(c, id, &[x]).len(), 8 + 12);
    h.advance(1);
    let mut want = vec![0, 0, 0, 3, 0, 0, 0, 0x5c];
    want.extend_from_slice(udp::CONNECTION_ID_MISMATCH);
    assert_eq!(h.udp_scrape(c, id, &[x]), want);
    // Another address can't use it, nor a forged one.
    let id = h.connect(c);
    assert_eq!(h.udp_scrape(sa("10.0.0.2:6881"), id, &[x]), want);
    assert_eq!(h.udp_scrape(c, id ^ 1, &[x]), want);
    assert_eq!(h.udp_scrape(c, id, &[x]).len(), 20);

    let n = h.counters();
    assert_eq!(n.udp_bad_connection_id, 4);
    assert_eq!((n.udp_connects, n.udp_announces, n.udp_scrapes), (3, 1, 2));
    assert_eq!(n.udp_packets, 3 + 2 + 5);
}

#[test]
fn udp_announce_and_scrape_round_trip() {
    let mut h = Harness::with(|s| s.interval = 5);
    let (x, y, unknown) = (hash(17), hash(18), hash(19));
    let a = sa("10.0.0.1:6881");
    let b = sa("10.0.0.2:7000");
    let ida = h.connect(a);
    let idb = h.connect(b);
    let out = h.udp_announce(a, ida, x, 100, Event::Started, -1);
    assert_eq!(
        out,
        [
            0, 0, 0, 1, 0, 0, 0xab, 0xcd, 0, 0, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 10, 0, 0, 1, 0x1a,
            0xe1
        ]
    );
    let out = h.udp_announce(b, idb, x, 0, Event::Completed, -1);
    let (_, leechers, seeders, peers) = udp_peers(&out);
    assert_eq!((leechers, seeders), (1, 1));
    let mut peers: Vec<&[u8]> = peers.chunks(6).collect();
    peers.sort();
    assert_eq!(
        peers,
        [[10, 0, 0, 1, 0x1a, 0xe1], [10, 0, 0, 2, 0x1b, 0x58]]
    );
    h.udp_announce(b, idb, y, 0, Event::None, -1);
    // numwant 0 lists nobody; the peer is still recorded.
    let (_, _, seeders, peers) = udp_peers(&h.udp_announce(a, ida, y, 0, Event::None, 0));
    assert_eq!((seeders, peers.len()), (2, 0));
    // Stopped removes the peer over UDP too.
    let (_, leechers, seeders, peers) =
        udp_peers(&h.udp_announce(a, ida, x, 100, Event::Stopped, -1));
    assert_eq!((leechers, seeders, peers.len()), (0, 1, 0));

    let out = h.udp_scrape(a, ida, &[y, unknown, x]);
    let Ok(Response::Scrape {
        transaction_id: 0x5c,
        entries,
    }) = udp::parse_response(&out)
    else {
        panic!("{out:?}");
    };
    // (seeders, completed, leechers), in request order; zeros for an unknown hash.
    let got: Vec<_> = udp::scrape_entries(entries).collect();
    assert_eq!(got, [(2, 0, 0), (0, 0, 0), (1, 1, 0)]);
    // More than 74 hashes: the first 74 are answered.
    let many: Vec<InfoHash> = (0..80).map(|i| hash(100 + i)).collect();
    assert_eq!(h.udp_scrape(a, ida, &many).len(), 8 + 74 * 12);
    assert_eq!(h.counters().completed, 1);
}

#[test]
fn bad_datagrams_are_dropped_or_answered_never_larger_than_they_are() {
    let mut h = Harness::with(|s| s.max_peers_per_ip = 1);
    let c = sa("10.0.0.1:6881");
    let id = h.connect(c);
    let x = hash(20);
    let header = |action: u32, conn: u64| {
        let mut p = conn.to_be_bytes().to_vec();
        p.extend_from_slice(&action.to_be_bytes());
        p.extend_from_slice(&0x77u32.to_be_bytes());
        p
    };
    let error = |reason: &[u8]| {
        let mut e = vec![0, 0, 0, 3, 0, 0, 0, 0x77];
        e.extend_from_slice(reason);
        e
    };
    // Too short to echo a transaction id, or not BitTorrent: no reply.
    assert!(h.udp(c, &[]).is_empty());
    assert!(h.udp(c, &header(0, udp::PROTOCOL_ID)[..15]).is_empty());
    assert!(h.udp(c, &header(0, 0x1234)).is_empty());
    // Answerable errors, cut to the request's size.
    assert_eq!(h.udp(c, &header(9, id)), error(b"unknown "));
    let mut p = header(1, id);
    p.resize(97, 0);
    assert_eq!(h.udp(c, &p), error(b"announce too short"));
    let mut p = header(2, id);
    p.resize(16 + 30, 0);
    assert_eq!(h.udp(c, &p), error(b"bad scrape length"));
    assert_eq!(h.udp(c, &header(2, id)), error(b"bad scra"));
    assert_eq!(h.counters().udp_bad_packets, 7);

    // The minimal announce and scrape with a wrong id: the whole mismatch text fits.
    let p = udp_announce_packet(id ^ 1, x, 1, 0, Event::None, -1);
    assert!(h.udp(c, &p).len() <= p.len());
    let mut p = Vec::new();
    udp::encode_scrape(&mut p, id ^ 1, 1, &[x]);
    assert!(h.udp(c, &p).len() <= p.len());
    // A refusal by the store's per-address limit is cut to the request too.
    h.udp_announce(c, id, x, 0, Event::None, -1);
    let p = udp_announce_packet(id, x, 2, 0, Event::None, -1);
    let out = h.udp(sa("10.0.0.1:2"), &p);
    assert!(
        matches!(
            udp::parse_response(&out),
            Ok(Response::Error {
                transaction_id: 0xabcd,
                ..
            })
        ),
        "{out:?}"
    );
    assert!(out.len() <= p.len());
    assert_eq!(h.counters().refused_address, 1);
}

// ---------------------------------------------------------------- scrape

#[test]
fn http_scrape_answers_known_hashes_in_request_order_up_to_64() {
    let mut h = Harness::new();
    let (x, y) = (hash(21), hash(22));
    h.announce("10.0.0.1", &x, 1, 0, "&event=completed");
    h.announce("10.0.0.2", &x, 2, 5, "");
    h.announce("10.0.0.1", &y, 1, 5, "");
    let unknown = hash(23);
    assert_eq!(
        h.scrape(&[y, unknown, x, y]),
        [(y, 0, 0, 1), (x, 1, 1, 1), (y, 0, 0, 1)],
        "request order, unknown omitted, duplicates answered twice"
    );
    let r = h.get("10.0.0.1", &scrape_target(&[unknown]));
    assert_eq!(r.body, b"d5:filesdee");

    // 70 known torrents asked at once: the first 64 are answered.
    let many: Vec<InfoHash> = (0..70).map(|i| InfoHash([100 + i; 20])).collect();
    for m in &many {
        h.announce("10.0.0.1", m, 1, 0, "&numwant=0");
    }
    let got = h.scrape(&many);
    assert_eq!(got.len(), 64);
    assert!(got.iter().zip(&many).all(|(g, m)| g.0 == *m));
    // Past the 64th, a malformed hash still refuses the request.
    let r = h.get(
        "10.0.0.1",
        &format!("{}&info_hash=%01", scrape_target(&many)),
    );
    assert_eq!(
        (r.status, failure(&r.body).as_str()),
        (400, "info_hash must be 20 bytes, url-encoded")
    );
}

// ---------------------------------------------------------------- stats

#[test]
fn counters_move_exactly_as_requests_are_answered() {
    let mut h = Harness::with(|s| s.redirect_url = Some("http://example.org/".into()));
    let x = hash(24);
    let mut want = Counters::default();
    assert_eq!(h.counters(), want);
    h.announce("10.0.0.1", &x, 1, 0, "&event=completed");
    want.http_announces += 1;
    want.completed += 1;
    want.numwants[50] += 1;
    assert_eq!(h.counters(), want);
    h.scrape(&[x]);
    want.http_scrapes += 1;
    assert_eq!(h.counters(), want);
    assert_eq!(h.get("10.0.0.1", "/").status, 302);
    want.http_redirects += 1;
    h.get("10.0.0.1", "/favicon.ico");
    want.http_404 += 1;
    h.get("10.0.0.1", "/scrape");
    want.full_scrapes += 1;
    h.get("10.0.0.1", "/announce?port=x");
    want.http_announces += 1;
    want.http_400_param += 1;
    assert_eq!(h.counters(), want);

    let c = sa("10.0.0.1:1");
    let id = h.connect(c);
    h.udp_announce(c, id, x, 0, Event::None, 7);
    h.udp_scrape(c, id, &[x]);
    h.udp(c, &[0; 8]);
    want.udp_packets += 4;
    want.udp_connects += 1;
    want.udp_announces += 1;
    want.udp_scrapes += 1;
    want.udp_bad_packets += 1;
    want.numwants[7] += 1;
    want.renewed[0] += 1;
    assert_eq!(h.counters(), want);

    // A second worker's counts add up; a worker the tracker didn't make is not read.
    let mut w2 = h.t.worker(2);
    let mut out = Vec::new();
    let mut pkt = Vec::new();
    udp::encode_connect(&mut pkt, 1);
    h.t.handle_udp(&mut w2, &pkt, c, h.now, &mut out);
    h.t.handle_udp(&mut Worker::new(3), &pkt, c, h.now, &mut out);
    want.udp_packets += 1;
    want.udp_connects += 1;
    assert_eq!(h.counters(), want);

    // The stats page counts itself, as it is served.
    let r = h.get("127.0.0.1", "/stats?mode=udp4");
    want.http_stats += 1;
    assert!(String::from_utf8(r.body).unwrap().starts_with("5\n3\n"));
    assert_eq!(h.counters(), want);
}

#[test]
fn stats_and_metrics_are_loopback_only_by_default() {
    let mut h = Harness::new();
    let x = hash(25);
    h.announce("10.0.0.1", &x, 1, 0, "");
    h.announce("2001:db8::1", &x, 1, 5, "");
    for path in ["/stats?mode=peer", "/stats", "/metrics"] {
        for client in ["10.0.0.1", "2001:db8::1", "::ffff:10.0.0.1"] {
            let r = h.get(client, path);
            assert_eq!(
                (r.status, failure(&r.body).as_str()),
                (403, "access denied")
            );
        }
    }
    assert_eq!(h.counters().http_403, 9);
    assert_eq!(h.counters().http_stats, 0);
    let page = "2\n1\nopentracker serving 1 torrents\nopentracker";
    for client in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
        let r = h.get(client, "/stats?mode=peer");
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, page.as_bytes()),
            "{client}"
        );
    }
    let r = h.get("::1", "/stats?mode=nosuchmode");
    assert_eq!(r.status, 400);

    let r = h.get("127.0.0.1", "/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.head
            .contains("Content-Type: text/plain; version=0.0.4\r\n"),
        "{}",
        r.head
    );
    let text = String::from_utf8(r.body).unwrap();
    for line in [
        "ferrotracker_requests_total{proto=\"http\",kind=\"announce\"} 2\n",
        "ferrotracker_requests_total{proto=\"http\",kind=\"stats\"} 4\n",
        "ferrotracker_errors_total{proto=\"http\",code=\"403\"} 9\n",
        "ferrotracker_errors_total{proto=\"http\",code=\"400\"} 1\n",
    ] {
        assert!(text.contains(line), "{line:?} not in\n{text}");
    }

    // An empty list opens them to everyone.
    let mut open = Harness::with(|s| s.stats_nets = Nets(Vec::new()));
    assert_eq!(open.get("10.0.0.1", "/stats?mode=peer").status, 200);
    assert_eq!(open.get("2001:db8::1", "/metrics").status, 200);
}

// ---------------------------------------------------------------- full scrape

#[test]
fn full_scrape_streams_every_torrent_in_ascending_order() {
    let mut h = Harness::new();
    // Hashes in several shards, announced out of order.
    let hashes: Vec<InfoHash> = [0xf0u8, 0x01, 0x80, 0x7f, 0x02]
        .iter()
        .map(|&b| {
            let mut a = [b; 20];
            a[19] = 1;
            InfoHash(a)
        })
        .collect();
    for (i, x) in hashes.iter().enumerate() {
        h.announce("10.0.0.1", x, 1, i as u64, "");
    }
    let r = h.get("10.0.0.1", "/scrape");
    assert_eq!(r.after, After::Stream { keep_alive: true });
    assert!(
        r.head.contains("Transfer-Encoding: chunked\r\n"),
        "{}",
        r.head
    );
    assert!(r.body.is_empty());
    let mut s = h.w.stream.take().expect("a stream");
    let mut framed = Vec::new();
    let mut calls = 0;
    while h.t.continue_stream(&mut h.w, &mut s, &mut framed) == Progress::More {
        calls += 1;
        assert!(calls < 10_000, "the stream never ends");
    }
    let body = dechunk(&framed).expect("a whole chunked body");
    let got = parse_scrape(&body);
    let mut want = hashes.clone();
    want.sort();
    let keys: Vec<InfoHash> = got.iter().map(|g| g.0).collect();
    assert_eq!(keys, want);
    // Only the first announced (left=0) is a seeder.
    let seeders: Vec<i64> = got.iter().map(|g| g.1).collect();
    assert_eq!(seeders.iter().sum::<i64>(), 1);
    assert_eq!(got.iter().find(|g| g.0 == hashes[0]).unwrap().1, 1);
    let c = h.counters();
    assert_eq!(
        (c.full_scrapes, c.full_scrape_bytes),
        (1, body.len() as u64)
    );
}
