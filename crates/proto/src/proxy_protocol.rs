//! The PROXY protocol header a TCP load balancer sends before a connection's first byte to say
//! whom it relays, versions 1 (a text line) and 2 (binary), per HAProxy's
//! [proxy-protocol.txt](https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt).
//!
//! [`parse`] takes the bytes a connection has received so far and answers
//! [`Parsed::Incomplete`], [`Parsed::Done`] with the header's length and the client's address, or
//! a [`ProxyProtocolError`] naming what was wrong. It reads no socket and allocates nothing, and
//! it decides within [`MAX_HEADER_BYTES`]: a sender can't make the caller buffer more than that.
//! The spec forbids guessing whether a header is there, so on a connection that must start with
//! one, anything else is an error, never "no header".
//!
//! [`write_v1`] and [`write_v2`] write the headers a proxy would send, for round-trip tests.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Longest version 1 line, CRLF included: `PROXY UNKNOWN` with two full IPv6 addresses and
/// ports (spec 2.1). The CRLF must come within these bytes.
pub const V1_MAX_BYTES: usize = 107;

/// Longest version 2 header accepted, its 16 fixed bytes included.
///
/// The spec's own limit is 16 + 65535 bytes, which would let any sender make each connection
/// hold 64 KiB before it says anything. What senders put there is far smaller: the address block
/// is at most 216 bytes (two `AF_UNIX` paths), and the TLVs proxies and cloud load balancers
/// send (ALPN, the authority of at most 255 bytes, a unique ID of at most 128, the SSL block with
/// version, cipher, algorithms and client certificate CN, endpoint IDs) add up to well under
/// 1 KiB. 4 KiB leaves room for four times that and is half the HTTP receive window
/// ([`crate::http::MAX_REQUEST_BYTES`]), so the buffer a connection already has holds it.
pub const V2_MAX_BYTES: usize = 4096;

/// The 12 bytes that start a version 2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Most bytes [`parse`] needs to decide: a longer input is [`Parsed::Done`] or an error.
pub const MAX_HEADER_BYTES: usize = V2_MAX_BYTES;

/// Result of [`parse`] on the bytes received so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// What came so far is the start of a header; read more and call again with the whole buffer.
    Incomplete,
    /// A whole header: the connection's data starts `header_len` bytes in.
    Done {
        header_len: usize,
        /// The client the proxy relays (its address and TCP port); `None` where the header
        /// carries none to use (version 1 `UNKNOWN`, version 2 `LOCAL`, an unspecified family,
        /// UDP or `AF_UNIX`): the socket's peer address stands.
        source: Option<SocketAddr>,
    },
}

/// Why the bytes are not a PROXY protocol header; the connection should be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyProtocolError {
    /// The first bytes are neither `PROXY ` nor the version 2 signature.
    NotProxy,
    /// Version 1: no CRLF within [`V1_MAX_BYTES`].
    V1TooLong,
    /// Version 1: a CR or LF that is not the CRLF ending the line.
    V1BareCrOrLf,
    /// Version 1: the protocol is not `TCP4`, `TCP6` or `UNKNOWN`.
    V1BadProtocol,
    /// Version 1: not exactly two addresses and two ports, single-space separated.
    V1BadFields,
    /// Version 1: an address not written as the protocol's family.
    V1BadAddress,
    /// Version 1: a port that is not a decimal in 0..=65535 without leading zeros.
    V1BadPort,
    /// Version 2: the version nibble is not 2.
    V2BadVersion,
    /// Version 2: a command other than `LOCAL` (0) and `PROXY` (1).
    V2BadCommand,
    /// Version 2: an unassigned address family or transport protocol.
    V2BadFamily,
    /// Version 2: the header is longer than [`V2_MAX_BYTES`].
    V2TooLong,
    /// Version 2: the length leaves no room for the addresses of the family announced.
    V2ShortAddresses,
}

