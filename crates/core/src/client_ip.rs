//! Which address an HTTP announce is recorded under: the socket's, the one a trusted proxy
//! names in the configured header, or the `ip=` query parameter (as opentracker's [`ot_http.c`](https://erdgeist.org/gitweb/opentracker/tree/ot_http.c)).
//!
//! * The header ([`Rules::header`], a [`ProxyHeader`]: `X-Forwarded-For` unless configured
//!   otherwise) is read only when the connection comes from an `access.proxy` (or `-A`)
//!   network; the request parser keeps that header's lines and no other's.
//! * `X-Forwarded-For` and `Forwarded` (RFC 7239) are lists that each proxy appends its client
//!   to, so only their right end can be trusted: walking from the right, addresses of trusted
//!   proxies are skipped and the first other node is the client (the "rightmost untrusted"
//!   rule). Everything to its left was written by the client and may be forged. opentracker
//!   takes the *first* address, which any client behind the proxy can set to anyone's address;
//!   ferrotracker does not. If every address is a trusted proxy, the leftmost is taken. A
//!   missing header, or a node that names no address where the client should be (garbage,
//!   RFC 7239's `unknown` and obfuscated `_name`, a `Forwarded` element without `for=`), leaves
//!   the proxy's own address (as opentracker falls back to the connection address).
//! * `X-Real-IP`, `CF-Connecting-IP` and `True-Client-IP` hold one address, which the proxy
//!   sets (overwriting any the client sent): that address is the client, trusted or not. The
//!   header given twice, or not an address, is taken as a list whose client entry is not an
//!   address: an announce keeps the proxy's own address, and stats access is refused, as for an
//!   `X-Forwarded-For` naming no usable client. A proxy that sets the header sends it once, so
//!   two copies mean the client's came through, and which is the proxy's can't be told.
//! * `ip=` is honoured only when the operator enables it (`tracker.allow_ip_param on`), from any
//!   client, and wins over both (opentracker's `WANT_IP_FROM_QUERY_STRING`). A value that is not
//!   an IP literal is then a 400, as in opentracker.
//!
//! Stats access (`/stats`, `/metrics`) follows the header by the same rule, so that behind a
//! reverse proxy on the same host (every connection from 127.0.0.1) the client, not the proxy,
//! is checked; but `ip=` never counts there, and a proxy's header that names no usable client
//! refuses access rather than falling back to the proxy's address ([`Rules::stats_reader`]).
//! Scrapes don't use a client address. Nothing here allocates.

use std::net::IpAddr;

use crate::nets::Nets;
pub use ferrotracker_proto::forwarded::parse_ip;
use ferrotracker_proto::forwarded::{ClientHeader, Node, ProxyHeader};

/// The rules an operator configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// Whose client header is believed: `access.proxy` and `-A` networks.
    pub proxies: Nets,
    /// Honour `ip=` (`tracker.allow_ip_param`).
    pub allow_ip_param: bool,
    /// The header the proxies name their client in; the server frames requests with it
    /// (`http::parse_request`), so a request carries that header's lines only.
    pub header: ProxyHeader,
}

/// `ip=` was enabled and its value is not an IP address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadIpParam;

impl Rules {
    /// The address to record for an announce arriving from `socket` with the client header
    /// `header` (as the request parser kept it) and the decoded `ip=` value `ip_param`. The
    /// result is canonical: a v4-mapped IPv6 address comes back as IPv4.
    pub fn choose(
        &self,
        socket: IpAddr,
        header: &ClientHeader<'_>,
        ip_param: Option<&[u8]>,
    ) -> Result<IpAddr, BadIpParam> {
        if self.allow_ip_param {
            if let Some(v) = ip_param {
                return parse_ip(v).ok_or(BadIpParam);
            }
        }
        let socket = socket.to_canonical();
        if header.is_empty() || self.proxies.is_empty() || !self.proxies.contains(socket) {
            return Ok(socket);
        }
        Ok(forwarded_client(header, &self.proxies).unwrap_or(socket))
    }
}

