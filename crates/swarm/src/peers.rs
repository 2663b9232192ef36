//! Compact per-family peer lists: opentracker's 8-byte IPv4 and 20-byte IPv6 records.
//!
//! A record is the compact wire form (address and port, network order) followed by a flags byte
//! and a one-byte time stamp, so a reply is a `memcpy` of its first 6 or 18 bytes. Records are
//! kept sorted by address+port (no per-peer allocation, no peer_id) and found by binary search.
//!
//! A list up to [`FLAT_MAX_BYTES`] of records (2048 IPv4 peers) is one boxed slice, as
//! opentracker keeps it: a lookup is one binary search, an insert or removal moves at most that
//! many bytes. It grows by an eighth (small lists by two records) and shrinks when under half
//! full, which keeps RSS per peer within ~12% of the record size. A larger list becomes a
//! chunked sorted list, a one-level B-tree: sorted runs of at most [`CHUNK_BYTES`] (512 IPv4
//! peers) with the first key of each run in a separate array, so an insert or removal is two
//! binary searches and a move within one run, whatever the swarm's size (a flat list of a
//! million peers moves 4 MB per insert under the shard lock). Both forms keep every record in
//! address+port order, so the peers of one address (IPv6: of one /64) are contiguous and
//! [`Limits::max_per_address`] is checked with a search, never a scan of the swarm.

// Indices here are positions that a binary search returned within `..len`, with
// len <= slots.len() (a run: <= its capacity), or run numbers below runs.len(); none is read
// from a request. Each move is within one list, under the shard lock, on the announce path.
#![allow(clippy::indexing_slicing)]

/// Peer is a seeder (announced left=0).
pub const FLAG_SEEDING: u8 = 0x80;
/// Peer has completed while present; sticky, so a download is counted once per presence.
pub const FLAG_COMPLETED: u8 = 0x40;
/// Peer was learned from another cluster node (live sync), not announced here.
pub const FLAG_FROM_SYNC: u8 = 0x10;

/// One stored peer: wire bytes, then flags, then stamp.
pub trait PeerRecord: Copy + Default + Eq {
    /// Bytes of address+port on the wire: 6 for IPv4, 18 for IPv6.
    const WIRE_LEN: usize;
    /// Sort key: address then port.
    type Key: Ord + Copy + core::fmt::Debug;
    fn key(&self) -> Self::Key;
    fn wire(&self) -> &[u8];
    fn flags(&self) -> u8;
    fn stamp(&self) -> u8;
    fn set_flags_stamp(&mut self, flags: u8, stamp: u8);
    /// The address group a per-address limit counts in: the IPv4 address, or the IPv6 /64
    /// (one subscriber's prefix, as `http.max_connections_per_ip` groups them). Ordered as
    /// [`PeerRecord::key`], so a group's records are contiguous in a sorted list.
    fn group(&self) -> u64;
}

/// An IPv4 peer: 4 address bytes, 2 port bytes, flags, stamp. 8 bytes, as opentracker's.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Peer4(pub [u8; 8]);

/// An IPv6 peer: 16 address bytes, 2 port bytes, flags, stamp. 20 bytes, as opentracker's.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Peer6(pub [u8; 20]);

impl Peer4 {
    pub fn new(ip: [u8; 4], port: u16) -> Self {
        let p = port.to_be_bytes();
        Peer4([ip[0], ip[1], ip[2], ip[3], p[0], p[1], 0, 0])
    }
}

impl Peer6 {
    pub fn new(ip: [u8; 16], port: u16) -> Self {
        let mut b = [0u8; 20];
        b[..16].copy_from_slice(&ip);
        b[16..18].copy_from_slice(&port.to_be_bytes());
        Peer6(b)
    }
}

impl PeerRecord for Peer4 {
    const WIRE_LEN: usize = 6;
    type Key = u64;
    #[inline]
    fn key(&self) -> u64 {
        let b = self.0;
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }
    #[inline]
    fn wire(&self) -> &[u8] {
        &self.0[..6]
    }
    #[inline]
    fn flags(&self) -> u8 {
        self.0[6]
    }
    #[inline]
    fn stamp(&self) -> u8 {
        self.0[7]
    }
    #[inline]
    fn set_flags_stamp(&mut self, flags: u8, stamp: u8) {
        self.0[6] = flags;
        self.0[7] = stamp;
    }
    #[inline]
    fn group(&self) -> u64 {
        u64::from(u32::from_be_bytes([
            self.0[0], self.0[1], self.0[2], self.0[3],
        ]))
    }
}

