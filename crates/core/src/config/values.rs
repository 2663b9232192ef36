//! Parsers of config values: each takes the text after the key (or a flag's argument) and
//! says in its error what is wrong with it. Shared by flags and file keys.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use super::{ConfigErrorKind, MemoryLimit, DEFAULT_PORT, LIVESYNC_PORT};
use crate::nets::Net;

/// opentracker's `scan_ip6_port`: `ip`, `v4:port`, `[v6]:port`, bare `v6`, and also `v6.port` /
/// `[v6].port`; the port defaults to 6969. A bare v6 address ending in `:digits` is an address
/// (`::1:80` is `[::1:80]:6969`), as in opentracker; write `[::1]:80` for a port.
pub(super) fn parse_listen_addr(text: &str) -> Result<SocketAddr, ConfigErrorKind> {
    parse_addr_with_port(text, DEFAULT_PORT)
}

/// As [`parse_listen_addr`], with `default_port` where `text` has no port.
pub(super) fn parse_addr_with_port(
    text: &str,
    default_port: u16,
) -> Result<SocketAddr, ConfigErrorKind> {
    let bad_addr = |why: &str| bad(format!("bad address `{text}`: {why}"));
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    let (host, port, bracketed) = if let Some(inner) = text.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| bad_addr("missing `]`"))?;
        let port = if after.is_empty() {
            None
        } else {
            let port = after.strip_prefix(':').or_else(|| after.strip_prefix('.'));
            Some(port.ok_or_else(|| bad_addr("expected `:port` after `]`"))?)
        };
        (host, port, true)
    } else if text.matches(':').count() > 1 {
        // Unbracketed v6: only `.` can separate the port.
        let (host, port) = text
            .rsplit_once('.')
            .ok_or_else(|| bad_addr("not an IP address"))?;
        (host, Some(port), false)
    } else {
        let (host, port) = text
            .split_once(':')
            .ok_or_else(|| bad_addr("not an IP address"))?;
        (host, Some(port), false)
    };
    let ip: IpAddr = host.parse().map_err(|_| bad_addr("not an IP address"))?;
    if bracketed && ip.is_ipv4() {
        return Err(bad_addr("brackets are for IPv6 addresses"));
    }
    let port = match port {
        None => default_port,
        Some(port) => parse_port(port).map_err(|why| match why {
            PortError::NotANumber => bad_addr("bad port"),
            PortError::OutOfRange => bad_addr("port out of range"),
        })?,
    };
    Ok(SocketAddr::new(ip, port))
}

pub(super) enum PortError {
    NotANumber,
    OutOfRange,
}

/// Decimal digits only; 0 is allowed (an ephemeral port, which tests use).
pub(super) fn parse_port(text: &str) -> Result<u16, PortError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PortError::NotANumber);
    }
    text.parse().map_err(|_| PortError::OutOfRange)
}

/// A decimal number within `b`.
pub(super) fn parse_number<T: TryFrom<u64>>(text: &str, b: Bounds) -> Result<T, ConfigErrorKind> {
    if text.is_empty() || !text.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad(format!("bad number `{text}`")));
    }
    // Digits only: a parse failure is a number beyond u64.
    let n = text
        .parse::<u64>()
        .map_err(|_| bad(too_large(text, b.max)))?;
    b.check(n)?;
    T::try_from(n).map_err(|_| bad(too_large(text, b.max)))
}

/// Inclusive bounds of a numeric key; every numeric key has one (see [`NUMBERS`]), so no
/// operator-set value can overflow the arithmetic that uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub key: &'static str,
    pub min: u64,
    pub max: u64,
}

impl Bounds {
    pub(super) const fn new(key: &'static str, min: u64, max: u64) -> Bounds {
        Bounds { key, min, max }
    }

    pub(super) fn check(&self, n: u64) -> Result<(), ConfigErrorKind> {
        if n < self.min {
            Err(bad(too_small(n, self.min)))
        } else if n > self.max {
            Err(bad(too_large(n, self.max)))
        } else {
            Ok(())
        }
    }
}

pub(super) fn too_large<T: fmt::Display>(n: T, max: u64) -> String {
    format!("must be at most {max}, not {n}")
}

/// `auto`, `0` (no ceiling) or MiB within `b`.
pub(super) fn parse_memory_limit(text: &str, b: Bounds) -> Result<MemoryLimit, ConfigErrorKind> {
    if text.eq_ignore_ascii_case("auto") {
        return Ok(MemoryLimit::Auto);
    }
    Ok(match parse_number::<u64>(text, b)? {
        0 => MemoryLimit::Unlimited,
        n => MemoryLimit::Bytes(n << 20),
    })
}

