//! HTTP announce and scrape against the real binary over 127.0.0.1 ([BEP 3](https://www.bittorrent.org/beps/bep_0003.html), opentracker's [`ot_http.c`](https://erdgeist.org/gitweb/opentracker/tree/ot_http.c)).

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use common::*;

const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn v4(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(LOCAL, port)
}

#[test]
fn first_announce_gets_the_exact_opentracker_reply() {
    let t = Tracker::v4();
    // The test vector: a seeder on an empty tracker sees only itself.
    let target = "/announce?info_hash=%01%23%45%67%89%ab%cd%ef%01%23%45%67%89%ab%cd%ef%01%23%45%67\
                  &peer_id=ABCDEFGHIJKLMNOPQRST&port=6881&left=0";
    let r = http_get(t.http4(), target);
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    let a = AnnounceReply::parse(&r.body);
    assert!(
        (1620..=1979).contains(&a.interval),
        "default interval 1800 ±10%, got {}",
        a.interval
    );
    let mut want = format!(
        "d8:completei1e10:downloadedi0e10:incompletei0e8:intervali{}e12:min intervali{}e5:peers6:",
        a.interval,
        a.interval / 2
    )
    .into_bytes();
    want.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1]);
    want.push(b'e');
    assert_eq!(lossy(&r.body), lossy(&want));
    assert_eq!(r.body, want);
}

#[test]
fn peers_meet_with_seeder_and_leecher_counts() {
    let t = Tracker::v4();
    let h = hash(1);
    let a = http_announce(t.http4(), &h, 7001, 1000, "&event=started");
    assert_eq!((a.complete, a.incomplete, a.downloaded), (0, 1, Some(0)));
    assert_eq!(
        a.peers4(),
        vec![v4(7001)],
        "the announcing peer is in its own list"
    );
    assert!(
        a.peers6.is_none(),
        "no IPv6 peers, so no peers6 key: {:?}",
        a.keys
    );

    let b = http_announce(t.http4(), &h, 7002, 0, "&event=started");
    assert_eq!((b.complete, b.incomplete), (1, 1));
    assert_eq!(b.ports4(), vec![7001, 7002]);

    // A third peer on another torrent is not mixed in.
    let other = http_announce(t.http4(), &hash(2), 7003, 5, "");
    assert_eq!((other.complete, other.incomplete), (0, 1));
    assert_eq!(other.ports4(), vec![7003]);

    // The leecher re-announces and now finds the seeder.
    let a2 = http_announce(t.http4(), &h, 7001, 500, "");
    assert_eq!((a2.complete, a2.incomplete), (1, 1));
    assert_eq!(a2.ports4(), vec![7001, 7002]);
    for p in a2.peers4() {
        assert_eq!(*p.ip(), LOCAL);
    }
}

#[test]
fn peer_identity_is_address_and_port_not_peer_id() {
    let t = Tracker::v4();
    let h = hash(3);
    http_announce(t.http4(), &h, 7100, 10, "");
    // Same IP and port, another peer_id: still one peer (and it became a seeder).
    let target = format!(
        "/announce?info_hash={}&peer_id={}&port=7100&left=0",
        percent_encode(&h),
        percent_encode(b"-XX0001-zzzzzzzzzzzz")
    );
    let r = http_get(t.http4(), &target).announce();
    assert_eq!((r.complete, r.incomplete), (1, 0));
    assert_eq!(r.ports4(), vec![7100]);
    // Another port: another peer.
    let r = http_announce(t.http4(), &h, 7101, 10, "");
    assert_eq!((r.complete, r.incomplete), (1, 1));
    assert_eq!(r.ports4(), vec![7100, 7101]);
}

