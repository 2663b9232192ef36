//! PROXY protocol (`http.proxy_protocol`) on the HTTP listeners, against the real binary over
//! loopback: trusted proxies (`access.proxy`) must begin with a header whose source is the
//! client; anyone else may not send one and is served as plain HTTP.

mod common;

use std::net::{IpAddr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::thread::sleep;
use std::time::Duration;

use common::*;
use ferrotracker_proto::proxy_protocol::{write_v1, write_v2, V2_SIGNATURE};

/// The trusted proxy's address.
const PROXY: [u8; 4] = [127, 0, 0, 2];
const CONFIG: &str = "access.proxy 127.0.0.2\nhttp.proxy_protocol on\n";
/// How long the server may take to close a connection it refuses.
const CLOSE_WITHIN: Duration = Duration::from_secs(5);

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn v1(source: &str) -> Vec<u8> {
    let mut v = Vec::new();
    write_v1(&mut v, sa(source), sa("127.0.0.1:6969"));
    v
}

fn v2(source: &str) -> Vec<u8> {
    let mut v = Vec::new();
    write_v2(&mut v, sa(source), sa("127.0.0.1:6969"), &[]);
    v
}

/// A version 2 `LOCAL` header (a proxy's health check), no addresses.
fn v2_local() -> Vec<u8> {
    let mut v = V2_SIGNATURE.to_vec();
    v.extend_from_slice(&[0x20, 0x00, 0, 0]);
    v
}

fn announce_request(h: &[u8; 20], port: u16) -> Vec<u8> {
    format!(
        "GET {} HTTP/1.1\r\nHost: t\r\n\r\n",
        announce_target(h, port, 1, "")
    )
    .into_bytes()
}

/// Sends `header` then an announce for `h` on `port` from `from`, expecting a 200.
fn announce_through(t: &Tracker, from: [u8; 4], header: &[u8], h: &[u8; 20], port: u16) {
    let mut c = Http::connect_from(IpAddr::from(from), t.http4());
    c.send(&[header, &announce_request(h, port)].concat());
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.body_str());
}

/// The peers of `h` (both families), asked from 127.0.0.1 without a header.
fn peers_of(t: &Tracker, h: &[u8; 20]) -> (Vec<SocketAddrV4>, Vec<SocketAddrV6>) {
    let r = http_get(t.http4(), &announce_target(h, 7000, 1, "&numwant=50")).announce();
    (r.peers4(), r.peers6())
}

/// `ferrotracker_proxy_protocol_refused_total{reason=...}`, or the headers taken for "headers".
fn metric(t: &Tracker, reason: &str) -> u64 {
    let page = http_get(t.http4(), "/metrics").body_str();
    let prefix = if reason == "headers" {
        "ferrotracker_proxy_protocol_headers_total ".to_string()
    } else {
        format!("ferrotracker_proxy_protocol_refused_total{{reason=\"{reason}\"}} ")
    };
    page.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in /metrics:\n{page}"))
        .parse()
        .unwrap()
}

/// Sends `bytes` from `from` and expects the connection closed without a reply.
fn closed_after(t: &Tracker, from: [u8; 4], bytes: &[u8]) {
    let mut c = Http::connect_from(IpAddr::from(from), t.http4());
    c.send(bytes);
    assert!(c.closed_within(CLOSE_WITHIN), "still open after {bytes:?}");
}