pub(super) fn too_small<T: fmt::Display>(n: T, min: u64) -> String {
    format!("must be at least {min}, not {n}")
}

pub(super) fn parse_bool(text: &str) -> Result<bool, ConfigErrorKind> {
    match text.to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" | "1" => Ok(true),
        "off" | "no" | "false" | "0" => Ok(false),
        _ => Err(bad(format!(
            "bad switch `{text}`: use on/off, yes/no, true/false or 1/0"
        ))),
    }
}

/// The redirect target goes verbatim into a `Location:` header, so no whitespace or control
/// characters (which would split or inject headers).
pub(super) fn parse_url(text: &str) -> Result<String, ConfigErrorKind> {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(format!(
            "bad URL `{}`: spaces and control characters are not allowed",
            text.escape_debug()
        )));
    }
    Ok(text.to_string())
}

/// `ip[/bits]` as opentracker's `scan_ip6_net`.
pub(super) fn parse_net(text: &str) -> Result<Net, ConfigErrorKind> {
    Net::parse(text).map_err(|e| bad(format!("bad network `{text}`: {e}")))
}

/// The stats path as opentracker compares it: the raw path without leading '/'. One leading
/// '/' is forgiven; empty, `announce…`/`sc…` (routed before stats), spaces, '?' and '#' are not.
pub(super) fn parse_stats_path(text: &str) -> Result<String, ConfigErrorKind> {
    let path = text.trim_start_matches('/');
    let why = if path.is_empty() {
        Some("must not be empty")
    } else if path.starts_with('a') || path.starts_with("sc") {
        Some("paths starting with `a` are announces and with `sc` scrapes")
    } else if path
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#')
    {
        Some("no spaces, control characters, `?` or `#`")
    } else {
        None
    };
    match why {
        Some(why) => Err(bad(format!("bad stats path `{text}`: {why}"))),
        None => Ok(path.to_string()),
    }
}

/// A file or directory path: any non-empty text (no inline comments, so `#` is part of it).
pub(super) fn parse_path(text: &str) -> Result<PathBuf, ConfigErrorKind> {
    if text.is_empty() || text.chars().any(char::is_control) {
        return Err(bad(format!("bad path `{text}`")));
    }
    Ok(PathBuf::from(text))
}

/// A user name as `getpwnam` takes it.
pub(super) fn parse_user(text: &str) -> Result<String, ConfigErrorKind> {
    let ok = !text.is_empty()
        && text.len() <= 32
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-$".contains(c));
    if ok {
        Ok(text.to_string())
    } else {
        Err(bad(format!("bad user name `{text}`")))
    }
}

pub(super) fn bad(why: String) -> ConfigErrorKind {
    ConfigErrorKind::BadValue(why)
}

/// An IPv4 address written v4-mapped (`[::ffff:10.0.0.1]`) as the IPv4 address it is, so that
/// `[::ffff:0.0.0.0]` is the unspecified address it means, multicast takes it as IPv4, and a
/// peer is recognised as this node however either is written.
pub(super) fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// As a listen address, but the port defaults to 9696 (`[IPv6]` without a port included).
pub(super) fn parse_livesync_addr(text: &str) -> Result<SocketAddr, ConfigErrorKind> {
    let bracketed = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
    let ip = match bracketed {
        Some(inner) => inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => text.parse::<IpAddr>().ok(),
    };
    match ip {
        Some(ip) => Ok(SocketAddr::new(ip, LIVESYNC_PORT)),
        None => parse_listen_addr(text),
    }
}

/// A shared key: 32 to 128 hex digits (16 to 64 bytes), e.g. `openssl rand -hex 32`.
pub(super) fn parse_key(text: &str) -> Result<Vec<u8>, ConfigErrorKind> {
    let digits = text.as_bytes();
    // `% 2` rather than `is_multiple_of`: that is newer than our minimum Rust (1.80).
    #[allow(clippy::manual_is_multiple_of)]
    let odd = digits.len() % 2 != 0;
    if odd || !(32..=128).contains(&digits.len()) {
        return Err(bad(
            "a key is 32 to 128 hex digits (16 to 64 bytes), e.g. `openssl rand -hex 32`".into(),
        ));
    }
    ferrotracker_proto::hex::decode(digits).ok_or_else(|| bad("a key is hex digits only".into()))
}
