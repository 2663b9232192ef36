//! Counters, /stats and /metrics: what each answered request counts, and who may read them.

mod common;

use common::*;
use ferrotracker_core::{Counters, Worker};
use ferrotracker_proto::udp;
use ferrotracker_proto::Event;

#[test]
fn counters_move_exactly_as_requests_are_answered() {
    let mut h = Harness::with(|s| s.tracker.redirect_url = Some("http://example.org/".into()));
    let x = hash(24);
    let mut want = Counters::default();
    assert_eq!(h.counters(), want);
    h.announce("10.0.0.1", &x, 1, 0, "&event=completed");
    want.http_announces += 1;
    want.completed += 1;
    want.numwants[50] += 1;
    assert_eq!(h.counters(), want);
    h.scrape(&[x]);
    want.http_scrapes += 1;
    assert_eq!(h.counters(), want);
    assert_eq!(h.get("10.0.0.1", "/").status, 302);
    want.http_redirects += 1;
    h.get("10.0.0.1", "/favicon.ico");
    want.http_404 += 1;
    h.get("10.0.0.1", "/scrape");
    want.full_scrapes += 1;
    h.get("10.0.0.1", "/announce?port=x");
    want.http_announces += 1;
    want.http_400_param += 1;
    assert_eq!(h.counters(), want);

    let c = sa("10.0.0.1:1");
    let id = h.connect(c);
    h.udp_announce(c, id, x, 0, Event::None, 7);
    h.udp_scrape(c, id, &[x]);
    h.udp(c, &[0; 8]);
    want.udp_packets += 4;
    want.udp_connects += 1;
    want.udp_announces += 1;
    want.udp_scrapes += 1;
    want.udp_bad_packets += 1;
    want.numwants[7] += 1;
    want.renewed[0] += 1;
    assert_eq!(h.counters(), want);

    // A second worker's counts add up; a worker the tracker didn't make is not read.
    let mut w2 = h.t.worker(2);
    let mut out = Vec::new();
    let mut pkt = Vec::new();
    udp::encode_connect(&mut pkt, 1);
    h.t.handle_udp(&mut w2, &pkt, c, h.now, &mut out);
    h.t.handle_udp(&mut Worker::new(3), &pkt, c, h.now, &mut out);
    want.udp_packets += 1;
    want.udp_connects += 1;
    assert_eq!(h.counters(), want);

    // The stats page counts itself, as it is served.
    let r = h.get("127.0.0.1", "/stats?mode=udp4");
    want.http_stats += 1;
    assert!(String::from_utf8(r.body).unwrap().starts_with("5\n3\n"));
    assert_eq!(h.counters(), want);
}

#[test]
fn stats_and_metrics_are_loopback_only_by_default() {
    let mut h = Harness::new();
    let x = hash(25);
    h.announce("10.0.0.1", &x, 1, 0, "");
    h.announce("2001:db8::1", &x, 1, 5, "");
    for path in ["/stats?mode=peer", "/stats", "/metrics"] {
        for client in ["10.0.0.1", "2001:db8::1", "::ffff:10.0.0.1"] {
            let r = h.get(client, path);
            assert_eq!(
                (r.status, failure(&r.body).as_str()),
                (403, "access denied")
            );
        }
    }
    assert_eq!(h.counters().http_403, 9);
    assert_eq!(h.counters().http_stats, 0);
    let page = "2\n1\nopentracker serving 1 torrents\nopentracker";
    for client in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
        let r = h.get(client, "/stats?mode=peer");
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, page.as_bytes()),
            "{client}"
        );
    }
    let r = h.get("::1", "/stats?mode=nosuchmode");
    assert_eq!(r.status, 400);

    let r = h.get("127.0.0.1", "/metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.head
            .contains("Content-Type: text/plain; version=0.0.4\r\n"),
        "{}",
        r.head
    );
    let text = String::from_utf8(r.body).unwrap();
    for line in [
        "ferrotracker_requests_total{proto=\"http\",kind=\"announce\"} 2\n",
        "ferrotracker_requests_total{proto=\"http\",kind=\"stats\"} 4\n",
        "ferrotracker_errors_total{proto=\"http\",code=\"403\"} 9\n",
        "ferrotracker_errors_total{proto=\"http\",code=\"400\"} 1\n",
    ] {
        assert!(text.contains(line), "{line:?} not in\n{text}");
    }

    // An empty list opens them to everyone.
    let mut open = Harness::with(|s| s.stats.open = true);
    assert_eq!(open.get("10.0.0.1", "/stats?mode=peer").status, 200);
    assert_eq!(open.get("2001:db8::1", "/metrics").status, 200);
}
