//! [`PeerList`]: one family's peers of one torrent, sorted by address+port, as one flat slice
//! or (a large swarm) as [`Chunks`]; inserts, refreshes, removals, expiry and the per-address
//! count.

use super::chunks::Chunks;
use super::record::{PeerRecord, FLAG_COMPLETED, FLAG_SEEDING};

/// What an upsert changed, so the caller can keep its counters without rescanning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Upsert {
    pub was_new: bool,
    pub old_flags: u8,
    pub new_flags: u8,
    /// The stamp the peer had before (0 for a new peer).
    pub old_stamp: u8,
}

/// Bounds on new peers in one list; a known peer is always refreshed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Peers the list may hold.
    pub max_len: usize,
    /// Peers of one address group ([`PeerRecord::group`]) the list may hold.
    pub max_per_address: usize,
}

impl Limits {
    /// No bound.
    pub const NONE: Limits = Limits {
        max_len: usize::MAX,
        max_per_address: usize::MAX,
    };
}

/// Why a new peer was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotAdded {
    /// The list holds [`Limits::max_len`] peers.
    ListFull,
    /// The peer's address group holds [`Limits::max_per_address`] peers.
    AddressFull,
}

/// Most bytes of records a list keeps in one flat slice; a list that outgrows it is chunked.
pub const FLAT_MAX_BYTES: usize = 16 * 1024;

/// Peers of one family of one torrent, sorted by address+port.
///
/// 24 bytes: the records (a boxed slice whose length is the capacity, or a boxed chunked list
/// for a large swarm), the used length and the seeder count; an empty list owns no allocation.
#[derive(Default, Debug)]
pub struct PeerList<P: PeerRecord> {
    pub(super) repr: Repr<P>,
    pub(super) len: u32,
    seeders: u32,
}

#[derive(Debug)]
pub(super) enum Repr<P: PeerRecord> {
    /// `len` records sorted in the first slots; the rest is spare capacity.
    Flat(Box<[P]>),
    Chunked(Box<Chunks<P>>),
}

impl<P: PeerRecord> Default for Repr<P> {
    fn default() -> Self {
        Repr::Flat(Box::default())
    }
}

/// The records of a list, in address+port order, whichever form it has.
#[derive(Clone, Copy, Debug)]
pub struct Peers<'a, P> {
    flat: &'a [P],
    runs: &'a [Vec<P>],
    len: usize,
}

impl<'a, P> Peers<'a, P> {
    pub const fn empty() -> Self {
        Peers {
            flat: &[],
            runs: &[],
            len: 0,
        }
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn iter(&self) -> PeersIter<'a, P> {
        self.flat.iter().chain(self.runs.iter().flatten())
    }
}

/// Iterator over [`Peers`].
pub type PeersIter<'a, P> =
    core::iter::Chain<core::slice::Iter<'a, P>, core::iter::Flatten<core::slice::Iter<'a, Vec<P>>>>;

impl<'a, P> IntoIterator for Peers<'a, P> {
    type Item = &'a P;
    type IntoIter = PeersIter<'a, P>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<P: PeerRecord> PeerList<P> {
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    #[inline]
    pub fn seeders(&self) -> u32 {
        self.seeders
    }
    #[inline]
    pub fn leechers(&self) -> u32 {
        self.len - self.seeders
    }
    /// Bytes allocated for records and their index (for memory accounting).
    pub fn capacity_bytes(&self) -> usize {
        match &self.repr {
            Repr::Flat(slots) => slots.len() * core::mem::size_of::<P>(),
            Repr::Chunked(c) => c.capacity_bytes(),
        }
    }

    /// Whether the list is in its chunked (large-swarm) form.
    pub fn is_chunked(&self) -> bool {
        matches!(self.repr, Repr::Chunked(_))
    }