impl ProxyProtocolError {
    pub fn reason(self) -> &'static str {
        match self {
            ProxyProtocolError::NotProxy => "no PROXY protocol header",
            ProxyProtocolError::V1TooLong => "PROXY v1 line longer than 107 bytes",
            ProxyProtocolError::V1BareCrOrLf => "PROXY v1 line with a CR or LF outside its CRLF",
            ProxyProtocolError::V1BadProtocol => "PROXY v1 protocol not TCP4, TCP6 or UNKNOWN",
            ProxyProtocolError::V1BadFields => "PROXY v1 line without two addresses and two ports",
            ProxyProtocolError::V1BadAddress => "PROXY v1 address invalid for its protocol",
            ProxyProtocolError::V1BadPort => "PROXY v1 port invalid",
            ProxyProtocolError::V2BadVersion => "PROXY v2 header with a version other than 2",
            ProxyProtocolError::V2BadCommand => "PROXY v2 command not LOCAL or PROXY",
            ProxyProtocolError::V2BadFamily => "PROXY v2 address family or protocol unassigned",
            ProxyProtocolError::V2TooLong => "PROXY v2 header longer than 4096 bytes",
            ProxyProtocolError::V2ShortAddresses => "PROXY v2 header too short for its addresses",
        }
    }
}

impl core::fmt::Display for ProxyProtocolError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for ProxyProtocolError {}

/// Reads the PROXY protocol header at the start of `buf`, version 1 or 2.
///
/// The answer depends only on the first [`MAX_HEADER_BYTES`] of `buf`; an error is given as soon
/// as the bytes so far can't start a header (a sender that is not a proxy is refused on its
/// first byte), and stays an error whatever comes after. Every strict prefix of a header is
/// [`Parsed::Incomplete`], so a header delivered a byte at a time is read as a whole one.
pub fn parse(buf: &[u8]) -> Result<Parsed, ProxyProtocolError> {
    if starts_as(buf, &V2_SIGNATURE) {
        parse_v2(buf)
    } else if starts_as(buf, V1_PREFIX) {
        parse_v1(buf)
    } else {
        Err(ProxyProtocolError::NotProxy)
    }
}

/// Appends the version 1 line for a TCP connection from `source` to `dest`. Mixed families are
/// written as `TCP6` with the IPv4 address v4-mapped, as the line has one family.
pub fn write_v1(out: &mut Vec<u8>, source: SocketAddr, dest: SocketAddr) {
    use std::io::Write;
    let (src, dst) = match (source.ip(), dest.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (IpAddr::V4(s), IpAddr::V4(d)),
        (s, d) => (IpAddr::V6(to_v6(s)), IpAddr::V6(to_v6(d))),
    };
    let proto = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    // Writing to a Vec can't fail.
    let _ = write!(
        out,
        "PROXY {proto} {src} {dst} {} {}\r\n",
        source.port(),
        dest.port()
    );
}

/// Appends a version 2 `PROXY` header for a TCP connection from `source` to `dest`, then `tlvs`
/// (raw type-length-value bytes, at most what keeps the header within [`V2_MAX_BYTES`] for
/// [`parse`] to take it). Mixed families are written as IPv6 with the IPv4 address v4-mapped.
pub fn write_v2(out: &mut Vec<u8>, source: SocketAddr, dest: SocketAddr, tlvs: &[u8]) {
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(0x20 | CMD_PROXY);
    let (fam, addrs) = match (source.ip(), dest.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (0x11, [&s.octets()[..], &d.octets()].concat()),
        (s, d) => (0x21, [to_v6(s).octets(), to_v6(d).octets()].concat()),
    };
    out.push(fam);
    let len = addrs.len() + 4 + tlvs.len();
    out.extend_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(&addrs);
    out.extend_from_slice(&source.port().to_be_bytes());
    out.extend_from_slice(&dest.port().to_be_bytes());
    out.extend_from_slice(tlvs);
}

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_FIXED: usize = 16;
const CMD_LOCAL: u8 = 0;
const CMD_PROXY: u8 = 1;
const AF_UNSPEC: u8 = 0;
const AF_INET: u8 = 1;
const AF_INET6: u8 = 2;
const AF_UNIX: u8 = 3;
const PROTO_UNSPEC: u8 = 0;
const PROTO_DGRAM: u8 = 2;

