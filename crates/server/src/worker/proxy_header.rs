//! The PROXY protocol stage (`http.proxy_protocol`): what a connection's first bytes must be
//! before HTTP starts, and whose address the connection then stands for.
//!
//! A connection from a trusted proxy (`access.proxy`, `-A`) must begin with a PROXY header
//! (HAProxy's [proxy-protocol.txt](https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt),
//! version 1 or 2, read by [`ferrotracker_proto::proxy_protocol::parse`]); its source address is
//! the client from then on, for announces, the per-address connection and rate limits and stats
//! access (a remote proxy naming a loopback client is refused, as for `X-Forwarded-For`: loopback
//! may read stats by default). `LOCAL` and `UNKNOWN` headers (a proxy's health checks) keep the
//! proxy's address. A connection from anyone else is served as plain HTTP, unless it begins
//! with a PROXY header, which only a trusted proxy may send: it is closed. The spec forbids
//! guessing whether a header is there, so a trusted connection that begins otherwise is closed
//! too. Refusals are counted (`ferrotracker_proxy_protocol_refused_total`), never logged per
//! connection.
//!
//! The stage looks only at bytes and an address, so it sits in front of any transport: for TLS
//! the header comes before the handshake and is read from the raw socket.

use std::net::IpAddr;

use ferrotracker_core::counters::LiveCounters;
use ferrotracker_proto::proxy_protocol::{self, Parsed, ProxyProtocolError, V2_SIGNATURE};

use super::Shared;

/// What a new connection's first bytes must show before HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Expect {
    /// HTTP from the first byte: the stage is off, or over.
    Nothing,
    /// From a trusted proxy: a PROXY header, then HTTP.
    Header,
    /// From anyone else: HTTP; a PROXY header closes the connection.
    NoHeader,
}

impl Expect {
    /// What a connection accepted from `ip` (canonical) must begin with.
    pub(super) fn at_accept(shared: &Shared, ip: IpAddr) -> Expect {
        if !shared.http.proxy_protocol {
            Expect::Nothing
        } else if shared.tracker.is_trusted_proxy(ip) {
            Expect::Header
        } else {
            Expect::NoHeader
        }
    }
}

/// What to do with a connection after [`step`] looked at its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Read more and call again with all the bytes so far.
    Wait,
    /// The stage is over: HTTP starts `consumed` bytes in (0 without a header), from `client`.
    Pass { consumed: usize, client: IpAddr },
    /// Close without a reply (counted already).
    Close,
    /// The client the header names has its share of connections
    /// (`http.max_connections_per_ip`, counted already): answer 503 and close.
    Busy,
}

/// Looks at the bytes a connection from `ip` (canonical) expecting `expect` has received so far.
///
/// The per-address connection limit counted the proxy's address at accept: a header that names
/// another client moves that count to the client, so that the limit applies to each client
/// behind a load balancer rather than to the balancer, and [`Shared::release`] at close
/// releases the client that [`Step::Pass`] names (the connection's address from then on).
pub(super) fn step(
    shared: &Shared,
    counters: &LiveCounters,
    expect: Expect,
    ip: IpAddr,
    buf: &[u8],
) -> Step {
    match decide(expect, ip, buf) {
        Decision::Wait => Step::Wait,
        Decision::Pass { consumed, source } => {
            let client = source.unwrap_or(ip);
            if expect == Expect::Header {
                counters.proxy_headers.inc();
            }
            if client != ip {
                if !shared.per_ip.acquire(client) {
                    counters.conn_limited_ip.inc();
                    return Step::Busy;
                }
                shared.per_ip.release(ip);
            }
            Step::Pass { consumed, client }
        }
        Decision::Refuse(why) => {
            refused(counters, why);
            Step::Close
        }
    }
}

/// Counts a connection closed by its timeout while its PROXY header was still awaited.
pub(super) fn timed_out(counters: &LiveCounters) {
    refused(counters, Refusal::Timeout);
}

/// Why a connection was closed in the stage (the metric's `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// A trusted proxy's connection that does not begin with a PROXY header.
    Missing,
    /// A malformed header.
    Invalid,
    /// The header did not come within the request timeout.
    Timeout,
    /// A header from an address that is not a trusted proxy.
    Untrusted,
}

fn refused(counters: &LiveCounters, why: Refusal) {
    match why {
        Refusal::Missing => counters.proxy_refused_missing.inc(),
        Refusal::Invalid => counters.proxy_refused_invalid.inc(),
        Refusal::Timeout => counters.proxy_refused_timeout.inc(),
        Refusal::Untrusted => counters.proxy_refused_untrusted.inc(),
    }
}

/// [`step`]'s decision on the bytes alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Wait,
    /// `source`: the client the header names (canonical), `None` to keep the socket's.
    Pass {
        consumed: usize,
        source: Option<IpAddr>,
    },
    Refuse(Refusal),
}

