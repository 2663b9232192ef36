//! Store limits under a flood of random info_hashes, against the real binary.

mod common;

use std::time::{Duration, Instant};

use common::*;
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
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
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
