//! Expiry: a periodic pass over one shard at a time drops timed-out peers and dead torrents.

use std::hash::BuildHasher;
use std::sync::atomic::Ordering::Relaxed;

use super::{Store, SHARDS};

/// What one sweep removed (peers of every transport).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub peers: u64,
    pub torrents: u64,
}

impl Store {
    /// Expires timed-out peers (UDP, HTTP and WebTorrent alike) and drops dead torrents (a
    /// torrent is dead when no list of any transport holds a peer, as before) in shard
    /// `index` (`0..SHARDS`). The
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
        let (mut p4, mut p6, mut pw, mut s, mut sw, mut dl) = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
        let hasher = &self.hasher;
        shard.torrents.retain(
            |t| {
                let (r4, s4) = t.v4.expire(now_tick, timeout_ticks);
                p4 += u64::from(r4);
                s += u64::from(s4);
                if let Some(r) = t.rare.lists_mut() {
                    let (r6, s6) = r.v6.expire(now_tick, timeout_ticks);
                    let (rw, sw_gone) = r.ws.expire(now_tick, timeout_ticks);
                    p6 += u64::from(r6);
                    s += u64::from(s6);
                    pw += u64::from(rw);
                    sw += u64::from(sw_gone);
                    t.rare.drop_if_empty();
                }
                let idle = now.saturating_sub(t.last_active);
                let dead = idle >= torrent_timeout
                    || (t.is_empty() && t.downloaded == 0 && idle >= peer_timeout);
                if dead {
                    p4 += t.v4.len() as u64;
                    s += u64::from(t.v4.seeders());
                    if let Some(r) = t.rare.lists() {
                        p6 += r.v6.len() as u64;
                        s += u64::from(r.v6.seeders());
                        pw += r.ws.len() as u64;
                        sw += u64::from(r.ws.seeders());
                    }
                    dl += u64::from(t.downloaded);
                    swept.torrents += 1;
                }
                !dead
            },
            |t| hasher.hash_one(t.hash),
        );
        shard.counts.peers4 -= p4;
        shard.counts.peers6 -= p6;
        self.live.seeders_ws.fetch_sub(sw, Relaxed);
        self.live.downloaded.fetch_sub(dl, Relaxed);
        self.live.peers4.fetch_sub(p4, Relaxed);
        self.live.peers6.fetch_sub(p6, Relaxed);
        self.live.peers_ws.fetch_sub(pw, Relaxed);
        self.live.torrents.fetch_sub(swept.torrents, Relaxed);
        shard.counts.seeders -= s;
        swept.peers = p4 + p6 + pw;
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
}
