//! Per-address limits: token buckets for request rates (`ratelimit.*`) and counts of open HTTP
//! connections (`http.max_connections_per_ip`).
//!
//! Both are keyed by [`AddrKey`]: a whole IPv4 address, or the /64 of an IPv6 address (one host
//! usually gets a /64, and an attacker could otherwise rotate through it). Both are sharded so
//! that workers rarely take the same lock, and both are bounded in memory: the rate limiter
//! tracks at most `max_addresses` addresses (idle ones are evicted first), the connection
//! counter holds only addresses that have a connection open.
//!
//! Pure: the caller passes `now` in milliseconds of any monotonic clock; nothing here reads a
//! clock, so tests drive it with an injected one.

use std::collections::hash_map::{Entry, HashMap};
use std::hash::{BuildHasher, Hash};
use std::net::IpAddr;
use std::sync::Mutex;

use siphasher::sip::SipHasher13;

/// What a limit is kept per: an IPv4 address, or an IPv6 /64 (v4-mapped IPv6 is IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AddrKey {
    V4([u8; 4]),
    V6Net([u8; 8]),
}

impl AddrKey {
    pub fn new(ip: IpAddr) -> AddrKey {
        match ip.to_canonical() {
            IpAddr::V4(a) => AddrKey::V4(a.octets()),
            IpAddr::V6(a) => {
                let o = a.octets();
                let mut net = [0u8; 8];
                net.copy_from_slice(&o[..8]);
                AddrKey::V6Net(net)
            }
        }
    }
}

/// Settings of [`RateLimiter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateConfig {
    /// Tokens added per second per address (sustained requests per second), at least 1.
    pub per_second: u32,
    /// Bucket size: requests an idle address may send at once, at least 1.
    pub burst: u32,
    /// Most addresses tracked at once (memory: about 48 bytes each).
    pub max_addresses: usize,
}

/// Token buckets per address, sharded. A request costs one token; an address whose bucket is
/// empty is refused until it refills at `per_second`.
pub struct RateLimiter {
    cfg: RateConfig,
    per_shard: usize,
    hasher: SipKeys,
    shards: Box<[Mutex<RateShard>]>,
}

impl RateLimiter {
    /// `key` keys the shard choice and the maps' hashing, so an attacker can't aim every
    /// address at one shard.
    pub fn new(cfg: RateConfig, key: [u8; 16]) -> RateLimiter {
        let cfg = RateConfig {
            per_second: cfg.per_second.max(1),
            burst: cfg.burst.max(1),
            max_addresses: cfg.max_addresses.max(SHARDS),
        };
        let per_shard = cfg.max_addresses.div_ceil(SHARDS);
        let hasher = SipKeys::new(key);
        RateLimiter {
            cfg,
            per_shard,
            hasher,
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(RateShard {
                        map: HashMap::with_hasher(hasher),
                        last_sweep: 0,
                    })
                })
                .collect(),
        }
    }

    pub fn config(&self) -> RateConfig {
        self.cfg
    }

    /// Takes one token from `ip`'s bucket at time `now_ms`: true if the request may be served.
    pub fn allow(&self, ip: IpAddr, now_ms: u64) -> bool {
        let key = AddrKey::new(ip);
        let shard = &self.shards[shard_of(&self.hasher, &key)];
        let mut s = shard.lock().unwrap_or_else(|e| e.into_inner());
        let full = u64::from(self.cfg.burst) * MILLI;
        let rate = u64::from(self.cfg.per_second);
        if s.map.len() >= self.per_shard && !s.map.contains_key(&key) {
            s.make_room(now_ms, full, rate);
        }
        let b = s.map.entry(key).or_insert(Bucket {
            tokens: full,
            last_ms: now_ms,
        });
        // Tokens are kept in thousandths: `rate` per second is `rate` thousandths per ms.
        let elapsed = now_ms.saturating_sub(b.last_ms);
        b.tokens = full.min(b.tokens.saturating_add(elapsed.saturating_mul(rate)));
        b.last_ms = b.last_ms.max(now_ms);
        if b.tokens >= MILLI {
            b.tokens -= MILLI;
            true
        } else {
            false
        }
    }

    /// Addresses tracked now (for tests and stats).
    pub fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).map.len())
            .sum()
    }
}

/// Open connections per address, sharded; touched on accept and close only.
pub struct AddressCounts {
    max_per_address: u32,
    hasher: SipKeys,
    shards: Box<[Mutex<HashMap<AddrKey, u32, SipKeys>>]>,
}

