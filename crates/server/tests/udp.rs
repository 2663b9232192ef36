//! BEP 15 UDP against the real binary over 127.0.0.1 and 127.0.0.2 ([BEP 15](https://www.bittorrent.org/beps/bep_0015.html)).

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use common::*;
use ferrotracker_proto::testutil::xorshift;
use ferrotracker_proto::udp as pudp;
use ferrotracker_proto::Event;

fn ports(raw: &[u8]) -> Vec<u16> {
    let peers = compact4(raw);
    for p in &peers {
        assert_eq!(*p.ip(), Ipv4Addr::LOCALHOST, "peer {p}");
    }
    let mut v: Vec<u16> = peers.iter().map(SocketAddrV4::port).collect();
    v.sort_unstable();
    v
}

#[test]
fn connect_returns_a_16_byte_reply_with_a_usable_id() {
    let t = Tracker::v4();
    let mut c = Udp::new(t.udp4());
    let tid = c.tid();
    let mut pkt = Vec::new();
    pudp::encode_connect(&mut pkt, tid);
    let reply = c.request(&pkt, tid);
    assert_eq!(reply.len(), 16);
    assert_eq!(&reply[0..4], &0u32.to_be_bytes(), "action connect");
    assert_eq!(&reply[4..8], &tid.to_be_bytes(), "transaction id echoed");
    // Trailing bytes after a connect are ignored.
    let tid2 = c.tid();
    let mut long = Vec::new();
    pudp::encode_connect(&mut long, tid2);
    long.extend_from_slice(&[0xaa; 20]);
    assert_eq!(c.request(&long, tid2).len(), 16);
    // Both ids work for an announce.
    for id in [&reply[8..16], &c.request(&long, tid2)[8..16]] {
        c.connection_id = Some(u64::from_be_bytes(id.try_into().unwrap()));
        let a = c.announce(&hash(1), 6000, 0, Event::Started, -1);
        assert_eq!(ports(&a.raw_peers), vec![6000]);
    }
}

#[test]
fn peers_meet_over_udp() {
    let t = Tracker::v4();
    let h = hash(2);
    let mut a = Udp::new(t.udp4());
    let mut b = Udp::new(t.udp4());
    let ra = a.announce(&h, 6101, 1000, Event::Started, -1);
    assert_eq!((ra.leechers, ra.seeders), (1, 0));
    assert_eq!(
        ports(&ra.raw_peers),
        vec![6101],
        "the announcing peer is in its own list"
    );
    assert!(
        (1620..=1979).contains(&ra.interval),
        "default interval 1800 ±10%, got {}",
        ra.interval
    );

    let rb = b.announce(&h, 6102, 0, Event::Started, -1);
    assert_eq!((rb.leechers, rb.seeders), (1, 1));
    assert_eq!(ports(&rb.raw_peers), vec![6101, 6102]);

    let ra = a.announce(&h, 6101, 500, Event::None, -1);
    assert_eq!((ra.leechers, ra.seeders), (1, 1));
    assert_eq!(ports(&ra.raw_peers), vec![6101, 6102]);

    // Exact layout: u32 1 | tid | interval | leechers | seeders | 6-byte peers.
    let req = a.announce_request(&h, 6101, 500, Event::None, 10);
    let raw = a.announce_raw(&req);
    assert_eq!(raw.len(), 20 + 2 * 6);
    assert_eq!(&raw[0..4], &1u32.to_be_bytes());
    assert_eq!(&raw[4..8], &req.transaction_id.to_be_bytes());
    assert_eq!(&raw[12..20], &[0, 0, 0, 1, 0, 0, 0, 1]);
}

