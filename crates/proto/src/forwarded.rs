//! The request headers a reverse proxy names its client in: `X-Forwarded-For`, a list each proxy
//! appends its client to; `X-Real-IP` (nginx), `CF-Connecting-IP` (Cloudflare) and
//! `True-Client-IP` (Akamai, Cloudflare), one address each; and `Forwarded`
//! ([RFC 7239](https://www.rfc-editor.org/rfc/rfc7239)), the standard list.
//!
//! [`ProxyHeader`] is the one an operator trusts. [`crate::http::parse_request`] keeps that
//! header's lines only, as a [`ClientHeader`], and [`ClientHeader::nodes`] reads them into the
//! addresses they name, from the leftmost (what the client or the first proxy wrote) to the
//! rightmost (what the last proxy appended). Which of them to believe depends on which proxies
//! are trusted, so that decision is the caller's (`ferrotracker_core::client_ip`). Nothing here
//! allocates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The header a trusted proxy names its client in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ProxyHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`: entries are `ip`, `[v6]`, `v4:port` or
    /// `[v6]:port`.
    #[default]
    XForwardedFor,
    /// `X-Real-IP: client` (nginx's `proxy_set_header X-Real-IP $remote_addr`).
    XRealIp,
    /// `CF-Connecting-IP: client` (Cloudflare).
    CfConnectingIp,
    /// `True-Client-IP: client` (Akamai, Cloudflare Enterprise).
    TrueClientIp,
    /// `Forwarded: for=client;proto=https, for="[2001:db8::1]:4711"` (RFC 7239): the `for=`
    /// node of each element.
    Forwarded,
}

impl ProxyHeader {
    /// Every header, in the order of the enum.
    pub const ALL: [ProxyHeader; 5] = [
        ProxyHeader::XForwardedFor,
        ProxyHeader::XRealIp,
        ProxyHeader::CfConnectingIp,
        ProxyHeader::TrueClientIp,
        ProxyHeader::Forwarded,
    ];

    /// The header's name as usually written (requests match it in any case).
    pub fn name(self) -> &'static str {
        match self {
            ProxyHeader::XForwardedFor => "X-Forwarded-For",
            ProxyHeader::XRealIp => "X-Real-IP",
            ProxyHeader::CfConnectingIp => "CF-Connecting-IP",
            ProxyHeader::TrueClientIp => "True-Client-IP",
            ProxyHeader::Forwarded => "Forwarded",
        }
    }

    /// The header called `name`, in any case (the value of a configuration key).
    pub fn from_name(name: &str) -> Option<ProxyHeader> {
        ProxyHeader::ALL
            .into_iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
    }

    /// A list that every proxy appends to (`X-Forwarded-For`, `Forwarded`), not one address.
    pub fn is_list(self) -> bool {
        matches!(self, ProxyHeader::XForwardedFor | ProxyHeader::Forwarded)
    }
}

impl core::fmt::Display for ProxyHeader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Lines of one header kept per request: the last ones, where the entries a trusted proxy
/// chain appended are.
pub const MAX_FORWARDED_LINES: usize = 4;

/// The lines of the configured [`ProxyHeader`] in one request, in order, borrowed from the
/// receive buffer. Several lines of a list header are one comma-separated list (RFC 9110 5.3): a
/// proxy may add its own line rather than append to the client's. Only the last
/// [`MAX_FORWARDED_LINES`] are kept (no allocation per request), but all are counted, so a
/// single-address header given twice is known to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientHeader<'a> {
    header: ProxyHeader,
    lines: [&'a [u8]; MAX_FORWARDED_LINES],
    len: usize,
    count: usize,
}

