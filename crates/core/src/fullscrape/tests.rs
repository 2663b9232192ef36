//! Unit tests of the streamed full scrape: formats, framing, gzip, crowded shards, churn.

use super::*;
use ferrotracker_proto::bencode;
use ferrotracker_proto::{Event, InfoHash};
use ferrotracker_swarm::{Announce, PeerAddr, Rng, StoreConfig, Want};
use std::io::Read;

fn hash(i: u32) -> InfoHash {
    // Spread over shards: the top bytes vary.
    let mut h = [0u8; 20];
    h[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
    h[16..].copy_from_slice(&i.to_be_bytes());
    InfoHash(h)
}

fn announce(store: &Store, h: InfoHash, ip: [u8; 4], seeding: bool, event: Event, now: u32) {
    let mut rng = Rng::new(1);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    store
        .announce(
            &Announce {
                info_hash: h,
                addr: PeerAddr::V4(ip),
                port: 6881,
                seeding,
                event,
            },
            Want::Both(0),
            now,
            &mut rng,
            &mut a,
            &mut b,
        )
        .expect("within the store limits");
}

/// `n` torrents; torrent i has 1 + (i % 3) leechers, one seeder if i is even, and one download
/// if i % 4 == 0.
fn filled(n: u32) -> Store {
    let store = Store::new(StoreConfig::default());
    for i in 0..n {
        let h = hash(i);
        for l in 0..=(i % 3) {
            announce(&store, h, [10, 0, 0, l as u8 + 1], false, Event::None, 60);
        }
        if i % 2 == 0 {
            let ev = if i % 4 == 0 {
                Event::Completed
            } else {
                Event::None
            };
            announce(&store, h, [10, 0, 1, 1], true, ev, 60);
        }
    }
    store
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn check_bencode(body: &[u8], n: u32) {
    let v = bencode::decode(body).unwrap();
    let files = v.get(b"files").unwrap().as_dict().unwrap();
    assert_eq!(files.len(), n as usize);
    let mut prev: Option<&[u8]> = None;
    for (k, d) in files {
        assert_eq!(k.len(), 20);
        if let Some(p) = prev {
            assert!(p < *k, "ascending order");
        }
        prev = Some(k);
        let i = u32::from_be_bytes([k[16], k[17], k[18], k[19]]);
        assert_eq!(&hash(i).0[..], *k);
        let get = |key: &[u8]| d.get(key).unwrap().as_int().unwrap();
        assert_eq!(get(b"complete"), i64::from(i % 2 == 0));
        assert_eq!(get(b"incomplete"), i64::from(i % 3) + 1);
        assert_eq!(get(b"downloaded"), i64::from(i % 4 == 0));
    }
}

#[test]
fn empty_tracker() {
    let store = Store::new(StoreConfig::default());
    assert_eq!(encode_all(&store, Format::Bencode, false), b"d5:filesdee");
    assert_eq!(encode_all(&store, Format::Text, false), b"");
    assert_eq!(
        gunzip(&encode_all(&store, Format::Bencode, true)),
        b"d5:filesdee"
    );
}

#[test]
fn bencode_decodes_sorted_with_counts() {
    let store = filled(5000);
    let body = encode_all(&store, Format::Bencode, false);
    check_bencode(&body, 5000);
}

#[test]
fn gzip_round_trip() {
    let store = filled(3000);
    let plain = encode_all(&store, Format::Bencode, false);
    let gz = encode_all(&store, Format::Bencode, true);
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    assert_eq!(gunzip(&gz), plain);
    check_bencode(&gunzip(&gz), 3000);
}

#[test]
fn chunks_are_bounded_and_framed() {
    let store = filled(20_000);
    for gzip in [false, true] {
        let mut f = FullScrape::new(Format::Bencode, gzip);
        let mut framed = Vec::new();
        let mut calls = 0;
        loop {
            let before = framed.len();
            let p = f.next_chunk(&store, &mut framed);
            calls += 1;
            assert!(framed.len() - before <= CHUNK + MAX_RAW_PER_CALL + 64);
            if p == Progress::Done {
                break;
            }
        }
        assert!(calls > 3, "streamed in several chunks");
        let body = dechunk(&framed).unwrap();
        assert_eq!(f.bytes(), body.len() as u64);
        let body = if gzip { gunzip(&body) } else { body };
        check_bencode(&body, 20_000);
        assert_eq!(f.next_chunk(&store, &mut framed), Progress::Done);
    }
}

#[test]
fn unchunked_for_http10_is_the_raw_body_then_close() {
    let store = filled(20_000);
    for gzip in [false, true] {
        let f = FullScrape::new(Format::Bencode, gzip).unchunked();
        let mut head = Vec::new();
        f.write_head(&mut head, true);
        let head = String::from_utf8(head).unwrap();
        assert!(!head.contains("Transfer-Encoding"), "{head}");
        assert!(head.contains("Connection: close\r\n"), "{head}");
        assert!(!f.keeps_alive(true));
        let mut f = f;
        let mut body = Vec::new();
        while f.next_chunk(&store, &mut body) == Progress::More {}
        assert_eq!(f.bytes(), body.len() as u64);
        let body = if gzip { gunzip(&body) } else { body };
        check_bencode(&body, 20_000);
    }
    // Chunked is the default, and keeps the connection when asked.
    assert!(FullScrape::new(Format::Bencode, false).keeps_alive(true));
}

#[test]
fn text_formats() {
    let store = Store::new(StoreConfig::default());
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
    let h = InfoHash(h);
    let now = 1_795_595_120;
    announce(&store, h, [10, 0, 0, 1], false, Event::None, now);
    announce(&store, h, [10, 0, 0, 2], true, Event::Completed, now);
    announce(&store, h, [10, 0, 0, 3], true, Event::None, now);
    let hex = "0123456789ABCDEF000000000000000000000000";
    let txt = encode_all(&store, Format::Text, false);
    assert_eq!(txt, format!("{hex}:2:1\n").as_bytes());
    let txtp = encode_all(&store, Format::TextPlus, false);
    assert_eq!(txtp, format!("{hex}:2:1:1\n").as_bytes());
    let bin = encode_all(&store, Format::Binary, false);
    let mut want = h.0.to_vec();
    want.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 1]);
    assert_eq!(bin, want);
    let url = encode_all(&store, Format::UrlEncoded, false);
    let zeros = "%00".repeat(12);
    assert_eq!(url, format!("%01%23Eg%89%ab%cd%ef{zeros}:2:1\n").as_bytes());
    // Statedump: the store's clock is Unix seconds; base is minutes since the epoch.
    let dump = encode_all(&store, Format::Statedump, false);
    let minutes = now / 60;
    assert_eq!(dump, format!("{hex}:{minutes}:1\n").as_bytes());
}

