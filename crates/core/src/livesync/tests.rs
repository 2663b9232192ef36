//! What is sent, when it is flushed, and what a receiver accepts.

use super::*;
use crate::access::Access;
use crate::config::Config;
use crate::nets::Net;
use crate::tracker::Tracker;
use ferrotracker_swarm::{Announce, PeerAddr, Rng, Want};
use std::net::Ipv4Addr;
use std::sync::Arc;

const NOW: u32 = 1_700_000_000;

fn rules(id: u32, key: Option<&[u8]>) -> SyncRules {
    let mut nodes = Nets::default();
    nodes.push(Net::parse("10.0.0.0/24").unwrap());
    SyncRules {
        tracker_id: id,
        nodes,
        key: key.map(Key::new),
        flush_delay: 15,
        window: 120,
    }
}

fn entry(n: u8, flags: u8) -> Entry {
    Entry {
        info_hash: InfoHash([n; 20]),
        ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)),
        port: 6881,
        flags,
    }
}

fn node() -> IpAddr {
    "10.0.0.2".parse().unwrap()
}

fn peers(t: &Tracker, h: InfoHash) -> usize {
    t.store
        .scrape(&h)
        .map_or(0, |c| (c.seeders + c.leechers) as usize)
}

#[test]
fn flush_rules_full_packet_or_delay() {
    let mut a = LiveSync::new(rules(1, None));
    let sent = std::cell::RefCell::new(Vec::<Vec<u8>>::new());
    let mut send = |d: &[u8]| {
        sent.borrow_mut().push(d.to_vec());
        0
    };
    for n in 0..51 {
        a.queue(&entry(n, 0), NOW, &mut send);
    }
    a.tick(NOW + 14, &mut send);
    assert!(
        sent.borrow().is_empty(),
        "51 entries younger than 15 s wait"
    );
    a.queue(&entry(51, 0), NOW + 14, &mut send);
    assert_eq!(sent.borrow().len(), 1, "the 52nd entry fills the packet");
    assert_eq!(sent.borrow()[0].len(), 8 + 52 * 28);
    a.queue(&entry(60, 0), NOW + 20, &mut send);
    a.tick(NOW + 34, &mut send);
    assert_eq!(sent.borrow().len(), 1);
    a.tick(NOW + 35, &mut send);
    assert_eq!(sent.borrow().len(), 2, "flushed 15 s after its first entry");
    assert_eq!(a.pending(), 0);
    assert_eq!(a.counters.packets_sent, 2);
    assert_eq!(a.counters.peers_sent, 53);
}

#[test]
fn receive_applies_and_refuses() {
    let t = Tracker::new(&Config::default(), Arc::new(Access::open()), 0, [1; 16]);
    let mut b = LiveSync::new(rules(2, None));
    let mut a = LiveSync::new(rules(1, None));
    let mut out = Vec::new();
    a.queue(&entry(1, sync::FLAG_SEEDING), NOW, &mut |_| 0);
    a.flush(NOW, &mut |d| {
        out = d.to_vec();
        0
    });
    assert_eq!(b.receive(&out, node(), &t.store, &t.access, NOW), Ok(1));
    assert_eq!(peers(&t, InfoHash([1; 20])), 1);
    assert_eq!(b.counters.peers_received, 1);
    // Not a node; our own echo; garbage.
    assert_eq!(
        b.receive(&out, "10.0.1.1".parse().unwrap(), &t.store, &t.access, NOW),
        Err(Refusal::Source)
    );
    let mut own = LiveSync::new(rules(2, None));
    own.queue(&entry(2, 0), NOW, &mut |_| 0);
    let mut echo = Vec::new();
    own.flush(NOW, &mut |d| {
        echo = d.to_vec();
        0
    });
    assert_eq!(
        b.receive(&echo, node(), &t.store, &t.access, NOW),
        Err(Refusal::Echo)
    );
    assert!(matches!(
        b.receive(&[0; 9], node(), &t.store, &t.access, NOW),
        Err(Refusal::Malformed(_))
    ));
    // Stopped removes it.
    a.queue(&entry(1, sync::FLAG_STOPPED), NOW, &mut |_| 0);
    a.flush(NOW, &mut |d| {
        out = d.to_vec();
        0
    });
    assert_eq!(b.receive(&out, node(), &t.store, &t.access, NOW), Ok(1));
    assert_eq!(peers(&t, InfoHash([1; 20])), 0);
    let c = b.counters;
    assert_eq!(
        (c.refused_source, c.refused_echo, c.refused_malformed),
        (1, 1, 1)
    );
    assert_eq!((c.packets_received, c.peers_received), (2, 2));
}

