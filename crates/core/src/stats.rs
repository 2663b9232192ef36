//! `/stats?mode=...` in opentracker's output formats ([`ot_stats.c`](https://erdgeist.org/gitweb/opentracker/tree/ot_stats.c)), and `/metrics` in Prometheus'
//! text format, rendered from a [`Snapshot`] of the summed worker counters and store totals.
//!
//! Where opentracker is wrong, ferrotracker is right and says so in docs/compatibility.md: `herr` prints
//! each label beside its own counter, `fscr` counts full scrapes and their bytes, the `everything`
//! XML's `tcp/scrape` is the HTTP scrape count (opentracker prints the UDP one there), `s24s`
//! prints IPv4 networks as dotted quads, and `tpbs` without `format=` is `ben` instead of a
//! request that never gets an answer. Modes that need data ferrotracker does not collect
//! (`busy`, `woodpeckers`, `fulllog`) answer 400 with a reason instead of nothing.

use std::collections::HashMap;
use std::fmt::Write as _;

use ferrotracker_proto::InfoHash;
use ferrotracker_swarm::{Store, Totals, SHARDS};

use crate::counters::{Counters, NUMWANT_BUCKETS};
use crate::fullscrape::Format;

/// What a stats page is made from.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Every worker's counters added up, as they were when the page was asked for.
    pub counters: Counters,
    pub totals: Totals,
    /// Seconds since the tracker started.
    pub uptime: u64,
    pub tracker_id: u32,
    pub memory: Memory,
    /// The access list in force, if one is configured.
    pub access: Option<AccessSizes>,
}

/// The swarm's memory ceiling and the store's estimate of its heap, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// `u64::MAX` = no ceiling.
    pub limit: u64,
    pub estimated: u64,
}

/// How many hashes the access list holds: from the file, and added and deleted through the
/// dynamic-list FIFOs since the file was loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccessSizes {
    pub file: u64,
    pub added: u64,
    pub deleted: u64,
}

/// A parsed `/stats` query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Peer,
    Torr,
    Conn,
    Udp4,
    Tcp4,
    Scrp,
    Fscr,
    Completed,
    Syncs,
    Herr,
    Renew,
    Version,
    Numwants,
    /// `top10` / `top100`.
    Top(usize),
    S24s,
    Everything,
    /// `busy`, `woodpeckers`, `fulllog`: known to opentracker, not collected here.
    NotTracked(&'static str),
    /// `tpbs` and `statedump`: streamed like a full scrape.
    Stream(Format),
}

/// Why a `/stats` query is refused (400).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsError {
    /// `info_hash` in the query: a client mistaking /stats for its announce URL.
    InfoHash,
    UnknownMode,
    UnknownFormat,
    NotTracked(&'static str),
}

impl StatsError {
    pub fn reason(self) -> &'static str {
        match self {
            StatsError::InfoHash => "/stats is not an announce URL (info_hash given)",
            StatsError::UnknownMode => "unknown stats mode",
            StatsError::UnknownFormat => "unknown format (tpbs: bin, ben, url, txt, txtp)",
            StatsError::NotTracked(why) => why,
        }
    }
}

/// Parses `mode=` and `format=`; no mode is `peer`, as opentracker. Other parameters are
/// skipped, except `info_hash`, which is refused as opentracker does.
pub fn parse_query(query: &[u8]) -> Result<Mode, StatsError> {
    let mut mode: &[u8] = b"peer";
    let mut format: Option<&[u8]> = None;
    for part in query.split(|&b| b == b'&') {
        let (k, v) = match part.iter().position(|&b| b == b'=') {
            Some(i) => {
                let (k, v) = part.split_at(i);
                (k, v.get(1..).unwrap_or_default())
            }
            None => (part, &b""[..]),
        };
        match k {
            b"mode" => mode = v,
            b"format" => format = Some(v),
            b"info_hash" => return Err(StatsError::InfoHash),
            _ => {}
        }
    }
    Ok(match mode {
        b"peer" => Mode::Peer,
        b"torr" => Mode::Torr,
        b"conn" => Mode::Conn,
        b"udp4" => Mode::Udp4,
        b"tcp4" => Mode::Tcp4,
        b"scrp" => Mode::Scrp,
        b"fscr" => Mode::Fscr,
        b"completed" => Mode::Completed,
        b"syncs" => Mode::Syncs,
        b"herr" => Mode::Herr,
        b"renew" => Mode::Renew,
        b"version" => Mode::Version,
        b"numwants" => Mode::Numwants,
        b"top10" => Mode::Top(10),
        b"top100" => Mode::Top(100),
        b"s24s" => Mode::S24s,
        b"everything" => Mode::Everything,
        b"statedump" => Mode::Stream(Format::Statedump),
        b"tpbs" => Mode::Stream(match format.unwrap_or(b"ben") {
            b"ben" => Format::Bencode,
            b"bin" => Format::Binary,
            b"url" => Format::UrlEncoded,
            b"txt" => Format::Text,
            b"txtp" => Format::TextPlus,
            _ => return Err(StatsError::UnknownFormat),
        }),
        b"busy" => Mode::NotTracked(
            "stats mode busy: opentracker never implemented it (500 there); not collected",
        ),
        b"woodpeckers" => Mode::NotTracked(
            "stats mode woodpeckers: ferrotracker does not track re-announce storms per network",
        ),
        b"fulllog" => Mode::NotTracked(
            "stats mode fulllog: ferrotracker does not keep raw requests (use RUST_LOG=trace)",
        ),
        _ => return Err(StatsError::UnknownMode),
    })
}

