//! Event counters that operators read in `/stats` and `/metrics`.
//!
//! Each worker (and the live-sync thread) owns one [`LiveCounters`] slot, registered with the
//! tracker, and is its only writer: a count is a relaxed load and a release store to a cache
//! line no other thread writes, so the hot path takes no lock and no locked instruction. A stats
//! page sums every slot at the moment it is asked ([`LiveCounters::read`] into a plain
//! [`Counters`]), so what it shows is current (every request answered before the page was asked
//! for is in it, whichever worker answered) and monotonic (each slot only grows, and a later read
//! of a slot never sees an older value than an earlier read).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::livesync::SyncCounters;

/// Buckets of the numwant histogram (`/stats?mode=numwants`): 0..=200, larger values land in 200.
pub const NUMWANT_BUCKETS: usize = 201;
/// Buckets of the re-announce histogram (`/stats?mode=renew`): a known peer's age in whole
/// minutes when it announced again, 0..=44 as opentracker's 45-minute peer timeout; older
/// (with a longer `tracker.peer_timeout`) lands in 44.
pub const RENEW_BUCKETS: usize = 45;

/// One monotonic count with a single writer (the thread that owns its slot).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the slot's owner calls this, so a load and a store suffice (no
    /// read-modify-write is lost); other threads see each stored value whole and in order.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Release,
        );
    }

    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Raises the count to `v` (for a writer that keeps its own running total, as the sync
    /// thread does); a lower `v` is ignored, so the count never goes back.
    pub fn raise_to(&self, v: u64) {
        if v > self.0.load(Ordering::Relaxed) {
            self.0.store(v, Ordering::Release);
        }
    }
}

/// A counted value as stats read it (`u64`, a histogram, a nested set), with its live form.
pub trait Value: Copy {
    type Live: Send + Sync;
    fn zero() -> Self;
    fn add(&mut self, o: &Self);
    fn new_live() -> Self::Live;
    fn read(live: &Self::Live) -> Self;
    /// Raises every count of `live` to `v`'s (see [`Counter::raise_to`]).
    fn raise(live: &Self::Live, v: &Self);
}

impl Value for u64 {
    type Live = Counter;
    fn zero() -> Self {
        0
    }
    fn add(&mut self, o: &Self) {
        *self = self.wrapping_add(*o);
    }
    fn new_live() -> Counter {
        Counter::default()
    }
    fn read(live: &Counter) -> Self {
        live.get()
    }
    fn raise(live: &Counter, v: &Self) {
        live.raise_to(*v);
    }
}

impl<const N: usize> Value for [u64; N] {
    type Live = [Counter; N];
    fn zero() -> Self {
        [0; N]
    }
    fn add(&mut self, o: &Self) {
        for (a, b) in self.iter_mut().zip(o) {
            *a = a.wrapping_add(*b);
        }
    }
    fn new_live() -> [Counter; N] {
        std::array::from_fn(|_| Counter::default())
    }
    fn read(live: &[Counter; N]) -> Self {
        std::array::from_fn(|i| live.get(i).map_or(0, Counter::get))
    }
    fn raise(live: &[Counter; N], v: &Self) {
        for (l, v) in live.iter().zip(v) {
            l.raise_to(*v);
        }
    }
}

