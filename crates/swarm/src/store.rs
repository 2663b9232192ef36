//! The sharded torrent store: info_hash -> torrent (IPv4, IPv6 and WebTorrent peers,
//! downloaded).
//!
//! Torrents live in `SHARDS` hash tables, each behind its own mutex and on its own cache line;
//! the shard is picked by the top bits of the info_hash (as opentracker's 1024 buckets), so
//! workers on different cores rarely meet on a lock and no lock is global. Time comes in as
//! seconds from the caller; peers carry a one-byte tick stamp and are expired by `sweep`, a
//! periodic pass over one shard at a time, never by scanning on the request path.

mod announce;
#[cfg(test)]
mod counts_tests;
mod prefetch;
mod restore;
mod shard;
mod sweep;
mod sync;
#[cfg(test)]
mod tests;
mod walk;
mod ws;
#[cfg(test)]
mod ws_tests;

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::Relaxed;

use ferrotracker_proto::InfoHash;

use crate::peers::{Limits, Upsert, FLAG_COMPLETED, FLAG_SEEDING};
use crate::table::{slot_bytes, Table};
use shard::{Live, Padded, ShardCounts, Torrent};

pub use announce::{split_amount, Announce, Announced, Want};
pub use prefetch::PREFETCH_BATCH;
pub use sweep::Swept;
pub use sync::SyncedPeer;
pub use walk::{ShardWalk, WalkStep};
pub use ws::AnnouncedWs;

/// Number of shards (a power of two). 4096 keeps each shard's table small, so a burst of new
/// torrents rehashes little at a time, and makes two workers meeting on one lock unlikely.
pub const SHARDS: usize = 4096;

const SHARD_BITS: u32 = SHARDS.trailing_zeros();

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

/// Swarm counts as scrape and announce replies carry them (sums over both families and
/// WebTorrent peers).
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
    /// New peers of one family (or of WebTorrent) of one torrent beyond this many are not
    /// stored.
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
    /// A WebTorrent announce of a peer_id that another connection holds in the torrent.
    PeerIdTaken,
}

impl Refused {
    pub fn reason(self) -> &'static str {
        match self {
            Refused::TooManyTorrents => "tracker is full: too many torrents, try again later",
            Refused::OutOfMemoryBudget => "tracker is full: memory limit reached, try again later",
            Refused::TooManyPeersFromAddress => "too many peers from your address in this torrent",
            Refused::PeerIdTaken => "peer_id is in use by another connection in this torrent",
        }
    }

    /// The tracker is out of room (HTTP answers 503): a condition of the server, not of this
    /// client; the per-address limit and a taken peer_id are refusals of this client's request
    /// (HTTP 200 with a failure reason, as BEP 3 refuses).
    pub fn is_full(self) -> bool {
        !matches!(
            self,
            Refused::TooManyPeersFromAddress | Refused::PeerIdTaken
        )
    }
}

/// Estimated heap per torrent (64-byte entry in a hash table kept 50-90% full, plus control
/// bytes) and per peer record (with the peer list's growth slack), for the memory budget.
pub const TORRENT_BYTES: u64 = 100;

pub const PEER4_BYTES: u64 = 9;

pub const PEER6_BYTES: u64 = 22;

/// A WebTorrent peer: its 30-byte record and the list's growth slack.
pub const PEER_WS_BYTES: u64 = 34;

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
    /// UDP/HTTP peers by address family.
    pub peers4: u64,
    pub peers6: u64,
    /// WebTorrent peers.
    pub peers_ws: u64,
    /// Seeders of every transport.
    pub seeders: u64,
    /// WebTorrent seeders (within `seeders`).
    pub seeders_ws: u64,
    pub downloaded: u64,
}

impl Totals {
    /// Peers of every transport.
    pub fn peers(&self) -> u64 {
        self.peers4 + self.peers6 + self.peers_ws
    }
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

