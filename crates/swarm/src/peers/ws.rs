//! A WebTorrent peer's record. A WebTorrent peer has no address to hand out: it is reached only
//! by relaying WebRTC offers and answers over the WebSocket connection it announced on, so its
//! record holds its peer_id and the server's key for that connection instead.

use super::record::PeerRecord;

/// A WebTorrent peer: 20 bytes of peer_id, the 8-byte connection key (native order), flags,
/// stamp. 30 bytes, byte-aligned, kept sorted by peer_id in a [`PeerList`](super::PeerList),
/// so a peer is found by binary search and a large swarm takes the chunked form as UDP and
/// HTTP swarms do.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct WsPeer(pub [u8; 30]);

impl WsPeer {
    pub fn new(peer_id: [u8; 20], conn: u64) -> Self {
        let mut b = [0u8; 30];
        let (id, rest) = b.split_at_mut(20);
        id.copy_from_slice(&peer_id);
        if let Some(c) = rest.get_mut(..8) {
            c.copy_from_slice(&conn.to_ne_bytes());
        }
        WsPeer(b)
    }

    #[inline]
    pub fn peer_id(&self) -> [u8; 20] {
        let mut id = [0u8; 20];
        id.copy_from_slice(self.0.get(..20).unwrap_or(&[0; 20]));
        id
    }

    /// The server's key of the connection that announced this peer.
    #[inline]
    pub fn conn(&self) -> u64 {
        let [.., c0, c1, c2, c3, c4, c5, c6, c7, _, _] = self.0;
        u64::from_ne_bytes([c0, c1, c2, c3, c4, c5, c6, c7])
    }
}

impl PeerRecord for WsPeer {
    /// The peer_id: what an offer names its sender by.
    const WIRE_LEN: usize = 20;
    type Key = [u8; 20];
    #[inline]
    fn key(&self) -> [u8; 20] {
        self.peer_id()
    }
    #[inline]
    fn wire(&self) -> &[u8] {
        self.0.get(..20).unwrap_or_default()
    }
    #[inline]
    fn flags(&self) -> u8 {
        let [.., f, _] = self.0;
        f
    }
    #[inline]
    fn stamp(&self) -> u8 {
        let [.., s] = self.0;
        s
    }
    #[inline]
    fn set_flags_stamp(&mut self, flags: u8, stamp: u8) {
        let [.., f, s] = &mut self.0;
        *f = flags;
        *s = stamp;
    }
    /// One group: a WebTorrent peer has no address to count by (the server bounds the
    /// peer_ids of one connection), so its list is never given a per-address limit.
    #[inline]
    fn group(&self) -> u64 {
        0
    }
}