#[test]
fn completed_counts_once_per_peer_and_only_with_left_zero() {
    let t = Tracker::v4();
    let h = hash(4);
    let mut c = Http::connect(t.http4());
    let r = c
        .get(&announce_target(&h, 7200, 100, "&event=started"))
        .announce();
    assert_eq!((r.complete, r.incomplete, r.downloaded), (0, 1, Some(0)));

    // completed while still missing data is not a download.
    let r = c
        .get(&announce_target(&h, 7200, 50, "&event=completed"))
        .announce();
    assert_eq!((r.complete, r.incomplete, r.downloaded), (0, 1, Some(0)));

    let r = c
        .get(&announce_target(&h, 7200, 0, "&event=completed"))
        .announce();
    assert_eq!((r.complete, r.incomplete, r.downloaded), (1, 0, Some(1)));

    // The same peer completing again does not count twice.
    let r = c
        .get(&announce_target(&h, 7200, 0, "&event=completed"))
        .announce();
    assert_eq!((r.complete, r.incomplete, r.downloaded), (1, 0, Some(1)));

    // Another peer completing does.
    let r = c
        .get(&announce_target(&h, 7201, 0, "&event=completed"))
        .announce();
    assert_eq!((r.complete, r.incomplete, r.downloaded), (2, 0, Some(2)));

    let s = c.get(&scrape_target(&[h])).scrape();
    assert_eq!(
        s,
        vec![(
            h,
            ScrapeEntry {
                complete: 2,
                downloaded: 2,
                incomplete: 0
            }
        )]
    );
}

#[test]
fn stopped_removes_the_peer() {
    let t = Tracker::v4();
    let h = hash(5);
    http_announce(t.http4(), &h, 7300, 0, "&event=started");
    http_announce(t.http4(), &h, 7301, 9, "&event=started");
    let r = http_get(t.http4(), &announce_target(&h, 7301, 9, "&event=stopped"));
    assert_eq!(r.status, 200);
    let a = AnnounceReply::parse(&r.body);
    // opentracker's stopped reply: counts after removal, no `downloaded`, empty v4 list.
    let want = format!(
        "d8:completei1e10:incompletei0e8:intervali{}e12:min intervali{}e5:peers0:e",
        a.interval,
        a.interval / 2
    );
    assert_eq!(r.body_str(), want);
    assert_eq!(a.downloaded, None);

    let s = http_announce(t.http4(), &h, 7300, 0, "");
    assert_eq!((s.complete, s.incomplete), (1, 0));
    assert_eq!(s.ports4(), vec![7300], "the stopped peer is gone");
    let sc = http_get(t.http4(), &scrape_target(&[h])).scrape();
    assert_eq!((sc[0].1.complete, sc[0].1.incomplete), (1, 0));

    // Stopping a peer the tracker never saw is answered too.
    let r = http_get(
        t.http4(),
        &announce_target(&hash(6), 7399, 0, "&event=stopped"),
    );
    assert_eq!(r.status, 200);
    let a = AnnounceReply::parse(&r.body);
    assert_eq!((a.complete, a.incomplete, a.downloaded), (0, 0, None));
}

/// Announces `n` peers (ports from `base`) over one keep-alive connection.
fn fill(c: &mut Http, h: &[u8; 20], base: u16, n: u16) {
    for i in 0..n {
        let r = c.get(&announce_target(h, base + i, 1, "&numwant=0"));
        assert_eq!(r.status, 200, "{}", r.body_str());
    }
}

fn distinct(ports: &[u16]) -> bool {
    let mut v = ports.to_vec();
    v.dedup();
    v.len() == ports.len()
}

#[test]
fn numwant_default_explicit_zero_and_cap() {
    let t = Tracker::v4();
    let h = hash(7);
    let mut c = Http::connect(t.http4());
    fill(&mut c, &h, 10_000, 230);

    let r = c.get(&announce_target(&h, 20_000, 1, "")).announce();
    assert_eq!(r.incomplete, 231);
    let p = r.ports4();
    assert_eq!(p.len(), 50, "default numwant is 50");
    assert!(distinct(&p), "duplicates in {p:?}");

    let r = c
        .get(&announce_target(&h, 20_000, 1, "&numwant=7"))
        .announce();
    assert_eq!(r.ports4().len(), 7);
    assert!(distinct(&r.ports4()));

    let r = c
        .get(&announce_target(&h, 20_000, 1, "&numwant=1000"))
        .announce();
    let p = r.ports4();
    assert_eq!(p.len(), 200, "numwant is capped at 200");
    assert!(distinct(&p));
    for port in &p {
        assert!(
            (10_000..10_230).contains(port) || *port == 20_000,
            "unknown peer {port}"
        );
    }

    let r = c.get(&announce_target(&h, 20_000, 1, "&numwant=0"));
    let a = r.announce();
    assert!(
        a.peers.is_none() && a.peers6.is_none(),
        "numwant=0: {}",
        r.body_str()
    );
    assert_eq!(a.incomplete, 231);
}

