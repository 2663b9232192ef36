//! opentracker's plain-text `/stats` pages: the MRTG-style counters (`peer`, `conn`, `udp4`,
//! ...), `herr`, `renew`, `numwants`, `version`, and the store walks `top10`/`top100` and `s24s`.

use std::collections::HashMap;
use std::fmt::Write as _;

use ferrotracker_proto::InfoHash;
use ferrotracker_swarm::{Store, SHARDS};

use super::{xml, Mode, Snapshot, StatsError, VERSION};
use crate::counters::{Counters, NUMWANT_BUCKETS};

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
                t.peers(),
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
        Mode::Everything => xml::everything(s, out),
        Mode::NotTracked(why) => return Err(StatsError::NotTracked(why)),
        Mode::Stream(_) => return Err(StatsError::UnknownMode),
    }
    Ok(())
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
                super::rank(list, n, v, h.0);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::tests::{page, snap};
    use ferrotracker_proto::Event;
    use ferrotracker_swarm::{Announce, PeerAddr, Rng, StoreConfig, Want};

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
}
