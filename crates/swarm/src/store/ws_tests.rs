//! Unit tests of the WebTorrent peers: announce, hijack refusal, pick, find, connection
//! removal, expiry, limits and counts across transports.

use super::*;
use crate::Rng;
use ferrotracker_proto::{Event, PeerId};

fn hash(n: u32) -> InfoHash {
    let mut h = [0u8; 20];
    h[..4].copy_from_slice(&n.to_be_bytes());
    h[16..].copy_from_slice(&n.to_le_bytes());
    InfoHash(h)
}

fn id(n: u8) -> PeerId {
    PeerId([n; 20])
}

fn ws(s: &Store, h: u32, peer: u8, conn: u64, seeder: bool, event: Event, now: u32) -> AnnouncedWs {
    s.announce_ws(&hash(h), &id(peer), conn, seeder, event, now)
        .expect("within limits")
}

fn counts(seeders: u32, leechers: u32, downloaded: u32) -> Counts {
    Counts {
        seeders,
        leechers,
        downloaded,
    }
}

fn cfg() -> StoreConfig {
    StoreConfig {
        max_memory: MemoryLimit::Unlimited,
        ..StoreConfig::default()
    }
}

#[test]
fn add_refresh_stop() {
    let s = Store::new(cfg());
    let a = ws(&s, 1, 1, 10, false, Event::Started, 0);
    assert_eq!(a.counts, counts(0, 1, 0));
    assert!(a.stored && !a.completed);
    assert_eq!(a.renewed_after, None);
    let a = ws(&s, 1, 1, 10, true, Event::None, 120);
    assert_eq!(a.counts, counts(1, 0, 0));
    assert_eq!(
        a.renewed_after,
        Some(120 / 27 * 27),
        "to the store's tick (27 s)"
    );
    assert_eq!(s.totals().peers_ws, 1);
    let a = ws(&s, 1, 1, 10, true, Event::Stopped, 130);
    assert_eq!(a.counts, counts(0, 0, 0));
    assert!(!a.stored);
    assert_eq!(s.find_ws(&hash(1), &id(1)), None);
    assert_eq!(
        s.scrape(&hash(1)),
        Some(counts(0, 0, 0)),
        "a stop keeps the torrent"
    );
    assert_eq!(s.totals().peers_ws, 0);
    assert_eq!(s.estimated_bytes(), TORRENT_BYTES);
    // A stop of an unknown peer or torrent changes nothing.
    assert_eq!(
        ws(&s, 1, 9, 10, false, Event::Stopped, 130).counts,
        counts(0, 0, 0)
    );
    assert_eq!(
        ws(&s, 2, 9, 10, false, Event::Stopped, 130).counts,
        counts(0, 0, 0)
    );
    assert_eq!(s.scrape(&hash(2)), None);
}

#[test]
fn completions_count_once_per_presence_and_only_seeding() {
    let s = Store::new(cfg());
    assert!(!ws(&s, 1, 1, 10, false, Event::Completed, 0).completed);
    let a = ws(&s, 1, 1, 10, true, Event::Completed, 0);
    assert!(a.completed);
    assert_eq!(a.counts, counts(1, 0, 1));
    assert!(!ws(&s, 1, 1, 10, true, Event::Completed, 1).completed);
    ws(&s, 1, 1, 10, true, Event::Stopped, 2);
    assert!(ws(&s, 1, 1, 10, true, Event::Completed, 3).completed);
    assert_eq!(s.scrape(&hash(1)), Some(counts(1, 0, 2)));
    assert_eq!(s.totals().downloaded, 2);
}

