//! Peers learned from other cluster nodes (live sync).

use std::hash::BuildHasher;

use ferrotracker_proto::InfoHash;

use super::{PeerAddr, Store};
use crate::peers::{FLAG_COMPLETED, FLAG_FROM_SYNC, FLAG_SEEDING};

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

impl Store {
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
        if up.as_ref().is_some_and(super::completed) {
            self.count_download(t);
        }
        self.account(&mut shard.counts, addr, up);
        up.is_some()
    }
}