/// One place in a [`ClientHeader`]: an address, or a node that names none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Node {
    /// An IP address, canonical (v4-mapped IPv6 becomes IPv4); a port, if given, dropped.
    Ip(IpAddr),
    /// No address: RFC 7239's `unknown` and obfuscated `_name` nodes, a `Forwarded` element
    /// without `for=` (or with two), the rest of a `Forwarded` line after a syntax error, an entry
    /// that is not an address, or a single-address header that is not given exactly once.
    Unknown,
}

impl<'a> ClientHeader<'a> {
    /// A request without the header.
    pub const fn empty(header: ProxyHeader) -> ClientHeader<'a> {
        ClientHeader {
            header,
            lines: [&[]; MAX_FORWARDED_LINES],
            len: 0,
            count: 0,
        }
    }

    /// The header as these lines (values, without the name) would give it.
    pub fn from_lines(header: ProxyHeader, lines: &[&'a [u8]]) -> Self {
        let mut h = ClientHeader::empty(header);
        for line in lines {
            h.push(line);
        }
        h
    }

    /// Which header the lines are of.
    pub fn header(&self) -> ProxyHeader {
        self.header
    }

    /// The request has no line of the header.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The kept lines, first to last (the last [`MAX_FORWARDED_LINES`]).
    pub fn lines(&self) -> &[&'a [u8]] {
        self.lines.get(..self.len).unwrap_or_default()
    }

    /// How many lines the request had, kept or not (saturating).
    pub fn line_count(&self) -> usize {
        self.count
    }

    /// The nodes of the kept lines, from the leftmost to the rightmost. A single-address header
    /// gives one node, [`Node::Unknown`] unless the request has exactly one line of it.
    pub fn nodes(&self) -> Nodes<'a, '_> {
        Nodes {
            header: self,
            next_line: 0,
            rest: None,
        }
    }

    pub(crate) fn push(&mut self, line: &'a [u8]) {
        self.count = self.count.saturating_add(1);
        if self.len == MAX_FORWARDED_LINES {
            self.lines.rotate_left(1);
            self.len -= 1;
        }
        if let Some(slot) = self.lines.get_mut(self.len) {
            *slot = line;
            self.len += 1;
        }
    }
}

/// The iterator of [`ClientHeader::nodes`].
#[derive(Clone, Debug)]
pub struct Nodes<'a, 'h> {
    header: &'h ClientHeader<'a>,
    next_line: usize,
    /// What is left of the current line of a list header.
    rest: Option<&'a [u8]>,
}

impl Iterator for Nodes<'_, '_> {
    type Item = Node;

