//! Per-address limits: token buckets for request rates (`ratelimit.*`), counts of open HTTP
//! connections (`http.max_connections_per_ip`), and one full scrape per interval
//! (`tracker.full_scrape_interval`).
//!
//! Both are keyed by [`AddrKey`]: a whole IPv4 address, or the /64 of an IPv6 address (one host
//! usually gets a /64, and an attacker could otherwise rotate through it). Both are sharded so
//! that workers rarely take the same lock, and both are bounded in memory: the rate limiter
//! tracks at most `max_addresses` addresses (the least recently used is evicted, and under
//! pressure a new bucket starts without a burst: see [`RateLimiter`]), the connection counter
//! holds only addresses that have a connection open.
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

/// The `ratelimit.*` section: settings of [`RateLimiter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateConfig {
    /// Tokens added per second per address (sustained requests per second); 0 = no rate
    /// limit (the server builds no limiter).
    pub per_second: u32,
    /// Bucket size: requests an idle address may send at once; 0 = twice the rate.
    pub burst: u32,
    /// Most addresses tracked at once (memory: about 64 bytes each).
    pub max_addresses: usize,
    /// The limit applies to UDP datagrams.
    pub udp: bool,
    /// The limit applies to HTTP requests.
    pub http: bool,
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig {
            per_second: 0,
            burst: 0,
            max_addresses: 100_000,
            udp: true,
            http: true,
        }
    }
}

/// Token buckets per address, sharded. A request costs one token; an address whose bucket is
/// empty is refused until it refills at `per_second`.
///
/// Each shard holds at most `max_addresses / 64` buckets (rounded up) in least-recently-used
/// order; every request, refused ones included, makes its bucket the most recent. A new
/// address in a full shard takes the slot of that shard's least recently used bucket:
///
/// * if that bucket has refilled to the burst, it carried nothing an absent bucket wouldn't,
///   and the new bucket starts full, as it would in an empty table;
/// * otherwise the table is under pressure (a flood of addresses, forged or not) and the new
///   bucket starts with one token: a newcomer is served once and then held to the steady rate.
///   An address evicted while still in debt so comes back without a fresh burst while the
///   flood that pushed it out goes on. A flood that then pauses until the buckets it made have
///   refilled (one request's worth: `1 / per_second`) ends the pressure, and with it the debt:
///   the evicted address comes back with a full burst. That costs a whole table of requests
///   (`max_addresses`) for one burst, so it buys no more than sending those requests itself.
pub struct RateLimiter {
    cfg: RateConfig,
    per_shard: usize,
    hasher: SipKeys,
    shards: Box<[Mutex<RateShard>; SHARDS]>,
}

impl RateLimiter {
    /// `key` keys the shard choice and the maps' hashing, so an attacker can't aim every
    /// address at one shard.
    pub fn new(cfg: RateConfig, key: [u8; 16]) -> RateLimiter {
        let per_second = cfg.per_second.max(1);
        let cfg = RateConfig {
            per_second,
            burst: match cfg.burst {
                0 => per_second.saturating_mul(2),
                b => b,
            },
            max_addresses: cfg.max_addresses.max(SHARDS),
            ..cfg
        };
        // Slots are `u32` indices (`NIL` excluded).
        let per_shard = cfg.max_addresses.div_ceil(SHARDS).min(NIL as usize);
        let hasher = SipKeys::new(key);
        RateLimiter {
            cfg,
            per_shard,
            hasher,
            shards: Box::new(std::array::from_fn(|_| Mutex::new(RateShard::new(hasher)))),
        }
    }

    pub fn config(&self) -> RateConfig {
        self.cfg
    }

    /// Takes one token from `ip`'s bucket at time `now_ms`: true if the request may be served.
    pub fn allow(&self, ip: IpAddr, now_ms: u64) -> bool {
        let key = AddrKey::new(ip);
        let shard = shard_of(&self.shards, &self.hasher, &key);
        let mut s = shard.lock().unwrap_or_else(|e| e.into_inner());
        let full = u64::from(self.cfg.burst) * MILLI;
        let rate = u64::from(self.cfg.per_second);
        let Some(b) = s.bucket(key, now_ms, full, rate, self.per_shard) else {
            // Not reached (see `RateShard::bucket`); an address without a bucket is served, as
            // a new one is.
            return true;
        };
        // Tokens are kept in thousandths: `rate` per second is `rate` thousandths per ms.
        b.tokens = b.level(now_ms, full, rate);
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
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).index.len())
            .sum()
    }
}

/// Open connections per address, sharded; touched on accept and close only.
pub struct AddressCounts {
    max_per_address: u32,
    hasher: SipKeys,
    shards: Box<[Mutex<HashMap<AddrKey, u32, SipKeys>>; SHARDS]>,
}

