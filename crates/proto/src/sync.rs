//! Live-sync packets: how cluster nodes tell each other the peers they learn, byte-compatible
//! with opentracker's cluster mode ([`ot_livesync.c`](https://erdgeist.org/gitweb/opentracker/tree/ot_livesync.c)).
//!
//! ```text
//! off 0  4 bytes  tracker id, as opentracker sends it: its host byte order (little-endian on
//!                 x86); only compared for equality (echo suppression), never interpreted
//! off 4  4 bytes  type, big-endian: 0 = IPv4 entries (28 bytes), 1 = IPv6 entries (40 bytes)
//! off 8  entries until the end of the datagram (or of the body, with a key):
//!          20 info_hash | 4 or 16 address | 2 port (big-endian) | 1 flags | 1 age (0)
//! flags: 0x80 seeding, 0x40 completed, 0x20 stopped
//! ```
//!
//! A datagram is at most [`MAX_PACKET`] (1480) bytes: 52 IPv4 or 36 IPv6 entries. opentracker
//! master lets an IPv6 packet grow to 1488 bytes (a buffer overflow); [`Builder`] never passes
//! 1480, and receivers refuse anything larger before reading it. Nothing valid is lost: the
//! 37th IPv6 entry opentracker writes runs over its 1480-byte buffer into the buffer's length
//! field (`ot_livesync.c`, `sync_buffer`), so what it would send then is not a packet.
//!
//! **Authenticated extension** (ferrotracker only, opt-in with a shared key; opentracker nodes
//! do not understand it): the body is followed by a 24-byte trailer, an 8-byte big-endian Unix
//! time of sending and the first 16 bytes of HMAC-SHA-256 (RFC 2104, truncation as RFC 4868)
//! keyed with the shared key over everything before the tag. HMAC-SHA-256 from the RustCrypto
//! `hmac` and `sha2` crates was chosen over SipHash-128 (whose 128-bit output its authors call
//! experimental) and BLAKE3 (a C/assembly build) as the most reviewed, most widely deployed
//! keyed MAC; at sync rates (a packet per 52 peers) its cost does not show. The time lets a
//! receiver refuse packets older than its window ([`open`]); within the window it refuses a
//! second copy by the tag it has seen (`core::livesync`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::InfoHash;

/// The multicast group opentracker sends to (its code's value; its docs name two others).
pub const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 23, 5);
/// The port opentracker always sends to, whatever port it listens on (`LIVESYNC_PORT`).
pub const PORT: u16 = 9696;
/// Largest datagram sent and accepted (opentracker's `LIVESYNC_OUTGOING_BUFFSIZE_PEERS`).
pub const MAX_PACKET: usize = 1480;
/// Tracker id and type.
pub const HEADER: usize = 8;
/// Entry sizes by type.
pub const ENTRY_V4: usize = 28;
pub const ENTRY_V6: usize = 40;
/// Timestamp and tag of the authenticated extension.
pub const TRAILER: usize = 8 + TAG;
/// Bytes of the truncated HMAC-SHA-256 tag.
pub const TAG: usize = 16;

pub const FLAG_SEEDING: u8 = 0x80;
pub const FLAG_COMPLETED: u8 = 0x40;
pub const FLAG_STOPPED: u8 = 0x20;

/// One synced peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub info_hash: InfoHash,
    /// An IPv4 entry (type 0) decodes as `V4`, an IPv6 one (type 1) as `V6`, even when it holds
    /// a v4-mapped address: mapping is the store's business.
    pub ip: IpAddr,
    pub port: u16,
    /// [`FLAG_SEEDING`], [`FLAG_COMPLETED`], [`FLAG_STOPPED`]; other bits are carried as read.
    pub flags: u8,
}

