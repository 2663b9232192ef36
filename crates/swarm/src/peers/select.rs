//! Which peers a reply carries: all of them, or an evenly strided random selection.

use super::list::{live, PeerList, Repr};
use super::record::PeerRecord;

impl<P: PeerRecord> PeerList<P> {
    /// Appends the wire bytes of up to `amount` peers to `out`: all of them if there are no
    /// more than `amount`, else an evenly strided random selection (distinct peers, spread over
    /// the whole list, as opentracker's `return_peers_selection`).
    pub fn select_into(&self, amount: usize, rng: &mut crate::Rng, out: &mut Vec<u8>) {
        let n = self.len as usize;
        if amount == 0 || n == 0 {
            return;
        }
        if amount >= n {
            for p in self.peers() {
                out.extend_from_slice(p.wire());
            }
            return;
        }
        match &self.repr {
            Repr::Flat(slots) => {
                let peers = live(slots, n);
                strided(n, amount, rng, |i| {
                    if let Some(p) = peers.get(i) {
                        out.extend_from_slice(p.wire());
                    }
                });
            }
            Repr::Chunked(c) => {
                // Two passes over batches of picks: find and prefetch each record (its run's
                // header is one dependent load), then copy them, so the misses overlap as a
                // flat list's do.
                const BATCH: usize = 32;
                let mut batch = [(0usize, 0usize); BATCH];
                let mut k = 0;
                let flush = |batch: &[(usize, usize)], out: &mut Vec<u8>| {
                    for &(run, at) in batch {
                        if let Some(p) = c.runs.get(run).and_then(|r| r.get(at)) {
                            out.extend_from_slice(p.wire());
                        }
                    }
                };
                strided(n, amount, rng, |i| {
                    let (run, at) = c.nth(i);
                    if let Some(r) = c.runs.get(run) {
                        crate::table::prefetch(
                            r.as_ptr() as usize + at * core::mem::size_of::<P>(),
                        );
                    }
                    // `k` is below BATCH: it goes back to 0 on reaching it.
                    if let Some(b) = batch.get_mut(k) {
                        *b = (run, at);
                    }
                    k += 1;
                    if k == BATCH {
                        flush(&batch, out);
                        k = 0;
                    }
                });
                flush(batch.get(..k).unwrap_or_default(), out);
            }
        }
    }
}

impl<P: PeerRecord> PeerList<P> {
    /// Calls `f` with up to `amount` distinct peers: all of them if there are no more than
    /// `amount`, else an evenly strided random selection, as [`PeerList::select_into`] picks.
    pub fn pick_with(&self, amount: usize, rng: &mut crate::Rng, mut f: impl FnMut(&P)) {
        let n = self.len as usize;
        if amount == 0 || n == 0 {
            return;
        }
        if amount >= n {
            self.peers().iter().for_each(f);
            return;
        }
        match &self.repr {
            Repr::Flat(slots) => {
                let peers = live(slots, n);
                strided(n, amount, rng, |i| {
                    if let Some(p) = peers.get(i) {
                        f(p);
                    }
                });
            }
            Repr::Chunked(c) => strided(n, amount, rng, |i| {
                let (run, at) = c.nth(i);
                if let Some(p) = c.runs.get(run).and_then(|r| r.get(at)) {
                    f(p);
                }
            }),
        }
    }
}

/// Calls `pick` with `amount` (< `n`) distinct indices below `n`: one at random in each of
/// `amount` equal strata, the strata starting at a random offset and wrapping once.
fn strided(n: usize, amount: usize, rng: &mut crate::Rng, mut pick: impl FnMut(usize)) {
    // Stratum i is [i*n/amount, (i+1)*n/amount), walked without a division per peer:
    // each is `step` or `step + 1` long as the remainder accumulates.
    let (step, rem) = (n / amount, n % amount);
    let start = rng.below(n as u64) as usize;
    let (mut lo, mut acc) = (0usize, 0usize);
    for _ in 0..amount {
        acc += rem;
        let mut len = step;
        if acc >= amount {
            acc -= amount;
            len += 1;
        }
        let mut idx = start + lo + rng.below(len as u64) as usize;
        if idx >= n {
            idx -= n;
        }
        pick(idx);
        lo += len;
    }
}
