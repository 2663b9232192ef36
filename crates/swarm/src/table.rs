//! One shard's torrents: an open-addressing hash table with linear probing and one cache line
//! per slot.
//!
//! Hand-written instead of hashbrown's table for two reasons, both on the announce hot path:
//! - the slot a lookup starts at is `hash & mask` in one array, so a caller that knows the
//!   array's address and mask ([`Table::hint`], published by the store beside the shard lock)
//!   can prefetch a torrent's cache line for a whole batch of requests before serving any of
//!   them; hashbrown keeps its control bytes and buckets behind a private pointer, and its
//!   lookup is two dependent cache misses (control group, then bucket) instead of one;
//! - a shard holding one torrent keeps it inline, in the shard's own second cache line, and
//!   allocates nothing, where hashbrown's smallest table has 4 buckets plus 20 control bytes:
//!   with 4096 shards and few torrents that is most of the table memory.
//!
//! Torrents are only ever removed by [`Table::retain`] (the sweep), which rebuilds the table
//! when anything went, so no tombstones or backward shifts are needed.

/// A slot: one torrent or nothing, aligned to a cache line so a lookup touches one line.
#[repr(align(64))]
struct Slot<T>(Option<T>);

/// Invariant: either no slot array and at most one entry, in `one`; or a slot array holding
/// all `len` entries (at least two) and `one` empty.
#[repr(C)]
pub(crate) struct Table<T> {
    slots: Box<[Slot<T>]>,
    len: usize,
    /// The entry of a table that holds exactly one.
    one: Option<T>,
}

/// The index [`Table::position`] gives the inline entry.
const INLINE: usize = usize::MAX;

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            slots: Box::new([]),
            len: 0,
            one: None,
        }
    }
}

/// Entries a table of `cap` slots (a power of two) may hold: three quarters, and always one
/// slot free, so a probe for a missing key ends on an empty slot.
fn max_len(cap: usize) -> usize {
    if cap < 4 {
        cap.saturating_sub(1)
    } else {
        cap - cap / 4
    }
}

/// The smallest table (at least 2 slots) that holds `n` entries.
fn cap_for(n: usize) -> usize {
    let mut cap = 2;
    while max_len(cap) < n {
        cap *= 2;
    }
    cap
}

