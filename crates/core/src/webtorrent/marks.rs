//! The offers relayed to one WebSocket connection that its client may still answer: a ring of
//! 64-bit marks in the order they came (the oldest is forgotten first), and a hash index over
//! it so that an answer finds its offer in a few probes rather than a walk of the ring (a
//! connection of a busy client holds a thousand marks, and most of what it sends are answers).
//!
//! The ring starts empty, holds [`FIRST_RING`] marks once the first comes, and doubles whenever
//! the mark it would overwrite is still within [`OFFER_WINDOW`], up to its most. The index is
//! open addressing with linear probing over the marks' own low bits (a mark is a keyed SipHash,
//! uniformly distributed), twice the ring's size rounded up to a power of two, so a probe run
//! stays short; entries are removed by shifting the run back, so no tombstones pile up.

use super::{FIRST_RING, OFFER_WINDOW};

/// An index entry that names no ring slot.
const EMPTY: u16 = u16::MAX;

/// See the module doc. Slots are `u16`: the ring holds at most `webtorrent.offers_remembered`
/// (at most 8192) marks.
#[derive(Debug)]
pub(super) struct Marks {
    /// (mark, time received); mark 0 is a free slot (taken by an answer, or never filled).
    ring: Vec<(u64, u32)>,
    /// The slot the next mark goes to once the ring is full: the oldest.
    next: usize,
    /// The ring's size now (it fills up to it before `next` wraps) and at most.
    size: usize,
    max: usize,
    /// Ring slots by mark; `EMPTY` where none.
    index: Vec<u16>,
}

impl Marks {
    pub(super) fn new(max: usize) -> Self {
        let max = max.clamp(1, usize::from(EMPTY));
        Marks {
            ring: Vec::new(),
            next: 0,
            size: FIRST_RING.min(max),
            max,
            index: Vec::new(),
        }
    }

    /// Marks held (filled slots and free ones alike): what the ring has grown to.
    pub(super) fn len(&self) -> usize {
        self.ring.len()
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.ring.capacity() * std::mem::size_of::<(u64, u32)>()
            + self.index.capacity() * std::mem::size_of::<u16>()
    }

    /// Records `mark` (never 0), received at `now`.
    pub(super) fn record(&mut self, mark: u64, now: u32) {
        let held = self.ring.len();
        if held < self.size {
            // Filling up: `next` is the end.
            if held == 0 {
                self.ring.reserve_exact(self.size);
                self.rebuild_index();
            }
            self.ring.push((mark, now));
            self.insert(mark, held);
            self.next = held + 1;
            return;
        }
        self.next %= held.max(1);
        let oldest = self.ring.get(self.next).copied().unwrap_or((0, 0));
        let oldest_live = oldest.0 != 0 && now.saturating_sub(oldest.1) <= OFFER_WINDOW;
        if oldest_live && held < self.max {
            // Grow rather than forget an offer that may still be answered: oldest first, then
            // fill up to the new size.
            self.ring.rotate_left(self.next);
            self.size = (held * 2).min(self.max);
            self.ring.reserve_exact(self.size - held);
            self.ring.push((mark, now));
            self.rebuild_index();
            self.next = held + 1;
            return;
        }
        if oldest.0 != 0 {
            self.remove(oldest.0, self.next);
        }
        if let Some(slot) = self.ring.get_mut(self.next) {
            *slot = (mark, now);
        }
        self.insert(mark, self.next);
        self.next = (self.next + 1) % held.max(1);
    }

    /// Takes `mark` if it was received within [`OFFER_WINDOW`] of `now` (an offer is answered
    /// once).
    pub(super) fn take(&mut self, mark: u64, now: u32) -> bool {
        let Some(slot) = self.find(mark, now) else {
            return false;
        };
        self.remove(mark, slot);
        if let Some(s) = self.ring.get_mut(slot) {
            *s = (0, 0);
        }
        true
    }

    fn mask(&self) -> usize {
        self.index.len().wrapping_sub(1)
    }

    fn home(&self, mark: u64) -> usize {
        mark as usize & self.mask()
    }

    /// The slot of `mark`, held and received within [`OFFER_WINDOW`] of `now`.
    fn find(&self, mark: u64, now: u32) -> Option<usize> {
        if self.index.is_empty() {
            return None;
        }
        let mut i = self.home(mark);
        loop {
            let slot = *self.index.get(i)?;
            if slot == EMPTY {
                return None;
            }
            let live = |&(m, at): &(u64, u32)| m == mark && now.saturating_sub(at) <= OFFER_WINDOW;
            if self.ring.get(usize::from(slot)).is_some_and(live) {
                return Some(usize::from(slot));
            }
            i = (i + 1) & self.mask();
        }
    }

    fn insert(&mut self, mark: u64, slot: usize) {
        let mut i = self.home(mark);
        // The index is at least twice the ring: there is always an empty entry.
        while let Some(e) = self.index.get_mut(i) {
            if *e == EMPTY {
                *e = slot as u16;
                return;
            }
            i = (i + 1) & self.mask();
        }
    }

