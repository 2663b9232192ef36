//! Hardening, against the real binary over loopback: slow and idle HTTP clients, connection
//! limits, per-address rate limits, hostile UDP datagrams, and shutdown (SIGTERM/SIGINT with
//! requests in flight, SIGKILL in the middle of a statedump).

mod common;

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use ferrotracker_proto::testutil::xorshift;
use ferrotracker_proto::udp as pudp;
use ferrotracker_proto::Event;

fn lo(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A 20-byte info_hash per number, printable in the dump as 40 hex digits.
fn h(n: u32) -> [u8; 20] {
    let mut x = [0x5au8; 20];
    x[..4].copy_from_slice(&n.to_be_bytes());
    x
}

/// One sample of `/metrics` (`name{labels}` exactly as printed), read from 127.0.0.1. Worker
/// counters are read when the page is asked for, so a count is exact as soon as the request it
/// counts has been answered (or, for one dropped unanswered, a later one on the same socket
/// of the one worker): no test waits for them.
fn metric(t: &Tracker, series: &str) -> u64 {
    let r = http_get(t.http4(), "/metrics");
    assert_eq!(r.status, 200, "{}", r.body_str());
    let body = r.body_str();
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{body}"))
}

/// Lets this process (and the tracker it spawns, which inherits it) open as many descriptors
/// as the hard limit allows; returns the new soft limit.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read or write only `lim`, a live rlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

fn connect_from(local: IpAddr, server: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::new(local, 0).into()).unwrap();
    s.connect_timeout(&server.into(), IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect from {local}: {e}"));
    s.into()
}

/// True once the server has closed `s` (EOF or reset); false while it is open.
fn is_closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 256];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
}