    /// Every record, in address+port order.
    pub fn peers(&self) -> Peers<'_, P> {
        match &self.repr {
            Repr::Flat(slots) => Peers {
                flat: live(slots, self.len as usize),
                runs: &[],
                len: self.len as usize,
            },
            Repr::Chunked(c) => Peers {
                flat: &[],
                runs: &c.runs,
                len: self.len as usize,
            },
        }
    }

    /// Calls `fetch` with the addresses a lookup touches first: the middle record (where the
    /// binary search starts), and the first and last (small lists fit in those lines); for a
    /// chunked list, the middle and ends of its index of runs.
    pub fn prefetch(&self, fetch: impl Fn(usize)) {
        let n = self.len as usize;
        if n == 0 {
            return;
        }
        let (base, size, n) = match &self.repr {
            Repr::Flat(slots) => (slots.as_ptr() as usize, core::mem::size_of::<P>(), n),
            Repr::Chunked(c) => (
                c.firsts.as_ptr() as usize,
                core::mem::size_of::<P::Key>(),
                c.firsts.len(),
            ),
        };
        fetch(base + n / 2 * size);
        fetch(base);
        fetch(base + (n - 1) * size);
    }

    /// Inserts or refreshes `peer` (its flags and stamp are taken as given, except that
    /// COMPLETED stays set once set).
    pub fn upsert(&mut self, peer: P) -> Upsert {
        // With no bound a new peer is always added.
        self.upsert_bounded(peer, Limits::NONE).unwrap_or(Upsert {
            was_new: false,
            old_flags: 0,
            new_flags: 0,
            old_stamp: 0,
        })
    }

    /// As [`PeerList::upsert`], but a new peer is added only within `limits`; a known peer is
    /// always refreshed.
    pub fn upsert_bounded(&mut self, peer: P, limits: Limits) -> Result<Upsert, NotAdded> {
        let new_flags_in = peer.flags();
        let key = peer.key();
        let len = self.len as usize;
        let at = match &mut self.repr {
            Repr::Flat(slots) => {
                let s = live_mut(slots, len);
                match find(s, key) {
                    Ok(i) => s.get_mut(i).ok_or(Pos { run: 0, at: i }),
                    Err(i) => Err(Pos { run: 0, at: i }),
                }
            }
            Repr::Chunked(c) => c.find_mut(key),
        };
        let pos = match at {
            Ok(slot) => {
                let old_flags = slot.flags();
                let old_stamp = slot.stamp();
                let new_flags = new_flags_in | (old_flags & FLAG_COMPLETED);
                slot.set_flags_stamp(new_flags, peer.stamp());
                if old_flags & FLAG_SEEDING != new_flags & FLAG_SEEDING {
                    if new_flags & FLAG_SEEDING != 0 {
                        self.seeders += 1;
                    } else {
                        self.seeders -= 1;
                    }
                }
                return Ok(Upsert {
                    was_new: false,
                    old_flags,
                    new_flags,
                    old_stamp,
                });
            }
            Err(pos) => pos,
        };
        if len >= limits.max_len {
            return Err(NotAdded::ListFull);
        }
        if limits.max_per_address < len.saturating_add(1)
            && self.group_count(pos, peer.group(), limits.max_per_address) >= limits.max_per_address
        {
            return Err(NotAdded::AddressFull);
        }
        self.insert_at(pos, peer);
        if new_flags_in & FLAG_SEEDING != 0 {
            self.seeders += 1;
        }
        Ok(Upsert {
            was_new: true,
            old_flags: 0,
            new_flags: new_flags_in,
            old_stamp: 0,
        })
    }

    /// Peers of address group `group` in the list, counted up to `cap`, around position
    /// `pos` (where a record of that group would be inserted).
    fn group_count(&self, pos: Pos, group: u64, cap: usize) -> usize {
        match &self.repr {
            Repr::Flat(slots) => {
                let s = live(slots, self.len as usize);
                let (before, after) = s.split_at_checked(pos.at).unwrap_or((s, &[]));
                let back = trailing_in_group(before, group, cap);
                back + leading_in_group(after, group, cap.saturating_sub(back))
            }
            Repr::Chunked(c) => c.group_count(pos, group, cap),
        }
    }

    /// Peers of `peer`'s address group ([`PeerRecord::group`]) in the list, counted up to
    /// `cap`.
    pub fn count_address(&self, peer: &P, cap: usize) -> usize {
        let pos = match &self.repr {
            Repr::Flat(slots) => {
                let i = find(live(slots, self.len as usize), peer.key()).unwrap_or_else(|i| i);
                Pos { run: 0, at: i }
            }
            Repr::Chunked(c) => match c.find(peer.key()) {
                Ok((run, at)) | Err(Pos { run, at }) => Pos { run, at },
            },
        };
        self.group_count(pos, peer.group(), cap)
    }

    /// Removes the peer with this address+port; returns its flags if it was there.
    pub fn remove(&mut self, key: P::Key) -> Option<u8> {
        let len = self.len as usize;
        let flags = match &mut self.repr {
            Repr::Flat(slots) => {
                let s = live_mut(slots, len);
                let i = find(s, key).ok()?;
                // The found record and the records after it, which move down one place.
                let tail = s.get_mut(i..)?;
                let flags = tail.first()?.flags();
                tail.copy_within(1.., 0);
                flags
            }
            Repr::Chunked(c) => {
                let (r, i) = c.find(key).ok()?;
                c.remove(r, i)?.flags()
            }
        };
        self.len -= 1;
        if flags & FLAG_SEEDING != 0 {
            self.seeders -= 1;
        }
        self.maybe_shrink();
        Some(flags)
    }

    /// Drops every peer whose stamp is `timeout_ticks` or more behind `now_tick` (mod 256).
    /// Returns (peers removed, seeders removed).
    pub fn expire(&mut self, now_tick: u8, timeout_ticks: u8) -> (u32, u32) {
        self.remove_if(|p| now_tick.wrapping_sub(p.stamp()) >= timeout_ticks)
    }

    /// The record with this key, if it is there.
    pub fn get(&self, key: P::Key) -> Option<&P> {
        match &self.repr {
            Repr::Flat(slots) => {
                let s = live(slots, self.len as usize);
                s.get(find(s, key).ok()?)
            }
            Repr::Chunked(c) => {
                let (run, at) = c.find(key).ok()?;
                c.runs.get(run)?.get(at)
            }
        }
    }

    /// Drops every peer `gone` accepts, in one pass over the list. Returns (peers removed,
    /// seeders removed).
    pub fn remove_if(&mut self, mut gone: impl FnMut(&P) -> bool) -> (u32, u32) {
        let len = self.len as usize;
        let mut seeders_gone = 0u32;
        let mut keep = |p: &P| {
            if gone(p) {
                if p.flags() & FLAG_SEEDING != 0 {
                    seeders_gone += 1;
                }
                false
            } else {
                true
            }
        };
        let kept = match &mut self.repr {
            Repr::Flat(slots) => {
                // The kept records move down over the gone ones (`kept` never passes `i`).
                let s = live_mut(slots, len);
                let mut kept = 0usize;
                for i in 0..s.len() {
                    let Some(&p) = s.get(i) else { break };
                    if keep(&p) {
                        if let Some(to) = s.get_mut(kept) {
                            *to = p;
                            kept += 1;
                        }
                    }
                }
                kept
            }
            Repr::Chunked(c) => {
                let mut kept = 0usize;
                for run in &mut c.runs {
                    run.retain(|p| keep(p));
                    kept += run.len();
                }
                if kept < len {
                    c.compact();
                }
                kept
            }
        };
        let removed = (len - kept) as u32;
        self.len = kept as u32;
        self.seeders -= seeders_gone;
        if removed > 0 {
            self.maybe_shrink();
        }
        (removed, seeders_gone)
    }

    fn insert_at(&mut self, pos: Pos, peer: P) {
        let len = self.len as usize;
        match &mut self.repr {
            Repr::Flat(slots) if len * core::mem::size_of::<P>() >= FLAT_MAX_BYTES => {
                let mut c = Chunks::from_sorted(live(slots, len));
                c.insert(c.position(peer.key()), peer);
                self.repr = Repr::Chunked(Box::new(c));
            }
            Repr::Flat(slots) => {
                let i = pos.at;
                if len == slots.len() {
                    let (before, after) = slots.split_at_checked(i).unwrap_or((slots, &[]));
                    *slots = flat_slots(
                        [before, core::slice::from_ref(&peer), after],
                        grown_capacity(len),
                    );
                } else if let Some(tail) = slots.get_mut(i..=len) {
                    // The records from `i` move up one place, into the first spare slot.
                    tail.copy_within(..tail.len() - 1, 1);
                    if let Some(at) = tail.first_mut() {
                        *at = peer;
                    }
                }
            }
            Repr::Chunked(c) => c.insert(pos, peer),
        }
        self.len += 1;
    }

    fn maybe_shrink(&mut self) {
        let len = self.len as usize;
        match &mut self.repr {
            Repr::Flat(slots) => {
                let cap = slots.len();
                if len == 0 {
                    *slots = Box::default();
                } else if cap > 8 && len < cap / 2 {
                    *slots = flat_slots([live(slots, len)], grown_capacity(len));
                }
            }
            // Back to one slice at half the size it left at, so a swarm hovering at the
            // threshold does not convert on every announce.
            Repr::Chunked(c) if len * core::mem::size_of::<P>() < FLAT_MAX_BYTES / 2 => {
                let cap = if len == 0 { 0 } else { grown_capacity(len) };
                self.repr = Repr::Flat(flat_slots(c.runs.iter().map(Vec::as_slice), cap));
            }
            Repr::Chunked(_) => {}
        }
    }
}

