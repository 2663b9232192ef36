//! Full scrape over real sockets: plain and gzip bodies decode to the right counts, the feature
//! can be turned off, an HTTP/1.0 client gets it unchunked, and a slowly read full scrape of 200,000 torrents does not hold up
//! announces on other connections of the same worker.

mod stats_support;

use std::io::{Read, Write};
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
    let t = Tracker::start(&[], "");
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
    let t = Tracker::start(&[], "");
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
            &format!("/scrape?info_hash={}", pct(&hash(1))),
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
