//! WebTorrent peers: announced over a WebSocket connection, reached only by relaying WebRTC
//! offers and answers over it, and kept beside the torrent's UDP/HTTP peers (same entry, same
//! shard lock, same expiry and limits) in a list of their own, sorted by peer_id.
//!
//! A peer_id belongs to the connection that announced it first in a swarm, until that
//! connection stops it, closes ([`Store::remove_ws_conn`]) or lets it expire: answers are
//! routed by peer_id ([`Store::find_ws`]), so another connection taking it over would receive
//! the answers meant for its owner.

use std::hash::BuildHasher;
use std::sync::atomic::Ordering::Relaxed;

use ferrotracker_proto::{Event, InfoHash, PeerId};

use super::{Counts, Limits, Refused, Store};
use crate::peers::{PeerRecord, WsPeer, FLAG_COMPLETED, FLAG_SEEDING};
use crate::Rng;

/// A WebTorrent announce that was recorded (or, with `stored: false`, answered without
/// storing the peer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnouncedWs {
    /// The torrent's counts over every transport.
    pub counts: Counts,
    pub stored: bool,
    /// For a peer that was already stored: seconds since its previous announce, to the
    /// store's tick. `None` for a new peer, a stop, or a peer not stored.
    pub renewed_after: Option<u32>,
    /// The torrent's `downloaded` went up (a first completion while present).
    pub completed: bool,
}

impl Store {
    /// Records a WebTorrent announce of `peer_id` over connection `conn` (the server's key,
    /// opaque here): adds or refreshes the peer, or with `Event::Stopped` removes it (the
    /// torrent is kept). Returns the torrent's counts over every transport afterwards.
    ///
    /// A peer_id held by another connection whose record has not expired is refused
    /// ([`Refused::PeerIdTaken`]), a stop included; an expired one is taken over. A new
    /// torrent beyond `max_torrents` or the memory budget is refused; a new peer beyond
    /// `max_peers_per_torrent` (counted in the WebTorrent list alone, as each IP family is) or
    /// the memory budget is not stored but answered (`stored: false`). A completion counts as
    /// on the other paths: once per presence, and only with `seeder`. WebTorrent peers are not
    /// synced to other cluster nodes: they are reachable only through this one.
    pub fn announce_ws(
        &self,
        info_hash: &InfoHash,
        peer_id: &PeerId,
        conn: u64,
        seeder: bool,
        event: Event,
        now: u32,
    ) -> Result<AnnouncedWs, Refused> {
        let hash = self.hasher.hash_one(info_hash);
        let p = self.shard_of(info_hash);
        let mut guard = p.lock();
        let shard = &mut *guard;
        let stamp = self.tick(now);
        let not_stored = |counts| AnnouncedWs {
            counts,
            stored: false,
            renewed_after: None,
            completed: false,
        };
        if event == Event::Stopped {
            let Some(t) = shard.torrents.find_mut(hash, |t| t.hash == *info_hash) else {
                return Ok(not_stored(Counts::default()));
            };
            let owner = t.ws().and_then(|l| l.get(peer_id.0)).copied();
            if let Some(old) = owner {
                if old.conn() != conn && !self.expired(old.stamp(), stamp) {
                    return Err(Refused::PeerIdTaken);
                }
                self.remove_ws_record(t, peer_id);
            }
            return Ok(not_stored(t.counts()));
        }

        let t = self.find_or_create(p, &mut shard.torrents, hash, info_hash, now)?;
        if let Some(old) = t.ws().and_then(|l| l.get(peer_id.0)).copied() {
            if old.conn() != conn {
                if !self.expired(old.stamp(), stamp) {
                    return Err(Refused::PeerIdTaken);
                }
                // Its owner went quiet for a peer timeout and the sweep has not come by yet:
                // the newcomer gets a record of its own (downloads count afresh).
                self.remove_ws_record(t, peer_id);
            }
        }
        t.last_active = now;
        let mut flags = if seeder { FLAG_SEEDING } else { 0 };
        if event == Event::Completed && seeder {
            flags |= FLAG_COMPLETED;
        }
        let mut record = WsPeer::new(peer_id.0, conn);
        record.set_flags_stamp(flags, stamp);
        let limits = Limits {
            max_per_address: usize::MAX,
            ..self.limits()
        };
        let up = t
            .rare
            .get_or_default()
            .ws
            .upsert_bounded(record, limits)
            .ok();
        t.rare.drop_if_empty();
        let Some(up) = up else {
            return Ok(not_stored(t.counts()));
        };
        self.account_ws(&up);
        let completed = super::completed(&up);
        if completed {
            self.count_download(t);
        }
        Ok(AnnouncedWs {
            counts: t.counts(),
            stored: true,
            renewed_after: (!up.was_new)
                .then(|| u32::from(stamp.wrapping_sub(up.old_stamp)) * self.tick_secs),
            completed,
        })
    }