#[test]
fn completed_and_scrape_over_udp() {
    let t = Tracker::v4();
    let (h, unknown) = (hash(3), hash(4));
    let mut c = Udp::new(t.udp4());
    c.announce(&h, 6200, 100, Event::Started, 0);
    c.announce(&h, 6201, 100, Event::Started, 0);
    assert_eq!(c.scrape(&[h, unknown]), vec![(0, 0, 2), (0, 0, 0)]);

    // completed with bytes left is not a download.
    c.announce(&h, 6200, 5, Event::Completed, 0);
    assert_eq!(c.scrape(&[h]), vec![(0, 0, 2)]);

    let r = c.announce(&h, 6200, 0, Event::Completed, 0);
    assert_eq!((r.leechers, r.seeders), (1, 1));
    assert_eq!(c.scrape(&[unknown, h]), vec![(0, 0, 0), (1, 1, 1)]);
    // Once per peer.
    c.announce(&h, 6200, 0, Event::Completed, 0);
    assert_eq!(c.scrape(&[h]), vec![(1, 1, 1)]);
    c.announce(&h, 6201, 0, Event::Completed, 0);
    assert_eq!(c.scrape(&[h]), vec![(2, 2, 0)]);

    // Exact layout: u32 2 | tid | (seeders, completed, leechers) per hash.
    let (tid, raw) = c.scrape_raw(&[unknown, h]);
    let mut want = 2u32.to_be_bytes().to_vec();
    want.extend_from_slice(&tid.to_be_bytes());
    want.extend_from_slice(&[0; 12]);
    for n in [2u32, 2, 0] {
        want.extend_from_slice(&n.to_be_bytes());
    }
    assert_eq!(raw, want);
}

#[test]
fn stopped_over_udp_removes_the_peer() {
    let t = Tracker::v4();
    let h = hash(5);
    let mut c = Udp::new(t.udp4());
    c.announce(&h, 6300, 0, Event::Started, -1);
    c.announce(&h, 6301, 7, Event::Started, -1);
    let req = c.announce_request(&h, 6301, 7, Event::Stopped, -1);
    let raw = c.announce_raw(&req);
    assert_eq!(raw.len(), 20, "stopped reply carries no peers: {raw:?}");
    let r = parse_udp_announce(&raw, req.transaction_id);
    assert_eq!((r.leechers, r.seeders), (0, 1));
    let r = c.announce(&h, 6300, 0, Event::None, -1);
    assert_eq!(ports(&r.raw_peers), vec![6300]);
    assert_eq!(c.scrape(&[h]), vec![(1, 0, 0)]);
}

#[test]
fn udp_numwant() {
    let t = Tracker::v4();
    let h = hash(6);
    let mut c = Udp::new(t.udp4());
    for p in 0..210u16 {
        c.announce(&h, 30_000 + p, 1, Event::Started, 0);
    }
    let r = c.announce(&h, 30_000, 1, Event::None, 0);
    assert!(r.raw_peers.is_empty(), "num_want 0 gives no peers");
    assert_eq!(r.leechers, 210);
    let r = c.announce(&h, 30_000, 1, Event::None, 5);
    let p = ports(&r.raw_peers);
    assert_eq!(p.len(), 5);
    assert!(p.windows(2).all(|w| w[0] != w[1]), "duplicates: {p:?}");
    let r = c.announce(&h, 30_000, 1, Event::None, -1);
    assert_eq!(ports(&r.raw_peers).len(), 50, "-1 gives the default 50");
    let r = c.announce(&h, 30_000, 1, Event::None, 1000);
    let p = ports(&r.raw_peers);
    assert_eq!(p.len(), 200, "IPv4 replies are capped at 200 peers");
    assert!(p.windows(2).all(|w| w[0] != w[1]), "duplicates: {p:?}");
    assert!(p.iter().all(|x| (30_000..30_210).contains(x)), "{p:?}");
}

#[test]
fn udp_numwant_larger_than_swarm_returns_everyone() {
    let t = Tracker::v4();
    let h = hash(14);
    let mut c = Udp::new(t.udp4());
    for p in 0..20u16 {
        c.announce(&h, 31_000 + p, 1, Event::Started, 0);
    }
    let r = c.announce(&h, 31_000, 1, Event::None, 1000);
    assert_eq!(ports(&r.raw_peers), (31_000..31_020).collect::<Vec<_>>());
}

