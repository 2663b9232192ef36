//! ferrotracker-proto: the tracker's wire formats, pure and I/O-free.
//!
//! Every parser here takes bytes and returns a value or a small `Copy` error; none allocates on
//! hostile input and none panics on any input (see the never-panic tests and `fuzz/`).

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

pub mod bencode;
pub mod forwarded;
pub mod hex;
pub mod http;
pub mod http_body;
pub mod proxy_protocol;
pub mod query;
pub mod sync;
pub mod types;
pub mod udp;
pub mod websocket;
pub mod webtorrent;

pub use types::{Event, InfoHash, PeerId};

/// Helpers shared by the randomised tests of every crate (one generator for all); not part of
/// the API.
#[doc(hidden)]
pub mod testutil {
    /// xorshift64: enough randomness for never-panic tests without a dependency.
    pub fn xorshift(state: &mut u64) -> u64 {
        let mut x = *state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        x
    }

    /// Percent-encodes every byte that is not unreserved (RFC 3986 section 2.3), as clients
    /// encode binary info_hashes and peer_ids in a query; what it leaves raw or escapes
    /// uppercase both decode to the same bytes.
    pub fn percent_encode(bytes: &[u8]) -> String {
        use std::fmt::Write as _;
        let mut s = String::with_capacity(bytes.len() * 3);
        for &b in bytes {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                s.push(char::from(b));
            } else {
                // Writing to a String cannot fail.
                let _ = write!(s, "%{b:02X}");
            }
        }
        s
    }

    /// `n` pseudo-random bytes drawn from `alphabet` (a byte of `0..=255` where it is empty).
    pub fn random_bytes(state: &mut u64, alphabet: &[u8], n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                let x = xorshift(state);
                alphabet
                    .get((x % alphabet.len().max(1) as u64) as usize)
                    .copied()
                    .unwrap_or(x as u8)
            })
            .collect()
    }

    /// A copy of `base` with 1 to 4 bytes replaced from `alphabet`.
    #[cfg(test)]
    pub fn mutate(state: &mut u64, base: &[u8], alphabet: &[u8]) -> Vec<u8> {
        let mut m = base.to_vec();
        if m.is_empty() {
            return m;
        }
        for _ in 0..1 + xorshift(state) % 4 {
            let i = (xorshift(state) % m.len() as u64) as usize;
            m[i] = alphabet[(xorshift(state) % alphabet.len() as u64) as usize];
        }
        m
    }

    #[cfg(test)]
    mod tests {
        use super::percent_encode;

        #[test]
        fn percent_encode_leaves_only_unreserved_bytes_raw() {
            assert_eq!(
                percent_encode(b"aZ9-._~ %&=?+/\x00\xff"),
                "aZ9-._~%20%25%26%3D%3F%2B%2F%00%FF"
            );
            assert_eq!(percent_encode(b""), "");
        }
    }
}
