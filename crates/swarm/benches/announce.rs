//! Microbenchmark of the store's UDP/HTTP request path: announces (new peers and refreshes,
//! IPv4 and IPv6) and scrapes over many torrents, the same deterministic sequence every run.
//!
//! `cargo bench -p ferrotracker-swarm --bench announce [-- ROUNDS]`. Prints ns per request;
//! for a figure that a busy machine doesn't blur, count instructions instead:
//! `valgrind --tool=cachegrind --cache-sim=no target/release/deps/announce-* 3`.
//! A program, not a test: it asserts nothing about time.

use std::hint::black_box;
use std::time::Instant;

use ferrotracker_proto::{Event, InfoHash};
use ferrotracker_swarm::{Announce, MemoryLimit, PeerAddr, Rng, Store, StoreConfig, Want};

const TORRENTS: u64 = 10_000;
const PEERS_PER_TORRENT: u64 = 64;
const PER_ROUND: usize = 100_000;

fn info_hash(t: u64) -> InfoHash {
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&t.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    h[8..16].copy_from_slice(&t.to_le_bytes());
    InfoHash(h)
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let store = Store::new(StoreConfig {
        max_memory: MemoryLimit::Unlimited,
        ..StoreConfig::default()
    });
    let mut rng = Rng::new(42);
    let (mut out4, mut out6) = (Vec::with_capacity(4096), Vec::with_capacity(4096));
    for round in 0..rounds {
        let start = Instant::now();
        for i in 0..PER_ROUND {
            let x = rng.next_u64();
            let t = x % TORRENTS;
            let p = (x >> 32) % PEERS_PER_TORRENT;
            let h = info_hash(t);
            if i % 8 == 7 {
                black_box(store.scrape(&h));
                continue;
            }
            // One torrent in ten has IPv6 peers beside its IPv4 ones.
            let addr = if t % 10 == 0 && p % 2 == 0 {
                PeerAddr::V6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, p as u8])
            } else {
                PeerAddr::V4([10, 0, (p >> 8) as u8, p as u8])
            };
            let a = Announce {
                info_hash: h,
                addr,
                port: 6881,
                seeding: p % 3 == 0,
                event: Event::None,
            };
            out4.clear();
            out6.clear();
            let r = store.announce(
                &a,
                Want::SameFamily(50),
                1000,
                &mut rng,
                &mut out4,
                &mut out6,
            );
            black_box((r.ok(), out4.len(), out6.len()));
        }
        let ns = start.elapsed().as_nanos() as f64 / PER_ROUND as f64;
        println!("round {round}: {ns:.0} ns/request");
    }
}