impl Entry {
    pub fn seeding(&self) -> bool {
        self.flags & FLAG_SEEDING != 0
    }
    pub fn completed(&self) -> bool {
        self.flags & FLAG_COMPLETED != 0
    }
    pub fn stopped(&self) -> bool {
        self.flags & FLAG_STOPPED != 0
    }
    /// The packet type that carries this entry.
    pub fn family(&self) -> Family {
        match self.ip {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// Packet type: which address family its entries hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Type 0, `OT_SYNC_PEER4`: 28-byte entries.
    V4,
    /// Type 1, `OT_SYNC_PEER6`: 40-byte entries.
    V6,
}

impl Family {
    pub fn entry_size(self) -> usize {
        match self {
            Family::V4 => ENTRY_V4,
            Family::V6 => ENTRY_V6,
        }
    }
    fn code(self) -> u32 {
        match self {
            Family::V4 => 0,
            Family::V6 => 1,
        }
    }
}

/// Why a datagram is not a live-sync packet (static reasons, no allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncError {
    /// No entry after the header (opentracker drops datagrams of 8 bytes or less).
    TooShort,
    /// A type other than 0 and 1.
    UnknownType,
    /// The entries are not a whole number of entries.
    BadLength,
    /// A key is configured and the trailer is missing or its tag is wrong.
    BadMac,
    /// The tag is right but the packet's time is outside the receiver's window (a late copy
    /// or a clock out of step).
    Stale,
}

impl SyncError {
    pub fn reason(self) -> &'static str {
        match self {
            SyncError::TooShort => "too short",
            SyncError::UnknownType => "unknown packet type",
            SyncError::BadLength => "not a whole number of entries",
            SyncError::BadMac => "bad or missing MAC",
            SyncError::Stale => "timestamp outside the window",
        }
    }
}

/// A parsed packet, borrowing its entries from the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The sender's id as the 4 bytes on the wire.
    pub tracker_id: [u8; 4],
    pub family: Family,
    entries: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len() / self.family.entry_size()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn entries(&self) -> impl Iterator<Item = Entry> + 'a {
        let family = self.family;
        self.entries
            .chunks_exact(family.entry_size())
            .filter_map(move |c| decode_entry(family, c))
    }
}

/// Parses an unauthenticated packet (opentracker's format). A trailer, if any, is read as
/// entries: call [`open`] first when a key is configured.
pub fn parse(datagram: &[u8]) -> Result<Packet<'_>, SyncError> {
    let (Some(id), Some(kind), Some(entries)) = (
        datagram.get(..4),
        datagram.get(4..HEADER),
        datagram.get(HEADER..),
    ) else {
        return Err(SyncError::TooShort);
    };
    if entries.is_empty() {
        return Err(SyncError::TooShort);
    }
    let family = match u32::from_be_bytes(four(kind)) {
        0 => Family::V4,
        1 => Family::V6,
        _ => return Err(SyncError::UnknownType),
    };
    if entries.len() % family.entry_size() != 0 {
        return Err(SyncError::BadLength);
    }
    Ok(Packet {
        tracker_id: four(id),
        family,
        entries,
    })
}

/// A shared key for the authenticated extension.
#[derive(Clone)]
pub struct Key(Hmac<Sha256>);

impl Key {
    /// Any length works (HMAC hashes long keys); config asks for at least 16 random bytes.
    pub fn new(secret: &[u8]) -> Key {
        // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
        match Hmac::<Sha256>::new_from_slice(secret) {
            Ok(m) => Key(m),
            Err(_) => Key(<Hmac<Sha256> as Mac>::new(&Default::default())),
        }
    }

