//! Unit tests of the peer lists: both forms against a model, limits, growth and selection.

use super::chunks::max_run;
use super::list::Repr;
use super::*;
use crate::Rng;

fn p4(last: u8, port: u16, flags: u8) -> Peer4 {
    let mut p = Peer4::new([10, 0, 0, last], port);
    p.set_flags_stamp(flags, 0);
    p
}

#[test]
fn sizes_match_opentracker() {
    assert_eq!(core::mem::size_of::<Peer4>(), 8);
    assert_eq!(core::mem::size_of::<Peer6>(), 20);
    assert_eq!(core::mem::size_of::<PeerList<Peer4>>(), 24);
}

#[test]
fn upsert_keeps_sorted_and_counts_seeders() {
    let mut l = PeerList::<Peer4>::default();
    for i in (0..50u8).rev() {
        assert!(
            l.upsert(p4(i, 1, if i % 2 == 0 { FLAG_SEEDING } else { 0 }))
                .was_new
        );
    }
    assert_eq!(l.len(), 50);
    assert_eq!(l.seeders(), 25);
    let v: Vec<Peer4> = l.peers().iter().copied().collect();
    assert!(v.windows(2).all(|w| w[0].key() < w[1].key()));
    // Same address+port refreshes, and seeding transitions adjust the count.
    let u = l.upsert(p4(1, 1, FLAG_SEEDING));
    assert!(!u.was_new);
    assert_eq!(l.seeders(), 26);
    l.upsert(p4(0, 1, 0));
    assert_eq!(l.seeders(), 25);
    // Another port is another peer.
    assert!(l.upsert(p4(0, 2, 0)).was_new);
    assert_eq!(l.len(), 51);
}

#[test]
fn lazy_list_allocates_only_when_used() {
    assert_eq!(core::mem::size_of::<LazyPeerList<Peer6>>(), 8);
    let mut l = LazyPeerList::<Peer6>::default();
    assert_eq!(l.capacity_bytes(), 0);
    let mut p = Peer6::new([1; 16], 5);
    p.set_flags_stamp(FLAG_SEEDING, 1);
    assert!(l.upsert(p).was_new);
    assert_eq!((l.len(), l.seeders(), l.leechers()), (1, 1, 0));
    assert!(l.capacity_bytes() > 0);
    assert_eq!(l.expire(2, 1), (1, 1));
    assert_eq!(l.capacity_bytes(), 0);
    l.upsert(p);
    assert_eq!(l.remove(p.key()), Some(FLAG_SEEDING));
    assert_eq!(l.capacity_bytes(), 0);
    assert_eq!(l.remove(p.key()), None);
}

#[test]
fn growth_keeps_slack_small() {
    let mut l = PeerList::<Peer4>::default();
    for i in 0..1000u16 {
        let mut p = Peer4::new([1, 2, (i >> 8) as u8, i as u8], 1);
        p.set_flags_stamp(0, 0);
        l.upsert(p);
        let cap = l.capacity_bytes() / 8;
        assert!(
            cap >= l.len() && (cap <= 10 || cap * 8 <= l.len() * 9 + 16),
            "{} in {cap}",
            l.len()
        );
        if l.len() > 400 {
            assert!(cap * 32 <= l.len() * 33 + 64, "{} in {cap}", l.len());
        }
        if l.len() > 700 {
            assert!(cap * 64 <= l.len() * 65 + 128, "{} in {cap}", l.len());
        }
    }
}

fn len_limit(max_len: usize) -> Limits {
    Limits {
        max_len,
        ..Limits::NONE
    }
}

#[test]
fn bounded_upsert_refreshes_but_does_not_grow() {
    let mut l = PeerList::<Peer4>::default();
    assert!(l.upsert_bounded(p4(1, 1, 0), len_limit(2)).is_ok());
    assert!(l.upsert_bounded(p4(2, 1, 0), len_limit(2)).is_ok());
    assert_eq!(
        l.upsert_bounded(p4(3, 1, 0), len_limit(2)),
        Err(NotAdded::ListFull)
    );
    let u = l
        .upsert_bounded(p4(1, 1, FLAG_SEEDING), len_limit(2))
        .unwrap();
    assert!(!u.was_new);
    assert_eq!((l.len(), l.seeders()), (2, 1));
    let mut lazy = LazyPeerList::<Peer6>::default();
    assert_eq!(
        lazy.upsert_bounded(Peer6::new([1; 16], 1), len_limit(0)),
        Err(NotAdded::ListFull)
    );
    assert_eq!(
        lazy.capacity_bytes(),
        0,
        "a refused first peer allocates nothing"
    );
}

