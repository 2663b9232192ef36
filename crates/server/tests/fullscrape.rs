//! Full scrape over real sockets: plain and gzip bodies decode to the right counts, the feature
//! can be turned off, an HTTP/1.0 client gets it unchunked, a slowly read full scrape of
//! 200,000 torrents does not hold up announces on other connections of the same worker, unread
//! full scrapes of torrents crowded into one shard hold little memory, and the process-wide
//! stream limit and the per-address interval refuse what is beyond them.

mod common;
mod stats_support;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ferrotracker_proto::bencode;
use stats_support::*;

/// (seeders, leechers, downloaded) of `hash(i)` after `small_swarm`.
fn expected(i: u32) -> (i64, i64, i64) {
    (
        i64::from(i & 1 == 0),
        1 + i64::from(i % 3),
        i64::from(i & 1 == 0),
    )
}

/// 30 torrents over HTTP: 1 + i%3 leechers each, and a completed seeder for even i.
fn small_swarm(t: &Tracker) {
    for i in 0..30u32 {
        for l in 0..=(i % 3) {
            assert_eq!(announce(t.http, i, 7000 + l as u16, 5, ""), 200);
        }
        if i & 1 == 0 {
            assert_eq!(announce(t.http, i, 8000, 0, "&event=completed"), 200);
        }
    }
}

fn check_files(body: &[u8], n: usize) {
    let v = bencode::decode(body).expect("full scrape is valid bencode");
    let files = v.get(b"files").unwrap().as_dict().unwrap();
    assert_eq!(files.len(), n);
    let mut prev: Option<&[u8]> = None;
    for (k, d) in files {
        if let Some(p) = prev {
            assert!(p < *k, "ascending info_hash order");
        }
        prev = Some(k);
        let i = u32::from_be_bytes([k[16], k[17], k[18], k[19]]);
        assert_eq!(&hash(i)[..], *k);
        let get = |key: &[u8]| d.get(key).unwrap().as_int().unwrap();
        assert_eq!(
            (get(b"complete"), get(b"incomplete"), get(b"downloaded")),
            expected(i),
            "torrent {i}"
        );
    }
}

#[test]
fn full_scrape_plain_and_gzip() {
    let t = Tracker::start(&[], "tracker.full_scrape_interval 0\n");
    let empty = get(t.http, "/scrape", "", None);
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body, b"d5:filesdee");
    assert_eq!(
        empty.header("transfer-encoding").as_deref(),
        Some("chunked")
    );

    small_swarm(&t);
    let plain = get(t.http, "/scrape", "", None);
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header("content-type").as_deref(),
        Some("application/octet-stream")
    );
    assert_eq!(plain.header("content-encoding"), None);
    check_files(&plain.body, 30);

    let gz = get(
        t.http,
        "/scrape",
        "Accept-Encoding: gzip, deflate\r\n",
        None,
    );
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding").as_deref(), Some("gzip"));
    let body = gunzip(&gz.body);
    assert_eq!(body, plain.body);
    check_files(&body, 30);

    // `/scrape?` is a normal scrape without info_hash, not a full scrape (opentracker).
    assert_ne!(get(t.http, "/scrape?", "", None).body, plain.body);

    // Keep-alive: a request pipelined behind a full scrape is answered after it.
    let mut s = connect(t.http, None);
    s.write_all(
        b"GET /scrape HTTP/1.1\r\n\r\nGET /stats?mode=torr HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(5).position(|w| w == b"0\r\n\r\n").unwrap() + 5;
    check_files(&parse_reply(&raw[..split]).body, 30);
    let second = parse_reply(&raw[split..]);
    assert_eq!(second.status, 200);
    assert!(second.text().starts_with("30\n0\n"), "{}", second.text());
}