    fn next(&mut self) -> Option<Node> {
        let kind = self.header.header;
        loop {
            if let Some(rest) = self.rest {
                if kind == ProxyHeader::Forwarded {
                    match forwarded_element(rest) {
                        Element::Node(node, more) => {
                            self.rest = more;
                            return Some(node);
                        }
                        Element::Empty(more) => self.rest = more,
                        Element::Malformed => {
                            self.rest = None;
                            return Some(Node::Unknown);
                        }
                    }
                    continue;
                }
                let (entry, more) = split_once(rest, b',');
                self.rest = more;
                return Some(entry_node(entry));
            }
            let line = *self.header.lines().get(self.next_line)?;
            self.next_line += 1;
            if kind.is_list() {
                self.rest = Some(line);
            } else if self.next_line > 1 {
                return None;
            } else if self.header.count != 1 {
                // Given twice: two parties claim to be the proxy, and only one can be.
                return Some(Node::Unknown);
            } else {
                return Some(entry_node(line));
            }
        }
    }
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

/// One `X-Forwarded-For` entry or single-address header value: blanks around it trimmed; `ip`,
/// `[v6]`, and, as some proxies write them, `v4:port` and `[v6]:port`.
fn entry_node(entry: &[u8]) -> Node {
    let entry = entry.trim_ascii();
    let ip = parse_ip(entry).or_else(|| {
        let s = std::str::from_utf8(entry).ok()?;
        s.parse::<SocketAddr>().ok().map(|a| a.ip().to_canonical())
    });
    ip.map_or(Node::Unknown, Node::Ip)
}

/// What [`forwarded_element`] found at the start of a `Forwarded` line's rest.
enum Element<'a> {
    /// An element's node, and the rest after its comma (`None`: the line ended).
    Node(Node, Option<&'a [u8]>),
    /// An empty list element (`a, , b`), which lists allow (RFC 9110 5.6.1).
    Empty(Option<&'a [u8]>),
    /// Not RFC 7239 syntax: nothing after this point can be framed.
    Malformed,
}

/// The longest `for=` value that can be an address: `"[` 39 characters of IPv6 `]:65535"`,
/// with room for an IPv4-suffixed form. Longer ones are obfuscated names or garbage.
const MAX_NODE: usize = 64;

/// Reads one element (`pair *( ";" pair )`, `pair = token "=" ( token / quoted-string )`) from
/// the start of `s`, up to its comma. Parameter names match in any case; whitespace is allowed
/// around `;`, `,` and pairs, as some proxies write it. A token value may also hold `:`, `[` and
/// `]`, so unquoted `for=[2001:db8::1]:80` or `for=2001:db8::1`, which some proxies send though
/// RFC 7239 says to quote them, still name their address.
fn forwarded_element(s: &[u8]) -> Element<'_> {
    let mut s = s;
    let mut node: Option<Node> = None;
    let mut fors = 0u32;
    let mut pairs = 0u32;
    loop {
        s = s.trim_ascii_start();
        match s.first() {
            None => return finish(node, fors, pairs, None),
            Some(b',') => return finish(node, fors, pairs, s.get(1..)),
            Some(b';') => {
                s = s.get(1..).unwrap_or_default();
                continue;
            }
            Some(_) => {}
        }
        let name_len = s.iter().take_while(|&&b| is_tchar(b)).count();
        let (name, after) = s.split_at(name_len);
        if name.is_empty() || after.first() != Some(&b'=') {
            return Element::Malformed;
        }
        let after = after.get(1..).unwrap_or_default();
        let mut buf = [0u8; MAX_NODE];
        let (value, rest) = if after.first() == Some(&b'"') {
            match quoted(after.get(1..).unwrap_or_default(), &mut buf) {
                Some(v) => v,
                None => return Element::Malformed,
            }
        } else {
            let n = after
                .iter()
                .take_while(|&&b| is_tchar(b) || matches!(b, b':' | b'[' | b']'))
                .count();
            let (v, rest) = after.split_at(n);
            if v.is_empty() {
                return Element::Malformed;
            }
            (Some(v), rest)
        };
        let rest = rest.trim_ascii_start();
        if !matches!(rest.first(), None | Some(b';') | Some(b',')) {
            return Element::Malformed;
        }
        pairs += 1;
        if name.eq_ignore_ascii_case(b"for") {
            fors += 1;
            // A value too long for the buffer names no address.
            node = Some(value.map_or(Node::Unknown, forwarded_node));
        }
        s = rest;
    }
}

/// The element's node once its pairs are read: its one `for=`, else unknown.
fn finish(node: Option<Node>, fors: u32, pairs: u32, more: Option<&[u8]>) -> Element<'_> {
    match (node, fors, pairs) {
        (_, _, 0) => Element::Empty(more),
        (Some(node), 1, _) => Element::Node(node, more),
        _ => Element::Node(Node::Unknown, more),
    }
}