#[test]
fn completed_is_sticky() {
    let mut l = PeerList::<Peer4>::default();
    l.upsert(p4(1, 1, FLAG_SEEDING | FLAG_COMPLETED));
    let u = l.upsert(p4(1, 1, FLAG_SEEDING));
    assert_eq!(u.old_flags & FLAG_COMPLETED, FLAG_COMPLETED);
    assert_eq!(u.new_flags & FLAG_COMPLETED, FLAG_COMPLETED);
}

#[test]
fn remove_and_shrink() {
    let mut l = PeerList::<Peer4>::default();
    for i in 0..100u8 {
        l.upsert(p4(i, 1, FLAG_SEEDING));
    }
    for i in 0..95u8 {
        assert_eq!(l.remove(p4(i, 1, 0).key()), Some(FLAG_SEEDING));
    }
    assert_eq!(l.remove(p4(0, 1, 0).key()), None);
    assert_eq!(l.len(), 5);
    assert_eq!(l.seeders(), 5);
    assert!(l.capacity_bytes() <= 8 * 10, "{}", l.capacity_bytes());
    for i in 95..100u8 {
        l.remove(p4(i, 1, 0).key());
    }
    assert_eq!(l.capacity_bytes(), 0);
}

#[test]
fn expire_by_stamp_with_wraparound() {
    let mut l = PeerList::<Peer4>::default();
    let mut a = Peer4::new([1, 1, 1, 1], 1);
    a.set_flags_stamp(FLAG_SEEDING, 250);
    let mut b = Peer4::new([1, 1, 1, 2], 1);
    b.set_flags_stamp(0, 4);
    l.upsert(a);
    l.upsert(b);
    // now = 5: a is 11 ticks old (wrapped), b is 1 tick old.
    assert_eq!(l.expire(5, 10), (1, 1));
    assert_eq!(l.len(), 1);
    assert_eq!(l.seeders(), 0);
    assert_eq!(l.expire(14, 10), (1, 0));
    assert!(l.is_empty());
}

#[test]
fn selection_is_distinct_and_bounded() {
    let mut l = PeerList::<Peer4>::default();
    for i in 0..200u8 {
        l.upsert(p4(i, 7, 0));
    }
    let mut rng = Rng::new(1);
    let mut out = Vec::new();
    l.select_into(50, &mut rng, &mut out);
    assert_eq!(out.len(), 50 * 6);
    let mut seen: Vec<&[u8]> = out.chunks(6).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 50);
    out.clear();
    l.select_into(500, &mut rng, &mut out);
    assert_eq!(out.len(), 200 * 6);
}

/// A list's internal invariants: sorted, counted, and (chunked) runs within bounds with
/// their first keys indexed.
fn check<P: PeerRecord>(l: &PeerList<P>) {
    let v: Vec<P> = l.peers().iter().copied().collect();
    assert_eq!(v.len(), l.len());
    assert!(v.windows(2).all(|w| w[0].key() < w[1].key()), "sorted");
    let seeders = v.iter().filter(|p| p.flags() & FLAG_SEEDING != 0).count();
    assert_eq!(seeders as u32, l.seeders());
    match &l.repr {
        Repr::Flat(slots) => assert!(slots.len() >= l.len()),
        Repr::Chunked(c) => {
            assert_eq!(c.firsts.len(), c.runs.len());
            for (f, r) in c.firsts.iter().zip(&c.runs) {
                assert!(!r.is_empty() && r.len() <= max_run::<P>());
                assert_eq!(*f, r[0].key());
            }
            // The size tree finds every record by its index.
            let mut i = 0;
            for (run, r) in c.runs.iter().enumerate() {
                for at in 0..r.len() {
                    assert_eq!(c.nth(i), (run, at), "record {i}");
                    i += 1;
                }
            }
            // Memory follows the records as a flat list's does (shrunk when under half
            // full), plus the index.
            let records = l.len() * core::mem::size_of::<P>();
            assert!(
                l.capacity_bytes() <= records * 2 + 64 * c.runs.len() + 4096,
                "{} for {records}",
                l.capacity_bytes()
            );
        }
    }
}

