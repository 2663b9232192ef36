//! The sharded torrent store: info_hash -> torrent (IPv4 peers, IPv6 peers, downloaded).
//!
//! Torrents live in `SHARDS` hash tables, each behind its own mutex and on its own cache line;
//! the shard is picked by the top bits of the info_hash (as opentracker's 1024 buckets), so
//! workers on different cores rarely meet on a lock and no lock is global. Time comes in as
//! seconds from the caller; peers carry a one-byte tick stamp and are expired by `sweep`, a
//! periodic pass over one shard at a time, never by scanning on the request path.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};
use std::sync::{Mutex, MutexGuard};

use ferrotracker_proto::{Event, InfoHash};

use crate::peers::{
    LazyPeerList, Limits, NotAdded, Peer4, Peer6, PeerList, PeerRecord, Peers, Upsert,
    FLAG_COMPLETED, FLAG_FROM_SYNC, FLAG_SEEDING,
};
use crate::table::{prefetch, slot_bytes, Table};
use crate::Rng;

/// Number of shards (a power of two). 4096 keeps each shard's table small, so a burst of new
/// torrents rehashes little at a time, and makes two workers meeting on one lock unlikely.
pub const SHARDS: usize = 4096;
const SHARD_BITS: u32 = SHARDS.trailing_zeros();
/// Most hashes [`Store::prefetch`] takes at once (a receive batch).
pub const PREFETCH_BATCH: usize = 64;

/// A peer's address: the family decides which list it lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerAddr {
    V4([u8; 4]),
    V6([u8; 16]),
}

impl From<IpAddr> for PeerAddr {
    /// An IPv4-mapped IPv6 address is the IPv4 peer it maps to.
    fn from(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(a) => PeerAddr::V4(a.octets()),
            IpAddr::V6(a) => PeerAddr::V6(a.octets()),
        }
    }
}

/// A peer learned from another cluster node (live sync), for [`Store::apply_sync`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncedPeer {
    pub info_hash: InfoHash,
    pub addr: PeerAddr,
    pub port: u16,
    pub seeding: bool,
    pub completed: bool,
    pub stopped: bool,
}

/// One announce, already parsed and validated by the caller.
#[derive(Clone, Copy, Debug)]
pub struct Announce {
    pub info_hash: InfoHash,
    pub addr: PeerAddr,
    pub port: u16,
    /// `left == 0`.
    pub seeding: bool,
    pub event: Event,
}

/// Which peers a reply wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// HTTP: up to this many peers over both families, split as opentracker splits them.
    Both(usize),
    /// UDP: up to this many peers of the requester's family only.
    SameFamily(usize),
}

/// Swarm counts as scrape and announce replies carry them (sums over both families).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub seeders: u32,
    pub leechers: u32,
    pub downloaded: u32,
}

impl From<Counts> for ferrotracker_proto::http_body::Counts {
    fn from(c: Counts) -> Self {
        ferrotracker_proto::http_body::Counts {
            complete: c.seeders,
            incomplete: c.leechers,
            downloaded: c.downloaded,
        }
    }
}

/// Timing rules and limits of the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// A peer is dropped this many seconds after its last announce (opentracker: 45 min).
    pub peer_timeout: u32,
    /// A torrent with downloads is kept this long after its last activity (opentracker: 24 h).
    pub torrent_timeout: u32,
    /// New torrents beyond this many are refused.
    pub max_torrents: u64,
    /// New peers of one family of one torrent beyond this many are not stored.
    pub max_peers_per_torrent: u32,
    /// Peers one IPv4 address (IPv6: one /64) may have in one torrent; an announce that would
    /// add one more is refused ([`Refused::TooManyPeersFromAddress`]). 0 = no limit.
    /// Without it one address could store a peer per port, 65,535 per torrent.
    pub max_peers_per_address: u32,
    /// Estimated heap for torrents and peers ([`Store::estimated_bytes`]) beyond which new
    /// torrents are refused and new peers not stored.
    pub max_memory: MemoryLimit,
}

/// The store's memory ceiling (`tracker.max_memory_mb`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryLimit {
    /// A share of the machine's memory: the server resolves it into `Bytes` from physical
    /// memory and the cgroup limit before it builds the store, which takes it as no ceiling.
    Auto,
    /// No ceiling (a machine dedicated to the tracker, watched by its operator).
    Unlimited,
    Bytes(u64),
}

