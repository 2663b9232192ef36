//! WebTorrent messages through `Tracker::handle_ws`: announces and scrapes counted with the
//! UDP/HTTP peers of the same torrents, offers fanned out, answers routed back only for offers
//! the answering connection received, and what a connection may hold.

mod common;

use common::*;
use ferrotracker_core::access::{Access, HashList, Mode};
use ferrotracker_core::webtorrent::{
    FULL_SCRAPE_REFUSED, NO_SUCH_OFFER, OFFER_WINDOW, TOO_MANY_PEERS,
};
use ferrotracker_core::{Relay, Relays, WsConn};
use ferrotracker_proto::webtorrent::{
    self as wt, Action, Announce, Answer, InfoHashes, Limits, Offer, OfferId, Offers, Reply, Scrape,
};
use ferrotracker_proto::{Event, InfoHash, PeerId};
use ferrotracker_swarm::Refused;

const SDP_OFFER: &str = r#"{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}"#;
const SDP_ANSWER: &str = r#"{"type":"answer","sdp":"v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n"}"#;

/// What one message produced: the reply to its sender and the relays.
struct Out {
    reply: Vec<u8>,
    relays: Vec<(Relay, Vec<u8>)>,
}

impl Out {
    fn reply(&self) -> Reply<'_> {
        wt::parse_reply(&self.reply, &Limits::default())
            .unwrap_or_else(|e| panic!("{e:?}: {}", String::from_utf8_lossy(&self.reply)))
    }

    /// The failure reason, action and info_hash of an error reply.
    fn failure(&self) -> (String, Option<Action>, Option<InfoHash>) {
        match self.reply() {
            Reply::Failure {
                action,
                info_hash,
                reason,
            } => {
                let mut text = String::new();
                reason.decode_into(&mut text);
                (text, action, info_hash)
            }
            other => panic!("not a failure: {other:?}"),
        }
    }

    /// (complete, incomplete, interval) of an announce reply for `ih`.
    fn counts(&self, ih: &InfoHash) -> (u32, u32, u32) {
        match self.reply() {
            Reply::Announce {
                info_hash,
                complete,
                incomplete,
                interval,
            } if info_hash == *ih => (complete, incomplete, interval),
            other => panic!("not an announce reply for {ih:?}: {other:?}"),
        }
    }
}

fn utf8(msg: &[u8]) -> &str {
    std::str::from_utf8(msg).expect("test messages are UTF-8")
}

fn send(h: &mut Harness, c: &mut WsConn, msg: &[u8]) -> Out {
    let mut reply = Vec::new();
    let mut relays = Relays::new();
    h.t.handle_ws(&mut h.w, c, utf8(msg), h.now, &mut reply, &mut relays);
    Out {
        reply,
        relays: relays.iter().map(|(r, b)| (r, b.to_vec())).collect(),
    }
}

fn pid(n: u8) -> PeerId {
    PeerId([n; 20])
}

fn oid(n: u8) -> OfferId {
    OfferId([n; 20])
}

fn announce(
    ih: &InfoHash,
    peer: &PeerId,
    event: Event,
    left: Option<u64>,
    offers: &[Offer<'_>],
) -> Vec<u8> {
    let mut m = Vec::new();
    wt::write_announce_request(
        &mut m,
        &Announce {
            info_hash: *ih,
            peer_id: *peer,
            event,
            uploaded: Some(0),
            downloaded: Some(0),
            left,
            numwant: Some(offers.len() as u64),
            offers: Offers::from_slice(offers),
            answer: None,
        },
    );
    m
}

fn answer(ih: &InfoHash, from: &PeerId, to: &PeerId, offer_id: &OfferId) -> Vec<u8> {
    let mut m = Vec::new();
    wt::write_announce_request(
        &mut m,
        &Announce {
            info_hash: *ih,
            peer_id: *from,
            event: Event::None,
            uploaded: None,
            downloaded: None,
            left: None,
            numwant: None,
            offers: Offers::default(),
            answer: Some(Answer {
                to_peer_id: *to,
                offer_id: *offer_id,
                answer: SDP_ANSWER,
            }),
        },
    );
    m
}

fn scrape(hashes: Option<&[InfoHash]>) -> Vec<u8> {
    let mut m = Vec::new();
    let info_hashes = hashes.map(|hs| match hs {
        [one] => InfoHashes::one(*one),
        _ => InfoHashes::from_slice(hs),
    });
    wt::write_scrape_request(&mut m, &Scrape { info_hashes });
    m
}

fn offers(n: u8) -> Vec<Offer<'static>> {
    (0..n)
        .map(|i| Offer {
            offer_id: oid(100 + i),
            offer: SDP_OFFER,
        })
        .collect()
}