impl PeerRecord for Peer6 {
    const WIRE_LEN: usize = 18;
    type Key = (u128, u16);
    #[inline]
    fn key(&self) -> (u128, u16) {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.0[..16]);
        (
            u128::from_be_bytes(a),
            u16::from_be_bytes([self.0[16], self.0[17]]),
        )
    }
    #[inline]
    fn wire(&self) -> &[u8] {
        &self.0[..18]
    }
    #[inline]
    fn flags(&self) -> u8 {
        self.0[18]
    }
    #[inline]
    fn stamp(&self) -> u8 {
        self.0[19]
    }
    #[inline]
    fn set_flags_stamp(&mut self, flags: u8, stamp: u8) {
        self.0[18] = flags;
        self.0[19] = stamp;
    }
    #[inline]
    fn group(&self) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(a)
    }
}

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
/// Most bytes of records in one run of a chunked list.
pub const CHUNK_BYTES: usize = 4096;

/// Peers of one family of one torrent, sorted by address+port.
///
/// 24 bytes: the records (a boxed slice whose length is the capacity, or a boxed chunked list
/// for a large swarm), the used length and the seeder count; an empty list owns no allocation.
#[derive(Default, Debug)]
pub struct PeerList<P: PeerRecord> {
    repr: Repr<P>,
    len: u32,
    seeders: u32,
}

#[derive(Debug)]
enum Repr<P: PeerRecord> {
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
            // Invariant: len <= slots.len().
            Repr::Flat(slots) => Peers {
                flat: &slots[..self.len as usize],
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
            Repr::Flat(slots) => match find(&slots[..len], key) {
                Ok(i) => Ok(&mut slots[i]),
                Err(i) => Err(Pos { run: 0, at: i }),
            },
            Repr::Chunked(c) => c.find(key).map(|(r, i)| &mut c.runs[r][i]),
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
                let s = &slots[..self.len as usize];
                let back = trailing_in_group(&s[..pos.at], group, cap);
                back + leading_in_group(&s[pos.at..], group, cap - back)
            }
            Repr::Chunked(c) => c.group_count(pos, group, cap),
        }
    }

    /// Peers of `peer`'s address group ([`PeerRecord::group`]) in the list, counted up to
    /// `cap`.
    pub fn count_address(&self, peer: &P, cap: usize) -> usize {
        let pos = match &self.repr {
            Repr::Flat(slots) => {
                let i = find(&slots[..self.len as usize], peer.key()).unwrap_or_else(|i| i);
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
                let i = find(&slots[..len], key).ok()?;
                let flags = slots[i].flags();
                slots.copy_within(i + 1..len, i);
                flags
            }
            Repr::Chunked(c) => {
                let (r, i) = c.find(key).ok()?;
                c.remove(r, i).flags()
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
        let len = self.len as usize;
        let mut seeders_gone = 0u32;
        let mut keep = |p: &P| {
            if now_tick.wrapping_sub(p.stamp()) >= timeout_ticks {
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
                let mut kept = 0usize;
                for i in 0..len {
                    let p = slots[i];
                    if keep(&p) {
                        slots[kept] = p;
                        kept += 1;
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
                let peers = &slots[..n];
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
                    batch[k] = (run, at);
                    k += 1;
                    if k == BATCH {
                        flush(&batch, out);
                        k = 0;
                    }
                });
                flush(&batch[..k], out);
            }
        }
    }

    fn insert_at(&mut self, pos: Pos, peer: P) {
        let len = self.len as usize;
        match &mut self.repr {
            Repr::Flat(slots) if len * core::mem::size_of::<P>() >= FLAT_MAX_BYTES => {
                let mut c = Chunks::from_sorted(&slots[..len]);
                c.insert(c.position(peer.key()), peer);
                self.repr = Repr::Chunked(Box::new(c));
            }
            Repr::Flat(slots) => {
                let i = pos.at;
                if len == slots.len() {
                    let mut grown = vec![P::default(); grown_capacity(len)].into_boxed_slice();
                    grown[..i].copy_from_slice(&slots[..i]);
                    grown[i + 1..=len].copy_from_slice(&slots[i..len]);
                    grown[i] = peer;
                    *slots = grown;
                } else {
                    slots.copy_within(i..len, i + 1);
                    slots[i] = peer;
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
                    let mut s = vec![P::default(); grown_capacity(len)].into_boxed_slice();
                    s[..len].copy_from_slice(&slots[..len]);
                    *slots = s;
                }
            }
            // Back to one slice at half the size it left at, so a swarm hovering at the
            // threshold does not convert on every announce.
            Repr::Chunked(c) if len * core::mem::size_of::<P>() < FLAT_MAX_BYTES / 2 => {
                let cap = if len == 0 { 0 } else { grown_capacity(len) };
                let mut s = vec![P::default(); cap].into_boxed_slice();
                let mut i = 0;
                for run in &c.runs {
                    s[i..i + run.len()].copy_from_slice(run);
                    i += run.len();
                }
                self.repr = Repr::Flat(s);
            }
            Repr::Chunked(_) => {}
        }
    }
}

/// Where a record is or would go: run `run` (0 in a flat list), index `at` in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pos {
    run: usize,
    at: usize,
}

