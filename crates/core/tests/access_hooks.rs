//! The handlers' access-list and client-address hooks, in memory: what an HTTP or UDP announce
//! gets back for a refused hash, and which address an announce is recorded under.

mod common;

use common::*;
use ferrotracker_core::access::{Access, HashList, Mode};
use ferrotracker_core::client_ip::Rules;
use ferrotracker_core::nets::{Net, Nets};
use ferrotracker_proto::forwarded::ProxyHeader;
use ferrotracker_proto::{Event, InfoHash};

const REFUSED: &[u8] =
    b"d14:failure reason63:Requested download is not authorized for use with this tracker.e";

fn tracker(access: Access, rules: Rules) -> Harness {
    Harness::with_access(access, |c| {
        c.access.proxies = rules.proxies;
        c.access.allow_ip_param = rules.allow_ip_param;
        c.access.proxy_header = rules.header;
    })
}

/// The body of the reply to `GET target` with `extra` header lines, from `client`.
fn http(h: &mut Harness, client: &str, target: &str, extra: &str) -> Vec<u8> {
    h.get_with(client, target, extra).body
}

fn announce(h: &InfoHash, port: u16, extra: &str) -> String {
    announce_target(h, port, 0, extra)
}

/// A UDP announce of port 6881 from 10.0.0.1:5000, after its connect.
fn udp_announce(h: &mut Harness, ih: InfoHash, event: Event) -> Vec<u8> {
    let client = sa("10.0.0.1:5000");
    let connection_id = h.connect(client);
    h.udp(
        client,
        &udp_announce_packet(connection_id, ih, 6881, 0, event, -1),
    )
}

#[test]
fn refused_hashes_get_opentrackers_replies() {
    let (a, b) = (InfoHash([1; 20]), InfoHash([2; 20]));
    let mut t = tracker(
        Access::new(Mode::White, HashList::from(vec![a])),
        Rules::default(),
    );
    assert!(http(&mut t, "10.0.0.1", &announce(&a, 1, ""), "").starts_with(b"d8:complete"));
    assert_eq!(http(&mut t, "10.0.0.1", &announce(&b, 1, ""), ""), REFUSED);
    // Stopped and scrapes are not checked.
    let stopped = http(&mut t, "10.0.0.1", &announce(&b, 1, "&event=stopped"), "");
    assert!(stopped.ends_with(b"5:peers0:e"), "{stopped:?}");
    let scrape = http(&mut t, "10.0.0.1", &scrape_target(&[b]), "");
    assert_eq!(scrape, b"d5:filesdee");

    assert_eq!(
        udp_announce(&mut t, a, Event::Started).len(),
        20 + 2 * 6,
        "the HTTP and the UDP peer"
    );
    assert_eq!(
        udp_announce(&mut t, b, Event::Started),
        [0, 0, 0, 1, 0, 0, 0xab, 0xcd]
    );
    assert_eq!(udp_announce(&mut t, b, Event::Stopped).len(), 20);

    // The list is swapped in place: the next announce sees the new one.
    t.t.access.replace(HashList::from(vec![b]));
    assert_eq!(http(&mut t, "10.0.0.1", &announce(&a, 1, ""), ""), REFUSED);
    assert_eq!(udp_announce(&mut t, b, Event::Started).len(), 20 + 6);
}

/// The compact IPv4 peers of an announce reply.
fn peers(body: &[u8]) -> Vec<[u8; 6]> {
    let peers = parse_announce(body).peers.expect("compact IPv4 peers");
    peers.chunks(6).map(|c| c.try_into().unwrap()).collect()
}

#[test]
fn announces_are_recorded_under_the_chosen_address() {
    let h = InfoHash([3; 20]);
    let rules = Rules {
        proxies: Nets(vec![Net::parse("192.168.0.0/16").unwrap()]),
        allow_ip_param: true,
        header: ProxyHeader::XForwardedFor,
    };
    let mut t = tracker(Access::open(), rules);
    let xff = "X-Forwarded-For: 6.6.6.6, 9.9.9.9, 192.168.1.1\r\n";
    // From the proxy (v4-mapped, as a dual-stack socket reports it).
    http(&mut t, "::ffff:192.168.0.1", &announce(&h, 0x0101, ""), xff);
    // From elsewhere: header ignored.
    http(&mut t, "10.0.0.2", &announce(&h, 0x0202, ""), xff);
    // ip= wins.
    http(
        &mut t,
        "10.0.0.3",
        &announce(&h, 0x0303, "&ip=5.5.5.5"),
        xff,
    );
    let bad = http(&mut t, "10.0.0.4", &announce(&h, 0x0404, "&ip=x"), "");
    assert!(bad.starts_with(b"d14:failure reason"), "{bad:?}");

    let body = http(&mut t, "10.0.0.9", &announce(&h, 9, "&numwant=50"), "");
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
        let mut t = tracker(Access::open(), rules);
        http(&mut t, "192.168.0.1", &announce(&h, 0x0101, ""), all);
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
        http(&mut t, "192.168.0.2", &announce(&h, 0x0202, ""), &twice);
        // Not from a proxy: ignored.
        http(&mut t, "10.0.0.3", &announce(&h, 0x0303, ""), all);

        let body = http(&mut t, "10.0.0.9", &announce(&h, 9, "&numwant=50"), "");
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