#[test]
fn numwant_larger_than_swarm_returns_everyone() {
    let t = Tracker::v4();
    let h = hash(8);
    let mut c = Http::connect(t.http4());
    fill(&mut c, &h, 11_000, 12);
    let r = c
        .get(&announce_target(&h, 11_000, 1, "&numwant=200"))
        .announce();
    assert_eq!(r.ports4(), (11_000..11_012).collect::<Vec<_>>());
}

#[test]
fn compact_zero_answers_dictionaries() {
    let t = Tracker::v4();
    let h = hash(9);
    http_announce(t.http4(), &h, 7400, 0, "");
    let r = http_get(t.http4(), &announce_target(&h, 7401, 3, "&compact=0"));
    assert_eq!(r.status, 200, "{}", r.body_str());
    let body = r.body_str();
    let v = ferrotracker_proto::bencode::decode(&r.body).expect("bencode");
    let list = v
        .get(b"peers")
        .and_then(|p| p.as_list())
        .unwrap_or_else(|| panic!("peers is not a list: {body:?}"));
    let mut got: Vec<(String, i64)> = list
        .iter()
        .map(|d| {
            assert!(
                d.get(b"peer id").is_none(),
                "no peer ids are stored: {body:?}"
            );
            let ip = d.get(b"ip").and_then(|x| x.as_bytes()).expect("ip");
            let port = d.get(b"port").and_then(|x| x.as_int()).expect("port");
            (lossy(ip), port)
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("127.0.0.1".to_string(), 7400),
            ("127.0.0.1".to_string(), 7401)
        ]
    );
    assert_eq!(v.get(b"complete").and_then(|x| x.as_int()), Some(1));
    assert_eq!(v.get(b"incomplete").and_then(|x| x.as_int()), Some(1));
    assert!(
        body.contains("5:peersld2:ip9:127.0.0.14:porti74"),
        "{body:?}"
    );
}

#[test]
fn missing_info_hash_is_a_200_failure() {
    let t = Tracker::v4();
    let r = http_get(
        t.http4(),
        "/announce?peer_id=ABCDEFGHIJKLMNOPQRST&port=1&left=0",
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body_str(),
        "d14:failure reason80:Your client forgot to send your torrent's info_hash. \
         Please upgrade your client.e"
    );
}

/// Asserts a 400 with a bencoded failure reason, then that a good announce still works.
fn assert_400_then_serving(t: &Tracker, target: &str) {
    let r = http_get(t.http4(), target);
    assert_eq!(
        r.status,
        400,
        "{target}: {:?} {}",
        r.status_line,
        r.body_str()
    );
    let why = r.failure_reason().unwrap_or_else(|| {
        panic!(
            "{target}: 400 body is not a failure reason: {:?}",
            r.body_str()
        )
    });
    assert!(!why.is_empty());
    let ok = http_announce(t.http4(), &hash(99), 9999, 0, "");
    assert_eq!(
        ok.ports4(),
        vec![9999],
        "tracker stopped serving after {target}"
    );
}

#[test]
fn malformed_queries_are_400_and_the_server_keeps_serving() {
    let t = Tracker::v4();
    let h = percent_encode(&hash(10));
    let pid = percent_encode(&peer_id(1));
    let cases = [
        // Bad %-escapes.
        format!(
            "/announce?info_hash=%zz{}&peer_id={pid}&port=1&left=0",
            &h[3..]
        ),
        format!("/announce?info_hash={h}%4&peer_id={pid}&port=1&left=0"),
        // info_hash of 19 and 21 bytes.
        format!(
            "/announce?info_hash={}&peer_id={pid}&port=1&left=0",
            percent_encode(&[7u8; 19])
        ),
        format!(
            "/announce?info_hash={}&peer_id={pid}&port=1&left=0",
            percent_encode(&[7u8; 21])
        ),
        // Port out of range or not a number.
        format!("/announce?info_hash={h}&peer_id={pid}&port=65536&left=0"),
        format!("/announce?info_hash={h}&peer_id={pid}&port=12x&left=0"),
        // numwant not a number.
        format!("/announce?info_hash={h}&peer_id={pid}&port=1&left=0&numwant=abc"),
        format!("/announce?info_hash={h}&peer_id={pid}&port=1&left=0&numwant="),
        // Scrape with a short hash, or without any.
        format!("/scrape?info_hash={}", percent_encode(&[1u8; 19])),
        "/scrape?foo=bar".to_string(),
    ];
    for target in &cases {
        assert_400_then_serving(&t, target);
    }
    // Nothing was stored for the refused announces.
    let s = http_get(t.http4(), &scrape_target(&[hash(10)])).scrape();
    assert!(s.is_empty(), "{s:?}");
}