#[test]
fn head() {
    let f = FullScrape::new(Format::Bencode, true);
    let mut out = Vec::new();
    f.write_head(&mut out, false);
    assert_eq!(
        out,
        b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
}

/// Hash `i` of a crowded shard: every one starts with the 12 bits 0xabc.
fn crowded(i: u32) -> InfoHash {
    let mut h = hash(i).0;
    h[0] = 0xab;
    h[1] = 0xc0 | (h[1] & 0x0f);
    InfoHash(h)
}

/// (hash, seeders, leechers) of a binary (`tpbs&format=bin`) body.
fn parse_binary(body: &[u8]) -> Vec<([u8; 20], u32, u32)> {
    assert_eq!(body.len() % 28, 0);
    body.chunks_exact(28)
        .map(|r| {
            let mut h = [0u8; 20];
            h.copy_from_slice(&r[..20]);
            let n = |i: usize| u32::from_be_bytes([r[i], r[i + 1], r[i + 2], r[i + 3]]);
            (h, n(20), n(24))
        })
        .collect()
}

#[test]
fn a_crowded_shard_streams_in_order_holding_one_batch() {
    let store = Store::new(StoreConfig::default());
    let n = 3 * BATCH as u32 + 17;
    for i in 0..n {
        announce(
            &store,
            crowded(i),
            [10, 0, 0, 1],
            i % 2 == 0,
            Event::None,
            60,
        );
    }
    // A few elsewhere, before and after the crowded shard.
    for i in 0..50 {
        announce(&store, hash(i), [10, 0, 0, 1], false, Event::None, 60);
    }
    let mut f = FullScrape::new(Format::Binary, false);
    let mut framed = Vec::new();
    let mut calls = 0;
    while f.next_chunk(&store, &mut framed) == Progress::More {
        calls += 1;
        assert!(f.heap.capacity() <= BATCH && f.batch.capacity() <= BATCH);
        assert!(
            f.heap.capacity() + f.batch.capacity() <= BATCH,
            "one buffer, not two"
        );
    }
    assert!(calls > 10, "the crowded shard took several calls ({calls})");
    let rows = parse_binary(&dechunk(&framed).unwrap());
    assert_eq!(rows.len(), n as usize + 50);
    assert!(
        rows.windows(2).all(|w| w[0].0 < w[1].0),
        "strictly ascending"
    );
    let mut want: Vec<[u8; 20]> = (0..n).map(|i| crowded(i).0).collect();
    want.extend((0..50).map(|i| hash(i).0));
    want.sort_unstable();
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), want);
    for (h, s, l) in rows {
        let i = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
        if h[..2] == crowded(i).0[..2] && h == crowded(i).0 {
            assert_eq!((s, l), (u32::from(i % 2 == 0), u32::from(i % 2 == 1)));
        }
    }
    // Byte for byte the same whichever way it is cut: the whole body in one go too.
    assert_eq!(
        encode_all(&store, Format::Bencode, false),
        encode_all(&store, Format::Bencode, false)
    );
}