/// Who asks for `/stats` or `/metrics`, as [`Rules::stats_reader`] finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsReader {
    /// Not from a trusted proxy: the socket's own (canonical) address.
    Direct(IpAddr),
    /// From a trusted proxy, for the client its header names.
    Forwarded(IpAddr),
    /// A trusted proxy's own request (without the client header): the proxy's address. Behind
    /// a proxy that forgets the header every client would look like this, so it may read only
    /// where the proxy's address is granted explicitly, not by the loopback default.
    Proxy(IpAddr),
    /// From a trusted proxy whose header names no usable client, or names a loopback client
    /// though the proxy is not on this host (only a forgery or a misconfiguration does that).
    Nobody,
}

impl Rules {
    /// Who a request from `socket` with the client header `header` reads stats as: the
    /// socket's address, or, when the socket is a trusted proxy, the client its header names
    /// (as [`Rules::choose`] finds it). A same-host proxy is loopback, which may read stats by
    /// default, so a trusted proxy never stands in for its clients.
    pub fn stats_reader(&self, socket: IpAddr, header: &ClientHeader<'_>) -> StatsReader {
        let socket = socket.to_canonical();
        if !self.proxies.contains(socket) {
            return StatsReader::Direct(socket);
        }
        if header.is_empty() {
            return StatsReader::Proxy(socket);
        }
        match forwarded_client(header, &self.proxies) {
            Some(ip) if ip.is_loopback() && !socket.is_loopback() => StatsReader::Nobody,
            Some(ip) => StatsReader::Forwarded(ip),
            None => StatsReader::Nobody,
        }
    }
}