#[test]
fn non_get_methods_are_400() {
    let t = Tracker::v4();
    for raw in [
        "POST /announce HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
        "HEAD /announce HTTP/1.1\r\nHost: t\r\n\r\n",
        "PUT /scrape HTTP/1.1\r\nHost: t\r\n\r\n",
        "get /announce HTTP/1.1\r\nHost: t\r\n\r\n",
    ] {
        let mut c = Http::connect(t.http4());
        c.send(raw.as_bytes());
        let r = c.read_response();
        assert_eq!(r.status, 400, "{raw:?}: {:?}", r.status_line);
        assert!(r.failure_reason().is_some(), "{raw:?}: {:?}", r.body_str());
        // A framing error closes the connection.
        assert!(
            c.closed_within(Duration::from_secs(5)),
            "{raw:?} left the connection open"
        );
        let ok = http_announce(t.http4(), &hash(11), 9000, 0, "");
        assert_eq!(ok.ports4(), vec![9000]);
    }
}

#[test]
fn oversized_request_head_is_500() {
    let t = Tracker::v4();
    // Exactly 8192 bytes and still no blank line, so the head can only be larger than 8192:
    // once as an endless request target, once as a few long headers.
    let mut long_target = b"GET /announce?info_hash=".to_vec();
    long_target.resize(8192, b'a');
    let mut long_headers = b"GET /announce?info_hash=x HTTP/1.1\r\nHost: t\r\n".to_vec();
    while long_headers.len() < 8192 {
        let mut line = b"X-Padding: ".to_vec();
        line.resize(1000, b'b');
        line.extend_from_slice(b"\r\n");
        let take = line.len().min(8192 - long_headers.len());
        long_headers.extend_from_slice(&line[..take]);
    }
    for raw in [long_target, long_headers] {
        assert_eq!(raw.len(), 8192);
        let r = http_raw(t.http4(), &raw);
        assert_eq!(r.status, 500, "{:?} {}", r.status_line, r.body_str());
        let ok = http_announce(t.http4(), &hash(12), 9001, 0, "");
        assert_eq!(ok.ports4(), vec![9001]);
    }
}

#[test]
fn request_head_sent_in_pieces_is_answered() {
    let t = Tracker::v4();
    let mut c = Http::connect(t.http4());
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: t\r\nUser-Agent: test\r\n\r\n",
        announce_target(&hash(13), 9002, 0, "")
    );
    for chunk in req.as_bytes().chunks(17) {
        c.send(chunk);
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(c.read_response().announce().ports4(), vec![9002]);
}

#[test]
fn unknown_paths_are_404_and_announce_paths_follow_opentracker() {
    let t = Tracker::v4();
    for path in [
        "/foo",
        "/",
        "/favicon.ico",
        "/robots.txt",
        "/?info_hash=x",
        "/x/announce",
    ] {
        let r = http_get(t.http4(), path);
        assert_eq!(
            r.status,
            404,
            "{path}: {:?} {}",
            r.status_line,
            r.body_str()
        );
        assert!(r.status_line.starts_with("HTTP/1."), "{:?}", r.status_line);
    }
    // Any path starting with 'a' announces; leading slashes are skipped.
    let h = hash(14);
    for (i, prefix) in ["/announce.php", "//announce", "/a"].iter().enumerate() {
        let target = announce_target(&h, 9100 + i as u16, 0, "").replacen("/announce", prefix, 1);
        let r = http_get(t.http4(), &target);
        assert_eq!(r.status, 200, "{target}: {}", r.body_str());
        assert_eq!(r.announce().peers4().len(), i + 1);
    }
    let r = http_get(
        t.http4(),
        &scrape_target(&[h]).replacen("/scrape", "/scrape.php", 1),
    );
    assert_eq!(r.scrape()[0].1.complete, 3);
}

