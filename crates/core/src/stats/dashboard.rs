//! The live dashboard: `/dashboard`, one self-contained HTML page ([`PAGE`]), draws charts of
//! `/dashboard.json`, which [`Dashboard::render_json`] writes from a ring of samples.
//!
//! The server's sweeper thread calls [`Dashboard::record`] every `dashboard.interval` seconds
//! with the summed counters and the store's totals: that thread is the ring's only writer, and
//! the ring's memory is allocated once, at start ([`Ring::new`]). Readers (a `/dashboard.json`
//! request) hold the ring's lock while they write the JSON; no announce or scrape touches it.
//! Rates are derived from the monotone counters: the difference between two samples over the
//! time between them. The top torrents are a walk of the store, made by the sampler, and only
//! while someone reads the JSON (see [`WATCHED_FOR_MS`]), never by a request.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use ferrotracker_proto::InfoHash;
use ferrotracker_swarm::{Counts, Store, Totals, SHARDS};

use crate::config::DashboardConfig;
use crate::counters::Counters;

/// The page: plain HTML, CSS and JavaScript drawing inline SVG; it names no other resource
/// than `dashboard.json`, relative to itself.
pub const PAGE: &str = include_str!("dashboard.html");

/// The page's Content-Security-Policy: its own inline script and style, requests to its own
/// origin, and nothing else, so that a browser loads nothing from anywhere else.
pub const PAGE_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; img-src data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// Torrents in the top list (by peers).
pub const TOP: usize = 10;

/// How long after a read of the JSON the sampler keeps walking the store for the top list
/// (the page reads it every interval).
pub const WATCHED_FOR_MS: u64 = 60_000;

/// What each series is: a rate per second of a monotone counter, or a level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Rate,
    Gauge,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Rate => "rate",
            Kind::Gauge => "gauge",
        }
    }
}

/// One line of one chart.
pub struct Series {
    /// The chart it is drawn in; the series of a chart are neighbours in [`SERIES`].
    pub chart: &'static str,
    pub name: &'static str,
    pub kind: Kind,
    read: fn(&Counters, &Totals) -> u64,
}

/// How many series a sample holds.
pub const SERIES_COUNT: usize = SERIES.len();

/// Every series, chart by chart. Rates take the counters `/metrics` exposes; the errors of a
/// protocol add up its error counters (HTTP: the 4xx and 5xx answers but 429, which is a
/// limit's; UDP: bad packets and connection ids; WebTorrent: failure replies and connections
/// closed for a protocol error), and the refusals are the limits' counters, named as the
/// labels of `ferrotracker_refused_total` and `ferrotracker_limited_total`.
pub const SERIES: [Series; 25] = [
    rate("announces", "udp", |c, _| c.udp_announces),
    rate("announces", "http", |c, _| c.http_announces),
    rate("announces", "websocket", |c, _| c.ws_announces),
    rate("scrapes", "udp", |c, _| c.udp_scrapes),
    rate("scrapes", "http", |c, _| c.http_scrapes + c.full_scrapes),
    rate("scrapes", "websocket", |c, _| c.ws_scrapes),
    rate("errors", "udp", |c, _| {
        c.udp_bad_packets + c.udp_bad_connection_id
    }),
    rate("errors", "http", |c, _| {
        c.http_400_param + c.http_400_parse + c.http_403 + c.http_404 + c.http_500
    }),
    rate("errors", "websocket", |c, _| {
        c.ws_errors + c.ws_protocol_errors
    }),
    gauge("peers", "seeders", |_, t| t.seeders),
    gauge("peers", "leechers", |_, t| {
        t.peers().saturating_sub(t.seeders)
    }),
    gauge("families", "ipv4", |_, t| t.peers4),
    gauge("families", "ipv6", |_, t| t.peers6),
    gauge("families", "webtorrent", |_, t| t.peers_ws),
    gauge("torrents", "torrents", |_, t| t.torrents),
    rate("refusals", "connections", |c, _| c.conn_limited),
    rate("refusals", "connections_per_ip", |c, _| c.conn_limited_ip),
    rate("refusals", "rate_http", |c, _| c.http_rate_limited),
    rate("refusals", "rate_udp", |c, _| c.udp_rate_limited),
    rate("refusals", "rate_websocket", |c, _| c.ws_rate_limited),
    rate("refusals", "streams", |c, _| c.streams_refused),
    rate("refusals", "full_scrape_interval", |c, _| {
        c.full_scrapes_too_soon
    }),
    rate("refusals", "store_full", |c, _| c.refused_full),
    rate("refusals", "address_limit", |c, _| c.refused_address),
    rate("refusals", "peer_not_stored", |c, _| c.peers_not_stored),
];