/// Whether `buf` and `sig` agree on the bytes both have (`buf` may be shorter or longer).
fn starts_as(buf: &[u8], sig: &[u8]) -> bool {
    buf.iter().zip(sig).all(|(a, b)| a == b)
}

fn parse_v1(buf: &[u8]) -> Result<Parsed, ProxyProtocolError> {
    let window = buf.get(..V1_MAX_BYTES).unwrap_or(buf);
    let more = || {
        if window.len() < V1_MAX_BYTES {
            Ok(Parsed::Incomplete)
        } else {
            Err(ProxyProtocolError::V1TooLong)
        }
    };
    // The first CR or LF must be the CRLF that ends the line (spec: "must not tolerate a single
    // CR or LF character to end the line"), even in the part `UNKNOWN` makes us ignore.
    let Some(end) = window.iter().position(|&b| b == b'\r' || b == b'\n') else {
        return more();
    };
    if window.get(end) == Some(&b'\n') {
        return Err(ProxyProtocolError::V1BareCrOrLf);
    }
    match window.get(end + 1) {
        None => more(),
        Some(b'\n') => {
            let line = window.get(V1_PREFIX.len()..end).unwrap_or_default();
            let source = parse_v1_fields(line)?;
            Ok(Parsed::Done {
                header_len: end + 2,
                source,
            })
        }
        Some(_) => Err(ProxyProtocolError::V1BareCrOrLf),
    }
}

/// The line after `PROXY ` and before its CRLF.
fn parse_v1_fields(line: &[u8]) -> Result<Option<SocketAddr>, ProxyProtocolError> {
    let mut fields = line.split(|&b| b == b' ');
    let v6 = match fields.next().unwrap_or_default() {
        // "the receiver must ignore anything presented before the CRLF"
        b"UNKNOWN" => return Ok(None),
        b"TCP4" => false,
        b"TCP6" => true,
        _ => return Err(ProxyProtocolError::V1BadProtocol),
    };
    let (Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(ProxyProtocolError::V1BadFields);
    };
    let src = parse_v1_addr(src, v6)?;
    parse_v1_addr(dst, v6)?;
    let sport = parse_v1_port(sport)?;
    parse_v1_port(dport)?;
    Ok(Some(SocketAddr::new(src, sport)))
}

fn parse_v1_addr(field: &[u8], v6: bool) -> Result<IpAddr, ProxyProtocolError> {
    let s = std::str::from_utf8(field).map_err(|_| ProxyProtocolError::V1BadAddress)?;
    // std's parsers take only the canonical forms: no leading zeros in IPv4 (octal confusion),
    // IPv6 hex groups with at most one `::`.
    let ip = if v6 {
        s.parse::<Ipv6Addr>().map(IpAddr::V6)
    } else {
        s.parse::<Ipv4Addr>().map(IpAddr::V4)
    };
    ip.map_err(|_| ProxyProtocolError::V1BadAddress)
}

fn parse_v1_port(field: &[u8]) -> Result<u16, ProxyProtocolError> {
    let digits = field.iter().all(u8::is_ascii_digit);
    let leading_zero = field.len() > 1 && field.first() == Some(&b'0');
    if field.is_empty() || field.len() > 5 || !digits || leading_zero {
        return Err(ProxyProtocolError::V1BadPort);
    }
    let n = field
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).map_err(|_| ProxyProtocolError::V1BadPort)
}

