//! The chunked form of a large peer list: a one-level B-tree of sorted runs, with an index of
//! their first keys and a size tree for picking the n-th record.

use super::list::{find, grown_capacity, leading_in_group, trailing_in_group, Pos};
use super::record::PeerRecord;

/// Most bytes of records in one run of a chunked list.
pub const CHUNK_BYTES: usize = 4096;

/// A large list: sorted runs of 1..=`max_run::<P>()` records, each run's first key in
/// `firsts` for the first of the two binary searches, and the runs' lengths in a Fenwick tree
/// (`sizes`), so that the n-th record (a random selection) is found in log(runs) steps. Every
/// run's capacity follows its length as a flat list's does, so memory stays within a few
/// percent of the records.
#[derive(Debug)]
pub(super) struct Chunks<P: PeerRecord> {
    pub(super) firsts: Vec<P::Key>,
    pub(super) runs: Vec<Vec<P>>,
    /// Fenwick tree of run lengths, 1-based (`sizes[0]` unused): rebuilt when runs split,
    /// merge or go, updated in place otherwise.
    sizes: Vec<u32>,
}

pub(super) const fn max_run<P>() -> usize {
    CHUNK_BYTES / core::mem::size_of::<P>()
}

impl<P: PeerRecord> Chunks<P> {
    /// Cuts a sorted slice into runs three quarters full, leaving room to grow before a split.
    pub(super) fn from_sorted(s: &[P]) -> Self {
        let mut c = Chunks {
            firsts: Vec::new(),
            runs: Vec::new(),
            sizes: Vec::new(),
        };
        for piece in s.chunks(max_run::<P>() * 3 / 4) {
            if let Some(first) = piece.first() {
                c.firsts.push(first.key());
                c.runs.push(piece.to_vec());
            }
        }
        c.rebuild_sizes();
        c
    }

    fn rebuild_sizes(&mut self) {
        // A power of two of leaves (runs past the last are empty), so a descent never leaves
        // the tree.
        let n = self.runs.len().next_power_of_two();
        self.sizes.clear();
        self.sizes.resize(n + 1, 0);
        for i in 1..=n {
            let own = self.runs.get(i - 1).map_or(0, |r| r.len() as u32);
            let Some(v) = self.sizes.get_mut(i) else {
                break;
            };
            *v += own;
            let v = *v;
            // Past the root (n) there is no parent.
            if let Some(parent) = self.sizes.get_mut(i + (i & i.wrapping_neg())) {
                *parent += v;
            }
        }
    }

    /// Adds one record to (`grow`) or takes one from run `run`'s length.
    fn resize_run(&mut self, run: usize, grow: bool) {
        let mut i = run + 1;
        while let Some(v) = self.sizes.get_mut(i) {
            *v = if grow { *v + 1 } else { *v - 1 };
            i += i & i.wrapping_neg();
        }
    }

    /// The run and index in it of the `i`-th record (`i` below the list's length): a descent
    /// of the size tree, without branches to mispredict.
    pub(super) fn nth(&self, i: usize) -> (usize, usize) {
        let (mut pos, mut rem) = (0usize, i as u32);
        let mut step = (self.sizes.len() - 1).next_power_of_two();
        while step > 0 {
            let v = self.sizes.get(pos + step).copied().unwrap_or(u32::MAX);
            let take = v <= rem;
            pos += step * usize::from(take);
            rem -= v * u32::from(take);
            step >>= 1;
        }
        (pos, rem as usize)
    }

    pub(super) fn capacity_bytes(&self) -> usize {
        core::mem::size_of::<Self>()
            + self.firsts.capacity() * core::mem::size_of::<P::Key>()
            + self.runs.capacity() * core::mem::size_of::<Vec<P>>()
            + self.sizes.capacity() * core::mem::size_of::<u32>()
            + self
                .runs
                .iter()
                .map(|r| r.capacity() * core::mem::size_of::<P>())
                .sum::<usize>()
    }

    /// The run that holds `key` or would: the last whose first key is not above it (the
    /// first run for a key below every other).
    fn run_of(&self, key: P::Key) -> usize {
        self.firsts.partition_point(|f| *f <= key).saturating_sub(1)
    }

    pub(super) fn find(&self, key: P::Key) -> Result<(usize, usize), Pos> {
        let run = self.run_of(key);
        match self.runs.get(run).map(|r| find(r, key)) {
            Some(Ok(at)) => Ok((run, at)),
            Some(Err(at)) => Err(Pos { run, at }),
            None => Err(Pos { run: 0, at: 0 }),
        }
    }

    /// The record with `key`, or where it would go.
    pub(super) fn find_mut(&mut self, key: P::Key) -> Result<&mut P, Pos> {
        let (run, at) = self.find(key)?;
        self.runs
            .get_mut(run)
            .and_then(|r| r.get_mut(at))
            .ok_or(Pos { run, at })
    }

    pub(super) fn position(&self, key: P::Key) -> Pos {
        match self.find(key) {
            Ok((run, at)) | Err(Pos { run, at }) => Pos { run, at },
        }
    }

