//! One stored peer: the compact wire form of its address and port, a flags byte and a tick
//! stamp, as opentracker stores it (8 bytes for IPv4, 20 for IPv6).

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