const fn rate(
    chart: &'static str,
    name: &'static str,
    read: fn(&Counters, &Totals) -> u64,
) -> Series {
    Series {
        chart,
        name,
        kind: Kind::Rate,
        read,
    }
}

const fn gauge(
    chart: &'static str,
    name: &'static str,
    read: fn(&Counters, &Totals) -> u64,
) -> Series {
    Series {
        chart,
        name,
        kind: Kind::Gauge,
        read,
    }
}

/// The counters and levels at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Milliseconds on the sampler's clock (the server's: since start).
    pub at_ms: u64,
    /// By [`SERIES`]' order: a counter's running total, or a level.
    pub values: [u64; SERIES_COUNT],
}

impl Default for Sample {
    fn default() -> Self {
        Sample {
            at_ms: 0,
            values: [0; SERIES_COUNT],
        }
    }
}

impl Sample {
    pub fn of(at_ms: u64, c: &Counters, t: &Totals) -> Sample {
        let mut s = Sample {
            at_ms,
            ..Sample::default()
        };
        for (v, series) in s.values.iter_mut().zip(&SERIES) {
            *v = (series.read)(c, t);
        }
        s
    }
}

/// The last `capacity` samples, in memory allocated once.
#[derive(Debug)]
pub struct Ring {
    slots: Box<[Sample]>,
    /// Where the next sample goes.
    next: usize,
    len: usize,
}

impl Ring {
    /// A ring of `capacity` samples (at least 2, one rate's worth).
    pub fn new(capacity: usize) -> Ring {
        Ring {
            slots: vec![Sample::default(); capacity.max(2)].into_boxed_slice(),
            next: 0,
            len: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `s`, overwriting the oldest sample once the ring is full.
    pub fn push(&mut self, s: Sample) {
        if let Some(slot) = self.slots.get_mut(self.next) {
            *slot = s;
        }
        self.next = (self.next + 1) % self.slots.len();
        self.len = (self.len + 1).min(self.slots.len());
    }

    /// The samples held, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Sample> + Clone {
        let start = (self.next + self.slots.len() - self.len) % self.slots.len();
        let (before, from) = self.slots.split_at(start);
        from.iter().chain(before).take(self.len)
    }

    /// Each sample but the oldest, with the one before it: the intervals that rates span.
    pub fn intervals(&self) -> impl Iterator<Item = (&Sample, &Sample)> + Clone {
        self.iter().zip(self.iter().skip(1))
    }
}

/// The ring and the top list, shared by the sampler and the readers.
pub struct Dashboard {
    interval: u32,
    samples: u32,
    ring: Mutex<Ring>,
    top: Mutex<Vec<(InfoHash, Counts)>>,
    /// Set by each read of the JSON, taken by the sampler.
    read: AtomicBool,
    /// Until when (sampler's clock) the sampler walks the store for the top list.
    watched_until_ms: AtomicU64,
}

impl Dashboard {
    /// The ring holds one sample more than `cfg.samples`: `samples` rates need one more.
    pub fn new(cfg: &DashboardConfig) -> Dashboard {
        Dashboard {
            interval: cfg.interval.max(1),
            samples: cfg.samples,
            ring: Mutex::new(Ring::new(cfg.samples as usize + 1)),
            top: Mutex::new(Vec::with_capacity(TOP + 1)),
            read: AtomicBool::new(false),
            watched_until_ms: AtomicU64::new(0),
        }
    }

