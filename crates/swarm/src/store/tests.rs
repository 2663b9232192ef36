//! Unit tests of the store: announces, limits, sync, restore, sweeps, walks and layout.

use super::shard::{Padded, ShardCounts, Torrent};
use super::*;
use crate::peers::{PeerRecord, FLAG_FROM_SYNC};
use crate::Rng;
use ferrotracker_proto::Event;

#[test]
fn peer_addr_from_ip_maps_v4_mapped_v6_to_v4() {
    let v4: IpAddr = "10.1.2.3".parse().unwrap();
    let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    assert_eq!(PeerAddr::from(v4), PeerAddr::V4([10, 1, 2, 3]));
    assert_eq!(PeerAddr::from(mapped), PeerAddr::V4([10, 1, 2, 3]));
    let mut want = [0u8; 16];
    want[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    want[15] = 1;
    assert_eq!(PeerAddr::from(v6), PeerAddr::V6(want));
}

fn hash(n: u32) -> InfoHash {
    let mut h = [0u8; 20];
    h[..4].copy_from_slice(&n.to_be_bytes());
    h[16..].copy_from_slice(&n.to_le_bytes());
    InfoHash(h)
}

fn ann(h: InfoHash, last: u8, port: u16, seeding: bool, event: Event) -> Announce {
    Announce {
        info_hash: h,
        addr: PeerAddr::V4([10, 0, 0, last]),
        port,
        seeding,
        event,
    }
}

fn run(s: &Store, a: &Announce, want: Want, now: u32) -> (Counts, Vec<u8>, Vec<u8>) {
    let (mut o4, mut o6) = (Vec::new(), Vec::new());
    let c = s
        .announce(a, want, now, &mut Rng::new(3), &mut o4, &mut o6)
        .expect("within limits")
        .counts;
    (c, o4, o6)
}

#[test]
fn peers_meet_and_counts_follow_events() {
    let s = Store::new(StoreConfig::default());
    let h = hash(1);
    let (c, o4, _) = run(
        &s,
        &ann(h, 1, 6881, false, Event::Started),
        Want::Both(50),
        0,
    );
    assert_eq!(
        c,
        Counts {
            seeders: 0,
            leechers: 1,
            downloaded: 0
        }
    );
    assert_eq!(o4, vec![10, 0, 0, 1, 0x1a, 0xe1]);
    let (c, o4, _) = run(
        &s,
        &ann(h, 2, 6882, true, Event::Completed),
        Want::Both(50),
        1,
    );
    assert_eq!(
        c,
        Counts {
            seeders: 1,
            leechers: 1,
            downloaded: 1
        }
    );
    assert_eq!(o4.len(), 12);
    // Completed again from the same peer does not count twice.
    let (c, _, _) = run(
        &s,
        &ann(h, 2, 6882, true, Event::Completed),
        Want::Both(50),
        2,
    );
    assert_eq!(c.downloaded, 1);
    // Completed with left != 0 is not a download.
    let (c, _, _) = run(
        &s,
        &ann(h, 1, 6881, false, Event::Completed),
        Want::Both(50),
        2,
    );
    assert_eq!(c.downloaded, 1);
    let (c, _, _) = run(
        &s,
        &ann(h, 1, 6881, false, Event::Stopped),
        Want::Both(50),
        3,
    );
    assert_eq!(
        c,
        Counts {
            seeders: 1,
            leechers: 0,
            downloaded: 1
        }
    );
    assert_eq!(s.scrape(&h), Some(c));
    assert_eq!(s.scrape(&hash(2)), None);
    let t = s.totals();
    assert_eq!(
        (t.torrents, t.peers4, t.seeders, t.downloaded),
        (1, 1, 1, 1)
    );
}

#[test]
fn a_known_peer_reports_its_age() {
    let s = Store::new(StoreConfig::default());
    let tick = s.tick_secs;
    let h = hash(3);
    let go = |event, now| {
        let (mut o4, mut o6) = (Vec::new(), Vec::new());
        s.announce(
            &ann(h, 1, 6881, false, event),
            Want::Both(0),
            now,
            &mut Rng::new(1),
            &mut o4,
            &mut o6,
        )
        .expect("within limits")
        .renewed_after
    };
    assert_eq!(go(Event::Started, 10 * tick), None, "a new peer");
    assert_eq!(go(Event::None, 10 * tick + 1), Some(0));
    assert_eq!(go(Event::None, 25 * tick), Some(15 * tick));
    assert_eq!(go(Event::Stopped, 26 * tick), None, "a stop");
    assert_eq!(go(Event::None, 27 * tick), None, "new again");
}

#[test]
fn numwant_and_families() {
    let s = Store::new(StoreConfig::default());
    let h = hash(9);
    for i in 0..30 {
        run(
            &s,
            &ann(h, i, 1000, i % 3 == 0, Event::None),
            Want::Both(0),
            0,
        );
    }
    let v6 = Announce {
        info_hash: h,
        addr: PeerAddr::V6([0xfe; 16]),
        port: 5,
        seeding: false,
        event: Event::None,
    };
    let (c, o4, o6) = run(&s, &v6, Want::Both(10), 0);
    assert_eq!(c.seeders + c.leechers, 31);
    assert_eq!(o4.len() / 6 + o6.len() / 18, 10);
    assert_eq!(o6.len(), 18);
    // UDP: only the requester's family.
    let (_, o4, o6) = run(&s, &v6, Want::SameFamily(200), 0);
    assert!(o4.is_empty());
    assert_eq!(o6.len(), 18);
    // Prefetching a batch that holds a torrent with both lists (all four passes), twice,
    // and unknown hashes, changes nothing.
    s.prefetch(&[h, hash(10), h]);
    assert_eq!(s.scrape(&h).map(|c| c.seeders + c.leechers), Some(31));
    let (_, o4, o6) = run(
        &s,
        &ann(h, 0, 1000, true, Event::None),
        Want::SameFamily(200),
        0,
    );
    assert_eq!((o4.len(), o6.len()), (30 * 6, 0));
}

#[test]
fn restore_then_walk() {
    let s = Store::new(StoreConfig::default());
    let h = hash(77);
    assert!(s.restore_torrent(&h, 5000, 9));
    assert!(!s.restore_torrent(&h, 1, 1), "an existing torrent is kept");
    assert!(s.restore_peer(
        &h,
        PeerAddr::V4([1, 2, 3, 4]),
        80,
        FLAG_SEEDING | 0x20,
        5000
    ));
    assert!(s.restore_peer(&h, PeerAddr::V6([9; 16]), 81, 0, 5000));
    assert!(!s.restore_peer(&hash(78), PeerAddr::V4([1, 2, 3, 4]), 80, 0, 5000));
    assert_eq!(
        s.scrape(&h),
        Some(Counts {
            seeders: 1,
            leechers: 1,
            downloaded: 9
        })
    );
    let t = s.totals();
    assert_eq!((t.torrents, t.peers4, t.peers6, t.seeders), (1, 1, 1, 1));
    let mut seen = 0;
    for i in 0..SHARDS {
        s.peers_in_shard(i, |hh, p4, p6| {
            assert_eq!(*hh, h);
            let first = p4.iter().next().expect("one peer");
            assert_eq!(first.flags(), FLAG_SEEDING, "unknown flags dropped");
            assert_eq!((p4.len(), p6.len()), (1, 1));
            seen += 1;
        });
    }
    assert_eq!(seen, 1);
}

#[test]
fn limits_refuse_torrents_and_skip_peers_but_keep_serving() {
    let s = Store::new(StoreConfig {
        max_torrents: 2,
        max_peers_per_torrent: 3,
        ..StoreConfig::default()
    });
    let mut o4 = Vec::new();
    let go = |h: u32, last: u8, o4: &mut Vec<u8>| {
        o4.clear();
        s.announce(
            &ann(hash(h), last, 1, false, Event::None),
            Want::Both(50),
            0,
            &mut Rng::new(1),
            o4,
            &mut Vec::new(),
        )
    };
    assert!(go(1, 1, &mut o4).is_ok());
    assert!(go(2, 1, &mut o4).is_ok());
    assert_eq!(go(3, 1, &mut o4), Err(Refused::TooManyTorrents));
    for last in 2..=3 {
        assert!(go(1, last, &mut o4).unwrap().stored);
    }
    let full = go(1, 4, &mut o4).unwrap();
    assert!(!full.stored, "fourth peer not stored");
    assert_eq!(full.counts.leechers, 3);
    assert_eq!(o4.len(), 3 * 6, "but it gets the swarm");
    assert!(
        go(1, 2, &mut o4).unwrap().stored,
        "known peers are refreshed"
    );
    assert_eq!(s.estimated_bytes(), 2 * TORRENT_BYTES + 4 * PEER4_BYTES);
    // Expiry gives the room back.
    s.sweep_all(1_000_000);
    assert_eq!(s.estimated_bytes(), 0);
    assert!(go(3, 1, &mut o4).is_ok());
}

#[test]
fn an_address_with_its_share_of_a_torrent_is_refused_new_ports() {
    let s = Store::new(StoreConfig {
        max_peers_per_address: 3,
        ..StoreConfig::default()
    });
    let h = hash(21);
    let go = |addr: PeerAddr, port: u16, event: Event| {
        s.announce(
            &Announce {
                info_hash: h,
                addr,
                port,
                seeding: false,
                event,
            },
            Want::Both(10),
            0,
            &mut Rng::new(1),
            &mut Vec::new(),
            &mut Vec::new(),
        )
    };
    let v4 = PeerAddr::V4([10, 0, 0, 1]);
    for port in 1..=3 {
        assert!(go(v4, port, Event::Started).unwrap().stored);
    }
    assert_eq!(
        go(v4, 4, Event::Started),
        Err(Refused::TooManyPeersFromAddress)
    );
    assert!(
        go(v4, 2, Event::None).unwrap().stored,
        "known ports refresh"
    );
    assert!(
        go(PeerAddr::V4([10, 0, 0, 2]), 4, Event::None)
            .unwrap()
            .stored
    );
    // A stop makes room.
    go(v4, 1, Event::Stopped).unwrap();
    assert!(go(v4, 4, Event::Started).unwrap().stored);
    // IPv6 counts per /64.
    let in64 = |last: u8| {
        let mut ip = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
        ip[15] = last;
        PeerAddr::V6(ip)
    };
    for last in 1..=3 {
        assert!(go(in64(last), 80, Event::None).unwrap().stored);
    }
    assert_eq!(
        go(in64(4), 80, Event::None),
        Err(Refused::TooManyPeersFromAddress)
    );
    // Sync and restore respect it too, silently.
    let synced = SyncedPeer {
        info_hash: h,
        addr: v4,
        port: 9,
        seeding: false,
        completed: false,
        stopped: false,
    };
    assert!(!s.apply_sync(&synced, 1));
    assert!(!s.restore_peer(&h, v4, 9, 0, 1));
    assert_eq!(s.scrape(&h).map(|c| c.leechers), Some(7));
    assert_eq!(s.totals().peers4, 4);
}

#[test]
fn memory_budget_refuses_new_torrents() {
    let s = Store::new(StoreConfig {
        max_memory: MemoryLimit::Bytes(TORRENT_BYTES + PEER4_BYTES),
        ..StoreConfig::default()
    });
    let mut o = Vec::new();
    let mut go = |h: u32, last: u8| {
        s.announce(
            &ann(hash(h), last, 1, false, Event::None),
            Want::Both(0),
            0,
            &mut Rng::new(1),
            &mut o,
            &mut Vec::new(),
        )
    };
    assert!(go(1, 1).unwrap().stored);
    assert!(!go(1, 2).unwrap().stored);
    assert_eq!(go(2, 1), Err(Refused::OutOfMemoryBudget));
}

#[test]
fn sync_decisions_follow_opentracker() {
    let s = Store::new(StoreConfig::default());
    let h = hash(4);
    let go = |last: u8, seeding: bool, event: Event, now: u32| {
        s.announce(
            &ann(h, last, 1, seeding, event),
            Want::Both(0),
            now,
            &mut Rng::new(1),
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap()
        .sync
    };
    assert!(go(1, false, Event::Started, 0), "new peer");
    assert!(!go(1, false, Event::None, 60), "fresh re-announce");
    assert!(go(1, true, Event::Completed, 120), "completion");
    assert!(
        !go(1, true, Event::None, 300),
        "within 10 minutes of the last one"
    );
    assert!(go(1, true, Event::None, 300 + 660), "older than 10 minutes");
    assert!(
        go(9, false, Event::Stopped, 1000),
        "every stop, even unknown peers"
    );
}

#[test]
fn synced_peers_are_stored_without_reply_and_stop_removes_them() {
    let s = Store::new(StoreConfig::default());
    let h = hash(5);
    assert!(s.apply_sync(
        &SyncedPeer {
            info_hash: h,
            addr: PeerAddr::V4([1, 2, 3, 4]),
            port: 80,
            seeding: true,
            completed: true,
            stopped: false
        },
        10
    ));
    assert!(s.apply_sync(
        &SyncedPeer {
            info_hash: h,
            addr: PeerAddr::V6([7; 16]),
            port: 81,
            seeding: false,
            completed: false,
            stopped: false
        },
        10
    ));
    assert_eq!(
        s.scrape(&h),
        Some(Counts {
            seeders: 1,
            leechers: 1,
            downloaded: 1
        })
    );
    let mut flags = 0;
    s.peers_in_shard(
        usize::from(h.0[0]) << 4 | usize::from(h.0[1] >> 4),
        |_, p4, _| flags = p4.iter().next().map_or(0, |p| p.flags()),
    );
    assert_eq!(flags & FLAG_FROM_SYNC, FLAG_FROM_SYNC);
    assert!(s.apply_sync(
        &SyncedPeer {
            info_hash: h,
            addr: PeerAddr::V4([1, 2, 3, 4]),
            port: 80,
            seeding: false,
            completed: false,
            stopped: true
        },
        11
    ));
    assert!(
        !s.apply_sync(
            &SyncedPeer {
                info_hash: h,
                addr: PeerAddr::V4([1, 2, 3, 4]),
                port: 80,
                seeding: false,
                completed: false,
                stopped: true
            },
            11
        ),
        "already gone"
    );
    assert_eq!(s.scrape(&h).map(|c| (c.seeders, c.leechers)), Some((0, 1)));
    let t = s.totals();
    assert_eq!((t.peers4, t.peers6, t.seeders), (0, 1, 0));
}

#[test]
fn shard_hint_follows_its_table_and_hot_fields_share_a_line() {
    let s = Store::new(StoreConfig::default());
    // Hashes 0..40 all land in shard 0 (the top 12 bits are zero): the table grows.
    for n in 0..40u32 {
        run(
            &s,
            &ann(hash(n), 1, 1000, false, Event::Started),
            Want::SameFamily(5),
            100,
        );
        // Prefetching changes nothing, whatever the batch holds.
        s.prefetch(&[hash(n), hash(n + 1), hash(u32::MAX)]);
        let p = &s.shards[0];
        let base = p as *const Padded as usize;
        let g = p.lock();
        let (addr, mask) = g.torrents.hint();
        let hint = p.hint.load(Relaxed);
        assert_eq!((hint & !63, (1usize << (hint & 63)) - 1), (addr, mask));
        assert_eq!(g.torrents.len(), n as usize + 1);
        let end = |f: usize, size: usize| f - base + size;
        assert!(
            end(
                &g.counts as *const _ as usize,
                core::mem::size_of::<ShardCounts>()
            ) <= 64
        );
        // The table's header (slot array pointer and length) ends the first line; its inline
        // torrent is the second; nothing spills past the pair.
        assert!(end(&g.torrents as *const _ as usize, 24) <= 64);
        assert_eq!(core::mem::size_of::<Padded>(), 128);
    }
    assert_eq!(s.totals().peers4, 40);
    s.sweep_all(100 + 10 * 86_400);
    assert_eq!(
        s.shards[0].hint.load(Relaxed),
        0,
        "an emptied table is freed"
    );
}

#[test]
fn a_walk_in_slices_sees_each_torrent_once_and_restarts_when_entries_move() {
    let s = Store::new(StoreConfig::default());
    // All in shard 0; 100 leaves the table at 256 slots with room to spare.
    for n in 0..100u32 {
        run(
            &s,
            &ann(hash(n), 1, 1000, false, Event::Started),
            Want::SameFamily(0),
            100,
        );
    }
    let walk_all = |slice: usize| {
        let mut w = ShardWalk::default();
        let mut seen = Vec::new();
        loop {
            match s.walk_shard(0, &mut w, slice, |h, c, last| {
                assert_eq!(c.leechers, 1);
                assert!(last >= 100);
                seen.push(*h);
            }) {
                WalkStep::More => {}
                WalkStep::Done => break,
                WalkStep::Restarted => unreachable!("nothing changes"),
            }
        }
        seen.sort_unstable_by_key(|h| h.0);
        seen
    };
    let want: Vec<InfoHash> = (0..100).map(hash).collect();
    for slice in [1, 5, 64, 10_000] {
        assert_eq!(walk_all(slice), want, "slice {slice}");
    }
    // A walk over an empty shard is one step.
    let mut w = ShardWalk::default();
    assert_eq!(
        s.walk_shard(7, &mut w, 1, |_, _, _| panic!()),
        WalkStep::Done
    );

    // A new torrent that fits leaves the others where they are: no restart.
    let mut w = ShardWalk::default();
    assert_eq!(s.walk_shard(0, &mut w, 10, |_, _, _| {}), WalkStep::More);
    run(
        &s,
        &ann(hash(100), 1, 1000, false, Event::Started),
        Want::SameFamily(0),
        100,
    );
    assert_eq!(s.walk_shard(0, &mut w, 10, |_, _, _| {}), WalkStep::More);
    // Growing the table moves every entry: the walk starts over.
    for n in 101..300u32 {
        run(
            &s,
            &ann(hash(n), 1, 1000, false, Event::Started),
            Want::SameFamily(0),
            100,
        );
    }
    assert_eq!(
        s.walk_shard(0, &mut w, 10, |_, _, _| panic!("nothing is visited")),
        WalkStep::Restarted
    );
    assert_eq!(w.position(), 0);
    assert_eq!(s.walk_shard(0, &mut w, 10, |_, _, _| {}), WalkStep::More);
    // So does a sweep that removes torrents (the table is rebuilt).
    run(
        &s,
        &ann(hash(5), 1, 1000, false, Event::Stopped),
        Want::SameFamily(0),
        100,
    );
    let later = 100 + 45 * 60;
    for n in (0..300u32).filter(|&n| n != 5) {
        run(
            &s,
            &ann(hash(n), 1, 1000, false, Event::None),
            Want::SameFamily(0),
            later,
        );
    }
    assert_eq!(s.sweep_shard(0, later).torrents, 1);
    assert_eq!(
        s.walk_shard(0, &mut w, 10, |_, _, _| {}),
        WalkStep::Restarted
    );
    assert_eq!(walk_all(50).len(), 299);
}

#[test]
fn torrent_entry_is_one_cache_line() {
    assert_eq!(core::mem::size_of::<Torrent>(), 64);
    assert_eq!(slot_bytes::<Torrent>(), 64);
}

#[test]
fn split_matches_opentracker() {
    assert_eq!(split_amount(3, 1, 1), (0, 1));
    assert_eq!(split_amount(3, 1, 10), (3, 1));
    let (a4, a6) = split_amount(1000, 1000, 50);
    assert_eq!(a4 + a6, 50);
    let (a4, a6) = split_amount(1000, 5, 50);
    assert_eq!((a4, a6), (45, 5));
}

#[test]
fn expiry_with_injected_clock() {
    let s = Store::new(StoreConfig {
        peer_timeout: 60,
        torrent_timeout: 600,
        ..StoreConfig::default()
    });
    let (h1, h2) = (hash(1), hash(0xffff_0000));
    run(&s, &ann(h1, 1, 1, false, Event::None), Want::Both(0), 1000);
    run(
        &s,
        &ann(h2, 1, 1, true, Event::Completed),
        Want::Both(0),
        1000,
    );
    run(&s, &ann(h1, 2, 1, false, Event::None), Want::Both(0), 1040);
    assert_eq!(s.sweep_all(1050), Swept::default());
    // Peer 1 of h1 and the seeder of h2 time out; h1 keeps peer 2.
    let sw = s.sweep_all(1061);
    assert_eq!(sw.peers, 2);
    assert_eq!(s.scrape(&h1).map(|c| c.leechers), Some(1));
    // h2 keeps its download count with no peers until the torrent timeout.
    assert_eq!(
        s.scrape(&h2),
        Some(Counts {
            seeders: 0,
            leechers: 0,
            downloaded: 1
        })
    );
    let sw = s.sweep_all(1101);
    assert_eq!(
        sw,
        Swept {
            peers: 1,
            torrents: 1
        },
        "h1 empty and idle with no downloads"
    );
    assert_eq!(s.scrape(&h1), None);
    assert!(s.scrape(&h2).is_some());
    s.sweep_all(1000 + 600);
    assert_eq!(s.scrape(&h2), None);
    assert_eq!(s.totals(), Totals::default());
}

#[test]
fn long_timeouts_never_wrap() {
    // 3 h timeout: stamps are in ticks of 108 s; sweeping every interval keeps them honest.
    let s = Store::new(StoreConfig {
        peer_timeout: 3 * 3600,
        torrent_timeout: 86400,
        ..StoreConfig::default()
    });
    let h = hash(5);
    run(&s, &ann(h, 1, 1, false, Event::None), Want::Both(0), 0);
    let step = s.sweep_interval_secs();
    let mut now = 0;
    while now + step < 3 * 3600 - 200 {
        now += step;
        assert_eq!(s.sweep_all(now).peers, 0, "at {now}");
    }
    let mut gone = 0;
    while now < 3 * 3600 + 300 {
        now += step;
        gone += s.sweep_all(now).peers;
    }
    assert_eq!(gone, 1);
}