/// Drives a list and a `BTreeMap` model with the same random operations (inserts,
/// refreshes, removals, expiry, selections, per-address counts), through the flat form,
/// into the chunked form and back, and compares them all along.
fn against_model<P: PeerRecord + core::fmt::Debug>(make: impl Fn(&mut Rng) -> P, seed: u64) {
    use std::collections::BTreeMap;
    let mut rng = Rng::new(seed);
    let mut l = PeerList::<P>::default();
    let mut model: BTreeMap<P::Key, P> = BTreeMap::new();
    let mut was_chunked = false;
    let mut out = Vec::new();
    let steps = 40_000u32;
    for step in 0..steps {
        // Mostly inserts in the first half, mostly removals in the second.
        let grow = step < steps / 2;
        let roll = rng.below(100);
        let mut p = make(&mut rng);
        let flags = [0, FLAG_SEEDING, FLAG_SEEDING | FLAG_COMPLETED][rng.below(3) as usize];
        let stamp = (step / 500) as u8;
        p.set_flags_stamp(flags, stamp);
        if (grow && roll < 85) || (!grow && roll < 15) {
            let known = model.get(&p.key()).copied();
            let u = l.upsert(p);
            assert_eq!(u.was_new, known.is_none());
            let mut stored = p;
            if let Some(k) = known {
                assert_eq!(u.old_flags, k.flags());
                stored.set_flags_stamp(flags | (k.flags() & FLAG_COMPLETED), stamp);
            }
            model.insert(p.key(), stored);
        } else if roll < 99 {
            // Remove a peer that is there (picked through a selection) or one that is not.
            let key = match model.range(p.key()..).next() {
                Some((k, _)) if rng.below(2) == 0 => *k,
                _ => p.key(),
            };
            assert_eq!(l.remove(key), model.remove(&key).map(|q| q.flags()));
        } else {
            let timeout = 30;
            let now = stamp;
            let (removed, _) = l.expire(now, timeout);
            let before = model.len();
            model.retain(|_, q| now.wrapping_sub(q.stamp()) < timeout);
            assert_eq!(removed as usize, before - model.len());
        }
        was_chunked |= l.is_chunked();
        if step % 97 == 0 {
            check(&l);
            let got: Vec<P> = l.peers().iter().copied().collect();
            let want: Vec<P> = model.values().copied().collect();
            assert_eq!(got, want, "step {step}");
            // Per-address counts, capped, for an address that may or may not be there.
            let q = make(&mut rng);
            for cap in [1, 3, 50, 10_000] {
                let n = model.values().filter(|m| m.group() == q.group()).count();
                assert_eq!(l.count_address(&q, cap), n.min(cap), "cap {cap}");
            }
            // Selections are distinct members of the list.
            let members: std::collections::HashSet<&[u8]> =
                model.values().map(|m| m.wire()).collect();
            for amount in [1, 50, 200] {
                out.clear();
                l.select_into(amount, &mut rng, &mut out);
                let picked: Vec<&[u8]> = out.chunks(P::WIRE_LEN).collect();
                assert_eq!(picked.len(), amount.min(model.len()));
                let mut uniq = picked.clone();
                uniq.sort();
                uniq.dedup();
                assert_eq!(uniq.len(), picked.len(), "distinct");
                assert!(picked.iter().all(|w| members.contains(w)));
            }
        }
    }
    assert!(was_chunked, "the run reached the chunked form");
    assert!(!l.is_chunked(), "and went back to one slice");
    for k in model.keys().copied().collect::<Vec<_>>() {
        assert!(l.remove(k).is_some());
    }
    assert_eq!((l.len(), l.capacity_bytes()), (0, 0));
}