fn parse_v2(buf: &[u8]) -> Result<Parsed, ProxyProtocolError> {
    let Some(&ver_cmd) = buf.get(V2_SIGNATURE.len()) else {
        return Ok(Parsed::Incomplete);
    };
    if ver_cmd >> 4 != 2 {
        return Err(ProxyProtocolError::V2BadVersion);
    }
    let command = ver_cmd & 0x0f;
    if command != CMD_LOCAL && command != CMD_PROXY {
        return Err(ProxyProtocolError::V2BadCommand);
    }
    let Some(&fam) = buf.get(13) else {
        return Ok(Parsed::Incomplete);
    };
    let (family, transport) = (fam >> 4, fam & 0x0f);
    // LOCAL: "discard the protocol block including the family which is ignored".
    if command == CMD_PROXY && (family > AF_UNIX || transport > PROTO_DGRAM) {
        return Err(ProxyProtocolError::V2BadFamily);
    }
    let (Some(&hi), Some(&lo)) = (buf.get(14), buf.get(15)) else {
        return Ok(Parsed::Incomplete);
    };
    let header_len = V2_FIXED + usize::from(u16::from_be_bytes([hi, lo]));
    if header_len > V2_MAX_BYTES {
        return Err(ProxyProtocolError::V2TooLong);
    }
    // Addresses, then ports where the family has them; an unspecified family or transport has
    // none to read (spec: "the receiver should ignore address information").
    let addresses = match (family, transport) {
        _ if command == CMD_LOCAL => 0,
        (AF_UNSPEC, _) | (_, PROTO_UNSPEC) => 0,
        (AF_INET, _) => 2 * 4 + 2 * 2,
        (AF_INET6, _) => 2 * 16 + 2 * 2,
        _ => 2 * 108,
    };
    if header_len - V2_FIXED < addresses {
        return Err(ProxyProtocolError::V2ShortAddresses);
    }
    let Some(header) = buf.get(..header_len) else {
        return Ok(Parsed::Incomplete);
    };
    // TLVs after the addresses are skipped, as the spec allows: none changes the client's
    // address, and the length above frames them.
    let block = header.get(V2_FIXED..).unwrap_or_default();
    let source = match (command, family, transport) {
        // UDP and AF_UNIX fall back to UNSPEC, as the spec asks of receivers that don't use them.
        (CMD_PROXY, AF_INET, 1) => {
            let ip: [u8; 4] = array_at(block, 0);
            let port: [u8; 2] = array_at(block, 8);
            Some(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::from(ip)),
                u16::from_be_bytes(port),
            ))
        }
        (CMD_PROXY, AF_INET6, 1) => {
            let ip: [u8; 16] = array_at(block, 0);
            let port: [u8; 2] = array_at(block, 32);
            Some(SocketAddr::new(
                IpAddr::V6(Ipv6Addr::from(ip)),
                u16::from_be_bytes(port),
            ))
        }
        _ => None,
    };
    Ok(Parsed::Done { header_len, source })
}

/// `N` bytes of `block` at `at`; the caller checked the length (zeros otherwise, never a panic).
fn array_at<const N: usize>(block: &[u8], at: usize) -> [u8; N] {
    block
        .get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; N])
}

