//! Store limits under a flood of random info_hashes, against the real binary.

mod common;

use std::time::{Duration, Instant};

use common::*;
use ferrotracker_proto::testutil::xorshift;
use ferrotracker_proto::udp::{self as pudp, AnnounceRequest, Response};
use ferrotracker_proto::{Event, InfoHash, PeerId};

fn torrents_from_stats(t: &Tracker) -> u64 {
    let r = Http::connect(t.http4()).get("/stats?mode=torr");
    assert_eq!(r.status, 200, "{}", r.body_str());
    r.body_str().lines().next().unwrap().parse().unwrap()
}

#[test]
fn random_hash_flood_stays_within_the_torrent_limit_and_honest_clients_are_served() {
    let t = Tracker::v4_with_config(
        "tracker.max_torrents 500\ntracker.max_peers_per_torrent 50\ntracker.workers 1\n",
    );
    // An honest torrent, created before the flood.
    let honest = hash(200);
    Http::connect(t.http4())
        .get(&announce_target(&honest, 6881, 0, ""))
        .announce();

    // Flood: 20,000 announces for random info_hashes from one socket, as fast as it can send,
    // bounded in count and time.
    let mut u = Udp::new(t.udp4());
    let cid = u.connect();
    let mut pkt = Vec::with_capacity(98);
    // Refusals are UDP error packets naming the limit (cut to the request's size).
    let is_full = |reply: &[u8]| {
        matches!(pudp::parse_response(reply), Ok(Response::Error { message, .. })
            if String::from_utf8_lossy(message).contains("tracker is full"))
    };
    let mut saw_full = false;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let end = Instant::now() + Duration::from_secs(20);
    for i in 0..20_000u32 {
        if Instant::now() > end {
            break;
        }
        let mut h = [0u8; 20];
        for b in h.iter_mut() {
            *b = xorshift(&mut x) as u8;
        }
        pkt.clear();
        pudp::encode_announce(
            &mut pkt,
            &AnnounceRequest {
                connection_id: cid,
                transaction_id: i,
                info_hash: InfoHash(h),
                peer_id: PeerId([1; 20]),
                downloaded: 0,
                left: 1,
                uploaded: 0,
                event: Event::Started,
                ip: 0,
                key: 0,
                num_want: 0,
                port: 1000,
            },
        );
        u.send_raw(&pkt);
        if i % 64 == 63 {
            // Drain replies now and then so our own receive buffer does not overflow with the
            // first (successful) replies and drop the refusals this test looks for. (A deadline
            // of `now` reads nothing: give each read a millisecond.)
            while let Some(reply) = u.recv_until(Instant::now() + Duration::from_millis(1)) {
                saw_full |= is_full(&reply);
            }
        }
    }
    for _ in 0..50_000 {
        let Some(reply) = u.recv_until(Instant::now() + Duration::from_millis(300)) else {
            break;
        };
        saw_full |= is_full(&reply);
    }

    let torrents = torrents_from_stats(&t);
    assert!(torrents <= 500, "{torrents} torrents held, limit 500");
    assert!(
        torrents >= 400,
        "the flood should have filled the store: {torrents}"
    );

    // The honest torrent keeps working over HTTP and UDP.
    let mut c = Http::connect(t.http4());
    let a = c.get(&announce_target(&honest, 6882, 5, "")).announce();
    assert_eq!(a.ports4().len(), 2, "honest swarm still served");
    let mut u2 = Udp::new(t.udp4());
    let ua = u2.announce(&honest, 6883, 5, Event::Started, 50);
    assert_eq!(ua.leechers + ua.seeders, 3);
    // A new torrent is refused with a clear reason, HTTP 503.
    let r = c.get(&announce_target(&hash(201), 1, 0, ""));
    assert_eq!(r.status, 503);
    assert!(
        r.failure_reason().unwrap().contains("tracker is full"),
        "{:?}",
        r.failure_reason()
    );
    // Counted in /metrics.
    let m = Http::connect(t.http4()).get("/metrics").body_str();
    let refused: u64 = m
        .lines()
        .find(|l| l.starts_with("ferrotracker_limited_total{what=\"refused\"}"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no refused counter in:\n{m}"));
    assert!(refused >= 1, "{m}");
    // Not every reply survives a flood on loopback, but thousands were refusals.
    assert!(saw_full, "no 'tracker is full' error packet seen");
}

#[test]
fn peers_beyond_the_per_torrent_limit_get_answers_but_are_not_stored() {
    let t = Tracker::v4_with_config("tracker.max_peers_per_torrent 3\n");
    let h = hash(9);
    let mut c = Http::connect(t.http4());
    for port in 1..=5u16 {
        let a = c.get(&announce_target(&h, port, 1, "")).announce();
        assert!(!a.ports4().is_empty(), "peer {port} got peers");
    }
    let s = c.get(&scrape_target(&[h])).scrape();
    assert_eq!(s[0].1.incomplete, 3);
}

const ADDRESS_FULL: &str = "too many peers from your address in this torrent";

/// A counter or gauge from /metrics (`name` with its labels, as printed).
fn metric(t: &Tracker, name: &str) -> u64 {
    let m = Http::connect(t.http4()).get("/metrics").body_str();
    m.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{m}"))
}

/// Waits until /metrics shows `want` (other workers publish their counters twice a second).
fn wait_metric(t: &Tracker, name: &str, want: u64) {
    let got = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
        (metric(t, name) == want).then_some(want)
    });
    assert_eq!(
        got,
        Some(want),
        "{name} never reached {want}: {}",
        metric(t, name)
    );
}