impl AddressCounts {
    /// `max_per_address` 0 means no limit (nothing is tracked then).
    pub fn new(max_per_address: u32, key: [u8; 16]) -> AddressCounts {
        let hasher = SipKeys::new(key);
        AddressCounts {
            max_per_address,
            hasher,
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(hasher)))
                .collect(),
        }
    }

    /// Counts one more connection from `ip`, unless it already has the maximum: false then,
    /// and nothing is counted.
    pub fn acquire(&self, ip: IpAddr) -> bool {
        if self.max_per_address == 0 {
            return true;
        }
        let key = AddrKey::new(ip);
        let mut m = self.shards[shard_of(&self.hasher, &key)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let n = m.entry(key).or_insert(0);
        if *n >= self.max_per_address {
            return false;
        }
        *n += 1;
        true
    }

    /// Undoes one successful [`AddressCounts::acquire`] for `ip`.
    pub fn release(&self, ip: IpAddr) {
        if self.max_per_address == 0 {
            return;
        }
        let key = AddrKey::new(ip);
        let mut m = self.shards[shard_of(&self.hasher, &key)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Entry::Occupied(mut e) = m.entry(key) {
            if *e.get() <= 1 {
                e.remove();
            } else {
                *e.get_mut() -= 1;
            }
        }
    }

    /// Connections counted for `ip`.
    pub fn count(&self, ip: IpAddr) -> u32 {
        let key = AddrKey::new(ip);
        let m = self.shards[shard_of(&self.hasher, &key)]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        m.get(&key).copied().unwrap_or(0)
    }

    /// Addresses with at least one connection counted.
    pub fn addresses(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

/// Thousandths of a token per token.
const MILLI: u64 = 1000;
/// Shards per map: enough that a few dozen workers rarely meet on one lock.
const SHARDS: usize = 64;
/// A full shard is swept for idle buckets at most this often; in between, an arbitrary bucket
/// makes room, so a flood of new (e.g. forged) addresses costs O(1) per request.
const SWEEP_EVERY_MS: u64 = 1000;

struct RateShard {
    map: HashMap<AddrKey, Bucket, SipKeys>,
    last_sweep: u64,
}

#[derive(Clone, Copy)]
struct Bucket {
    /// Thousandths of a token.
    tokens: u64,
    last_ms: u64,
}

impl RateShard {
    /// Frees at least one slot: first every bucket that has refilled (it carries no state an
    /// absent entry wouldn't), else one arbitrary bucket.
    fn make_room(&mut self, now_ms: u64, full: u64, rate: u64) {
        if now_ms.saturating_sub(self.last_sweep) >= SWEEP_EVERY_MS {
            self.last_sweep = now_ms;
            let before = self.map.len();
            self.map.retain(|_, b| {
                let refill = now_ms.saturating_sub(b.last_ms).saturating_mul(rate);
                b.tokens.saturating_add(refill) < full
            });
            if self.map.len() < before {
                return;
            }
        }
        let victim = self.map.keys().next().copied();
        if let Some(k) = victim {
            self.map.remove(&k);
        }
    }
}

/// A keyed SipHash-1-3 builder (std's `RandomState` can't be seeded).
#[derive(Clone, Copy)]
struct SipKeys(u64, u64);

impl SipKeys {
    fn new(key: [u8; 16]) -> SipKeys {
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&key[..8]);
        b.copy_from_slice(&key[8..]);
        SipKeys(u64::from_le_bytes(a), u64::from_le_bytes(b))
    }
}

impl BuildHasher for SipKeys {
    type Hasher = SipHasher13;
    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.0, self.1)
    }
}

