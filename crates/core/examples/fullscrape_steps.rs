//! Measures what one full-scrape step costs when every torrent shares one shard (the top 12
//! bits of the info_hash are the client's choice): the longest `next_chunk` call, the calls and
//! time of the whole body, against torrents spread over all shards.
//!
//! Call times are the thread's CPU time, so that a loaded machine's preemption does not count.
//!
//! usage: cargo run --release -p ferrotracker-core --example fullscrape_steps [TORRENTS] [gzip]

use std::time::{Duration, Instant};

use ferrotracker_core::fullscrape::{Format, FullScrape, Progress};
use ferrotracker_proto::{Event, InfoHash};
use ferrotracker_swarm::{Announce, PeerAddr, Rng, Store, StoreConfig, Want};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args
        .next()
        .map_or(1_000_000, |a| a.parse().expect("TORRENTS"));
    let gzip = args.next().is_some_and(|a| a == "gzip");
    for crowded in [true, false] {
        let store = Store::new(StoreConfig::default());
        let mut rng = Rng::new(7);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 0..n {
            let mut h = [0u8; 20];
            let x = u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            h[..8].copy_from_slice(&x.to_be_bytes());
            h[16..].copy_from_slice(&i.to_be_bytes());
            if crowded {
                // Shard 0xabc.
                h[0] = 0xab;
                h[1] = 0xc0 | (h[1] & 0x0f);
            }
            let ann = Announce {
                info_hash: InfoHash(h),
                addr: PeerAddr::V4([10, 0, 0, 1]),
                port: 6881,
                seeding: false,
                event: Event::Started,
            };
            store
                .announce(&ann, Want::SameFamily(0), 60, &mut rng, &mut a, &mut b)
                .expect("within limits");
        }
        let mut f = FullScrape::new(Format::Bencode, gzip);
        let mut out = Vec::new();
        let (mut calls, mut bytes) = (0u64, 0usize);
        let mut times: Vec<Duration> = Vec::new();
        let started = Instant::now();
        loop {
            out.clear();
            let t0 = cpu_now();
            let p = f.next_chunk(&store, &mut out);
            times.push(cpu_now() - t0);
            calls += 1;
            bytes += out.len();
            if p == Progress::Done {
                break;
            }
        }
        let whole = started.elapsed();
        times.sort_unstable();
        let us = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
        println!(
            "{n} torrents {}{}: {calls} calls, per call median {:.0} us, p99 {:.0} us, max {:.0} us; whole body {:.2} s, {} MB",
            if crowded { "in one shard" } else { "spread" },
            if gzip { ", gzip" } else { "" },
            us(0.5),
            us(0.99),
            us(1.0),
            whole.as_secs_f64(),
            bytes >> 20
        );
    }
}

/// This thread's CPU time.
fn cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
