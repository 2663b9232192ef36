//! `/stats?mode=...` in opentracker's output formats ([`ot_stats.c`](https://erdgeist.org/gitweb/opentracker/tree/ot_stats.c)), and `/metrics` in Prometheus'
//! text format, rendered from a [`Snapshot`] of the summed worker counters and store totals.
//!
//! Where opentracker is wrong, ferrotracker is right and says so in docs/compatibility.md: `herr` prints
//! each label beside its own counter, `fscr` counts full scrapes and their bytes, the `everything`
//! XML's `tcp/scrape` is the HTTP scrape count (opentracker prints the UDP one there), `s24s`
//! prints IPv4 networks as dotted quads, and `tpbs` without `format=` is `ben` instead of a
//! request that never gets an answer. Modes that need data ferrotracker does not collect
//! (`busy`, `woodpeckers`, `fulllog`) answer 400 with a reason instead of nothing.
//!
//! One file per output: `text.rs` for opentracker's plain-text modes, `xml.rs` for
//! `mode=everything`, `metrics.rs` for `/metrics`; this one parses the query and holds the
//! [`Snapshot`] they render.

pub mod dashboard;
mod metrics;
mod text;
mod xml;

use ferrotracker_swarm::Totals;

use crate::counters::Counters;
use crate::fullscrape::Format;

pub use dashboard::Dashboard;
pub use metrics::render_metrics;
pub use text::render;

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

/// Offers `item` of value `v` to `list`, which holds the `n` largest values offered so far,
/// largest first: an item equal to one held ranks after it (opentracker's `>`), and a zero is
/// never listed. `list` never holds more than `n + 1` items.
pub(crate) fn rank<T>(list: &mut Vec<(u32, T)>, n: usize, v: u32, item: T) {
    if v == 0 || (list.len() >= n && list.last().is_some_and(|l| l.0 >= v)) {
        return;
    }
    let at = list.partition_point(|e| e.0 >= v);
    list.insert(at, (v, item));
    list.truncate(n);
}

/// What `mode=version` prints (opentracker: its gitweb commit URL).
pub const VERSION: &str = concat!("ferrotracker ", env!("CARGO_PKG_VERSION"));

#[cfg(test)]
mod tests {
    use super::*;
    use ferrotracker_swarm::{Store, StoreConfig};

    pub(super) fn snap() -> Snapshot {
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
            ws_announces: 30,
            ws_offers_relayed: 50,
            ws_answers_refused: 2,
            ws_errors: 4,
            tls_handshake_failures: 5,
            tls_handshake_timeouts: 6,
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
                peers_ws: 0,
                seeders: 4,
                seeders_ws: 0,
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

    pub(super) fn page(q: &str) -> String {
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
}