    /// Seconds between samples (`dashboard.interval`).
    pub fn interval_secs(&self) -> u32 {
        self.interval
    }

    /// Takes a sample at `at_ms` (sampler's clock, never going back) of the summed counters
    /// `c` and the store's totals `t`, and walks `store` for the top torrents while the JSON is
    /// being read.
    pub fn record(&self, at_ms: u64, c: &Counters, t: &Totals, store: &Store) {
        let s = Sample::of(at_ms, c, t);
        self.ring.lock().unwrap_or_else(|e| e.into_inner()).push(s);
        if self.read.swap(false, Ordering::Relaxed) {
            self.watched_until_ms
                .store(at_ms.saturating_add(WATCHED_FOR_MS), Ordering::Relaxed);
        }
        if at_ms < self.watched_until_ms.load(Ordering::Relaxed) {
            let top = top_torrents(store, TOP);
            *self.top.lock().unwrap_or_else(|e| e.into_inner()) = top;
        }
    }

    /// Appends `/dashboard.json`: the configuration, `uptime` (seconds), the time of each
    /// point (`t`, milliseconds on the sampler's clock), each chart's series with one point
    /// per interval between samples (rates per second with up to two decimals; levels as at
    /// the interval's end), and the top torrents by peers as last walked.
    pub fn render_json(&self, uptime: u64, out: &mut String) {
        self.read.store(true, Ordering::Relaxed);
        let _ = write!(
            out,
            "{{\"interval\":{},\"samples\":{},\"uptime\":{uptime},\"t\":[",
            self.interval, self.samples
        );
        {
            let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
            list(out, ring.intervals(), |out, (_, s)| {
                let _ = write!(out, "{}", s.at_ms);
            });
            out.push_str("],\"charts\":[");
            let mut chart = "";
            for (i, series) in SERIES.iter().enumerate() {
                if series.chart != chart {
                    if !chart.is_empty() {
                        out.push_str("]},");
                    }
                    chart = series.chart;
                    let _ = write!(
                        out,
                        "{{\"name\":\"{chart}\",\"kind\":\"{}\",\"series\":[",
                        series.kind.name()
                    );
                } else {
                    out.push(',');
                }
                let _ = write!(out, "{{\"name\":\"{}\",\"points\":[", series.name);
                list(out, ring.intervals(), |out, (a, b)| {
                    let (was, is) = (value(a, i), value(b, i));
                    match series.kind {
                        Kind::Rate => {
                            push_rate(out, is.saturating_sub(was), b.at_ms.saturating_sub(a.at_ms))
                        }
                        Kind::Gauge => {
                            let _ = write!(out, "{is}");
                        }
                    }
                });
                out.push_str("]}");
            }
            out.push_str("]}]");
        }
        out.push_str(",\"top\":[");
        let top = self.top.lock().unwrap_or_else(|e| e.into_inner());
        list(out, top.iter(), |out, (h, c)| {
            out.push_str("{\"info_hash\":\"");
            for b in h.0 {
                let _ = write!(out, "{b:02x}");
            }
            let _ = write!(
                out,
                "\",\"seeders\":{},\"leechers\":{},\"completed\":{}}}",
                c.seeders, c.leechers, c.downloaded
            );
        });
        out.push_str("]}");
    }
}

/// The `n` torrents with the most peers, most first (equal ones in walk order), from a walk
/// of every shard.
pub fn top_torrents(store: &Store, n: usize) -> Vec<(InfoHash, Counts)> {
    let mut ranked: Vec<(u32, (InfoHash, Counts))> = Vec::with_capacity(n + 1);
    for shard in 0..SHARDS {
        store.for_each_in_shard(shard, |h, c| {
            super::rank(
                &mut ranked,
                n,
                c.seeders.saturating_add(c.leechers),
                (*h, c),
            );
        });
    }
    ranked.into_iter().map(|(_, t)| t).collect()
}

fn value(s: &Sample, i: usize) -> u64 {
    s.values.get(i).copied().unwrap_or(0)
}

/// Writes `items` comma-separated with `each`.
fn list<T>(out: &mut String, items: impl Iterator<Item = T>, mut each: impl FnMut(&mut String, T)) {
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(out, item);
    }
}

