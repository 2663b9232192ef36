//! Newtypes for what the wire carries; parsed once at the edge.

/// A torrent's 20-byte SHA-1 info_hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct InfoHash(pub [u8; 20]);

impl core::fmt::Debug for InfoHash {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A client's 20-byte peer_id. Never stored: peers are identified by address and port.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct PeerId(pub [u8; 20]);

/// Announce event, as in BEP 3 / BEP 15.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Event {
    #[default]
    None,
    Started,
    Completed,
    Stopped,
}