#[test]
fn scrape_answers_up_to_74_hashes() {
    let t = Tracker::v4();
    let mut c = Udp::new(t.udp4());
    let known = hash(7);
    c.announce(&known, 6400, 0, Event::Started, 0);
    let mut hashes: Vec<[u8; 20]> = (100..173u8).map(hash).collect();
    hashes.push(known);
    assert_eq!(hashes.len(), 74);
    let (_, raw) = c.scrape_raw(&hashes);
    assert_eq!(raw.len(), 8 + 74 * 12);
    let entries = c.scrape(&hashes);
    assert_eq!(entries.len(), 74);
    assert!(entries[..73].iter().all(|e| *e == (0, 0, 0)));
    assert_eq!(entries[73], (1, 0, 0));
    // More than 74 are not refused; only 74 are answered.
    let mut more = hashes.clone();
    more.extend((200..210u8).map(hash));
    let entries = c.scrape(&more);
    assert_eq!(entries.len(), 74);
    assert_eq!(entries[73], (1, 0, 0));
}

#[test]
fn wrong_connection_id_gets_the_mismatch_error() {
    let t = Tracker::v4();
    let mut c = Udp::new(t.udp4());
    let good = c.connect();
    c.connection_id = Some(good ^ 0x5a5a_0000_0000_0001);
    let req = c.announce_request(&hash(8), 6500, 0, Event::Started, -1);
    let raw = c.announce_raw(&req);
    assert_eq!(raw, mismatch_packet(req.transaction_id, 98));
    assert_eq!(raw.len(), 33);
    assert_eq!(&raw[8..], b"Connection ID missmatch.\0");

    let (tid, raw) = c.scrape_raw(&[hash(8)]);
    assert_eq!(raw, mismatch_packet(tid, 36));

    // Nothing was stored by the refused announce.
    c.connection_id = Some(good);
    assert_eq!(c.scrape(&[hash(8)]), vec![(0, 0, 0)]);
}

#[test]
fn connection_id_from_another_address_is_refused() {
    let t = Tracker::v4();
    let h = hash(9);
    let mut one = Udp::bind(IpAddr::V4(Ipv4Addr::LOCALHOST), t.udp4());
    let mut two = Udp::bind(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), t.udp4());
    let id1 = one.connect();
    // Replaying 127.0.0.1's id from 127.0.0.2.
    two.connection_id = Some(id1);
    let req = two.announce_request(&h, 6600, 0, Event::Started, -1);
    let raw = two.announce_raw(&req);
    assert_eq!(
        raw,
        mismatch_packet(req.transaction_id, 98),
        "replayed id accepted"
    );
    let (tid, raw) = two.scrape_raw(&[h]);
    assert_eq!(raw, mismatch_packet(tid, 36));
    // 127.0.0.2 with its own id is served, and is seen as 127.0.0.2.
    two.connect();
    let r = two.announce(&h, 6600, 0, Event::Started, -1);
    assert_eq!(
        compact4(&r.raw_peers),
        vec![SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), 6600)]
    );
    let r = one.announce(&h, 6601, 0, Event::Started, -1);
    let mut got = compact4(&r.raw_peers);
    got.sort();
    assert_eq!(
        got,
        vec![
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 6601),
            SocketAddrV4::new(Ipv4Addr::new(127, 0, 0, 2), 6600),
        ]
    );
}