/// Content type of a rendered page: `everything` is XML, the rest plain text.
pub fn content_type(mode: Mode) -> &'static str {
    match mode {
        Mode::Everything => "text/xml",
        _ => "text/plain",
    }
}

/// Appends the body of `mode` (not a streamed one) to `out`. Walks the store for `top*` and
/// `s24s` (one shard lock at a time).
pub fn render(mode: Mode, s: &Snapshot, store: &Store, out: &mut String) -> Result<(), StatsError> {
    let c = &s.counters;
    let t = &s.totals;
    let up = s.uptime;
    let rate = |events: u64, per: u64| events / per.max(1);
    let mrtg = |out: &mut String, a: u64, b: u64, text: std::fmt::Arguments<'_>| {
        let _ = write!(out, "{a}\n{b}\n{up} seconds ({} hours)\n{text}", up / 3600);
    };
    let conns = c.tcp_accepts + c.udp_packets;
    let successes = c.http_announces + c.udp_announces + c.udp_connects;
    match mode {
        Mode::Peer => {
            let _ = write!(
                out,
                "{}\n{}\nopentracker serving {} torrents\nopentracker",
                t.peers4 + t.peers6,
                t.seeders,
                t.torrents
            );
        }
        Mode::Torr => {
            let _ = write!(
                out,
                "{}\n0\nopentracker serving {} torrents\nopentracker",
                t.torrents, t.torrents
            );
        }
        Mode::Conn => mrtg(
            out,
            conns,
            successes,
            format_args!(
                "opentracker connections, {} conns/s :: {} success/s.",
                rate(conns, up),
                rate(successes, up)
            ),
        ),
        Mode::Udp4 => {
            let ok = c.udp_announces + c.udp_connects;
            mrtg(
                out,
                c.udp_packets,
                ok,
                format_args!(
                    "opentracker udp4 stats, {} conns/s :: {} success/s.",
                    rate(c.udp_packets, up),
                    rate(ok, up)
                ),
            )
        }
        Mode::Tcp4 => mrtg(
            out,
            c.tcp_accepts,
            c.http_announces,
            format_args!(
                "opentracker tcp4 stats, {} conns/s :: {} success/s.",
                rate(c.tcp_accepts, up),
                rate(c.http_announces, up)
            ),
        ),
        Mode::Scrp => mrtg(
            out,
            c.http_scrapes,
            c.udp_scrapes,
            format_args!(
                "opentracker scrape stats, {} scrape/s (tcp and udp)",
                rate(c.http_scrapes + c.udp_scrapes, up)
            ),
        ),
        Mode::Fscr => mrtg(
            out,
            c.full_scrapes * 1000,
            c.full_scrape_bytes,
            format_args!(
                "opentracker full scrape stats, {} conns/s :: {} bytes/s.",
                rate(c.full_scrapes, up),
                rate(c.full_scrape_bytes, up)
            ),
        ),
        Mode::Completed => mrtg(
            out,
            c.completed,
            0,
            format_args!("opentracker, {} completed/h.", rate(c.completed, up / 3600)),
        ),
        Mode::Syncs => mrtg(
            out,
            c.sync.peers_received,
            0,
            format_args!(
                "opentracker connections, {} conns/s :: {} success/s.",
                rate(conns, up),
                rate(successes, up)
            ),
        ),
        Mode::Herr => {
            for (label, n) in http_errors(c) {
                let _ = writeln!(out, "{label} {n}");
            }
        }
        Mode::Renew => {
            for (i, n) in c.renewed.iter().enumerate() {
                let _ = writeln!(out, "{i:02} {n}");
            }
        }
        Mode::Version => {
            let _ = writeln!(out, "{VERSION}");
        }
        Mode::Numwants => {
            for (i, n) in c.numwants.iter().enumerate().take(NUMWANT_BUCKETS) {
                let _ = writeln!(out, "{i:03} => {n}");
            }
        }
        Mode::Top(n) => top(store, n, out),
        Mode::S24s => s24s(store, out),
        Mode::Everything => everything(s, out),
        Mode::NotTracked(why) => return Err(StatsError::NotTracked(why)),
        Mode::Stream(_) => return Err(StatsError::UnknownMode),
    }
    Ok(())
}

