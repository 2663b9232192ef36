//! Walks over one shard's torrents under its lock: full scrape, statedump and stats read the
//! store with these, one shard at a time.

use std::sync::atomic::Ordering::Relaxed;

use ferrotracker_proto::InfoHash;

use super::{Counts, Store};
use crate::peers::{Peer4, Peer6, Peers};

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

impl Store {
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

    /// Calls `f` with every torrent of shard `index` and all its UDP/HTTP peer records, under
    /// the shard's lock: the statedump's peer section walks the store with this. WebTorrent
    /// peers are left out: they are reachable only through connections that a restart closes.
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
            f(&t.hash, t.v4.peers(), t.v6_peers());
        }
    }
}