#[test]
fn v4_list_matches_a_model_through_both_forms() {
    // 8 addresses x 1024 ports: up to 8192 peers, groups spanning runs.
    against_model(
        |r| Peer4::new([10, 0, 0, r.below(8) as u8], r.below(1024) as u16),
        11,
    );
}

#[test]
fn v6_list_matches_a_model_through_both_forms() {
    // Four /64s, addresses inside them told apart by their last byte.
    against_model(
        |r| {
            let mut ip = [
                0x20,
                1,
                0xd,
                0xb8,
                0,
                0,
                0,
                r.below(4) as u8,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                0,
            ];
            ip[15] = r.below(4) as u8;
            Peer6::new(ip, r.below(700) as u16)
        },
        12,
    );
}

#[test]
fn per_address_limit_counts_the_ipv4_address_and_the_ipv6_64() {
    let lim = Limits {
        max_len: usize::MAX,
        max_per_address: 3,
    };
    let mut l = PeerList::<Peer4>::default();
    for port in 1..=3 {
        assert!(l.upsert_bounded(p4(1, port, 0), lim).is_ok());
    }
    assert_eq!(
        l.upsert_bounded(p4(1, 4, 0), lim),
        Err(NotAdded::AddressFull)
    );
    assert!(
        l.upsert_bounded(p4(1, 2, FLAG_SEEDING), lim).is_ok(),
        "known peers refresh"
    );
    assert!(
        l.upsert_bounded(p4(2, 4, 0), lim).is_ok(),
        "another address"
    );
    assert!(
        l.upsert_bounded(p4(0, 4, 0), lim).is_ok(),
        "a lower address"
    );
    l.remove(p4(1, 1, 0).key());
    assert!(l.upsert_bounded(p4(1, 4, 0), lim).is_ok(), "room again");

    let mut l6 = PeerList::<Peer6>::default();
    let in64 = |last: u8, port: u16| {
        let mut ip = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0];
        ip[15] = last;
        Peer6::new(ip, port)
    };
    for last in 1..=3 {
        assert!(l6.upsert_bounded(in64(last, 1), lim).is_ok());
    }
    assert_eq!(
        l6.upsert_bounded(in64(9, 1), lim),
        Err(NotAdded::AddressFull),
        "another address of the same /64"
    );
    let mut other = in64(9, 1);
    other.0[7] = 8;
    assert!(l6.upsert_bounded(other, lim).is_ok(), "the next /64");
}

#[test]
fn per_address_limit_holds_across_runs_of_a_chunked_list() {
    let lim = Limits {
        max_len: usize::MAX,
        max_per_address: 1000,
    };
    let mut l = PeerList::<Peer4>::default();
    // Neighbours on both sides, so the address's run boundaries fall inside its range.
    for port in 0..3000 {
        l.upsert(p4(1, port, 0));
        l.upsert(p4(3, port, 0));
    }
    for port in 0..1000 {
        assert!(l.upsert_bounded(p4(2, port * 7, 0), lim).is_ok());
    }
    assert!(l.is_chunked());
    if let Repr::Chunked(c) = &l.repr {
        let runs = c
            .runs
            .iter()
            .filter(|r| r.iter().any(|p| p.group() == p4(2, 0, 0).group()));
        assert!(runs.count() >= 3, "the address spans several runs");
    }
    assert_eq!(
        l.upsert_bounded(p4(2, 1, 0), lim),
        Err(NotAdded::AddressFull)
    );
    assert_eq!(
        l.upsert_bounded(p4(2, 65535, 0), lim),
        Err(NotAdded::AddressFull)
    );
    assert_eq!(l.count_address(&p4(2, 0, 0), usize::MAX), 1000);
    check(&l);
}

#[test]
fn selection_from_a_chunked_list_spreads_over_it() {
    let mut l = PeerList::<Peer4>::default();
    for i in 0..20_000u32 {
        l.upsert(Peer4::new(
            [10, (i >> 16) as u8, (i >> 8) as u8, i as u8],
            1,
        ));
    }
    assert!(l.is_chunked());
    let mut rng = Rng::new(5);
    let mut hits = [0u32; 10];
    let mut out = Vec::new();
    for _ in 0..200 {
        out.clear();
        l.select_into(50, &mut rng, &mut out);
        assert_eq!(out.len(), 50 * 6);
        for p in out.chunks(6) {
            let i = u32::from_be_bytes([0, p[1], p[2], p[3]]);
            hits[(i / 2000) as usize] += 1;
        }
    }
    // 10,000 picks over ten tenths of the list: each gets its share.
    assert!(hits.iter().all(|&h| (900..=1100).contains(&h)), "{hits:?}");
}