#[test]
fn scrape_answers_known_hashes_in_order_and_omits_unknown() {
    let t = Tracker::v4();
    let (h1, h2, unknown) = (hash(20), hash(21), hash(22));
    http_announce(t.http4(), &h1, 7500, 0, "");
    http_announce(t.http4(), &h1, 7501, 10, "");
    http_announce(t.http4(), &h1, 7502, 10, "");
    http_announce(t.http4(), &h2, 7503, 10, "");
    http_announce(t.http4(), &h2, 7503, 0, "&event=completed");

    let r = http_get(t.http4(), &scrape_target(&[h2, unknown, h1]));
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    let mut want = b"d5:filesd20:".to_vec();
    want.extend_from_slice(&h2);
    want.extend_from_slice(b"d8:completei1e10:downloadedi1e10:incompletei0ee20:");
    want.extend_from_slice(&h1);
    want.extend_from_slice(b"d8:completei1e10:downloadedi0e10:incompletei2eeee");
    assert_eq!(lossy(&r.body), lossy(&want));
    assert_eq!(r.body, want);

    let r = http_get(t.http4(), &scrape_target(&[unknown]));
    assert_eq!(r.body_str(), "d5:filesdee");
}

#[test]
fn keepalive_serves_several_requests_on_one_connection() {
    let t = Tracker::v4();
    let h = hash(30);
    let mut c = Http::connect(t.http4());
    for i in 0..5u16 {
        let r = c.get(&announce_target(&h, 7600 + i, 1, ""));
        assert!(
            !r.says_close(),
            "HTTP/1.1 reply {i} closes: {:?}",
            r.headers
        );
        assert_eq!(r.announce().incomplete, i64::from(i) + 1);
    }
    let r = c.get("/nothing-here");
    assert_eq!(r.status, 404);
    // Still open after a 404.
    let r = c.get(&scrape_target(&[h]));
    assert_eq!(r.scrape()[0].1.incomplete, 5);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let t = Tracker::v4();
    let h = hash(31);
    let mut c = Http::connect(t.http4());
    let mut batch = String::new();
    for i in 0..4u16 {
        batch += &format!(
            "GET {} HTTP/1.1\r\nHost: t\r\n\r\n",
            announce_target(&h, 7700 + i, 1, "")
        );
    }
    batch += "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n";
    batch += &format!("GET {} HTTP/1.1\r\nHost: t\r\n\r\n", scrape_target(&[h]));
    c.send(batch.as_bytes());
    for i in 0..4 {
        let r = c.read_response().announce();
        assert_eq!(r.incomplete, i + 1, "replies out of order");
    }
    assert_eq!(c.read_response().status, 404);
    assert_eq!(c.read_response().scrape()[0].1.incomplete, 4);
    // The connection is still usable afterwards.
    assert_eq!(c.get(&scrape_target(&[h])).status, 200);
}

#[test]
fn connection_close_and_http10_close_after_the_reply() {
    let t = Tracker::v4();
    let h = hash(32);
    let target = announce_target(&h, 7800, 0, "");
    for raw in [
        format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        format!("GET {target} HTTP/1.0\r\n\r\n"),
        format!("GET {target} HTTP/1.0\r\nHost: t\r\n\r\n"),
    ] {
        let mut c = Http::connect(t.http4());
        c.send(raw.as_bytes());
        let r = c.read_response();
        assert_eq!(r.status, 200);
        assert!(
            c.closed_within(Duration::from_secs(5)),
            "{raw:?} kept the connection open"
        );
    }
    // A keep-alive HTTP/1.1 connection is not closed right away (control for the above).
    let mut c = Http::connect(t.http4());
    assert_eq!(c.get(&target).status, 200);
    assert!(
        !c.closed_within(Duration::from_millis(300)),
        "HTTP/1.1 closed without being asked"
    );
}

#[test]
fn idle_keepalive_connections_are_closed_after_the_idle_timeout() {
    let t = Tracker::v4_with_config("http.idle_timeout 2\n");
    let mut c = Http::connect(t.http4());
    assert_eq!(c.get(&announce_target(&hash(33), 7900, 0, "")).status, 200);
    let start = Instant::now();
    assert!(
        c.closed_within(Duration::from_secs(10)),
        "idle connection still open after 10 s with http.idle_timeout 2"
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(500),
        "closed after only {took:?}"
    );
    // An idle connection that never sent anything is closed too.
    let mut c = Http::connect(t.http4());
    assert!(c.closed_within(Duration::from_secs(10)));
}