fn shard_of(h: &SipKeys, key: &AddrKey) -> usize {
    // The top bits: the map's buckets use the low ones.
    (h.hash_one(key) >> 58) as usize % SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limiter(per_second: u32, burst: u32, max: usize) -> RateLimiter {
        RateLimiter::new(
            RateConfig {
                per_second,
                burst,
                max_addresses: max,
            },
            [7; 16],
        )
    }

    #[test]
    fn burst_then_refill_at_the_rate() {
        let r = limiter(10, 5, 1000);
        let a = ip("192.0.2.1");
        let mut t = 1_000_000;
        for _ in 0..5 {
            assert!(r.allow(a, t));
        }
        assert!(!r.allow(a, t));
        // 10/s: one token per 100 ms, not before.
        t += 99;
        assert!(!r.allow(a, t));
        t += 1;
        assert!(r.allow(a, t));
        assert!(!r.allow(a, t));
        // A long pause refills to the burst, no more.
        t += 60_000;
        for _ in 0..5 {
            assert!(r.allow(a, t));
        }
        assert!(!r.allow(a, t));
        // Sustained: exactly the rate over a long run.
        let mut ok = 0;
        for _ in 0..10_000 {
            t += 1;
            ok += u32::from(r.allow(a, t));
        }
        assert_eq!(ok, 100);
    }

    #[test]
    fn addresses_are_independent() {
        let r = limiter(1, 2, 1000);
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        assert!(r.allow(a, 0) && r.allow(a, 0));
        assert!(!r.allow(a, 0));
        assert!(r.allow(b, 0) && r.allow(b, 0));
        assert!(!r.allow(b, 1));
    }

    #[test]
    fn keys_v4_mapped_as_v4_and_v6_by_64() {
        assert_eq!(
            AddrKey::new(ip("::ffff:192.0.2.1")),
            AddrKey::new(ip("192.0.2.1"))
        );
        assert_eq!(
            AddrKey::new(ip("2001:db8:1:2::1")),
            AddrKey::new(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            AddrKey::new(ip("2001:db8:1:2::1")),
            AddrKey::new(ip("2001:db8:1:3::1"))
        );
        let r = limiter(1, 1, 1000);
        assert!(r.allow(ip("2001:db8::1"), 0));
        assert!(!r.allow(ip("2001:db8::2"), 0), "same /64, same bucket");
    }

    #[test]
    fn clock_going_backwards_neither_panics_nor_refills() {
        let r = limiter(1, 1, 100);
        let a = ip("192.0.2.1");
        assert!(r.allow(a, 10_000));
        assert!(!r.allow(a, 5_000));
        assert!(!r.allow(a, 10_500));
        assert!(r.allow(a, 11_000));
    }

    #[test]
    fn memory_is_bounded_by_max_addresses() {
        let max = 640;
        let r = limiter(1, 3, max);
        // A flood of distinct (forged) sources, all active at the same instant.
        for i in 0..100_000u32 {
            let a = IpAddr::from(i.wrapping_mul(2_654_435_761).to_be_bytes());
            assert!(r.allow(a, 0));
            assert!(r.tracked() <= max + SHARDS, "{}", r.tracked());
        }
        assert!(r.tracked() <= max + SHARDS);
    }

    #[test]
    fn idle_addresses_are_evicted_before_active_ones() {
        let mut s = RateShard {
            map: HashMap::with_hasher(SipKeys::new([3; 16])),
            last_sweep: 0,
        };
        let (idle, busy, refilled) = (
            AddrKey::new(ip("192.0.2.1")),
            AddrKey::new(ip("192.0.2.2")),
            AddrKey::new(ip("192.0.2.3")),
        );
        // burst 2, 1 token/s; at t = 10 s: `idle` has been full since long ago, `busy` is
        // empty now, `refilled` emptied at 8 s and is full again at 10 s.
        let full = 2 * MILLI;
        s.map.insert(
            idle,
            Bucket {
                tokens: full,
                last_ms: 0,
            },
        );
        s.map.insert(
            busy,
            Bucket {
                tokens: 0,
                last_ms: 10_000,
            },
        );
        s.map.insert(
            refilled,
            Bucket {
                tokens: 0,
                last_ms: 8_000,
            },
        );
        s.make_room(10_000, full, 1);
        assert_eq!(s.map.keys().copied().collect::<Vec<_>>(), vec![busy]);
        // Within a second of that sweep, room is made by dropping an arbitrary bucket.
        s.map.insert(
            idle,
            Bucket {
                tokens: full,
                last_ms: 10_000,
            },
        );
        s.make_room(10_500, full, 1);
        assert_eq!(s.map.len(), 1);
        assert_eq!(s.last_sweep, 10_000);
    }

    #[test]
    fn connection_counts() {
        let c = AddressCounts::new(2, [1; 16]);
        let (a, b) = (ip("192.0.2.1"), ip("::ffff:192.0.2.1"));
        assert!(c.acquire(a));
        assert!(c.acquire(b));
        assert!(!c.acquire(a), "v4-mapped is the same address");
        assert!(c.acquire(ip("192.0.2.2")));
        assert_eq!(c.count(a), 2);
        c.release(a);
        assert!(c.acquire(a));
        c.release(a);
        c.release(a);
        assert_eq!(c.count(a), 0);
        c.release(a); // an extra release is harmless
        c.release(ip("192.0.2.2"));
        assert_eq!(
            c.addresses(),
            0,
            "addresses without connections are dropped"
        );

        let open = AddressCounts::new(0, [1; 16]);
        for _ in 0..10 {
            assert!(open.acquire(a));
        }
        assert_eq!(open.addresses(), 0);
    }
}