/// `/metrics`: Prometheus text exposition format 0.0.4.
pub fn render_metrics(s: &Snapshot, out: &mut String) {
    let c = &s.counters;
    let t = &s.totals;
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in samples {
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {v}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        }
    };
    family(
        "ferrotracker_requests_total",
        "counter",
        "Requests answered, by protocol and kind.",
        &[
            (r#"proto="http",kind="announce""#, c.http_announces),
            (r#"proto="http",kind="scrape""#, c.http_scrapes),
            (r#"proto="http",kind="full_scrape""#, c.full_scrapes),
            (r#"proto="http",kind="stats""#, c.http_stats),
            (r#"proto="udp",kind="connect""#, c.udp_connects),
            (r#"proto="udp",kind="announce""#, c.udp_announces),
            (r#"proto="udp",kind="scrape""#, c.udp_scrapes),
        ],
    );
    family(
        "ferrotracker_errors_total",
        "counter",
        "Requests refused, by protocol and reason (HTTP: status code).",
        &[
            (r#"proto="http",code="302""#, c.http_redirects),
            (
                r#"proto="http",code="400""#,
                c.http_400_param + c.http_400_parse,
            ),
            (r#"proto="http",code="403""#, c.http_403),
            (r#"proto="http",code="404""#, c.http_404),
            (r#"proto="http",code="500""#, c.http_500),
            (
                r#"proto="udp",reason="bad_connection_id""#,
                c.udp_bad_connection_id,
            ),
            (r#"proto="udp",reason="bad_packet""#, c.udp_bad_packets),
        ],
    );
    family(
        "ferrotracker_limited_total",
        "counter",
        "Announces held back by a store limit: refused (torrent or memory limit), refused because the address (IPv6: /64) has tracker.max_peers_per_ip peers in the torrent, or answered without storing the peer (peers per torrent or memory limit).",
        &[
            (r#"what="refused""#, c.refused_full),
            (r#"what="address_limit""#, c.refused_address),
            (r#"what="peer_not_stored""#, c.peers_not_stored),
        ],
    );
    family(
        "ferrotracker_memory_limit_bytes",
        "gauge",
        "The swarm's memory ceiling (tracker.max_memory_mb, by default half of physical memory or of the cgroup limit); 0 = none.",
        &[("", if s.memory.limit == u64::MAX { 0 } else { s.memory.limit })],
    );
    family(
        "ferrotracker_memory_estimated_bytes",
        "gauge",
        "The store's estimate of its heap (torrents and peers), which the ceiling bounds.",
        &[("", s.memory.estimated)],
    );
    family(
        "ferrotracker_refused_total",
        "counter",
        "Clients turned away by a connection or rate limit: HTTP connections answered 503 at accept (total or per-address limit), HTTP requests answered 429 and UDP datagrams dropped by the per-address rate limit, full scrapes and stats streams answered 503 (http.max_streams) or 429 (tracker.full_scrape_interval).",
        &[
            (r#"limit="connections""#, c.conn_limited),
            (r#"limit="connections_per_ip""#, c.conn_limited_ip),
            (r#"limit="rate",proto="http""#, c.http_rate_limited),
            (r#"limit="rate",proto="udp""#, c.udp_rate_limited),
            (r#"limit="streams""#, c.streams_refused),
            (r#"limit="full_scrape_interval""#, c.full_scrapes_too_soon),
        ],
    );
    family(
        "ferrotracker_http_timeouts_total",
        "counter",
        "HTTP connections closed by a timeout: idle (http.idle_timeout) or a request head too slow (http.request_timeout).",
        &[
            (r#"kind="idle""#, c.http_idle_timeouts),
            (r#"kind="request""#, c.http_request_timeouts),
        ],
    );
    family(
        "ferrotracker_accept_errors_total",
        "counter",
        "Failed accept calls (e.g. EMFILE: out of file descriptors).",
        &[("", c.accept_errors)],
    );
    family(
        "ferrotracker_tcp_connections_total",
        "counter",
        "TCP connections accepted.",
        &[("", c.tcp_accepts)],
    );
    family(
        "ferrotracker_udp_packets_total",
        "counter",
        "UDP datagrams received.",
        &[("", c.udp_packets)],
    );
    family(
        "ferrotracker_completed_total",
        "counter",
        "Completed events (event=completed from a seeder).",
        &[("", c.completed)],
    );
    family(
        "ferrotracker_full_scrape_bytes_total",
        "counter",
        "Body bytes sent for full scrapes, tpbs and statedumps (after compression).",
        &[("", c.full_scrape_bytes)],
    );
    family(
        "ferrotracker_torrents",
        "gauge",
        "Torrents in the store.",
        &[("", t.torrents)],
    );
    family(
        "ferrotracker_peers",
        "gauge",
        "Peers in the store, by address family.",
        &[
            (r#"family="ipv4""#, t.peers4),
            (r#"family="ipv6""#, t.peers6),
        ],
    );
    family(
        "ferrotracker_seeders",
        "gauge",
        "Seeding peers in the store.",
        &[("", t.seeders)],
    );
    family(
        "ferrotracker_leechers",
        "gauge",
        "Leeching peers in the store.",
        &[("", (t.peers4 + t.peers6).saturating_sub(t.seeders))],
    );
    family(
        "ferrotracker_downloaded",
        "gauge",
        "Sum of the downloaded counts of the torrents in the store.",
        &[("", t.downloaded)],
    );
    let y = &c.sync;
    family(
        "ferrotracker_livesync_packets_total",
        "counter",
        "Live-sync packets sent to and accepted from other cluster nodes.",
        &[
            (r#"direction="sent""#, y.packets_sent),
            (r#"direction="received""#, y.packets_received),
        ],
    );
    family(
        "ferrotracker_livesync_peers_total",
        "counter",
        "Peers (entries) in live-sync packets sent and accepted.",
        &[
            (r#"direction="sent""#, y.peers_sent),
            (r#"direction="received""#, y.peers_received),
        ],
    );
    family(
        "ferrotracker_livesync_refused_total",
        "counter",
        "Live-sync packets refused: from an address that is not a node, our own echo, a bad or missing MAC, a time outside the window (stale), a keyed packet already seen (replay), larger than 1480 bytes (oversize), not a live-sync packet.",
        &[
            (r#"reason="source""#, y.refused_source),
            (r#"reason="echo""#, y.refused_echo),
            (r#"reason="mac""#, y.refused_mac),
            (r#"reason="stale""#, y.refused_stale),
            (r#"reason="replay""#, y.refused_replay),
            (r#"reason="oversize""#, y.refused_oversize),
            (r#"reason="malformed""#, y.refused_malformed),
        ],
    );
    family(
        "ferrotracker_livesync_dropped_total",
        "counter",
        "Live-sync entries dropped because the hand-off to the sync thread was full, and datagrams the socket failed to send.",
        &[
            (r#"what="queue_full""#, y.dropped_queue_full),
            (r#"what="send_error""#, y.send_errors),
        ],
    );
    if let Some(a) = s.access {
        family(
            "ferrotracker_access_list_hashes",
            "gauge",
            "Info_hashes of the access list in force: read from the file, and added and deleted through the dynamic-list FIFOs since it was loaded.",
            &[
                (r#"source="file""#, a.file),
                (r#"source="fifo_added""#, a.added),
                (r#"source="fifo_deleted""#, a.deleted),
            ],
        );
    }
    family(
        "ferrotracker_uptime_seconds",
        "gauge",
        "Seconds since start.",
        &[("", s.uptime)],
    );
}

/// opentracker's `herr` labels, each with its own counter (opentracker prints them shifted by
/// two since it added its 402 codes).
fn http_errors(c: &Counters) -> [(&'static str, u64); 7] {
    [
        ("302 RED", c.http_redirects),
        ("400 ...", c.http_400_parse),
        ("400 PAR", c.http_400_param),
        // compact=0 is served, never refused.
        ("400 COM", 0),
        ("403 IP ", c.http_403),
        ("404 INV", c.http_404),
        ("500 SRV", c.http_500),
    ]
}

fn top(store: &Store, n: usize, out: &mut String) {
    // Three descending lists; a later torrent with an equal value ranks after (opentracker's `>`).
    let mut lists: [Vec<(u32, [u8; 20])>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    for shard in 0..SHARDS {
        store.for_each_in_shard(shard, |h: &InfoHash, c| {
            let vals = [c.seeders + c.leechers, c.seeders, c.leechers];
            for (list, v) in lists.iter_mut().zip(vals) {
                if v == 0 || (list.len() == n && list.last().is_some_and(|l| l.0 >= v)) {
                    continue;
                }
                let at = list.partition_point(|e| e.0 >= v);
                list.insert(at, (v, h.0));
                list.truncate(n);
            }
        });
    }
    let mut hex = Vec::with_capacity(40);
    for (name, list) in ["peers", "seeds", "leechers"].iter().zip(&lists) {
        let _ = writeln!(out, "Top {n} torrents by {name}:");
        for (v, h) in list {
            hex.clear();
            ferrotracker_proto::hex::push_upper(&mut hex, h);
            let _ = writeln!(out, "\t{v}\t{}", String::from_utf8_lossy(&hex));
        }
    }
}

/// IPv4 peers by /28 and by /24, the 128 busiest networks each, busiest first.
fn s24s(store: &Store, out: &mut String) {
    let mut by28: HashMap<u32, u64> = HashMap::new();
    for shard in 0..SHARDS {
        store.for_each_detail_in_shard(shard, |_, _, _, peers| {
            for p in peers {
                let ip = u32::from_be_bytes([p.0[0], p.0[1], p.0[2], p.0[3]]);
                *by28.entry(ip & !0xf).or_default() += 1;
            }
        });
    }
    let mut by24: HashMap<u32, u64> = HashMap::new();
    for (&net, &n) in &by28 {
        *by24.entry(net & !0xff).or_default() += n;
    }
    for (bits, map) in [(28, by28), (24, by24)] {
        let mut v: Vec<(u64, u32)> = map.into_iter().map(|(k, n)| (n, k)).collect();
        v.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let _ = writeln!(out, "Networks, limit /{bits}:");
        for (n, net) in v.into_iter().take(128) {
            let _ = writeln!(out, "{n:08}: {}", std::net::Ipv4Addr::from(net));
        }
        out.push('\n');
    }
}

fn everything(s: &Snapshot, out: &mut String) {
    let c = &s.counters;
    let t = &s.totals;
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<stats>\n  <tracker_id>{}</tracker_id>\n  <version>\n{VERSION}\n  </version>\n  <uptime>{}</uptime>\n  <torrents>\n    <count_mutex>{}</count_mutex>\n    <count_iterator>{}</count_iterator>\n  </torrents>\n",
        s.tracker_id, s.uptime, t.torrents, t.torrents
    );
    let _ = write!(
        out,
        "  <peers>\n    <count>{}</count>\n  </peers>\n  <seeds>\n    <count>{}</count>\n  </seeds>\n  <completed>\n    <count>{}</count>\n  </completed>\n",
        t.peers4 + t.peers6,
        t.seeders,
        c.completed
    );
    let _ = write!(
        out,
        "  <connections>\n    <tcp>\n      <accept>{}</accept>\n      <announce>{}</announce>\n      <scrape>{}</scrape>\n    </tcp>\n    <udp>\n      <overall>{}</overall>\n      <connect>{}</connect>\n      <announce>{}</announce>\n      <scrape>{}</scrape>\n      <missmatch>{}</missmatch>\n    </udp>\n    <livesync>\n      <count>{}</count>\n    </livesync>\n  </connections>\n",
        c.tcp_accepts,
        c.http_announces,
        c.http_scrapes,
        c.udp_packets,
        c.udp_connects,
        c.udp_announces,
        c.udp_scrapes,
        c.udp_bad_connection_id,
        c.sync.peers_received
    );
    out.push_str("  <debug>\n    <renew>\n");
    for (i, n) in c.renewed.iter().enumerate() {
        let _ = writeln!(out, "      <count interval=\"{i:02}\">{n}</count>");
    }
    out.push_str("    </renew>\n    <http_error>\n");
    let errors = [
        ("302 Redirect", c.http_redirects),
        ("400 Parse Error", c.http_400_parse),
        ("400 Invalid Parameter", c.http_400_param),
        ("400 Invalid Parameter (compact=0)", 0),
        ("400 Not Modest", 0),
        ("402 Payment Required", 0),
        ("403 Access Denied", c.http_403),
        ("404 Not found", c.http_404),
        ("500 Internal Server Error", c.http_500),
        (
            "429 Too Many Requests",
            c.http_rate_limited + c.full_scrapes_too_soon,
        ),
        (
            "503 Service Unavailable",
            c.conn_limited + c.conn_limited_ip + c.streams_refused,
        ),
    ];
    for (code, n) in errors {
        let _ = writeln!(out, "      <count code=\"{code}\">{n}</count>");
    }
    out.push_str(
        "    </http_error>\n    <mutex_stall>\n      <count>0</count>\n    </mutex_stall>\n  </debug>\n</stats>",
    );
}

/// What `mode=version` prints (opentracker: its gitweb commit URL).
pub const VERSION: &str = concat!("ferrotracker ", env!("CARGO_PKG_VERSION"));

#[cfg(test)]
mod tests {
    use super::*;
    use ferrotracker_proto::Event;
    use ferrotracker_swarm::{Announce, PeerAddr, Rng, StoreConfig, Want};

    fn snap() -> Snapshot {
        let mut c = Counters {
            tcp_accepts: 7200,
            http_announces: 3600,
            http_scrapes: 10,
            http_redirects: 1,
            http_400_param: 3,
            http_400_parse: 2,
            http_403: 4,
            http_404: 6,
            http_500: 7,
            full_scrapes: 2,
            full_scrape_bytes: 72_000,
            udp_packets: 36_000,
            udp_connects: 100,
            udp_announces: 200,
            udp_scrapes: 20,
            udp_bad_connection_id: 3,
            completed: 14,
            ..Counters::default()
        };
        c.numwants[50] = 9;
        c.numwants[200] = 1;
        let live = crate::counters::LiveCounters::default();
        for age in [59, 60 * 3 + 1, 60 * 3 + 59, 86_400] {
            live.renew(age);
        }
        c.renewed = live.read().renewed;
        Snapshot {
            counters: c,
            totals: Totals {
                torrents: 3,
                peers4: 10,
                peers6: 2,
                seeders: 4,
                downloaded: 8,
            },
            uptime: 7200,
            tracker_id: 42,
            memory: Memory {
                limit: 1 << 30,
                estimated: 1234,
            },
            access: Some(AccessSizes {
                file: 5,
                added: 2,
                deleted: 1,
            }),
        }
    }

    fn page(q: &str) -> String {
        let store = Store::new(StoreConfig::default());
        let mut out = String::new();
        render(
            parse_query(q.as_bytes()).unwrap(),
            &snap(),
            &store,
            &mut out,
        )
        .unwrap();
        out
    }

    #[test]
    fn mrtg_modes() {
        assert_eq!(
            page(""),
            "12\n4\nopentracker serving 3 torrents\nopentracker"
        );
        assert_eq!(page("mode=peer"), page(""));
        assert_eq!(
            page("mode=torr"),
            "3\n0\nopentracker serving 3 torrents\nopentracker"
        );
        assert_eq!(
            page("mode=conn"),
            "43200\n3900\n7200 seconds (2 hours)\nopentracker connections, 6 conns/s :: 0 success/s."
        );
        assert_eq!(
            page("mode=udp4"),
            "36000\n300\n7200 seconds (2 hours)\nopentracker udp4 stats, 5 conns/s :: 0 success/s."
        );
        assert_eq!(
            page("mode=tcp4"),
            "7200\n3600\n7200 seconds (2 hours)\nopentracker tcp4 stats, 1 conns/s :: 0 success/s."
        );
        assert_eq!(
            page("mode=scrp"),
            "10\n20\n7200 seconds (2 hours)\nopentracker scrape stats, 0 scrape/s (tcp and udp)"
        );
        assert_eq!(
            page("mode=fscr"),
            "2000\n72000\n7200 seconds (2 hours)\nopentracker full scrape stats, 0 conns/s :: 10 bytes/s."
        );
        assert_eq!(
            page("mode=completed"),
            "14\n0\n7200 seconds (2 hours)\nopentracker, 7 completed/h."
        );
        assert_eq!(
            page("mode=syncs"),
            "0\n0\n7200 seconds (2 hours)\nopentracker connections, 6 conns/s :: 0 success/s."
        );
    }

    #[test]
    fn rates_with_no_uptime_divide_by_one() {
        let store = Store::new(StoreConfig::default());
        let mut s = snap();
        s.uptime = 0;
        let mut out = String::new();
        render(Mode::Completed, &s, &store, &mut out).unwrap();
        assert_eq!(
            out,
            "14\n0\n0 seconds (0 hours)\nopentracker, 14 completed/h."
        );
    }

    #[test]
    fn herr_labels_are_aligned() {
        assert_eq!(
            page("mode=herr"),
            "302 RED 1\n400 ... 2\n400 PAR 3\n400 COM 0\n403 IP  4\n404 INV 6\n500 SRV 7\n"
        );
    }

    #[test]
    fn renew_numwants_version() {
        let r = page("mode=renew");
        assert_eq!(r.lines().count(), 45);
        assert!(r.starts_with("00 1\n01 0\n02 0\n03 2\n04 0\n") && r.ends_with("43 0\n44 1\n"));
        let n = page("mode=numwants");
        assert_eq!(n.lines().count(), 201);
        assert!(n.starts_with("000 => 0\n"));
        assert!(n.contains("\n050 => 9\n"));
        assert!(n.ends_with("200 => 1\n"));
        assert_eq!(page("mode=version"), format!("{VERSION}\n"));
    }

    #[test]
    fn everything_xml() {
        let x = page("mode=everything");
        assert!(x.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<stats>\n  <tracker_id>42</tracker_id>\n  <version>\nferrotracker "
        ));
        assert!(x.contains("\n  </version>\n  <uptime>7200</uptime>\n  <torrents>\n    <count_mutex>3</count_mutex>\n    <count_iterator>3</count_iterator>\n  </torrents>\n  <peers>\n    <count>12</count>\n  </peers>\n  <seeds>\n    <count>4</count>\n  </seeds>\n  <completed>\n    <count>14</count>\n  </completed>\n"));
        assert!(x.contains("    <tcp>\n      <accept>7200</accept>\n      <announce>3600</announce>\n      <scrape>10</scrape>\n    </tcp>\n    <udp>\n      <overall>36000</overall>\n      <connect>100</connect>\n      <announce>200</announce>\n      <scrape>20</scrape>\n      <missmatch>3</missmatch>\n    </udp>\n"));
        assert!(x.contains("      <count interval=\"00\">1</count>\n"));
        assert!(x.contains("      <count interval=\"03\">2</count>\n"));
        assert!(x.contains("      <count interval=\"44\">1</count>\n    </renew>\n"));
        assert!(x.contains("      <count code=\"302 Redirect\">1</count>\n      <count code=\"400 Parse Error\">2</count>\n      <count code=\"400 Invalid Parameter\">3</count>\n      <count code=\"400 Invalid Parameter (compact=0)\">0</count>\n      <count code=\"400 Not Modest\">0</count>\n      <count code=\"402 Payment Required\">0</count>\n      <count code=\"403 Access Denied\">4</count>\n      <count code=\"404 Not found\">6</count>\n      <count code=\"500 Internal Server Error\">7</count>\n      <count code=\"429 Too Many Requests\">0</count>\n      <count code=\"503 Service Unavailable\">0</count>\n    </http_error>\n"));
        assert!(x.ends_with(
            "    <mutex_stall>\n      <count>0</count>\n    </mutex_stall>\n  </debug>\n</stats>"
        ));
        assert_eq!(x.matches("<count interval=").count(), 45);
    }

    fn add(store: &Store, h: [u8; 20], ip: [u8; 4], seeding: bool) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        store
            .announce(
                &Announce {
                    info_hash: InfoHash(h),
                    addr: PeerAddr::V4(ip),
                    port: 1,
                    seeding,
                    event: Event::None,
                },
                Want::Both(0),
                1,
                &mut Rng::new(1),
                &mut a,
                &mut b,
            )
            .expect("within the store limits");
    }

    #[test]
    fn top_and_s24s() {
        let store = Store::new(StoreConfig::default());
        let (a, b) = ([0xaa; 20], [0x0b; 20]);
        add(&store, a, [10, 0, 0, 1], true);
        add(&store, a, [10, 0, 0, 2], false);
        add(&store, a, [10, 0, 0, 17], false);
        add(&store, b, [192, 168, 1, 1], true);
        let s = snap();
        let mut out = String::new();
        render(Mode::Top(10), &s, &store, &mut out).unwrap();
        let ha = "AA".repeat(20);
        let hb = "0B".repeat(20);
        assert_eq!(
            out,
            format!("Top 10 torrents by peers:\n\t3\t{ha}\n\t1\t{hb}\nTop 10 torrents by seeds:\n\t1\t{hb}\n\t1\t{ha}\nTop 10 torrents by leechers:\n\t2\t{ha}\n")
        );
        out.clear();
        render(Mode::S24s, &s, &store, &mut out).unwrap();
        assert_eq!(
            out,
            "Networks, limit /28:\n00000002: 10.0.0.0\n00000001: 10.0.0.16\n00000001: 192.168.1.0\n\nNetworks, limit /24:\n00000003: 10.0.0.0\n00000001: 192.168.1.0\n\n"
        );
    }

    #[test]
    fn query_rules() {
        assert_eq!(parse_query(b"mode=tpbs"), Ok(Mode::Stream(Format::Bencode)));
        assert_eq!(
            parse_query(b"mode=tpbs&format=txtp"),
            Ok(Mode::Stream(Format::TextPlus))
        );
        assert_eq!(
            parse_query(b"format=bin&mode=tpbs"),
            Ok(Mode::Stream(Format::Binary))
        );
        assert_eq!(
            parse_query(b"mode=tpbs&format=url"),
            Ok(Mode::Stream(Format::UrlEncoded))
        );
        assert_eq!(
            parse_query(b"mode=tpbs&format=txt"),
            Ok(Mode::Stream(Format::Text))
        );
        assert_eq!(
            parse_query(b"mode=tpbs&format=xml"),
            Err(StatsError::UnknownFormat)
        );
        assert_eq!(
            parse_query(b"mode=statedump"),
            Ok(Mode::Stream(Format::Statedump))
        );
        assert_eq!(parse_query(b"mode=nope"), Err(StatsError::UnknownMode));
        assert_eq!(
            parse_query(b"mode=peer&info_hash=x"),
            Err(StatsError::InfoHash)
        );
        assert_eq!(parse_query(b"x=1&mode=top100"), Ok(Mode::Top(100)));
        for m in ["busy", "woodpeckers", "fulllog"] {
            let mode = parse_query(format!("mode={m}").as_bytes()).unwrap();
            let mut out = String::new();
            let store = Store::new(StoreConfig::default());
            assert!(matches!(
                render(mode, &snap(), &store, &mut out),
                Err(StatsError::NotTracked(_))
            ));
        }
    }

    #[test]
    fn metrics_format() {
        let mut out = String::new();
        render_metrics(&snap(), &mut out);
        assert!(out.contains("# TYPE ferrotracker_requests_total counter\n"));
        assert!(
            out.contains("ferrotracker_requests_total{proto=\"http\",kind=\"announce\"} 3600\n")
        );
        assert!(
            out.contains("ferrotracker_requests_total{proto=\"http\",kind=\"full_scrape\"} 2\n")
        );
        assert!(out.contains("ferrotracker_full_scrape_bytes_total 72000\n"));
        assert!(out.contains("ferrotracker_peers{family=\"ipv4\"} 10\n"));
        assert!(out.contains("ferrotracker_seeders 4\n"));
        assert!(out.contains("ferrotracker_leechers 8\n"));
        assert!(out.contains("ferrotracker_torrents 3\n"));
        assert!(out.contains("ferrotracker_completed_total 14\n"));
        assert!(out.contains("ferrotracker_refused_total{limit=\"rate\",proto=\"udp\"} 0\n"));
        assert!(out.contains("ferrotracker_http_timeouts_total{kind=\"request\"} 0\n"));
        assert!(out.contains("ferrotracker_accept_errors_total 0\n"));
        assert!(out.contains("ferrotracker_memory_limit_bytes 1073741824\n"));
        assert!(out.contains("ferrotracker_memory_estimated_bytes 1234\n"));
        assert!(out.contains("ferrotracker_limited_total{what=\"address_limit\"} 0\n"));
        assert!(out.contains("ferrotracker_access_list_hashes{source=\"fifo_added\"} 2\n"));
        let mut open = String::new();
        render_metrics(
            &Snapshot {
                access: None,
                ..snap()
            },
            &mut open,
        );
        assert!(!open.contains("access_list"), "no list, no gauge");
        for line in out.lines() {
            if line.starts_with('#') {
                assert!(line.starts_with("# HELP ") || line.starts_with("# TYPE "));
                continue;
            }
            let (name, value) = line.rsplit_once(' ').unwrap();
            value.parse::<u64>().unwrap();
            assert!(name.starts_with("ferrotracker_"));
        }
    }
}