// Every slot index is `hash & mask` or `(i + 1) & mask`, with mask = slots.len() - 1 (slots.len()
// is a power of two), so each `get` below finds its slot; LLVM sees `x & (len - 1) < len` and
// drops the check on the probe loops, the store's hottest code.
impl<T> Table<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Slots allocated on the heap (each one cache line); 0 for an inline entry.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The slot array's address and index mask: where the lookup for `hash` starts is
    /// `address + (hash & mask) * SLOT_BYTES`. (0, 0) while nothing is allocated (an inline
    /// entry lives in the table itself).
    pub fn hint(&self) -> (usize, usize) {
        if self.slots.is_empty() {
            (0, 0)
        } else {
            (self.slots.as_ptr() as usize, self.slots.len() - 1)
        }
    }

    /// Index of the entry that `eq` accepts, probing from `hash`.
    #[inline]
    pub fn position(&self, hash: u64, mut eq: impl FnMut(&T) -> bool) -> Option<usize> {
        if self.slots.is_empty() {
            return self.one.as_ref().filter(|t| eq(t)).map(|_| INLINE);
        }
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        // Ends: at least one slot is always empty.
        loop {
            match self.slots.get(i) {
                Some(Slot(Some(t))) if eq(t) => return Some(i),
                Some(Slot(Some(_))) => i = (i + 1) & mask,
                Some(Slot(None)) | None => return None,
            }
        }
    }

    #[inline]
    pub fn find(&self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<&T> {
        match self.position(hash, eq)? {
            INLINE => self.one.as_ref(),
            i => self.slots.get(i)?.0.as_ref(),
        }
    }

    #[inline]
    pub fn find_mut(&mut self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<&mut T> {
        match self.position(hash, eq)? {
            INLINE => self.one.as_mut(),
            i => self.slots.get_mut(i)?.0.as_mut(),
        }
    }

    /// The entry at an index that [`Table::position`] or [`Table::insert`] returned (and no
    /// change since).
    #[inline]
    pub fn at_mut(&mut self, i: usize) -> &mut T {
        let entry = match i {
            INLINE => Some(&mut self.one),
            i => self.slots.get_mut(i).map(|s| &mut s.0),
        };
        match entry {
            Some(Some(t)) => t,
            _ => unreachable!("position and insert return occupied slots"),
        }
    }

    /// Inserts `value`, whose key the caller has checked is absent, growing the table first if
    /// it is full (rehashing every entry with `rehash`). Returns its index.
    pub fn insert(&mut self, hash: u64, value: T, rehash: impl Fn(&T) -> u64) -> usize {
        if self.slots.is_empty() {
            let Some(first) = self.one.take() else {
                self.one = Some(value);
                self.len = 1;
                return INLINE;
            };
            // A second entry: both move to a slot array.
            self.slots = empty_slots(cap_for(2));
            self.place(rehash(&first), first);
        } else if self.len >= max_len(self.slots.len()) {
            self.rebuild(cap_for(self.len + 1), &rehash);
        }
        self.len += 1;
        self.place(hash, value)
    }

    /// Puts `value` in the first empty slot from `hash` (the caller made room).
    fn place(&mut self, hash: u64, value: T) -> usize {
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            match self.slots.get_mut(i) {
                Some(Slot(Some(_))) => i = (i + 1) & mask,
                Some(slot) => {
                    slot.0 = Some(value);
                    return i;
                }
                None => unreachable!("a table keeps a free slot and masks into its slots"),
            }
        }
    }

    /// Moves every entry into a new array of `cap` slots.
    fn rebuild(&mut self, cap: usize, rehash: &impl Fn(&T) -> u64) {
        let old = std::mem::replace(&mut self.slots, empty_slots(cap));
        for slot in old.into_vec() {
            if let Some(t) = slot.0 {
                let h = rehash(&t);
                self.place(h, t);
            }
        }
    }

    /// Keeps the entries `keep` accepts (it may change them). If any went, the table is
    /// rebuilt at the size its entries need (which also shrinks it), since linear probing
    /// cannot leave holes in a run of entries. Returns how many went.
    pub fn retain(
        &mut self,
        mut keep: impl FnMut(&mut T) -> bool,
        rehash: impl Fn(&T) -> u64,
    ) -> usize {
        let mut removed = 0;
        if self.one.as_mut().is_some_and(|t| !keep(t)) {
            self.one = None;
            removed += 1;
        }
        for slot in self.slots.iter_mut() {
            if let Some(t) = slot.0.as_mut() {
                if !keep(t) {
                    slot.0 = None;
                    removed += 1;
                }
            }
        }
        if removed > 0 {
            self.len -= removed;
            if self.len <= 1 && !self.slots.is_empty() {
                // Back to inline (or to nothing).
                let slots = std::mem::take(&mut self.slots);
                self.one = slots.into_vec().into_iter().find_map(|s| s.0);
            } else if !self.slots.is_empty() {
                self.rebuild(cap_for(self.len), &rehash);
            }
        }
        removed
    }

    /// Places a walk over the table can stop at and resume from: position 0 is the inline
    /// entry, position `i >= 1` is slot `i - 1`. Entries stay at their position until the table
    /// is rebuilt (it grows, or [`Table::retain`] removed something).
    pub fn positions(&self) -> usize {
        1 + self.slots.len()
    }

    /// The entries at positions `from..to` (clamped to [`Table::positions`]).
    pub fn entries_at(&self, from: usize, to: usize) -> impl Iterator<Item = &T> {
        let one = self.one.iter().filter(move |_| from == 0 && to > 0);
        let (a, b) = (from.max(1) - 1, to.max(1) - 1);
        let slots = self
            .slots
            .get(a.min(b)..b.min(self.slots.len()))
            .unwrap_or(&[]);
        one.chain(slots.iter().filter_map(|s| s.0.as_ref()))
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.one
            .iter()
            .chain(self.slots.iter().filter_map(|s| s.0.as_ref()))
    }
}

fn empty_slots<T>(cap: usize) -> Box<[Slot<T>]> {
    (0..cap).map(|_| Slot(None)).collect()
}

/// Bytes of one slot holding a `T` (a cache line for the store's torrents).
pub(crate) const fn slot_bytes<T>() -> usize {
    std::mem::size_of::<Slot<T>>()
}