    fn tag(&self, data: &[u8]) -> [u8; TAG] {
        let mut m = self.0.clone();
        m.update(data);
        let full = m.finalize().into_bytes();
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(full.get(..TAG).unwrap_or(&[0; TAG]));
        tag
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// An authenticated datagram whose tag is right and whose time is within the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The unauthenticated packet in front of the trailer (for [`parse`]).
    pub body: &'a [u8],
    /// The sender's Unix time, as signed.
    pub sent: u64,
    /// The packet's tag: what a receiver remembers to refuse the same packet a second time.
    pub tag: [u8; TAG],
}

/// Checks the trailer of an authenticated datagram and returns the unauthenticated packet in
/// front of it (for [`parse`]) with its time and tag. The tag is compared in constant time.
/// The packet's time must be within `window` seconds of `now` either way; a copy sent again
/// within the window passes here, so the receiver keeps the tags it has seen.
pub fn open<'a>(
    datagram: &'a [u8],
    key: &Key,
    now: u64,
    window: u64,
) -> Result<Opened<'a>, SyncError> {
    let Some(split) = datagram.len().checked_sub(TAG) else {
        return Err(SyncError::BadMac);
    };
    let (signed, tag) = datagram.split_at(split);
    let Some(body_len) = signed.len().checked_sub(8) else {
        return Err(SyncError::BadMac);
    };
    let mut m = key.0.clone();
    m.update(signed);
    if m.verify_truncated_left(tag).is_err() {
        return Err(SyncError::BadMac);
    }
    let (body, time) = signed.split_at(body_len);
    let sent = u64::from_be_bytes(eight(time));
    if sent.abs_diff(now) > window {
        return Err(SyncError::Stale);
    }
    let mut t = [0u8; TAG];
    t.copy_from_slice(tag);
    Ok(Opened { body, sent, tag: t })
}

/// Appends `e` in its family's entry layout (the age byte is 0, as opentracker sends it).
pub fn encode_entry(out: &mut Vec<u8>, e: &Entry) {
    out.extend_from_slice(&e.info_hash.0);
    match e.ip {
        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
    }
    out.extend_from_slice(&e.port.to_be_bytes());
    out.push(e.flags);
    out.push(0);
}

/// Decodes one entry of `family`'s size; `None` if `b` is not exactly that size.
pub fn decode_entry(family: Family, b: &[u8]) -> Option<Entry> {
    if b.len() != family.entry_size() {
        return None;
    }
    let (hash, rest) = b.split_at(20);
    let (ip, rest) = match family {
        Family::V4 => {
            let (a, rest) = rest.split_at(4);
            (IpAddr::V4(Ipv4Addr::from(four(a))), rest)
        }
        Family::V6 => {
            let (a, rest) = rest.split_at(16);
            let mut o = [0u8; 16];
            o.copy_from_slice(a);
            (IpAddr::V6(Ipv6Addr::from(o)), rest)
        }
    };
    let mut h = [0u8; 20];
    h.copy_from_slice(hash);
    match rest {
        [p0, p1, flags, _age] => Some(Entry {
            info_hash: InfoHash(h),
            ip,
            port: u16::from_be_bytes([*p0, *p1]),
            flags: *flags,
        }),
        _ => None,
    }
}

/// Builds one outgoing packet of one family, never beyond [`MAX_PACKET`] bytes (trailer
/// included when authenticated). Reused: [`Builder::finish`] returns the datagram and
/// [`Builder::clear`] starts the next one.
#[derive(Debug)]
pub struct Builder {
    buf: Vec<u8>,
    family: Family,
    tracker_id: [u8; 4],
    authenticated: bool,
    entries: usize,
    capacity: usize,
}

impl Builder {
    /// `tracker_id` is written little-endian, as opentracker on x86 writes its id.
    /// `authenticated` reserves room for the trailer.
    pub fn new(family: Family, tracker_id: u32, authenticated: bool) -> Builder {
        let room = MAX_PACKET - HEADER - if authenticated { TRAILER } else { 0 };
        let mut b = Builder {
            buf: Vec::with_capacity(MAX_PACKET),
            family,
            tracker_id: tracker_id.to_le_bytes(),
            authenticated,
            entries: 0,
            capacity: room / family.entry_size(),
        };
        b.clear();
        b
    }

    /// Entries a packet holds: 52 IPv4 / 36 IPv6 (51 / 35 authenticated).
    pub fn capacity(&self) -> usize {
        self.capacity
    }
    pub fn len(&self) -> usize {
        self.entries
    }
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
    pub fn is_full(&self) -> bool {
        self.entries >= self.capacity
    }