#[test]
fn garbage_gets_no_reply_or_an_error_and_the_server_keeps_answering() {
    let t = Tracker::v4();
    let mut c = Udp::new(t.udp4());
    let id = c.connect();
    let mut garbage: Vec<Vec<u8>> = vec![
        vec![],
        vec![0],
        b"hello".to_vec(),
        vec![0xff; 15],
        // A connect without the protocol magic.
        [
            &[0u8; 8][..],
            &0u32.to_be_bytes(),
            &0x0101_0101u32.to_be_bytes(),
        ]
        .concat(),
        // Unknown actions, with a good and a bad connection id.
        [
            &id.to_be_bytes()[..],
            &7u32.to_be_bytes(),
            &0x0202_0202u32.to_be_bytes(),
        ]
        .concat(),
        [
            &[1u8; 8][..],
            &0xffff_ffffu32.to_be_bytes(),
            &0x0303_0303u32.to_be_bytes(),
        ]
        .concat(),
        // Announce header only, and an announce cut at 97 bytes.
        [
            &id.to_be_bytes()[..],
            &1u32.to_be_bytes(),
            &0x0404_0404u32.to_be_bytes(),
        ]
        .concat(),
        // Scrape without a full hash.
        [
            &id.to_be_bytes()[..],
            &2u32.to_be_bytes(),
            &0x0505_0505u32.to_be_bytes(),
            &[9; 7],
        ]
        .concat(),
        vec![0x41; 1500],
    ];
    let mut ann = Vec::new();
    let req = c.announce_request(&hash(10), 6700, 0, Event::Started, -1);
    pudp::encode_announce(&mut ann, &req);
    ann.truncate(97);
    garbage.push(ann);
    let mut seed = 0x1234_5678_9abc_def0u64;
    for len in [16, 20, 98, 200] {
        let mut v = Vec::with_capacity(len);
        for _ in 0..len {
            v.push(xorshift(&mut seed) as u8);
        }
        garbage.push(v);
    }
    for (i, g) in garbage.iter().enumerate() {
        c.send_raw(g);
        // A valid connect right behind it must be answered; anything that arrives before that
        // answer must be an error packet.
        let tid = 0x7000_0000 + i as u32;
        let mut pkt = Vec::new();
        pudp::encode_connect(&mut pkt, tid);
        c.send_raw(&pkt);
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let reply = c
                .recv_until(end)
                .unwrap_or_else(|| panic!("no answer to a connect after garbage #{i} {g:?}"));
            if reply.len() == 16 && reply[4..8] == tid.to_be_bytes() {
                break;
            }
            assert!(
                reply.len() >= 8 && reply[0..4] == 3u32.to_be_bytes(),
                "garbage #{i} {g:?} got a non-error reply {reply:?}"
            );
            assert!(
                reply.len() <= g.len().max(8),
                "error reply larger than the request"
            );
        }
    }
    // Still serving announces.
    let r = c.announce(&hash(10), 6700, 0, Event::Started, -1);
    assert_eq!(ports(&r.raw_peers), vec![6700]);
    assert_eq!(c.scrape(&[hash(10)]), vec![(1, 0, 0)]);
}

#[test]
fn announce_with_trailing_options_is_accepted() {
    let t = Tracker::v4();
    let mut c = Udp::new(t.udp4());
    let req = c.announce_request(&hash(11), 6800, 0, Event::Started, -1);
    let mut pkt = Vec::new();
    pudp::encode_announce(&mut pkt, &req);
    // BEP 41 URL-data option: type 2, length, "/announce".
    pkt.extend_from_slice(&[2, 9]);
    pkt.extend_from_slice(b"/announce");
    let raw = c.request(&pkt, req.transaction_id);
    assert_eq!(
        ports(&parse_udp_announce(&raw, req.transaction_id).raw_peers),
        vec![6800]
    );
}

