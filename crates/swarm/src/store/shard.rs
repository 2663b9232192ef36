//! One shard: its table of torrents, its peer counts and the lock around them, laid out on
//! two cache lines; and a torrent, one cache line, with its IPv6 and WebTorrent peers boxed
//! together on first use.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Mutex, MutexGuard};

use ferrotracker_proto::InfoHash;

use super::{Counts, PeerAddr};
use crate::peers::{
    LazyPeerList, Limits, NotAdded, Peer4, Peer6, PeerList, PeerRecord, Peers, Upsert, WsPeer,
};
use crate::table::Table;

/// One torrent: its hash, downloads, last activity and peers; one cache line.
pub(super) struct Torrent {
    pub(super) hash: InfoHash,
    pub(super) downloaded: u32,
    /// Seconds (caller's clock) of the last announce.
    pub(super) last_active: u32,
    pub(super) v4: PeerList<Peer4>,
    /// IPv6 and WebTorrent peers, boxed on first use: most torrents have neither.
    pub(super) rare: Rare,
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
            rare: Rare::default(),
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
                let r = self.rare.get_or_default().v6.upsert_bounded(p, limits);
                self.rare.drop_if_empty();
                r
            }
        }
    }

    /// Removes one peer; its flags if it was there.
    pub(super) fn remove(&mut self, addr: PeerAddr, port: u16) -> Option<u8> {
        match addr {
            PeerAddr::V4(ip) => self.v4.remove(Peer4::new(ip, port).key()),
            PeerAddr::V6(ip) => {
                let r = self.rare.lists_mut()?.v6.remove(Peer6::new(ip, port).key());
                self.rare.drop_if_empty();
                r
            }
        }
    }

    pub(super) fn counts(&self) -> Counts {
        Counts {
            seeders: self.v4.seeders() + self.rare.seeders(),
            leechers: self.v4.leechers() + self.rare.leechers(),
            downloaded: self.downloaded,
        }
    }

    /// The IPv6 peers.
    pub(super) fn v6(&self) -> Option<&PeerList<Peer6>> {
        self.rare.lists().map(|r| &r.v6)
    }

    pub(super) fn v6_peers(&self) -> Peers<'_, Peer6> {
        self.v6().map_or(Peers::empty(), PeerList::peers)
    }

    /// The WebTorrent peers.
    pub(super) fn ws(&self) -> Option<&LazyPeerList<WsPeer>> {
        self.rare.lists().map(|r| &r.ws)
    }

    /// Whether the torrent has no peer of any transport.
    pub(super) fn is_empty(&self) -> bool {
        self.v4.is_empty()
            && self
                .rare
                .lists()
                .map_or(true, |r| r.v6.is_empty() && r.ws.is_empty())
    }
}

/// A torrent's IPv6 and WebTorrent peers: one pointer, null while both lists are empty.
///
/// Together in one box because the torrent entry has room for one pointer beside its IPv4
/// list, and most torrents have neither. The WebTorrent list is boxed again inside, so that a
/// torrent with IPv6 peers pays 8 bytes (one more allocator size class) for it, not 24.
#[derive(Default)]
pub(super) struct Rare(Option<Box<RareLists>>);

#[derive(Default)]
pub(super) struct RareLists {
    pub(super) v6: PeerList<Peer6>,
    pub(super) ws: LazyPeerList<WsPeer>,
}

impl Rare {
    #[inline]
    pub(super) fn lists(&self) -> Option<&RareLists> {
        self.0.as_deref()
    }

    #[inline]
    pub(super) fn lists_mut(&mut self) -> Option<&mut RareLists> {
        self.0.as_deref_mut()
    }

    /// The lists, boxed now if they weren't; call [`Rare::drop_if_empty`] after a change that
    /// may have left them empty.
    pub(super) fn get_or_default(&mut self) -> &mut RareLists {
        self.0.get_or_insert_with(Default::default)
    }

    pub(super) fn drop_if_empty(&mut self) {
        if self
            .0
            .as_ref()
            .is_some_and(|r| r.v6.is_empty() && r.ws.is_empty())
        {
            self.0 = None;
        }
    }

    /// Seeders over both lists.
    #[inline]
    pub(super) fn seeders(&self) -> u32 {
        self.0
            .as_ref()
            .map_or(0, |r| r.v6.seeders() + r.ws.seeders())
    }

    #[inline]
    pub(super) fn leechers(&self) -> u32 {
        self.0
            .as_ref()
            .map_or(0, |r| r.v6.leechers() + r.ws.leechers())
    }

    /// Calls `fetch` with the address of the box (whose first line holds the IPv6 list's
    /// header) if there is one. Returns whether there is.
    pub(super) fn prefetch_header(&self, fetch: impl Fn(usize)) -> bool {
        match &self.0 {
            Some(r) => {
                fetch(&**r as *const RareLists as usize);
                true
            }
            None => false,
        }
    }

    /// Bytes of the box and what it holds.
    pub(super) fn capacity_bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |r| {
            core::mem::size_of::<RareLists>() + r.v6.capacity_bytes() + r.ws.capacity_bytes()
        })
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

/// Peer counts of one shard, kept beside its table so stats need no walk. They fill the
/// first cache line with the lock and the table header; the counts that change less often
/// (WebTorrent peers, downloads) are whole-store atomics in [`Live`].
#[derive(Default)]
pub(super) struct ShardCounts {
    pub(super) peers4: u64,
    pub(super) peers6: u64,
    /// UDP/HTTP seeders of both families.
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
    pub(super) peers_ws: AtomicU64,
    pub(super) seeders_ws: AtomicU64,
    /// The torrents' `downloaded`, summed.
    pub(super) downloaded: AtomicU64,
}
