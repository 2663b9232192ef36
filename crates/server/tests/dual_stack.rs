//! One tracker bound on 127.0.0.1 and [::1]: IPv4 and IPv6 peers of one torrent.
//!
//! Over HTTP both families are returned (`peers` and `peers6`) whatever the requester's family;
//! over UDP only the requester's family, with 6- or 18-byte entries.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};

use common::*;
use ferrotracker_proto::Event;

fn a4(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)
}

fn a6(port: u16) -> SocketAddrV6 {
    SocketAddrV6::new(Ipv6Addr::LOCALHOST, port, 0, 0)
}

#[test]
fn binds_tcp_and_udp_on_both_families() {
    let t = Tracker::dual();
    assert_eq!(t.tcp.len(), 2, "{:?}", t.tcp);
    assert_eq!(t.udp.len(), 2, "{:?}", t.udp);
    assert_eq!(t.http4().ip(), Ipv4Addr::LOCALHOST);
    assert_eq!(t.http6().ip(), Ipv6Addr::LOCALHOST);
    assert_eq!(t.udp4().ip(), Ipv4Addr::LOCALHOST);
    assert_eq!(t.udp6().ip(), Ipv6Addr::LOCALHOST);
    // Each logged socket really answers.
    for addr in [t.http4(), t.http6()] {
        let r = http_get(addr, &scrape_target(&[hash(1)]));
        assert_eq!(r.body_str(), "d5:filesdee", "{addr}");
    }
    for addr in [t.udp4(), t.udp6()] {
        Udp::new(addr).connect();
    }
}

#[test]
fn http_returns_both_families_to_either_family() {
    let t = Tracker::dual();
    let h = hash(2);
    let r = http_announce(t.http4(), &h, 5001, 10, "");
    assert_eq!(r.peers4(), vec![a4(5001)]);
    assert!(r.peers6.is_none());

    let r = http_announce(t.http6(), &h, 5002, 0, "");
    assert_eq!(
        (r.complete, r.incomplete),
        (1, 1),
        "counts sum both families"
    );
    assert_eq!(r.peers4(), vec![a4(5001)], "IPv6 requester gets IPv4 peers");
    assert_eq!(r.peers6(), vec![a6(5002)]);

    let r = http_announce(t.http4(), &h, 5001, 10, "");
    assert_eq!((r.complete, r.incomplete), (1, 1));
    assert_eq!(r.peers4(), vec![a4(5001)]);
    assert_eq!(r.peers6(), vec![a6(5002)], "IPv4 requester gets IPv6 peers");
    // Key order is canonical: peers before peers6.
    assert_eq!(
        r.keys,
        [
            "complete",
            "downloaded",
            "incomplete",
            "interval",
            "min interval",
            "peers",
            "peers6"
        ]
    );

    // Scrape over either family sees both.
    for addr in [t.http4(), t.http6()] {
        let s = http_get(addr, &scrape_target(&[h])).scrape();
        assert_eq!((s[0].1.complete, s[0].1.incomplete), (1, 1), "{addr}");
    }
}

#[test]
fn http_stopped_from_ipv6_answers_an_empty_peers6() {
    let t = Tracker::dual();
    let h = hash(3);
    http_announce(t.http4(), &h, 5101, 0, "");
    http_announce(t.http6(), &h, 5102, 3, "");
    let r = http_get(t.http6(), &announce_target(&h, 5102, 3, "&event=stopped"));
    let a = AnnounceReply::parse(&r.body);
    assert_eq!(
        r.body_str(),
        format!(
            "d8:completei1e10:incompletei0e8:intervali{}e12:min intervali{}e6:peers60:e",
            a.interval,
            a.interval / 2
        )
    );
    let r = http_announce(t.http4(), &h, 5101, 0, "");
    assert_eq!(r.peers4(), vec![a4(5101)]);
    assert!(
        r.peers6.is_none(),
        "stopped IPv6 peer still listed: {:?}",
        r.peers6
    );
}

#[test]
fn udp_returns_only_the_requesters_family() {
    let t = Tracker::dual();
    let h = hash(4);
    let mut c4 = Udp::new(t.udp4());
    let mut c6 = Udp::new(t.udp6());
    c4.announce(&h, 5201, 0, Event::Started, -1);
    c4.announce(&h, 5202, 9, Event::Started, -1);
    c6.announce(&h, 5203, 9, Event::Started, -1);
    // An HTTP IPv6 peer too.
    http_announce(t.http6(), &h, 5204, 0, "");

    let r = c4.announce(&h, 5201, 0, Event::None, -1);
    assert_eq!((r.leechers, r.seeders), (2, 2), "counts sum both families");
    assert_eq!(
        r.raw_peers.len(),
        2 * 6,
        "IPv4 client gets 6-byte IPv4 peers only"
    );
    let mut got = compact4(&r.raw_peers);
    got.sort();
    assert_eq!(got, vec![a4(5201), a4(5202)]);

    let r = c6.announce(&h, 5203, 9, Event::None, -1);
    assert_eq!((r.leechers, r.seeders), (2, 2));
    assert_eq!(
        r.raw_peers.len(),
        2 * 18,
        "IPv6 client gets 18-byte IPv6 peers only"
    );
    let mut got = compact6(&r.raw_peers);
    got.sort();
    assert_eq!(got, vec![a6(5203), a6(5204)]);

    // And HTTP from IPv4 sees all four.
    let r = http_announce(t.http4(), &h, 5201, 0, "");
    assert_eq!(r.peers4().len(), 2);
    assert_eq!(r.peers6().len(), 2);
}

#[test]
fn udp_over_ipv6_scrape_stopped_and_connection_ids() {
    let t = Tracker::dual();
    let h = hash(5);
    let mut c6 = Udp::new(t.udp6());
    let id6 = c6.connect();
    c6.announce(&h, 5301, 0, Event::Started, -1);
    c6.announce(&h, 5302, 0, Event::Completed, -1);
    assert_eq!(c6.scrape(&[h, hash(6)]), vec![(2, 1, 0), (0, 0, 0)]);
    let req = c6.announce_request(&h, 5302, 0, Event::Stopped, -1);
    let raw = c6.announce_raw(&req);
    assert_eq!(raw.len(), 20);
    assert_eq!(c6.scrape(&[h]), vec![(1, 1, 0)]);

    // An id handed to [::1] is refused from 127.0.0.1.
    let mut c4 = Udp::new(t.udp4());
    c4.connection_id = Some(id6);
    let req = c4.announce_request(&h, 5303, 0, Event::Started, -1);
    assert_eq!(
        c4.announce_raw(&req),
        mismatch_packet(req.transaction_id, 98)
    );
}

#[test]
fn ipv6_peers_are_capped_per_udp_reply_but_not_over_http() {
    let t = Tracker::dual();
    let h = hash(7);
    let mut http6 = Http::connect(t.http6());
    for p in 0..80u16 {
        let r = http6.get(&announce_target(&h, 40_000 + p, 1, "&numwant=0"));
        assert_eq!(r.status, 200);
    }
    let mut c6 = Udp::new(t.udp6());
    let r = c6.announce(&h, 40_000, 1, Event::None, 200);
    let peers = compact6(&r.raw_peers);
    assert!(
        !peers.is_empty() && peers.len() <= 66,
        "UDP IPv6 reply should fit one packet (<= 66 peers), got {}",
        peers.len()
    );
    let r = http6
        .get(&announce_target(&h, 40_000, 1, "&numwant=200"))
        .announce();
    assert_eq!(r.peers6().len(), 80);
}