#[test]
fn http10_gets_an_unchunked_body_ended_by_the_close() {
    let t = Tracker::start(&[], "tracker.full_scrape_interval 0\n");
    small_swarm(&t);
    for (headers, gzip) in [
        ("", false),
        ("Accept-Encoding: gzip\r\n", true),
        // Keep-alive can't be had without chunks or a length: closed all the same.
        ("Connection: keep-alive\r\n", false),
    ] {
        let mut s = connect(t.http, None);
        write!(s, "GET /scrape HTTP/1.0\r\n{headers}\r\n").unwrap();
        let mut raw = Vec::new();
        // Returns only because the tracker closes the connection (else the read times out).
        s.read_to_end(&mut raw).unwrap();
        let r = parse_reply(&raw);
        assert_eq!(r.status, 200, "{headers:?}");
        assert_eq!(r.header("transfer-encoding"), None, "{}", r.head);
        assert_eq!(
            r.header("connection").as_deref(),
            Some("close"),
            "{}",
            r.head
        );
        let body = if gzip { gunzip(&r.body) } else { r.body };
        check_files(&body, 30);
    }
    // The stats modes that stream (tpbs, statedump) are unchunked for HTTP/1.0 too.
    let mut s = connect(t.http, None);
    write!(s, "GET /stats?mode=tpbs&format=txt HTTP/1.0\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let r = parse_reply(&raw);
    assert_eq!(
        (r.status, r.header("transfer-encoding")),
        (200, None),
        "{}",
        r.head
    );
    assert_eq!(r.text().lines().count(), 30, "{}", r.text());
}

#[test]
fn full_scrape_can_be_turned_off() {
    let t = Tracker::start(&[], "tracker.full_scrape off\n");
    let r = get(t.http, "/scrape", "", None);
    assert_eq!(r.status, 403);
    assert!(
        r.text().contains("full scrape is turned off"),
        "{}",
        r.text()
    );
    // Normal scrapes still work.
    assert_eq!(
        get(
            t.http,
            &format!("/scrape?info_hash={}", percent_encode(&hash(1))),
            "",
            None
        )
        .status,
        200
    );
}

#[test]
fn slow_full_scrape_does_not_stall_announces() {
    // One worker, so the full scrape and the announces share one event loop.
    let t = Tracker::start(&[], "tracker.workers 1\n");
    const N: u32 = 200_000;
    let answered = fill_udp(t.udp, N);
    assert!(
        answered > N * 9 / 10,
        "only {answered} UDP announces answered"
    );
    let torrents: usize = get(t.http, "/stats?mode=torr", "", None)
        .text()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(torrents >= answered as usize);

    let mut s = connect(t.http, None);
    s.write_all(b"GET /scrape HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let reader = std::thread::spawn(move || {
        // Read slowly: 16 KiB every 5 ms (about 3 MB/s).
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let started = Instant::now();
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                Err(e) => panic!("reading the full scrape: {e}"),
            }
            std::thread::sleep(Duration::from_millis(5));
            assert!(
                started.elapsed() < Duration::from_secs(40),
                "full scrape too slow"
            );
        }
        (raw, started.elapsed())
    });

    // Announces on other connections while the full scrape streams.
    std::thread::sleep(Duration::from_millis(200));
    let mut worst = Duration::ZERO;
    for k in 0..40u32 {
        let t0 = Instant::now();
        assert_eq!(announce(t.http, N + k, 9000, 5, ""), 200);
        worst = worst.max(t0.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (raw, took) = reader.join().unwrap();
    assert!(
        took > Duration::from_millis(900),
        "the full scrape must still have been streaming during the announces ({took:?})"
    );
    assert!(
        worst < Duration::from_millis(500),
        "an announce took {worst:?}"
    );

    let reply = parse_reply(&raw);
    assert_eq!(reply.status, 200);
    let v = bencode::decode(&reply.body).expect("valid bencode");
    let files = v.get(b"files").unwrap().as_dict().unwrap();
    assert!(files.len() >= torrents, "{} < {torrents}", files.len());
    for (_, d) in files.iter().take(1000) {
        assert_eq!(d.get(b"incomplete").unwrap().as_int(), Some(1));
    }
}

/// Hash `i` of torrents that all share their first 12 bits (one shard of the store).
fn crowded(i: u32) -> [u8; 20] {
    let mut h = hash(i);
    h[0] = 0xab;
    h[1] = 0xc0 | (h[1] & 0x0f);
    h
}

/// Sends `GET target` from `local` with a tiny receive buffer, reads the reply head and no
/// more: (status, the connection, left open and unread).
fn open_unread(addr: SocketAddr, local: IpAddr, target: &str, headers: &str) -> (u16, TcpStream) {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    // A small window: the body stays in the tracker, as with a client that never reads.
    sock.set_recv_buffer_size(4096).unwrap();
    sock.bind(&SocketAddr::new(local, 0).into()).unwrap();
    sock.connect_timeout(&addr.into(), IO_TIMEOUT).unwrap();
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: t\r\n{headers}\r\n").unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "closed before the head's end");
        head.push(b[0]);
    }
    let status = std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap();
    (status, s)
}

fn metric(t: &Tracker, name: &str) -> u64 {
    let text = get(t.http, "/metrics", "", None).text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
}