/// Where a record is or would go: run `run` (0 in a flat list), index `at` in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pos {
    pub(super) run: usize,
    pub(super) at: usize,
}

/// The records of a flat list: the first `len` of its slots (`len <= slots.len()`).
#[inline]
pub(super) fn live<P>(slots: &[P], len: usize) -> &[P] {
    slots.get(..len).unwrap_or_default()
}

#[inline]
fn live_mut<P>(slots: &mut [P], len: usize) -> &mut [P] {
    slots.get_mut(..len).unwrap_or_default()
}

/// A flat list's slots: the records of `parts` in turn, then spare (default) slots up to `cap`.
fn flat_slots<'a, P: PeerRecord + 'a>(
    parts: impl IntoIterator<Item = &'a [P]>,
    cap: usize,
) -> Box<[P]> {
    let mut v = Vec::with_capacity(cap);
    for part in parts {
        v.extend_from_slice(part);
    }
    v.resize(cap.max(v.len()), P::default());
    v.into_boxed_slice()
}

#[inline]
pub(super) fn find<P: PeerRecord>(s: &[P], key: P::Key) -> Result<usize, usize> {
    s.binary_search_by(|p| p.key().cmp(&key))
}

/// Records of group `g` at the end of `s` (whose records are all of group `g` or below),
/// counting at most `cap`.
pub(super) fn trailing_in_group<P: PeerRecord>(s: &[P], g: u64, cap: usize) -> usize {
    let w = s.get(s.len().saturating_sub(cap)..).unwrap_or(s);
    w.len() - w.partition_point(|p| p.group() < g)
}

/// Records of group `g` at the start of `s` (whose records are all of group `g` or above),
/// counting at most `cap`.
pub(super) fn leading_in_group<P: PeerRecord>(s: &[P], g: u64, cap: usize) -> usize {
    s.get(..cap)
        .unwrap_or(s)
        .partition_point(|p| p.group() == g)
}

/// Capacity after growing from `len`: +2 records while small, +1/8 up to 256 records, +1/32
/// up to 512, then +1/64 (the sorted insert already moves half the list, so a finer growth
/// costs little and keeps the slack of big swarms under 1%), rounded up to an even count so an
/// IPv4 list is a whole number of 16-byte allocator units.
pub(super) fn grown_capacity(len: usize) -> usize {
    let next = match len {
        0..8 => len + 2,
        8..256 => len + len / 8,
        256..512 => len + len / 32,
        _ => len + len / 64,
    };
    (next + 1) & !1
}