/// Joins `n` connections (keys 1..=n, peer_ids 1..=n) to `ih` as leechers.
fn join(h: &mut Harness, ih: &InfoHash, n: u8) -> Vec<WsConn> {
    (1..=n)
        .map(|i| {
            let mut c = h.t.ws_conn(u64::from(i));
            let out = send(
                h,
                &mut c,
                &announce(ih, &pid(i), Event::Started, Some(5), &[]),
            );
            out.counts(ih);
            assert!(out.relays.is_empty());
            c
        })
        .collect()
}

/// Delivers an offer relay to its connection and returns the offer as the receiver reads it.
fn deliver(h: &mut Harness, c: &mut WsConn, relay: Relay, msg: &[u8]) -> (PeerId, OfferId) {
    let sent =
        h.t.ws_relayed(c, relay, msg, h.now)
            .expect("its connection");
    match wt::parse_reply(sent, &Limits::default()).unwrap() {
        Reply::Offer { peer_id, offer, .. } => {
            assert_eq!(offer.offer, SDP_OFFER, "relayed verbatim");
            (peer_id, offer.offer_id)
        }
        other => panic!("not an offer: {other:?}"),
    }
}

#[test]
fn announce_and_scrape_count_every_transport() {
    let mut h = Harness::new();
    let x = hash(1);
    // A BitTorrent seeder over HTTP and a browser leecher over WebSocket share the torrent.
    h.announce("10.0.0.1", &x, 6881, 0, "&event=completed");
    let mut c = h.t.ws_conn(7);
    let out = send(
        &mut h,
        &mut c,
        &announce(&x, &pid(1), Event::Started, Some(9), &[]),
    );
    let (complete, incomplete, interval) = out.counts(&x);
    assert_eq!((complete, incomplete), (1, 1));
    assert!(
        (108..=132).contains(&interval),
        "webtorrent.interval 120 ±10%: {interval}"
    );
    assert_eq!(h.scrape(&[x]), [(x, 1, 1, 1)]);
    let a = h.announce("10.0.0.2", &x, 6882, 3, "");
    assert_eq!((a.complete, a.incomplete), (1, 2));

    // WebSocket scrapes: one hash (a string), several (an array), unknown ones as zeros.
    let y = hash(2);
    let files = |out: &Out| match out.reply() {
        Reply::Scrape(f) => f
            .iter()
            .map(|(h, c)| (h, c.complete, c.incomplete, c.downloaded))
            .collect::<Vec<_>>(),
        other => panic!("not a scrape reply: {other:?}"),
    };
    let one = send(&mut h, &mut c, &scrape(Some(&[x])));
    assert_eq!(files(&one), [(x, 1, 2, 1)]);
    let many = send(&mut h, &mut c, &scrape(Some(&[y, x])));
    assert_eq!(files(&many), [(y, 0, 0, 0), (x, 1, 2, 1)]);
    // No hash: the reference server's full scrape is not served over WebSocket.
    let none = send(&mut h, &mut c, &scrape(None));
    assert_eq!(
        none.failure(),
        (FULL_SCRAPE_REFUSED.to_string(), Some(Action::Scrape), None)
    );

    // A seeder's completion counts once, as on the other transports.
    let done = send(
        &mut h,
        &mut c,
        &announce(&x, &pid(1), Event::Completed, Some(0), &[]),
    );
    assert_eq!(done.counts(&x).0, 2);
    assert_eq!(h.scrape(&[x]), [(x, 2, 2, 1)]);
    let c2 = h.counters();
    assert_eq!((c2.ws_announces, c2.ws_scrapes, c2.ws_errors), (2, 3, 1));
    assert_eq!(c2.completed, 2);
}