#[inline]
fn find<P: PeerRecord>(s: &[P], key: P::Key) -> Result<usize, usize> {
    s.binary_search_by(|p| p.key().cmp(&key))
}

/// Records of group `g` at the end of `s` (whose records are all of group `g` or below),
/// counting at most `cap`.
fn trailing_in_group<P: PeerRecord>(s: &[P], g: u64, cap: usize) -> usize {
    let w = &s[s.len().saturating_sub(cap)..];
    w.len() - w.partition_point(|p| p.group() < g)
}

/// Records of group `g` at the start of `s` (whose records are all of group `g` or above),
/// counting at most `cap`.
fn leading_in_group<P: PeerRecord>(s: &[P], g: u64, cap: usize) -> usize {
    s[..s.len().min(cap)].partition_point(|p| p.group() == g)
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

/// A large list: sorted runs of 1..=`max_run::<P>()` records, each run's first key in
/// `firsts` for the first of the two binary searches, and the runs' lengths in a Fenwick tree
/// (`sizes`), so that the n-th record (a random selection) is found in log(runs) steps. Every
/// run's capacity follows its length as a flat list's does, so memory stays within a few
/// percent of the records.
#[derive(Debug)]
struct Chunks<P: PeerRecord> {
    firsts: Vec<P::Key>,
    runs: Vec<Vec<P>>,
    /// Fenwick tree of run lengths, 1-based (`sizes[0]` unused): rebuilt when runs split,
    /// merge or go, updated in place otherwise.
    sizes: Vec<u32>,
}

const fn max_run<P>() -> usize {
    CHUNK_BYTES / core::mem::size_of::<P>()
}

impl<P: PeerRecord> Chunks<P> {
    /// Cuts a sorted slice into runs three quarters full, leaving room to grow before a split.
    fn from_sorted(s: &[P]) -> Self {
        let mut c = Chunks {
            firsts: Vec::new(),
            runs: Vec::new(),
            sizes: Vec::new(),
        };
        for piece in s.chunks(max_run::<P>() * 3 / 4) {
            c.firsts.push(piece[0].key());
            c.runs.push(piece.to_vec());
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
            if let Some(r) = self.runs.get(i - 1) {
                self.sizes[i] += r.len() as u32;
            }
            let parent = i + (i & i.wrapping_neg());
            if parent <= n {
                let v = self.sizes[i];
                self.sizes[parent] += v;
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
    fn nth(&self, i: usize) -> (usize, usize) {
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

    fn capacity_bytes(&self) -> usize {
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

    fn find(&self, key: P::Key) -> Result<(usize, usize), Pos> {
        let run = self.run_of(key);
        match self.runs.get(run).map(|r| find(r, key)) {
            Some(Ok(at)) => Ok((run, at)),
            Some(Err(at)) => Err(Pos { run, at }),
            None => Err(Pos { run: 0, at: 0 }),
        }
    }

    fn position(&self, key: P::Key) -> Pos {
        match self.find(key) {
            Ok((run, at)) | Err(Pos { run, at }) => Pos { run, at },
        }
    }

    fn insert(&mut self, pos: Pos, peer: P) {
        let Pos { mut run, mut at } = pos;
        let mut split = false;
        if self.runs.is_empty() {
            self.runs.push(Vec::new());
            self.firsts.push(peer.key());
            split = true;
        }
        if self.runs[run].len() >= max_run::<P>() {
            split = true;
            // Split the full run in two halves; the record goes into the one it belongs to.
            let half = max_run::<P>() / 2;
            let tail = self.runs[run].split_off(half);
            self.runs[run].shrink_to(grown_capacity(half));
            self.firsts.insert(run + 1, tail[0].key());
            self.runs.insert(run + 1, tail);
            if at > half {
                run += 1;
                at -= half;
            }
        }
        let r = &mut self.runs[run];
        if r.len() == r.capacity() {
            r.reserve_exact(grown_capacity(r.len()).min(max_run::<P>()) - r.len());
        }
        r.insert(at, peer);
        if at == 0 {
            self.firsts[run] = peer.key();
        }
        if split {
            self.rebuild_sizes();
        } else {
            self.resize_run(run, true);
        }
    }

    /// Removes the record at (`run`, `at`); merges a run that fell under a quarter full into a
    /// neighbour when both fit in one, and drops an emptied one.
    fn remove(&mut self, run: usize, at: usize) -> P {
        let r = &mut self.runs[run];
        let p = r.remove(at);
        if r.is_empty() {
            self.runs.remove(run);
            self.firsts.remove(run);
            self.rebuild_sizes();
            return p;
        }
        if at == 0 {
            self.firsts[run] = r[0].key();
        }
        if r.len() < r.capacity() / 2 {
            r.shrink_to(grown_capacity(r.len()));
        }
        let (max, n) = (max_run::<P>(), r.len());
        self.resize_run(run, false);
        if n < max / 4 {
            if run + 1 < self.runs.len() && n + self.runs[run + 1].len() <= max * 3 / 4 {
                self.merge_next(run);
            } else if run > 0 && n + self.runs[run - 1].len() <= max * 3 / 4 {
                self.merge_next(run - 1);
            }
        }
        p
    }

    fn merge_next(&mut self, run: usize) {
        let next = self.runs.remove(run + 1);
        self.firsts.remove(run + 1);
        let r = &mut self.runs[run];
        r.reserve_exact(next.len());
        r.extend_from_slice(&next);
        self.rebuild_sizes();
    }

    /// After an expiry pass: drops emptied runs, joins neighbours that fit in three quarters
    /// of a run, trims capacity, and rebuilds the index.
    fn compact(&mut self) {
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
        self.firsts = runs.iter().map(|r| r[0].key()).collect();
        self.runs = runs;
        self.rebuild_sizes();
    }

    fn group_count(&self, pos: Pos, g: u64, cap: usize) -> usize {
        let Some(run) = self.runs.get(pos.run) else {
            return 0;
        };
        // Backwards from the position, run by run while whole runs are of the group.
        let mut n = trailing_in_group(&run[..pos.at], g, cap);
        let mut whole = n == pos.at;
        let mut i = pos.run;
        while whole && n < cap && i > 0 {
            i -= 1;
            let t = trailing_in_group(&self.runs[i], g, cap - n);
            n += t;
            whole = t == self.runs[i].len();
        }
        // Forwards.
        let t = leading_in_group(&run[pos.at..], g, cap - n);
        n += t;
        let mut whole = t == run.len() - pos.at;
        let mut i = pos.run;
        while whole && n < cap && i + 1 < self.runs.len() {
            i += 1;
            let t = leading_in_group(&self.runs[i], g, cap - n);
            n += t;
            whole = t == self.runs[i].len();
        }
        n
    }
}

/// A peer list that costs one pointer while empty: for the IPv6 side of a torrent, which most
/// torrents don't use, so the torrent entry stays small.
#[derive(Default, Debug)]
pub struct LazyPeerList<P: PeerRecord>(Option<Box<PeerList<P>>>);

impl<P: PeerRecord> LazyPeerList<P> {
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |l| l.len())
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn seeders(&self) -> u32 {
        self.0.as_ref().map_or(0, |l| l.seeders())
    }
    pub fn leechers(&self) -> u32 {
        self.0.as_ref().map_or(0, |l| l.leechers())
    }
    pub fn capacity_bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |l| {
            core::mem::size_of::<PeerList<P>>() + l.capacity_bytes()
        })
    }
    pub fn peers(&self) -> Peers<'_, P> {
        match &self.0 {
            Some(l) => l.peers(),
            None => Peers {
                flat: &[],
                runs: &[],
                len: 0,
            },
        }
    }
    pub fn upsert(&mut self, peer: P) -> Upsert {
        self.0.get_or_insert_with(Default::default).upsert(peer)
    }
    pub fn upsert_bounded(&mut self, peer: P, limits: Limits) -> Result<Upsert, NotAdded> {
        let r = self
            .0
            .get_or_insert_with(Default::default)
            .upsert_bounded(peer, limits);
        self.drop_if_empty();
        r
    }
    pub fn count_address(&self, peer: &P, cap: usize) -> usize {
        self.0.as_ref().map_or(0, |l| l.count_address(peer, cap))
    }
    pub fn remove(&mut self, key: P::Key) -> Option<u8> {
        let flags = self.0.as_mut()?.remove(key);
        self.drop_if_empty();
        flags
    }
    pub fn expire(&mut self, now_tick: u8, timeout_ticks: u8) -> (u32, u32) {
        let Some(l) = self.0.as_mut() else {
            return (0, 0);
        };
        let r = l.expire(now_tick, timeout_ticks);
        self.drop_if_empty();
        r
    }
    pub fn select_into(&self, amount: usize, rng: &mut crate::Rng, out: &mut Vec<u8>) {
        if let Some(l) = &self.0 {
            l.select_into(amount, rng, out);
        }
    }
    /// Calls `fetch` with the address of the list's header (behind the box) if there is a
    /// list: the first of the two loads a lookup makes. Returns whether there is one.
    pub fn prefetch_header(&self, fetch: impl Fn(usize)) -> bool {
        match &self.0 {
            Some(l) => {
                fetch(&**l as *const PeerList<P> as usize);
                true
            }
            None => false,
        }
    }
    /// As [`PeerList::prefetch`], once the header is in cache.
    pub fn prefetch(&self, fetch: impl Fn(usize)) {
        if let Some(l) = &self.0 {
            l.prefetch(fetch);
        }
    }
    fn drop_if_empty(&mut self) {
        if self.0.as_ref().is_some_and(|l| l.is_empty()) {
            self.0 = None;
        }
    }
}

/// Capacity after growing from `len`: +2 records while small, +1/8 up to 256 records, +1/32
/// up to 512, then +1/64 (the sorted insert already moves half the list, so a finer growth
/// costs little and keeps the slack of big swarms under 1%), rounded up to an even count so an
/// IPv4 list is a whole number of 16-byte allocator units.
fn grown_capacity(len: usize) -> usize {
    let next = match len {
        0..8 => len + 2,
        8..256 => len + len / 8,
        256..512 => len + len / 32,
        _ => len + len / 64,
    };
    (next + 1) & !1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;

    fn p4(last: u8, port: u16, flags: u8) -> Peer4 {
        let mut p = Peer4::new([10, 0, 0, last], port);
        p.set_flags_stamp(flags, 0);
        p
    }

    #[test]
    fn sizes_match_opentracker() {
        assert_eq!(core::mem::size_of::<Peer4>(), 8);
        assert_eq!(core::mem::size_of::<Peer6>(), 20);
        assert_eq!(core::mem::size_of::<PeerList<Peer4>>(), 24);
    }

    #[test]
    fn upsert_keeps_sorted_and_counts_seeders() {
        let mut l = PeerList::<Peer4>::default();
        for i in (0..50u8).rev() {
            assert!(
                l.upsert(p4(i, 1, if i % 2 == 0 { FLAG_SEEDING } else { 0 }))
                    .was_new
            );
        }
        assert_eq!(l.len(), 50);
        assert_eq!(l.seeders(), 25);
        let v: Vec<Peer4> = l.peers().iter().copied().collect();
        assert!(v.windows(2).all(|w| w[0].key() < w[1].key()));
        // Same address+port refreshes, and seeding transitions adjust the count.
        let u = l.upsert(p4(1, 1, FLAG_SEEDING));
        assert!(!u.was_new);
        assert_eq!(l.seeders(), 26);
        l.upsert(p4(0, 1, 0));
        assert_eq!(l.seeders(), 25);
        // Another port is another peer.
        assert!(l.upsert(p4(0, 2, 0)).was_new);
        assert_eq!(l.len(), 51);
    }

    #[test]
    fn lazy_list_allocates_only_when_used() {
        assert_eq!(core::mem::size_of::<LazyPeerList<Peer6>>(), 8);
        let mut l = LazyPeerList::<Peer6>::default();
        assert_eq!(l.capacity_bytes(), 0);
        let mut p = Peer6::new([1; 16], 5);
        p.set_flags_stamp(FLAG_SEEDING, 1);
        assert!(l.upsert(p).was_new);
        assert_eq!((l.len(), l.seeders(), l.leechers()), (1, 1, 0));
        assert!(l.capacity_bytes() > 0);
        assert_eq!(l.expire(2, 1), (1, 1));
        assert_eq!(l.capacity_bytes(), 0);
        l.upsert(p);
        assert_eq!(l.remove(p.key()), Some(FLAG_SEEDING));
        assert_eq!(l.capacity_bytes(), 0);
        assert_eq!(l.remove(p.key()), None);
    }

    #[test]
    fn growth_keeps_slack_small() {
        let mut l = PeerList::<Peer4>::default();
        for i in 0..1000u16 {
            let mut p = Peer4::new([1, 2, (i >> 8) as u8, i as u8], 1);
            p.set_flags_stamp(0, 0);
            l.upsert(p);
            let cap = l.capacity_bytes() / 8;
            assert!(
                cap >= l.len() && (cap <= 10 || cap * 8 <= l.len() * 9 + 16),
                "{} in {cap}",
                l.len()
            );
            if l.len() > 400 {
                assert!(cap * 32 <= l.len() * 33 + 64, "{} in {cap}", l.len());
            }
            if l.len() > 700 {
                assert!(cap * 64 <= l.len() * 65 + 128, "{} in {cap}", l.len());
            }
        }
    }

    fn len_limit(max_len: usize) -> Limits {
        Limits {
            max_len,
            ..Limits::NONE
        }
    }

    #[test]
    fn bounded_upsert_refreshes_but_does_not_grow() {
        let mut l = PeerList::<Peer4>::default();
        assert!(l.upsert_bounded(p4(1, 1, 0), len_limit(2)).is_ok());
        assert!(l.upsert_bounded(p4(2, 1, 0), len_limit(2)).is_ok());
        assert_eq!(
            l.upsert_bounded(p4(3, 1, 0), len_limit(2)),
            Err(NotAdded::ListFull)
        );
        let u = l
            .upsert_bounded(p4(1, 1, FLAG_SEEDING), len_limit(2))
            .unwrap();
        assert!(!u.was_new);
        assert_eq!((l.len(), l.seeders()), (2, 1));
        let mut lazy = LazyPeerList::<Peer6>::default();
        assert_eq!(
            lazy.upsert_bounded(Peer6::new([1; 16], 1), len_limit(0)),
            Err(NotAdded::ListFull)
        );
        assert_eq!(
            lazy.capacity_bytes(),
            0,
            "a refused first peer allocates nothing"
        );
    }

    #[test]
    fn completed_is_sticky() {
        let mut l = PeerList::<Peer4>::default();
        l.upsert(p4(1, 1, FLAG_SEEDING | FLAG_COMPLETED));
        let u = l.upsert(p4(1, 1, FLAG_SEEDING));
        assert_eq!(u.old_flags & FLAG_COMPLETED, FLAG_COMPLETED);
        assert_eq!(u.new_flags & FLAG_COMPLETED, FLAG_COMPLETED);
    }

    #[test]
    fn remove_and_shrink() {
        let mut l = PeerList::<Peer4>::default();
        for i in 0..100u8 {
            l.upsert(p4(i, 1, FLAG_SEEDING));
        }
        for i in 0..95u8 {
            assert_eq!(l.remove(p4(i, 1, 0).key()), Some(FLAG_SEEDING));
        }
        assert_eq!(l.remove(p4(0, 1, 0).key()), None);
        assert_eq!(l.len(), 5);
        assert_eq!(l.seeders(), 5);
        assert!(l.capacity_bytes() <= 8 * 10, "{}", l.capacity_bytes());
        for i in 95..100u8 {
            l.remove(p4(i, 1, 0).key());
        }
        assert_eq!(l.capacity_bytes(), 0);
    }

    #[test]
    fn expire_by_stamp_with_wraparound() {
        let mut l = PeerList::<Peer4>::default();
        let mut a = Peer4::new([1, 1, 1, 1], 1);
        a.set_flags_stamp(FLAG_SEEDING, 250);
        let mut b = Peer4::new([1, 1, 1, 2], 1);
        b.set_flags_stamp(0, 4);
        l.upsert(a);
        l.upsert(b);
        // now = 5: a is 11 ticks old (wrapped), b is 1 tick old.
        assert_eq!(l.expire(5, 10), (1, 1));
        assert_eq!(l.len(), 1);
        assert_eq!(l.seeders(), 0);
        assert_eq!(l.expire(14, 10), (1, 0));
        assert!(l.is_empty());
    }

    #[test]
    fn selection_is_distinct_and_bounded() {
        let mut l = PeerList::<Peer4>::default();
        for i in 0..200u8 {
            l.upsert(p4(i, 7, 0));
        }
        let mut rng = Rng::new(1);
        let mut out = Vec::new();
        l.select_into(50, &mut rng, &mut out);
        assert_eq!(out.len(), 50 * 6);
        let mut seen: Vec<&[u8]> = out.chunks(6).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 50);
        out.clear();
        l.select_into(500, &mut rng, &mut out);
        assert_eq!(out.len(), 200 * 6);
    }

    /// A list's internal invariants: sorted, counted, and (chunked) runs within bounds with
    /// their first keys indexed.
    fn check<P: PeerRecord>(l: &PeerList<P>) {
        let v: Vec<P> = l.peers().iter().copied().collect();
        assert_eq!(v.len(), l.len());
        assert!(v.windows(2).all(|w| w[0].key() < w[1].key()), "sorted");
        let seeders = v.iter().filter(|p| p.flags() & FLAG_SEEDING != 0).count();
        assert_eq!(seeders as u32, l.seeders());
        match &l.repr {
            Repr::Flat(slots) => assert!(slots.len() >= l.len()),
            Repr::Chunked(c) => {
                assert_eq!(c.firsts.len(), c.runs.len());
                for (f, r) in c.firsts.iter().zip(&c.runs) {
                    assert!(!r.is_empty() && r.len() <= max_run::<P>());
                    assert_eq!(*f, r[0].key());
                }
                // The size tree finds every record by its index.
                let mut i = 0;
                for (run, r) in c.runs.iter().enumerate() {
                    for at in 0..r.len() {
                        assert_eq!(c.nth(i), (run, at), "record {i}");
                        i += 1;
                    }
                }
                // Memory follows the records as a flat list's does (shrunk when under half
                // full), plus the index.
                let records = l.len() * core::mem::size_of::<P>();
                assert!(
                    l.capacity_bytes() <= records * 2 + 64 * c.runs.len() + 4096,
                    "{} for {records}",
                    l.capacity_bytes()
                );
            }
        }
    }

    /// Drives a list and a `BTreeMap` model with the same random operations (inserts,
    /// refreshes, removals, expiry, selections, per-address counts), through the flat form,
    /// into the chunked form and back, and compares them all along.
    fn against_model<P: PeerRecord + core::fmt::Debug>(make: impl Fn(&mut Rng) -> P, seed: u64) {
        use std::collections::BTreeMap;
        let mut rng = Rng::new(seed);
        let mut l = PeerList::<P>::default();
        let mut model: BTreeMap<P::Key, P> = BTreeMap::new();
        let mut was_chunked = false;
        let mut out = Vec::new();
        let steps = 40_000u32;
        for step in 0..steps {
            // Mostly inserts in the first half, mostly removals in the second.
            let grow = step < steps / 2;
            let roll = rng.below(100);
            let mut p = make(&mut rng);
            let flags = [0, FLAG_SEEDING, FLAG_SEEDING | FLAG_COMPLETED][rng.below(3) as usize];
            let stamp = (step / 500) as u8;
            p.set_flags_stamp(flags, stamp);
            if (grow && roll < 85) || (!grow && roll < 15) {
                let known = model.get(&p.key()).copied();
                let u = l.upsert(p);
                assert_eq!(u.was_new, known.is_none());
                let mut stored = p;
                if let Some(k) = known {
                    assert_eq!(u.old_flags, k.flags());
                    stored.set_flags_stamp(flags | (k.flags() & FLAG_COMPLETED), stamp);
                }
                model.insert(p.key(), stored);
            } else if roll < 99 {
                // Remove a peer that is there (picked through a selection) or one that is not.
                let key = match model.range(p.key()..).next() {
                    Some((k, _)) if rng.below(2) == 0 => *k,
                    _ => p.key(),
                };
                assert_eq!(l.remove(key), model.remove(&key).map(|q| q.flags()));
            } else {
                let timeout = 30;
                let now = stamp;
                let (removed, _) = l.expire(now, timeout);
                let before = model.len();
                model.retain(|_, q| now.wrapping_sub(q.stamp()) < timeout);
                assert_eq!(removed as usize, before - model.len());
            }
            was_chunked |= l.is_chunked();
            if step % 97 == 0 {
                check(&l);
                let got: Vec<P> = l.peers().iter().copied().collect();
                let want: Vec<P> = model.values().copied().collect();
                assert_eq!(got, want, "step {step}");
                // Per-address counts, capped, for an address that may or may not be there.
                let q = make(&mut rng);
                for cap in [1, 3, 50, 10_000] {
                    let n = model.values().filter(|m| m.group() == q.group()).count();
                    assert_eq!(l.count_address(&q, cap), n.min(cap), "cap {cap}");
                }
                // Selections are distinct members of the list.
                let members: std::collections::HashSet<&[u8]> =
                    model.values().map(|m| m.wire()).collect();
                for amount in [1, 50, 200] {
                    out.clear();
                    l.select_into(amount, &mut rng, &mut out);
                    let picked: Vec<&[u8]> = out.chunks(P::WIRE_LEN).collect();
                    assert_eq!(picked.len(), amount.min(model.len()));
                    let mut uniq = picked.clone();
                    uniq.sort();
                    uniq.dedup();
                    assert_eq!(uniq.len(), picked.len(), "distinct");
                    assert!(picked.iter().all(|w| members.contains(w)));
                }
            }
        }
        assert!(was_chunked, "the run reached the chunked form");
        assert!(!l.is_chunked(), "and went back to one slice");
        for k in model.keys().copied().collect::<Vec<_>>() {
            assert!(l.remove(k).is_some());
        }
        assert_eq!((l.len(), l.capacity_bytes()), (0, 0));
    }

    #[test]
    fn v4_list_matches_a_model_through_both_forms() {
        // 8 addresses x 1024 ports: up to 8192 peers, groups spanning runs.
        against_model(
            |r| Peer4::new([10, 0, 0, r.below(8) as u8], r.below(1024) as u16),
            11,
        );
    }

    #[test]
    fn v6_list_matches_a_model_through_both_forms() {
        // Four /64s, addresses inside them told apart by their last byte.
        against_model(
            |r| {
                let mut ip = [
                    0x20,
                    1,
                    0xd,
                    0xb8,
                    0,
                    0,
                    0,
                    r.below(4) as u8,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                ];
                ip[15] = r.below(4) as u8;
                Peer6::new(ip, r.below(700) as u16)
            },
            12,
        );
    }

    #[test]
    fn per_address_limit_counts_the_ipv4_address_and_the_ipv6_64() {
        let lim = Limits {
            max_len: usize::MAX,
            max_per_address: 3,
        };
        let mut l = PeerList::<Peer4>::default();
        for port in 1..=3 {
            assert!(l.upsert_bounded(p4(1, port, 0), lim).is_ok());
        }
        assert_eq!(
            l.upsert_bounded(p4(1, 4, 0), lim),
            Err(NotAdded::AddressFull)
        );
        assert!(
            l.upsert_bounded(p4(1, 2, FLAG_SEEDING), lim).is_ok(),
            "known peers refresh"
        );
        assert!(
            l.upsert_bounded(p4(2, 4, 0), lim).is_ok(),
            "another address"
        );
        assert!(
            l.upsert_bounded(p4(0, 4, 0), lim).is_ok(),
            "a lower address"
        );
        l.remove(p4(1, 1, 0).key());
        assert!(l.upsert_bounded(p4(1, 4, 0), lim).is_ok(), "room again");

        let mut l6 = PeerList::<Peer6>::default();
        let in64 = |last: u8, port: u16| {
            let mut ip = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0];
            ip[15] = last;
            Peer6::new(ip, port)
        };
        for last in 1..=3 {
            assert!(l6.upsert_bounded(in64(last, 1), lim).is_ok());
        }
        assert_eq!(
            l6.upsert_bounded(in64(9, 1), lim),
            Err(NotAdded::AddressFull),
            "another address of the same /64"
        );
        let mut other = in64(9, 1);
        other.0[7] = 8;
        assert!(l6.upsert_bounded(other, lim).is_ok(), "the next /64");
    }

    #[test]
    fn per_address_limit_holds_across_runs_of_a_chunked_list() {
        let lim = Limits {
            max_len: usize::MAX,
            max_per_address: 1000,
        };
        let mut l = PeerList::<Peer4>::default();
        // Neighbours on both sides, so the address's run boundaries fall inside its range.
        for port in 0..3000 {
            l.upsert(p4(1, port, 0));
            l.upsert(p4(3, port, 0));
        }
        for port in 0..1000 {
            assert!(l.upsert_bounded(p4(2, port * 7, 0), lim).is_ok());
        }
        assert!(l.is_chunked());
        if let Repr::Chunked(c) = &l.repr {
            let runs = c
                .runs
                .iter()
                .filter(|r| r.iter().any(|p| p.group() == p4(2, 0, 0).group()));
            assert!(runs.count() >= 3, "the address spans several runs");
        }
        assert_eq!(
            l.upsert_bounded(p4(2, 1, 0), lim),
            Err(NotAdded::AddressFull)
        );
        assert_eq!(
            l.upsert_bounded(p4(2, 65535, 0), lim),
            Err(NotAdded::AddressFull)
        );
        assert_eq!(l.count_address(&p4(2, 0, 0), usize::MAX), 1000);
        check(&l);
    }

    #[test]
    fn selection_from_a_chunked_list_spreads_over_it() {
        let mut l = PeerList::<Peer4>::default();
        for i in 0..20_000u32 {
            l.upsert(Peer4::new(
                [10, (i >> 16) as u8, (i >> 8) as u8, i as u8],
                1,
            ));
        }
        assert!(l.is_chunked());
        let mut rng = Rng::new(5);
        let mut hits = [0u32; 10];
        let mut out = Vec::new();
        for _ in 0..200 {
            out.clear();
            l.select_into(50, &mut rng, &mut out);
            assert_eq!(out.len(), 50 * 6);
            for p in out.chunks(6) {
                let i = u32::from_be_bytes([0, p[1], p[2], p[3]]);
                hits[(i / 2000) as usize] += 1;
            }
        }
        // 10,000 picks over ten tenths of the list: each gets its share.
        assert!(hits.iter().all(|&h| (900..=1100).contains(&h)), "{hits:?}");
    }
}
