//! Client addresses of HTTP announces: `X-Forwarded-For` values (`client_ip::forwarded_client`),
//! `ip=` values (`client_ip::parse_ip`), the choice between them (`Rules::choose`) and the
//! address stats access is decided on (`Rules::stats_reader`).
//!
//! The input is `X-Forwarded-For` value (`\n` separates header lines for `Rules::choose`), then
//! optionally `\0` and an `ip=` value. Beyond "no
//! panic": every address that comes out is canonical (never v4-mapped), a forwarded client is
//! one of the header's entries and is untrusted unless every entry is trusted, and an
//! untrusted socket's header is never believed.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ferrotracker_core::client_ip::{self, Rules, StatsReader};
use ferrotracker_core::nets::{Net, Nets};
use ferrotracker_proto::http::ForwardedFor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (xff, ip_param) = match data.iter().position(|&b| b == 0) {
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

    if let Some(ip) = client_ip::forwarded_client(xff, &proxies) {
        assert_eq!(ip, ip.to_canonical());
        let single = |e: &[u8]| client_ip::forwarded_client(e, &proxies);
        assert!(
            xff.split(|&b| b == b',').any(|e| single(e) == Some(ip)),
            "not an entry"
        );
        if proxies.contains(ip) {
            // A trusted address comes out only when every entry is a trusted proxy.
            for e in xff.split(|&b| b == b',') {
                assert!(single(e).is_some_and(|x| proxies.contains(x)));
            }
        }
    }

    let lines: Vec<&[u8]> = xff.split(|&b| b == b'\n').collect();
    let forwarded = ForwardedFor::from_lines(&lines);
    let proxy = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
    let outsider = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 9).to_ipv6_mapped());
    for allow_ip_param in [false, true] {
        let rules = Rules {
            proxies: proxies.clone(),
            allow_ip_param,
        };
        for socket in [proxy, outsider] {
            match rules.choose(socket, &forwarded, ip_param) {
                Ok(ip) => {
                    assert_eq!(ip, ip.to_canonical());
                    if socket == outsider && !(allow_ip_param && ip_param.is_some()) {
                        assert_eq!(ip, socket.to_canonical(), "header believed from outside");
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
    };
    assert_eq!(
        rules.stats_reader(outsider, &forwarded),
        StatsReader::Direct(outsider.to_canonical())
    );
    match rules.stats_reader(proxy, &forwarded) {
        StatsReader::Forwarded(ip) => {
            assert_eq!(Ok(ip), rules.choose(proxy, &forwarded, None));
            assert!(!ip.is_loopback() || proxy.is_loopback());
        }
        StatsReader::Proxy(ip) => {
            assert!(forwarded.is_empty());
            assert_eq!(ip, proxy.to_canonical());
        }
        StatsReader::Nobody => assert!(!forwarded.is_empty()),
        StatsReader::Direct(_) => panic!("a proxy read as direct"),
    }
});
