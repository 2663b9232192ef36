//! WebTorrent over real sockets: WebSocket clients (tungstenite over a std `TcpStream`, and over
//! the TLS test client for wss://) upgrade on the HTTP and TLS listeners and announce, scrape,
//! relay offers and answers (within a worker and across workers), and get errors and close
//! codes; UDP/HTTP and WebTorrent peers of one torrent scrape together.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ferrotracker_proto::Event;

use common::tls::TestPki;
use common::*;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

/// A WebSocket client of the tracker.
struct Client<S: Read + Write> {
    ws: WebSocket<S>,
}

fn connect(addr: SocketAddr, path: &str) -> Client<TcpStream> {
    let tcp = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.set_nodelay(true).unwrap();
    let url = format!("ws://{addr}{path}");
    let (ws, resp) = tungstenite::client::client(url.as_str(), tcp)
        .unwrap_or_else(|e| panic!("WebSocket handshake with {url}: {e}"));
    assert_eq!(resp.status(), 101);
    Client { ws }
}

impl<S: Read + Write> Client<S> {
    fn send(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
    }

    /// The next text message.
    fn recv(&mut self) -> String {
        loop {
            match self.ws.read().expect("read") {
                Message::Text(t) => return t.as_str().to_owned(),
                Message::Ping(_) | Message::Pong(_) => {}
                m => panic!("unexpected message {m:?}"),
            }
        }
    }

    /// The close code the tracker closed with.
    fn close_code(&mut self) -> Option<CloseCode> {
        loop {
            match self.ws.read() {
                Ok(Message::Close(f)) => return f.map(|f| f.code),
                Ok(_) => {}
                Err(e) => panic!("no close frame: {e}"),
            }
        }
    }

    fn announce(&mut self, h: &str, peer: &str, extra: &str) -> String {
        self.send(&format!(
            r#"{{"action":"announce","info_hash":"{h}","peer_id":"{peer}","left":1,"event":"started","numwant":5{extra}}}"#
        ));
        self.recv()
    }

    fn scrape(&mut self, h: &str) -> (u64, u64) {
        self.send(&format!(r#"{{"action":"scrape","info_hash":"{h}"}}"#));
        let r = self.recv();
        (num(&r, "complete"), num(&r, "incomplete"))
    }
}

/// A number member of a JSON reply.
fn num(json: &str, key: &str) -> u64 {
    let pat = format!("\"{key}\":");
    let at = json
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {json}"))
        + pat.len();
    json[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("bad {key} in {json}"))
}

/// A string member of a JSON reply.
fn string<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let at = json.find(&pat)? + pat.len();
    json[at..].split('"').next()
}

/// 20-character ids (one byte per char, as the reference client's binary strings).
fn id(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:0>width$}", width = 20 - prefix.len())
}

fn offers(n: usize, tag: &str) -> String {
    let list: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"offer":{{"type":"offer","sdp":"sdp-{tag}-{i}"}},"offer_id":"{}"}}"#,
                id(&format!("o{tag}"), i)
            )
        })
        .collect();
    format!(r#","offers":[{}]"#, list.join(","))
}

/// A scrape of 64 torrents named `tag` (1.6 KB; its reply is 4.5 KB).
fn scrape_of_64(tag: &str) -> String {
    let hashes: Vec<String> = (0..64).map(|i| format!("\"{}\"", id(tag, i))).collect();
    format!(
        r#"{{"action":"scrape","info_hash":[{}]}}"#,
        hashes.join(",")
    )
}

fn tracker(extra: &str) -> Tracker {
    Tracker::v4_with_config(&format!(
        "listen.tcp 127.0.0.1:0\nlisten.udp 127.0.0.1:0\n{extra}"
    ))
}

fn metric(t: &Tracker, series: &str) -> u64 {
    let body = http_get(t.http4(), "/metrics").body_str();
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{body}"))
}

