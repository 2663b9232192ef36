//! Which address an HTTP announce is recorded under: the socket's, the one a trusted proxy
//! forwarded in `X-Forwarded-For`, or the `ip=` query parameter (as opentracker's [`ot_http.c`](https://erdgeist.org/gitweb/opentracker/tree/ot_http.c)).
//!
//! * `X-Forwarded-For` is read only when the connection comes from an `access.proxy` (or `-A`)
//!   network. The header is a list that each proxy appends its client to, so only its right end
//!   can be trusted: walking from the right, addresses of trusted proxies are skipped and the
//!   first other address is the client (the "rightmost untrusted" rule). Everything to its left
//!   was written by the client and may be forged. opentracker takes the *first* address, which
//!   any client behind the proxy can set to anyone's address; ferrotracker does not.
//!   If every address is a trusted proxy, the leftmost is taken. A missing header, or an entry
//!   that is not an address where the client should be, leaves the proxy's own address (as
//!   opentracker falls back to the connection address).
//! * `ip=` is honoured only when the operator enables it (`tracker.allow_ip_param on`), from any
//!   client, and wins over both (opentracker's `WANT_IP_FROM_QUERY_STRING`). A value that is not
//!   an IP literal is then a 400, as in opentracker.
//!
//! Stats access (`/stats`, `/metrics`) follows `X-Forwarded-For` by the same rule, so that
//! behind a reverse proxy on the same host (every connection from 127.0.0.1) the client, not
//! the proxy, is checked; but `ip=` never counts there, and a proxy's header that names no
//! usable client refuses access rather than falling back to the proxy's address
//! ([`Rules::stats_reader`]). Scrapes don't use a client address. Nothing here allocates.

use std::net::{IpAddr, SocketAddr};

use crate::nets::Nets;
use ferrotracker_proto::http::ForwardedFor;

/// The rules an operator configured.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// Whose `X-Forwarded-For` is believed: `access.proxy` and `-A` networks.
    pub proxies: Nets,
    /// Honour `ip=` (`tracker.allow_ip_param`).
    pub allow_ip_param: bool,
}

/// `ip=` was enabled and its value is not an IP address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadIpParam;

impl Rules {
    /// The address to record for an announce arriving from `socket` with the raw
    /// `X-Forwarded-For` value `xff` and the decoded `ip=` value `ip_param`. The result is
    /// canonical: a v4-mapped IPv6 address comes back as IPv4.
    pub fn choose(
        &self,
        socket: IpAddr,
        xff: &ForwardedFor<'_>,
        ip_param: Option<&[u8]>,
    ) -> Result<IpAddr, BadIpParam> {
        if self.allow_ip_param {
            if let Some(v) = ip_param {
                return parse_ip(v).ok_or(BadIpParam);
            }
        }
        let socket = socket.to_canonical();
        if xff.is_empty() || self.proxies.is_empty() || !self.proxies.contains(socket) {
            return Ok(socket);
        }
        Ok(forwarded_client_of(xff.entries_rev(), &self.proxies).unwrap_or(socket))
    }
}

/// Who asks for `/stats` or `/metrics`, as [`Rules::stats_reader`] finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsReader {
    /// Not from a trusted proxy: the socket's own (canonical) address.
    Direct(IpAddr),
    /// From a trusted proxy, for the client its `X-Forwarded-For` names.
    Forwarded(IpAddr),
    /// A trusted proxy's own request (no `X-Forwarded-For`): the proxy's address. Behind a
    /// proxy that forgets the header every client would look like this, so it may read only
    /// where the proxy's address is granted explicitly, not by the loopback default.
    Proxy(IpAddr),
    /// From a trusted proxy whose header names no usable client, or names a loopback client
    /// though the proxy is not on this host (only a forgery or a misconfiguration does that).
    Nobody,
}

