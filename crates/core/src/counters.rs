//! Per-worker event counters. Each worker owns its own (no shared cache line is written per
//! request); stats add them up.

use crate::livesync::SyncCounters;

/// Buckets of the numwant histogram (`/stats?mode=numwants`): 0..=200, larger values land in 200.
pub const NUMWANT_BUCKETS: usize = 201;
/// Buckets of the re-announce histogram (`/stats?mode=renew`): a known peer's age in whole
/// minutes when it announced again, 0..=44 as opentracker's 45-minute peer timeout; older
/// (with a longer `tracker.peer_timeout`) lands in 44.
pub const RENEW_BUCKETS: usize = 45;

/// What a worker has seen. Plain integers: only the owning worker writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters {
    pub tcp_accepts: u64,
    pub http_announces: u64,
    pub http_scrapes: u64,
    pub http_redirects: u64,
    /// Every 400 answered, framing errors included.
    pub http_400: u64,
    /// The 400s that were framing errors (opentracker's "400 Parse Error"); the rest of
    /// `http_400` are bad parameters.
    pub http_400_parse: u64,
    pub http_403: u64,
    pub http_404: u64,
    pub http_500: u64,
    /// `/stats` and `/metrics` pages served (not counting 403s).
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
    /// UDP datagrams dropped unanswered by the per-address rate limit.
    pub udp_rate_limited: u64,
    /// HTTP requests answered 429 by the per-address rate limit.
    pub http_rate_limited: u64,
    /// Announces by the number of peers asked for (HTTP and UDP; a missing or negative numwant
    /// counts as the configured default).
    pub numwants: [u64; NUMWANT_BUCKETS],
    /// Re-announces of stored peers by the peer's age in minutes.
    pub renewed: [u64; RENEW_BUCKETS],
    /// Live sync (the sync thread's own slot, and workers' hand-off drops).
    pub sync: SyncCounters,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            tcp_accepts: 0,
            http_announces: 0,
            http_scrapes: 0,
            http_redirects: 0,
            http_400: 0,
            http_400_parse: 0,
            http_403: 0,
            http_404: 0,
            http_500: 0,
            http_stats: 0,
            full_scrapes: 0,
            full_scrape_bytes: 0,
            udp_packets: 0,
            udp_connects: 0,
            udp_announces: 0,
            udp_scrapes: 0,
            udp_bad_connection_id: 0,
            udp_bad_packets: 0,
            completed: 0,
            refused_full: 0,
            peers_not_stored: 0,
            conn_limited: 0,
            conn_limited_ip: 0,
            accept_errors: 0,
            http_idle_timeouts: 0,
            http_request_timeouts: 0,
            udp_rate_limited: 0,
            http_rate_limited: 0,
            numwants: [0; NUMWANT_BUCKETS],
            renewed: [0; RENEW_BUCKETS],
            sync: SyncCounters::default(),
        }
    }
}

impl Counters {
    /// Adds `o` into `self`.
    pub fn add(&mut self, o: &Counters) {
        self.tcp_accepts += o.tcp_accepts;
        self.http_announces += o.http_announces;
        self.http_scrapes += o.http_scrapes;
        self.http_redirects += o.http_redirects;
        self.http_400 += o.http_400;
        self.http_400_parse += o.http_400_parse;
        self.http_403 += o.http_403;
        self.http_404 += o.http_404;
        self.http_500 += o.http_500;
        self.http_stats += o.http_stats;
        self.full_scrapes += o.full_scrapes;
        self.full_scrape_bytes += o.full_scrape_bytes;
        self.udp_packets += o.udp_packets;
        self.udp_connects += o.udp_connects;
        self.udp_announces += o.udp_announces;
        self.udp_scrapes += o.udp_scrapes;
        self.udp_bad_connection_id += o.udp_bad_connection_id;
        self.udp_bad_packets += o.udp_bad_packets;
        self.completed += o.completed;
        self.refused_full += o.refused_full;
        self.peers_not_stored += o.peers_not_stored;
        self.conn_limited += o.conn_limited;
        self.conn_limited_ip += o.conn_limited_ip;
        self.accept_errors += o.accept_errors;
        self.http_idle_timeouts += o.http_idle_timeouts;
        self.http_request_timeouts += o.http_request_timeouts;
        self.udp_rate_limited += o.udp_rate_limited;
        self.http_rate_limited += o.http_rate_limited;
        for (a, b) in self.numwants.iter_mut().zip(o.numwants.iter()) {
            *a += b;
        }
        for (a, b) in self.renewed.iter_mut().zip(o.renewed.iter()) {
            *a += b;
        }
        self.sync.add(&o.sync);
    }

    /// Counts one announce asking for `n` peers.
    #[inline]
    pub fn numwant(&mut self, n: usize) {
        let i = n.min(NUMWANT_BUCKETS - 1);
        if let Some(b) = self.numwants.get_mut(i) {
            *b += 1;
        }
    }

    /// Counts one re-announce of a peer last seen `age_secs` seconds ago.
    #[inline]
    pub fn renew(&mut self, age_secs: u32) {
        let i = ((age_secs / 60) as usize).min(RENEW_BUCKETS - 1);
        if let Some(b) = self.renewed.get_mut(i) {
            *b += 1;
        }
    }
}