#[test]
fn v1_and_v2_headers_from_a_trusted_proxy_name_the_client() {
    let t = Tracker::v4_with_config(CONFIG);
    let h = hash(41);
    announce_through(&t, PROXY, &v1("192.0.2.10:1000"), &h, 7001);
    announce_through(&t, PROXY, &v2("192.0.2.11:1000"), &h, 7002);
    announce_through(&t, PROXY, &v1("[2001:db8::12]:1000"), &h, 7003);
    announce_through(&t, PROXY, &v2("[2001:db8::13]:1000"), &h, 7004);
    // A v4-mapped source is the IPv4 client.
    announce_through(&t, PROXY, &v2("[::ffff:192.0.2.14]:1000"), &h, 7005);

    let (p4, p6) = peers_of(&t, &h);
    for (ip, port) in [
        ([192, 0, 2, 10], 7001),
        ([192, 0, 2, 11], 7002),
        ([192, 0, 2, 14], 7005),
    ] {
        assert!(p4.contains(&SocketAddrV4::new(ip.into(), port)), "{p4:?}");
    }
    for (ip, port) in [("2001:db8::12", 7003), ("2001:db8::13", 7004)] {
        let want = SocketAddrV6::new(ip.parse().unwrap(), port, 0, 0);
        assert!(p6.contains(&want), "{p6:?}");
    }
    assert!(p4.iter().all(|p| p.ip().octets() != PROXY), "{p4:?}");
    assert_eq!(metric(&t, "headers"), 5);
}

#[test]
fn a_header_over_ipv6_from_a_trusted_proxy_names_the_client() {
    let t = Tracker::start(DUAL, Some("access.proxy ::1\nhttp.proxy_protocol on\n"));
    let h = hash(42);
    let mut c = Http::connect(t.http6());
    c.send(&[v1("192.0.2.20:1000"), announce_request(&h, 7020)].concat());
    assert_eq!(c.read_response().status, 200);
    let (p4, _) = peers_of(&t, &h);
    assert!(
        p4.contains(&SocketAddrV4::new([192, 0, 2, 20].into(), 7020)),
        "{p4:?}"
    );
}

#[test]
fn a_header_a_byte_at_a_time_or_split_across_reads_is_read_whole() {
    let t = Tracker::v4_with_config(CONFIG);
    let h = hash(43);
    for (header, port) in [(v1("192.0.2.30:1"), 7030), (v2("192.0.2.31:1"), 7031)] {
        let mut c = Http::connect_from(IpAddr::from(PROXY), t.http4());
        c.nodelay();
        for b in &header {
            c.send(&[*b]);
            // Separate segments, so that the server reads the header in pieces.
            sleep(Duration::from_millis(2));
        }
        c.send(&announce_request(&h, port));
        assert_eq!(c.read_response().status, 200);
    }
    // Split in the middle, the second part arriving with the request.
    let header = v2("[2001:db8::32]:1");
    let (a, b) = header.split_at(20);
    let mut c = Http::connect_from(IpAddr::from(PROXY), t.http4());
    c.nodelay();
    c.send(a);
    sleep(Duration::from_millis(50));
    c.send(&[b, &announce_request(&h, 7032)].concat());
    assert_eq!(c.read_response().status, 200);

    let (p4, p6) = peers_of(&t, &h);
    assert!(p4.contains(&SocketAddrV4::new([192, 0, 2, 30].into(), 7030)));
    assert!(p4.contains(&SocketAddrV4::new([192, 0, 2, 31].into(), 7031)));
    let want = SocketAddrV6::new("2001:db8::32".parse().unwrap(), 7032, 0, 0);
    assert!(p6.contains(&want), "{p6:?}");
}

#[test]
fn keep_alive_after_the_header_serves_every_request_as_the_client() {
    let t = Tracker::v4_with_config(CONFIG);
    let h = hash(44);
    let mut c = Http::connect_from(IpAddr::from(PROXY), t.http4());
    c.send(&v1("192.0.2.40:1"));
    for port in 7040..7044 {
        let r = c.get(&announce_target(&h, port, 1, ""));
        assert_eq!(r.status, 200);
        assert!(!r.says_close());
    }
    let (p4, _) = peers_of(&t, &h);
    for port in 7040..7044 {
        assert!(p4.contains(&SocketAddrV4::new([192, 0, 2, 40].into(), port)));
    }
}

#[test]
fn local_and_unknown_keep_the_proxy_address() {
    let t = Tracker::v4_with_config(CONFIG);
    let h = hash(45);
    announce_through(&t, PROXY, &v2_local(), &h, 7050);
    announce_through(&t, PROXY, b"PROXY UNKNOWN\r\n", &h, 7051);
    let (p4, _) = peers_of(&t, &h);
    assert!(
        p4.contains(&SocketAddrV4::new(PROXY.into(), 7050)),
        "{p4:?}"
    );
    assert!(
        p4.contains(&SocketAddrV4::new(PROXY.into(), 7051)),
        "{p4:?}"
    );
}

