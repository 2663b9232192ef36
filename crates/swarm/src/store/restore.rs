//! Torrents and peers put back from a statedump.

use std::hash::BuildHasher;
use std::sync::atomic::Ordering::Relaxed;

use ferrotracker_proto::InfoHash;

use super::{PeerAddr, Store};
use crate::peers::{FLAG_COMPLETED, FLAG_SEEDING};

impl Store {
    /// Recreates a torrent from a statedump: its download count and last activity (`now`
    /// clock). A torrent that already exists is left alone, as opentracker does. Returns
    /// whether it was added.
    pub fn restore_torrent(&self, info_hash: &InfoHash, last_active: u32, downloaded: u32) -> bool {
        let hash = self.hasher.hash_one(info_hash);
        let p = self.shard_of(info_hash);
        let mut guard = p.lock();
        let shard = &mut *guard;
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
                self.live
                    .downloaded
                    .fetch_add(u64::from(downloaded), Relaxed);
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
}
