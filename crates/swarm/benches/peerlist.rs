//! Microbenchmark of one peer list: insert, remove, refresh and select at a given size.
//!
//! `cargo bench -p ferrotracker-swarm --bench peerlist [-- SIZES]` (default: 100 2000 100000
//! 1000000 peers). For each size: fill the list in random order, then time churn (remove a
//! random peer, add a new one: what a large swarm does all day), refreshes of known peers, and
//! 50-peer selections, each the best of five rounds. Uses only the list's public API, so the same file runs against older
//! trees (`bench/attack_peers.sh` and bench/RESULTS.md compare with the flat-only list).
//! A program, not a test: it asserts nothing about time.

use std::hint::black_box;
use std::time::Instant;

use ferrotracker_swarm::peers::{Peer4, PeerList, PeerRecord};
use ferrotracker_swarm::Rng;

fn peer(rng: &mut Rng) -> Peer4 {
    let x = rng.next_u64();
    Peer4::new((x as u32).to_be_bytes(), (x >> 32) as u16)
}

fn ns_per(start: Instant, n: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / n as f64
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100, 2000, 100_000, 1_000_000]
    } else {
        sizes
    };
    println!("| peers | fill ns/insert | churn ns/(remove+insert) | refresh ns | select 50 ns |");
    println!("|---|---|---|---|---|");
    for n in sizes {
        let mut rng = Rng::new(n as u64);
        let mut l = PeerList::<Peer4>::default();
        let mut keys = Vec::with_capacity(n);
        let t = Instant::now();
        while l.len() < n {
            let p = peer(&mut rng);
            if l.upsert(p).was_new {
                keys.push(p);
            }
        }
        let fill = ns_per(t, n);

        // Each timing is the best of five rounds: the machine may be shared.
        let ops = (20_000_000 / n.max(1)).clamp(2_000, 200_000);
        let best = |f: &mut dyn FnMut()| {
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    ns_per(t, ops)
                })
                .fold(f64::MAX, f64::min)
        };
        let churn = best(&mut || {
            for _ in 0..ops {
                let i = rng.below(keys.len() as u64) as usize;
                black_box(l.remove(keys[i].key()));
                let mut p = peer(&mut rng);
                while !l.upsert(p).was_new {
                    p = peer(&mut rng);
                }
                keys[i] = p;
            }
        });
        let refresh = best(&mut || {
            for _ in 0..ops {
                let i = rng.below(keys.len() as u64) as usize;
                black_box(l.upsert(keys[i]));
            }
        });
        let mut out = Vec::with_capacity(50 * 6);
        let select = best(&mut || {
            for _ in 0..ops {
                out.clear();
                l.select_into(50, &mut rng, &mut out);
                black_box(&out);
            }
        });
        println!("| {n} | {fill:.0} | {churn:.0} | {refresh:.0} | {select:.0} |");
    }
}