impl MemoryLimit {
    /// The ceiling in bytes, `u64::MAX` for none.
    pub fn bytes(self) -> u64 {
        match self {
            MemoryLimit::Bytes(b) => b,
            MemoryLimit::Auto | MemoryLimit::Unlimited => u64::MAX,
        }
    }
}

/// Why an announce was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    TooManyTorrents,
    OutOfMemoryBudget,
    /// A new peer whose address (IPv6: /64) already has `max_peers_per_address` peers in the
    /// torrent.
    TooManyPeersFromAddress,
}

impl Refused {
    pub fn reason(self) -> &'static str {
        match self {
            Refused::TooManyTorrents => "tracker is full: too many torrents, try again later",
            Refused::OutOfMemoryBudget => "tracker is full: memory limit reached, try again later",
            Refused::TooManyPeersFromAddress => "too many peers from your address in this torrent",
        }
    }

    /// The tracker is out of room (HTTP answers 503): a condition of the server, not of this
    /// client; the per-address limit is a refusal of this client's request (HTTP 200 with a
    /// failure reason, as BEP 3 refuses).
    pub fn is_full(self) -> bool {
        !matches!(self, Refused::TooManyPeersFromAddress)
    }
}

/// An announce that was recorded (or, with `stored: false`, answered without storing the peer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announced {
    pub counts: Counts,
    pub stored: bool,
    /// Whether live sync should tell the other nodes (opentracker's rule: a new peer, a
    /// completion, a re-announce after 10 minutes, every stop).
    pub sync: bool,
    /// For a peer that was already stored: seconds since its previous announce, to the
    /// store's tick (`/stats?mode=renew`). `None` for a new peer, a stop, or a refusal.
    pub renewed_after: Option<u32>,
    /// The torrent's `downloaded` went up: the peer completed for the first time since it
    /// was stored (opentracker counts its completed event there, not per announce).
    pub completed: bool,
}

/// Where a walk over one shard's table stands ([`Store::walk_shard`]); the default is its start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardWalk {
    /// The next table position to visit; 0 = not started.
    next: usize,
    /// The shard's move count when the walk started.
    moves: u32,
}

impl ShardWalk {
    /// Table positions visited so far (0 at the start); a measure of the work done.
    pub fn position(&self) -> usize {
        self.next
    }
}

/// What one [`Store::walk_shard`] call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkStep {
    /// Slots are left: call again.
    More,
    /// Every slot has been visited.
    Done,
    /// The table moved its entries since the walk started: the walk is back at its start and
    /// nothing was visited. What was gathered so far may be incomplete.
    Restarted,
}

/// Estimated heap per torrent (64-byte entry in a hash table kept 50-90% full, plus control
/// bytes) and per peer record (with the peer list's growth slack), for the memory budget.
pub const TORRENT_BYTES: u64 = 100;
pub const PEER4_BYTES: u64 = 9;
pub const PEER6_BYTES: u64 = 22;

/// Default of [`StoreConfig::max_peers_per_address`]: far above what a household behind one
/// NAT runs in one swarm (a client or two per device), and above a small carrier-grade NAT's
/// subscribers all joining the same torrent, yet 256 times below the 65,535 ports one address
/// could otherwise fill a torrent with.
pub const DEFAULT_MAX_PEERS_PER_ADDRESS: u32 = 256;

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            peer_timeout: 45 * 60,
            torrent_timeout: 24 * 3600,
            max_torrents: 20_000_000,
            max_peers_per_torrent: 1_000_000,
            max_peers_per_address: DEFAULT_MAX_PEERS_PER_ADDRESS,
            max_memory: MemoryLimit::Auto,
        }
    }
}

/// Totals over every shard, for stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub torrents: u64,
    pub peers4: u64,
    pub peers6: u64,
    pub seeders: u64,
    pub downloaded: u64,
}

/// What one sweep removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub peers: u64,
    pub torrents: u64,
}

