//! Peer and torrent expiry on the clock the test advances, and the renew statistics.

mod common;

use common::*;
use ferrotracker_core::counters::RENEW_BUCKETS;

#[test]
fn a_peer_is_listed_until_its_timeout_then_swept() {
    // A timeout under 100 s ticks in whole seconds.
    let mut h = Harness::with(|s| s.store.peer_timeout = 90);
    let x = hash(10);
    h.announce("10.0.0.1", &x, 1, 0, "");
    h.advance(50);
    h.announce("10.0.0.2", &x, 2, 0, "");
    h.advance(39); // T0 + peer_timeout - 1
    assert_eq!(h.sweep(), (0, 0));
    assert_eq!(h.scrape(&[x]), [(x, 2, 0, 0)]);
    h.advance(2); // T0 + peer_timeout + 1
    assert_eq!(h.sweep(), (1, 0));
    let a = h.announce("10.0.0.3", &x, 3, 5, "");
    assert_eq!(a.addrs(), [sa("10.0.0.2:2"), sa("10.0.0.3:3")]);
    assert_eq!((a.complete, a.incomplete), (1, 1));
    // Everyone silent: the peers go, then the torrent (no downloads) with them.
    h.advance(90);
    assert_eq!(h.sweep(), (2, 1));
    assert_eq!(h.scrape(&[x]), []);
    assert_eq!(h.t.store.totals(), Default::default());
}

#[test]
fn default_timeout_expires_a_peer_after_45_minutes() {
    let mut h = Harness::new();
    let x = hash(11);
    h.announce("10.0.0.1", &x, 1, 0, "");
    h.advance(45 * 60 - 1);
    assert_eq!(h.sweep(), (0, 0));
    assert_eq!(h.scrape(&[x]), [(x, 1, 0, 0)]);
    h.advance(2);
    assert_eq!(h.sweep(), (1, 1));
    assert_eq!(h.scrape(&[x]), []);
}

#[test]
fn a_reannounce_keeps_a_peer_alive() {
    let mut h = Harness::with(|s| s.store.peer_timeout = 90);
    let x = hash(12);
    for _ in 0..10 {
        h.announce("10.0.0.1", &x, 1, 0, "");
        h.advance(80);
        assert_eq!(h.sweep(), (0, 0));
    }
    assert_eq!(h.scrape(&[x]), [(x, 1, 0, 0)]);
}

#[test]
fn a_torrent_with_downloads_is_kept_until_the_torrent_timeout() {
    let mut h = Harness::with(|s| {
        s.store.peer_timeout = 90;
        s.store.torrent_timeout = 1000;
    });
    let (done, idle) = (hash(13), hash(14));
    h.announce("10.0.0.1", &done, 1, 0, "&event=completed");
    h.announce("10.0.0.1", &idle, 1, 0, "");
    h.advance(91);
    assert_eq!(
        h.sweep(),
        (2, 1),
        "both peers, and the torrent without downloads"
    );
    assert_eq!(h.scrape(&[done, idle]), [(done, 0, 1, 0)]);
    h.advance(1000 - 91 - 1);
    assert_eq!(h.sweep(), (0, 0));
    assert_eq!(h.scrape(&[done]), [(done, 0, 1, 0)]);
    h.advance(1);
    assert_eq!(h.sweep(), (0, 1));
    assert_eq!(h.scrape(&[done]), []);
}

#[test]
fn renew_stats_bucket_reannounces_by_age_in_minutes() {
    let mut h = Harness::new();
    let x = hash(15);
    h.announce("10.0.0.1", &x, 1, 0, "");
    // Ages on the default 27-second tick: 81 s, 621 s, 1350 s; then 27 s twice.
    for age in [81, 621, 1350, 27, 27] {
        h.advance(age);
        h.announce("10.0.0.1", &x, 1, 0, "");
    }
    // A new peer and a stop are not renewals.
    h.announce("10.0.0.2", &x, 2, 0, "");
    h.announce("10.0.0.2", &x, 2, 0, "&event=stopped");
    let mut want = [0u64; RENEW_BUCKETS];
    want[0] = 2;
    want[1] = 1;
    want[10] = 1;
    want[22] = 1;
    assert_eq!(h.counters().renewed, want);
    let r = h.get("127.0.0.1", "/stats?mode=renew");
    assert_eq!(r.status, 200);
    let page: String = want
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{i:02} {n}\n"))
        .collect();
    assert_eq!(String::from_utf8(r.body).unwrap(), page);
}