fn to_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{random_bytes, xorshift};
    use ProxyProtocolError as E;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn done(header_len: usize, source: Option<&str>) -> Result<Parsed, ProxyProtocolError> {
        Ok(Parsed::Done {
            header_len,
            source: source.map(sa),
        })
    }

    /// A version 2 header: version/command byte, family byte, then `block` (addresses and TLVs).
    fn v2(ver_cmd: u8, fam: u8, block: &[u8]) -> Vec<u8> {
        let len = u16::try_from(block.len()).unwrap().to_be_bytes();
        [&V2_SIGNATURE[..], &[ver_cmd, fam], &len, block].concat()
    }

    /// `header` parses to `want` whole, with data after it, and every strict prefix (the header
    /// delivered a byte at a time) is `Incomplete`.
    fn check_valid(header: &[u8], want: Option<&str>) {
        assert_eq!(parse(header), done(header.len(), want), "{header:?}");
        let with_data = [header, b"GET / HTTP/1.1\r\n\r\n"].concat();
        assert_eq!(parse(&with_data), done(header.len(), want));
        for n in 0..header.len() {
            assert_eq!(parse(&header[..n]), Ok(Parsed::Incomplete), "prefix {n}");
        }
    }

    #[test]
    fn v1_forms() {
        check_valid(
            b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
            Some("192.168.0.1:56324"),
        );
        check_valid(
            b"PROXY TCP6 2001:db8::1 ::1 0 65535\r\n",
            Some("[2001:db8::1]:0"),
        );
        check_valid(
            b"PROXY TCP6 ::ffff:1.2.3.4 ::1 7 8\r\n",
            Some("[::ffff:1.2.3.4]:7"),
        );
        check_valid(b"PROXY UNKNOWN\r\n", None);
        // UNKNOWN: whatever comes before the CRLF is ignored.
        check_valid(b"PROXY UNKNOWN ffff::1 garbage \x01\xff 65536\r\n", None);
        // The longest line the spec allows is 107 bytes, CRLF included.
        let g = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
        let longest = format!("PROXY UNKNOWN {g} {g} 65535 65535\r\n");
        assert_eq!(longest.len(), V1_MAX_BYTES);
        check_valid(longest.as_bytes(), None);
        let tcp6 = format!("PROXY TCP6 {g} {g} 65535 65535\r\n");
        check_valid(tcp6.as_bytes(), Some(&format!("[{g}]:65535")));
    }

    #[test]
    fn v1_errors() {
        let cases: &[(&[u8], ProxyProtocolError)] = &[
            (b"GET / HTTP/1.1\r\n\r\n", E::NotProxy),
            (b"proxy TCP4 1.1.1.1 1.1.1.1 1 1\r\n", E::NotProxy),
            (b"PROXY\r\n", E::NotProxy),
            (b"PROXYTCP4", E::NotProxy),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 1 1\n", E::V1BareCrOrLf),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 1 1\r\r\n", E::V1BareCrOrLf),
            (b"PROXY UNKNOWN \n\r\n", E::V1BareCrOrLf),
            (b"PROXY UNKNOWN \rx\r\n", E::V1BareCrOrLf),
            (b"PROXY \r\n", E::V1BadProtocol),
            (b"PROXY TCP5 1.1.1.1 1.1.1.1 1 1\r\n", E::V1BadProtocol),
            (b"PROXY tcp4 1.1.1.1 1.1.1.1 1 1\r\n", E::V1BadProtocol),
            (b"PROXY UDP4 1.1.1.1 1.1.1.1 1 1\r\n", E::V1BadProtocol),
            (b"PROXY UNKNOWNX\r\n", E::V1BadProtocol),
            (b"PROXY  TCP4 1.1.1.1 1.1.1.1 1 1\r\n", E::V1BadProtocol),
            (b"PROXY TCP4\r\n", E::V1BadFields),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 1\r\n", E::V1BadFields),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 1 1 \r\n", E::V1BadFields),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 1 1 1\r\n", E::V1BadFields),
            (b"PROXY TCP4 1.1.1.1  1.1.1.1 1 1\r\n", E::V1BadFields),
            (b"PROXY TCP4 01.1.1.1 1.1.1.1 1 1\r\n", E::V1BadAddress),
            (b"PROXY TCP4 1.1.1.1 1.1.1.256 1 1\r\n", E::V1BadAddress),
            (b"PROXY TCP4 ::1 1.1.1.1 1 1\r\n", E::V1BadAddress),
            (b"PROXY TCP6 1.1.1.1 ::1 1 1\r\n", E::V1BadAddress),
            (b"PROXY TCP6 ::1 [::1] 1 1\r\n", E::V1BadAddress),
            (b"PROXY TCP6 1::2::3 ::1 1 1\r\n", E::V1BadAddress),
            (b"PROXY TCP4 \xff.1.1.1 1.1.1.1 1 1\r\n", E::V1BadAddress),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 65536 1\r\n", E::V1BadPort),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 1 099999\r\n", E::V1BadPort),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 01 1\r\n", E::V1BadPort),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 -1 1\r\n", E::V1BadPort),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 +1 1\r\n", E::V1BadPort),
            (b"PROXY TCP4 1.1.1.1 1.1.1.1 1 1x\r\n", E::V1BadPort),
        ];
        for (input, err) in cases {
            assert_eq!(
                parse(input),
                Err(*err),
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        // Refused on the first byte that can't start a header, not after buffering.
        assert_eq!(parse(b"G"), Err(E::NotProxy));
        assert_eq!(parse(b"PROXX"), Err(E::NotProxy));
        assert_eq!(parse(b"PROXY UNKNOWN\n"), Err(E::V1BareCrOrLf));
        // No CRLF in the first 107 bytes: refused at 107, whatever follows.
        let mut long = b"PROXY UNKNOWN ".to_vec();
        long.resize(V1_MAX_BYTES - 1, b'x');
        assert_eq!(parse(&long), Ok(Parsed::Incomplete));
        long.push(b'\r');
        assert_eq!(parse(&long), Err(E::V1TooLong), "the LF would be byte 108");
        long.push(b'\n');
        assert_eq!(parse(&long), Err(E::V1TooLong));
        long.truncate(V1_MAX_BYTES);
        long.resize(500, b'x');
        assert_eq!(parse(&long), Err(E::V1TooLong));
    }

    #[test]
    fn v2_forms() {
        let tcp4 = v2(
            0x21,
            0x11,
            &[192, 0, 2, 1, 198, 51, 100, 2, 0x1a, 0xe1, 1, 187],
        );
        check_valid(&tcp4, Some("192.0.2.1:6881"));
        let src: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let block = [
            &src.octets()[..],
            &Ipv6Addr::LOCALHOST.octets(),
            &[0xff, 0xff, 0, 80],
        ]
        .concat();
        check_valid(&v2(0x21, 0x21, &block), Some("[2001:db8::7]:65535"));
        // TLVs after the addresses are skipped (a NOOP, an authority, a custom one).
        let tlvs = b"\x04\x00\x00\x02\x00\x0btracker.org\xea\x00\x03abc";
        let with_tlvs = v2(0x21, 0x11, &[&tcp4[16..], tlvs].concat());
        check_valid(&with_tlvs, Some("192.0.2.1:6881"));
        // LOCAL (a health check): the socket's address, whatever the family byte says.
        check_valid(&v2(0x20, 0x00, &[]), None);
        check_valid(&v2(0x20, 0xff, &[1, 2, 3]), None);
        check_valid(&v2(0x20, 0x11, &[]), None);
        // Unspecified family or transport: addresses ignored, any length.
        check_valid(&v2(0x21, 0x00, &[]), None);
        check_valid(&v2(0x21, 0x10, &[9; 3]), None);
        check_valid(&v2(0x21, 0x01, &[9; 40]), None);
        // UDP and AF_UNIX: valid, the address is not used.
        check_valid(&v2(0x21, 0x12, &[1; 12]), None);
        check_valid(&v2(0x21, 0x22, &[1; 36]), None);
        check_valid(&v2(0x21, 0x31, &[b'/'; 216]), None);
        check_valid(&v2(0x21, 0x32, &[b'/'; 220]), None);
        // The longest header taken.
        let mut longest = tcp4.clone();
        longest.resize(V2_MAX_BYTES, 0);
        let len = (V2_MAX_BYTES - 16) as u16;
        longest[14..16].copy_from_slice(&len.to_be_bytes());
        longest[28..31].copy_from_slice(&[0x04, 0x0f, 0xd1]); // a NOOP TLV of the rest
        check_valid(&longest, Some("192.0.2.1:6881"));
    }

    #[test]
    fn v2_errors() {
        let tcp4 = [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2];
        let cases: &[(Vec<u8>, ProxyProtocolError)] = &[
            (v2(0x11, 0x11, &tcp4), E::V2BadVersion),
            (v2(0x31, 0x11, &tcp4), E::V2BadVersion),
            (v2(0x01, 0x11, &tcp4), E::V2BadVersion),
            (v2(0x22, 0x11, &tcp4), E::V2BadCommand),
            (v2(0x2f, 0x11, &tcp4), E::V2BadCommand),
            (v2(0x21, 0x41, &tcp4), E::V2BadFamily),
            (v2(0x21, 0x13, &tcp4), E::V2BadFamily),
            (v2(0x21, 0xff, &tcp4), E::V2BadFamily),
            (v2(0x21, 0x11, &tcp4[..11]), E::V2ShortAddresses),
            (v2(0x21, 0x12, &[]), E::V2ShortAddresses),
            (v2(0x21, 0x21, &[0; 35]), E::V2ShortAddresses),
            (v2(0x21, 0x31, &[0; 215]), E::V2ShortAddresses),
            (v2(0x21, 0x11, &vec![0; V2_MAX_BYTES - 15]), E::V2TooLong),
            (v2(0x20, 0x00, &vec![0; 0xffff]), E::V2TooLong),
            ([&V2_SIGNATURE[..11], b"\x0b"].concat(), E::NotProxy),
            (b"\r\n\r\n\x01".to_vec(), E::NotProxy),
        ];
        for (input, err) in cases {
            assert_eq!(parse(input), Err(*err), "{input:x?}");
        }
        // Each is refused as soon as its byte arrives: the version at 13 bytes, the family at
        // 14, the length at 16, before the rest is buffered.
        assert_eq!(parse(&cases[0].0[..13]), Err(E::V2BadVersion));
        assert_eq!(parse(&cases[3].0[..13]), Err(E::V2BadCommand));
        assert_eq!(parse(&cases[5].0[..14]), Err(E::V2BadFamily));
        assert_eq!(parse(&cases[8].0[..16]), Err(E::V2ShortAddresses));
        assert_eq!(parse(&cases[12].0[..16]), Err(E::V2TooLong));
        for (_, e) in cases {
            assert!(!e.reason().is_empty());
            assert_eq!(e.to_string(), e.reason());
        }
    }

    #[test]
    fn round_trip() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..2000 {
            let r = xorshift(&mut rng);
            let v4 = SocketAddr::from((Ipv4Addr::from(r as u32), (r >> 32) as u16));
            let v6 = SocketAddr::from((
                Ipv6Addr::from(u128::from(r) << 64 | u128::from(xorshift(&mut rng))),
                (r >> 48) as u16,
            ));
            let (src, dst) = match i % 4 {
                0 => (v4, v4),
                1 => (v6, v6),
                2 => (v4, v6),
                _ => (v6, v4),
            };
            let mapped = |a: SocketAddr| SocketAddr::from((to_v6(a.ip()), a.port()));
            let want = if dst.is_ipv4() && src.is_ipv4() {
                src
            } else {
                mapped(src)
            };
            let mut out = Vec::new();
            write_v1(&mut out, src, dst);
            assert_eq!(
                parse(&out),
                Ok(Parsed::Done {
                    header_len: out.len(),
                    source: Some(want)
                })
            );
            out.clear();
            write_v2(&mut out, src, dst, b"\x04\x00\x01z");
            assert_eq!(
                parse(&out),
                Ok(Parsed::Done {
                    header_len: out.len(),
                    source: Some(want)
                })
            );
        }
    }

    #[test]
    fn never_panics_and_errors_stick() {
        let mut rng = 0x1234_5678_9abc_def1u64;
        let alphabet = b"PROXY TCP46UNKOW.:0123456789abcdef\r\n\x00\x11\x21\x20QIT";
        let mut tcp4 = Vec::new();
        write_v2(&mut tcp4, sa("1.2.3.4:5"), sa("6.7.8.9:10"), b"");
        let bases: [&[u8]; 3] = [b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", &tcp4, &V2_SIGNATURE];
        for i in 0..20_000 {
            let n = (xorshift(&mut rng) % 150) as usize;
            let base = bases[i % 3];
            let input = [
                base.get(..n % (base.len() + 1)).unwrap(),
                &random_bytes(&mut rng, alphabet, n),
            ]
            .concat();
            match parse(&input) {
                Ok(Parsed::Incomplete) => assert!(input.len() < MAX_HEADER_BYTES),
                Ok(Parsed::Done { header_len, .. }) => {
                    assert!(header_len <= input.len());
                    assert_eq!(parse(&input[..header_len]), parse(&input));
                    assert_eq!(parse(&input[..header_len - 1]), Ok(Parsed::Incomplete));
                }
                Err(e) => {
                    let longer = [&input[..], &input[..]].concat();
                    assert_eq!(parse(&longer), Err(e), "an error stays one");
                }
            }
        }
    }
}