#[test]
fn unread_full_scrapes_of_a_crowded_shard_hold_little_memory() {
    // The attack: torrents whose info_hashes share their first 12 bits (the shard), then full
    // scrapes with gzip that are never read. A stream must hold a bounded batch of the shard,
    // not a copy of it: with 100,000 such torrents a copy is 3.6 MB per stream.
    let t = Tracker::start(&[], "tracker.full_scrape_interval 0\ntracker.workers 2\n");
    const N: u32 = 100_000;
    const STREAMS: u64 = 32;
    let answered = fill_udp_with(t.udp, N, crowded);
    assert!(answered > N * 9 / 10, "only {answered} announces answered");
    let before = t.rss_kib();
    let local: IpAddr = "127.0.0.1".parse().unwrap();
    let held: Vec<TcpStream> = (0..STREAMS)
        .map(|_| {
            let (status, s) = open_unread(t.http, local, "/scrape", "Accept-Encoding: gzip\r\n");
            assert_eq!(status, 200);
            s
        })
        .collect();
    // Every stream has started (its head was read); give the workers a moment to go as far as
    // the unread connections let them.
    std::thread::sleep(Duration::from_millis(500));
    let grown = t.rss_kib().saturating_sub(before);
    // Per stream: one batch (4096 entries, 144 KiB), the gzip state, a chunk or two: about
    // 420 KiB measured. A copy of the shard made it 1.5 MiB each here (more where the socket
    // buffers take less of the body).
    assert!(
        grown < STREAMS * 768,
        "{STREAMS} unread full scrapes grew RSS by {grown} KiB (a bound of 768 KiB each)"
    );
    drop(held);

    // The body is whole and in ascending order.
    let r = get(t.http, "/scrape", "Accept-Encoding: gzip\r\n", None);
    let body = gunzip(&r.body);
    let v = bencode::decode(&body).expect("valid bencode");
    let files = v.get(b"files").unwrap().as_dict().unwrap();
    assert_eq!(files.len(), answered as usize);
    assert!(files.windows(2).all(|w| w[0].0 < w[1].0), "ascending");
    assert!(files.iter().all(|(k, _)| k[0] == 0xab && k[1] >> 4 == 0xc));
    // Byte-identical from one full scrape to the next.
    assert_eq!(get(t.http, "/scrape", "", None).body, body);
}

#[test]
fn stream_limit_and_full_scrape_interval_refuse_beyond_them() {
    let t = Tracker::start(&[], "http.max_streams 2\ntracker.full_scrape_interval 60\n");
    // Enough torrents that an unread stream stays open (6 MB of bencode).
    const N: u32 = 100_000;
    assert!(fill_udp_with(t.udp, N, crowded) > N * 9 / 10);
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };

    let (status, first) = open_unread(t.http, ip("127.0.0.1"), "/scrape", "");
    assert_eq!(status, 200);
    // The same address within the interval: refused with a reason, the connection kept.
    let r = get(t.http, "/scrape", "", Some(ip("127.0.0.1")));
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(
        r.text().contains("tracker.full_scrape_interval"),
        "{}",
        r.text()
    );
    // tpbs is not a full scrape (no interval) but is a stream: the second and last place.
    let (status, _second) = open_unread(t.http, ip("127.0.0.2"), "/stats?mode=tpbs&format=txt", "");
    assert_eq!(status, 200);
    // A third stream from a fresh address: the process-wide limit.
    let r = get(t.http, "/scrape", "", Some(ip("127.0.0.3")));
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("too many full scrapes"), "{}", r.text());
    // Refused, 127.0.0.3 has not used up its interval; once a stream ends, it gets one.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, s) = open_unread(t.http, ip("127.0.0.3"), "/scrape", "");
        if status == 200 {
            drop(s);
            break;
        }
        assert_eq!(status, 503);
        assert!(
            Instant::now() < deadline,
            "the closed stream's place never came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Workers publish their counters about twice a second.
    let streams = r#"ferrotracker_refused_total{limit="streams"}"#;
    let interval = r#"ferrotracker_refused_total{limit="full_scrape_interval"}"#;
    let deadline = Instant::now() + Duration::from_secs(10);
    // (A page shows the answering worker's own counters live and the others' as last
    // published, so one read is checked whole rather than two compared.)
    while metric(&t, streams) < 1 || metric(&t, interval) != 1 {
        assert!(
            Instant::now() < deadline,
            "the 503 or the 429 was never counted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