/// `delta` per second over `ms` milliseconds, rounded to two decimals, without trailing zeros
/// (integer arithmetic: the same counts always print the same). No time, no rate: 0.
fn push_rate(out: &mut String, delta: u64, ms: u64) {
    let hundredths = if ms == 0 {
        0
    } else {
        (u128::from(delta) * 100_000 + u128::from(ms) / 2) / u128::from(ms)
    };
    let (whole, frac) = (hundredths / 100, hundredths % 100);
    let _ = match frac {
        0 => write!(out, "{whole}"),
        f if f % 10 == 0 => write!(out, "{whole}.{}", f / 10),
        f => write!(out, "{whole}.{f:02}"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrotracker_proto::Event;
    use ferrotracker_swarm::{Announce, PeerAddr, Rng, StoreConfig, Want};

    fn counters(udp_announces: u64, http_announces: u64) -> Counters {
        Counters {
            udp_announces,
            http_announces,
            ..Counters::default()
        }
    }

    fn json(d: &Dashboard) -> serde_json::Value {
        let mut out = String::new();
        d.render_json(7, &mut out);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    fn points(v: &serde_json::Value, chart: &str, series: &str) -> Vec<f64> {
        let c = v["charts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == chart)
            .unwrap();
        let s = c["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == series)
            .unwrap();
        s["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect()
    }

    #[test]
    fn ring_keeps_the_newest_in_fixed_memory() {
        let mut r = Ring::new(4);
        assert_eq!((r.capacity(), r.len()), (4, 0));
        assert_eq!(r.iter().count(), 0);
        assert_eq!(r.intervals().count(), 0);
        let slots = r.slots.as_ptr();
        for i in 0..11u64 {
            r.push(Sample {
                at_ms: i,
                ..Sample::default()
            });
            let held: Vec<u64> = r.iter().map(|s| s.at_ms).collect();
            let first = i.saturating_sub(3);
            assert_eq!(held, (first..=i).collect::<Vec<_>>(), "after {i}");
            assert_eq!(r.intervals().count(), held.len() - 1);
        }
        assert_eq!((r.capacity(), r.len()), (4, 4));
        assert_eq!(r.slots.as_ptr(), slots, "never reallocated");
        // Too small a ring still spans one interval.
        assert_eq!(Ring::new(0).capacity(), 2);
    }

    #[test]
    fn rates_are_deltas_over_the_time_between_samples() {
        let mut out = String::new();
        for (delta, ms, want) in [
            (10, 1000, "10"),
            (7, 2000, "3.5"),
            (1, 3000, "0.33"),
            (2, 3000, "0.67"),
            (1, 1001, "1"),
            (0, 5000, "0"),
            (5, 0, "0"),
            (u64::MAX, 1, "18446744073709551615000"),
        ] {
            out.clear();
            push_rate(&mut out, delta, ms);
            assert_eq!(out, want, "{delta} in {ms} ms");
        }

        let d = Dashboard::new(&DashboardConfig {
            enabled: true,
            interval: 5,
            samples: 3,
        });
        let store = Store::new(StoreConfig::default());
        let t = Totals {
            torrents: 2,
            peers4: 3,
            peers6: 1,
            seeders: 1,
            ..Totals::default()
        };
        d.record(0, &counters(0, 0), &t, &store);
        let v = json(&d);
        assert_eq!(
            v["t"].as_array().unwrap().len(),
            0,
            "one sample: no rate yet"
        );
        // 5 s later: 50 UDP and 10 HTTP announces; then 2.5 s with 5 more UDP ones.
        d.record(5000, &counters(50, 10), &t, &store);
        d.record(7500, &counters(55, 10), &t, &store);
        let v = json(&d);
        assert_eq!(
            (v["interval"].as_u64(), v["samples"].as_u64()),
            (Some(5), Some(3))
        );
        assert_eq!(v["uptime"], 7);
        assert_eq!(v["t"], serde_json::json!([5000, 7500]));
        assert_eq!(points(&v, "announces", "udp"), [10.0, 2.0]);
        assert_eq!(points(&v, "announces", "http"), [2.0, 0.0]);
        assert_eq!(points(&v, "announces", "websocket"), [0.0, 0.0]);
        assert_eq!(points(&v, "peers", "seeders"), [1.0, 1.0]);
        assert_eq!(points(&v, "peers", "leechers"), [3.0, 3.0]);
        assert_eq!(points(&v, "families", "ipv6"), [1.0, 1.0]);
        assert_eq!(points(&v, "torrents", "torrents"), [2.0, 2.0]);
        let charts: Vec<&str> = v["charts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            charts,
            [
                "announces",
                "scrapes",
                "errors",
                "peers",
                "families",
                "torrents",
                "refusals"
            ]
        );
        // Series of a chart are neighbours: each chart appears once.
        let series: usize = v["charts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["series"].as_array().unwrap().len())
            .sum();
        assert_eq!(series, SERIES_COUNT);

        // Wrapped: `samples` points, whatever has been recorded; the JSON stops growing.
        let mut sizes = Vec::new();
        let base = 1_000_000_000;
        for i in 3..40u64 {
            d.record(base + i * 5000, &counters(i * 1_000_000, i), &t, &store);
            let mut out = String::new();
            d.render_json(7, &mut out);
            sizes.push(out.len());
        }
        let v = json(&d);
        assert_eq!(
            v["t"],
            serde_json::json!([base + 185_000, base + 190_000, base + 195_000])
        );
        assert_eq!(points(&v, "announces", "udp"), [200_000.0; 3]);
        assert_eq!(points(&v, "announces", "http"), [0.2; 3]);
        assert!(sizes.windows(2).skip(3).all(|w| w[0] == w[1]), "{sizes:?}");
    }

    #[test]
    fn top_torrents_are_walked_only_while_the_json_is_read() {
        let store = Store::new(StoreConfig::default());
        let mut rng = Rng::new(1);
        let (mut o4, mut o6) = (Vec::new(), Vec::new());
        for (h, peers) in [(1u8, 2u16), (2, 5), (3, 1)] {
            for port in 0..peers {
                let a = Announce {
                    info_hash: InfoHash([h; 20]),
                    addr: PeerAddr::from(std::net::IpAddr::from([10, 0, h, port as u8])),
                    port: 6881 + port,
                    seeding: port == 0,
                    event: Event::Started,
                };
                store
                    .announce(&a, Want::Both(0), 100, &mut rng, &mut o4, &mut o6)
                    .unwrap();
            }
        }
        let d = Dashboard::new(&DashboardConfig::default());
        let t = store.totals();
        d.record(0, &Counters::default(), &t, &store);
        assert_eq!(json(&d)["top"], serde_json::json!([]), "nobody looked yet");
        // Read: the next sample walks.
        d.record(5000, &Counters::default(), &t, &store);
        let top = json(&d)["top"].clone();
        let hex = |b: u8| format!("{b:02x}").repeat(20);
        assert_eq!(
            top,
            serde_json::json!([
                {"info_hash": hex(2), "seeders": 1, "leechers": 4, "completed": 0},
                {"info_hash": hex(1), "seeders": 1, "leechers": 1, "completed": 0},
                {"info_hash": hex(3), "seeders": 1, "leechers": 0, "completed": 0},
            ])
        );
        assert_eq!(top_torrents(&store, 2).len(), 2);
        assert_eq!(top_torrents(&store, 0).len(), 0);
    }
}
