//! Compact per-family peer lists: opentracker's 8-byte IPv4 and 20-byte IPv6 records.
//!
//! A record is the compact wire form (address and port, network order) followed by a flags byte
//! and a one-byte time stamp, so a reply is a `memcpy` of its first 6 or 18 bytes. Records are
//! kept sorted by address+port in one boxed slice (no per-peer allocation, no peer_id), found by
//! binary search. The slice grows by an eighth (small lists by two records) and shrinks when
//! under half full, which keeps RSS per peer within ~12% of the record size: the extra copies
//! cost little next to the sorted insert's own move.

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
    type Key: Ord + Copy;
    fn key(&self) -> Self::Key;
    fn wire(&self) -> &[u8];
    fn flags(&self) -> u8;
    fn stamp(&self) -> u8;
    fn set_flags_stamp(&mut self, flags: u8, stamp: u8);
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

/// Peers of one family of one torrent, sorted by address+port.
///
/// 24 bytes: a boxed slice (whose length is the capacity) plus the used length and the
/// seeder count; an empty list owns no allocation.
#[derive(Default, Debug)]
pub struct PeerList<P: PeerRecord> {
    slots: Box<[P]>,
    len: u32,
    seeders: u32,
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
    /// Bytes allocated for records (for memory accounting).
    pub fn capacity_bytes(&self) -> usize {
        self.slots.len() * core::mem::size_of::<P>()
    }

    #[inline]
    pub fn as_slice(&self) -> &[P] {
        // Invariant: len <= slots.len().
        &self.slots[..self.len as usize]
    }

    /// Calls `fetch` with the addresses a lookup touches first: the middle record (where the
    /// binary search starts), and the first and last (small lists fit in those lines).
    pub fn prefetch(&self, fetch: impl Fn(usize)) {
        let n = self.len as usize;
        if n > 0 {
            let base = self.slots.as_ptr() as usize;
            let size = core::mem::size_of::<P>();
            fetch(base + n / 2 * size);
            fetch(base);
            fetch(base + (n - 1) * size);
        }
    }

    fn find(&self, key: P::Key) -> Result<usize, usize> {
        self.as_slice().binary_search_by(|p| p.key().cmp(&key))
    }

    /// Inserts or refreshes `peer` (its flags and stamp are taken as given, except that
    /// COMPLETED stays set once set).
    pub fn upsert(&mut self, peer: P) -> Upsert {
        // With no bound a new peer is always inserted.
        self.upsert_bounded(peer, usize::MAX).unwrap_or(Upsert {
            was_new: false,
            old_flags: 0,
            new_flags: 0,
            old_stamp: 0,
        })
    }

    /// As [`PeerList::upsert`], but a new peer is not added when the list already holds
    /// `max_len` peers (`None`); a known peer is always refreshed.
    pub fn upsert_bounded(&mut self, peer: P, max_len: usize) -> Option<Upsert> {
        let new_flags_in = peer.flags();
        match self.find(peer.key()) {
            Ok(i) => {
                let slot = &mut self.slots[i];
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
                Some(Upsert {
                    was_new: false,
                    old_flags,
                    new_flags,
                    old_stamp,
                })
            }
            Err(_) if self.len() >= max_len => None,
            Err(i) => {
                self.insert_at(i, peer);
                if new_flags_in & FLAG_SEEDING != 0 {
                    self.seeders += 1;
                }
                Some(Upsert {
                    was_new: true,
                    old_flags: 0,
                    new_flags: new_flags_in,
                    old_stamp: 0,
                })
            }
        }
    }

    /// Removes the peer with this address+port; returns its flags if it was there.
    pub fn remove(&mut self, key: P::Key) -> Option<u8> {
        let i = self.find(key).ok()?;
        let flags = self.slots[i].flags();
        let len = self.len as usize;
        self.slots.copy_within(i + 1..len, i);
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
        let mut kept = 0usize;
        let mut seeders_gone = 0u32;
        for i in 0..len {
            let p = self.slots[i];
            if now_tick.wrapping_sub(p.stamp()) >= timeout_ticks {
                if p.flags() & FLAG_SEEDING != 0 {
                    seeders_gone += 1;
                }
            } else {
                self.slots[kept] = p;
                kept += 1;
            }
        }
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
        let peers = self.as_slice();
        let n = peers.len();
        if amount == 0 || n == 0 {
            return;
        }
        if amount >= n {
            for p in peers {
                out.extend_from_slice(p.wire());
            }
            return;
        }
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
            if let Some(p) = peers.get(idx) {
                out.extend_from_slice(p.wire());
            }
            lo += len;
        }
    }

    fn insert_at(&mut self, i: usize, peer: P) {
        let len = self.len as usize;
        if len == self.slots.len() {
            let new_cap = grown_capacity(len);
            let mut grown = vec![P::default(); new_cap].into_boxed_slice();
            grown[..i].copy_from_slice(&self.slots[..i]);
            grown[i + 1..=len].copy_from_slice(&self.slots[i..len]);
            grown[i] = peer;
            self.slots = grown;
        } else {
            self.slots.copy_within(i..len, i + 1);
            self.slots[i] = peer;
        }
        self.len += 1;
    }

    fn maybe_shrink(&mut self) {
        let len = self.len as usize;
        let cap = self.slots.len();
        if len == 0 {
            self.slots = Box::default();
        } else if cap > 8 && len < cap / 2 {
            let mut s = vec![P::default(); grown_capacity(len)].into_boxed_slice();
            s[..len].copy_from_slice(&self.slots[..len]);
            self.slots = s;
        }
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
    pub fn as_slice(&self) -> &[P] {
        self.0.as_ref().map_or(&[], |l| l.as_slice())
    }
    pub fn upsert(&mut self, peer: P) -> Upsert {
        self.0.get_or_insert_with(Default::default).upsert(peer)
    }
    pub fn upsert_bounded(&mut self, peer: P, max_len: usize) -> Option<Upsert> {
        let r = self
            .0
            .get_or_insert_with(Default::default)
            .upsert_bounded(peer, max_len);
        self.drop_if_empty();
        r
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
        assert!(l.as_slice().windows(2).all(|w| w[0].key() < w[1].key()));
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

    #[test]
    fn bounded_upsert_refreshes_but_does_not_grow() {
        let mut l = PeerList::<Peer4>::default();
        assert!(l.upsert_bounded(p4(1, 1, 0), 2).is_some());
        assert!(l.upsert_bounded(p4(2, 1, 0), 2).is_some());
        assert_eq!(l.upsert_bounded(p4(3, 1, 0), 2), None);
        let u = l.upsert_bounded(p4(1, 1, FLAG_SEEDING), 2).unwrap();
        assert!(!u.was_new);
        assert_eq!((l.len(), l.seeders()), (2, 1));
        let mut lazy = LazyPeerList::<Peer6>::default();
        assert_eq!(lazy.upsert_bounded(Peer6::new([1; 16], 1), 0), None);
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
}