impl Rules {
    /// Who a request from `socket` with the raw `X-Forwarded-For` value `xff` reads stats as:
    /// the socket's address, or, when the socket is a trusted proxy, the client its header
    /// names (as [`Rules::choose`] finds it). A same-host proxy is loopback, which may read
    /// stats by default, so a trusted proxy never stands in for its clients.
    pub fn stats_reader(&self, socket: IpAddr, xff: &ForwardedFor<'_>) -> StatsReader {
        let socket = socket.to_canonical();
        if !self.proxies.contains(socket) {
            return StatsReader::Direct(socket);
        }
        if xff.is_empty() {
            return StatsReader::Proxy(socket);
        }
        match forwarded_client_of(xff.entries_rev(), &self.proxies) {
            Some(ip) if ip.is_loopback() && !socket.is_loopback() => StatsReader::Nobody,
            Some(ip) => StatsReader::Forwarded(ip),
            None => StatsReader::Nobody,
        }
    }
}

/// The rightmost address in an `X-Forwarded-For` value that is not in `trusted`; the leftmost if
/// all are. `None` if the value is empty or the entry where the walk stops is not an address.
pub fn forwarded_client(header: &[u8], trusted: &Nets) -> Option<IpAddr> {
    forwarded_client_of(header.rsplit(|&b| b == b','), trusted)
}

/// [`forwarded_client`] over entries given from the rightmost to the leftmost.
fn forwarded_client_of<'a>(
    entries_rev: impl Iterator<Item = &'a [u8]>,
    trusted: &Nets,
) -> Option<IpAddr> {
    let mut last = None;
    for entry in entries_rev {
        let ip = parse_forwarded(entry)?;
        if !trusted.contains(ip) {
            return Some(ip);
        }
        last = Some(ip);
    }
    last
}