#[test]
fn torrents_that_stay_are_sent_once_while_others_come_and_go() {
    let store = Store::new(StoreConfig::default());
    let n = 2 * BATCH as u32 + 500;
    // Even: announced late, they stay. Odd: idle since time 0, a sweep removes them.
    let late = 3000;
    for i in 0..n {
        let when = if i % 2 == 0 { late } else { 0 };
        announce(&store, crowded(i), [10, 0, 0, 1], false, Event::None, when);
    }
    let mut f = FullScrape::new(Format::Binary, false);
    let mut framed = Vec::new();
    let mut swept = false;
    let mut added = n;
    while f.next_chunk(&store, &mut framed) == Progress::More {
        // New torrents between steps, enough to grow the table (its entries move).
        for _ in 0..40 {
            announce(
                &store,
                crowded(added),
                [10, 0, 0, 1],
                false,
                Event::None,
                late,
            );
            added += 1;
        }
        // Half-way through the crowded shard (a batch sent, the next pass under way).
        if !swept && f.shard == 0xabc && f.after.is_some() && f.walk.position() > 0 {
            swept = true;
            assert_eq!(
                store.sweep_shard(0xabc, late + 100).torrents,
                u64::from(n / 2)
            );
        }
    }
    assert!(swept);
    let rows = parse_binary(&dechunk(&framed).unwrap());
    assert!(
        rows.windows(2).all(|w| w[0].0 < w[1].0),
        "strictly ascending"
    );
    let sent: std::collections::HashSet<[u8; 20]> = rows.iter().map(|r| r.0).collect();
    for i in (0..n).filter(|i| i % 2 == 0) {
        assert!(
            sent.contains(&crowded(i).0),
            "torrent {i} stayed throughout"
        );
    }
    // Every row is a torrent that existed at some point.
    for (h, _, _) in &rows {
        let i = u32::from_be_bytes([h[16], h[17], h[18], h[19]]);
        assert!(i < added && *h == crowded(i).0);
    }
}

#[test]
fn stream_limit_counts_permits_until_dropped() {
    let limit = StreamLimit::new(2);
    let a = limit.try_start().unwrap();
    let b = limit.try_start().unwrap();
    assert!(limit.try_start().is_none());
    assert_eq!((limit.open(), limit.max()), (2, 2));
    let f = FullScrape::new(Format::Text, false).with_permit(a);
    drop(b);
    assert_eq!(limit.open(), 1);
    let c = limit.try_start().unwrap();
    assert!(limit.try_start().is_none());
    drop(f);
    drop(c);
    assert_eq!(limit.open(), 0);
}

#[test]
fn dechunk_refuses_truncation() {
    assert_eq!(dechunk(b"3\r\nabc\r\n0\r\n\r\n"), Some(b"abc".to_vec()));
    assert_eq!(dechunk(b"3\r\nabc\r\n"), None);
    assert_eq!(dechunk(b"4\r\nabc\r\n0\r\n\r\n"), None);
    assert_eq!(dechunk(b"ffffffffffffffff\r\nabc\r\n0\r\n\r\n"), None);
}
