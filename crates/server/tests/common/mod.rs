//! Black-box test harness: starts the real `ferrotracker` binary on ephemeral ports and talks to
//! it over real sockets on 127.0.0.1 / 127.0.0.2 / [::1] only.
//!
//! * [`process`]: the [`Tracker`] guard around the running binary, and runs to exit.
//! * [`http`]: a raw HTTP/1.1 client; [`replies`] decodes what it gets back.
//! * [`udp`]: a BEP 15 client.
//! * [`targets`]: test hashes and peer ids, and the announce and scrape targets built from them.
//! * [`temp`] and [`deps`]: temporary files, and tests that need root or python3-libtorrent.
//! * [`tls`]: a test CA with server certificates for 127.0.0.1 and [::1], and an HTTPS client.
//!
//! Every blocking call is bounded by a socket timeout or a deadline.

// Each test file is its own crate and uses its own part of the harness: what one leaves unused
// (an item, or a whole re-exported submodule) is not dead.
#![allow(dead_code, unused_imports)]

mod deps;
mod http;
mod process;
mod replies;
mod targets;
mod temp;
pub mod tls;
mod udp;

use std::time::{Duration, Instant};

pub use deps::*;
pub use http::*;
pub use process::*;
pub use replies::*;
pub use targets::*;
pub use temp::*;
pub use udp::*;

/// How long a reply may take on loopback before the test gives up.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Polls `f` until it returns `Some` or `deadline` passes.
pub fn poll_until<T>(
    deadline: Duration,
    step: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(step);
    }
}