    /// Adds `e` if it is of this builder's family and there is room; returns whether it did.
    pub fn push(&mut self, e: &Entry) -> bool {
        if e.family() != self.family || self.is_full() {
            return false;
        }
        encode_entry(&mut self.buf, e);
        self.entries += 1;
        true
    }

    /// The datagram to send: header and entries, plus the trailer (time `now`, tag) when built
    /// authenticated, in which case `key` must be given (without it no trailer is added).
    pub fn finish(&mut self, key: Option<&Key>, now: u64) -> &[u8] {
        if let (true, Some(key)) = (self.authenticated, key) {
            self.buf.extend_from_slice(&now.to_be_bytes());
            let tag = key.tag(&self.buf);
            self.buf.extend_from_slice(&tag);
        }
        &self.buf
    }

    /// Empties the builder for the next packet.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.buf.extend_from_slice(&self.tracker_id);
        self.buf
            .extend_from_slice(&self.family.code().to_be_bytes());
        self.entries = 0;
    }
}

fn four(b: &[u8]) -> [u8; 4] {
    let mut o = [0u8; 4];
    if let Some(s) = b.get(..4) {
        o.copy_from_slice(s);
    }
    o
}

fn eight(b: &[u8]) -> [u8; 8] {
    let mut o = [0u8; 8];
    if let Some(s) = b.get(..8) {
        o.copy_from_slice(s);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{mutate, random_bytes, xorshift};

    fn e4(n: u8, flags: u8) -> Entry {
        Entry {
            info_hash: InfoHash([n; 20]),
            ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)),
            port: 6881 + u16::from(n),
            flags,
        }
    }

    fn e6(n: u8, flags: u8) -> Entry {
        Entry {
            info_hash: InfoHash([n; 20]),
            ip: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(n))),
            port: 6881,
            flags,
        }
    }

    #[test]
    fn opentracker_bytes() {
        // An opentracker (x86) packet with tracker id 0x01020304 and one v4 seeder.
        let mut b = Builder::new(Family::V4, 0x0102_0304, false);
        assert!(b.push(&e4(7, FLAG_SEEDING)));
        let d = b.finish(None, 0).to_vec();
        let mut want = vec![4, 3, 2, 1, 0, 0, 0, 0];
        want.extend_from_slice(&[7; 20]);
        want.extend_from_slice(&[10, 0, 0, 7, 0x1a, 0xe8, 0x80, 0]);
        assert_eq!(d, want);
        let p = parse(&d).unwrap();
        assert_eq!(p.tracker_id, [4, 3, 2, 1]);
        assert_eq!(p.family, Family::V4);
        assert_eq!(p.entries().collect::<Vec<_>>(), vec![e4(7, FLAG_SEEDING)]);
    }

    #[test]
    fn round_trip_and_capacity() {
        for (family, cap, make) in [
            (Family::V4, 52, e4 as fn(u8, u8) -> Entry),
            (Family::V6, 36, e6 as fn(u8, u8) -> Entry),
        ] {
            let mut b = Builder::new(family, 99, false);
            assert_eq!(b.capacity(), cap);
            let mut sent = Vec::new();
            for n in 0..=255u8 {
                let e = make(
                    n,
                    [0, FLAG_SEEDING, FLAG_SEEDING | FLAG_COMPLETED, FLAG_STOPPED][n as usize % 4],
                );
                if !b.push(&e) {
                    break;
                }
                sent.push(e);
            }
            assert_eq!(sent.len(), cap);
            assert!(b.is_full());
            let d = b.finish(None, 0);
            assert!(d.len() <= MAX_PACKET, "{} bytes", d.len());
            let p = parse(d).unwrap();
            assert_eq!(p.len(), cap);
            assert_eq!(p.entries().collect::<Vec<_>>(), sent);
            b.clear();
            assert!(b.is_empty());
            assert_eq!(b.finish(None, 0).len(), HEADER);
        }
        // The wrong family is refused, not mis-encoded.
        assert!(!Builder::new(Family::V4, 1, false).push(&e6(1, 0)));
    }

    #[test]
    fn authenticated_round_trip_and_refusals() {
        let key = Key::new(b"0123456789abcdef0123456789abcdef");
        for family in [Family::V4, Family::V6] {
            let mut b = Builder::new(family, 5, true);
            let mut n = 0u8;
            loop {
                let e = if family == Family::V4 {
                    e4(n, 0)
                } else {
                    e6(n, 0)
                };
                if !b.push(&e) {
                    break;
                }
                n += 1;
            }
            assert_eq!(usize::from(n), b.capacity());
            let d = b.finish(Some(&key), 1_000).to_vec();
            assert!(d.len() <= MAX_PACKET);
            let o = open(&d, &key, 1_050, 120).unwrap();
            assert_eq!(parse(o.body).unwrap().len(), usize::from(n));
            assert_eq!(o.sent, 1_000);
            assert_eq!(&o.tag[..], &d[d.len() - TAG..]);
            // Wrong key, flipped bits anywhere, cut trailers, replays outside the window.
            assert_eq!(
                open(&d, &Key::new(b"another key"), 1_000, 120),
                Err(SyncError::BadMac)
            );
            for i in 0..d.len() {
                let mut m = d.clone();
                m[i] ^= 1;
                assert_eq!(
                    open(&m, &key, 1_000, 120),
                    Err(SyncError::BadMac),
                    "byte {i}"
                );
            }
            for cut in 0..=TRAILER {
                assert!(open(&d[..d.len() - cut], &key, 1_000, 10).is_err() || cut == 0);
            }
            assert_eq!(open(&d, &key, 1_121, 120), Err(SyncError::Stale));
            assert_eq!(open(&d, &key, 879, 120), Err(SyncError::Stale));
        }
        // An opentracker packet (no trailer) is refused when a key is configured.
        let mut b = Builder::new(Family::V4, 5, false);
        b.push(&e4(1, 0));
        assert_eq!(
            open(b.finish(None, 0), &key, 0, 120),
            Err(SyncError::BadMac)
        );
    }

    #[test]
    fn refusals() {
        assert_eq!(parse(&[]), Err(SyncError::TooShort));
        assert_eq!(parse(&[0; 8]), Err(SyncError::TooShort));
        let mut d = vec![0, 0, 0, 0, 0, 0, 0, 2];
        d.extend_from_slice(&[0; 28]);
        assert_eq!(parse(&d), Err(SyncError::UnknownType));
        d[7] = 0;
        assert!(parse(&d).is_ok());
        d.push(0);
        assert_eq!(parse(&d), Err(SyncError::BadLength));
        d[7] = 1;
        d.resize(8 + 40, 0);
        assert_eq!(parse(&d).unwrap().family, Family::V6);
        assert!(decode_entry(Family::V4, &[0; 27]).is_none());
    }

    #[test]
    fn never_panics() {
        let key = Key::new(b"k");
        let mut b = Builder::new(Family::V4, 1, false);
        b.push(&e4(1, FLAG_SEEDING));
        b.push(&e4(2, FLAG_STOPPED));
        let base = b.finish(None, 0).to_vec();
        for len in 0..=base.len() {
            let _ = parse(&base[..len]).map(|p| p.entries().count());
            let _ = open(&base[..len], &key, 0, 0);
        }
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet: Vec<u8> = (0..=255).collect();
        for _ in 0..20_000 {
            #[allow(clippy::manual_is_multiple_of)] // is_multiple_of is newer than Rust 1.80
            let d = if xorshift(&mut s) % 2 == 0 {
                mutate(&mut s, &base, &[0, 1, 2, 0xff, 0x80])
            } else {
                let n = (xorshift(&mut s) % 200) as usize;
                random_bytes(&mut s, &alphabet, n)
            };
            if let Ok(p) = parse(&d) {
                assert_eq!(p.entries().count(), p.len());
            }
            let _ = open(&d, &key, 0, u64::MAX);
        }
    }
}