struct Torrent {
    hash: InfoHash,
    downloaded: u32,
    /// Seconds (caller's clock) of the last announce.
    last_active: u32,
    v4: PeerList<Peer4>,
    /// Boxed on first use: most torrents have no IPv6 peer.
    v6: LazyPeerList<Peer6>,
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
    fn new(hash: InfoHash, downloaded: u32, last_active: u32) -> Self {
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
    fn upsert(
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
    fn remove(&mut self, addr: PeerAddr, port: u16) -> Option<u8> {
        match addr {
            PeerAddr::V4(ip) => self.v4.remove(Peer4::new(ip, port).key()),
            PeerAddr::V6(ip) => self.v6.remove(Peer6::new(ip, port).key()),
        }
    }

    fn counts(&self) -> Counts {
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
struct Shard {
    counts: ShardCounts,
    torrents: Table<Torrent>,
}

/// Peer counts of one shard, kept beside its table so stats need no walk.
#[derive(Default)]
struct ShardCounts {
    peers4: u64,
    peers6: u64,
    seeders: u64,
}

/// A shard on its own cache line pair: the first line holds the lock, the table header, the
/// counts, and the table's address and size ([`Table::hint`]) as one atomic word that
/// [`Store::prefetch`] reads without the lock.
#[repr(C, align(128))]
#[derive(Default)]
struct Padded {
    /// Slot array address (cache-line aligned) | log2 of its slot count; 0 while empty.
    hint: AtomicUsize,
    shard: Mutex<Shard>,
}

impl Padded {
    #[inline]
    fn lock(&self) -> MutexGuard<'_, Shard> {
        // Poisoning can only follow a panic in another worker; the shard data stays consistent
        // because every mutation completes before any fallible step.
        self.shard.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Republishes the table's address after it may have moved (insert, sweep). Returns
    /// whether it did move: a rebuild always allocates the new slot array while the old one is
    /// still held, and going to or from the inline entry changes the address to or from 0, so
    /// every operation that moves entries changes the published value.
    #[inline]
    fn publish(&self, table: &Table<Torrent>) -> bool {
        let (base, mask) = table.hint();
        // The base is 64-byte aligned, so its low 6 bits carry log2(slots) (0 when empty).
        let new = base | (mask.count_ones() as usize);
        self.hint.swap(new, Relaxed) != new
    }
}

#[repr(align(128))]
#[derive(Default)]
struct Live {
    torrents: AtomicU64,
    peers4: AtomicU64,
    peers6: AtomicU64,
}

/// The whole swarm state. Shared by every worker (`&Store` is all they need).
pub struct Store {
    /// An array, so that [`Store::shard_of`] picks one without a bounds check.
    shards: Box<[Padded; SHARDS]>,
    /// Per shard, how many times its table moved its entries (written under the shard's lock):
    /// a [`ShardWalk`] that spans several locks restarts when this changes. Outside `Padded`,
    /// whose two cache lines are full, and touched only when a table is rebuilt.
    moves: Box<[AtomicU32]>,
    /// Whole-store counts for the limits, changed only when a torrent or peer comes or goes.
    live: Live,
    hasher: foldhash::quality::RandomState,
    cfg: StoreConfig,
    /// Seconds per stamp tick, chosen so that a peer timeout is at most `MAX_TIMEOUT_TICKS`.
    tick_secs: u32,
    timeout_ticks: u8,
    /// Ticks after which a re-announce is worth syncing again (10 minutes).
    renew_ticks: u8,
}

/// A timed-out peer must be recognised before its 8-bit stamp wraps, so a timeout spans at most
/// 100 ticks and a sweep must visit every shard within the remaining 155 ticks.
const MAX_TIMEOUT_TICKS: u32 = 100;
/// opentracker's `OT_CLIENT_SYNC_RENEW_BOUNDARY`.
const SYNC_RENEW_SECS: u32 = 600;

impl Store {
    pub fn new(cfg: StoreConfig) -> Self {
        let peer_timeout = cfg.peer_timeout.max(1);
        let tick_secs = peer_timeout.div_ceil(MAX_TIMEOUT_TICKS).max(1);
        let timeout_ticks = peer_timeout.div_ceil(tick_secs) as u8;
        // Built on the heap (half a megabyte would be a lot of stack).
        let shards = match (0..SHARDS)
            .map(|_| Padded::default())
            .collect::<Vec<_>>()
            .try_into()
        {
            Ok(shards) => shards,
            Err(_) => unreachable!("SHARDS shards were made"),
        };
        Store {
            shards,
            moves: (0..SHARDS).map(|_| AtomicU32::new(0)).collect(),
            live: Live::default(),
            hasher: Default::default(),
            cfg,
            tick_secs,
            timeout_ticks,
            renew_ticks: SYNC_RENEW_SECS.div_ceil(tick_secs).min(255) as u8,
        }
    }

    pub fn config(&self) -> StoreConfig {
        self.cfg
    }

    /// How often `sweep` should run so that expiry is timely and stamps never wrap.
    pub fn sweep_interval_secs(&self) -> u32 {
        (self.cfg.peer_timeout / 4)
            .clamp(1, 120)
            .min(self.tick_secs * 100)
    }

    /// Records an announce and appends the reply's peers (compact wire bytes) to `out4` and
    /// `out6`. Returns the swarm counts after the announce. `stopped` removes the peer and
    /// selects no peers; the torrent is kept.
    ///
    /// A new torrent beyond `max_torrents` or the memory budget is refused, and so is a new
    /// peer beyond `max_peers_per_address`. A new peer beyond `max_peers_per_torrent` or the
    /// memory budget is not stored, but still gets its reply (`stored: false`), so the swarm
    /// keeps working for it.
    pub fn announce(
        &self,
        a: &Announce,
        want: Want,
        now: u32,
        rng: &mut Rng,
        out4: &mut Vec<u8>,
        out6: &mut Vec<u8>,
    ) -> Result<Announced, Refused> {
        let hash = self.hasher.hash_one(a.info_hash);
        let p = self.shard_of(&a.info_hash);
        let mut shard = p.lock();
        let shard = &mut *shard;
        if a.event == Event::Stopped {
            let Some(t) = shard.torrents.find_mut(hash, |t| t.hash == a.info_hash) else {
                return Ok(Announced {
                    counts: Counts::default(),
                    stored: false,
                    sync: true,
                    renewed_after: None,
                    completed: false,
                });
            };
            if let Some(flags) = t.remove(a.addr, a.port) {
                self.forget(&mut shard.counts, a.addr, flags);
            }
            return Ok(Announced {
                counts: t.counts(),
                stored: false,
                sync: true,
                renewed_after: None,
                completed: false,
            });
        }

        let t = self.find_or_create(p, &mut shard.torrents, hash, &a.info_hash, now)?;
        t.last_active = now;
        let stamp = self.tick(now);
        let mut flags = if a.seeding { FLAG_SEEDING } else { 0 };
        // A completion only counts with left=0 (opentracker drops COMPLETED without SEEDING).
        if a.event == Event::Completed && a.seeding {
            flags |= FLAG_COMPLETED;
        }
        // Known peers are always refreshed; new ones only within the limits.
        let up = match t.upsert(a.addr, a.port, flags, stamp, self.limits()) {
            Err(NotAdded::AddressFull) => return Err(Refused::TooManyPeersFromAddress),
            Err(NotAdded::ListFull) => None,
            Ok(up) => Some(up),
        };
        let mut sync = false;
        let mut renewed_after = None;
        let mut completed = false;
        if let Some(up) = up {
            let age_ticks = stamp.wrapping_sub(up.old_stamp);
            if !up.was_new {
                renewed_after = Some(u32::from(age_ticks) * self.tick_secs);
            }
            let completed_now =
                up.new_flags & FLAG_COMPLETED != 0 && up.old_flags & FLAG_COMPLETED == 0;
            if completed_now {
                t.downloaded = t.downloaded.saturating_add(1);
                completed = true;
            }
            // opentracker's live-sync rule: new peers, completions, and re-announces of peers
            // not refreshed for 10 minutes.
            sync = up.was_new || completed_now || age_ticks >= self.renew_ticks;
        }
        self.account(&mut shard.counts, a.addr, up);

        match want {
            Want::SameFamily(n) => match a.addr {
                PeerAddr::V4(_) => t.v4.select_into(n, rng, out4),
                PeerAddr::V6(_) => t.v6.select_into(n, rng, out6),
            },
            Want::Both(n) => {
                let (a4, a6) = split_amount(t.v4.len(), t.v6.len(), n);
                t.v4.select_into(a4, rng, out4);
                t.v6.select_into(a6, rng, out6);
            }
        }
        Ok(Announced {
            counts: t.counts(),
            stored: up.is_some(),
            sync,
            renewed_after,
            completed,
        })
    }

    /// Applies a peer learned from another cluster node (live sync): `stopped` removes it,
    /// otherwise it is added or refreshed, marked FROM_SYNC, with no reply. A synced completion
    /// counts a download here too, as in opentracker. New torrents and peers respect the
    /// limits. Returns whether the store changed.
    pub fn apply_sync(&self, peer: &SyncedPeer, now: u32) -> bool {
        let SyncedPeer {
            ref info_hash,
            addr,
            port,
            seeding,
            completed,
            stopped,
        } = *peer;
        let hash = self.hasher.hash_one(info_hash);
        let p = self.shard_of(info_hash);
        let mut guard = p.lock();
        let shard = &mut *guard;
        if stopped {
            let Some(t) = shard.torrents.find_mut(hash, |t| t.hash == *info_hash) else {
                return false;
            };
            let Some(flags) = t.remove(addr, port) else {
                return false;
            };
            self.forget(&mut shard.counts, addr, flags);
            return true;
        }
        let Ok(t) = self.find_or_create(p, &mut shard.torrents, hash, info_hash, now) else {
            return false;
        };
        t.last_active = now;
        let stamp = self.tick(now);
        let mut flags = FLAG_FROM_SYNC;
        if seeding {
            flags |= FLAG_SEEDING;
            if completed {
                flags |= FLAG_COMPLETED;
            }
        }
        let up = t.upsert(addr, port, flags, stamp, self.limits()).ok();
        if let Some(u) = up {
            if u.new_flags & FLAG_COMPLETED != 0 && u.old_flags & FLAG_COMPLETED == 0 {
                t.downloaded = t.downloaded.saturating_add(1);
            }
        }
        self.account(&mut shard.counts, addr, up);
        up.is_some()
    }

    /// Estimated heap held by torrents and peers, from the live counts (no lock taken).
    pub fn estimated_bytes(&self) -> u64 {
        self.live.torrents.load(Relaxed) * TORRENT_BYTES
            + self.live.peers4.load(Relaxed) * PEER4_BYTES
            + self.live.peers6.load(Relaxed) * PEER6_BYTES
    }

    fn over_memory_budget(&self) -> bool {
        let max = self.cfg.max_memory.bytes();
        max != u64::MAX && self.estimated_bytes() >= max
    }

    /// Counts of one torrent, if it is known.
    pub fn scrape(&self, info_hash: &InfoHash) -> Option<Counts> {
        let hash = self.hasher.hash_one(info_hash);
        let shard = self.shard_of(info_hash).lock();
        shard
            .torrents
            .find(hash, |t| t.hash == *info_hash)
            .map(Torrent::counts)
    }

    /// Expires timed-out peers and drops dead torrents in shard `index` (`0..SHARDS`). The
    /// server walks the shards spread over `sweep_interval_secs`, holding one lock at a time.
    pub fn sweep_shard(&self, index: usize, now: u32) -> Swept {
        let Some(p) = self.shards.get(index) else {
            return Swept::default();
        };
        let mut shard = p.lock();
        let shard = &mut *shard;
        let now_tick = self.tick(now);
        let (timeout_ticks, peer_timeout, torrent_timeout) = (
            self.timeout_ticks,
            self.cfg.peer_timeout,
            self.cfg.torrent_timeout,
        );
        let mut swept = Swept::default();
        let (mut p4, mut p6, mut s) = (0u64, 0u64, 0u64);
        let hasher = &self.hasher;
        shard.torrents.retain(
            |t| {
                let (r4, s4) = t.v4.expire(now_tick, timeout_ticks);
                let (r6, s6) = t.v6.expire(now_tick, timeout_ticks);
                p4 += u64::from(r4);
                p6 += u64::from(r6);
                s += u64::from(s4 + s6);
                let idle = now.saturating_sub(t.last_active);
                let dead = idle >= torrent_timeout
                    || (t.v4.is_empty()
                        && t.v6.is_empty()
                        && t.downloaded == 0
                        && idle >= peer_timeout);
                if dead {
                    p4 += t.v4.len() as u64;
                    p6 += t.v6.len() as u64;
                    s += u64::from(t.v4.seeders() + t.v6.seeders());
                    swept.torrents += 1;
                }
                !dead
            },
            |t| hasher.hash_one(t.hash),
        );
        shard.counts.peers4 -= p4;
        shard.counts.peers6 -= p6;
        self.live.peers4.fetch_sub(p4, Relaxed);
        self.live.peers6.fetch_sub(p6, Relaxed);
        self.live.torrents.fetch_sub(swept.torrents, Relaxed);
        shard.counts.seeders -= s;
        swept.peers = p4 + p6;
        if p.publish(&shard.torrents) {
            if let Some(m) = self.moves.get(index) {
                m.fetch_add(1, Relaxed);
            }
        }
        swept
    }

    /// Sweeps every shard now (tests, shutdown).
    pub fn sweep_all(&self, now: u32) -> Swept {
        let mut total = Swept::default();
        for i in 0..SHARDS {
            let s = self.sweep_shard(i, now);
            total.peers += s.peers;
            total.torrents += s.torrents;
        }
        total
    }

    /// Totals over every shard; takes each shard lock briefly in turn.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for p in self.shards.iter() {
            let s = p.lock();
            t.torrents += s.torrents.len() as u64;
            t.peers4 += s.counts.peers4;
            t.peers6 += s.counts.peers6;
            t.seeders += s.counts.seeders;
            t.downloaded += s
                .torrents
                .iter()
                .map(|t| u64::from(t.downloaded))
                .sum::<u64>();
        }
        t
    }

    /// Calls `f` with the hash and counts of every torrent in shard `index`, under its lock.
    /// Full scrape and statedump walk shards one at a time with this.
    pub fn for_each_in_shard(&self, index: usize, mut f: impl FnMut(&InfoHash, Counts)) {
        let Some(p) = self.shards.get(index) else {
            return;
        };
        let shard = p.lock();
        for t in shard.torrents.iter() {
            f(&t.hash, t.counts());
        }
    }

    /// Like [`Store::for_each_in_shard`], also passing the torrent's last activity (seconds,
    /// caller's clock) and its IPv4 peer records: statedump and the `s24s` stats walk with this.
    pub fn for_each_detail_in_shard(
        &self,
        index: usize,
        mut f: impl FnMut(&InfoHash, Counts, u32, Peers<'_, Peer4>),
    ) {
        let Some(p) = self.shards.get(index) else {
            return;
        };
        let shard = p.lock();
        for t in shard.torrents.iter() {
            f(&t.hash, t.counts(), t.last_active, t.v4.peers());
        }
    }

    /// Calls `f` with the hash, counts and last activity of the torrents in the next
    /// `max_slots` slots (at least one) of shard `index`'s table, from where `walk` stands,
    /// under the shard's lock, and moves `walk` past them. A full scrape walks a shard of any
    /// size this way in slices short enough that neither the lock nor the caller's turn is
    /// held long.
    ///
    /// Between two calls the lock is free, so the table may change. A torrent added meanwhile
    /// may or may not be seen; one removed may already have been. If the table was rebuilt
    /// (it grew, or a sweep removed torrents), its entries moved, and one not seen yet could now
    /// sit in a slot already passed: the walk then starts over from the first slot and
    /// [`WalkStep::Restarted`] says so before `f` is called, so that the caller drops what it
    /// gathered. A walk that is not restarted sees every torrent that stayed in the shard
    /// throughout exactly once.
    pub fn walk_shard(
        &self,
        index: usize,
        walk: &mut ShardWalk,
        max_slots: usize,
        mut f: impl FnMut(&InfoHash, Counts, u32),
    ) -> WalkStep {
        let (Some(p), Some(moves)) = (self.shards.get(index), self.moves.get(index)) else {
            return WalkStep::Done;
        };
        let shard = p.lock();
        let moves = moves.load(Relaxed);
        if walk.next == 0 {
            walk.moves = moves;
        } else if walk.moves != moves {
            *walk = ShardWalk { next: 0, moves };
            return WalkStep::Restarted;
        }
        let end = shard
            .torrents
            .positions()
            .min(walk.next.saturating_add(max_slots.max(1)));
        for t in shard.torrents.entries_at(walk.next, end) {
            f(&t.hash, t.counts(), t.last_active);
        }
        walk.next = end;
        if end >= shard.torrents.positions() {
            WalkStep::Done
        } else {
            WalkStep::More
        }
    }

    /// Calls `f` with every torrent of shard `index` and all its peer records, under the
    /// shard's lock: the statedump's peer section walks the store with this.
    pub fn peers_in_shard(
        &self,
        index: usize,
        mut f: impl FnMut(&InfoHash, Peers<'_, Peer4>, Peers<'_, Peer6>),
    ) {
        let Some(p) = self.shards.get(index) else {
            return;
        };
        let shard = p.lock();
        for t in shard.torrents.iter() {
            f(&t.hash, t.v4.peers(), t.v6.peers());
        }
    }

    /// Recreates a torrent from a statedump: its download count and last activity (`now`
    /// clock). A torrent that already exists is left alone, as opentracker does. Returns
    /// whether it was added.
    pub fn restore_torrent(&self, info_hash: &InfoHash, last_active: u32, downloaded: u32) -> bool {
        let hash = self.hasher.hash_one(info_hash);
        let p = self.shard_of(info_hash);
        let mut shard = p.lock();
        if shard
            .torrents
            .find(hash, |t| t.hash == *info_hash)
            .is_some()
        {
            return false;
        }
        match self.find_or_create(p, &mut shard.torrents, hash, info_hash, last_active) {
            Ok(t) => {
                t.downloaded = downloaded;
                true
            }
            Err(_) => false,
        }
    }

    /// Puts back a peer from a statedump's peer section, stamped `now` so it lives one more
    /// peer timeout unless it announces. The torrent must have been restored first; returns
    /// false if it wasn't. Only the SEEDING and COMPLETED flags are kept.
    pub fn restore_peer(
        &self,
        info_hash: &InfoHash,
        addr: PeerAddr,
        port: u16,
        flags: u8,
        now: u32,
    ) -> bool {
        let hash = self.hasher.hash_one(info_hash);
        let stamp = self.tick(now);
        let flags = flags & (FLAG_SEEDING | FLAG_COMPLETED);
        let mut guard = self.shard_of(info_hash).lock();
        let shard = &mut *guard;
        let Some(t) = shard.torrents.find_mut(hash, |t| t.hash == *info_hash) else {
            return false;
        };
        let up = t.upsert(addr, port, flags, stamp, self.limits()).ok();
        self.account(&mut shard.counts, addr, up);
        up.is_some()
    }

    /// The torrent `info_hash` of shard `p`'s table, created (within the torrent and memory
    /// limits) if it is new.
    fn find_or_create<'t>(
        &self,
        p: &Padded,
        table: &'t mut Table<Torrent>,
        hash: u64,
        info_hash: &InfoHash,
        now: u32,
    ) -> Result<&'t mut Torrent, Refused> {
        let i = match table.position(hash, |t| t.hash == *info_hash) {
            Some(i) => i,
            None => {
                if self.live.torrents.load(Relaxed) >= self.cfg.max_torrents {
                    return Err(Refused::TooManyTorrents);
                }
                if self.over_memory_budget() {
                    return Err(Refused::OutOfMemoryBudget);
                }
                self.live.torrents.fetch_add(1, Relaxed);
                let hasher = &self.hasher;
                let i = table.insert(hash, Torrent::new(*info_hash, 0, now), |t| {
                    hasher.hash_one(t.hash)
                });
                if p.publish(table) {
                    self.moved(p);
                }
                i
            }
        };
        Ok(table.at_mut(i))
    }

    /// Keeps the counts in step with a removed peer.
    fn forget(&self, c: &mut ShardCounts, addr: PeerAddr, flags: u8) {
        match addr {
            PeerAddr::V4(_) => {
                c.peers4 -= 1;
                self.live.peers4.fetch_sub(1, Relaxed);
            }
            PeerAddr::V6(_) => {
                c.peers6 -= 1;
                self.live.peers6.fetch_sub(1, Relaxed);
            }
        }
        if flags & FLAG_SEEDING != 0 {
            c.seeders -= 1;
        }
    }

    /// What a list may hold for a new peer to be stored now.
    fn limits(&self) -> Limits {
        Limits {
            max_len: if self.over_memory_budget() {
                0
            } else {
                self.cfg.max_peers_per_torrent as usize
            },
            max_per_address: match self.cfg.max_peers_per_address {
                0 => usize::MAX,
                n => n as usize,
            },
        }
    }

    /// Keeps the shard's and the store's counts in step with one upsert.
    fn account(&self, c: &mut ShardCounts, addr: PeerAddr, up: Option<Upsert>) {
        let Some(up) = up else { return };
        if up.was_new {
            match addr {
                PeerAddr::V4(_) => {
                    c.peers4 += 1;
                    self.live.peers4.fetch_add(1, Relaxed);
                }
                PeerAddr::V6(_) => {
                    c.peers6 += 1;
                    self.live.peers6.fetch_add(1, Relaxed);
                }
            }
        }
        let was = up.old_flags & FLAG_SEEDING != 0 && !up.was_new;
        match (was, up.new_flags & FLAG_SEEDING != 0) {
            (false, true) => c.seeders += 1,
            (true, false) => c.seeders -= 1,
            _ => {}
        }
    }

    /// Bytes held by peer records and torrent tables (an estimate of the heap; RSS is the truth).
    pub fn heap_bytes(&self) -> usize {
        let mut n = 0;
        for p in self.shards.iter() {
            let s = p.lock();
            n += s.torrents.capacity() * slot_bytes::<Torrent>();
            n += s
                .torrents
                .iter()
                .map(|t| t.v4.capacity_bytes() + t.v6.capacity_bytes())
                .sum::<usize>();
        }
        n
    }

    #[inline]
    fn tick(&self, now: u32) -> u8 {
        (now / self.tick_secs) as u8
    }

    /// Counts a move of the entries of shard `p` (see [`Store::walk_shard`]); under its lock.
    #[cold]
    fn moved(&self, p: &Padded) {
        let index = (p as *const Padded as usize - self.shards.as_ptr() as usize)
            / std::mem::size_of::<Padded>();
        if let Some(m) = self.moves.get(index) {
            m.fetch_add(1, Relaxed);
        }
    }

    /// The shard of `h`: the top bits of the info_hash.
    #[inline]
    fn shard_of(&self, h: &InfoHash) -> &Padded {
        let top = u32::from_be_bytes([h.0[0], h.0[1], h.0[2], h.0[3]]);
        // The top SHARD_BITS bits of a u32 are below SHARDS, the array's length, so `get`
        // always finds the shard and the compiler drops both the check and the fallback.
        let [first, ..] = &*self.shards;
        self.shards
            .get((top >> (32 - SHARD_BITS)) as usize)
            .unwrap_or(first)
    }

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
                if t.v6.prefetch_header(prefetch) {
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
                t.v6.prefetch(prefetch);
            }
        }
    }
}

/// opentracker's split of `amount` between the families ([`trackerlogic.c`](https://erdgeist.org/gitweb/opentracker/tree/trackerlogic.c)): each gets up to a quarter,
/// the rest is shared in proportion to what is left, and IPv6 takes the rounding remainder first.
pub fn split_amount(n4: usize, n6: usize, amount: usize) -> (usize, usize) {
    if n4 + n6 <= amount {
        return (n4, n6);
    }
    let mut a4 = n4.min(amount / 4);
    let mut a6 = n6.min(amount / 4);
    let left = amount - a4 - a6;
    let (l4, l6) = (n4 - a4, n6 - a6);
    if let (Some(p4), Some(p6)) = (
        (1024 * l4).checked_div(l4 + l6),
        (1024 * l6).checked_div(l4 + l6),
    ) {
        a4 += left * p4 / 1024;
        a6 += left * p6 / 1024;
    }
    a4 = a4.min(n4);
    a6 = a6.min(n6);
    while a4 + a6 < amount && (a4 < n4 || a6 < n6) {
        if a6 < n6 {
            a6 += 1;
        }
        if a4 + a6 < amount && a4 < n4 {
            a4 += 1;
        }
    }
    (a4, a6)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
