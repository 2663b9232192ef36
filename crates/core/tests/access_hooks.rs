//! The handlers' access-list and client-address hooks, in memory: what an HTTP or UDP announce
//! gets back for a refused hash, and which address an announce is recorded under.

use std::net::SocketAddr;
use std::sync::Arc;

use ferrotracker_core::access::{Access, HashList, Mode};
use ferrotracker_core::client_ip::Rules;
use ferrotracker_core::nets::{Net, Nets};
use ferrotracker_core::{Settings, Tracker, Worker};
use ferrotracker_proto::forwarded::ProxyHeader;
use ferrotracker_proto::http::{parse_request, Parsed};
use ferrotracker_proto::udp::{self, AnnounceRequest, Response};
use ferrotracker_proto::{Event, InfoHash, PeerId};

const NOW: u32 = 1_700_000_000;
const REFUSED: &[u8] =
    b"d14:failure reason63:Requested download is not authorized for use with this tracker.e";

fn tracker(access: Access, rules: Rules) -> Tracker {
    let settings = Settings {
        access: Arc::new(access),
        client_ip: rules,
        ..Settings::default()
    };
    Tracker::new(settings, [7; 16])
}

fn pct(h: &InfoHash) -> String {
    h.0.iter().map(|b| format!("%{b:02x}")).collect()
}

/// The body of the reply to `GET target` with `extra` header lines, from `client`.
fn http(t: &Tracker, w: &mut Worker, client: &str, target: &str, extra: &str) -> Vec<u8> {
    let raw = format!("GET {target} HTTP/1.1\r\nHost: t\r\n{extra}\r\n");
    // Framed as the server frames it, keeping the configured client header.
    let Ok(Parsed::Complete(req)) = parse_request(raw.as_bytes(), t.settings.client_ip.header)
    else {
        panic!("bad test request {raw:?}");
    };
    let mut out = Vec::new();
    t.handle_http(w, &req, client.parse().unwrap(), NOW, &mut out);
    let split = out.windows(4).position(|x| x == b"\r\n\r\n").unwrap() + 4;
    out.split_off(split)
}

fn announce(h: &InfoHash, port: u16, extra: &str) -> String {
    format!("/announce?info_hash={}&port={port}&left=0{extra}", pct(h))
}

fn udp_announce(t: &Tracker, w: &mut Worker, h: InfoHash, event: Event) -> Vec<u8> {
    let client: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let mut pkt = Vec::new();
    let mut out = Vec::new();
    udp::encode_connect(&mut pkt, 1);
    t.handle_udp(w, &pkt, client, NOW, &mut out);
    let Ok(Response::Connect { connection_id, .. }) = udp::parse_response(&out) else {
        panic!("no connect reply: {out:?}");
    };
    pkt.clear();
    udp::encode_announce(
        &mut pkt,
        &AnnounceRequest {
            connection_id,
            transaction_id: 0xabcd,
            info_hash: h,
            peer_id: PeerId([1; 20]),
            downloaded: 0,
            left: 0,
            uploaded: 0,
            event,
            ip: 0,
            key: 0,
            num_want: -1,
            port: 6881,
        },
    );
    t.handle_udp(w, &pkt, client, NOW, &mut out);
    out
}

#[test]
fn refused_hashes_get_opentrackers_replies() {
    let (a, b) = (InfoHash([1; 20]), InfoHash([2; 20]));
    let t = tracker(
        Access::new(Mode::White, HashList::from(vec![a])),
        Rules::default(),
    );
    let mut w = Worker::new(1);
    assert!(http(&t, &mut w, "10.0.0.1", &announce(&a, 1, ""), "").starts_with(b"d8:complete"));
    assert_eq!(
        http(&t, &mut w, "10.0.0.1", &announce(&b, 1, ""), ""),
        REFUSED
    );
    // Stopped and scrapes are not checked.
    let stopped = http(
        &t,
        &mut w,
        "10.0.0.1",
        &announce(&b, 1, "&event=stopped"),
        "",
    );
    assert!(stopped.ends_with(b"5:peers0:e"), "{stopped:?}");
    let scrape = http(
        &t,
        &mut w,
        "10.0.0.1",
        &format!("/scrape?info_hash={}", pct(&b)),
        "",
    );
    assert_eq!(scrape, b"d5:filesdee");

    assert_eq!(
        udp_announce(&t, &mut w, a, Event::Started).len(),
        20 + 2 * 6,
        "the HTTP and the UDP peer"
    );
    assert_eq!(
        udp_announce(&t, &mut w, b, Event::Started),
        [0, 0, 0, 1, 0, 0, 0xab, 0xcd]
    );
    assert_eq!(udp_announce(&t, &mut w, b, Event::Stopped).len(), 20);

    // The list is swapped in place: the next announce sees the new one.
    t.settings.access.replace(HashList::from(vec![b]));
    assert_eq!(
        http(&t, &mut w, "10.0.0.1", &announce(&a, 1, ""), ""),
        REFUSED
    );
    assert_eq!(udp_announce(&t, &mut w, b, Event::Started).len(), 20 + 6);
}

