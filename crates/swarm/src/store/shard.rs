//! One shard: its table of torrents, its peer counts and the lock around them, laid out on
//! two cache lines; and a torrent, one cache line.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Mutex, MutexGuard};

use ferrotracker_proto::InfoHash;

use super::{Counts, PeerAddr};
use crate::peers::{LazyPeerList, Limits, NotAdded, Peer4, Peer6, PeerList, PeerRecord, Upsert};
use crate::table::Table;

/// One torrent: its hash, downloads, last activity and peers; one cache line.
pub(super) struct Torrent {
    pub(super) hash: InfoHash,
    pub(super) downloaded: u32,
    /// Seconds (caller's clock) of the last announce.
    pub(super) last_active: u32,
    pub(super) v4: PeerList<Peer4>,
    /// Boxed on first use: most torrents have no IPv6 peer.
    pub(super) v6: LazyPeerList<Peer6>,
    /// A byte of the entry's padding with 255 invalid values: the niche that keeps a table
    /// slot (`Option<Torrent>`) one cache line, since the peer list's pointer niche tells its
    /// flat form from its chunked one.
    _niche: Niche,
}

#[derive(Clone, Copy)]
#[repr(u8)]
enum Niche {
    Torrent,
}

impl Torrent {
    pub(super) fn new(hash: InfoHash, downloaded: u32, last_active: u32) -> Self {
        Torrent {
            hash,
            downloaded,
            last_active,
            v4: PeerList::default(),
            v6: LazyPeerList::default(),
            _niche: Niche::Torrent,
        }
    }

    /// Inserts or refreshes one peer; a new one only within `limits`.
    pub(super) fn upsert(
        &mut self,
        addr: PeerAddr,
        port: u16,
        flags: u8,
        stamp: u8,
        limits: Limits,
    ) -> Result<Upsert, NotAdded> {
        match addr {
            PeerAddr::V4(ip) => {
                let mut p = Peer4::new(ip, port);
                p.set_flags_stamp(flags, stamp);
                self.v4.upsert_bounded(p, limits)
            }
            PeerAddr::V6(ip) => {
                let mut p = Peer6::new(ip, port);
                p.set_flags_stamp(flags, stamp);
                self.v6.upsert_bounded(p, limits)
            }
        }
    }

    /// Removes one peer; its flags if it was there.
    pub(super) fn remove(&mut self, addr: PeerAddr, port: u16) -> Option<u8> {
        match addr {
            PeerAddr::V4(ip) => self.v4.remove(Peer4::new(ip, port).key()),
            PeerAddr::V6(ip) => self.v6.remove(Peer6::new(ip, port).key()),
        }
    }

    pub(super) fn counts(&self) -> Counts {
        Counts {
            seeders: self.v4.seeders() + self.v6.seeders(),
            leechers: self.v4.leechers() + self.v6.leechers(),
            downloaded: self.downloaded,
        }
    }
}

/// Laid out so that the counts and the table's header share the shard's first cache line with
/// the lock, and a table's inline torrent fills the second.
#[derive(Default)]
#[repr(C)]
pub(super) struct Shard {
    pub(super) counts: ShardCounts,
    pub(super) torrents: Table<Torrent>,
}

/// Peer counts of one shard, kept beside its table so stats need no walk.
#[derive(Default)]
pub(super) struct ShardCounts {
    pub(super) peers4: u64,
    pub(super) peers6: u64,
    pub(super) seeders: u64,
}

/// A shard on its own cache line pair: the first line holds the lock, the table header, the
/// counts, and the table's address and size ([`Table::hint`]) as one atomic word that
/// [`Store::prefetch`](super::Store::prefetch) reads without the lock.
#[repr(C, align(128))]
#[derive(Default)]
pub(super) struct Padded {
    /// Slot array address (cache-line aligned) | log2 of its slot count; 0 while empty.
    pub(super) hint: AtomicUsize,
    pub(super) shard: Mutex<Shard>,
}

impl Padded {
    #[inline]
    pub(super) fn lock(&self) -> MutexGuard<'_, Shard> {
        // Poisoning can only follow a panic in another worker; the shard data stays consistent
        // because every mutation completes before any fallible step.
        self.shard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Republishes the table's address after it may have moved (insert, sweep). Returns
    /// whether it did move: a rebuild always allocates the new slot array while the old one is
    /// still held, and going to or from the inline entry changes the address to or from 0, so
    /// every operation that moves entries changes the published value.
    #[inline]
    pub(super) fn publish(&self, table: &Table<Torrent>) -> bool {
        let (base, mask) = table.hint();
        // The base is 64-byte aligned, so its low 6 bits carry log2(slots) (0 when empty).
        let new = base | (mask.count_ones() as usize);
        self.hint.swap(new, Relaxed) != new
    }
}

/// Whole-store counts, on their own cache line.
#[repr(align(128))]
#[derive(Default)]
pub(super) struct Live {
    pub(super) torrents: AtomicU64,
    pub(super) peers4: AtomicU64,
    pub(super) peers6: AtomicU64,
}
