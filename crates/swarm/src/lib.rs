//! ferrotracker-swarm: the in-memory torrent store. It knows nothing of sockets or clocks:
//! callers pass in the time (seconds) and a random generator, and get counts and compact peer
//! bytes back.

// Peers, sync packets and state dumps are untrusted bytes; they must never panic. Tests may.
// The one unsafe block (a prefetch hint in table.rs) says why it is sound.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod peers;
pub mod rng;
pub mod store;
mod table;

pub use rng::Rng;
pub use store::{
    split_amount, Announce, Announced, AnnouncedWs, Counts, MemoryLimit, PeerAddr, Refused,
    ShardWalk, Store, StoreConfig, Swept, SyncedPeer, Totals, WalkStep, Want,
    DEFAULT_MAX_PEERS_PER_ADDRESS, PREFETCH_BATCH, SHARDS,
};
