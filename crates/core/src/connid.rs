//! BEP 15 connection ids: a keyed hash of the client's IP address and a one-minute window.
//!
//! An id proves that the client received our connect reply at that address, so it cannot be
//! forged (the key is secret and random per process) nor used from another address. An id is
//! accepted in the window it was made and the two after it, i.e. for 120 to 180 seconds, so it
//! always outlives BEP 15's two minutes. Unlike opentracker's, ids expire.

use std::hash::Hasher;
use std::net::IpAddr;

use siphasher::sip::SipHasher13;

/// Seconds per window.
pub const WINDOW_SECS: u32 = 60;

/// Makes and checks connection ids with a per-process secret key.
#[derive(Clone)]
pub struct ConnectionIds {
    k0: u64,
    k1: u64,
}

impl ConnectionIds {
    /// `key` must come from a secure random source (the server reads it from the OS).
    pub fn new(key: [u8; 16]) -> Self {
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&key[..8]);
        b.copy_from_slice(&key[8..]);
        ConnectionIds {
            k0: u64::from_le_bytes(a),
            k1: u64::from_le_bytes(b),
        }
    }

    /// The id for `ip` at time `now` (seconds).
    pub fn make(&self, ip: IpAddr, now: u32) -> u64 {
        self.hash(ip, now / WINDOW_SECS)
    }

    /// Whether `id` was made for `ip` in this window or one of the two before it.
    pub fn check(&self, id: u64, ip: IpAddr, now: u32) -> bool {
        let w = now / WINDOW_SECS;
        id == self.hash(ip, w)
            || (w > 0 && id == self.hash(ip, w - 1))
            || (w > 1 && id == self.hash(ip, w - 2))
    }

    fn hash(&self, ip: IpAddr, window: u32) -> u64 {
        let mut h = SipHasher13::new_with_keys(self.k0, self.k1);
        match ip {
            IpAddr::V4(a) => h.write(&a.to_ipv6_mapped().octets()),
            IpAddr::V6(a) => h.write(&a.octets()),
        }
        h.write_u32(window);
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_two_windows_then_refused() {
        let c = ConnectionIds::new([7; 16]);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let id = c.make(ip, 1000);
        assert!(c.check(id, ip, 1000));
        assert!(c.check(id, ip, 1000 + 59));
        // Made 40 s into its window: valid to the end of the second next one (140 s, more than
        // BEP 15's two minutes), then refused.
        assert!(c.check(id, ip, 1000 + 120), "valid for two minutes");
        assert!(c.check(id, ip, 1139));
        assert!(!c.check(id, ip, 1140));
        assert!(!c.check(id, "127.0.0.2".parse().unwrap(), 1000));
        assert!(!c.check(id ^ 1, ip, 1000));
        // v4 and its v4-mapped v6 form are one address.
        assert!(c.check(id, "::ffff:127.0.0.1".parse().unwrap(), 1000));
        // Another key, another id.
        assert_ne!(ConnectionIds::new([8; 16]).make(ip, 1000), id);
    }
}