#[test]
fn keyed_nodes_refuse_plain_and_wrong_key() {
    let t = Tracker::new(&Config::default(), Arc::new(Access::open()), 0, [1; 16]);
    let mut b = LiveSync::new(rules(2, Some(b"sixteen byte key")));
    for (key, want) in [
        (None, Err(Refusal::Mac)),
        (Some(&b"another key 1234"[..]), Err(Refusal::Mac)),
        (Some(&b"sixteen byte key"[..]), Ok(1)),
    ] {
        let mut a = LiveSync::new(rules(1, key));
        let mut out = Vec::new();
        a.queue(&entry(3, 0), NOW, &mut |_| 0);
        a.flush(NOW, &mut |d| {
            out = d.to_vec();
            0
        });
        assert_eq!(b.receive(&out, node(), &t.store, &t.access, NOW), want);
        if key.is_some() {
            assert!(out.len() <= sync::MAX_PACKET);
        }
    }
    // A replay from long ago.
    let mut a = LiveSync::new(rules(1, Some(b"sixteen byte key")));
    let mut out = Vec::new();
    a.queue(&entry(4, 0), NOW - 600, &mut |_| 0);
    a.flush(NOW - 600, &mut |d| {
        out = d.to_vec();
        0
    });
    assert_eq!(
        b.receive(&out, node(), &t.store, &t.access, NOW),
        Err(Refusal::Stale)
    );
    assert_eq!((b.counters.refused_mac, b.counters.refused_stale), (2, 1));
}

#[test]
fn oversize_refused_before_reading() {
    let t = Tracker::new(&Config::default(), Arc::new(Access::open()), 0, [1; 16]);
    let mut b = LiveSync::new(rules(2, None));
    // 54 whole IPv4 entries: parse() alone would take it.
    let mut d = vec![9, 9, 9, 9, 0, 0, 0, 0];
    for n in 0..54 {
        sync::encode_entry(&mut d, &entry(n, 0));
    }
    assert!(d.len() > sync::MAX_PACKET && sync::parse(&d).is_ok());
    assert_eq!(
        b.receive(&d, node(), &t.store, &t.access, NOW),
        Err(Refusal::Oversize)
    );
    assert_eq!(peers(&t, InfoHash([0; 20])), 0);
    // Exactly MAX_PACKET passes the size check (and then fails as partial entries).
    d.truncate(sync::MAX_PACKET);
    assert!(matches!(
        b.receive(&d, node(), &t.store, &t.access, NOW),
        Err(Refusal::Malformed(_))
    ));
    // A stranger's is refused for its source first.
    d.resize(4000, 0);
    assert_eq!(
        b.receive(&d, "10.0.1.1".parse().unwrap(), &t.store, &t.access, NOW),
        Err(Refusal::Source)
    );
    let c = b.counters;
    assert_eq!(
        (c.refused_oversize, c.refused_malformed, c.refused_source),
        (1, 1, 1)
    );
}

/// One keyed packet from node 1 with entry `n` (flags `flags`), sent at `at`.
fn keyed(n: u8, flags: u8, at: u32) -> Vec<u8> {
    let mut a = LiveSync::new(rules(1, Some(b"sixteen byte key")));
    let mut out = Vec::new();
    a.queue(&entry(n, flags), at, &mut |_| 0);
    a.flush(at, &mut |d| {
        out = d.to_vec();
        0
    });
    out
}

#[test]
fn replayed_keyed_packet_refused_within_the_window() {
    let t = Tracker::new(&Config::default(), Arc::new(Access::open()), 0, [1; 16]);
    let mut b = LiveSync::new(rules(2, Some(b"sixteen byte key")));
    let add = keyed(5, 0, NOW);
    let stop = keyed(5, sync::FLAG_STOPPED, NOW + 1);
    assert_eq!(b.receive(&add, node(), &t.store, &t.access, NOW), Ok(1));
    assert_eq!(
        b.receive(&stop, node(), &t.store, &t.access, NOW + 2),
        Ok(1)
    );
    assert_eq!(peers(&t, InfoHash([5; 20])), 0);
    // The add again, at any time its timestamp still passes: refused, the peer stays gone.
    // From another node's address too: the sender is the id the key vouches for.
    let other: IpAddr = "10.0.0.3".parse().unwrap();
    for (at, from) in [(NOW + 2, node()), (NOW + 60, other), (NOW + 120, node())] {
        assert_eq!(
            b.receive(&add, from, &t.store, &t.access, at),
            Err(Refusal::Replay)
        );
    }
    assert_eq!(peers(&t, InfoHash([5; 20])), 0);
    // Past the window it is stale (and the tag may go).
    assert_eq!(
        b.receive(&add, node(), &t.store, &t.access, NOW + 121),
        Err(Refusal::Stale)
    );
    assert_eq!(
        (b.counters.refused_replay, b.counters.refused_stale),
        (3, 1)
    );
    // A plain cluster has no tags to compare: the same bytes apply again (opentracker's).
    let mut plain = LiveSync::new(rules(2, None));
    let mut a = LiveSync::new(rules(1, None));
    let mut out = Vec::new();
    a.queue(&entry(6, 0), NOW, &mut |_| 0);
    a.flush(NOW, &mut |d| {
        out = d.to_vec();
        0
    });
    assert_eq!(plain.receive(&out, node(), &t.store, &t.access, NOW), Ok(1));
    assert_eq!(plain.receive(&out, node(), &t.store, &t.access, NOW), Ok(1));
}

