//! [`LazyPeerList`]: a peer list boxed on first use.

use super::list::{Limits, NotAdded, PeerList, Peers, Upsert};
use super::record::PeerRecord;

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
            None => Peers::empty(),
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
    pub fn get(&self, key: P::Key) -> Option<&P> {
        self.0.as_ref()?.get(key)
    }
    pub fn remove_if(&mut self, gone: impl FnMut(&P) -> bool) -> (u32, u32) {
        let Some(l) = self.0.as_mut() else {
            return (0, 0);
        };
        let r = l.remove_if(gone);
        self.drop_if_empty();
        r
    }
    pub fn pick_with(&self, amount: usize, rng: &mut crate::Rng, f: impl FnMut(&P)) {
        if let Some(l) = &self.0 {
            l.pick_with(amount, rng, f);
        }
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
