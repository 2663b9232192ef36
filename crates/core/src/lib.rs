//! ferrotracker-core: everything between bytes in and bytes out, without sockets: the
//! request handlers (HTTP, UDP, WebTorrent), configuration, connection ids and counters.

#![forbid(unsafe_code)]
// Untrusted bytes must never panic; tests may.
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod access;
pub mod client_ip;
pub mod config;
pub mod connid;
pub mod counters;
pub mod fullscrape;
pub mod livesync;
pub mod memory;
pub mod nets;
pub mod ratelimit;
pub mod statedump;
pub mod stats;
pub mod tracker;
pub mod webtorrent;

pub use counters::Counters;
pub use tracker::{After, Tracker, Worker};
pub use webtorrent::{Relay, Relays, WsConn};
