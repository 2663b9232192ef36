//! IP networks in opentracker's `ip[/bits]` syntax (`nets::Net::parse`), used by `-A`,
//! `access.stats` and proxies.
//!
//! Beyond "no panic": a parsed net prints as something that parses back to the same net, and
//! contains its own network address; any net built from an address contains that address.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ferrotracker_core::nets::Net;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(net) = Net::parse(&String::from_utf8_lossy(data)) {
        let shown = net.to_string();
        assert_eq!(Net::parse(&shown), Ok(net), "{shown}");
        let (addr, _) = shown.split_once('/').expect("Display writes ip/bits");
        let ip: IpAddr = addr.parse().expect("Display writes an IP literal");
        assert!(net.contains(ip), "{shown}");
    }

    // Nets built from raw bytes: 16 address bytes, then the prefix length.
    if let (Some(a), Some(&bits)) = (data.get(..16), data.get(16)) {
        let v6 = Ipv6Addr::from(<[u8; 16]>::try_from(a).unwrap());
        let v4 = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
        for ip in [IpAddr::V6(v6), IpAddr::V4(v4)] {
            let net = Net::new(ip, bits);
            assert!(net.contains(ip), "{net} from {ip}/{bits}");
            // A v4 net matches the v4-mapped form a dual-stack socket reports.
            if let IpAddr::V4(v4) = ip {
                assert!(net.contains(IpAddr::V6(v4.to_ipv6_mapped())));
            }
            assert_eq!(Net::parse(&net.to_string()), Ok(net));
        }
    }
});