#[test]
fn http_and_udp_peers_share_the_swarm() {
    let t = Tracker::v4();
    let h = hash(12);
    let mut c = Udp::new(t.udp4());
    c.announce(&h, 6900, 0, Event::Started, -1);
    let r = http_announce(t.http4(), &h, 6901, 50, "");
    assert_eq!((r.complete, r.incomplete), (1, 1));
    assert_eq!(r.ports4(), vec![6900, 6901]);
    let u = c.announce(&h, 6900, 0, Event::None, -1);
    assert_eq!((u.leechers, u.seeders), (1, 1));
    assert_eq!(ports(&u.raw_peers), vec![6900, 6901]);
    // Scrapes agree across protocols.
    let s = http_get(t.http4(), &scrape_target(&[h])).scrape();
    assert_eq!((s[0].1.complete, s[0].1.incomplete), (1, 1));
    assert_eq!(c.scrape(&[h]), vec![(1, 0, 1)]);
}

#[test]
fn udp_peers_expire_after_the_configured_timeout() {
    let t = Tracker::v4_with_config("tracker.peer_timeout 2\n");
    let h = hash(13);
    let mut c = Udp::new(t.udp4());
    c.announce(&h, 7000, 0, Event::Started, -1);
    let r = c.announce(&h, 7001, 3, Event::Started, -1);
    assert_eq!(ports(&r.raw_peers), vec![7000, 7001]);
    let gone = poll_until(Duration::from_secs(10), Duration::from_millis(250), || {
        let r = c.announce(&h, 7001, 3, Event::None, -1);
        let p = ports(&r.raw_peers);
        assert!(p.contains(&7001), "the active peer expired: {p:?}");
        (!p.contains(&7000)).then_some(r)
    })
    .unwrap_or_else(|| panic!("peer 7000 still listed 10 s after its last announce"));
    assert_eq!((gone.leechers, gone.seeders), (1, 0));
    assert_eq!(c.scrape(&[h]), vec![(0, 0, 1)]);
}

/// A socket busy for whole turns is served without epoll, then registered again once idle: after
/// a flood, lone requests must still be answered at once (not only when more traffic comes).
#[test]
fn lone_requests_are_answered_after_a_flood() {
    // One worker: the flood and the lone requests meet the same socket.
    let mut t = Tracker::v4_with_config("tracker.workers 1\n");
    let server = t.udp4();
    let mut connect = Vec::new();
    pudp::encode_connect(&mut connect, 7);
    let stop = Instant::now() + Duration::from_millis(800);
    let floods: Vec<_> = (0..2)
        .map(|_| {
            let connect = connect.clone();
            std::thread::spawn(move || {
                let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                s.set_nonblocking(true).unwrap();
                let mut buf = [0u8; 64];
                let (mut sent, mut got) = (0u64, 0u64);
                while Instant::now() < stop {
                    for _ in 0..32 {
                        sent += u64::from(s.send_to(&connect, server).is_ok());
                    }
                    while s.recv(&mut buf).is_ok() {
                        got += 1;
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
                while s.recv(&mut buf).is_ok() {
                    got += 1;
                }
                (sent, got)
            })
        })
        .collect();
    let (sent, got) = floods
        .into_iter()
        .map(|f| f.join().unwrap())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert!(got > 1000 && got <= sent, "sent {sent}, answered {got}");

    // Quiet now: each lone connect is answered within a second, on the first try.
    std::thread::sleep(Duration::from_millis(300));
    let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut buf = [0u8; 64];
    for i in 0..10u32 {
        let mut pkt = Vec::new();
        pudp::encode_connect(&mut pkt, 1000 + i);
        let asked = Instant::now();
        c.send_to(&pkt, server).unwrap();
        let n = c
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("lone connect {i} unanswered after the flood: {e}"));
        assert_eq!((n, &buf[4..8]), (16, &(1000 + i).to_be_bytes()[..]));
        assert!(asked.elapsed() < Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(100));
    }
    t.stop_with(libc::SIGTERM, Duration::from_secs(10));
    // How the flood was served (busy spells depend on the machine's speed), for the test log.
    let log = t.stderr();
    eprintln!(
        "{}",
        log.lines()
            .filter(|l| l.contains("UDP datagrams"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