#[test]
fn offers_go_to_at_most_max_offers_distinct_other_peers() {
    let mut h = Harness::new();
    let x = hash(3);
    let mut conns = join(&mut h, &x, 15);
    let mut sender = conns.remove(0);
    for round in 0..20 {
        // 12 offers: the first 10 (webtorrent.max_offers) are used.
        let out = send(
            &mut h,
            &mut sender,
            &announce(&x, &pid(1), Event::None, Some(5), &offers(12)),
        );
        assert_eq!(out.counts(&x), (0, 15, out.counts(&x).2));
        assert_eq!(out.relays.len(), 10, "round {round}");
        let mut to: Vec<u64> = out.relays.iter().map(|(r, _)| r.to).collect();
        to.sort();
        to.dedup();
        assert_eq!(to.len(), 10, "distinct peers");
        assert!(!to.contains(&sender.conn()), "never the sender");
        for (i, (relay, msg)) in out.relays.iter().enumerate() {
            assert!(relay.offer.is_some());
            match wt::parse_reply(msg, &Limits::default()).unwrap() {
                Reply::Offer {
                    info_hash,
                    peer_id,
                    offer,
                } => {
                    assert_eq!((info_hash, peer_id), (x, pid(1)));
                    assert_eq!(offer.offer_id, oid(100 + i as u8), "offer i to pick i");
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(h.counters().ws_offers_relayed, 200);

    // Fewer other peers than offers: one offer each.
    let y = hash(4);
    let mut few = join(&mut h, &y, 3);
    let out = send(
        &mut h,
        &mut few[0],
        &announce(&y, &pid(1), Event::None, Some(5), &offers(5)),
    );
    let mut to: Vec<u64> = out.relays.iter().map(|(r, _)| r.to).collect();
    to.sort();
    assert_eq!(to, [2, 3]);
    // A stopping peer's offers go nowhere.
    let out = send(
        &mut h,
        &mut few[1],
        &announce(&y, &pid(2), Event::Stopped, Some(5), &offers(5)),
    );
    assert!(out.relays.is_empty());

    // webtorrent.max_offers 0: announces are counted, offers ignored.
    let mut h = Harness::with(|c| c.webtorrent.max_offers = 0);
    let mut conns = join(&mut h, &x, 4);
    let out = send(
        &mut h,
        &mut conns[0],
        &announce(&x, &pid(1), Event::None, Some(5), &offers(3)),
    );
    assert_eq!(out.counts(&x).1, 4);
    assert!(out.relays.is_empty());
}

#[test]
fn answers_are_routed_only_for_offers_the_connection_received() {
    let mut h = Harness::new();
    let (x, y) = (hash(5), hash(6));
    let mut conns = join(&mut h, &x, 3);
    let mut c = conns.pop().unwrap();
    let mut b = conns.pop().unwrap();
    let mut a = conns.pop().unwrap();
    // a and b are in y too, with the same peer_ids.
    for (conn, p) in [(&mut a, pid(1)), (&mut b, pid(2))] {
        send(
            &mut h,
            conn,
            &announce(&y, &p, Event::Started, Some(5), &[]),
        )
        .counts(&y);
    }

    // a offers; b and c each receive one offer.
    let out = send(
        &mut h,
        &mut a,
        &announce(&x, &pid(1), Event::None, Some(5), &offers(2)),
    );
    assert_eq!(out.relays.len(), 2);
    let mut to_b = None;
    for (relay, msg) in &out.relays {
        let target = if relay.to == b.conn() { &mut b } else { &mut c };
        let got = deliver(&mut h, target, *relay, msg);
        assert_eq!(got.0, pid(1));
        if relay.to == b.conn() {
            to_b = Some(got.1);
        }
        // A relay is delivered to its own connection only.
        assert!(h.t.ws_relayed(&mut a, *relay, msg, h.now).is_none());
    }
    let offer_b = to_b.unwrap();
    let offer_c = if offer_b == oid(100) {
        oid(101)
    } else {
        oid(100)
    };

    // Not b's offer: refused (c's offer id, a wrong offerer, a wrong torrent, a wrong
    // answerer peer_id), each with a failure reason naming the torrent.
    for (msg, ih) in [
        (answer(&x, &pid(2), &pid(1), &offer_c), x),
        (answer(&x, &pid(2), &pid(3), &offer_b), x),
        (answer(&y, &pid(2), &pid(1), &offer_b), y),
        (answer(&x, &pid(9), &pid(1), &offer_b), x),
    ] {
        let out = send(&mut h, &mut b, &msg);
        assert_eq!(
            out.failure(),
            (NO_SUCH_OFFER.to_string(), Some(Action::Announce), Some(ih))
        );
        assert!(out.relays.is_empty());
    }
    assert_eq!(h.counters().ws_answers_refused, 4);

    // b's answer goes to a's connection, from b's peer_id, with no reply to b.
    let out = send(&mut h, &mut b, &answer(&x, &pid(2), &pid(1), &offer_b));
    assert!(
        out.reply.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.reply)
    );
    let [(relay, msg)] = &out.relays[..] else {
        panic!("one relay: {:?}", out.relays.len())
    };
    assert_eq!(
        *relay,
        Relay {
            to: a.conn(),
            offer: None
        }
    );
    match wt::parse_reply(msg, &Limits::default()).unwrap() {
        Reply::Answer {
            info_hash,
            peer_id,
            offer_id,
            answer,
        } => assert_eq!(
            (info_hash, peer_id, offer_id, answer),
            (x, pid(2), offer_b, SDP_ANSWER)
        ),
        other => panic!("{other:?}"),
    }
    assert!(h.t.ws_relayed(&mut a, *relay, msg, h.now).is_some());
    // Once only.
    let again = send(&mut h, &mut b, &answer(&x, &pid(2), &pid(1), &offer_b));
    assert_eq!(again.failure().0, NO_SUCH_OFFER);

    // c answers at the end of the window: still accepted; a second later it is not.
    h.advance(OFFER_WINDOW);
    let out = send(&mut h, &mut c, &answer(&x, &pid(3), &pid(1), &offer_c));
    assert_eq!(out.relays.len(), 1);
    let out = send(
        &mut h,
        &mut a,
        &announce(&x, &pid(1), Event::None, Some(5), &offers(2)),
    );
    let mut late_id = None;
    for (relay, msg) in &out.relays {
        if relay.to == c.conn() {
            late_id = Some(deliver(&mut h, &mut c, *relay, msg).1);
        }
    }
    h.advance(OFFER_WINDOW + 1);
    let late = send(
        &mut h,
        &mut c,
        &answer(&x, &pid(3), &pid(1), &late_id.unwrap()),
    );
    assert_eq!(late.failure().0, NO_SUCH_OFFER);

    // An offer whose offerer has left: the answer is dropped without a reply.
    let out = send(
        &mut h,
        &mut a,
        &announce(&x, &pid(1), Event::None, Some(5), &offers(1)),
    );
    let (relay, msg) = &out.relays[0];
    let target = if relay.to == b.conn() { &mut b } else { &mut c };
    let (_, id) = deliver(&mut h, target, *relay, msg);
    let answerer = if relay.to == b.conn() { pid(2) } else { pid(3) };
    h.t.ws_closed(&a);
    let target = if relay.to == b.conn() { &mut b } else { &mut c };
    let lost = send(&mut h, target, &answer(&x, &answerer, &pid(1), &id));
    assert!(lost.reply.is_empty() && lost.relays.is_empty());
    let n = h.counters();
    assert_eq!(
        (
            n.ws_answers_relayed,
            n.ws_answers_refused,
            n.ws_answers_lost
        ),
        (2, 6, 1)
    );
}

#[test]
fn a_peer_id_stays_with_its_connection() {
    let mut h = Harness::new();
    let x = hash(7);
    let mut a = h.t.ws_conn(1);
    let mut b = h.t.ws_conn(2);
    send(
        &mut h,
        &mut a,
        &announce(&x, &pid(1), Event::Started, Some(5), &[]),
    );
    // b claims a's peer_id, to receive the answers meant for a: refused, stop included.
    for event in [Event::Started, Event::None, Event::Stopped] {
        let out = send(
            &mut h,
            &mut b,
            &announce(&x, &pid(1), event, Some(5), &offers(2)),
        );
        assert_eq!(
            out.failure(),
            (
                Refused::PeerIdTaken.reason().to_string(),
                Some(Action::Announce),
                Some(x)
            )
        );
        assert!(out.relays.is_empty());
    }
    assert!(b.swarms().is_empty());
    assert_eq!(h.scrape(&[x]), [(x, 0, 0, 1)]);
    // A second peer_id on the same connection is a second peer (the clients of one process
    // share one connection), up to webtorrent.max_peers_per_connection.
    let out = send(
        &mut h,
        &mut a,
        &announce(&x, &pid(8), Event::None, Some(5), &[]),
    );
    assert_eq!(out.counts(&x).1, 2);
    assert_eq!(a.swarms(), [(x, pid(1)), (x, pid(8))]);
    // Its offers may go to the other peer on the same connection, never to itself.
    let out = send(
        &mut h,
        &mut a,
        &announce(&x, &pid(8), Event::None, Some(5), &offers(3)),
    );
    assert_eq!(out.relays.len(), 1, "only pid(1) to offer to");
    // pid(1) stops: free again, for b.
    send(
        &mut h,
        &mut a,
        &announce(&x, &pid(1), Event::Stopped, Some(5), &[]),
    );
    assert_eq!(a.swarms(), [(x, pid(8))]);
    let out = send(
        &mut h,
        &mut b,
        &announce(&x, &pid(1), Event::None, Some(5), &[]),
    );
    assert_eq!(out.counts(&x).1, 2);
}

#[test]
fn close_stops_the_connections_peers_everywhere() {
    let mut h = Harness::new();
    let (x, y) = (hash(8), hash(9));
    let mut a = h.t.ws_conn(1);
    let mut b = h.t.ws_conn(2);
    send(
        &mut h,
        &mut a,
        &announce(&x, &pid(1), Event::Started, Some(0), &[]),
    );
    send(
        &mut h,
        &mut a,
        &announce(&y, &pid(1), Event::Started, Some(5), &[]),
    );
    send(
        &mut h,
        &mut b,
        &announce(&x, &pid(2), Event::Started, Some(5), &[]),
    );
    assert_eq!(h.scrape(&[x, y]), [(x, 1, 0, 1), (y, 0, 0, 1)]);
    assert_eq!(h.t.store.totals().peers_ws, 3);
    assert_eq!(h.t.ws_closed(&a), 2);
    assert_eq!(h.scrape(&[x, y]), [(x, 0, 0, 1), (y, 0, 0, 0)]);
    assert_eq!(h.t.store.totals().peers_ws, 1);
    // A stop leaves the torrent for good: the connection no longer counts it.
    send(
        &mut h,
        &mut b,
        &announce(&x, &pid(2), Event::Stopped, Some(5), &[]),
    );
    assert!(b.swarms().is_empty());
    assert_eq!(h.t.ws_closed(&b), 0);
}

#[test]
fn peers_expire_unless_they_reannounce() {
    let mut h = Harness::new();
    let x = hash(10);
    let mut a = h.t.ws_conn(1);
    let mut b = h.t.ws_conn(2);
    send(
        &mut h,
        &mut a,
        &announce(&x, &pid(1), Event::Started, Some(5), &[]),
    );
    send(
        &mut h,
        &mut b,
        &announce(&x, &pid(2), Event::Started, Some(5), &[]),
    );
    let timeout = h.t.store.config().peer_timeout;
    h.advance(timeout / 2);
    send(
        &mut h,
        &mut a,
        &announce(&x, &pid(1), Event::None, Some(5), &[]),
    );
    h.advance(timeout / 2 + 60);
    h.sweep();
    assert_eq!(h.scrape(&[x]), [(x, 0, 0, 1)], "b expired, a refreshed");
}

#[test]
fn refusals_and_bad_messages_carry_their_action_and_keep_the_connection() {
    let (allowed, refused) = (hash(11), hash(12));
    let list = Access::new(Mode::White, HashList::from(vec![allowed]));
    let mut h = Harness::with_access(list, |_| {});
    let mut c = h.t.ws_conn(1);
    let out = send(
        &mut h,
        &mut c,
        &announce(&refused, &pid(1), Event::Started, Some(5), &offers(1)),
    );
    assert_eq!(
        out.failure(),
        (
            ferrotracker_core::tracker::NOT_AUTHORIZED.to_string(),
            Some(Action::Announce),
            Some(refused)
        )
    );
    assert!(out.relays.is_empty() && c.swarms().is_empty());

    // Not JSON, JSON that is cut off (the action and info_hash read before the cut are kept),
    // an unknown action, a message over webtorrent.max_message.
    let mut cut = announce(&allowed, &pid(1), Event::Started, Some(5), &[]);
    cut.truncate(cut.len() - 3);
    for (msg, want) in [
        (b"hello".to_vec(), (Some(Action::Announce), None)),
        (cut, (Some(Action::Announce), Some(allowed))),
        (
            br#"{"action":"scrape","info_hash":7}"#.to_vec(),
            (Some(Action::Scrape), None),
        ),
        (
            br#"{"action":"dance"}"#.to_vec(),
            (Some(Action::Announce), None),
        ),
        (vec![b' '; 64 * 1024 + 1], (Some(Action::Announce), None)),
    ] {
        let out = send(&mut h, &mut c, &msg);
        let (reason, action, ih) = out.failure();
        assert!(!reason.is_empty());
        assert_eq!((action, ih), want, "{reason}");
    }
    // The connection goes on.
    let out = send(
        &mut h,
        &mut c,
        &announce(&allowed, &pid(1), Event::Started, Some(5), &[]),
    );
    assert_eq!(out.counts(&allowed).1, 1);
    assert_eq!(h.counters().ws_errors, 6);
}

#[test]
fn a_connection_joins_at_most_max_peers() {
    let mut h = Harness::with(|c| c.webtorrent.max_peers_per_connection = 2);
    let mut c = h.t.ws_conn(1);
    let (x, y, z) = (hash(13), hash(14), hash(15));
    send(
        &mut h,
        &mut c,
        &announce(&x, &pid(1), Event::Started, Some(5), &[]),
    )
    .counts(&x);
    send(
        &mut h,
        &mut c,
        &announce(&y, &pid(1), Event::Started, Some(5), &[]),
    )
    .counts(&y);
    let out = send(
        &mut h,
        &mut c,
        &announce(&z, &pid(1), Event::Started, Some(5), &[]),
    );
    assert_eq!(
        out.failure(),
        (TOO_MANY_PEERS.to_string(), Some(Action::Announce), Some(z))
    );
    assert!(h.scrape(&[z]).is_empty(), "no torrent was made");
    // Re-announcing in a joined torrent is fine; leaving one makes room.
    send(
        &mut h,
        &mut c,
        &announce(&x, &pid(1), Event::None, Some(5), &[]),
    )
    .counts(&x);
    send(
        &mut h,
        &mut c,
        &announce(&x, &pid(1), Event::Stopped, Some(5), &[]),
    )
    .counts(&x);
    send(
        &mut h,
        &mut c,
        &announce(&z, &pid(1), Event::Started, Some(5), &[]),
    )
    .counts(&z);
    assert_eq!(c.swarms().len(), 2);
}

#[test]
fn repeated_messages_allocate_nothing_more() {
    let mut h = Harness::new();
    let x = hash(16);
    let mut conns = join(&mut h, &x, 12);
    let mut reply = Vec::new();
    let mut relays = Relays::new();
    let mut sizes = None;
    for round in 0..300 {
        let i = round % conns.len();
        let me = pid(i as u8 + 1);
        let msg = announce(&x, &me, Event::None, Some(5), &offers(10));
        let (sender, others) = {
            let (a, b) = conns.split_at_mut(i);
            let (s, rest) = b.split_first_mut().unwrap();
            (s, (a, rest))
        };
        h.t.handle_ws(&mut h.w, sender, utf8(&msg), h.now, &mut reply, &mut relays);
        assert_eq!(relays.len(), 10);
        // Each receiver records its offer and answers it.
        let delivered: Vec<(Relay, Vec<u8>)> =
            relays.iter().map(|(r, b)| (r, b.to_vec())).collect();
        for (relay, bytes) in delivered {
            let target = others
                .0
                .iter_mut()
                .chain(others.1.iter_mut())
                .find(|c| c.conn() == relay.to)
                .unwrap();
            let (_, id) = deliver(&mut h, target, relay, &bytes);
            let ans = answer(&x, &pid(relay.to as u8), &me, &id);
            h.t.handle_ws(&mut h.w, target, utf8(&ans), h.now, &mut reply, &mut relays);
            assert_eq!(relays.len(), 1, "answer routed");
        }
        let now = (
            reply.capacity(),
            relays.capacities(),
            conns.iter().map(WsConn::heap_bytes).sum::<usize>(),
        );
        if round == 50 {
            sizes = Some(now);
        } else if round > 50 {
            assert_eq!(Some(now), sizes, "round {round}");
        }
        h.advance(1);
    }
    // Its offer marks (answered at once: the ring never grows past its first 16; 16 bytes a
    // mark and 4 of index) and its swarms.
    assert!(
        conns[0].heap_bytes() <= 16 * (16 + 4) + 4 * 40,
        "{}",
        conns[0].heap_bytes()
    );
    assert_eq!(h.counters().ws_answers_relayed, 3000);
}

#[test]
fn a_connection_finds_each_of_many_peers_whatever_the_order() {
    let mut h = Harness::with(|c| c.webtorrent.max_peers_per_connection = 300);
    let mut c = h.t.ws_conn(7);
    let mut model = std::collections::BTreeSet::new();
    let mut state = 0x1234_5678_9abc_def1u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let r = next();
        let (x, p) = (hash((r % 97) as u8), pid((r >> 8) as u8 % 3));
        let event = if r >> 16 & 3 == 0 {
            Event::Stopped
        } else {
            Event::None
        };
        let out = send(&mut h, &mut c, &announce(&x, &p, event, Some(5), &[]));
        out.counts(&x);
        if event == Event::Stopped {
            model.remove(&(x.0, p.0));
        } else {
            model.insert((x.0, p.0));
        }
        let held: Vec<([u8; 20], [u8; 20])> = c.swarms().iter().map(|(h, p)| (h.0, p.0)).collect();
        assert_eq!(held, model.iter().copied().collect::<Vec<_>>());
    }
    assert!(model.len() > 100);
    h.t.ws_closed(&c);
    assert_eq!(h.t.store.totals().peers_ws, 0);
}

/// A connection remembers the offers relayed to it for the whole answer window, growing its
/// ring while the offer it would forget is still live, up to `webtorrent.offers_remembered`.
#[test]
fn offers_are_remembered_for_the_window_up_to_offers_remembered() {
    let mut h = Harness::with(|c| c.webtorrent.offers_remembered = 128);
    let x = hash(40);
    let mut conns = join(&mut h, &x, 2);
    let (a, b) = conns.split_at_mut(1);
    let (a, b) = (&mut a[0], &mut b[0]);
    let offer = |i: u8| Offer {
        offer_id: oid(i),
        offer: SDP_OFFER,
    };
    let relay_to_b = |h: &mut Harness, a: &mut WsConn, b: &mut WsConn, i: u8| {
        let out = send(
            h,
            a,
            &announce(&x, &pid(1), Event::None, Some(5), &[offer(i)]),
        );
        let [(relay, bytes)] = &out.relays[..] else {
            panic!("one relay: {:?}", out.relays.len());
        };
        assert_eq!(deliver(h, b, *relay, bytes), (pid(1), oid(i)));
    };
    assert_eq!(b.ring_len(), 0, "nothing held before the first offer");
    for i in 0..200 {
        relay_to_b(&mut h, a, b, i);
    }
    assert_eq!(b.ring_len(), 128);
    // The 128 most recent (72..=199) can be answered, once; older ones cannot.
    for (i, routed) in [
        (72, true),
        (199, true),
        (72, false),
        (71, false),
        (3, false),
    ] {
        let out = send(&mut h, b, &answer(&x, &pid(2), &pid(1), &oid(i)));
        assert_eq!(out.relays.len(), usize::from(routed), "answer to offer {i}");
    }
    // Offers older than the window are forgotten rather than kept by growing.
    let mut h = Harness::with(|c| c.webtorrent.offers_remembered = 1024);
    let mut conns = join(&mut h, &x, 2);
    let (a, b) = conns.split_at_mut(1);
    let (a, b) = (&mut a[0], &mut b[0]);
    for i in 0..16 {
        relay_to_b(&mut h, a, b, i);
    }
    h.advance(OFFER_WINDOW + 1);
    for i in 16..48 {
        relay_to_b(&mut h, a, b, i);
    }
    assert_eq!(b.ring_len(), 32, "grew once, for the live offers 16..32");
}

#[test]
fn relays_to_connections_that_take_none_are_dropped_unwritten_and_counted() {
    let mut h = Harness::new();
    let x = hash(40);
    let mut conns = join(&mut h, &x, 5);
    let mut sender = conns.remove(0);
    // Connections 2 and 4 are backlogged: their offers are dropped and counted, the others go.
    let mut reply = Vec::new();
    let mut relays = Relays::new();
    let msg = announce(&x, &pid(1), Event::None, Some(5), &offers(4));
    h.t.handle_ws_to(
        &mut h.w,
        &mut sender,
        utf8(&msg),
        h.now,
        &mut reply,
        &mut relays,
        |to| to != 2 && to != 4,
    );
    let mut to: Vec<u64> = relays.iter().map(|(r, _)| r.to).collect();
    to.sort();
    assert_eq!(to, [3, 5]);
    assert!(!reply.is_empty(), "the sender's reply is not a relay");
    let c = h.counters();
    assert_eq!((c.ws_offers_relayed, c.ws_relays_dropped), (4, 2));

    // An answer to a backlogged offerer: dropped and counted, and it used up its offer.
    let (relay, offer) = relays
        .iter()
        .map(|(r, m)| (r, m.to_vec()))
        .find(|(r, _)| r.to == 3)
        .unwrap();
    let receiver = conns.iter_mut().find(|c| c.conn() == 3).unwrap();
    let (from, offer_id) = deliver(&mut h, receiver, relay, &offer);
    let ans = answer(&x, &pid(3), &from, &offer_id);
    h.t.handle_ws_to(
        &mut h.w,
        receiver,
        utf8(&ans),
        h.now,
        &mut reply,
        &mut relays,
        |to| to != 1,
    );
    assert!(relays.is_empty() && reply.is_empty());
    let c = h.counters();
    assert_eq!((c.ws_answers_relayed, c.ws_relays_dropped), (1, 3));
    let again = send(&mut h, receiver, &ans);
    assert_eq!(again.failure().0, NO_SUCH_OFFER);
}

/// An offer is answered only by the peer it was relayed to: a connection holding two peers of
/// the torrent cannot answer one's offer as the other.
#[test]
fn only_the_peer_an_offer_went_to_answers_it() {
    let mut h = Harness::new();
    let x = hash(41);
    let mut a = h.t.ws_conn(1);
    send(
        &mut h,
        &mut a,
        &announce(&x, &pid(1), Event::Started, Some(5), &[]),
    );
    // One connection, two peers of the torrent (the clients of one process share it).
    let mut b = h.t.ws_conn(2);
    for p in [2, 3] {
        send(
            &mut h,
            &mut b,
            &announce(&x, &pid(p), Event::Started, Some(5), &[]),
        );
    }
    let mut taken = [0u32; 2];
    for i in 0..40 {
        let offer = Offer {
            offer_id: oid(i),
            offer: SDP_OFFER,
        };
        let out = send(
            &mut h,
            &mut a,
            &announce(&x, &pid(1), Event::None, Some(5), &[offer]),
        );
        let [(relay, bytes)] = &out.relays[..] else {
            panic!("one relay: {}", out.relays.len());
        };
        deliver(&mut h, &mut b, *relay, bytes);
        // Each of b's peers answers; exactly one is taken, whichever the offer was for.
        let mut routed = Vec::new();
        for p in [2, 3] {
            let out = send(&mut h, &mut b, &answer(&x, &pid(p), &pid(1), &oid(i)));
            if out.relays.len() == 1 {
                routed.push(p);
            } else {
                assert_eq!(out.failure().0, NO_SUCH_OFFER);
            }
        }
        let [p] = routed[..] else {
            panic!("offer {i}: answered by {routed:?}");
        };
        taken[usize::from(p - 2)] += 1;
    }
    // Offers went to both peers, and each peer's answers were the ones taken: the peer
    // answering first did not take the other's offers.
    assert!(taken[0] > 0 && taken[1] > 0, "{taken:?}");
}