/// The client a header names: of its nodes ([`ClientHeader::nodes`]), the rightmost that is
/// not an address in `trusted`, or the leftmost if all are. `None` if there is no node, or the
/// node where the walk from the right stops names no address. For a single-address header,
/// its one address whatever `trusted` says.
pub fn forwarded_client(header: &ClientHeader<'_>, trusted: &Nets) -> Option<IpAddr> {
    // One pass from the left (a `Forwarded` line can only be read that way) that remembers the
    // rightmost untrusted node so far, which is where a walk from the right would stop.
    let mut leftmost = None;
    let mut untrusted: Option<Option<IpAddr>> = None;
    for node in header.nodes() {
        match node {
            Node::Ip(ip) if trusted.contains(ip) => {
                leftmost = leftmost.or(Some(ip));
            }
            Node::Ip(ip) => untrusted = Some(Some(ip)),
            Node::Unknown => untrusted = Some(None),
        }
    }
    untrusted.unwrap_or(leftmost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::Net;
    use ferrotracker_proto::testutil::{random_bytes, xorshift};

    const XFF: ProxyHeader = ProxyHeader::XForwardedFor;

    /// A request without `X-Forwarded-For`.
    const NO_XFF: &ClientHeader<'static> = &ClientHeader::empty(XFF);

    /// `X-Forwarded-For` lines.
    fn xff<'a>(lines: &[&'a [u8]]) -> ClientHeader<'a> {
        ClientHeader::from_lines(XFF, lines)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Nets {
        Nets(list.iter().map(|n| Net::parse(n).unwrap()).collect())
    }

    fn rules(proxies: &[&str], allow_ip_param: bool) -> Rules {
        Rules {
            proxies: nets(proxies),
            allow_ip_param,
            header: XFF,
        }
    }

    #[test]
    fn rightmost_untrusted_address() {
        let t = nets(&["10.0.0.0/8", "2001:db8::/32"]);
        let f = |h: &str| forwarded_client(&xff(&[h.as_bytes()]), &t);
        assert_eq!(f("9.9.9.9"), Some(ip("9.9.9.9")));
        // The client forged the left entry; our proxy appended the real one.
        assert_eq!(f("6.6.6.6, 9.9.9.9"), Some(ip("9.9.9.9")));
        // A chain of trusted proxies is skipped.
        assert_eq!(
            f("6.6.6.6,9.9.9.9 , 10.1.1.1,10.2.2.2"),
            Some(ip("9.9.9.9"))
        );
        assert_eq!(f("6.6.6.6, 2001:db8::5"), Some(ip("6.6.6.6")));
        // All trusted: the leftmost, the one furthest from us.
        assert_eq!(f("10.0.0.1, 10.0.0.2"), Some(ip("10.0.0.1")));
        // Ports and brackets, as some proxies write them; v4-mapped is IPv4.
        assert_eq!(f("1.2.3.4:5678"), Some(ip("1.2.3.4")));
        assert_eq!(f("[2001:db9::1]:443"), Some(ip("2001:db9::1")));
        assert_eq!(f("[2001:db9::1]"), Some(ip("2001:db9::1")));
        assert_eq!(f("::ffff:1.2.3.4"), Some(ip("1.2.3.4")));
        // Garbage left of the client does not matter ...
        assert_eq!(f("unknown, x, 9.9.9.9"), Some(ip("9.9.9.9")));
        // ... but where the client should be, it means "don't know".
        assert_eq!(f("9.9.9.9, unknown"), None);
        assert_eq!(f("9.9.9.9, unknown, 10.0.0.1"), None);
        assert_eq!(f(""), None);
        assert_eq!(f(" , "), None);
        assert_eq!(f("1.2.3.4/8"), None);
        assert_eq!(forwarded_client(&xff(&[&[0xff, b'1']]), &t), None);
    }

    #[test]
    fn never_panics_on_random_headers() {
        let t = nets(&["10.0.0.0/8", "::1"]);
        let alphabet = b"0123456789abcdef.:,[] \txX\xff\x00/";
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for len in 0..400 {
            let h = random_bytes(&mut x, alphabet, len);
            let _ = forwarded_client(&xff(&[&h]), &t);
            let _ = parse_ip(&h);
            // Stats access from a proxy: the announce's client, or none.
            let r = Rules {
                proxies: t.clone(),
                allow_ip_param: true,
                header: XFF,
            };
            let header = xff(&[&h]);
            match r.stats_reader(ip("10.1.1.1"), &header) {
                StatsReader::Forwarded(c) => {
                    assert_eq!(Ok(c), r.choose(ip("10.1.1.1"), &header, None));
                    assert!(!c.is_loopback());
                }
                StatsReader::Nobody => {
                    assert!(!matches!(forwarded_client(&header, &t), Some(c) if !c.is_loopback()))
                }
                StatsReader::Proxy(_) => assert!(header.is_empty()),
                StatsReader::Direct(_) => unreachable!("10.1.1.1 is a proxy"),
            }
        }
    }

    #[test]
    fn forwarded_for_only_from_proxies() {
        let r = rules(&["127.0.0.2"], false);
        let six = &xff(&[b"6.6.6.6"]);
        assert_eq!(r.choose(ip("127.0.0.2"), six, None), Ok(ip("6.6.6.6")));
        // The same header from anyone else is a spoofing attempt.
        assert_eq!(r.choose(ip("127.0.0.1"), six, None), Ok(ip("127.0.0.1")));
        // A dual-stack socket reports IPv4 clients v4-mapped.
        assert_eq!(
            r.choose(ip("::ffff:127.0.0.2"), six, None),
            Ok(ip("6.6.6.6"))
        );
        assert_eq!(
            r.choose(ip("::ffff:127.0.0.1"), six, None),
            Ok(ip("127.0.0.1"))
        );
        // No header, or an unusable one: the proxy's own address.
        assert_eq!(r.choose(ip("127.0.0.2"), NO_XFF, None), Ok(ip("127.0.0.2")));
        assert_eq!(
            r.choose(ip("127.0.0.2"), &xff(&[b"nope"]), None),
            Ok(ip("127.0.0.2"))
        );
        // No proxies configured: never read.
        let none = rules(&[], false);
        assert_eq!(none.choose(ip("127.0.0.2"), six, None), Ok(ip("127.0.0.2")));
    }

    #[test]
    fn stats_reader_behind_a_proxy() {
        use StatsReader::*;
        let r = rules(&["127.0.0.1", "192.0.2.0/24"], true);
        let p = ip("127.0.0.1");
        let one = |v: &'static [u8]| xff(&[v]);
        // A same-host proxy: the client it names is checked, not the proxy.
        assert_eq!(
            r.stats_reader(p, &one(b"203.0.113.9")),
            Forwarded(ip("203.0.113.9"))
        );
        assert_eq!(
            r.stats_reader(ip("::ffff:127.0.0.1"), &one(b"6.6.6.6, 203.0.113.9")),
            Forwarded(ip("203.0.113.9"))
        );
        // A client on the proxy's host, through the proxy: all trusted, the leftmost.
        assert_eq!(r.stats_reader(p, &one(b"127.0.0.1")), Forwarded(p));
        // No header: the proxy's own request.
        assert_eq!(r.stats_reader(p, NO_XFF), Proxy(p));
        // A header that names no client: nobody (the proxy's address would be loopback).
        assert_eq!(r.stats_reader(p, &one(b"unknown")), Nobody);
        assert_eq!(r.stats_reader(p, &one(b"9.9.9.9, unknown")), Nobody);
        // A proxy on another host can't have a loopback client: forged.
        assert_eq!(r.stats_reader(ip("192.0.2.7"), &one(b"127.0.0.1")), Nobody);
        assert_eq!(r.stats_reader(ip("192.0.2.7"), &one(b"::1")), Nobody);
        // Anyone else's header is ignored: the socket address decides.
        assert_eq!(
            r.stats_reader(ip("198.51.100.7"), &one(b"127.0.0.1")),
            Direct(ip("198.51.100.7"))
        );
        assert_eq!(
            rules(&[], false).stats_reader(p, &one(b"203.0.113.9")),
            Direct(p)
        );
    }

    #[test]
    fn several_lines_are_one_list() {
        let r = rules(&["127.0.0.2", "10.0.0.0/8"], false);
        let p = ip("127.0.0.2");
        let lines = |l: &[&'static [u8]]| xff(l);
        // A proxy that adds its own line: the client's forged line comes first.
        assert_eq!(
            r.choose(p, &lines(&[b"6.6.6.6", b"9.9.9.9"]), None),
            Ok(ip("9.9.9.9"))
        );
        // Each trusted proxy of a chain adds a line: the walk goes on into earlier lines.
        assert_eq!(
            r.choose(
                p,
                &lines(&[b"6.6.6.6, 9.9.9.9", b"10.0.0.1", b" 10.0.0.2 "]),
                None
            ),
            Ok(ip("9.9.9.9"))
        );
        // All trusted: the leftmost of the kept lines (the last MAX_FORWARDED_LINES).
        assert_eq!(
            r.choose(
                p,
                &lines(&[
                    b"6.6.6.6",
                    b"10.0.0.1",
                    b"10.0.0.2",
                    b"10.0.0.3",
                    b"10.0.0.4"
                ]),
                None
            ),
            Ok(ip("10.0.0.1"))
        );
    }

    #[test]
    fn ip_param_only_when_enabled() {
        let off = rules(&["127.0.0.2"], false);
        let on = rules(&["127.0.0.2"], true);
        let s = ip("127.0.0.1");
        assert_eq!(off.choose(s, NO_XFF, Some(b"1.2.3.4")), Ok(s));
        assert_eq!(off.choose(s, NO_XFF, Some(b"junk")), Ok(s));
        assert_eq!(on.choose(s, NO_XFF, Some(b"1.2.3.4")), Ok(ip("1.2.3.4")));
        assert_eq!(
            on.choose(s, NO_XFF, Some(b"2001:db8::1")),
            Ok(ip("2001:db8::1"))
        );
        assert_eq!(
            on.choose(s, NO_XFF, Some(b"[2001:db8::1]")),
            Ok(ip("2001:db8::1"))
        );
        assert_eq!(
            on.choose(s, NO_XFF, Some(b"::ffff:1.2.3.4")),
            Ok(ip("1.2.3.4"))
        );
        assert_eq!(on.choose(s, NO_XFF, Some(b"example.org")), Err(BadIpParam));
        assert_eq!(on.choose(s, NO_XFF, Some(b"1.2.3.4:80")), Err(BadIpParam));
        // ip= wins over a proxy's header, as in opentracker; without it the header counts.
        let p = ip("127.0.0.2");
        assert_eq!(
            on.choose(p, &xff(&[b"6.6.6.6"]), Some(b"1.2.3.4")),
            Ok(ip("1.2.3.4"))
        );
        assert_eq!(on.choose(p, &xff(&[b"6.6.6.6"]), None), Ok(ip("6.6.6.6")));
        assert_eq!(
            on.choose(ip("::ffff:10.0.0.1"), NO_XFF, None),
            Ok(ip("10.0.0.1"))
        );
    }

    /// The walk `X-Forwarded-For` had before the other headers: from the right over the
    /// comma-separated entries of the kept lines, stopping at the first entry that is not an
    /// address or not trusted.
    fn reverse_walk(lines: &[&[u8]], trusted: &Nets) -> Option<IpAddr> {
        let kept = &lines[lines.len().saturating_sub(4)..];
        let mut last = None;
        for entry in kept.iter().rev().flat_map(|l| l.rsplit(|&b| b == b',')) {
            let entry = entry.trim_ascii();
            let ip = parse_ip(entry).or_else(|| {
                let s = std::str::from_utf8(entry).ok()?;
                s.parse::<std::net::SocketAddr>()
                    .ok()
                    .map(|a| a.ip().to_canonical())
            })?;
            if !trusted.contains(ip) {
                return Some(ip);
            }
            last = Some(ip);
        }
        last
    }

    #[test]
    fn x_forwarded_for_walk_is_unchanged() {
        let t = nets(&["10.0.0.0/8", "2001:db8::/32"]);
        let words: &[&[u8]] = &[
            b"10.0.0.1",
            b"10.2.3.4:80",
            b"9.9.9.9",
            b"[2001:db8::1]",
            b"[2001:db9::1]:443",
            b"::ffff:10.0.0.7",
            b"unknown",
            b"",
            b" ",
            b"1.2.3.4/8",
            b"6.6.6.6",
        ];
        let mut rng = 0x5eed_u64;
        for _ in 0..5000 {
            let mut lines: Vec<Vec<u8>> = Vec::new();
            for _ in 0..1 + xorshift(&mut rng) % 6 {
                let n = 1 + xorshift(&mut rng) % 4;
                let entries: Vec<&[u8]> = (0..n)
                    .map(|_| words[(xorshift(&mut rng) % words.len() as u64) as usize])
                    .collect();
                lines.push(entries.join(&b',').to_vec());
            }
            let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_slice()).collect();
            assert_eq!(
                forwarded_client(&xff(&lines), &t),
                reverse_walk(&lines, &t),
                "{lines:?}"
            );
        }
    }

    #[test]
    fn single_address_headers() {
        use StatsReader::*;
        for header in [
            ProxyHeader::XRealIp,
            ProxyHeader::CfConnectingIp,
            ProxyHeader::TrueClientIp,
        ] {
            let r = Rules {
                header,
                ..rules(&["127.0.0.1", "10.0.0.0/8"], false)
            };
            let p = ip("127.0.0.1");
            let h = |lines: &[&'static [u8]]| ClientHeader::from_lines(header, lines);
            let none = ClientHeader::empty(header);
            // From a proxy: the address, trusted or not, with or without a port.
            assert_eq!(
                r.choose(p, &h(&[b"203.0.113.9"]), None),
                Ok(ip("203.0.113.9"))
            );
            assert_eq!(
                r.choose(p, &h(&[b"[2001:db9::1]:80"]), None),
                Ok(ip("2001:db9::1"))
            );
            assert_eq!(r.choose(p, &h(&[b"10.0.0.5"]), None), Ok(ip("10.0.0.5")));
            assert_eq!(
                r.stats_reader(p, &h(&[b"203.0.113.9"])),
                Forwarded(ip("203.0.113.9"))
            );
            // From anyone else: ignored.
            let o = ip("198.51.100.7");
            assert_eq!(r.choose(o, &h(&[b"203.0.113.9"]), None), Ok(o));
            assert_eq!(r.stats_reader(o, &h(&[b"127.0.0.1"])), Direct(o));
            // Missing: the proxy's own request.
            assert_eq!(r.choose(p, &none, None), Ok(p));
            assert_eq!(r.stats_reader(p, &none), Proxy(p));
            // Repeated, a list, or not an address: no usable client, as an X-Forwarded-For
            // naming none: the proxy's address for announces, no stats.
            for bad in [
                &[&b"203.0.113.9"[..], b"203.0.113.9"][..],
                &[b"6.6.6.6", b"203.0.113.9"],
                &[b"6.6.6.6, 203.0.113.9"],
                &[b"unknown"],
                &[b""],
            ] {
                assert_eq!(r.choose(p, &h(bad), None), Ok(p), "{bad:?}");
                assert_eq!(r.stats_reader(p, &h(bad)), Nobody, "{bad:?}");
            }
            // A proxy elsewhere can't have a loopback client.
            assert_eq!(r.stats_reader(ip("10.0.0.9"), &h(&[b"::1"])), Nobody);
        }
    }

    #[test]
    fn forwarded_rightmost_untrusted() {
        let t = nets(&["10.0.0.0/8", "2001:db8::/32"]);
        let f = |lines: &[&str]| {
            let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
            forwarded_client(
                &ClientHeader::from_lines(ProxyHeader::Forwarded, &lines),
                &t,
            )
        };
        assert_eq!(f(&["for=9.9.9.9"]), Some(ip("9.9.9.9")));
        // The client forged the left element; our proxies appended the rest.
        assert_eq!(
            f(&["for=6.6.6.6, for=9.9.9.9;proto=https, for=\"[2001:db8::1]:443\";by=10.0.0.1"]),
            Some(ip("9.9.9.9"))
        );
        assert_eq!(
            f(&["for=6.6.6.6", "For=9.9.9.9", "FOR=10.0.0.1:80"]),
            Some(ip("9.9.9.9"))
        );
        // All trusted: the leftmost.
        assert_eq!(f(&["for=10.0.0.1, for=10.0.0.2"]), Some(ip("10.0.0.1")));
        // Hidden or unknown nodes left of the client don't matter ...
        assert_eq!(
            f(&["for=_hidden, for=unknown, proto=http, for=9.9.9.9"]),
            Some(ip("9.9.9.9"))
        );
        // ... where the client should be, they mean "don't know".
        assert_eq!(f(&["for=9.9.9.9, for=unknown"]), None);
        assert_eq!(f(&["for=9.9.9.9, for=\"_gazonk\", for=10.0.0.1"]), None);
        assert_eq!(
            f(&["for=9.9.9.9, proto=https"]),
            None,
            "an element without for="
        );
        assert_eq!(f(&["for=9.9.9.9, for=\"10.0.0.1"]), None, "a syntax error");
        // A malformed line the client sent, followed by the proxy's line: still found.
        assert_eq!(f(&["for=\"6.6.6.6", "for=9.9.9.9"]), Some(ip("9.9.9.9")));
        assert_eq!(f(&[""]), None);

        let r = Rules {
            header: ProxyHeader::Forwarded,
            ..rules(&["127.0.0.1"], false)
        };
        let p = ip("127.0.0.1");
        let h = ClientHeader::from_lines(ProxyHeader::Forwarded, &[b"for=\"[2001:db9::5]:1\""]);
        assert_eq!(r.choose(p, &h, None), Ok(ip("2001:db9::5")));
        assert_eq!(r.choose(ip("10.9.9.9"), &h, None), Ok(ip("10.9.9.9")));
        assert_eq!(
            r.stats_reader(p, &h),
            StatsReader::Forwarded(ip("2001:db9::5"))
        );
    }
}
