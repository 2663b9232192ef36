//! Client addresses of HTTP announces: the client a header names (`client_ip::forwarded_client`
//! over `ClientHeader::nodes`, for each `ProxyHeader`), `ip=` values (`client_ip::parse_ip`), the
//! choice between them (`Rules::choose`) and the address stats access is decided on
//! (`Rules::stats_reader`).
//!
//! The input is the header's lines (separated by `\n`), then optionally `\0` and an `ip=`
//! value; the same lines are read as each of the five headers. Beyond "no panic": every address
//! that comes out is canonical (never v4-mapped); a forwarded client is one of the header's
//! nodes, the rightmost untrusted one, and is trusted only if every node is; a single-address
//! header names its one address only when given once; an untrusted socket's header is never
//! believed.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ferrotracker_core::client_ip::{self, Rules, StatsReader};
use ferrotracker_core::nets::{Net, Nets};
use ferrotracker_proto::forwarded::{ClientHeader, Node, ProxyHeader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (value, ip_param) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let proxies = Nets(vec![
        Net::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), 8),
        Net::new(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0)), 8),
    ]);

    if let Some(v) = ip_param {
        if let Some(ip) = client_ip::parse_ip(v) {
            assert_eq!(ip, ip.to_canonical());
        }
    }

    let lines: Vec<&[u8]> = value.split(|&b| b == b'\n').collect();
    for header in ProxyHeader::ALL {
        let h = ClientHeader::from_lines(header, &lines);
        check(&h, &proxies, ip_param);
    }
});

fn check(h: &ClientHeader<'_>, proxies: &Nets, ip_param: Option<&[u8]>) {
    let nodes: Vec<Node> = h.nodes().collect();
    if !h.header().is_list() {
        assert_eq!(nodes.len(), 1);
        if h.line_count() != 1 {
            assert_eq!(nodes, [Node::Unknown], "a repeated header names no one");
        }
    }
    let client = client_ip::forwarded_client(h, proxies);
    if let Some(ip) = client {
        assert_eq!(ip, ip.to_canonical());
        // The rightmost node that is not a trusted address, or the leftmost if all are.
        let stop = nodes
            .iter()
            .rposition(|n| !matches!(n, Node::Ip(ip) if proxies.contains(*ip)));
        match stop {
            Some(i) => assert_eq!(nodes[i], Node::Ip(ip)),
            None => assert_eq!(nodes.first(), Some(&Node::Ip(ip))),
        }
    } else {
        assert!(nodes.is_empty() || nodes.iter().any(|n| *n == Node::Unknown));
    }

    let proxy = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
    let outsider = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 9).to_ipv6_mapped());
    for allow_ip_param in [false, true] {
        let rules = Rules {
            proxies: proxies.clone(),
            allow_ip_param,
            header: h.header(),
        };
        for socket in [proxy, outsider] {
            match rules.choose(socket, h, ip_param) {
                Ok(ip) => {
                    assert_eq!(ip, ip.to_canonical());
                    if !(allow_ip_param && ip_param.is_some()) {
                        if socket == outsider {
                            assert_eq!(ip, socket.to_canonical(), "header believed from outside");
                        } else {
                            assert_eq!(ip, client.unwrap_or(proxy));
                        }
                    }
                }
                Err(_) => assert!(allow_ip_param && ip_param.is_some()),
            }
        }
    }

    // Stats access: the client an announce without `ip=` would get, except that a proxy's
    // header naming no client gives none (never the proxy's own address); an outsider's
    // header is never believed.
    let rules = Rules {
        proxies: proxies.clone(),
        allow_ip_param: true,
        header: h.header(),
    };
    assert_eq!(
        rules.stats_reader(outsider, h),
        StatsReader::Direct(outsider.to_canonical())
    );
    match rules.stats_reader(proxy, h) {
        StatsReader::Forwarded(ip) => {
            assert_eq!(Ok(ip), rules.choose(proxy, h, None));
            assert!(!ip.is_loopback() || proxy.is_loopback());
        }
        StatsReader::Proxy(ip) => {
            assert!(h.is_empty());
            assert_eq!(ip, proxy.to_canonical());
        }
        StatsReader::Nobody => assert!(!h.is_empty()),
        StatsReader::Direct(_) => panic!("a proxy read as direct"),
    }
}
