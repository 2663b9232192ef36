//! ferrotracker-proto: the tracker's wire formats, pure and I/O-free.
//!
//! Every parser here takes bytes and returns a value or a small `Copy` error; none allocates on
//! hostile input and none panics on any input (see the never-panic tests and `fuzz/`).

pub mod types;

pub use types::{Event, InfoHash, PeerId};