#[test]
fn announce_is_answered_on_announce_and_root_paths() {
    let t = tracker("");
    let h = id("hash-a", 1);
    let mut a = connect(t.http4(), "/announce");
    let r = a.announce(&h, &id("peer-a", 1), "");
    assert!(r.contains(r#""action":"announce""#), "{r}");
    assert_eq!(string(&r, "info_hash"), Some(h.as_str()));
    assert_eq!((num(&r, "complete"), num(&r, "incomplete")), (0, 1));
    assert!(num(&r, "interval") > 0);
    let mut b = connect(t.http4(), "/");
    let r = b.announce(&h, &id("peer-b", 1), r#","left":0"#);
    assert_eq!((num(&r, "complete"), num(&r, "incomplete")), (1, 1));
    assert_eq!(a.scrape(&h), (1, 1));
    assert_eq!(metric(&t, "ferrotracker_webtorrent_connections"), 2);
}

#[test]
fn upgrade_bytes_pipelined_after_the_request_belong_to_the_websocket() {
    let t = tracker("");
    let mut s = TcpStream::connect(t.http4()).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    // The upgrade request and a masked text frame (a scrape) in one write.
    let msg = format!(r#"{{"action":"scrape","info_hash":"{}"}}"#, id("hash-p", 1));
    let mut raw =
        b"GET /announce HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            .to_vec();
    let mask = [1u8, 2, 3, 4];
    raw.push(0x81);
    raw.push(0x80 | msg.len() as u8);
    raw.extend_from_slice(&mask);
    raw.extend(msg.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    s.write_all(&raw).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\"files\"") {
        let n = s.read(&mut buf).expect("read");
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 101 "), "{text}");
    assert!(
        text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{text}"
    );
}

#[test]
fn upgrade_is_plain_http_when_webtorrent_is_off() {
    let t = tracker("webtorrent off\n");
    let url = format!("ws://{}/announce", t.http4());
    let tcp = TcpStream::connect(t.http4()).unwrap();
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    match tungstenite::client::client(url.as_str(), tcp) {
        // What HTTP routing answers a GET /announce without a query: a failure reason.
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
            assert_eq!(r.status(), 200);
            let body = String::from_utf8_lossy(r.body().as_deref().unwrap_or_default());
            assert!(body.contains("failure reason"), "{body}");
        }
        Err(e) => panic!("expected an HTTP error reply, got {e}"),
        Ok(_) => panic!("upgraded with webtorrent off"),
    }
}

#[test]
fn offers_go_to_other_peers_only_at_most_max_offers() {
    let t = tracker("webtorrent.max_offers 2\n");
    let h = id("hash-o", 1);
    let mut peers: Vec<_> = (0..4).map(|_| connect(t.http4(), "/announce")).collect();
    for (i, p) in peers.iter_mut().enumerate() {
        p.announce(&h, &id("peer-o", i), "");
    }
    let r = peers[0].announce(&h, &id("peer-o", 0), &offers(5, "a"));
    assert_eq!(num(&r, "incomplete"), 4);
    // The offerer's own next message is its scrape's reply: no offer came back to it.
    peers[0].send(&format!(r#"{{"action":"scrape","info_hash":"{h}"}}"#));
    assert!(peers[0].recv().contains("\"files\""));
    // Two of the three others get one offer each, from peer 0.
    let mut got = 0;
    for p in &mut peers[1..] {
        p.send(&format!(r#"{{"action":"scrape","info_hash":"{h}"}}"#));
        loop {
            let m = p.recv();
            if m.contains("\"files\"") {
                break;
            }
            assert!(m.contains("\"offer\""), "{m}");
            assert_eq!(string(&m, "peer_id"), Some(id("peer-o", 0).as_str()));
            got += 1;
        }
    }
    assert_eq!(got, 2);
    assert_eq!(
        metric(&t, "ferrotracker_webtorrent_relayed_total{kind=\"offer\"}"),
        2
    );
}

/// Reads messages until an offer comes; returns it.
fn next_offer<S: Read + Write>(c: &mut Client<S>) -> String {
    loop {
        let m = c.recv();
        if m.contains("\"offer\":") {
            return m;
        }
    }
}

#[test]
fn answer_goes_to_the_offerer_only_and_only_for_an_offer_received() {
    let t = tracker("");
    let h = id("hash-n", 1);
    let mut a = connect(t.http4(), "/announce");
    let mut b = connect(t.http4(), "/announce");
    let mut c = connect(t.http4(), "/announce");
    b.announce(&h, &id("peer-b", 0), "");
    a.announce(&h, &id("peer-a", 0), "");
    // A's one offer goes to B (the only other peer).
    a.announce(&h, &id("peer-a", 0), &offers(1, "n"));
    let offer = next_offer(&mut b);
    let offer_id = string(&offer, "offer_id").unwrap().to_owned();
    // C joins after the offer and answers it anyway: refused, nothing reaches A.
    c.announce(&h, &id("peer-c", 0), "");
    let answer = |me: &str, offer_id: &str| {
        format!(
            r#"{{"action":"announce","info_hash":"{h}","peer_id":"{me}","to_peer_id":"{}","answer":{{"type":"answer","sdp":"x"}},"offer_id":"{offer_id}"}}"#,
            id("peer-a", 0)
        )
    };
    c.send(&answer(&id("peer-c", 0), &offer_id));
    let r = c.recv();
    assert!(r.contains("failure reason"), "{r}");
    assert!(r.contains(r#""action":"announce""#), "{r}");
    // B's answer reaches A, with B as its peer.
    b.send(&answer(&id("peer-b", 0), &offer_id));
    let got = loop {
        let m = a.recv();
        if m.contains("\"answer\"") {
            break m;
        }
    };
    assert_eq!(string(&got, "peer_id"), Some(id("peer-b", 0).as_str()));
    assert_eq!(string(&got, "offer_id"), Some(offer_id.as_str()));
    // Answered once only.
    b.send(&answer(&id("peer-b", 0), &offer_id));
    assert!(b.recv().contains("failure reason"));
}

#[test]
fn a_peer_id_taken_on_another_connection_is_refused() {
    let t = tracker("");
    let h = id("hash-h", 1);
    let mut a = connect(t.http4(), "/announce");
    let mut b = connect(t.http4(), "/announce");
    a.announce(&h, &id("victim", 0), "");
    let r = b.announce(&h, &id("victim", 0), "");
    assert!(r.contains("failure reason"), "{r}");
    assert_eq!(a.scrape(&h), (0, 1));
}

#[test]
fn a_closed_connection_leaves_its_torrents_and_http_scrape_counts_webtorrent_peers() {
    let t = tracker("");
    let h = id("hash-c", 1);
    let mut a = connect(t.http4(), "/announce");
    let mut b = connect(t.http4(), "/announce");
    a.announce(&h, &id("peer-a", 0), "");
    b.announce(&h, &id("peer-b", 0), r#","left":0"#);
    // An HTTP peer of the same torrent.
    let hq = h.as_bytes();
    let r = http_get(
        t.http4(),
        &announce_target(hq.try_into().unwrap(), 7001, 5, ""),
    );
    assert_eq!(r.status, 200);
    let http_scrape = |t: &Tracker| {
        let r = http_get(t.http4(), &format!("/scrape?info_hash={h}"));
        let e = r.scrape();
        assert_eq!(e.len(), 1, "{}", r.body_str());
        (e[0].1.complete, e[0].1.incomplete)
    };
    assert_eq!(http_scrape(&t), (1, 2));
    assert_eq!(a.scrape(&h), (1, 2));
    b.ws.close(None).unwrap();
    let _ = b.ws.flush();
    let dropped = poll_until(IO_TIMEOUT, Duration::from_millis(20), || {
        (http_scrape(&t) == (0, 2)).then_some(())
    });
    assert!(dropped.is_some(), "{:?}", http_scrape(&t));
    assert_eq!(a.scrape(&h), (0, 2));
    // A connection that just goes (no close frame) leaves too.
    drop(a);
    let gone = poll_until(IO_TIMEOUT, Duration::from_millis(20), || {
        (http_scrape(&t) == (0, 1)).then_some(())
    });
    assert!(gone.is_some(), "{:?}", http_scrape(&t));
    assert_eq!(metric(&t, "ferrotracker_webtorrent_connections"), 0);
    assert_eq!(
        metric(
            &t,
            "ferrotracker_webtorrent_connections_total{event=\"closed\"}"
        ),
        2
    );
}

#[test]
fn bad_json_gets_an_error_with_action_and_the_connection_survives() {
    let t = tracker("");
    let mut a = connect(t.http4(), "/announce");
    a.send("{not json");
    let r = a.recv();
    assert!(
        r.contains("failure reason") && r.contains(r#""action":"#),
        "{r}"
    );
    a.send(r#"{"action":"scrape","info_hash":5}"#);
    let r = a.recv();
    assert!(
        r.contains(r#""action":"scrape""#) && r.contains("failure reason"),
        "{r}"
    );
    let h = id("hash-j", 1);
    assert_eq!(a.scrape(&h), (0, 0));
}

#[test]
fn a_binary_frame_closes_with_1003_and_an_oversize_message_with_1009() {
    let t = tracker("webtorrent.max_message 4096\n");
    let mut a = connect(t.http4(), "/announce");
    a.ws.send(Message::binary(vec![1u8, 2, 3])).unwrap();
    assert_eq!(a.close_code(), Some(CloseCode::Unsupported));
    let mut b = connect(t.http4(), "/announce");
    b.send(&format!(
        r#"{{"action":"scrape","x":"{}"}}"#,
        "y".repeat(5000)
    ));
    assert_eq!(b.close_code(), Some(CloseCode::Size));
    assert_eq!(
        metric(
            &t,
            "ferrotracker_webtorrent_closed_total{reason=\"protocol_error\"}"
        ),
        2
    );
}

#[test]
fn relays_cross_workers() {
    let t = tracker("tracker.workers 4\nwebtorrent.max_offers 15\n");
    let h = id("hash-w", 1);
    // Sixteen connections: with four workers sharing the listener, they land on several.
    let mut peers: Vec<_> = (0..16).map(|_| connect(t.http4(), "/announce")).collect();
    for (i, p) in peers.iter_mut().enumerate() {
        p.announce(&h, &id("peer-w", i), "");
    }
    let r = peers[0].announce(&h, &id("peer-w", 0), &offers(15, "w"));
    assert_eq!(num(&r, "incomplete"), 16);
    // Every other peer gets one offer and answers it; all answers reach peer 0.
    for (i, p) in peers.iter_mut().enumerate().skip(1) {
        let offer = next_offer(p);
        let offer_id = string(&offer, "offer_id").unwrap().to_owned();
        p.send(&format!(
            r#"{{"action":"announce","info_hash":"{h}","peer_id":"{}","to_peer_id":"{}","answer":{{"type":"answer","sdp":"x"}},"offer_id":"{offer_id}"}}"#,
            id("peer-w", i),
            id("peer-w", 0)
        ));
    }
    let mut answered = std::collections::HashSet::new();
    while answered.len() < 15 {
        let m = peers[0].recv();
        if m.contains("\"answer\"") {
            answered.insert(string(&m, "peer_id").unwrap().to_owned());
        }
    }
    assert_eq!(
        metric(&t, "ferrotracker_webtorrent_relayed_total{kind=\"answer\"}"),
        15
    );
}

#[test]
fn wss_on_the_tls_listener() {
    let pki = TestPki::new();
    let cert = pki.issue("server", common::tls::KeyType::EcdsaP256);
    let t = Tracker::start_expecting(
        &[],
        Some(&format!(
            "listen.tcp 127.0.0.1:0\nlisten.tls 127.0.0.1:0\ntls.certificate {}\ntls.private_key {}\n",
            cert.certificate.display(),
            cert.private_key.display()
        )),
        2,
    );
    let addr = t.https4();
    let stream = pki.client().connect(addr).stream;
    let url = format!("wss://{addr}/announce");
    let (ws, resp) = tungstenite::client::client(url.as_str(), stream).expect("wss handshake");
    assert_eq!(resp.status(), 101);
    let mut c = Client { ws };
    let h = id("hash-s", 1);
    let r = c.announce(&h, &id("peer-s", 0), "");
    assert_eq!(num(&r, "incomplete"), 1);
    // A plain ws:// peer of the same torrent sees it.
    let mut p = connect(t.http4(), "/announce");
    assert_eq!(p.scrape(&h), (0, 1));
}

#[test]
fn udp_http_and_webtorrent_peers_scrape_together() {
    let t = tracker("");
    let h = id("hash-u", 1);
    let hb: [u8; 20] = h.as_bytes().try_into().unwrap();
    let mut ws = connect(t.http4(), "/announce");
    ws.announce(&h, &id("peer-u", 0), "");
    http_get(t.http4(), &announce_target(&hb, 7002, 0, ""));
    let mut udp = Udp::new(t.udp4());
    udp.announce(&hb, 7003, 5, Event::Started, 10);
    assert_eq!(ws.scrape(&h), (1, 2));
    let r = http_get(t.http4(), &format!("/scrape?info_hash={h}"));
    let e = r.scrape();
    assert_eq!((e[0].1.complete, e[0].1.incomplete), (1, 2));
}

/// A client that sends and never reads: its announces still reach the swarm (the tracker keeps
/// reading it), while the replies it does not read are dropped once `webtorrent.max_backlog`
/// waits to be sent, so what the tracker holds for it stays bounded.
#[test]
fn a_client_that_does_not_read_still_announces_and_its_replies_are_dropped() {
    let t = tracker("webtorrent.max_backlog 4096\n");
    let h = id("hash-s", 1);
    let mut reader = connect(t.http4(), "/announce");
    reader.announce(&h, &id("peer-r", 0), "");
    let mut slow = connect(t.http4(), "/announce");
    slow.announce(&h, &id("peer-s", 0), "");
    // Scrapes of 64 torrents: 1.6 KB each, with 4.5 KB replies. 13 MB of replies is more
    // than the socket buffers take for a client that does not read (a few MB on loopback).
    let scrape = scrape_of_64("scrape-s");
    let last = format!(
        r#"{{"action":"announce","info_hash":"{h}","peer_id":"{}","left":1,"numwant":1{}}}"#,
        id("peer-s", 0),
        offers(1, "s")
    );
    let writer = std::thread::spawn(move || {
        // Errors (a write timeout while the tracker does not read) end the sending: the
        // reader's wait for the offer below then fails the test.
        for _ in 0..3000 {
            if slow.ws.send(Message::text(scrape.as_str())).is_err() {
                return;
            }
        }
        let _ = slow.ws.send(Message::text(last.as_str()));
        // Held open until the offer is checked.
        std::thread::sleep(2 * IO_TIMEOUT);
    });
    let m = next_offer(&mut reader);
    assert_eq!(string(&m, "peer_id"), Some(id("peer-s", 0).as_str()));
    assert!(metric(&t, "ferrotracker_webtorrent_replies_dropped_total") > 0);
    drop(writer);
}

/// `webtorrent.ping_after`: a client that sent nothing for that long gets a ping.
#[test]
fn a_quiet_client_is_pinged_after_webtorrent_ping_after() {
    let t = tracker("webtorrent.ping_after 5\n");
    let mut c = connect(t.http4(), "/announce");
    c.announce(&id("hash-p", 1), &id("peer-p", 0), "");
    let start = std::time::Instant::now();
    c.ws.get_mut()
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    match c.ws.read().expect("a ping before the read timeout") {
        Message::Ping(_) => {}
        m => panic!("unexpected message {m:?}"),
    }
    // The tracker checks its deadlines twice a second.
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(4), "pinged after {waited:?}");
}

/// A connection that received many offers can still answer the older ones within the window
/// (up to `webtorrent.offers_remembered`), not only the last few.
#[test]
fn an_answer_to_an_offer_a_hundred_offers_back_is_relayed() {
    let t = tracker("webtorrent.offers_remembered 128\n");
    let h = id("hash-m", 1);
    let mut a = connect(t.http4(), "/announce");
    let mut b = connect(t.http4(), "/announce");
    b.announce(&h, &id("peer-b", 0), "");
    a.announce(&h, &id("peer-a", 0), "");
    // 100 offers from A, each to B (the only other peer), each with its own offer_id.
    let mut ids = Vec::new();
    for i in 0..100 {
        a.announce(&h, &id("peer-a", 0), &offers(1, &format!("m{i}")));
        ids.push(string(&next_offer(&mut b), "offer_id").unwrap().to_owned());
    }
    let answer = |offer_id: &str| {
        format!(
            r#"{{"action":"announce","info_hash":"{h}","peer_id":"{}","to_peer_id":"{}","answer":{{"type":"answer","sdp":"x"}},"offer_id":"{offer_id}"}}"#,
            id("peer-b", 0),
            id("peer-a", 0)
        )
    };
    // The first offer, answered last: relayed to A.
    b.send(&answer(&ids[0]));
    let got = loop {
        let m = a.recv();
        if m.contains("\"answer\"") {
            break m;
        }
    };
    assert_eq!(string(&got, "offer_id"), Some(ids[0].as_str()));
    assert_eq!(
        metric(
            &t,
            "ferrotracker_webtorrent_answers_dropped_total{reason=\"refused\"}"
        ),
        0
    );
}

/// A client that reads slowly loses its own replies before the offers relayed to it: once half
/// of `webtorrent.max_backlog` waits for it, its replies are dropped, while an offer still goes
/// in (an offer is a connection it can make; a reply is counts it will have again).
#[test]
fn a_slow_client_gets_offers_after_its_own_replies_are_dropped() {
    let t = tracker("webtorrent.max_backlog 16384\n");
    let h = id("hash-q", 1);
    let mut slow = connect(t.http4(), "/announce");
    slow.announce(&h, &id("peer-q", 0), "");
    let mut offerer = connect(t.http4(), "/announce");
    offerer.announce(&h, &id("peer-q", 1), "");
    // Scrapes of 64 torrents, 4.5 KB replies each, sent without reading, one at a time (so
    // that each reply meets the backlog as it is then): 13 MB of replies, more than the socket
    // buffers of a client that does not read take (a few MB on loopback).
    let scrape = scrape_of_64("scrape-q");
    for _ in 0..3000 {
        slow.send(&scrape);
        std::thread::sleep(Duration::from_micros(300));
    }
    let scrapes = r#"ferrotracker_requests_total{proto="websocket",kind="scrape"}"#;
    let deadline = std::time::Instant::now() + 2 * IO_TIMEOUT;
    while metric(&t, scrapes) < 3000 {
        assert!(std::time::Instant::now() < deadline, "scrapes not all read");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(metric(&t, "ferrotracker_webtorrent_replies_dropped_total") > 0);
    // The slow client's only peer offers: the offer goes in behind the replies it has.
    offerer.announce(&h, &id("peer-q", 1), &offers(1, "q"));
    let m = next_offer(&mut slow);
    assert_eq!(string(&m, "peer_id"), Some(id("peer-q", 1).as_str()));
    assert_eq!(
        metric(&t, "ferrotracker_webtorrent_relays_dropped_total"),
        0
    );
}

/// A client that sends many requests at once and reads their replies gets every reply, even
/// when they add up to more than `webtorrent.max_backlog`: the socket takes them as they come.
#[test]
fn replies_to_requests_sent_at_once_are_all_delivered() {
    let t = tracker("webtorrent.max_backlog 16384\n");
    let mut c = connect(t.http4(), "/announce");
    let scrape = scrape_of_64("scrape-p");
    // 40 replies of 4.5 KB: 180 KB, eleven times the backlog.
    for _ in 0..40 {
        c.send(&scrape);
    }
    for i in 0..40 {
        assert!(c.recv().contains("\"files\""), "reply {i}");
    }
    assert_eq!(
        metric(&t, "ferrotracker_webtorrent_replies_dropped_total"),
        0
    );
}

/// A one-worker tracker with three WebSocket peers (`peer-TAG` 0..3) in torrent `hash-TAG`,
/// then stopped (SIGSTOP), so that what the peers send next waits for `SIGCONT`.
fn three_peers_stopped(tag: &str) -> (Tracker, String, Vec<Client<TcpStream>>) {
    let t = tracker("tracker.workers 1\n");
    let h = id(&format!("hash-{tag}"), 1);
    let mut peers: Vec<_> = (0..3).map(|_| connect(t.http4(), "/announce")).collect();
    for (i, p) in peers.iter_mut().enumerate() {
        p.announce(&h, &id(&format!("peer-{tag}"), i), "");
    }
    signal(&t, libc::SIGSTOP);
    // The stop takes effect as the tracker's threads next run: before anything is sent.
    std::thread::sleep(Duration::from_millis(50));
    (t, h, peers)
}

fn signal(t: &Tracker, sig: libc::c_int) {
    // SAFETY: kill(2) takes no pointer; the tracker is our own child, not yet reaped.
    let rc = unsafe { libc::kill(t.pid() as libc::pid_t, sig) };
    assert_eq!(rc, 0);
}

/// A client with a deep queue of messages does not hold the worker: each connection is read
/// `FRAMES_PER_TURN` frames at a time, so two clients' announces, queued while the tracker
/// was stopped, reach a third peer as offers interleaved, not one client's all first.
#[test]
fn connections_with_queued_messages_take_turns() {
    let (t, h, mut peers) = three_peers_stopped("t");
    // 300 announces each, every one with two offers: one to the other sender, one to peer 2.
    for (i, p) in peers.iter_mut().take(2).enumerate() {
        for _ in 0..300 {
            p.send(&format!(
                r#"{{"action":"announce","info_hash":"{h}","peer_id":"{}","left":1,"numwant":2{}}}"#,
                id("peer-t", i),
                offers(2, "t")
            ));
        }
    }
    signal(&t, libc::SIGCONT);
    let mut from = Vec::new();
    while from.len() < 600 {
        let m = next_offer(&mut peers[2]);
        from.push(string(&m, "peer_id").expect("offerer").to_owned());
    }
    let runs = 1 + from.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(runs >= 6, "offers came in {runs} runs");
}

/// Frames as RFC 6455 allows a client to send them, written raw: a message split across
/// writes, a fragmented message with a ping between its fragments; and frames it forbids: an
/// unmasked frame closes with 1002, text that is not UTF-8 with 1007.
#[test]
fn raw_frames_are_read_as_rfc_6455_says() {
    use ferrotracker_proto::websocket::{self, OP_CONTINUE, OP_PING, OP_TEXT};
    let t = tracker("");
    let h = id("hash-f", 1);
    let mask = [1, 2, 3, 4];
    let scrape = format!(r#"{{"action":"scrape","info_hash":"{h}"}}"#);
    let mut c = connect(t.http4(), "/announce");
    // Split inside the header, then inside the payload.
    let mut f = Vec::new();
    websocket::write_client_frame(&mut f, OP_TEXT, true, scrape.as_bytes(), mask);
    for part in [&f[..1], &f[1..9], &f[9..]] {
        c.ws.get_mut().write_all(part).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(c.recv().contains("\"files\""));
    // Three fragments with a ping between the first two.
    let (a, b) = scrape.split_at(10);
    let (b, d) = b.split_at(5);
    let mut f = Vec::new();
    websocket::write_client_frame(&mut f, OP_TEXT, false, a.as_bytes(), mask);
    websocket::write_client_frame(&mut f, OP_PING, true, b"are you there", mask);
    websocket::write_client_frame(&mut f, OP_CONTINUE, false, b.as_bytes(), mask);
    websocket::write_client_frame(&mut f, OP_CONTINUE, true, d.as_bytes(), mask);
    c.ws.get_mut().write_all(&f).unwrap();
    match c.ws.read().unwrap() {
        Message::Pong(p) => assert_eq!(&p[..], b"are you there"),
        m => panic!("not the pong: {m:?}"),
    }
    assert!(c.recv().contains("\"files\""));
    // Forbidden frames.
    let mut unmasked = Vec::new();
    websocket::write_text(&mut unmasked, scrape.as_bytes());
    let mut bad_utf8 = Vec::new();
    websocket::write_client_frame(&mut bad_utf8, OP_TEXT, true, b"{\"a\":\"\xFF\"}", mask);
    for (frame, code) in [
        (unmasked, CloseCode::Protocol),
        (bad_utf8, CloseCode::Invalid),
    ] {
        let mut c = connect(t.http4(), "/announce");
        c.ws.get_mut().write_all(&frame).unwrap();
        assert_eq!(c.close_code(), Some(code));
    }
}

/// Every frame counts against a connection's turn, not only messages: a client that queued a
/// stream of pings before its announce does not keep the worker from another client's
/// announce, queued after it.
#[test]
fn a_stream_of_pings_does_not_hold_the_worker() {
    use ferrotracker_proto::websocket::{self, OP_PING};
    let (t, h, mut peers) = three_peers_stopped("g");
    let announce = |i: usize| {
        format!(
            r#"{{"action":"announce","info_hash":"{h}","peer_id":"{}","left":1,"numwant":2{}}}"#,
            id("peer-g", i),
            offers(2, "g")
        )
    };
    // Peer 0: 5,000 pings, then two offers (one to each other peer). Then peer 1: two offers.
    let mut pings = Vec::new();
    for _ in 0..5000 {
        websocket::write_client_frame(&mut pings, OP_PING, true, b"", [9, 8, 7, 6]);
    }
    peers[0].ws.get_mut().write_all(&pings).unwrap();
    peers[0].send(&announce(0));
    std::thread::sleep(Duration::from_millis(100));
    peers[1].send(&announce(1));
    signal(&t, libc::SIGCONT);
    // Peer 2 gets one offer from each, peer 1's first: peer 0's turn ended within its pings.
    let first = string(&next_offer(&mut peers[2]), "peer_id").map(str::to_owned);
    assert_eq!(
        first.as_deref(),
        Some(id("peer-g", 1).as_str()),
        "peer 0's offer came first"
    );
}

/// A client frame written by hand: first byte `b0` (FIN, RSV, opcode), the payload's length in
/// the `form` (0: 7-bit, 2: 16-bit, 8: 64-bit, whatever the length), masked.
fn raw_frame(b0: u8, form: usize, payload: &[u8]) -> Vec<u8> {
    let mask = [3, 1, 4, 1];
    let mut f = vec![b0];
    match form {
        0 => f.push(0x80 | payload.len() as u8),
        2 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        _ => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(payload.len() as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    f
}

/// What tungstenite accepted and refused, frame by frame: lengths in a longer form than needed,
/// a message of exactly `webtorrent.max_message` bytes, an empty one, a 125-byte ping (echoed),
/// a pong nobody asked for; a close echoed with its code (with or without a reason); and the
/// close codes of frames RFC 6455 forbids.
#[test]
fn frames_at_the_edges_of_rfc_6455() {
    use ferrotracker_proto::websocket::{OP_CLOSE, OP_CONTINUE, OP_PING, OP_PONG, OP_TEXT};
    let t = tracker("webtorrent.max_message 4096\n");
    let h = id("hash-e", 1);
    let scrape = format!(r#"{{"action":"scrape","info_hash":"{h}"}}"#);
    let fin = 0x80;
    let mut c = connect(t.http4(), "/announce");
    for form in [2, 8] {
        c.ws.get_mut()
            .write_all(&raw_frame(fin | OP_TEXT, form, scrape.as_bytes()))
            .unwrap();
        assert!(c.recv().contains("\"files\""), "length form {form}");
    }
    // Exactly max_message bytes: the scrape padded with spaces (JSON allows them).
    let mut full = scrape.clone().into_bytes();
    full.resize(4096, b' ');
    c.ws.get_mut()
        .write_all(&raw_frame(fin | OP_TEXT, 2, &full))
        .unwrap();
    assert!(c.recv().contains("\"files\""));
    c.ws.get_mut()
        .write_all(&raw_frame(fin | OP_TEXT, 0, b""))
        .unwrap();
    assert!(c.recv().contains("failure reason"));
    let ping = [7u8; 125];
    let mut f = raw_frame(fin | OP_PONG, 0, b"unasked");
    f.extend(raw_frame(fin | OP_PING, 0, &ping));
    c.ws.get_mut().write_all(&f).unwrap();
    match c.ws.read().unwrap() {
        Message::Pong(p) => assert_eq!(&p[..], &ping[..]),
        m => panic!("not the pong: {m:?}"),
    }
    // A close with a reason, then a text frame: the close is echoed, the text not read.
    let mut f = raw_frame(fin | OP_CLOSE, 0, b"\x0b\xb8going");
    f.extend(raw_frame(fin | OP_TEXT, 0, scrape.as_bytes()));
    c.ws.get_mut().write_all(&f).unwrap();
    assert_eq!(c.close_code(), Some(CloseCode::from(3000)));
    let mut over = full.clone();
    over.push(b' ');
    for (frame, code) in [
        (raw_frame(fin | OP_TEXT, 2, &over), CloseCode::Size),
        (
            raw_frame(fin | 0x40 | OP_TEXT, 0, b"{}"),
            CloseCode::Protocol,
        ),
        (raw_frame(fin | OP_CONTINUE, 0, b"{}"), CloseCode::Protocol),
        (raw_frame(fin | 0x3, 0, b"{}"), CloseCode::Protocol),
        (raw_frame(OP_PING, 0, b""), CloseCode::Protocol),
        (
            raw_frame(fin | OP_CLOSE, 0, b"\x03\xed"),
            CloseCode::Protocol,
        ),
        (raw_frame(fin | OP_CLOSE, 0, b"\x03"), CloseCode::Protocol),
        (
            raw_frame(fin | OP_CLOSE, 0, b"\x03\xe8\xff"),
            CloseCode::Invalid,
        ),
    ] {
        let mut c = connect(t.http4(), "/announce");
        c.ws.get_mut().write_all(&frame).unwrap();
        assert_eq!(c.close_code(), Some(code), "{:02x?}", &frame[..2]);
    }
    // A close with no code is answered by one with none.
    let mut c = connect(t.http4(), "/announce");
    c.ws.get_mut()
        .write_all(&raw_frame(fin | OP_CLOSE, 0, b""))
        .unwrap();
    assert_eq!(c.close_code(), None);
}

/// A client that is closed while it is still sending (a message over `webtorrent.max_message`
/// announced and on its way) gets the close frame, not a connection reset: the tracker does
/// not close a socket with unread bytes in it.
#[test]
fn a_client_closed_mid_message_gets_the_close_frame() {
    use ferrotracker_proto::websocket::OP_TEXT;
    let t = tracker("webtorrent.max_message 4096\n");
    let mut c = connect(t.http4(), "/announce");
    let frame = raw_frame(0x80 | OP_TEXT, 8, &vec![b' '; 1 << 20]);
    // The tracker stops reading at the header: what it leaves may not fit the socket buffers.
    let mut w = c.ws.get_ref().try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&frame);
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.close_code(), Some(CloseCode::Size));
    drop(c);
    writer.join().unwrap();
}

/// A frame of `webtorrent.max_message` bytes sent a few bytes at a time (its bytes are kept
/// apart from the worker's buffer until it is whole) is read as one message, and the frames
/// after it in the same write are read too.
#[test]
fn a_large_frame_sent_a_few_bytes_at_a_time_is_read_whole() {
    use ferrotracker_proto::websocket::OP_TEXT;
    let t = tracker("webtorrent.max_message 65536\n");
    let h = id("hash-t", 1);
    let scrape = format!(r#"{{"action":"scrape","info_hash":"{h}"}}"#);
    let mut full = scrape.clone().into_bytes();
    full.resize(65536, b' ');
    let mut bytes = raw_frame(0x80 | OP_TEXT, 8, &full);
    let rest = bytes.split_off(bytes.len() - 3000);
    let mut c = connect(t.http4(), "/announce");
    for piece in bytes.chunks(7000).chain(rest.chunks(1000)) {
        c.ws.get_mut().write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut two = raw_frame(0x80 | OP_TEXT, 0, scrape.as_bytes());
    two.extend(raw_frame(0x80 | OP_TEXT, 2, scrape.as_bytes()));
    c.ws.get_mut().write_all(&two).unwrap();
    for _ in 0..3 {
        assert!(c.recv().contains("\"files\""));
    }
}