impl AddressCounts {
    /// `max_per_address` 0 means no limit (nothing is tracked then).
    pub fn new(max_per_address: u32, key: [u8; 16]) -> AddressCounts {
        let hasher = SipKeys::new(key);
        AddressCounts {
            max_per_address,
            hasher,
            shards: Box::new(std::array::from_fn(|_| {
                Mutex::new(HashMap::with_hasher(hasher))
            })),
        }
    }

    /// Counts one more connection from `ip`, unless it already has the maximum: false then,
    /// and nothing is counted.
    pub fn acquire(&self, ip: IpAddr) -> bool {
        if self.max_per_address == 0 {
            return true;
        }
        let key = AddrKey::new(ip);
        let mut m = shard_of(&self.shards, &self.hasher, &key)
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
        let mut m = shard_of(&self.shards, &self.hasher, &key)
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
        let m = shard_of(&self.shards, &self.hasher, &key)
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

/// At most one event per address per interval (full scrapes: opentracker's
/// `WANT_MODEST_FULLSCRAPES`), sharded, remembering at most `max_addresses` addresses. When a
/// shard is full, the addresses whose interval has passed are forgotten (they carry nothing an
/// absent entry wouldn't), else one arbitrary address: a flood of addresses can make the
/// limit forget one, never make memory grow.
pub struct Intervals {
    interval: u32,
    per_shard: usize,
    hasher: SipKeys,
    shards: Box<[Mutex<HashMap<AddrKey, u32, SipKeys>>; SHARDS]>,
}

impl Intervals {
    /// `interval` in seconds, at least 1.
    pub fn new(interval: u32, max_addresses: usize, key: [u8; 16]) -> Intervals {
        let hasher = SipKeys::new(key);
        Intervals {
            interval: interval.max(1),
            per_shard: max_addresses.max(SHARDS).div_ceil(SHARDS),
            hasher,
            shards: Box::new(std::array::from_fn(|_| {
                Mutex::new(HashMap::with_hasher(hasher))
            })),
        }
    }

    /// Whether `ip` may have one now (seconds, any clock): yes if its last one was at least
    /// the interval ago (it is then recorded), no otherwise (nothing changes).
    pub fn allow(&self, ip: IpAddr, now: u32) -> bool {
        let key = AddrKey::new(ip);
        let mut m = shard_of(&self.shards, &self.hasher, &key)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match m.get(&key) {
            Some(&last) if now.saturating_sub(last) < self.interval => return false,
            Some(_) => {}
            None if m.len() >= self.per_shard => {
                let interval = self.interval;
                m.retain(|_, last| now.saturating_sub(*last) < interval);
                if m.len() >= self.per_shard {
                    if let Some(k) = m.keys().next().copied() {
                        m.remove(&k);
                    }
                }
            }
            None => {}
        }
        m.insert(key, now);
        true
    }

    /// Addresses remembered now (for tests).
    pub fn tracked(&self) -> usize {
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
/// No slot: the ends of a shard's recency list.
const NIL: u32 = u32::MAX;

/// One shard of the rate limiter: buckets in a slab, linked from the most to the least
/// recently used, and a map from address to slot. Every operation is O(1); the slab and the
/// map grow to `per_shard` entries and are then reused, so a full limiter allocates nothing.
struct RateShard {
    index: HashMap<AddrKey, u32, SipKeys>,
    slots: Vec<Slot>,
    /// The most recently used slot, or `NIL`.
    head: u32,
    /// The least recently used slot (the next to be evicted), or `NIL`.
    tail: u32,
}

struct Slot {
    key: AddrKey,
    bucket: Bucket,
    /// The next more recently used slot, or `NIL`.
    newer: u32,
    /// The next less recently used slot, or `NIL`.
    older: u32,
}

#[derive(Clone, Copy)]
struct Bucket {
    /// Thousandths of a token.
    tokens: u64,
    last_ms: u64,
}

impl Bucket {
    /// Thousandths of a token at `now_ms`, refilled at `rate` per second up to `full`.
    fn level(&self, now_ms: u64, full: u64, rate: u64) -> u64 {
        let refill = now_ms.saturating_sub(self.last_ms).saturating_mul(rate);
        full.min(self.tokens.saturating_add(refill))
    }
}

impl RateShard {
    fn new(hasher: SipKeys) -> RateShard {
        RateShard {
            index: HashMap::with_hasher(hasher),
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }

    /// `key`'s bucket, now the most recently used; a new one (see [`RateLimiter`] for how
    /// full it starts) if `key` has none, in place of the least recently used bucket once the
    /// shard holds `capacity` (at least 1). `None` only if the slots and their index disagreed,
    /// which every change to them (made together, here) rules out.
    fn bucket(
        &mut self,
        key: AddrKey,
        now_ms: u64,
        full: u64,
        rate: u64,
        capacity: usize,
    ) -> Option<&mut Bucket> {
        let i = match self.index.get(&key) {
            Some(&i) => {
                self.unlink(i);
                i
            }
            None => {
                let fresh = Bucket {
                    tokens: full,
                    last_ms: now_ms,
                };
                let i = if self.slots.len() < capacity || self.tail == NIL {
                    self.slots.push(Slot {
                        key,
                        bucket: fresh,
                        newer: NIL,
                        older: NIL,
                    });
                    (self.slots.len() - 1) as u32
                } else {
                    let i = self.tail;
                    self.unlink(i);
                    let victim = self.slots.get_mut(i as usize)?;
                    let idle = victim.bucket.level(now_ms, full, rate) >= full;
                    self.index.remove(&victim.key);
                    victim.key = key;
                    victim.bucket = Bucket {
                        tokens: if idle { full } else { MILLI.min(full) },
                        last_ms: now_ms,
                    };
                    i
                };
                self.index.insert(key, i);
                i
            }
        };
        self.push_front(i);
        self.slots.get_mut(i as usize).map(|s| &mut s.bucket)
    }

    /// Takes slot `i` out of the recency list.
    fn unlink(&mut self, i: u32) {
        let Some(&Slot { newer, older, .. }) = self.slots.get(i as usize) else {
            return;
        };
        match newer {
            NIL => self.head = older,
            n => {
                if let Some(s) = self.slots.get_mut(n as usize) {
                    s.older = older;
                }
            }
        }
        match older {
            NIL => self.tail = newer,
            o => {
                if let Some(s) = self.slots.get_mut(o as usize) {
                    s.newer = newer;
                }
            }
        }
    }

    /// Puts unlinked slot `i` at the most recent end.
    fn push_front(&mut self, i: u32) {
        let old_head = self.head;
        let Some(s) = self.slots.get_mut(i as usize) else {
            return;
        };
        s.newer = NIL;
        s.older = old_head;
        match old_head {
            NIL => self.tail = i,
            h => {
                if let Some(s) = self.slots.get_mut(h as usize) {
                    s.newer = i;
                }
            }
        }
        self.head = i;
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

/// The shard of `key`, picked by the top bits of its hash: the maps' buckets use the low ones.
fn shard_of<'a, T>(shards: &'a [T; SHARDS], h: &SipKeys, key: &AddrKey) -> &'a T {
    let [first, ..] = shards;
    // Below SHARDS, the array's length: `get` always finds the shard.
    shards
        .get((h.hash_one(key) >> 58) as usize % SHARDS)
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrotracker_proto::testutil::xorshift;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limiter(per_second: u32, burst: u32, max: usize) -> RateLimiter {
        RateLimiter::new(
            RateConfig {
                per_second,
                burst,
                max_addresses: max,
                ..RateConfig::default()
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

    /// The shard's keys from the most to the least recently used, checking the links both ways.
    fn order(s: &RateShard) -> Vec<AddrKey> {
        let mut keys = Vec::new();
        let (mut i, mut newer) = (s.head, NIL);
        while i != NIL {
            let slot = &s.slots[i as usize];
            assert_eq!(slot.newer, newer, "back link of {:?}", slot.key);
            assert_eq!(s.index.get(&slot.key), Some(&i));
            keys.push(slot.key);
            newer = i;
            i = slot.older;
        }
        assert_eq!(s.tail, newer);
        assert_eq!(keys.len(), s.index.len());
        keys
    }

    fn key(n: u32) -> AddrKey {
        AddrKey::new(IpAddr::from(n.to_be_bytes()))
    }

    #[test]
    fn the_least_recently_used_bucket_is_evicted() {
        let mut s = RateShard::new(SipKeys::new([3; 16]));
        let (full, rate) = (5 * MILLI, 1);
        for n in 1..=3 {
            s.bucket(key(n), 0, full, rate, 3);
        }
        assert_eq!(order(&s), vec![key(3), key(2), key(1)]);
        // Using 1 again (a refused request counts as much as a served one) saves it: 2 goes.
        s.bucket(key(1), 1, full, rate, 3);
        s.bucket(key(4), 2, full, rate, 3);
        assert_eq!(order(&s), vec![key(4), key(1), key(3)]);
        s.bucket(key(5), 3, full, rate, 3);
        assert_eq!(order(&s), vec![key(5), key(4), key(1)]);
        assert_eq!(s.slots.len(), 3, "slots are reused, not added");
    }

    #[test]
    fn recency_list_matches_a_model() {
        // Pseudo-random uses of 12 keys in a shard of 5, against a plain list kept in order.
        let mut s = RateShard::new(SipKeys::new([9; 16]));
        let mut model: Vec<AddrKey> = Vec::new();
        let mut x = 0x2545_f491u64;
        for t in 0..5000u64 {
            let k = key((xorshift(&mut x) % 12) as u32);
            s.bucket(k, t, 2 * MILLI, 1, 5);
            model.retain(|m| *m != k);
            model.insert(0, k);
            model.truncate(5);
            assert_eq!(order(&s), model, "after use {t}");
        }
    }

    #[test]
    fn a_new_bucket_starts_full_only_when_its_slot_was_idle() {
        let mut s = RateShard::new(SipKeys::new([3; 16]));
        // Burst 5, 1 token/s, two slots; both addresses emptied at 10 s.
        let (full, rate) = (5 * MILLI, 1);
        for n in 1..=2 {
            s.bucket(key(n), 10_000, full, rate, 2).unwrap().tokens = 0;
        }
        // At 12 s the least recently used bucket is 2 tokens short of full: pressure, so the
        // newcomer gets one token.
        assert_eq!(
            s.bucket(key(3), 12_000, full, rate, 2).unwrap().tokens,
            MILLI
        );
        assert_eq!(order(&s), vec![key(3), key(2)]);
        // At 15 s bucket 2 has refilled (it held nothing an absent bucket wouldn't): no
        // pressure, the newcomer starts full.
        assert_eq!(
            s.bucket(key(4), 15_000, full, rate, 2).unwrap().tokens,
            full
        );
        assert_eq!(order(&s), vec![key(4), key(3)]);
    }

    #[test]
    fn a_flood_of_new_addresses_gives_a_noisy_address_no_new_burst() {
        let r = limiter(1, 50, 256);
        let noisy = ip("192.0.2.1");
        let t = 1_000_000;
        let served = (0..100).filter(|_| r.allow(noisy, t)).count();
        assert_eq!(served, 50);
        // Far more addresses than the table holds, each served once at first.
        for i in 0..10_000u32 {
            assert!(r.allow(IpAddr::from((0x0a00_0000 + i).to_be_bytes()), t + 1));
        }
        let newcomer = ip("198.51.100.1");
        assert!(r.allow(newcomer, t + 1));
        assert!(
            !r.allow(newcomer, t + 1),
            "a newcomer under pressure has no burst"
        );
        // Evicted or not, the noisy address has not got its burst back: one newcomer's token
        // at most.
        let served = (0..50).filter(|_| r.allow(noisy, t + 2)).count();
        assert!(served <= 1, "{served} served after the flood");
        // It still refills at the rate.
        assert!(r.allow(noisy, t + 2_000));
    }

    #[test]
    fn a_full_table_of_idle_addresses_is_no_pressure() {
        let r = limiter(10, 5, 64);
        // Fill the table, then let every bucket refill.
        for i in 0..1000u32 {
            r.allow(IpAddr::from((0x0a00_0000 + i).to_be_bytes()), 0);
        }
        assert_eq!(r.tracked(), 64);
        // A newcomer gets its whole burst, as in an empty table.
        let a = ip("192.0.2.1");
        assert_eq!((0..10).filter(|_| r.allow(a, 60_000)).count(), 5);
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

    #[test]
    fn one_per_interval_per_address_in_bounded_memory() {
        let iv = Intervals::new(300, 1000, [7; 16]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(iv.allow(a, 1000));
        assert!(!iv.allow(a, 1000));
        assert!(!iv.allow(a, 1299));
        assert!(iv.allow(b, 1299), "another address is not held back");
        assert!(iv.allow(a, 1300));
        assert!(!iv.allow(a, 1301));
        // IPv6: one /64 is one address; v4-mapped is the IPv4 address.
        let v6a: IpAddr = "2001:db8::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        assert!(iv.allow(v6a, 1000));
        assert!(!iv.allow(v6b, 1001));
        let mapped: IpAddr = "::ffff:192.0.2.2".parse().unwrap();
        assert!(!iv.allow(mapped, 1300));
        // A flood of addresses: memory stays bounded, and old entries go first.
        for i in 0..100_000u32 {
            let ip = IpAddr::from((0x0a00_0000 | i).to_be_bytes());
            assert!(iv.allow(ip, 2000));
        }
        assert!(iv.tracked() <= 1000 + SHARDS, "{}", iv.tracked());
        // A clock that goes back refuses rather than underflows.
        let c: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(iv.allow(c, 5000));
        assert!(!iv.allow(c, 10));
    }
}