#[test]
fn replay_guard_forgets_by_time_and_when_full_raises_a_floor() {
    let tag = |n: u8| [n; TAG];
    let mut g = ReplayGuard::new(3, 4, 120);
    assert!(g.admit(1, 1000, tag(1), 1000));
    assert!(!g.admit(1, 1000, tag(1), 1100));
    assert!(g.admit(1, 1001, tag(2), 1100));
    // A window after it came the first tag is forgotten (open() refuses its copy as stale).
    assert!(g.admit(1, 1100, tag(3), 1121));
    assert_eq!(g.len(), 2);
    // Full: the tag that came first goes, and nothing its sender sent at or before it
    // passes any more, a new tag included.
    assert!(g.admit(1, 1101, tag(4), 1121));
    assert!(g.admit(1, 1102, tag(5), 1121));
    assert_eq!(g.len(), 3);
    assert!(
        !g.admit(1, 1001, tag(2), 1121),
        "forgotten, but below the floor"
    );
    assert!(!g.admit(1, 1001, tag(6), 1121), "new, but below the floor");
    assert!(g.admit(1, 1103, tag(7), 1121));
    assert!(!g.admit(1, 1101, tag(4), 1121));
    // The floor is sender 1's alone.
    assert!(g.admit(2, 1001, tag(8), 1121));
    // Genuine traffic at 16 packets a second, 30 times what 64 tags cover in 120 s: memory
    // stays bounded, every copy is refused, and packets on time still pass (the floor is 4 s
    // behind).
    let mut g = ReplayGuard::new(64, 4, 120);
    for i in 0..10_000u32 {
        let now = 5000 + i / 16;
        let mut t = [0u8; TAG];
        t[..4].copy_from_slice(&i.to_be_bytes());
        assert!(g.admit(1, now.into(), t, now), "packet {i}");
        assert!(!g.admit(1, now.into(), t, now), "copy of {i}");
        assert!(g.len() <= 64);
    }
}

/// Three nodes, one with its clock 100 s ahead of ours, one 100 s behind, one on time, and
/// more packets than the guard holds: each node's packets pass while every copy of any of
/// them still within the window is refused. (With one floor for all, the node ahead would
/// raise it past everything the node behind sends.)
#[test]
fn replay_floors_follow_each_senders_clock() {
    let mut g = ReplayGuard::new(64, 4, 120);
    let skews = [100i64, -100, 0];
    let mut sent_log = Vec::new();
    let mut now = 0;
    for i in 0..10_000u32 {
        now = 5000 + i / 16;
        let sender = i % 3;
        let sent = (i64::from(now) + skews[sender as usize]) as u64;
        let mut t = [0u8; TAG];
        t[..4].copy_from_slice(&i.to_be_bytes());
        assert!(g.admit(sender, sent, t, now), "packet {i} of node {sender}");
        assert!(!g.admit(sender, sent, t, now), "copy of {i}");
        assert!(g.len() <= 64);
        sent_log.push((sender, sent, t));
    }
    let mut replayed = 0;
    for &(sender, sent, t) in &sent_log {
        // What open() lets through to the guard.
        if sent.abs_diff(u64::from(now)) <= 120 {
            assert!(!g.admit(sender, sent, t, now), "replay of {t:?}");
            replayed += 1;
        }
    }
    assert!(replayed > 1900, "{replayed}");
}

/// A tag from a node whose clock runs ahead goes a window after it came, like the others
/// (its copy would pass open() for longer: its sender's floor covers it), so it holds no
/// room for the tags that came after it.
#[test]
fn replay_guard_never_waits_on_a_clock_ahead() {
    let mut g = ReplayGuard::new(2, 4, 120);
    assert!(g.admit(1, 1100, [1; TAG], 1000));
    assert!(g.admit(2, 1000, [2; TAG], 1000));
    assert!(g.admit(2, 1121, [3; TAG], 1121));
    assert_eq!(g.len(), 1, "both that came at 1000 are forgotten");
    assert!(
        !g.admit(1, 1100, [1; TAG], 1121),
        "its copy is not yet stale"
    );
    assert!(!g.admit(1, 1099, [4; TAG], 1121), "older than the floor");
    assert!(g.admit(1, 1221, [5; TAG], 1121));
    assert!(g.admit(2, 1121, [6; TAG], 1121), "node 2 has no floor");
}