#[test]
fn keepalive_off_closes_every_connection() {
    let t = Tracker::v4_with_config("http.keepalive off\n");
    let mut c = Http::connect(t.http4());
    let r = c.get(&announce_target(&hash(34), 7950, 0, ""));
    assert_eq!(r.status, 200);
    assert!(
        r.says_close(),
        "reply should say Connection: close: {:?}",
        r.headers
    );
    assert!(c.closed_within(Duration::from_secs(5)));
}

#[test]
fn peers_expire_after_the_configured_timeout() {
    let t = Tracker::v4_with_config("tracker.peer_timeout 2\n");
    let h = hash(40);
    let mut c = Http::connect(t.http4());
    let r = c.get(&announce_target(&h, 8000, 0, "")).announce();
    assert_eq!(r.ports4(), vec![8000]);
    let r = c.get(&announce_target(&h, 8001, 5, "")).announce();
    assert_eq!(
        r.ports4(),
        vec![8000, 8001],
        "8000 must not expire immediately"
    );
    let start = Instant::now();
    // 8001 keeps announcing; 8000 goes silent and must disappear.
    let gone = poll_until(Duration::from_secs(10), Duration::from_millis(250), || {
        let r = c.get(&announce_target(&h, 8001, 5, "")).announce();
        assert!(
            r.ports4().contains(&8001),
            "the active peer expired: {:?}",
            r.ports4()
        );
        (!r.ports4().contains(&8000)).then_some(r)
    })
    .unwrap_or_else(|| panic!("peer 8000 still listed 10 s after its last announce"));
    assert_eq!((gone.complete, gone.incomplete), (0, 1));
    assert!(
        start.elapsed() >= Duration::from_millis(500),
        "expired too early"
    );
    // Scrape agrees.
    let s = c.get(&scrape_target(&[h])).scrape();
    assert_eq!((s[0].1.complete, s[0].1.incomplete), (0, 1));
    // Once everyone is silent, the torrent is emptied (or dropped) too.
    let emptied = poll_until(Duration::from_secs(10), Duration::from_millis(250), || {
        let s = c.get(&scrape_target(&[h])).scrape();
        s.iter()
            .all(|(_, e)| e.complete == 0 && e.incomplete == 0)
            .then_some(())
    });
    assert!(emptied.is_some(), "peer 8001 never expired");
}

/// Many clients at once over both protocols and several connections: every announce is
/// answered correctly and every peer is counted exactly once.
#[test]
fn concurrent_clients_over_http_and_udp_are_all_counted() {
    const THREADS: u16 = 4;
    const PER_THREAD: u16 = 150;
    // Every client is 127.0.0.1 here, standing for 1,200 of them: no per-address limit.
    let t = Tracker::v4_with_config("tracker.max_peers_per_ip 0\n");
    let h = hash(50);
    let (http, udp) = (t.http4(), t.udp4());
    let mut handles = Vec::new();
    for n in 0..THREADS {
        handles.push(std::thread::spawn(move || {
            let mut c = Http::connect(http);
            for i in 0..PER_THREAD {
                let port = 20_000 + n * PER_THREAD + i;
                let r = c.get(&announce_target(&h, port, 10, "")).announce();
                let p = r.ports4();
                assert!(p.contains(&port) || p.len() == 50, "{port} not in {p:?}");
                assert!(p.len() <= 50 && distinct(&p), "{p:?}");
            }
        }));
        handles.push(std::thread::spawn(move || {
            let mut c = Udp::new(udp);
            for i in 0..PER_THREAD {
                let port = 40_000 + n * PER_THREAD + i;
                let r = c.announce(&h, port, 0, ferrotracker_proto::Event::Started, -1);
                let peers = compact4(&r.raw_peers);
                assert!(peers.len() <= 50, "{}", peers.len());
            }
        }));
    }
    for th in handles {
        th.join().expect("client thread panicked");
    }
    let total = i64::from(THREADS * PER_THREAD);
    let s = http_get(t.http4(), &scrape_target(&[h])).scrape();
    assert_eq!((s[0].1.complete, s[0].1.incomplete), (total, total));
    let mut u = Udp::new(t.udp4());
    assert_eq!(u.scrape(&[h]), vec![(total as u32, 0, total as u32)]);
}