/// Declares a set of counters twice from one field list: the plain struct that stats render
/// (`Copy`, summed with `add`) and its live form of [`Counter`]s that one writer owns.
#[macro_export]
macro_rules! counter_set {
    (
        $(#[$m:meta])*
        pub struct $plain:ident / $live:ident {
            $( $(#[$fm:meta])* pub $f:ident : $t:ty, )*
        }
    ) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $plain {
            $( $(#[$fm])* pub $f: $t, )*
        }

        #[doc = concat!("The live form of [`", stringify!($plain), "`]: one writer, read by stats.")]
        #[derive(Debug)]
        pub struct $live {
            $( $(#[$fm])* pub $f: <$t as $crate::counters::Value>::Live, )*
        }

        impl Default for $plain {
            fn default() -> Self {
                $plain { $( $f: <$t as $crate::counters::Value>::zero(), )* }
            }
        }

        impl Default for $live {
            fn default() -> Self {
                $live { $( $f: <$t as $crate::counters::Value>::new_live(), )* }
            }
        }

        impl $plain {
            /// Adds `o` into `self`.
            pub fn add(&mut self, o: &$plain) {
                $( $crate::counters::Value::add(&mut self.$f, &o.$f); )*
            }
        }

        impl $live {
            /// The counts as they are now.
            pub fn read(&self) -> $plain {
                $plain { $( $f: <$t as $crate::counters::Value>::read(&self.$f), )* }
            }

            /// Raises every count to `v`'s (for a writer that keeps its own running totals).
            pub fn raise(&self, v: &$plain) {
                $( <$t as $crate::counters::Value>::raise(&self.$f, &v.$f); )*
            }
        }

        impl $crate::counters::Value for $plain {
            type Live = $live;
            fn zero() -> Self {
                Self::default()
            }
            fn add(&mut self, o: &Self) {
                $plain::add(self, o)
            }
            fn new_live() -> $live {
                $live::default()
            }
            fn read(live: &$live) -> Self {
                live.read()
            }
            fn raise(live: &$live, v: &Self) {
                live.raise(v)
            }
        }
    };
}

counter_set! {
    /// What the workers have seen, as stats show it.
    pub struct Counters / LiveCounters {
        pub tcp_accepts: u64,
        pub http_announces: u64,
        pub http_scrapes: u64,
        pub http_redirects: u64,
        /// 400s for bad parameters (a request that was framed but can't be served).
        pub http_400_param: u64,
        /// 400s for framing errors (opentracker's "400 Parse Error"). Kept apart from
        /// `http_400_param`, not as a part of a total, so that no page has to subtract one
        /// counter from another (a read between the two counts would go backwards).
        pub http_400_parse: u64,
        pub http_403: u64,
        pub http_404: u64,
        pub http_500: u64,
        /// `/stats`, `/metrics` and dashboard pages served (not counting 403s).
        pub http_stats: u64,
        /// Full scrapes started (`GET /scrape` without a query).
        pub full_scrapes: u64,
        /// Body bytes (after compression) sent for full scrapes, tpbs and statedumps.
        pub full_scrape_bytes: u64,
        pub udp_packets: u64,
        pub udp_connects: u64,
        pub udp_announces: u64,
        pub udp_scrapes: u64,
        pub udp_bad_connection_id: u64,
        pub udp_bad_packets: u64,
        pub completed: u64,
        /// Announces refused because the store is at its torrent or memory limit.
        pub refused_full: u64,
        /// Announces answered without storing the peer (peer-per-torrent or memory limit).
        pub peers_not_stored: u64,
        /// Announces refused because the client's address (IPv6: /64) has its share of peers
        /// in the torrent (`tracker.max_peers_per_ip`).
        pub refused_address: u64,
        /// HTTP connections answered 503 and closed at accept: `http.max_connections` reached.
        pub conn_limited: u64,
        /// HTTP connections answered 503 and closed at accept: `http.max_connections_per_ip`.
        pub conn_limited_ip: u64,
        /// Failed `accept` calls other than "would block" (EMFILE, ENFILE, ENOBUFS, ...).
        pub accept_errors: u64,
        /// HTTP connections closed after `http.idle_timeout` without a request.
        pub http_idle_timeouts: u64,
        /// HTTP connections closed because a request head took over `http.request_timeout`.
        pub http_request_timeouts: u64,
        /// PROXY protocol headers taken from trusted proxies (`http.proxy_protocol`).
        pub proxy_headers: u64,
        /// Connections closed by the PROXY protocol stage: a trusted proxy's connection that
        /// began with something else...
        pub proxy_refused_missing: u64,
        /// ...or with a malformed header...
        pub proxy_refused_invalid: u64,
        /// ...or whose header did not come within the request timeout; a header from an
        /// address that is not a trusted proxy.
        pub proxy_refused_timeout: u64,
        pub proxy_refused_untrusted: u64,
        /// TLS connections closed before their handshake completed by a handshake error or
        /// the client gone...
        pub tls_handshake_failures: u64,
        /// ...or by a timeout (the shorter of `http.request_timeout` and `http.idle_timeout`
        /// after accept), counted here and not as an HTTP timeout.
        pub tls_handshake_timeouts: u64,
        /// UDP datagrams dropped unanswered by the per-address rate limit.
        pub udp_rate_limited: u64,
        /// HTTP requests answered 429 by the per-address rate limit.
        pub http_rate_limited: u64,
        /// Full scrapes, tpbs and statedumps answered 503: `http.max_streams` in progress.
        pub streams_refused: u64,
        /// Full scrapes answered 429: `tracker.full_scrape_interval` not over for the address.
        pub full_scrapes_too_soon: u64,
        /// Announces by the number of peers asked for (HTTP and UDP; a missing or negative numwant
        /// counts as the configured default).
        pub numwants: [u64; NUMWANT_BUCKETS],
        /// Re-announces of stored peers by the peer's age in minutes.
        pub renewed: [u64; RENEW_BUCKETS],
        /// WebTorrent announces (offers and answers are counted apart) and scrapes.
        pub ws_announces: u64,
        pub ws_scrapes: u64,
        /// WebRTC offers handed to other peers, and answers handed back to their offerers.
        pub ws_offers_relayed: u64,
        pub ws_answers_relayed: u64,
        /// Answers refused: not to an offer this connection received in the last
        /// [`crate::webtorrent::OFFER_WINDOW`] seconds from that peer in that torrent.
        pub ws_answers_refused: u64,
        /// Answers dropped because their offerer has left the torrent.
        pub ws_answers_lost: u64,
        /// WebTorrent messages answered with a failure reason (malformed, refused, over a
        /// limit); the connection stays open.
        pub ws_errors: u64,
        /// WebSocket connections opened (upgrades answered 101) and closed, for whatever
        /// reason; open ones are the difference.
        pub ws_opened: u64,
        pub ws_closed: u64,
        /// WebSocket connections closed after `webtorrent.idle_timeout` without a message.
        pub ws_idle_timeouts: u64,
        /// WebSocket connections closed with an error code: a binary or oversize message, bad
        /// UTF-8, a framing error.
        pub ws_protocol_errors: u64,
        /// WebSocket connections closed (1008) by the per-address rate limit.
        pub ws_rate_limited: u64,
        /// Relayed messages dropped: the receiving connection had too much unsent, or its
        /// worker's inbox was full.
        pub ws_relays_dropped: u64,
        /// Replies dropped: the connection they answer had half of `webtorrent.max_backlog` unsent.
        pub ws_replies_dropped: u64,
        /// Live sync (the sync thread's own slot, and workers' hand-off drops).
        pub sync: SyncCounters,
    }
}

impl LiveCounters {
    /// Counts one announce asking for `n` peers.
    #[inline]
    pub fn numwant(&self, n: usize) {
        let i = n.min(NUMWANT_BUCKETS - 1);
        if let Some(b) = self.numwants.get(i) {
            b.inc();
        }
    }

    /// Counts one re-announce of a peer last seen `age_secs` seconds ago.
    #[inline]
    pub fn renew(&self, age_secs: u32) {
        let i = ((age_secs / 60) as usize).min(RENEW_BUCKETS - 1);
        if let Some(b) = self.renewed.get(i) {
            b.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn read_sums_and_raise_never_lowers() {
        let live = LiveCounters::default();
        live.http_announces.inc();
        live.http_announces.add(2);
        live.numwant(500);
        live.renew(61);
        live.sync.peers_sent.add(7);
        let c = live.read();
        assert_eq!(c.http_announces, 3);
        assert_eq!(c.numwants[NUMWANT_BUCKETS - 1], 1);
        assert_eq!(c.renewed[1], 1);
        assert_eq!(c.sync.peers_sent, 7);

        let mut v = c.sync;
        v.peers_sent = 5;
        v.packets_sent = 9;
        live.sync.raise(&v);
        let s = live.read().sync;
        assert_eq!((s.peers_sent, s.packets_sent), (7, 9));

        let mut total = Counters::default();
        total.add(&c);
        total.add(&c);
        assert_eq!(total.http_announces, 6);
        assert_eq!(total.numwants[NUMWANT_BUCKETS - 1], 2);
    }

    /// A reader on another thread sees each writer's counts only grow.
    #[test]
    fn concurrent_reads_are_monotonic() {
        let live = Arc::new(LiveCounters::default());
        let writer = {
            let live = Arc::clone(&live);
            std::thread::spawn(move || {
                for _ in 0..200_000 {
                    live.udp_packets.inc();
                    live.udp_announces.inc();
                }
            })
        };
        let mut last = 0;
        while !writer.is_finished() {
            let c = live.read();
            assert!(c.udp_packets >= last);
            // Stored in order: a read of the later field never runs ahead of the earlier one.
            assert!(c.udp_announces <= live.udp_packets.get());
            last = c.udp_packets;
        }
        writer.join().unwrap();
        assert_eq!(live.read().udp_announces, 200_000);
    }
}