/// Asks the CPU to bring the cache line at `addr` closer. A hint only: any address is allowed
/// (PREFETCHT0 never faults), so a stale or freed one costs nothing but the wasted fetch.
#[inline(always)]
pub(crate) fn prefetch(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch instructions have no architectural effect and never fault, whatever
    // the address; SSE is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(addr as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(k: u64) -> u64 {
        // Many keys share a start slot, so probes run long and wrap around.
        k % 5
    }

    #[test]
    fn insert_find_grow_and_retain() {
        let mut t: Table<u64> = Table::default();
        assert_eq!(t.hint(), (0, 0));
        assert!(t.find(h(3), |&v| v == 3).is_none());
        for k in 0..1000u64 {
            assert!(t.position(h(k), |&v| v == k).is_none());
            let i = t.insert(h(k), k, |&v| h(v));
            assert_eq!(*t.at_mut(i), k);
            assert!(t.len() <= max_len(t.capacity()) || (t.len(), t.capacity()) == (1, 0));
        }
        assert_eq!(t.len(), 1000);
        // Present keys are found again, not inserted twice.
        for k in 0..1000u64 {
            assert_eq!(t.find(h(k), |&v| v == k), Some(&k));
            *t.find_mut(h(k), |&v| v == k).unwrap() += 0;
        }
        assert_eq!(t.len(), 1000);
        assert!(t.find(h(5000), |&v| v == 5000).is_none());
        let removed = t.retain(|v| *v % 3 == 0, |&v| h(v));
        assert_eq!(removed, 1000 - 334);
        assert_eq!(t.len(), 334);
        for k in 0..1000u64 {
            assert_eq!(t.find(h(k), |&v| v == k).is_some(), k % 3 == 0, "{k}");
        }
        let mut all: Vec<u64> = t.iter().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).filter(|k| k % 3 == 0).collect::<Vec<_>>());
        // Shrunk to the size 334 entries need.
        assert_eq!(t.capacity(), cap_for(334));
        assert_eq!(t.retain(|_| false, |&v| h(v)), 334);
        assert_eq!((t.len(), t.capacity(), t.hint()), (0, 0, (0, 0)));
    }

    #[test]
    fn small_tables_keep_a_free_slot_and_one_entry_inline() {
        assert_eq!(
            (cap_for(0), cap_for(1), cap_for(2), cap_for(3), cap_for(4)),
            (2, 2, 4, 4, 8)
        );
        let mut t: Table<u64> = Table::default();
        assert_eq!(t.insert(7, 1, |_| 7), INLINE);
        assert_eq!(
            (t.len(), t.capacity(), t.hint()),
            (1, 0, (0, 0)),
            "one entry allocates nothing"
        );
        assert_eq!(t.find(7, |&v| v == 1), Some(&1));
        assert!(t.find(7, |&v| v == 2).is_none());
        t.insert(7, 2, |_| 7);
        assert_eq!((t.len(), t.capacity()), (2, 4));
        let mut both: Vec<u64> = t.iter().copied().collect();
        both.sort_unstable();
        assert_eq!(both, vec![1, 2]);
        t.insert(7, 3, |_| 7);
        // A missing key probing a full run ends on the free slot.
        assert!(t.find(7, |&v| v == 4).is_none());
        let (base, mask) = t.hint();
        assert_eq!(mask, 3);
        assert_eq!(base % 64, 0, "slots start on a cache line");
        // Swept down to one entry: back inline, the array freed.
        assert_eq!(t.retain(|v| *v == 2, |_| 7), 2);
        assert_eq!((t.len(), t.capacity(), t.hint()), (1, 0, (0, 0)));
        assert_eq!(t.find_mut(7, |&v| v == 2), Some(&mut 2));
        assert_eq!(t.retain(|_| false, |_| 7), 1);
        assert_eq!((t.len(), t.iter().count()), (0, 0));
        assert_eq!(slot_bytes::<u64>(), 64);
    }

    #[test]
    fn entries_at_positions_cover_the_table_once() {
        let mut t: Table<u64> = Table::default();
        assert_eq!(t.positions(), 1);
        assert_eq!(t.entries_at(0, 1).count(), 0);
        t.insert(h(9), 9, |&v| h(v));
        assert_eq!(t.entries_at(0, 1).copied().collect::<Vec<_>>(), vec![9]);
        assert_eq!(t.entries_at(1, 5).count(), 0);
        for k in 0..100u64 {
            t.insert(h(k + 10), k + 10, |&v| h(v));
        }
        let n = t.positions();
        assert_eq!(n, 1 + t.capacity());
        for step in [1, 3, 7, 64, 1000] {
            let mut seen = Vec::new();
            let mut from = 0;
            while from < n {
                let to = (from + step).min(n);
                seen.extend(t.entries_at(from, to).copied());
                from = to;
            }
            seen.sort_unstable();
            let mut want: Vec<u64> = t.iter().copied().collect();
            want.sort_unstable();
            assert_eq!(seen, want, "step {step}");
        }
        // Out of range is empty, never a panic.
        assert_eq!(t.entries_at(n, n + 10).count(), 0);
        assert_eq!(t.entries_at(5, 2).count(), 0);
    }
}