#[test]
fn a_peer_id_belongs_to_its_connection_until_it_expires() {
    let s = Store::new(cfg());
    let timeout = s.config().peer_timeout;
    ws(&s, 1, 1, 10, false, Event::Started, 0);
    for event in [
        Event::Started,
        Event::None,
        Event::Completed,
        Event::Stopped,
    ] {
        assert_eq!(
            s.announce_ws(&hash(1), &id(1), 11, true, event, 60),
            Err(Refused::PeerIdTaken),
            "{event:?}"
        );
    }
    assert_eq!(s.find_ws(&hash(1), &id(1)), Some(10));
    assert_eq!(
        s.scrape(&hash(1)),
        Some(counts(0, 1, 0)),
        "the owner's record is intact"
    );
    assert!(!Refused::PeerIdTaken.is_full());
    assert!(Refused::PeerIdTaken.reason().contains("peer_id"));
    // Another torrent is another swarm.
    ws(&s, 2, 1, 11, false, Event::Started, 60);
    // The owner's refresh keeps it; once it has been quiet a peer timeout, the sweep not
    // having come by, another connection takes the peer_id over.
    ws(&s, 1, 1, 10, false, Event::None, 100);
    assert_eq!(
        s.announce_ws(&hash(1), &id(1), 11, false, Event::None, 100 + timeout - 60),
        Err(Refused::PeerIdTaken)
    );
    let a = ws(&s, 1, 1, 11, true, Event::Started, 100 + timeout + 30);
    assert!(a.stored);
    assert_eq!(a.renewed_after, None, "a new record");
    assert_eq!(a.counts, counts(1, 0, 0));
    assert_eq!(s.find_ws(&hash(1), &id(1)), Some(11));
    assert_eq!(s.totals().peers_ws, 2);
    // The old connection's close no longer touches it.
    assert_eq!(s.remove_ws_conn(&hash(1), 10), 0);
    assert_eq!(s.find_ws(&hash(1), &id(1)), Some(11));
}

#[test]
fn an_expired_record_may_be_stopped_by_anyone() {
    let s = Store::new(cfg());
    let timeout = s.config().peer_timeout;
    ws(&s, 1, 1, 10, false, Event::Started, 0);
    let a = ws(&s, 1, 1, 11, false, Event::Stopped, timeout + 30);
    assert_eq!(a.counts, counts(0, 0, 0));
    assert_eq!(s.totals().peers_ws, 0);
}

#[test]
fn pick_excludes_the_sender_and_gives_distinct_peers_at_most_n() {
    let s = Store::new(cfg());
    let mut rng = Rng::new(5);
    let mut out = Vec::new();
    s.pick_ws(&hash(1), 5, &id(1), &mut rng, &mut out);
    assert!(out.is_empty(), "unknown torrent");
    for peer in 1..=10u8 {
        ws(
            &s,
            1,
            peer,
            u64::from(peer),
            peer % 2 == 0,
            Event::Started,
            0,
        );
    }
    for n in [0usize, 1, 3, 8, 9, 10, 50] {
        for _ in 0..20 {
            out.clear();
            out.push((99, id(99)));
            s.pick_ws(&hash(1), n, &id(4), &mut rng, &mut out);
            assert_eq!(
                out.first(),
                Some(&(99, id(99))),
                "appends to what `out` held"
            );
            let picked = &out[1..];
            assert_eq!(picked.len(), n.min(9), "n {n}");
            let mut conns: Vec<u64> = picked.iter().map(|p| p.0).collect();
            conns.sort_unstable();
            conns.dedup();
            assert_eq!(conns.len(), picked.len(), "distinct");
            assert!(picked.iter().all(|&(c, p)| c != 4 && p == id(c as u8)));
        }
    }
    // Every other peer is picked sometime.
    let mut seen = [false; 11];
    for _ in 0..200 {
        out.clear();
        s.pick_ws(&hash(1), 2, &id(4), &mut rng, &mut out);
        for &(c, _) in &out {
            seen[c as usize] = true;
        }
    }
    assert_eq!(seen.iter().filter(|&&x| x).count(), 9);
    // A torrent with only UDP/HTTP peers has none to offer.
    let a = Announce {
        info_hash: hash(2),
        addr: PeerAddr::V4([10, 0, 0, 1]),
        port: 1,
        seeding: false,
        event: Event::Started,
    };
    s.announce(
        &a,
        Want::Both(5),
        0,
        &mut rng,
        &mut Vec::new(),
        &mut Vec::new(),
    )
    .unwrap();
    out.clear();
    s.pick_ws(&hash(2), 5, &id(0), &mut rng, &mut out);
    assert!(out.is_empty());
}