/// The UDP announce reply, or the error packet's message.
fn udp_announce(u: &mut Udp, h: &[u8; 20], port: u16) -> Result<UdpAnnounce, String> {
    let req = u.announce_request(h, port, 1, Event::Started, 5);
    let reply = u.announce_raw(&req);
    match pudp::parse_response(&reply) {
        Ok(Response::Error { message, .. }) => Err(String::from_utf8_lossy(message).into_owned()),
        _ => Ok(parse_udp_announce(&reply, req.transaction_id)),
    }
}

#[test]
fn one_address_gets_its_share_of_a_torrent_then_an_error_over_http_and_udp_on_both_families() {
    let t = Tracker::start(DUAL, Some("tracker.max_peers_per_ip 4\n"));
    let (h_http, h_udp, h_mixed) = (hash(31), hash(32), hash(33));
    let mut c4 = Http::connect(t.http4());
    for port in 1..=4 {
        c4.get(&announce_target(&h_http, port, 1, "")).announce();
    }
    let r = c4.get(&announce_target(&h_http, 5, 1, ""));
    assert_eq!(
        r.status, 200,
        "a refusal of this request, not a server error"
    );
    assert_eq!(r.failure_reason().as_deref(), Some(ADDRESS_FULL));
    // A known port is refreshed; another torrent is another share.
    c4.get(&announce_target(&h_http, 2, 0, "")).announce();

    let mut u4 = Udp::new(t.udp4());
    for port in 1..=4 {
        udp_announce(&mut u4, &h_udp, port).expect("within the share");
    }
    assert_eq!(
        udp_announce(&mut u4, &h_udp, 5).err().as_deref(),
        Some(ADDRESS_FULL)
    );

    // HTTP and UDP from one address count together.
    for port in 1..=2 {
        c4.get(&announce_target(&h_mixed, port, 1, "")).announce();
        udp_announce(&mut u4, &h_mixed, 100 + port).expect("within the share");
    }
    let r = c4.get(&announce_target(&h_mixed, 3, 1, ""));
    assert_eq!(r.failure_reason().as_deref(), Some(ADDRESS_FULL));

    // IPv6 ([::1], its /64) over both protocols.
    let h6 = hash(34);
    let mut c6 = Http::connect(t.http6());
    let mut u6 = Udp::new(t.udp6());
    for port in 1..=2 {
        c6.get(&announce_target(&h6, port, 1, "")).announce();
        udp_announce(&mut u6, &h6, 100 + port).expect("within the share");
    }
    let r = c6.get(&announce_target(&h6, 3, 1, ""));
    assert_eq!(r.failure_reason().as_deref(), Some(ADDRESS_FULL));
    assert_eq!(
        udp_announce(&mut u6, &h6, 103).err().as_deref(),
        Some(ADDRESS_FULL)
    );

    // Nothing refused was stored, and each refusal was counted.
    let s = c4
        .get(&scrape_target(&[h_http, h_udp, h_mixed, h6]))
        .scrape();
    let swarm: Vec<i64> = s.iter().map(|(_, e)| e.complete + e.incomplete).collect();
    assert_eq!(swarm, [4, 4, 4, 4]);
    wait_metric(&t, r#"ferrotracker_limited_total{what="address_limit"}"#, 5);
    assert_eq!(
        metric(&t, r#"ferrotracker_limited_total{what="refused"}"#),
        0
    );
}

#[test]
fn by_default_one_address_cannot_fill_a_torrent_with_its_ports() {
    let t = Tracker::v4();
    let h = hash(40);
    let mut u = Udp::new(t.udp4());
    for port in 1..=256 {
        udp_announce(&mut u, &h, port).expect("a NAT'ed household's worth and far more");
    }
    assert_eq!(
        udp_announce(&mut u, &h, 257).err().as_deref(),
        Some(ADDRESS_FULL)
    );
    assert_eq!(u.scrape(&[h]), [(0, 0, 256)]);
}

#[test]
fn the_memory_ceiling_has_a_machine_default_and_is_shown() {
    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("/proc/meminfo");
    let physical: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("MemTotal")
        * 1024;
    let limit = "ferrotracker_memory_limit_bytes";

    let t = Tracker::v4();
    let auto = metric(&t, limit);
    assert!(
        auto > 0 && auto <= physical / 2,
        "default ceiling {auto} for {physical} bytes of memory"
    );
    let log = t.stderr();
    let line = log
        .lines()
        .find(|l| l.contains("swarm memory ceiling: "))
        .unwrap_or_else(|| panic!("no ceiling in the log:\n{log}"));
    assert!(line.contains(&format!("{} MiB", auto >> 20)), "{line}");
    assert!(
        line.contains("physical memory") || line.contains("cgroup"),
        "{line}"
    );
    // The estimate it bounds moves with the swarm.
    let before = metric(&t, "ferrotracker_memory_estimated_bytes");
    Http::connect(t.http4())
        .get(&announce_target(&hash(50), 1, 1, ""))
        .announce();
    assert!(metric(&t, "ferrotracker_memory_estimated_bytes") > before);

    let t = Tracker::v4_with_config("tracker.max_memory_mb 64\n");
    assert_eq!(metric(&t, limit), 64 << 20);
    assert!(t
        .stderr()
        .contains("swarm memory ceiling: 64 MiB (tracker.max_memory_mb)"));
    let t = Tracker::v4_with_config("tracker.max_memory_mb 0\n");
    assert_eq!(metric(&t, limit), 0, "0 = no ceiling");
}
