//! HTTP scrapes of listed hashes, and the full scrape streamed over the handler.

mod common;

use common::*;
use ferrotracker_core::fullscrape::{dechunk, Progress};
use ferrotracker_core::After;
use ferrotracker_proto::InfoHash;

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