    /// Estimated heap held by torrents and peers, from the live counts (no lock taken).
    pub fn estimated_bytes(&self) -> u64 {
        self.live.torrents.load(Relaxed) * TORRENT_BYTES
            + self.live.peers4.load(Relaxed) * PEER4_BYTES
            + self.live.peers6.load(Relaxed) * PEER6_BYTES
            + self.live.peers_ws.load(Relaxed) * PEER_WS_BYTES
    }

    fn over_memory_budget(&self) -> bool {
        let max = self.cfg.max_memory.bytes();
        max != u64::MAX && self.estimated_bytes() >= max
    }

    /// Totals over every shard, from the counts each shard keeps and the whole-store ones:
    /// each shard lock is taken briefly in turn, and no torrent is visited.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for p in self.shards.iter() {
            let s = p.lock();
            t.torrents += s.torrents.len() as u64;
            t.peers4 += s.counts.peers4;
            t.peers6 += s.counts.peers6;
            t.seeders += s.counts.seeders;
        }
        t.peers_ws = self.live.peers_ws.load(Relaxed);
        t.seeders_ws = self.live.seeders_ws.load(Relaxed);
        t.seeders += t.seeders_ws;
        t.downloaded = self.live.downloaded.load(Relaxed);
        t
    }

    /// [`Store::totals`] by visiting every torrent: what the shard counts must always equal.
    #[cfg(test)]
    pub(crate) fn totals_by_walk(&self) -> Totals {
        let mut t = Totals::default();
        for p in self.shards.iter() {
            let s = p.lock();
            t.torrents += s.torrents.len() as u64;
            for tor in s.torrents.iter() {
                t.downloaded += u64::from(tor.downloaded);
                t.peers4 += tor.v4.len() as u64;
                t.seeders += u64::from(tor.v4.seeders());
                if let Some(r) = tor.rare.lists() {
                    t.peers6 += r.v6.len() as u64;
                    t.seeders += u64::from(r.v6.seeders() + r.ws.seeders());
                    t.peers_ws += r.ws.len() as u64;
                    t.seeders_ws += u64::from(r.ws.seeders());
                }
            }
        }
        t
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
                .map(|t| t.v4.capacity_bytes() + t.rare.capacity_bytes())
                .sum::<usize>();
        }
        n
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
        let mut seeders = 0;
        seeding_change(&mut seeders, &up);
        c.seeders = c.seeders.wrapping_add_signed(seeders);
    }

    /// [`Store::account`] for a WebTorrent peer.
    fn account_ws(&self, up: &Upsert) {
        if up.was_new {
            self.live.peers_ws.fetch_add(1, Relaxed);
        }
        let mut seeders = 0;
        seeding_change(&mut seeders, up);
        match seeders {
            1 => self.live.seeders_ws.fetch_add(1, Relaxed),
            -1 => self.live.seeders_ws.fetch_sub(1, Relaxed),
            _ => 0,
        };
    }

    /// Counts one download of torrent `t`, in it and in the store's sum.
    fn count_download(&self, t: &mut Torrent) {
        if let Some(n) = t.downloaded.checked_add(1) {
            t.downloaded = n;
            self.live.downloaded.fetch_add(1, Relaxed);
        }
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
}

/// What an upsert changed a seeder count by: +1, -1 or 0.
fn seeding_change(seeders: &mut i64, up: &Upsert) {
    let was = up.old_flags & FLAG_SEEDING != 0 && !up.was_new;
    match (was, up.new_flags & FLAG_SEEDING != 0) {
        (false, true) => *seeders += 1,
        (true, false) => *seeders -= 1,
        _ => {}
    }
}

/// Whether an upsert is the peer's first completion while present: the torrent's `downloaded`
/// goes up by one.
fn completed(up: &Upsert) -> bool {
    up.new_flags & FLAG_COMPLETED != 0 && up.old_flags & FLAG_COMPLETED == 0
}