#[test]
fn replay_guard_bounds_its_senders() {
    let tag = |n: u8| [n; TAG];
    let mut g = ReplayGuard::new(1, 2, 120);
    assert!(g.admit(1, 1000, tag(1), 1000));
    assert!(g.admit(2, 1000, tag(2), 1000));
    assert!(g.admit(3, 1000, tag(3), 1000));
    // Two senders have floors; the third's goes to the one floor for all.
    assert!(g.admit(1, 1001, tag(4), 1000));
    assert_eq!((g.floors.len(), g.overflow), (2, Some(1000)));
    for (sender, t) in [(1, 1), (2, 2), (3, 3)] {
        assert!(!g.admit(sender, 1000, tag(t), 1000), "replay of {t}");
    }
    assert!(!g.admit(4, 1000, tag(5), 1000));
    assert!(g.admit(4, 1002, tag(6), 1000));
    // A window later the floors are stale and make room.
    assert!(g.admit(5, 1200, tag(7), 1200));
    assert!(g.admit(6, 1200, tag(8), 1200));
    assert_eq!((g.floors.len(), g.overflow), (1, None));
    assert!(!g.admit(5, 1200, tag(9), 1200));
}

/// The tables are made once: however many tags come and go (leaving hashbrown tombstones),
/// they never grow past what `new` made.
#[test]
fn replay_guard_memory_is_fixed_at_the_start() {
    let mut g = ReplayGuard::new(REPLAY_TAGS, REPLAY_SENDERS, 120);
    let (seen, order, floors) = (g.seen.capacity(), g.order.capacity(), g.floors.capacity());
    assert!(seen >= 2 * REPLAY_TAGS && order >= REPLAY_TAGS);
    for i in 0..4 * REPLAY_TAGS as u32 {
        let now = 5000 + i / 1000;
        let mut t = [0u8; TAG];
        t[..4].copy_from_slice(&i.to_be_bytes());
        assert!(g.admit(i % 7, now.into(), t, now));
    }
    assert_eq!(g.len(), REPLAY_TAGS);
    assert!(g.seen.capacity() <= seen, "{} > {seen}", g.seen.capacity());
    assert_eq!(g.order.capacity(), order);
    assert!(g.floors.capacity() <= floors);
}

#[test]
fn announces_sync_by_opentracker_rules() {
    let t = Tracker::new(&Config::default(), Arc::new(Access::open()), 0, [1; 16]);
    let h = InfoHash([9; 20]);
    let mut rng = Rng::new(1);
    let (mut o4, mut o6) = (Vec::new(), Vec::new());
    let mut announce = |ip: [u8; 4], event: Event, now: u32| {
        let a = Announce {
            info_hash: h,
            addr: PeerAddr::V4(ip),
            port: 1,
            seeding: true,
            event,
        };
        t.store
            .announce(&a, Want::Both(0), now, &mut rng, &mut o4, &mut o6)
            .unwrap()
            .sync
    };
    assert!(announce([1, 1, 1, 1], Event::Started, NOW), "new peer");
    assert!(
        !announce([1, 1, 1, 1], Event::None, NOW + 60),
        "re-announce"
    );
    assert!(announce([1, 1, 1, 1], Event::Stopped, NOW + 60), "stopped");
    let e = entry_for(
        h,
        "::ffff:1.2.3.4".parse().unwrap(),
        1,
        true,
        Event::Completed,
    );
    assert_eq!(e.ip, IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)));
    assert_eq!(e.flags, sync::FLAG_SEEDING | sync::FLAG_COMPLETED);
    assert_eq!(
        entry_for(h, e.ip, 1, false, Event::Stopped).flags,
        sync::FLAG_STOPPED
    );
}

#[test]
fn handoff_bounds_and_drains() {
    let h = Handoff::new(3);
    let mut v = vec![entry(1, 0), entry(2, 0)];
    assert_eq!(h.give(0, &mut v), 0);
    assert!(v.is_empty());
    let mut v = vec![entry(3, 0), entry(4, 0)];
    assert_eq!(
        h.give(HANDOFF_SLOTS, &mut v),
        1,
        "slot 0 again: one did not fit"
    );
    assert!(v.is_empty());
    let mut v = vec![entry(5, 0)];
    assert_eq!(h.give(1, &mut v), 0);
    let mut all = Vec::new();
    h.take(&mut all);
    assert_eq!(all.len(), 4);
    h.take(&mut all);
    assert_eq!(all.len(), 4);
}