/// An IP literal, IPv6 optionally in brackets; canonical (v4-mapped becomes IPv4).
pub fn parse_ip(v: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(v).ok()?;
    let s = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    s.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// One `X-Forwarded-For` entry: blanks around it trimmed; `ip`, `[v6]`, and, as some proxies
/// write them, `v4:port` and `[v6]:port`.
fn parse_forwarded(entry: &[u8]) -> Option<IpAddr> {
    let entry = entry.trim_ascii();
    parse_ip(entry).or_else(|| {
        let s = std::str::from_utf8(entry).ok()?;
        s.parse::<SocketAddr>().ok().map(|a| a.ip().to_canonical())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::Net;
    use ferrotracker_proto::testutil::random_bytes;

    /// A request without `X-Forwarded-For`.
    const NO_XFF: &ForwardedFor<'static> = &ForwardedFor::EMPTY;

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
        }
    }

    #[test]
    fn rightmost_untrusted_address() {
        let t = nets(&["10.0.0.0/8", "2001:db8::/32"]);
        let f = |h: &str| forwarded_client(h.as_bytes(), &t);
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
        assert_eq!(forwarded_client(&[0xff, b'1'], &t), None);
    }

    #[test]
    fn never_panics_on_random_headers() {
        let t = nets(&["10.0.0.0/8", "::1"]);
        let alphabet = b"0123456789abcdef.:,[] \txX\xff\x00/";
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for len in 0..400 {
            let h = random_bytes(&mut x, alphabet, len);
            let _ = forwarded_client(&h, &t);
            let _ = parse_ip(&h);
            // Stats access from a proxy: the announce's client, or none.
            let r = Rules {
                proxies: t.clone(),
                allow_ip_param: true,
            };
            let xff = ForwardedFor::from_lines(&[&h]);
            match r.stats_reader(ip("10.1.1.1"), &xff) {
                StatsReader::Forwarded(c) => {
                    assert_eq!(Ok(c), r.choose(ip("10.1.1.1"), &xff, None));
                    assert!(!c.is_loopback());
                }
                StatsReader::Nobody => {
                    assert!(!matches!(forwarded_client(&h, &t), Some(c) if !c.is_loopback()))
                }
                StatsReader::Proxy(_) => assert!(xff.is_empty()),
                StatsReader::Direct(_) => unreachable!("10.1.1.1 is a proxy"),
            }
        }
    }

    #[test]
    fn forwarded_for_only_from_proxies() {
        let r = rules(&["127.0.0.2"], false);
        let xff = &ForwardedFor::from_lines(&[b"6.6.6.6"]);
        assert_eq!(r.choose(ip("127.0.0.2"), xff, None), Ok(ip("6.6.6.6")));
        // The same header from anyone else is a spoofing attempt.
        assert_eq!(r.choose(ip("127.0.0.1"), xff, None), Ok(ip("127.0.0.1")));
        // A dual-stack socket reports IPv4 clients v4-mapped.
        assert_eq!(
            r.choose(ip("::ffff:127.0.0.2"), xff, None),
            Ok(ip("6.6.6.6"))
        );
        assert_eq!(
            r.choose(ip("::ffff:127.0.0.1"), xff, None),
            Ok(ip("127.0.0.1"))
        );
        // No header, or an unusable one: the proxy's own address.
        assert_eq!(r.choose(ip("127.0.0.2"), NO_XFF, None), Ok(ip("127.0.0.2")));
        assert_eq!(
            r.choose(ip("127.0.0.2"), &ForwardedFor::from_lines(&[b"nope"]), None),
            Ok(ip("127.0.0.2"))
        );
        // No proxies configured: never read.
        let none = rules(&[], false);
        assert_eq!(none.choose(ip("127.0.0.2"), xff, None), Ok(ip("127.0.0.2")));
    }

    #[test]
    fn stats_reader_behind_a_proxy() {
        use StatsReader::*;
        let r = rules(&["127.0.0.1", "192.0.2.0/24"], true);
        let p = ip("127.0.0.1");
        let xff = |v: &'static [u8]| ForwardedFor::from_lines(&[v]);
        // A same-host proxy: the client it names is checked, not the proxy.
        assert_eq!(
            r.stats_reader(p, &xff(b"203.0.113.9")),
            Forwarded(ip("203.0.113.9"))
        );
        assert_eq!(
            r.stats_reader(ip("::ffff:127.0.0.1"), &xff(b"6.6.6.6, 203.0.113.9")),
            Forwarded(ip("203.0.113.9"))
        );
        // A client on the proxy's host, through the proxy: all trusted, the leftmost.
        assert_eq!(r.stats_reader(p, &xff(b"127.0.0.1")), Forwarded(p));
        // No header: the proxy's own request.
        assert_eq!(r.stats_reader(p, NO_XFF), Proxy(p));
        // A header that names no client: nobody (the proxy's address would be loopback).
        assert_eq!(r.stats_reader(p, &xff(b"unknown")), Nobody);
        assert_eq!(r.stats_reader(p, &xff(b"9.9.9.9, unknown")), Nobody);
        // A proxy on another host can't have a loopback client: forged.
        assert_eq!(r.stats_reader(ip("192.0.2.7"), &xff(b"127.0.0.1")), Nobody);
        assert_eq!(r.stats_reader(ip("192.0.2.7"), &xff(b"::1")), Nobody);
        // Anyone else's header is ignored: the socket address decides.
        assert_eq!(
            r.stats_reader(ip("198.51.100.7"), &xff(b"127.0.0.1")),
            Direct(ip("198.51.100.7"))
        );
        assert_eq!(
            rules(&[], false).stats_reader(p, &xff(b"203.0.113.9")),
            Direct(p)
        );
    }

    #[test]
    fn several_lines_are_one_list() {
        let r = rules(&["127.0.0.2", "10.0.0.0/8"], false);
        let p = ip("127.0.0.2");
        let lines = |l: &[&'static [u8]]| ForwardedFor::from_lines(l);
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
            on.choose(
                p,
                &ForwardedFor::from_lines(&[b"6.6.6.6"]),
                Some(b"1.2.3.4")
            ),
            Ok(ip("1.2.3.4"))
        );
        assert_eq!(
            on.choose(p, &ForwardedFor::from_lines(&[b"6.6.6.6"]), None),
            Ok(ip("6.6.6.6"))
        );
        assert_eq!(
            on.choose(ip("::ffff:10.0.0.1"), NO_XFF, None),
            Ok(ip("10.0.0.1"))
        );
    }
}