    pub(super) fn insert(&mut self, pos: Pos, peer: P) {
        let Pos { mut run, mut at } = pos;
        let mut split = false;
        if self.runs.is_empty() {
            self.runs.push(Vec::new());
            self.firsts.push(peer.key());
            split = true;
        }
        let half = max_run::<P>() / 2;
        if let Some(full) = self.runs.get_mut(run).filter(|r| r.len() >= max_run::<P>()) {
            split = true;
            // Split the full run in two halves; the record goes into the one it belongs to.
            let tail = full.split_off(half);
            full.shrink_to(grown_capacity(half));
            if let Some(first) = tail.first() {
                self.firsts.insert(run + 1, first.key());
                self.runs.insert(run + 1, tail);
            }
            if at > half {
                run += 1;
                at -= half;
            }
        }
        let Some(r) = self.runs.get_mut(run) else {
            return;
        };
        if r.len() == r.capacity() {
            r.reserve_exact(grown_capacity(r.len()).min(max_run::<P>()) - r.len());
        }
        r.insert(at, peer);
        if let (0, Some(first)) = (at, self.firsts.get_mut(run)) {
            *first = peer.key();
        }
        if split {
            self.rebuild_sizes();
        } else {
            self.resize_run(run, true);
        }
    }

    /// Removes the record at (`run`, `at`); merges a run that fell under a quarter full into a
    /// neighbour when both fit in one, and drops an emptied one.
    /// `None` if there is no such record.
    pub(super) fn remove(&mut self, run: usize, at: usize) -> Option<P> {
        let r = self.runs.get_mut(run).filter(|r| at < r.len())?;
        let p = r.remove(at);
        let Some(&first) = r.first() else {
            self.runs.remove(run);
            self.firsts.remove(run);
            self.rebuild_sizes();
            return Some(p);
        };
        if let (0, Some(f)) = (at, self.firsts.get_mut(run)) {
            *f = first.key();
        }
        if r.len() < r.capacity() / 2 {
            r.shrink_to(grown_capacity(r.len()));
        }
        let (max, n) = (max_run::<P>(), r.len());
        self.resize_run(run, false);
        if n < max / 4 {
            let fits = |i: usize| self.runs.get(i).is_some_and(|o| n + o.len() <= max * 3 / 4);
            if fits(run + 1) {
                self.merge_next(run);
            } else if let Some(before) = run.checked_sub(1).filter(|&b| fits(b)) {
                self.merge_next(before);
            }
        }
        Some(p)
    }

    /// Appends run `run + 1` to run `run`.
    fn merge_next(&mut self, run: usize) {
        if run + 1 >= self.runs.len() {
            return;
        }
        let next = self.runs.remove(run + 1);
        self.firsts.remove(run + 1);
        if let Some(r) = self.runs.get_mut(run) {
            r.reserve_exact(next.len());
            r.extend_from_slice(&next);
        }
        self.rebuild_sizes();
    }

    /// After an expiry pass: drops emptied runs, joins neighbours that fit in three quarters
    /// of a run, trims capacity, and rebuilds the index.
    pub(super) fn compact(&mut self) {
        let max = max_run::<P>();
        let mut runs: Vec<Vec<P>> = Vec::with_capacity(self.runs.len());
        for r in self.runs.drain(..) {
            if r.is_empty() {
                continue;
            }
            match runs.last_mut() {
                Some(last) if last.len() + r.len() <= max * 3 / 4 => {
                    last.reserve_exact(r.len());
                    last.extend_from_slice(&r);
                }
                _ => runs.push(r),
            }
        }
        for r in &mut runs {
            if r.len() < r.capacity() / 2 {
                r.shrink_to(grown_capacity(r.len()));
            }
        }
        // No run is empty.
        self.firsts = runs
            .iter()
            .filter_map(|r| r.first())
            .map(|p| p.key())
            .collect();
        self.runs = runs;
        self.rebuild_sizes();
    }

    pub(super) fn group_count(&self, pos: Pos, g: u64, cap: usize) -> usize {
        let Some(run) = self.runs.get(pos.run) else {
            return 0;
        };
        let (before, after) = run.split_at_checked(pos.at).unwrap_or((run, &[]));
        let (runs_before, runs_after) = self
            .runs
            .split_at_checked(pos.run)
            .unwrap_or((&self.runs, &[]));
        // Backwards from the position, run by run while whole runs are of the group.
        let mut n = trailing_in_group(before, g, cap);
        let mut whole = n == before.len();
        for r in runs_before.iter().rev() {
            if !whole || n >= cap {
                break;
            }
            let t = trailing_in_group(r, g, cap - n);
            n += t;
            whole = t == r.len();
        }
        // Forwards (`runs_after` starts with the position's run).
        let t = leading_in_group(after, g, cap.saturating_sub(n));
        n += t;
        let mut whole = t == after.len();
        for r in runs_after.iter().skip(1) {
            if !whole || n >= cap {
                break;
            }
            let t = leading_in_group(r, g, cap - n);
            n += t;
            whole = t == r.len();
        }
        n
    }
}
