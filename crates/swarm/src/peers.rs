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
//!
//! WebTorrent peers ([`WsPeer`]: peer_id, connection key, flags, stamp; 30 bytes) live in
//! the same lists, sorted by peer_id.

mod chunks;
mod lazy;
mod list;
mod record;
mod select;
#[cfg(test)]
mod tests;
mod ws;

pub use chunks::CHUNK_BYTES;
pub use lazy::LazyPeerList;
pub use list::{Limits, NotAdded, PeerList, Peers, PeersIter, Upsert, FLAT_MAX_BYTES};
pub use record::{Peer4, Peer6, PeerRecord, FLAG_COMPLETED, FLAG_FROM_SYNC, FLAG_SEEDING};
pub use ws::WsPeer;