    /// Appends to `out` up to `n` distinct WebTorrent peers of the torrent, picked at random,
    /// other than `exclude` (the sender of the offers): the peers an announce's offers go to.
    /// Another peer on the sender's own connection may be picked: clients in one process
    /// share one WebSocket per tracker (bittorrent-tracker's socket pool), and the reference
    /// server relays between them too. Allocates nothing but what `out` grows by.
    pub fn pick_ws(
        &self,
        info_hash: &InfoHash,
        n: usize,
        exclude: &PeerId,
        rng: &mut Rng,
        out: &mut Vec<(u64, PeerId)>,
    ) {
        if n == 0 {
            return;
        }
        let hash = self.hasher.hash_one(info_hash);
        let shard = self.shard_of(info_hash).lock();
        let Some(ws) = shard
            .torrents
            .find(hash, |t| t.hash == *info_hash)
            .and_then(|t| t.ws())
        else {
            return;
        };
        let end = out.len().saturating_add(n);
        ws.pick_with(n.saturating_add(1), rng, |p| {
            if p.peer_id() != exclude.0 && out.len() < end {
                out.push((p.conn(), PeerId(p.peer_id())));
            }
        });
    }

    /// The connection that holds `peer_id` in the torrent: where an answer to it goes.
    pub fn find_ws(&self, info_hash: &InfoHash, peer_id: &PeerId) -> Option<u64> {
        let hash = self.hasher.hash_one(info_hash);
        let shard = self.shard_of(info_hash).lock();
        shard
            .torrents
            .find(hash, |t| t.hash == *info_hash)?
            .ws()?
            .get(peer_id.0)
            .map(WsPeer::conn)
    }

    /// Stops every WebTorrent peer of connection `conn` in the torrent (the connection
    /// closed); returns how many went. One pass over the torrent's WebTorrent list under its
    /// shard lock; the server calls it for each torrent the connection announced in. (A server
    /// that knows the peer_id stops it by binary search with [`Store::announce_ws`] and
    /// `Event::Stopped`.)
    pub fn remove_ws_conn(&self, info_hash: &InfoHash, conn: u64) -> u32 {
        let hash = self.hasher.hash_one(info_hash);
        let mut guard = self.shard_of(info_hash).lock();
        let shard = &mut *guard;
        let Some(t) = shard.torrents.find_mut(hash, |t| t.hash == *info_hash) else {
            return 0;
        };
        let Some(lists) = t.rare.lists_mut() else {
            return 0;
        };
        let (gone, seeders) = lists.ws.remove_if(|p| p.conn() == conn);
        t.rare.drop_if_empty();
        self.live.seeders_ws.fetch_sub(u64::from(seeders), Relaxed);
        self.live.peers_ws.fetch_sub(u64::from(gone), Relaxed);
        gone
    }

    /// Whether a record stamped `then` is a peer timeout old at tick `now`.
    fn expired(&self, then: u8, now: u8) -> bool {
        now.wrapping_sub(then) >= self.timeout_ticks
    }

    fn remove_ws_record(&self, t: &mut super::shard::Torrent, peer_id: &PeerId) {
        let Some(lists) = t.rare.lists_mut() else {
            return;
        };
        if let Some(flags) = lists.ws.remove(peer_id.0) {
            if flags & FLAG_SEEDING != 0 {
                self.live.seeders_ws.fetch_sub(1, Relaxed);
            }
            self.live.peers_ws.fetch_sub(1, Relaxed);
        }
        t.rare.drop_if_empty();
    }
}