/// A quoted-string's content (after the opening quote), unescaped into `buf`, and what follows
/// the closing quote. The content is `None` if longer than `buf`; the whole is `None` if the
/// quote is never closed or holds a control character.
fn quoted<'b, 'a>(
    s: &'a [u8],
    buf: &'b mut [u8; MAX_NODE],
) -> Option<(Option<&'b [u8]>, &'a [u8])> {
    let mut n = 0usize;
    let mut fits = true;
    let mut i = 0usize;
    loop {
        let &b = s.get(i)?;
        let c = match b {
            b'"' => break,
            b'\\' => {
                i += 1;
                *s.get(i)?
            }
            _ => b,
        };
        if c != b'\t' && (c < 0x20 || c == 0x7f) {
            return None;
        }
        match buf.get_mut(n) {
            Some(slot) => *slot = c,
            None => fits = false,
        }
        n += 1;
        i += 1;
    }
    let rest = s.get(i + 1..).unwrap_or_default();
    let value = if fits { buf.get(..n) } else { None };
    Some((value, rest))
}

/// An RFC 7239 node: `nodename [ ":" port ]`, the name an IPv4 address, a bracketed IPv6
/// address, `unknown` or an obfuscated `_name`; the port digits or an obfuscated `_port`.
/// An unbracketed IPv6 address is taken too (see [`forwarded_element`]).
fn forwarded_node(v: &[u8]) -> Node {
    let (name, port) = if let Some(inner) = v.strip_prefix(b"[") {
        let Some(close) = inner.iter().position(|&b| b == b']') else {
            return Node::Unknown;
        };
        let (ip, after) = inner.split_at(close);
        let port = match after.get(1..).unwrap_or_default() {
            [] => None,
            [b':', port @ ..] => Some(port),
            _ => return Node::Unknown,
        };
        let Some(ip) = std::str::from_utf8(ip)
            .ok()
            .and_then(|s| s.parse::<Ipv6Addr>().ok())
        else {
            return Node::Unknown;
        };
        (Some(IpAddr::V6(ip)), port)
    } else if let Some(ip) = std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse::<Ipv6Addr>().ok())
    {
        (Some(IpAddr::V6(ip)), None)
    } else {
        let (name, port) = split_once(v, b':');
        let ip = std::str::from_utf8(name)
            .ok()
            .and_then(|s| s.parse::<Ipv4Addr>().ok());
        (ip.map(IpAddr::V4), port)
    };
    let port_ok = port.map_or(true, |p| {
        let digits = !p.is_empty() && p.len() <= 5 && p.iter().all(u8::is_ascii_digit);
        digits || is_obfuscated(p)
    });
    match name {
        Some(ip) if port_ok => Node::Ip(ip.to_canonical()),
        _ => Node::Unknown,
    }
}