fn ws(id: u8, conn: u64, flags: u8) -> WsPeer {
    let mut p = WsPeer::new([id; 20], conn);
    p.set_flags_stamp(flags, 0);
    p
}

#[test]
fn ws_record_is_thirty_bytes_and_keeps_its_fields() {
    assert_eq!(core::mem::size_of::<WsPeer>(), 30);
    assert_eq!(core::mem::align_of::<WsPeer>(), 1);
    let mut p = WsPeer::new([7; 20], u64::MAX - 5);
    p.set_flags_stamp(FLAG_SEEDING, 9);
    assert_eq!(p.peer_id(), [7; 20]);
    assert_eq!(p.key(), [7; 20]);
    assert_eq!(p.wire(), &[7; 20]);
    assert_eq!(p.conn(), u64::MAX - 5);
    assert_eq!((p.flags(), p.stamp()), (FLAG_SEEDING, 9));
}

#[test]
fn get_and_remove_if_in_both_forms() {
    // Enough records to go chunked, then few enough to go back.
    let n = 3 * FLAT_MAX_BYTES / core::mem::size_of::<WsPeer>();
    let mut l = PeerList::<WsPeer>::default();
    for i in 0..n {
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(&(i as u64 * 7919 % n as u64).to_be_bytes());
        let mut p = WsPeer::new(id, i as u64 % 8);
        p.set_flags_stamp(if i % 2 == 0 { FLAG_SEEDING } else { 0 }, 0);
        assert!(l.upsert(p).was_new);
    }
    assert!(l.is_chunked());
    for i in [0u64, 1, n as u64 / 2, n as u64 - 1] {
        let mut id = [0u8; 20];
        id[..8].copy_from_slice(&i.to_be_bytes());
        assert_eq!(l.get(id).map(|p| p.peer_id()), Some(id));
    }
    assert_eq!(l.get([0xff; 20]), None);
    let seeders = l.seeders();
    let (gone, gone_seeds) = l.remove_if(|p| p.conn() != 0);
    let kept = n - gone as usize;
    assert_eq!(kept, n.div_ceil(8));
    assert_eq!(l.len(), kept);
    assert_eq!(l.seeders(), seeders - gone_seeds);
    assert!(l.peers().iter().all(|p| p.conn() == 0));
    assert!(!l.is_chunked(), "a list that shrank enough is flat again");
    let (gone, _) = l.remove_if(|_| true);
    assert_eq!((gone as usize, l.len(), l.capacity_bytes()), (kept, 0, 0));
}

#[test]
fn pick_with_gives_distinct_peers_at_most_amount() {
    let mut rng = Rng::new(3);
    for n in [0usize, 1, 5, 40, 3000] {
        let mut l = PeerList::<WsPeer>::default();
        for i in 0..n {
            let mut id = [0u8; 20];
            id[..4].copy_from_slice(&(i as u32).to_be_bytes());
            l.upsert(WsPeer::new(id, i as u64));
        }
        for amount in [0usize, 1, 3, 10, 5000] {
            let mut seen = std::collections::HashSet::new();
            l.pick_with(amount, &mut rng, |p| assert!(seen.insert(p.conn())));
            assert_eq!(seen.len(), amount.min(n), "n {n} amount {amount}");
        }
    }
    let mut l = LazyPeerList::<WsPeer>::default();
    l.pick_with(5, &mut rng, |_| panic!("empty"));
    l.upsert(ws(1, 1, 0));
    assert_eq!(l.get([1; 20]).map(WsPeer::conn), Some(1));
    assert_eq!(l.remove_if(|_| true), (1, 0));
    assert_eq!(l.capacity_bytes(), 0, "an emptied lazy list frees its box");
}