/// The compact IPv4 peers of a numwant=50 announce.
fn peers(body: &[u8]) -> Vec<[u8; 6]> {
    let at = body.windows(7).position(|x| x == b"5:peers").unwrap() + 7;
    let colon = at + body[at..].iter().position(|&c| c == b':').unwrap();
    let n: usize = std::str::from_utf8(&body[at..colon])
        .unwrap()
        .parse()
        .unwrap();
    body[colon + 1..colon + 1 + n]
        .chunks(6)
        .map(|c| c.try_into().unwrap())
        .collect()
}

#[test]
fn announces_are_recorded_under_the_chosen_address() {
    let h = InfoHash([3; 20]);
    let rules = Rules {
        proxies: Nets(vec![Net::parse("192.168.0.0/16").unwrap()]),
        allow_ip_param: true,
        header: ProxyHeader::XForwardedFor,
    };
    let t = tracker(Access::open(), rules);
    let mut w = Worker::new(2);
    let xff = "X-Forwarded-For: 6.6.6.6, 9.9.9.9, 192.168.1.1\r\n";
    // From the proxy (v4-mapped, as a dual-stack socket reports it).
    http(
        &t,
        &mut w,
        "::ffff:192.168.0.1",
        &announce(&h, 0x0101, ""),
        xff,
    );
    // From elsewhere: header ignored.
    http(&t, &mut w, "10.0.0.2", &announce(&h, 0x0202, ""), xff);
    // ip= wins.
    http(
        &t,
        &mut w,
        "10.0.0.3",
        &announce(&h, 0x0303, "&ip=5.5.5.5"),
        xff,
    );
    let bad = http(&t, &mut w, "10.0.0.4", &announce(&h, 0x0404, "&ip=x"), "");
    assert!(bad.starts_with(b"d14:failure reason"), "{bad:?}");

    let body = http(&t, &mut w, "10.0.0.9", &announce(&h, 9, "&numwant=50"), "");
    let mut got = peers(&body);
    got.sort();
    let mut want = vec![
        [9, 9, 9, 9, 1, 1],
        [10, 0, 0, 2, 2, 2],
        [5, 5, 5, 5, 3, 3],
        [10, 0, 0, 9, 0, 9],
    ];
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn the_configured_client_header_and_no_other_names_the_client() {
    // Each header in turn: a proxy sends all five; only the configured one counts.
    let all = "X-Forwarded-For: 1.1.1.1\r\nX-Real-IP: 2.2.2.2\r\nCF-Connecting-IP: 3.3.3.3\r\n\
               True-Client-IP: 4.4.4.4\r\nForwarded: for=6.6.6.6, for=\"5.5.5.5:1\";proto=http\r\n";
    for (header, client) in [
        (ProxyHeader::XForwardedFor, [1, 1, 1, 1]),
        (ProxyHeader::XRealIp, [2, 2, 2, 2]),
        (ProxyHeader::CfConnectingIp, [3, 3, 3, 3]),
        (ProxyHeader::TrueClientIp, [4, 4, 4, 4]),
        (ProxyHeader::Forwarded, [5, 5, 5, 5]),
    ] {
        let h = InfoHash([header as u8 + 10; 20]);
        let rules = Rules {
            proxies: Nets(vec![Net::parse("192.168.0.0/16").unwrap()]),
            allow_ip_param: false,
            header,
        };
        let t = tracker(Access::open(), rules);
        let mut w = Worker::new(2);
        http(&t, &mut w, "192.168.0.1", &announce(&h, 0x0101, ""), all);
        // A repeated single-address header (or an unusable list) names no client: the proxy.
        let name = header.name();
        let of = if header == ProxyHeader::Forwarded {
            "for="
        } else {
            ""
        };
        let twice = format!("{name}: {of}7.7.7.7\r\n{name}: {of}8.8.8.8\r\n");
        let fallback = if header.is_list() {
            [8, 8, 8, 8]
        } else {
            [192, 168, 0, 2]
        };
        http(&t, &mut w, "192.168.0.2", &announce(&h, 0x0202, ""), &twice);
        // Not from a proxy: ignored.
        http(&t, &mut w, "10.0.0.3", &announce(&h, 0x0303, ""), all);

        let body = http(&t, &mut w, "10.0.0.9", &announce(&h, 9, "&numwant=50"), "");
        let mut got = peers(&body);
        got.sort();
        let [a, b, c, d] = client;
        let [e, f, g, i] = fallback;
        let mut want = vec![
            [a, b, c, d, 1, 1],
            [e, f, g, i, 2, 2],
            [10, 0, 0, 3, 3, 3],
            [10, 0, 0, 9, 0, 9],
        ];
        want.sort();
        assert_eq!(got, want, "{header}");
    }
}
