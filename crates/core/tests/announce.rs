//! Announces over HTTP and UDP: what is stored, what is listed and counted, numwant, compact,
//! address families, intervals and refused parameters.

mod common;

use common::*;
use ferrotracker_core::counters::RENEW_BUCKETS;
use ferrotracker_core::tracker::MISSING_INFO_HASH;
use ferrotracker_core::After;
use ferrotracker_proto::bencode::{decode, Value};
use ferrotracker_proto::testutil::percent_encode;
use ferrotracker_proto::Event;

#[test]
fn announce_stores_the_peer_and_lists_it_with_counts() {
    // A 5-second interval has no room to jitter: the reply is exact.
    let mut h = Harness::with(|s| s.tracker.interval = 5);
    let x = hash(1);
    let r = h.get(
        "10.0.0.1",
        &announce_target(&x, 0x1ae1, 100, "&event=started"),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.after, After::KeepOpen);
    assert!(r
        .head
        .starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"));
    // As opentracker, the announcing peer is in its own list.
    let mut want =
        b"d8:completei0e10:downloadedi0e10:incompletei1e8:intervali5e12:min intervali2e5:peers6:"
            .to_vec();
    want.extend_from_slice(&[10, 0, 0, 1, 0x1a, 0xe1, b'e']);
    assert_eq!(r.body, want);

    let b = h.announce("10.0.0.2", &x, 7002, 0, "&event=started");
    assert_eq!((b.complete, b.incomplete, b.downloaded), (1, 1, Some(0)));
    assert_eq!(b.addrs(), [sa("10.0.0.1:6881"), sa("10.0.0.2:7002")]);
    assert!(b.peers6.is_none(), "no IPv6 peer, no peers6 key");

    // Another torrent is not mixed in.
    let o = h.announce("10.0.0.3", &hash(2), 7003, 5, "");
    assert_eq!((o.complete, o.incomplete), (0, 1));
    assert_eq!(o.addrs(), [sa("10.0.0.3:7003")]);

    // Same address and port, another peer_id: the same peer, now seeding.
    let target = announce_target(&x, 0x1ae1, 0, "").replace("-FT0001-", "-XX9999-");
    let a = parse_announce(&h.get("10.0.0.1", &target).body);
    assert_eq!((a.complete, a.incomplete), (2, 0));
    assert_eq!(a.addrs().len(), 2);
    assert_eq!(h.t.store.totals().peers4, 3);
    assert_eq!(h.counters().http_announces, 4);
}

#[test]
fn completed_counts_once_per_peer_and_only_with_left_zero() {
    let mut h = Harness::new();
    let x = hash(3);
    let a = h.announce("10.0.0.1", &x, 1, 50, "&event=completed");
    assert_eq!((a.complete, a.incomplete, a.downloaded), (0, 1, Some(0)));
    let a = h.announce("10.0.0.1", &x, 1, 0, "&event=completed");
    assert_eq!((a.complete, a.incomplete, a.downloaded), (1, 0, Some(1)));
    let a = h.announce("10.0.0.1", &x, 1, 0, "&event=completed");
    assert_eq!(a.downloaded, Some(1), "the same peer completing again");
    let a = h.announce("10.0.0.2", &x, 1, 0, "&event=completed");
    assert_eq!((a.complete, a.downloaded), (2, Some(2)));
    assert_eq!(h.scrape(&[x]), [(x, 2, 2, 0)]);
    assert_eq!(h.t.store.totals().downloaded, 2);
    // `/stats?mode=completed` counts downloads, as opentracker: not the repeated completion.
    assert_eq!(h.t.total_counters().completed, 2);
}

#[test]
fn stopped_removes_the_peer_and_answers_an_empty_list_of_its_family() {
    let mut h = Harness::with(|s| s.tracker.interval = 5);
    let x = hash(4);
    h.announce("10.0.0.1", &x, 1, 0, "");
    h.announce("10.0.0.2", &x, 2, 9, "");
    h.announce("2001:db8::3", &x, 3, 9, "");
    let r = h.get("10.0.0.2", &announce_target(&x, 2, 9, "&event=stopped"));
    assert_eq!(
        r.body,
        b"d8:completei1e10:incompletei1e8:intervali5e12:min intervali2e5:peers0:e"
    );
    let r = h.get("2001:db8::3", &announce_target(&x, 3, 9, "&event=stopped"));
    assert_eq!(
        r.body,
        b"d8:completei1e10:incompletei0e8:intervali5e12:min intervali2e6:peers60:e"
    );
    let a = h.announce("10.0.0.1", &x, 1, 0, "");
    assert_eq!(a.addrs(), [sa("10.0.0.1:1")], "the stopped peers are gone");
    assert_eq!(h.scrape(&[x]), [(x, 1, 0, 0)]);

    // Stopping on a torrent the tracker never saw answers zeros and creates nothing.
    let r = h.get(
        "10.0.0.1",
        &announce_target(&hash(5), 1, 0, "&event=stopped"),
    );
    assert_eq!(
        r.body,
        b"d8:completei0e10:incompletei0e8:intervali5e12:min intervali2e5:peers0:e"
    );
    assert_eq!(h.t.store.totals().torrents, 1);
    // Only 10.0.0.1's re-announce renewed a peer: a stop is not a renewal.
    let mut renewed = [0; RENEW_BUCKETS];
    renewed[0] = 1;
    assert_eq!(h.counters().renewed, renewed);
}

#[test]
fn numwant_default_cap_zero_and_negative() {
    let mut h = Harness::with(|s| {
        s.tracker.numwant_default = 3;
        s.tracker.numwant_max = 5;
    });
    let x = hash(6);
    for port in 1..=10 {
        h.announce("10.0.0.1", &x, port, 1, "&numwant=0");
    }
    let n = |a: &Ann| a.addrs().len();
    assert_eq!(n(&h.announce("10.0.0.1", &x, 1, 1, "")), 3);
    assert_eq!(n(&h.announce("10.0.0.1", &x, 1, 1, "&numwant=-1")), 3);
    assert_eq!(n(&h.announce("10.0.0.1", &x, 1, 1, "&numwant=4")), 4);
    assert_eq!(n(&h.announce("10.0.0.1", &x, 1, 1, "&numwant=100")), 5);
    // Distinct peers, all of the swarm.
    let mut p = h.announce("10.0.0.1", &x, 1, 1, "&numwant=5").addrs();
    p.dedup();
    assert_eq!(p.len(), 5);
    assert!(p.iter().all(|a| (1..=10).contains(&a.port())));
    // numwant=0: no peers key at all, counts still there.
    let r = h.get("10.0.0.1", &announce_target(&x, 1, 1, "&numwant=0"));
    let a = parse_announce(&r.body);
    assert!(a.peers.is_none() && a.peers6.is_none(), "{a:?}");
    assert_eq!(a.incomplete, 10);

    // The histogram counts what was asked for; missing or negative is the default.
    let c = h.counters();
    assert_eq!((c.numwants[0], c.numwants[3]), (11, 2));
    assert_eq!((c.numwants[4], c.numwants[5], c.numwants[100]), (1, 1, 1));
    assert_eq!(c.numwants.iter().sum::<u64>(), 16);
}

#[test]
fn compact_zero_answers_dicts_of_both_families() {
    let mut h = Harness::new();
    let x = hash(7);
    h.announce("10.0.0.1", &x, 7400, 0, "");
    h.announce("2001:db8::1", &x, 7401, 0, "");
    let r = h.get("10.0.0.2", &announce_target(&x, 7402, 3, "&compact=0"));
    let v = decode(&r.body).unwrap();
    let list = v.get(b"peers").and_then(Value::as_list).unwrap();
    let mut got: Vec<(String, i64)> = list
        .iter()
        .map(|p| {
            let ip = p.get(b"ip").and_then(Value::as_bytes).unwrap();
            (String::from_utf8(ip.to_vec()).unwrap(), int(p, "port"))
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("10.0.0.1".to_string(), 7400),
            ("10.0.0.2".to_string(), 7402),
            ("2001:db8::1".to_string(), 7401)
        ]
    );
    assert!(v.get(b"peers6").is_none(), "dicts carry both families");
    // compact=0 with numwant=0: no peers key.
    let r = h.get(
        "10.0.0.2",
        &announce_target(&x, 7402, 3, "&compact=0&numwant=0"),
    );
    let v = decode(&r.body).unwrap();
    assert!(v.get(b"peers").is_none(), "{v:?}");
    assert_eq!(int(&v, "complete"), 2);
}

#[test]
fn http_gives_both_families_and_udp_only_the_clients_own() {
    let mut h = Harness::new();
    let x = hash(8);
    h.announce("10.0.0.1", &x, 1, 0, "");
    h.announce("2001:db8::1", &x, 2, 0, "");
    // A v4-mapped address is an IPv4 peer.
    h.announce("::ffff:10.0.0.3", &x, 3, 0, "");
    let mut want = vec![sa("10.0.0.1:1"), sa("10.0.0.3:3"), sa("[2001:db8::1]:2")];
    for (client, me) in [
        ("10.0.0.9", "10.0.0.9:1"),
        ("2001:db8::9", "[2001:db8::9]:1"),
    ] {
        want.push(sa(me));
        want.sort();
        let a = h.announce(client, &x, 1, 0, "&numwant=2");
        assert_eq!(a.addrs().len(), 2, "numwant spans both families");
        let a = h.announce(client, &x, 1, 0, "");
        assert_eq!(a.addrs(), want, "from {client}");
        assert!(a.peers.is_some() && a.peers6.is_some());
    }

    let c4 = sa("10.0.0.20:6881");
    let id = h.connect(c4);
    let (_, leechers, seeders, peers) = udp_peers(&h.udp_announce(c4, id, x, 0, Event::None, 50));
    assert_eq!((leechers, seeders), (0, 6));
    assert_eq!(peers.len(), 4 * 6, "only the four IPv4 peers");
    assert!(peers.chunks(6).any(|p| p == [10, 0, 0, 20, 0x1a, 0xe1]));

    let c6 = sa("[2001:db8::20]:6882");
    let id = h.connect(c6);
    let (_, _, seeders, peers) = udp_peers(&h.udp_announce(c6, id, x, 0, Event::None, 50));
    assert_eq!(seeders, 7);
    assert_eq!(peers.len(), 3 * 18, "only the three IPv6 peers");
    let mut me = "2001:db8::20"
        .parse::<std::net::Ipv6Addr>()
        .unwrap()
        .octets()
        .to_vec();
    me.extend_from_slice(&6882u16.to_be_bytes());
    assert!(peers.chunks(18).any(|p| p == me));
}

#[test]
fn interval_jitters_within_ten_percent_and_min_interval_is_half() {
    let mut h = Harness::with(|s| s.tracker.interval = 1800);
    let x = hash(9);
    let (mut lo, mut hi) = (i64::MAX, 0);
    for _ in 0..500 {
        let a = h.announce("10.0.0.1", &x, 1, 0, "");
        assert!((1620..1980).contains(&a.interval), "{}", a.interval);
        assert_eq!(a.min_interval, a.interval / 2);
        lo = lo.min(a.interval);
        hi = hi.max(a.interval);
    }
    assert!(lo < 1650 && hi > 1950, "jitter spans the range: {lo}..{hi}");
    let c = sa("10.0.0.1:1");
    let id = h.connect(c);
    for _ in 0..100 {
        let (interval, ..) = udp_peers(&h.udp_announce(c, id, x, 0, Event::None, -1));
        assert!((1620..1980).contains(&interval), "{interval}");
    }
}

#[test]
fn bad_parameters_get_400_with_a_reason() {
    let mut h = Harness::new();
    let ih = percent_encode(&[1; 20]);
    let cases = [
        (
            format!("info_hash={ih}&port=65536"),
            "port must be a decimal number from 0 to 65535",
        ),
        (
            format!("info_hash={ih}&port=x"),
            "port must be a decimal number from 0 to 65535",
        ),
        (
            format!("info_hash={ih}&port=-1"),
            "port must be a decimal number from 0 to 65535",
        ),
        (
            format!("info_hash={}", percent_encode(&[1; 19])),
            "info_hash must be 20 bytes, url-encoded",
        ),
        (
            format!("info_hash={ih}&info_hash={ih}"),
            "info_hash given more than once",
        ),
        (
            format!("info_hash={ih}%2"),
            "malformed %-escape in query string",
        ),
        (
            format!("info_hash={ih}&left=-5"),
            "left must be a non-negative decimal number",
        ),
        (
            format!("info_hash={ih}&numwant=lots"),
            "numwant must be a decimal number",
        ),
        (
            format!("info_hash={ih}&compact=yes"),
            "compact must be a decimal number",
        ),
        (
            format!("info_hash={ih}&peer_id=short"),
            "peer_id must be 20 bytes, url-encoded",
        ),
    ];
    for (q, reason) in &cases {
        let r = h.get("10.0.0.1", &format!("/announce?{q}"));
        assert_eq!((r.status, failure(&r.body).as_str()), (400, *reason), "{q}");
        assert_eq!(r.after, After::KeepOpen);
    }
    // Without an info_hash, opentracker's 200 with a failure reason.
    let r = h.get("10.0.0.1", "/announce?port=1&left=0");
    assert_eq!(
        (r.status, failure(&r.body)),
        (200, MISSING_INFO_HASH.to_string())
    );
    let r = h.get("10.0.0.1", "/scrape?port=1");
    assert_eq!(
        (r.status, failure(&r.body).as_str()),
        (400, "scrape needs at least one info_hash")
    );
    let r = h.get("10.0.0.1", "/nothing-here");
    assert_eq!((r.status, failure(&r.body).as_str()), (404, "not found"));

    assert_eq!(
        h.t.store.totals().torrents,
        0,
        "no bad request stored anything"
    );
    let c = h.counters();
    assert_eq!(c.http_400_param, cases.len() as u64 + 1);
    assert_eq!(c.http_announces, cases.len() as u64 + 1);
    assert_eq!((c.http_scrapes, c.http_404), (1, 1));
}
