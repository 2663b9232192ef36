//! IP networks in opentracker's `ip[/bits]` syntax (`-A`, `access.stats`, `access.proxy`,
//! `livesync.cluster.node_ip`) and the test "is this client inside one of them".
//!
//! Shared by every feature that blesses networks: stats access (`stats.rs`), trusted proxies
//! (`client_ip.rs`) and whatever else needs it. COORDINATION NOTE for the access-list / client-IP
//! work: parse `access.proxy` values with [`Net::parse`] and test with [`Nets::contains`]; `-A`
//! nets land in `Config::blessed` (all permissions, as opentracker's `-A`), so a proxy check
//! should look at `Config::blessed` as well as its own list.
//!
//! As opentracker (`scan_ip6_net`), an IPv4 net is stored as its v4-mapped IPv6 net (bits + 96),
//! so one comparison serves both families, and a v4-mapped client address (`::ffff:a.b.c.d`,
//! what a dual-stack socket reports for an IPv4 client) matches an IPv4 net.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// One network: an address and a prefix length, in IPv6 form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Net {
    /// Network address with the host bits cleared.
    addr: [u8; 16],
    /// Prefix length over the 128-bit (possibly v4-mapped) address.
    bits: u8,
}

/// Why a net did not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// The part before `/` is not an IPv4 or IPv6 literal.
    BadAddress,
    /// The prefix is not a number, or is longer than the address (32 / 128).
    BadBits,
}

impl NetError {
    pub fn reason(self) -> &'static str {
        match self {
            NetError::BadAddress => "not an IP address",
            NetError::BadBits => "bad prefix length (at most /32 for IPv4, /128 for IPv6)",
        }
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for NetError {}

impl Net {
    /// `ip` (a single host: /32 or /128) or `ip/bits`; IPv6 may be bracketed (`[::1]/128`).
    /// Host bits after the prefix are ignored (`10.1.2.3/8` is `10.0.0.0/8`).
    pub fn parse(text: &str) -> Result<Net, NetError> {
        let text = text.trim();
        let (ip, bits) = match text.split_once('/') {
            Some((ip, bits)) => (ip, Some(bits)),
            None => (text, None),
        };
        let ip = ip
            .strip_prefix('[')
            .and_then(|i| i.strip_suffix(']'))
            .unwrap_or(ip);
        let ip: IpAddr = ip.parse().map_err(|_| NetError::BadAddress)?;
        let max: u8 = if ip.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            None => max,
            Some(b) if !b.is_empty() && b.bytes().all(|c| c.is_ascii_digit()) => {
                b.parse::<u8>().map_err(|_| NetError::BadBits)?
            }
            Some(_) => return Err(NetError::BadBits),
        };
        if bits > max {
            return Err(NetError::BadBits);
        }
        Ok(Net::new(ip, bits))
    }

    /// The net of `ip` with `bits` prefix bits (of the family's own width; clamped to it).
    pub fn new(ip: IpAddr, bits: u8) -> Net {
        let (addr, bits) = match ip {
            IpAddr::V4(a) => (a.to_ipv6_mapped().octets(), bits.min(32) + 96),
            IpAddr::V6(a) => (a.octets(), bits.min(128)),
        };
        Net {
            addr: mask(addr, bits),
            bits,
        }
    }

    /// Whether `ip` lies inside this net (v4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let a = match ip {
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            IpAddr::V6(a) => a.octets(),
        };
        mask(a, self.bits) == self.addr
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v6 = Ipv6Addr::from(self.addr);
        match v6.to_ipv4_mapped() {
            Some(v4) if self.bits >= 96 => write!(f, "{v4}/{}", self.bits - 96),
            _ => write!(f, "{v6}/{}", self.bits),
        }
    }
}

/// A list of nets; a client is inside if any net contains it. Small (opentracker allows 64
/// blessed nets), so a linear scan beats any tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Nets(pub Vec<Net>);

impl Nets {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn push(&mut self, net: Net) {
        if !self.0.contains(&net) {
            self.0.push(net);
        }
    }

    /// 127.0.0.0/8 and ::1: what ferrotracker lets read stats when no net is configured.
    pub fn loopback() -> Nets {
        Nets(vec![
            Net::new(IpAddr::V4([127, 0, 0, 0].into()), 8),
            Net::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
        ])
    }
}

fn mask(mut a: [u8; 16], bits: u8) -> [u8; 16] {
    for (i, byte) in a.iter_mut().enumerate() {
        let start = (i * 8) as u32;
        let keep = u32::from(bits).saturating_sub(start).min(8);
        *byte &= (0xffu16 << (8 - keep)) as u8;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_hosts_and_prefixes() {
        let n = Net::parse("127.0.0.1").unwrap();
        assert!(n.contains(ip("127.0.0.1")));
        assert!(!n.contains(ip("127.0.0.2")));
        assert!(n.contains(ip("::ffff:127.0.0.1")));
        assert_eq!(n.to_string(), "127.0.0.1/32");

        let n = Net::parse("10.1.2.3/8").unwrap();
        assert_eq!(n.to_string(), "10.0.0.0/8");
        assert!(n.contains(ip("10.255.0.1")));
        assert!(!n.contains(ip("11.0.0.1")));

        let n = Net::parse("[2001:db8::]/32").unwrap();
        assert!(n.contains(ip("2001:db8:ffff::1")));
        assert!(!n.contains(ip("2001:db9::1")));
        assert!(!n.contains(ip("10.0.0.1")));

        let n = Net::parse("0.0.0.0/0").unwrap();
        assert!(n.contains(ip("1.2.3.4")));
        assert!(!n.contains(ip("2001:db8::1")));
        assert!(Net::parse("::/0").unwrap().contains(ip("1.2.3.4")));
        let n = Net::parse("10.0.0.0/9").unwrap();
        assert!(n.contains(ip("10.127.0.1")) && !n.contains(ip("10.128.0.1")));
    }

    #[test]
    fn refuses_bad_nets() {
        for bad in [
            "",
            "x",
            "1.2.3",
            "1.2.3.4/",
            "1.2.3.4/33",
            "::1/129",
            "1.2.3.4/a",
            "/8",
        ] {
            assert!(Net::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Net::parse("1.2.3.4/33"), Err(NetError::BadBits));
        assert_eq!(Net::parse("nope/3"), Err(NetError::BadAddress));
    }

    #[test]
    fn lists_and_loopback() {
        let l = Nets::loopback();
        assert!(l.contains(ip("127.0.0.2")) && l.contains(ip("::1")));
        assert!(!l.contains(ip("10.0.0.1")));
        let mut n = Nets::default();
        n.push(Net::parse("10.0.0.0/8").unwrap());
        n.push(Net::parse("10.0.0.0/8").unwrap());
        assert_eq!(n.0.len(), 1);
        assert!(n.contains(ip("10.0.0.9")));
    }
}
