//! PROXY protocol headers, versions 1 and 2 (`proxy_protocol::parse`), and the writers
//! (`write_v1`, `write_v2`) read back.
//!
//! Beyond "no panic": a header lies inside the input and within `MAX_HEADER_BYTES`; it parses
//! the same alone and with anything after it; every strict prefix of it is `Incomplete` (a
//! header that arrives a byte at a time must not be refused on the way); `Incomplete` is never
//! the answer past `MAX_HEADER_BYTES`; an error stays an error whatever follows. The first bytes
//! also make two addresses that each writer's header must give back.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ferrotracker_proto::proxy_protocol::{self, Parsed, MAX_HEADER_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let with_tail = [data, b"\r\nPROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"].concat();
    match proxy_protocol::parse(data) {
        Ok(Parsed::Incomplete) => {
            assert!(data.len() < MAX_HEADER_BYTES, "Incomplete past the cap");
            for cut in [0, data.len() / 2, data.len().saturating_sub(1)] {
                assert_eq!(proxy_protocol::parse(&data[..cut]), Ok(Parsed::Incomplete));
            }
        }
        Ok(done @ Parsed::Done { header_len, source }) => {
            assert!(header_len <= data.len() && header_len <= MAX_HEADER_BYTES);
            assert!(
                header_len >= 15,
                "no header is shorter than `PROXY UNKNOWN\\r\\n`"
            );
            let header = &data[..header_len];
            assert_eq!(proxy_protocol::parse(header), Ok(done));
            assert_eq!(proxy_protocol::parse(&with_tail), Ok(done));
            for cut in [0, 1, header_len / 2, header_len - 2, header_len - 1] {
                assert_eq!(
                    proxy_protocol::parse(&header[..cut]),
                    Ok(Parsed::Incomplete),
                    "prefix of {cut} bytes of a {header_len}-byte header"
                );
            }
            // A v1 line names an address for TCP4 and TCP6 only; a v2 header carries it at a
            // fixed place, for the PROXY command over TCP only.
            if header.starts_with(b"PROXY ") {
                assert_eq!(source.is_some(), header.starts_with(b"PROXY TCP"));
            } else {
                match source.map(|s| s.ip()) {
                    Some(IpAddr::V4(ip)) => {
                        assert_eq!(header[12..14], [0x21, 0x11]);
                        assert_eq!(ip.octets(), header[16..20]);
                    }
                    Some(IpAddr::V6(ip)) => {
                        assert_eq!(header[12..14], [0x21, 0x21]);
                        assert_eq!(ip.octets(), header[16..32]);
                    }
                    None => assert!(header[12] & 0x0f == 0 || ![0x11, 0x21].contains(&header[13])),
                }
            }
        }
        Err(e) => {
            assert!(!e.reason().is_empty());
            assert_eq!(
                proxy_protocol::parse(&with_tail),
                Err(e),
                "an error must stick"
            );
        }
    }

    // Round trip: addresses from the first 40 bytes.
    let mut b = [0u8; 40];
    for (d, s) in b.iter_mut().zip(data) {
        *d = *s;
    }
    let v4 = |o: usize| {
        SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(b[o], b[o + 1], b[o + 2], b[o + 3])),
            u16::from_be_bytes([b[o + 4], b[o + 5]]),
        )
    };
    let v6 = |o: usize| {
        let mut ip = [0u8; 16];
        ip.copy_from_slice(&b[o..o + 16]);
        SocketAddr::new(
            IpAddr::V6(Ipv6Addr::from(ip)),
            u16::from_be_bytes([b[o + 16], b[o + 17]]),
        )
    };
    let pick = |flag: u8, o: usize| if flag & 1 == 0 { v4(o) } else { v6(o) };
    let (src, dst) = (pick(b[0], 2), pick(b[1], 20));
    let want = if src.is_ipv4() && dst.is_ipv4() {
        src
    } else {
        let ip = match src.ip() {
            IpAddr::V4(v) => v.to_ipv6_mapped(),
            IpAddr::V6(v) => v,
        };
        SocketAddr::new(IpAddr::V6(ip), src.port())
    };
    let tlvs = data.get(40..).unwrap_or_default();
    let tlvs = &tlvs[..tlvs.len().min(MAX_HEADER_BYTES - 16 - 36)];
    for v in [1, 2] {
        let mut out = Vec::new();
        if v == 1 {
            proxy_protocol::write_v1(&mut out, src, dst);
        } else {
            proxy_protocol::write_v2(&mut out, src, dst, tlvs);
        }
        assert_eq!(
            proxy_protocol::parse(&out),
            Ok(Parsed::Done {
                header_len: out.len(),
                source: Some(want)
            }),
            "v{v} header of {src} -> {dst}"
        );
    }
});