#[test]
fn a_trusted_connection_without_a_valid_header_is_closed_and_counted() {
    let t = Tracker::v4_with_config(CONFIG);
    let h = hash(46);
    closed_after(&t, PROXY, &announce_request(&h, 7060));
    closed_after(&t, PROXY, b"PROXY TCP4 192.0.2.1\r\n");
    closed_after(&t, PROXY, b"PROXY TCP4 192.0.2.1 127.0.0.1 1 2\n");
    let mut bad_version = v2("192.0.2.1:1");
    bad_version[12] = 0x10;
    closed_after(&t, PROXY, &bad_version);
    closed_after(&t, PROXY, &[0xff; 64]);
    assert_eq!(metric(&t, "missing"), 2);
    assert_eq!(metric(&t, "invalid"), 3);
    let (p4, _) = peers_of(&t, &h);
    assert!(p4.iter().all(|p| p.port() != 7060), "{p4:?}");
}

#[test]
fn a_header_from_an_untrusted_address_is_closed_and_a_plain_request_served() {
    let t = Tracker::v4_with_config(CONFIG);
    let h = hash(47);
    let untrusted = [127, 0, 0, 1];
    closed_after(
        &t,
        untrusted,
        &[v1("192.0.2.50:1"), announce_request(&h, 7070)].concat(),
    );
    closed_after(&t, untrusted, &v2("192.0.2.51:1"));
    assert_eq!(metric(&t, "untrusted"), 2);
    // Without a header, served as the socket's address.
    announce_through(&t, untrusted, b"", &h, 7071);
    let (p4, _) = peers_of(&t, &h);
    assert!(
        p4.contains(&SocketAddrV4::new(untrusted.into(), 7071)),
        "{p4:?}"
    );
    assert!(p4.iter().all(|p| p.ip().octets()[0] != 192), "{p4:?}");
}

#[test]
fn a_header_that_does_not_come_in_time_is_closed_and_counted() {
    let t = Tracker::v4_with_config(&format!("{CONFIG}http.request_timeout 1\n"));
    let mut c = Http::connect_from(IpAddr::from(PROXY), t.http4());
    c.send(b"PROXY TCP4 192.0");
    assert!(c.closed_within(CLOSE_WITHIN));
    assert_eq!(metric(&t, "timeout"), 1);
}

#[test]
fn the_per_address_connection_limit_counts_the_client_not_the_proxy() {
    let t = Tracker::v4_with_config(&format!("{CONFIG}http.max_connections_per_ip 2\n"));
    let h = hash(48);
    // Three clients behind one proxy, each connection kept open: the proxy's address is not
    // what the limit counts.
    let mut open = Vec::new();
    for (i, port) in [(1u8, 7080), (2, 7081), (3, 7082)] {
        let mut c = Http::connect_from(IpAddr::from(PROXY), t.http4());
        c.send(&v1(&format!("192.0.2.{i}:1")));
        assert_eq!(c.get(&announce_target(&h, port, 1, "")).status, 200);
        open.push(c);
    }
    // A third connection for one client is over its limit.
    for expect in [200, 503] {
        let mut c = Http::connect_from(IpAddr::from(PROXY), t.http4());
        c.send(&v1("192.0.2.1:2"));
        assert_eq!(c.get(&announce_target(&h, 7083, 1, "")).status, expect);
        open.push(c);
    }
}

#[test]
fn off_by_default_a_header_is_a_bad_request() {
    let t = Tracker::v4_with_config("access.proxy 127.0.0.2\n");
    let h = hash(49);
    let mut c = Http::connect_from(IpAddr::from(PROXY), t.http4());
    c.send(&[v1("192.0.2.60:1"), announce_request(&h, 7090)].concat());
    assert_eq!(c.read_response().status, 400);
}