/// `"_" 1*( ALPHA / DIGIT / "." / "_" / "-" )`.
fn is_obfuscated(v: &[u8]) -> bool {
    v.len() > 1
        && v.first() == Some(&b'_')
        && v.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// RFC 9110's token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `s` up to the first `sep`, and what follows it (`None` if there is no `sep`).
fn split_once(s: &[u8], sep: u8) -> (&[u8], Option<&[u8]>) {
    match s.iter().position(|&b| b == sep) {
        Some(i) => (s.get(..i).unwrap_or_default(), s.get(i + 1..)),
        None => (s, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{random_bytes, xorshift};

    fn ip(s: &str) -> Node {
        Node::Ip(s.parse().unwrap())
    }

    const U: Node = Node::Unknown;

    fn nodes(header: ProxyHeader, lines: &[&str]) -> Vec<Node> {
        let lines: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        ClientHeader::from_lines(header, &lines).nodes().collect()
    }

    #[test]
    fn names() {
        for h in ProxyHeader::ALL {
            assert_eq!(ProxyHeader::from_name(h.name()), Some(h));
            assert_eq!(
                ProxyHeader::from_name(&h.name().to_ascii_lowercase()),
                Some(h)
            );
            assert_eq!(h.to_string(), h.name());
        }
        assert_eq!(
            ProxyHeader::from_name("x-real-ip"),
            Some(ProxyHeader::XRealIp)
        );
        assert_eq!(ProxyHeader::from_name("X-Real-IP "), None);
        assert_eq!(ProxyHeader::from_name("Forwarded-For"), None);
        assert_eq!(ProxyHeader::default(), ProxyHeader::XForwardedFor);
    }

    #[test]
    fn x_forwarded_for_entries() {
        let x = |lines: &[&str]| nodes(ProxyHeader::XForwardedFor, lines);
        assert_eq!(x(&[]), []);
        assert_eq!(x(&[""]), [U]);
        assert_eq!(x(&["9.9.9.9"]), [ip("9.9.9.9")]);
        assert_eq!(
            x(&[" 6.6.6.6 ,9.9.9.9, unknown,,1.2.3.4:5678"]),
            [ip("6.6.6.6"), ip("9.9.9.9"), U, U, ip("1.2.3.4")]
        );
        assert_eq!(
            x(&["[2001:db8::1]:443, [2001:db8::2], 2001:db8::3, ::ffff:1.2.3.4"]),
            [
                ip("2001:db8::1"),
                ip("2001:db8::2"),
                ip("2001:db8::3"),
                ip("1.2.3.4")
            ]
        );
        // Several lines are one list, in order.
        assert_eq!(
            x(&["1.1.1.1, 2.2.2.2", "3.3.3.3"]),
            [ip("1.1.1.1"), ip("2.2.2.2"), ip("3.3.3.3")]
        );
        assert_eq!(x(&["1.2.3.4/8", "1.2.3.4:99999", "\u{ff}"]), [U, U, U]);
    }

    #[test]
    fn single_address_headers() {
        for h in [
            ProxyHeader::XRealIp,
            ProxyHeader::CfConnectingIp,
            ProxyHeader::TrueClientIp,
        ] {
            assert!(!h.is_list());
            let n = |lines: &[&str]| nodes(h, lines);
            assert_eq!(n(&[]), []);
            assert_eq!(n(&[" 203.0.113.9 "]), [ip("203.0.113.9")]);
            assert_eq!(n(&["2001:db8::9"]), [ip("2001:db8::9")]);
            assert_eq!(n(&["[2001:db8::9]:80"]), [ip("2001:db8::9")]);
            assert_eq!(n(&["::ffff:192.0.2.1"]), [ip("192.0.2.1")]);
            // One address: a list, garbage or an empty value names none.
            assert_eq!(n(&["1.1.1.1, 2.2.2.2"]), [U]);
            assert_eq!(n(&["unknown"]), [U]);
            assert_eq!(n(&[""]), [U]);
            // Given twice, even the same: which line is the proxy's can't be told.
            assert_eq!(n(&["1.1.1.1", "1.1.1.1"]), [U]);
            assert_eq!(n(&["1.1.1.1", "2.2.2.2", "3", "4", "5"]), [U]);
        }
    }

    #[test]
    fn forwarded_elements() {
        let f = |lines: &[&str]| nodes(ProxyHeader::Forwarded, lines);
        // RFC 7239's examples.
        assert_eq!(f(&[r#"for="_gazonk""#]), [U]);
        assert_eq!(
            f(&[r#"For="[2001:db8:cafe::17]:4711""#]),
            [ip("2001:db8:cafe::17")]
        );
        assert_eq!(
            f(&["for=192.0.2.60;proto=http;by=203.0.113.43"]),
            [ip("192.0.2.60")]
        );
        assert_eq!(
            f(&["for=192.0.2.43, for=198.51.100.17"]),
            [ip("192.0.2.43"), ip("198.51.100.17")]
        );
        assert_eq!(
            f(&["for=192.0.2.43,for=\"[2001:db8:cafe::17]\",for=unknown"]),
            [ip("192.0.2.43"), ip("2001:db8:cafe::17"), U]
        );
        assert_eq!(
            f(&["for=192.0.2.43, for=198.51.100.17;by=203.0.113.60;proto=http;host=example.com"]),
            [ip("192.0.2.43"), ip("198.51.100.17")]
        );
        // Names in any case; the `for` may come anywhere in its element; ports and obfuscated
        // ports; quoted IPv4; whitespace around separators.
        assert_eq!(
            f(&[r#"proto=https ; FOR="192.0.2.1:8080" ;by=_x , fOr=192.0.2.2:_p"#]),
            [ip("192.0.2.1"), ip("192.0.2.2")]
        );
        // Several lines, empty elements and empty pairs.
        assert_eq!(
            f(&["for=1.1.1.1,, ;", " , for=2.2.2.2;;proto=http", ""]),
            [ip("1.1.1.1"), ip("2.2.2.2")]
        );
        // Elements that name no address.
        assert_eq!(f(&["proto=https"]), [U], "no for=");
        assert_eq!(f(&["for=1.1.1.1;for=2.2.2.2"]), [U], "two for=");
        assert_eq!(
            f(&["for=UNKNOWN, for=_hidden, for=\"_a.b-c:_p\""]),
            [U, U, U]
        );
        assert_eq!(f(&["for=\"[2001:db8::1\"", "for=\"[::1]x\""]), [U, U]);
        assert_eq!(
            f(&["for=1.2.3.4:123456", "for=1.2.3.4:", "for=1.2.3.4:_"]),
            [U, U, U]
        );
        assert_eq!(f(&["for=\"01.2.3.4\"", "for=\"1.2.3.4/8\""]), [U, U]);
        // A quoted value too long for an address, escapes in a quoted value.
        let long = format!("for=\"{}\", for=1.1.1.1", "x".repeat(200));
        assert_eq!(f(&[&long]), [U, ip("1.1.1.1")]);
        assert_eq!(
            f(&[r#"for="\[2001:db8::\1]"; by="a\"b,c""#]),
            [ip("2001:db8::1")]
        );
        // Commas and semicolons inside quotes don't split.
        assert_eq!(
            f(&[r#"by="x,y;z";for=3.3.3.3, for=4.4.4.4"#]),
            [ip("3.3.3.3"), ip("4.4.4.4")]
        );
        // Unquoted IPv6, which RFC 7239 forbids and some proxies send.
        assert_eq!(
            f(&["for=2001:db8::5, for=[2001:db8::6]:80"]),
            [ip("2001:db8::5"), ip("2001:db8::6")]
        );
        // A syntax error: the rest of that line is one unknown node; other lines still count.
        assert_eq!(
            f(&["for=1.1.1.1, for=\"2.2.2.2", "for=3.3.3.3"]),
            [ip("1.1.1.1"), U, ip("3.3.3.3")]
        );
        assert_eq!(f(&["for 1.1.1.1"]), [U]);
        assert_eq!(f(&["for=1.1.1.1 x"]), [U]);
        assert_eq!(f(&["for="]), [U]);
        assert_eq!(f(&["=1.1.1.1"]), [U]);
        assert_eq!(f(&["for=1.1.1.1;\"x\"=y, for=2.2.2.2"]), [U]);
        assert_eq!(f(&["for=\"a\u{1}\""]), [U]);
    }

    #[test]
    fn never_panics() {
        let alphabet = b"for=\"[]:;, \\_unknown0123456789abcdef.\x00\xff\tFOR";
        let mut rng = 0x0bad_cafe_dead_beefu64;
        for i in 0..20_000 {
            let n = (xorshift(&mut rng) % 120) as usize;
            let a = random_bytes(&mut rng, alphabet, n);
            let b = random_bytes(&mut rng, alphabet, n / 2);
            let header = ProxyHeader::ALL[i % 5];
            let h = ClientHeader::from_lines(header, &[&a, &b]);
            let count = h.nodes().count();
            assert!(count <= a.len() + b.len() + 2);
            if !header.is_list() {
                assert_eq!(count, 1);
            }
            for node in h.nodes() {
                if let Node::Ip(ip) = node {
                    assert_eq!(ip, ip.to_canonical());
                }
            }
        }
    }
}