#[test]
fn find_routes_to_the_holder() {
    let s = Store::new(cfg());
    ws(&s, 1, 1, 10, false, Event::Started, 0);
    ws(&s, 1, 2, 20, false, Event::Started, 0);
    assert_eq!(s.find_ws(&hash(1), &id(1)), Some(10));
    assert_eq!(s.find_ws(&hash(1), &id(2)), Some(20));
    assert_eq!(s.find_ws(&hash(1), &id(3)), None);
    assert_eq!(s.find_ws(&hash(2), &id(1)), None);
}

#[test]
fn closing_a_connection_stops_its_peers_in_each_torrent() {
    let s = Store::new(cfg());
    ws(&s, 1, 1, 7, true, Event::Started, 0);
    ws(&s, 1, 2, 7, false, Event::Started, 0);
    ws(&s, 1, 3, 8, false, Event::Started, 0);
    ws(&s, 2, 1, 7, false, Event::Started, 0);
    assert_eq!(s.totals().peers_ws, 4);
    assert_eq!(s.remove_ws_conn(&hash(1), 7), 2);
    assert_eq!(s.scrape(&hash(1)), Some(counts(0, 1, 0)));
    assert_eq!(s.find_ws(&hash(1), &id(3)), Some(8));
    assert_eq!(
        s.find_ws(&hash(2), &id(1)),
        Some(7),
        "only the torrent named"
    );
    assert_eq!(s.remove_ws_conn(&hash(2), 7), 1);
    assert_eq!(s.remove_ws_conn(&hash(2), 7), 0);
    assert_eq!(s.remove_ws_conn(&hash(3), 7), 0, "unknown torrent");
    let t = s.totals();
    assert_eq!((t.peers_ws, t.seeders_ws, t.seeders), (1, 0, 0));
    assert_eq!(s.estimated_bytes(), 2 * TORRENT_BYTES + PEER_WS_BYTES);
    // The emptied torrent's lists are freed.
    let before = s.heap_bytes();
    assert_eq!(s.remove_ws_conn(&hash(1), 8), 1);
    assert!(s.heap_bytes() < before);
    assert_eq!(s.totals().peers_ws, 0);
}

#[test]
fn sweep_expires_ws_peers_and_then_the_torrent() {
    let s = Store::new(cfg());
    let timeout = s.config().peer_timeout;
    ws(&s, 1, 1, 10, true, Event::Started, 0);
    ws(&s, 1, 2, 11, false, Event::Started, timeout / 2);
    // A torrent with a download outlives its peers.
    ws(&s, 2, 1, 10, true, Event::Completed, 0);
    let swept = s.sweep_all(timeout + 60);
    assert_eq!(
        swept,
        Swept {
            peers: 2,
            torrents: 0
        }
    );
    assert_eq!(s.scrape(&hash(1)), Some(counts(0, 1, 0)));
    assert_eq!(s.find_ws(&hash(1), &id(1)), None);
    assert_eq!(s.scrape(&hash(2)), Some(counts(0, 0, 1)));
    let t = s.totals();
    assert_eq!((t.peers_ws, t.seeders_ws, t.seeders), (1, 0, 0));
    assert_eq!(s.estimated_bytes(), 2 * TORRENT_BYTES + PEER_WS_BYTES);
    // The last peer goes; a peer timeout after the last activity so does the torrent
    // without downloads.
    let swept = s.sweep_all(timeout / 2 + timeout + 60);
    assert_eq!(
        swept,
        Swept {
            peers: 1,
            torrents: 1
        }
    );
    assert_eq!(s.scrape(&hash(1)), None);
    assert_eq!(s.scrape(&hash(2)), Some(counts(0, 0, 1)));
    s.sweep_all(s.config().torrent_timeout + 60);
    assert_eq!(s.scrape(&hash(2)), None);
    assert_eq!(s.estimated_bytes(), 0);
    assert_eq!(s.totals(), Totals::default());
}

