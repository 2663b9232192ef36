//! BEP 15 in memory: connection-id lifetimes, announce and scrape round trips, and bad
//! datagrams.

mod common;

use common::*;
use ferrotracker_proto::udp::{self, Response};
use ferrotracker_proto::{Event, InfoHash};

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
    let mut h = Harness::with(|s| s.tracker.interval = 5);
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
    let mut h = Harness::with(|s| s.store.max_peers_per_address = 1);
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