    /// Removes the index entry of ring slot `slot`, which holds `mark`, and shifts back the
    /// entries after it in its run that would otherwise no longer be found.
    fn remove(&mut self, mark: u64, slot: usize) {
        let mask = self.mask();
        let mut i = self.home(mark);
        loop {
            match self.index.get(i) {
                Some(&e) if usize::from(e) == slot => break,
                Some(&EMPTY) | None => return,
                Some(_) => i = (i + 1) & mask,
            }
        }
        // Backward shift: move each later entry of the run into the hole if its home does not
        // lie (cyclically) between the hole and where it is.
        let mut hole = i;
        let mut j = (i + 1) & mask;
        loop {
            let e = match self.index.get(j) {
                Some(&EMPTY) | None => break,
                Some(&e) => e,
            };
            let m = self.ring.get(usize::from(e)).map_or(0, |&(m, _)| m);
            let home = self.home(m);
            let stays = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !stays {
                if let Some(h) = self.index.get_mut(hole) {
                    *h = e;
                }
                hole = j;
            }
            j = (j + 1) & mask;
        }
        if let Some(h) = self.index.get_mut(hole) {
            *h = EMPTY;
        }
    }

    /// Sizes the index for the ring's size and indexes every filled slot.
    fn rebuild_index(&mut self) {
        let want = (self.size * 2).next_power_of_two();
        self.index.clear();
        self.index.reserve_exact(want);
        self.index.resize(want, EMPTY);
        for slot in 0..self.ring.len() {
            let mark = self.ring.get(slot).map_or(0, |&(m, _)| m);
            if mark != 0 {
                self.insert(mark, slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain model: the ring as a list, searched from the start (the old linear scan).
    struct Model {
        ring: Vec<(u64, u32)>,
        next: usize,
        size: usize,
        max: usize,
    }

    impl Model {
        fn record(&mut self, mark: u64, now: u32) {
            let held = self.ring.len();
            if held < self.size {
                self.ring.push((mark, now));
                self.next = held + 1;
                return;
            }
            self.next %= held;
            let (m, at) = self.ring[self.next];
            if m != 0 && now.saturating_sub(at) <= OFFER_WINDOW && held < self.max {
                self.ring.rotate_left(self.next);
                self.size = (held * 2).min(self.max);
                self.ring.push((mark, now));
                self.next = held + 1;
                return;
            }
            self.ring[self.next] = (mark, now);
            self.next = (self.next + 1) % held;
        }

        fn take(&mut self, mark: u64, now: u32) -> bool {
            match self
                .ring
                .iter_mut()
                .find(|(m, at)| *m == mark && now.saturating_sub(*at) <= OFFER_WINDOW)
            {
                Some(s) => {
                    *s = (0, 0);
                    true
                }
                None => false,
            }
        }
    }

    #[test]
    fn marks_answer_as_a_linear_scan_of_the_ring_does() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut rand = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for max in [16, 100, 1024] {
            let mut marks = Marks::new(max);
            let mut model = Model {
                ring: Vec::new(),
                next: 0,
                size: FIRST_RING.min(max),
                max,
            };
            // Unique marks (as the keyed hashes are), half of them with their low bits alike,
            // so that probe runs are long and wrap.
            let mut sent = Vec::new();
            let mut now = 0u32;
            let mut count = 0u64;
            for _ in 0..40_000 {
                let r = rand();
                now += u32::from(r % 16 == 0) * (r as u32 >> 8) % 40;
                if r % 3 != 0 {
                    count += 1;
                    let mark = if r % 2 == 0 { count << 12 } else { rand() | 1 };
                    marks.record(mark, now);
                    model.record(mark, now);
                    sent.push(mark);
                } else {
                    let mark = if sent.is_empty() || r % 7 == 0 {
                        rand() | 1
                    } else {
                        sent[rand() as usize % sent.len()]
                    };
                    let took = model.take(mark, now);
                    assert_eq!(marks.take(mark, now), took, "take {mark} (max {max})");
                }
                assert_eq!(marks.len(), model.ring.len());
            }
            assert!(marks.len() <= max);
            // Every held live mark is found; nothing else is.
            for &(m, at) in &model.ring {
                if m != 0 && now.saturating_sub(at) <= OFFER_WINDOW {
                    assert!(marks.find(m, now).is_some(), "held {m} is indexed");
                }
            }
        }
    }

    #[test]
    fn starts_empty_and_is_allocated_with_the_first_mark() {
        let mut marks = Marks::new(1024);
        assert_eq!((marks.len(), marks.heap_bytes()), (0, 0));
        assert!(!marks.take(7, 0));
        marks.record(7, 0);
        assert_eq!(marks.len(), 1);
        assert!(marks.heap_bytes() > 0);
        assert!(marks.take(7, OFFER_WINDOW));
        assert!(!marks.take(7, OFFER_WINDOW), "an offer is answered once");
    }
}
