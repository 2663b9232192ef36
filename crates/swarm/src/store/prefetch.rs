//! Cache warming for a batch of requests about to be served.

use std::hash::BuildHasher;
use std::sync::atomic::Ordering::Relaxed;

use ferrotracker_proto::InfoHash;

use super::shard::{Padded, Torrent};
use super::Store;
use crate::table::{prefetch, slot_bytes};

/// Most hashes [`Store::prefetch`] takes at once (a receive batch).
pub const PREFETCH_BATCH: usize = 64;

impl Store {
    /// Warms the caches for announces and scrapes of `hashes` about to be served, so that a
    /// batch's memory misses overlap instead of stalling one request after another. In three
    /// passes, each touching only what the previous one fetched: the shard lines; the torrent's
    /// slot, from the table address the shard publishes; under the lock, the torrent's IPv4
    /// peer list and the header of its IPv6 list, which is boxed (most torrents have none),
    /// and, in a fourth pass for the torrents that have one, the IPv6 list's records. Changes
    /// nothing; up to [`PREFETCH_BATCH`] hashes are used.
    pub fn prefetch(&self, hashes: &[InfoHash]) {
        // Every pass zips with `keys`, which holds PREFETCH_BATCH hashes at most.
        let mut keys = [0u64; PREFETCH_BATCH];
        for (h, k) in hashes.iter().zip(keys.iter_mut()) {
            prefetch(self.shard_of(h) as *const Padded as usize);
            *k = self.hasher.hash_one(h);
        }
        for (h, &k) in hashes.iter().zip(keys.iter()) {
            let p = self.shard_of(h);
            let hint = p.hint.load(Relaxed);
            if hint != 0 {
                let (base, mask) = (hint & !63, (1usize << (hint & 63)) - 1);
                prefetch(base + (k as usize & mask) * slot_bytes::<Torrent>());
            } else {
                // No slot array: a torrent here is inline, in the shard's second line.
                prefetch(p as *const Padded as usize + 64);
            }
        }
        let mut with_v6 = [0u8; PREFETCH_BATCH];
        let mut n6 = 0;
        for (i, (h, &k)) in hashes.iter().zip(keys.iter()).enumerate() {
            let shard = self.shard_of(h).lock();
            if let Some(t) = shard.torrents.find(k, |t| t.hash == *h) {
                t.v4.prefetch(prefetch);
                if t.rare.prefetch_header(prefetch) {
                    if let Some(slot) = with_v6.get_mut(n6) {
                        *slot = i as u8;
                        n6 += 1;
                    }
                }
            }
        }
        for &i in with_v6.get(..n6).unwrap_or_default() {
            let (Some(h), Some(&k)) = (hashes.get(usize::from(i)), keys.get(usize::from(i))) else {
                continue;
            };
            let shard = self.shard_of(h).lock();
            if let Some(t) = shard.torrents.find(k, |t| t.hash == *h) {
                if let Some(v6) = t.v6() {
                    v6.prefetch(prefetch);
                }
            }
        }
    }
}
