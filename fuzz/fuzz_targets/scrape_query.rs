//! Scrape query strings (`query::parse_scrape`).
//!
//! Beyond "no panic": a parsed scrape has 1 to `MAX_SCRAPE` hashes, and writing them back as a
//! query parses to the same hashes in the same order.
#![no_main]

use ferrotracker_proto::query::{self, MAX_SCRAPE};
use ferrotracker_proto::testutil::percent_encode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(q) = query::parse_scrape(data) else {
        return;
    };
    let hashes = q.hashes();
    assert!(!hashes.is_empty() && hashes.len() <= MAX_SCRAPE);
    let mut again = Vec::new();
    for h in hashes {
        if !again.is_empty() {
            again.push(b'&');
        }
        again.extend_from_slice(b"info_hash=");
        again.extend_from_slice(percent_encode(&h.0).as_bytes());
    }
    let back = query::parse_scrape(&again).expect("a re-encoded scrape parses");
    assert_eq!(back.hashes(), hashes);
});
