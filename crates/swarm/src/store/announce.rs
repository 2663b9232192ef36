//! The request path: an announce records its peer and picks the reply's peers; a scrape reads
//! a torrent's counts.

use std::hash::BuildHasher;

use ferrotracker_proto::{Event, InfoHash};

use super::shard::Torrent;
use super::{Counts, PeerAddr, Refused, Store};
use crate::peers::{NotAdded, FLAG_COMPLETED, FLAG_SEEDING};
use crate::Rng;

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

impl Store {
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
            let completed_now = super::completed(&up);
            if completed_now {
                self.count_download(t);
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
                PeerAddr::V6(_) => {
                    if let Some(v6) = t.v6() {
                        v6.select_into(n, rng, out6);
                    }
                }
            },
            Want::Both(n) => {
                let v6 = t.v6();
                let (a4, a6) = split_amount(t.v4.len(), v6.map_or(0, |l| l.len()), n);
                t.v4.select_into(a4, rng, out4);
                if let Some(v6) = v6 {
                    v6.select_into(a6, rng, out6);
                }
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

    /// Counts of one torrent, if it is known.
    pub fn scrape(&self, info_hash: &InfoHash) -> Option<Counts> {
        let hash = self.hasher.hash_one(info_hash);
        let shard = self.shard_of(info_hash).lock();
        shard
            .torrents
            .find(hash, |t| t.hash == *info_hash)
            .map(Torrent::counts)
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