#[test]
fn a_dead_torrent_takes_its_ws_peers_from_the_counts() {
    let s = Store::new(StoreConfig {
        torrent_timeout: 600,
        peer_timeout: 3600,
        ..cfg()
    });
    ws(&s, 1, 1, 10, true, Event::Started, 0);
    assert_eq!(
        s.sweep_all(700),
        Swept {
            peers: 1,
            torrents: 1
        }
    );
    assert_eq!(s.totals(), Totals::default());
    assert_eq!(s.estimated_bytes(), 0);
}

#[test]
fn torrent_and_peer_limits_hold_for_ws() {
    let s = Store::new(StoreConfig {
        max_torrents: 1,
        max_peers_per_torrent: 2,
        ..cfg()
    });
    ws(&s, 1, 1, 1, false, Event::Started, 0);
    ws(&s, 1, 2, 1, false, Event::Started, 0);
    let a = ws(&s, 1, 3, 2, false, Event::Started, 0);
    assert!(!a.stored, "a full swarm answers without storing");
    assert_eq!(a.counts, counts(0, 2, 0));
    assert_eq!(s.find_ws(&hash(1), &id(3)), None);
    assert!(
        ws(&s, 1, 2, 1, true, Event::None, 1).stored,
        "known peers refresh"
    );
    assert_eq!(
        s.announce_ws(&hash(2), &id(1), 1, false, Event::Started, 0),
        Err(Refused::TooManyTorrents)
    );
    // The per-address limit doesn't apply: one connection, many peer_ids, up to the list's.
    let s = Store::new(StoreConfig {
        max_peers_per_address: 1,
        ..cfg()
    });
    for p in 0..5 {
        assert!(ws(&s, 1, p, 1, false, Event::Started, 0).stored);
    }
}