#[test]
fn five_thousand_idle_and_slow_connections_do_not_stop_announces_and_are_timed_out() {
    let n = 5000;
    let nofile = raise_nofile();
    assert!(
        nofile >= 2 * n as u64 + 500,
        "open-files limit {nofile} too low for the test"
    );
    let t = Tracker::v4_with_config(
        "http.request_timeout 4\nhttp.idle_timeout 4\nhttp.max_connections_per_ip 1000\ntracker.workers 2\n",
    );
    let server = t.http4();

    // 5,000 connections from ten source addresses (500 each, under the per-address limit):
    // even ones send a request a byte at a time, odd ones say nothing.
    let mut conns: Vec<TcpStream> = Vec::with_capacity(n);
    for i in 0..n {
        let s = connect_from(lo(10 + (i % 10) as u8), server);
        s.set_nonblocking(true).unwrap();
        conns.push(s);
    }
    let opened = Instant::now();
    // Keep-alive connections that finish one request and then idle: closed by the idle timeout.
    let mut idle: Vec<Http> = (0..20)
        .map(|i| {
            let mut c = Http::connect_from(lo(30), server);
            c.get(&announce_target(&h(i), 7000 + i as u16, 1, ""))
                .announce();
            c
        })
        .collect();

    let slow: Vec<TcpStream> = conns
        .iter()
        .step_by(2)
        .map(|s| s.try_clone().unwrap())
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let req =
                b"GET /announce?info_hash=aaaaaaaaaaaaaaaaaaaa&port=1&left=0 HTTP/1.1\r\n\r\n";
            let mut slow = slow;
            let mut at = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for s in slow.iter_mut() {
                    let _ = s.write(&req[at % req.len()..at % req.len() + 1]);
                }
                at += 1;
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };

    // A real client is answered promptly while all of them are open.
    let mut worst = Duration::ZERO;
    for i in 0..20u16 {
        let started = Instant::now();
        let r = http_announce(server, &h(1000), 6000 + i, 1, "");
        worst = worst.max(started.elapsed());
        assert!(r.incomplete >= 1);
        let mut u = Udp::new(t.udp4());
        u.announce(&h(1000), 6100 + i, 1, Event::Started, 10);
    }
    assert!(
        opened.elapsed() < Duration::from_secs(4),
        "the announces ran past the timeouts ({:?}): the flood was not in place",
        opened.elapsed()
    );
    assert!(
        worst < Duration::from_secs(1),
        "slowest announce took {worst:?}"
    );

    // Every flood connection, slow writers included, is closed by request_timeout (4 s, checked
    // every half second, at one-second resolution), and the idle keep-alive ones likewise.
    let deadline = opened + Duration::from_secs(9);
    let mut open: Vec<usize> = (0..n).collect();
    while !open.is_empty() && Instant::now() < deadline {
        open.retain(|&i| !is_closed(&mut conns[i]));
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert!(
        open.is_empty(),
        "{} of {n} connections still open after {:?}",
        open.len(),
        opened.elapsed()
    );
    for c in idle.iter_mut() {
        assert!(
            c.closed_within(Duration::from_secs(3)),
            "idle keep-alive connection left open"
        );
    }
    assert!(metric(&t, r#"ferrotracker_http_timeouts_total{kind="request"}"#) >= n as u64);
    assert!(metric(&t, r#"ferrotracker_http_timeouts_total{kind="idle"}"#) >= 20);
    // Still serving.
    http_announce(server, &h(1000), 6999, 1, "");
}

#[test]
fn connection_limit_per_address_answers_503_and_frees_on_close() {
    let t = Tracker::v4_with_config("http.max_connections_per_ip 3\n");
    let server = t.http4();
    let mut held: Vec<Http> = (0..3).map(|_| Http::connect_from(lo(2), server)).collect();
    for (i, c) in held.iter_mut().enumerate() {
        c.get(&announce_target(&h(1), 7000 + i as u16, 1, ""))
            .announce();
    }
    // The fourth from the same address: a 503 with a reason, then the close.
    let mut c = Http::connect_from(lo(2), server);
    let r = c.read_response();
    assert_eq!(r.status, 503, "{}", r.body_str());
    assert!(r.says_close());
    assert_eq!(
        r.failure_reason().as_deref(),
        Some("too many open connections from your address")
    );
    assert!(c.closed_within(IO_TIMEOUT));
    const PER_IP: &str = r#"ferrotracker_refused_total{limit="connections_per_ip"}"#;
    assert_eq!(metric(&t, PER_IP), 1);
    // Other addresses are served meanwhile.
    let mut other = Http::connect_from(lo(3), server);
    other.get(&announce_target(&h(1), 7100, 1, "")).announce();
    // Closing one frees a slot (once the tracker has seen the close: until then a new
    // connection is refused, and counted, like the fourth).
    held.pop();
    let mut refused = 0;
    let ok = poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
        let mut c = Http::connect_from(lo(2), server);
        c.send(
            format!(
                "GET {} HTTP/1.1\r\n\r\n",
                announce_target(&h(1), 7003, 1, "")
            )
            .as_bytes(),
        );
        let served = c.try_read_response().is_ok_and(|r| r.status == 200);
        refused += u64::from(!served);
        served.then_some(())
    });
    assert!(ok.is_some(), "a slot was not freed by the close");
    assert_eq!(metric(&t, PER_IP), 1 + refused);
}

#[test]
fn total_connection_limit_answers_503() {
    let t = Tracker::v4_with_config("http.max_connections 4\nhttp.max_connections_per_ip 0\n");
    let server = t.http4();
    let mut held: Vec<Http> = (0..4)
        .map(|i| Http::connect_from(lo(20 + i), server))
        .collect();
    for c in held.iter_mut() {
        assert_eq!(c.get("/scrape?info_hash=aaaaaaaaaaaaaaaaaaaa").status, 200);
    }
    let mut c = Http::connect_from(lo(40), server);
    let r = c.read_response();
    assert_eq!(r.status, 503);
    assert_eq!(
        r.failure_reason().as_deref(),
        Some("tracker busy: too many open connections, try again later")
    );
    drop(held.pop());
    // Once the tracker has seen the close, /metrics (one connection) shows the refusals: the
    // fifth connection's, and those of any attempt made before that.
    let mut refused = 1;
    let n = poll_until(Duration::from_secs(5), Duration::from_millis(100), || {
        let mut c = Http::connect(server);
        let r = c.get("/metrics");
        if r.status != 200 {
            refused += 1;
            return None;
        }
        let body = r.body_str();
        body.lines()
            .find_map(|l| l.strip_prefix(r#"ferrotracker_refused_total{limit="connections"} "#))
            .and_then(|v| v.parse::<u64>().ok())
    });
    assert_eq!(n, Some(refused), "refusals counted");
}

#[test]
fn rate_limit_drops_a_noisy_address_while_another_is_served() {
    let t = Tracker::v4_with_config(
        "ratelimit.requests_per_second 5\nratelimit.burst 10\ntracker.workers 1\n",
    );
    // UDP: 300 connects from one address as fast as it can send: about the burst is answered,
    // the rest dropped without a reply.
    let noisy = Udp::bind(lo(2), t.udp4());
    let mut pkt = Vec::new();
    for tid in 0..300u32 {
        pkt.clear();
        pudp::encode_connect(&mut pkt, tid);
        noisy.send_raw(&pkt);
    }
    let mut answered = 0u64;
    let end = Instant::now() + Duration::from_millis(700);
    while noisy.recv_until(end).is_some() {
        answered += 1;
    }
    assert!((5..=20).contains(&answered), "{answered} of 300 answered");

    // Another address is served in full meanwhile.
    let mut quiet = Udp::bind(lo(3), t.udp4());
    let a = quiet.announce(&h(7), 6881, 1, Event::Started, 10);
    assert_eq!(a.leechers, 1);

    // HTTP: a noisy address gets 429s with a reason, another gets its answers.
    let mut codes: HashMap<u16, i64> = HashMap::new();
    for i in 0..30u16 {
        let mut c = Http::connect_from(lo(4), t.http4());
        let r = c.get(&announce_target(&h(7), 7000 + i, 1, ""));
        if r.status == 429 {
            assert_eq!(
                r.failure_reason().as_deref(),
                Some("too many requests from your address, slow down")
            );
            assert!(r.says_close());
        }
        *codes.entry(r.status).or_insert(0) += 1;
    }
    assert!(codes.get(&429).copied().unwrap_or(0) >= 15, "{codes:?}");
    assert!(codes.get(&200).copied().unwrap_or(0) >= 5, "{codes:?}");
    let mut other = Http::connect_from(lo(5), t.http4());
    let r = other.get(&announce_target(&h(7), 7100, 1, ""));
    let served = codes.get(&200).copied().unwrap_or(0);
    assert_eq!(r.announce().incomplete, 2 + served);

    // The one worker read the noisy datagrams before the quiet address's connect and
    // announce (one socket, read in order), so each is counted by now: answered (any answer
    // later than the 700 ms is waiting in the socket) or refused. The kernel may have dropped
    // some of the flood before the tracker saw it: the count of datagrams received says how
    // many it did see.
    while noisy
        .recv_until(Instant::now() + Duration::from_millis(50))
        .is_some()
    {
        answered += 1;
    }
    let udp_refused = metric(
        &t,
        r#"ferrotracker_refused_total{limit="rate",proto="udp"}"#,
    );
    let received = metric(&t, "ferrotracker_udp_packets_total");
    assert_eq!(udp_refused, received - 2 - answered, "{received} received");
    assert!(udp_refused >= 280, "{udp_refused}");
    assert_eq!(
        metric(
            &t,
            r#"ferrotracker_refused_total{limit="rate",proto="http"}"#
        ),
        codes.get(&429).copied().unwrap_or(0) as u64
    );
}

/// Sends `n` connects from `u` back to back and counts the replies (a refused datagram gets
/// none), waiting until the tracker has been quiet for 700 ms.
fn connects_answered(u: &Udp, n: u32) -> usize {
    let mut pkt = Vec::new();
    for tid in 0..n {
        pkt.clear();
        pudp::encode_connect(&mut pkt, tid);
        u.send_raw(&pkt);
    }
    let mut answered = 0;
    while u
        .recv_until(Instant::now() + Duration::from_millis(700))
        .is_some()
    {
        answered += 1;
    }
    answered
}

#[test]
fn a_flood_from_many_addresses_gives_a_noisy_address_no_new_burst() {
    // One address per shard and a slow refill: an address's bucket can only come back full
    // if it is evicted and started afresh, which is what a flood of other addresses causes.
    let t = Tracker::v4_with_config(
        "ratelimit.requests_per_second 1\nratelimit.burst 100\nratelimit.max_addresses 64\n\
         tracker.workers 1\n",
    );
    let noisy = Udp::bind(lo(2), t.udp4());
    let first = connects_answered(&noisy, 150);
    assert!((90..=110).contains(&first), "{first} of 150 answered");

    // The flood: one connect each from 2048 other loopback addresses, far more than the
    // table holds. Each is answered (a newcomer may always send one), so each was tracked.
    let mut flood_answered = 0;
    let mut pkt = Vec::new();
    for i in 0..2048u32 {
        let from = Ipv4Addr::from(0x7f00_1000 + i);
        let u = Udp::bind(from.into(), t.udp4());
        pkt.clear();
        pudp::encode_connect(&mut pkt, i);
        u.send_raw(&pkt);
        if u.recv_until(Instant::now() + IO_TIMEOUT).is_some() {
            flood_answered += 1;
        }
    }
    assert!(flood_answered >= 2000, "{flood_answered} of 2048 answered");

    // Evicted or not, the noisy address is still held to the rate: one newcomer's request,
    // plus one per second the flood took, not the burst of 100 it would get as new.
    let after = connects_answered(&noisy, 100);
    assert!(after <= 30, "{after} of 100 answered after the flood");
}

#[test]
fn hostile_udp_is_refused_or_dropped_counted_and_never_amplified() {
    let t = Tracker::v4_with_config("tracker.workers 1\n");
    let mut honest = Udp::new(t.udp4());
    let cid = honest.connect();

    let mut sent: Vec<Vec<u8>> = Vec::new();
    // Forged connection id.
    let mut forged = honest.announce_request(&h(1), 6881, 1, Event::Started, 50);
    forged.connection_id ^= 0x0123_4567_89ab_cdef;
    forged.transaction_id = 0xf0f0_0001;
    let mut p = Vec::new();
    pudp::encode_announce(&mut p, &forged);
    sent.push(p);
    // Every prefix of a valid announce and of a valid scrape (transaction ids made distinct).
    for len in 0..98 {
        let mut r = honest.announce_request(&h(1), 6881, 1, Event::Started, 50);
        r.transaction_id = 0x1000_0000 + len as u32;
        let mut p = Vec::new();
        pudp::encode_announce(&mut p, &r);
        p.truncate(len);
        sent.push(p);
    }
    for len in 8..36 {
        let mut p = Vec::new();
        pudp::encode_scrape(
            &mut p,
            cid,
            0x2000_0000 + len as u32,
            &[ferrotracker_proto::InfoHash(h(1))],
        );
        p.truncate(len);
        sent.push(p);
    }
    // Garbage of every size up to a jumbo datagram, and an oversized one.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in 0..60usize {
        let len = [
            1, 7, 15, 16, 17, 40, 97, 98, 99, 300, 1200, 1500, 2047, 2048,
        ][i % 14];
        let mut p: Vec<u8> = (0..len).map(|_| xorshift(&mut x) as u8).collect();
        if len >= 16 {
            p[12..16].copy_from_slice(&(0x3000_0000 + i as u32).to_be_bytes());
        }
        sent.push(p);
    }
    let mut big = Vec::new();
    pudp::encode_connect(&mut big, 0x4000_0000);
    big.resize(9000, 0xee);
    sent.push(big);

    let mut len_by_tid = HashMap::new();
    for p in &sent {
        if p.len() >= 16 {
            len_by_tid.insert(u32::from_be_bytes([p[12], p[13], p[14], p[15]]), p.len());
        }
    }
    // Each datagram is followed by a connect, whose answer is awaited: the one worker reads
    // its socket in order, so by then the datagram has been handled (and counted), nothing
    // has been dropped for a full buffer, and any reply to it has come. Replies carry the
    // transaction id at 4..8: none may be larger than its request unless it is a successful
    // connect, announce or scrape.
    let mut replies = 0;
    for (i, p) in sent.iter().enumerate() {
        honest.send_raw(p);
        let sync_tid = 0x5000_0000 + i as u32;
        let mut connect = Vec::new();
        pudp::encode_connect(&mut connect, sync_tid);
        honest.send_raw(&connect);
        let end = Instant::now() + IO_TIMEOUT;
        loop {
            let reply = honest
                .recv_until(end)
                .unwrap_or_else(|| panic!("no answer to the connect after datagram {i}"));
            assert!(reply.len() >= 8, "short reply {reply:?}");
            let tid = u32::from_be_bytes([reply[4], reply[5], reply[6], reply[7]]);
            if tid == sync_tid {
                break;
            }
            replies += 1;
            let action = u32::from_be_bytes([reply[0], reply[1], reply[2], reply[3]]);
            let req_len = *len_by_tid
                .get(&tid)
                .unwrap_or_else(|| panic!("reply for unknown tid {tid:#x}: {reply:?}"));
            assert!(
                reply.len() <= req_len || action != 3,
                "error reply of {} bytes to a {req_len}-byte request",
                reply.len()
            );
            assert_ne!(tid, 0x4000_0000, "an oversized datagram was answered");
        }
    }
    assert!(replies > 0);

    // Replayed: a connection id issued to 127.0.0.1, used from 127.0.0.2.
    let thief = Udp::bind(lo(2), t.udp4());
    let mut stolen = honest.announce_request(&h(1), 6882, 1, Event::Started, 50);
    stolen.connection_id = cid;
    let mut p = Vec::new();
    pudp::encode_announce(&mut p, &stolen);
    let reply = thief.request(&p, stolen.transaction_id);
    assert_eq!(reply, mismatch_packet(stolen.transaction_id, p.len()));

    // Counted, exactly: what the parser refuses (or the tracker cuts: over 2048 bytes, its
    // receive buffer) as bad packets, well-formed requests with another connection id, and
    // the thief's.
    let (mut bad, mut wrong_id) = (0u64, 1u64);
    for p in &sent {
        match pudp::parse_request(p) {
            _ if p.len() > 2048 => bad += 1,
            Err(_) => bad += 1,
            Ok(pudp::Request::Announce(r)) if r.connection_id != cid => wrong_id += 1,
            Ok(pudp::Request::Scrape(r)) if r.connection_id != cid => wrong_id += 1,
            Ok(_) => {}
        }
    }
    assert!(
        bad >= 100 && wrong_id >= 2,
        "{bad} bad, {wrong_id} wrong ids"
    );
    assert_eq!(
        metric(
            &t,
            r#"ferrotracker_errors_total{proto="udp",reason="bad_connection_id"}"#
        ),
        wrong_id
    );
    assert_eq!(
        metric(
            &t,
            r#"ferrotracker_errors_total{proto="udp",reason="bad_packet"}"#
        ),
        bad
    );
    // Still serving.
    let a = honest.announce(&h(1), 6881, 1, Event::Started, 50);
    assert_eq!(a.leechers, 1);
}

fn dump_lines(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().map(str::to_string).collect()
}

/// Every line is `40 hex:minutes:downloaded`; returns the hashes.
fn parse_dump(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "dump cut short");
    text.lines()
        .map(|l| {
            let mut f = l.split(':');
            let hash = f.next().unwrap();
            assert_eq!(hash.len(), 40, "{l:?}");
            assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{l:?}");
            f.next().unwrap().parse::<u64>().unwrap();
            f.next().unwrap().parse::<u64>().unwrap();
            assert!(f.next().is_none(), "{l:?}");
            hash.to_string()
        })
        .collect()
}

fn stop_with_requests_in_flight(sig: libc::c_int) {
    let dir = writable_dir("shutdown");
    let state = dir.path().join("state");
    let t = Tracker::v4_with_config(&format!(
        "tracker.statedump {}\ntracker.statedump_interval 0\ntracker.workers 2\n",
        state.display()
    ));
    let mut t = t;
    let server = t.http4();
    for i in 0..20 {
        http_announce(server, &h(i), 6881, 0, "&event=completed");
    }
    // A request whose head is only partly sent when the signal arrives...
    let mut partial = Http::connect(server);
    let target = announce_target(&h(100), 6881, 1, "");
    let req = format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n");
    let (first, rest) = req.as_bytes().split_at(req.len() / 2);
    partial.send(first);
    // ...and 50 pipelined requests on a keep-alive connection, sent just before it.
    let mut pipelined = Http::connect(server);
    let mut batch = Vec::new();
    for i in 200..250 {
        batch.extend_from_slice(
            format!(
                "GET {} HTTP/1.1\r\nHost: t\r\n\r\n",
                announce_target(&h(i), 6881, 1, "")
            )
            .as_bytes(),
        );
    }
    pipelined.send(&batch);
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: kill(2) takes no pointer; the pid is the harness's running child.
    unsafe {
        libc::kill(t.pid() as libc::pid_t, sig);
    }
    std::thread::sleep(Duration::from_millis(200));
    partial.send(rest);
    let r = partial.read_response();
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(
        r.says_close(),
        "a reply during shutdown says Connection: close"
    );
    assert_eq!(r.announce().incomplete, 1);
    assert!(partial.closed_within(IO_TIMEOUT));
    for _ in 200..250 {
        pipelined.read_response().announce();
    }
    // The first signal already stops it; a repeat is harmless.
    let st = t.stop_with(libc::SIGTERM, Duration::from_secs(15));
    assert!(st.success(), "exit status {st:?}; stderr:\n{}", t.stderr());
    let hashes = parse_dump(&state);
    for i in (0..20).chain([100]).chain(200..250) {
        assert!(
            hashes.contains(&hex(&h(i))),
            "torrent {i} missing from the dump"
        );
    }
    assert!(!dir.path().join("state.tmp").exists());
}

#[test]
fn sigterm_finishes_requests_in_flight_writes_the_dump_and_exits_0() {
    stop_with_requests_in_flight(libc::SIGTERM);
}

#[test]
fn sigint_finishes_requests_in_flight_writes_the_dump_and_exits_0() {
    stop_with_requests_in_flight(libc::SIGINT);
}

#[test]
fn sigkill_in_the_middle_of_a_dump_keeps_the_previous_dump() {
    let n = 300_000u32;
    let dir = writable_dir("killdump");
    let minutes = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60;
    let mut big = String::with_capacity(n as usize * 60);
    for i in 0..n {
        big.push_str(&format!("{}:{minutes}:{}\n", hex(&h(i)), i % 7 + 1));
    }
    let seed = dir.write("seed", &big);
    let state = dir.path().join("state");
    let tmp = dir.path().join("state.tmp");

    for attempt in 0..5 {
        let _ = std::fs::remove_file(&state);
        let seed_arg = seed.display().to_string();
        let mut t = Tracker::start(
            &["-l", &seed_arg, "-i", "127.0.0.1", "-p", "0", "-P", "0"],
            Some(&format!(
                "tracker.statedump {}\ntracker.statedump_interval 1\n",
                state.display()
            )),
        );
        // A first complete dump, then the kill while the next one is being written.
        let first = poll_until(Duration::from_secs(60), Duration::from_millis(20), || {
            (state.exists() && !tmp.exists()).then_some(())
        });
        assert!(first.is_some(), "no dump written; stderr:\n{}", t.stderr());
        let caught = poll_until(Duration::from_secs(10), Duration::from_micros(200), || {
            tmp.exists().then_some(())
        });
        t.stop_with(libc::SIGKILL, Duration::from_secs(5));
        let hashes = parse_dump(&state);
        assert_eq!(hashes.len(), n as usize, "the previous dump is not whole");
        assert_eq!(dump_lines(&state).len(), n as usize);
        if caught.is_some() && tmp.exists() {
            let partial = std::fs::metadata(&tmp).unwrap().len();
            let whole = std::fs::metadata(&state).unwrap().len();
            eprintln!("attempt {attempt}: killed with {partial} of {whole} bytes of the next dump written");
            return;
        }
    }
    panic!("never caught the tracker in the middle of a dump");
}