fn decide(expect: Expect, ip: IpAddr, buf: &[u8]) -> Decision {
    match expect {
        Expect::Nothing => Decision::Pass {
            consumed: 0,
            source: None,
        },
        Expect::Header => match proxy_protocol::parse(buf) {
            Ok(Parsed::Incomplete) => Decision::Wait,
            Ok(Parsed::Done { header_len, source }) => {
                let source = source.map(|s| s.ip().to_canonical());
                // Loopback may read stats by default: only a proxy on this host can relay a
                // loopback client (the rule `X-Forwarded-For` follows for stats access).
                if source.is_some_and(|s| s.is_loopback()) && !ip.is_loopback() {
                    return Decision::Refuse(Refusal::Invalid);
                }
                Decision::Pass {
                    consumed: header_len,
                    source,
                }
            }
            Err(ProxyProtocolError::NotProxy) => Decision::Refuse(Refusal::Missing),
            Err(_) => Decision::Refuse(Refusal::Invalid),
        },
        Expect::NoHeader => {
            // Either signature, whole, is a header; bytes that could still become one wait.
            // No HTTP request begins like either (a method is a token; an empty line ahead of
            // one is CRLF, and the version 2 signature has a NUL in its fifth byte).
            let mut could_be = false;
            for sig in [V1_SIGNATURE, &V2_SIGNATURE[..]] {
                if buf.iter().zip(sig).all(|(a, b)| a == b) {
                    if buf.len() >= sig.len() {
                        return Decision::Refuse(Refusal::Untrusted);
                    }
                    could_be = true;
                }
            }
            if could_be {
                Decision::Wait
            } else {
                Decision::Pass {
                    consumed: 0,
                    source: None,
                }
            }
        }
    }
}

/// How a version 1 header begins.
const V1_SIGNATURE: &[u8] = b"PROXY ";

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddr};

    const LB: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn pass(consumed: usize, source: Option<&str>) -> Decision {
        Decision::Pass {
            consumed,
            source: source.map(|s| s.parse().unwrap()),
        }
    }

    #[test]
    fn trusted_connections_need_a_header_and_are_read_whole_at_any_split() {
        let mut v1 = Vec::new();
        proxy_protocol::write_v1(&mut v1, sa("192.0.2.7:5000"), sa("10.0.0.1:6969"));
        let mut v2 = Vec::new();
        proxy_protocol::write_v2(&mut v2, sa("[2001:db8::7]:5000"), sa("[::1]:6969"), &[]);
        let mut mapped = Vec::new();
        proxy_protocol::write_v2(
            &mut mapped,
            sa("[::ffff:192.0.2.9]:1"),
            sa("[::1]:6969"),
            &[],
        );
        for (header, client) in [
            (&v1, "192.0.2.7"),
            (&v2, "2001:db8::7"),
            (&mapped, "192.0.2.9"),
        ] {
            let mut bytes = header.clone();
            bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
            for n in 0..header.len() {
                assert_eq!(
                    decide(Expect::Header, LB, &bytes[..n]),
                    Decision::Wait,
                    "{n}"
                );
            }
            for n in header.len()..bytes.len() {
                assert_eq!(
                    decide(Expect::Header, LB, &bytes[..n]),
                    pass(header.len(), Some(client))
                );
            }
        }
        assert_eq!(
            decide(Expect::Header, LB, b"PROXY UNKNOWN\r\nGET"),
            pass(15, None)
        );
        // A remote proxy naming a loopback client: only a forgery or a misconfiguration.
        let mut local = Vec::new();
        proxy_protocol::write_v1(&mut local, sa("127.0.0.1:1"), sa("10.0.0.1:6969"));
        assert_eq!(
            decide(Expect::Header, LB, &local),
            Decision::Refuse(Refusal::Invalid)
        );
        let on_host = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(
            decide(Expect::Header, on_host, &local),
            pass(local.len(), Some("127.0.0.1"))
        );
        assert_eq!(
            decide(Expect::Header, LB, b"GET /announce"),
            Decision::Refuse(Refusal::Missing)
        );
        assert_eq!(
            decide(Expect::Header, LB, b"PROXY TCP4 1.2.3.4\n"),
            Decision::Refuse(Refusal::Invalid)
        );
    }

    #[test]
    fn others_may_not_send_a_header() {
        let mut v1 = Vec::new();
        proxy_protocol::write_v1(&mut v1, sa("192.0.2.7:5000"), sa("10.0.0.1:6969"));
        assert_eq!(
            decide(Expect::NoHeader, LB, &v1),
            Decision::Refuse(Refusal::Untrusted)
        );
        assert_eq!(
            decide(Expect::NoHeader, LB, &V2_SIGNATURE),
            Decision::Refuse(Refusal::Untrusted)
        );
        for prefix in [&b""[..], b"P", b"PROXY", b"\r\n", b"\r\n\r\n\0\r\nQU"] {
            assert_eq!(decide(Expect::NoHeader, LB, prefix), Decision::Wait);
        }
        for http in [
            &b"G"[..],
            b"GET / HTTP/1.1\r\n",
            b"PROXZ",
            b"\r\nGET",
            b"\r\n\r\n",
        ] {
            let d = decide(Expect::NoHeader, LB, http);
            assert!(d == pass(0, None) || d == Decision::Wait, "{http:?}");
        }
        assert_eq!(decide(Expect::NoHeader, LB, b"\r\nGET"), pass(0, None));
        assert_eq!(decide(Expect::Nothing, LB, &v1), pass(0, None));
    }
}