#[test]
fn memory_budget_counts_ws_records() {
    let budget = TORRENT_BYTES + 2 * PEER_WS_BYTES;
    let s = Store::new(StoreConfig {
        max_memory: MemoryLimit::Bytes(budget),
        ..StoreConfig::default()
    });
    ws(&s, 1, 1, 1, false, Event::Started, 0);
    assert_eq!(s.estimated_bytes(), TORRENT_BYTES + PEER_WS_BYTES);
    ws(&s, 1, 2, 1, false, Event::Started, 0);
    assert_eq!(s.estimated_bytes(), budget);
    assert!(!ws(&s, 1, 3, 1, false, Event::Started, 0).stored);
    assert_eq!(
        s.announce_ws(&hash(2), &id(1), 1, false, Event::Started, 0),
        Err(Refused::OutOfMemoryBudget)
    );
    // UDP/HTTP peers meet the same ceiling.
    let a = Announce {
        info_hash: hash(1),
        addr: PeerAddr::V4([10, 0, 0, 1]),
        port: 1,
        seeding: false,
        event: Event::Started,
    };
    let r = s
        .announce(
            &a,
            Want::Both(5),
            0,
            &mut Rng::new(1),
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap();
    assert!(!r.stored);
    // Room again once one goes.
    ws(&s, 1, 1, 1, false, Event::Stopped, 0);
    assert!(ws(&s, 1, 3, 1, false, Event::Started, 0).stored);
    // The heap estimate of records follows: a torrent's lists hold at least the records.
    assert!(s.heap_bytes() >= 2 * core::mem::size_of::<crate::peers::WsPeer>());
}

#[test]
fn counts_and_totals_span_every_transport() {
    let s = Store::new(cfg());
    let mut rng = Rng::new(1);
    let (mut o4, mut o6) = (Vec::new(), Vec::new());
    let v4 = Announce {
        info_hash: hash(1),
        addr: PeerAddr::V4([10, 0, 0, 1]),
        port: 1,
        seeding: true,
        event: Event::Started,
    };
    let v6 = Announce {
        addr: PeerAddr::V6([0x20; 16]),
        seeding: false,
        ..v4
    };
    s.announce(&v4, Want::Both(50), 0, &mut rng, &mut o4, &mut o6)
        .unwrap();
    s.announce(&v6, Want::Both(50), 0, &mut rng, &mut o4, &mut o6)
        .unwrap();
    assert_eq!(
        ws(&s, 1, 1, 10, true, Event::Started, 0).counts,
        counts(2, 1, 0)
    );
    assert_eq!(
        ws(&s, 1, 2, 11, false, Event::Started, 0).counts,
        counts(2, 2, 0)
    );
    assert_eq!(s.scrape(&hash(1)), Some(counts(2, 2, 0)));
    // UDP/HTTP replies carry the WebTorrent peers in their counts, not in their peer lists.
    o4.clear();
    o6.clear();
    let r = s
        .announce(&v4, Want::Both(50), 1, &mut rng, &mut o4, &mut o6)
        .unwrap();
    assert_eq!(r.counts, counts(2, 2, 0));
    assert_eq!((o4.len(), o6.len()), (6, 18));
    let mut walked = Vec::new();
    s.for_each_in_shard(0, |h, c| walked.push((*h, c)));
    assert_eq!(walked, vec![(hash(1), counts(2, 2, 0))]);
    let t = s.totals();
    assert_eq!(
        t,
        Totals {
            torrents: 1,
            peers4: 1,
            peers6: 1,
            peers_ws: 2,
            seeders: 2,
            seeders_ws: 1,
            downloaded: 0,
        }
    );
    assert_eq!(t.peers(), 4);
    assert_eq!(
        s.estimated_bytes(),
        TORRENT_BYTES + PEER4_BYTES + PEER6_BYTES + 2 * PEER_WS_BYTES
    );
    // The statedump's peer walk leaves WebTorrent peers out.
    let mut dumped = 0;
    s.peers_in_shard(0, |_, p4, p6| dumped += p4.len() + p6.len());
    assert_eq!(dumped, 2);
    // IPv6 peers keep working beside WebTorrent ones in the shared box.
    let stop6 = Announce {
        event: Event::Stopped,
        ..v6
    };
    s.announce(&stop6, Want::Both(50), 2, &mut rng, &mut o4, &mut o6)
        .unwrap();
    assert_eq!(s.scrape(&hash(1)), Some(counts(2, 1, 0)));
    assert_eq!(s.find_ws(&hash(1), &id(2)), Some(11));
    s.remove_ws_conn(&hash(1), 10);
    s.remove_ws_conn(&hash(1), 11);
    assert_eq!(s.scrape(&hash(1)), Some(counts(1, 0, 0)));
}

#[test]
fn a_torrent_without_ws_or_v6_peers_costs_one_null_pointer() {
    use super::shard::Torrent;
    assert_eq!(core::mem::size_of::<Torrent>(), 64);
    let s = Store::new(cfg());
    let a = Announce {
        info_hash: hash(1),
        addr: PeerAddr::V4([10, 0, 0, 1]),
        port: 1,
        seeding: true,
        event: Event::Started,
    };
    s.announce(
        &a,
        Want::Both(5),
        0,
        &mut Rng::new(1),
        &mut Vec::new(),
        &mut Vec::new(),
    )
    .unwrap();
    let before = s.heap_bytes();
    ws(&s, 1, 1, 10, false, Event::Started, 0);
    assert!(s.heap_bytes() > before);
    s.remove_ws_conn(&hash(1), 10);
    assert_eq!(s.heap_bytes(), before, "the emptied box is freed");
}
