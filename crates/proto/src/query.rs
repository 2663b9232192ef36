//! Query strings of `/announce` and `/scrape` (BEP 3, BEP 23; opentracker's [`ot_http.c`](https://erdgeist.org/gitweb/opentracker/tree/ot_http.c)).
//!
//! Values are percent-decoded into fixed stack buffers, so parsing never allocates whatever the
//! client sends. Rules follow opentracker: parameters split on '&', keys compared exactly and
//! case-sensitively (after decoding), unknown keys and keys without '=' skipped, '+' kept as is.

use crate::{Event, InfoHash, PeerId};

/// The announce parameters a tracker acts on; everything else is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceQuery {
    /// `None` when absent: the caller answers opentracker's "forgot to send your info_hash".
    pub info_hash: Option<InfoHash>,
    pub peer_id: Option<PeerId>,
    /// 0 when absent, as opentracker stores it.
    pub port: u16,
    /// `None` when absent (a leecher); `Some(0)` is a seeder.
    pub left: Option<u64>,
    pub event: Event,
    /// `None` when absent or negative: use the default.
    pub numwant: Option<u32>,
    /// False only for `compact=0`; we then answer a BEP 3 dictionary list.
    pub compact: bool,
    /// The decoded `ip=` value and its length; not trusted by the tracker for now.
    pub ip: Option<([u8; 64], usize)>,
}

impl Default for AnnounceQuery {
    fn default() -> Self {
        AnnounceQuery {
            info_hash: None,
            peer_id: None,
            port: 0,
            left: None,
            event: Event::None,
            numwant: None,
            compact: true,
            ip: None,
        }
    }
}

/// Parses an announce query string (the bytes after '?').
pub fn parse_announce(query: &[u8]) -> Result<AnnounceQuery, QueryError> {
    let mut q = AnnounceQuery::default();
    for (key, value) in params(query) {
        let mut key_buf = [0u8; 16];
        let Some(key) = decode_key(key, &mut key_buf) else {
            continue;
        };
        match key {
            b"info_hash" => {
                if q.info_hash.is_some() {
                    return Err(QueryError::DuplicateInfoHash);
                }
                q.info_hash = Some(InfoHash(decode_exact(value, QueryError::BadInfoHash)?));
            }
            b"peer_id" => q.peer_id = Some(PeerId(decode_exact(value, QueryError::BadPeerId)?)),
            b"port" => {
                let n = decode_u64(value, QueryError::BadPort)?;
                q.port = u16::try_from(n).map_err(|_| QueryError::BadPort)?;
            }
            b"left" => q.left = Some(decode_u64(value, QueryError::BadLeft)?),
            b"event" => {
                let mut buf = [0u8; 16];
                q.event = match percent_decode_into(value, &mut buf) {
                    Ok(n) => match buf.get(..n).unwrap_or_default() {
                        b"started" => Event::Started,
                        b"completed" => Event::Completed,
                        b"stopped" => Event::Stopped,
                        _ => Event::None,
                    },
                    Err(QueryError::BadEscape) => return Err(QueryError::BadEscape),
                    Err(_) => Event::None,
                };
            }
            b"numwant" => {
                let (neg, n) = decode_signed(value, QueryError::BadNumwant)?;
                q.numwant = match n {
                    _ if neg => None,
                    Some(n) => Some(u32::try_from(n).unwrap_or(u32::MAX)),
                    None => Some(u32::MAX),
                };
            }
            b"compact" => {
                let (_, n) = decode_signed(value, QueryError::BadCompact)?;
                q.compact = n != Some(0);
            }
            b"ip" => {
                let mut buf = [0u8; 64];
                let n = percent_decode_into(value, &mut buf).map_err(|e| match e {
                    QueryError::BadEscape => QueryError::BadEscape,
                    _ => QueryError::BadIp,
                })?;
                if n == 0 {
                    return Err(QueryError::BadIp);
                }
                q.ip = Some((buf, n));
            }
            _ => {}
        }
    }
    Ok(q)
}

/// The info_hashes of a scrape, in request order (duplicates kept, as opentracker answers them
/// twice), at most [`MAX_SCRAPE`]; held inline so parsing does not allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScrapeQuery {
    hashes: [InfoHash; MAX_SCRAPE],
    len: usize,
}

impl ScrapeQuery {
    pub fn hashes(&self) -> &[InfoHash] {
        self.hashes.get(..self.len).unwrap_or_default()
    }
}

/// Parses a scrape query string: every `info_hash` must be valid, the first [`MAX_SCRAPE`] are
/// kept, and at least one is required.
pub fn parse_scrape(query: &[u8]) -> Result<ScrapeQuery, QueryError> {
    let mut q = ScrapeQuery {
        hashes: [InfoHash::default(); MAX_SCRAPE],
        len: 0,
    };
    let mut seen = false;
    for (key, value) in params(query) {
        let mut key_buf = [0u8; 16];
        if decode_key(key, &mut key_buf) != Some(b"info_hash") {
            continue;
        }
        let h = InfoHash(decode_exact(value, QueryError::BadInfoHash)?);
        seen = true;
        if let Some(slot) = q.hashes.get_mut(q.len) {
            *slot = h;
            q.len += 1;
        }
    }
    if !seen {
        return Err(QueryError::MissingInfoHash);
    }
    Ok(q)
}

/// Percent-decodes `src` into `dst` and returns the decoded length. A malformed escape anywhere
/// in `src` is [`QueryError::BadEscape`]; a result longer than `dst` is
/// [`QueryError::ValueTooLong`] (`dst` then holds its first bytes).
pub fn percent_decode_into(src: &[u8], dst: &mut [u8]) -> Result<usize, QueryError> {
    let n = decode_counting(src, dst)?;
    if n > dst.len() {
        return Err(QueryError::ValueTooLong);
    }
    Ok(n)
}

/// Why a query string was refused; every one is answered with HTTP 400, as opentracker does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryError {
    BadEscape,
    BadInfoHash,
    DuplicateInfoHash,
    BadPeerId,
    BadPort,
    BadLeft,
    BadNumwant,
    BadCompact,
    MissingInfoHash,
    BadIp,
    /// A decoded value does not fit the caller's buffer ([`percent_decode_into`]).
    ValueTooLong,
}

impl QueryError {
    pub fn reason(self) -> &'static str {
        match self {
            QueryError::BadEscape => "malformed %-escape in query string",
            QueryError::BadInfoHash => "info_hash must be 20 bytes, url-encoded",
            QueryError::DuplicateInfoHash => "info_hash given more than once",
            QueryError::BadPeerId => "peer_id must be 20 bytes, url-encoded",
            QueryError::BadPort => "port must be a decimal number from 0 to 65535",
            QueryError::BadLeft => "left must be a non-negative decimal number",
            QueryError::BadNumwant => "numwant must be a decimal number",
            QueryError::BadCompact => "compact must be a decimal number",
            QueryError::MissingInfoHash => "scrape needs at least one info_hash",
            QueryError::BadIp => "ip must be a short IP address",
            QueryError::ValueTooLong => "query parameter value too long",
        }
    }

    pub fn status(self) -> u16 {
        400
    }
}

impl core::fmt::Display for QueryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for QueryError {}

/// `(name, value)` pairs of `name=value` parameters; parts without '=' are skipped.
fn params(query: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    query.split(|&b| b == b'&').filter_map(|p| {
        let eq = p.iter().position(|&b| b == b'=')?;
        Some((p.get(..eq)?, p.get(eq + 1..)?))
    })
}

/// The decoded key, or `None` if it cannot be one we know (malformed or too long): opentracker
/// decodes names too, so `info%5Fhash` is `info_hash`.
fn decode_key<'b>(key: &'b [u8], buf: &'b mut [u8; 16]) -> Option<&'b [u8]> {
    if !key.contains(&b'%') {
        return Some(key);
    }
    let n = percent_decode_into(key, buf).ok()?;
    buf.get(..n)
}

/// Decodes a value that must be exactly `N` bytes; a wrong length is `wrong_len`.
fn decode_exact<const N: usize>(
    value: &[u8],
    wrong_len: QueryError,
) -> Result<[u8; N], QueryError> {
    let mut out = [0u8; N];
    if decode_counting(value, &mut out)? != N {
        return Err(wrong_len);
    }
    Ok(out)
}

/// Decodes an optionally '-'-signed decimal into its sign and magnitude (`None` when the
/// magnitude overflows a `u64`). Empty or non-digit values are `bad`.
fn decode_signed(value: &[u8], bad: QueryError) -> Result<(bool, Option<u64>), QueryError> {
    let mut buf = [0u8; 32];
    let n = percent_decode_into(value, &mut buf).map_err(|e| match e {
        QueryError::BadEscape => QueryError::BadEscape,
        _ => bad,
    })?;
    let s = buf.get(..n).unwrap_or_default();
    let (neg, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad);
    }
    let mut v: Option<u64> = Some(0);
    for &b in digits {
        v = v
            .and_then(|v| v.checked_mul(10))
            .and_then(|v| v.checked_add(u64::from(b - b'0')));
    }
    Ok((neg, v))
}

/// Decodes an unsigned decimal that fits a `u64`, else `bad`.
fn decode_u64(value: &[u8], bad: QueryError) -> Result<u64, QueryError> {
    match decode_signed(value, bad)? {
        (false, Some(v)) => Ok(v),
        _ => Err(bad),
    }
}

/// Decodes into `dst` as far as it reaches and returns the full decoded length.
fn decode_counting(src: &[u8], dst: &mut [u8]) -> Result<usize, QueryError> {
    let mut n = 0;
    let mut i = 0;
    while let Some(&b) = src.get(i) {
        let byte = if b == b'%' {
            let hi = src.get(i + 1).and_then(|&c| crate::hex::digit(c));
            let lo = src.get(i + 2).and_then(|&c| crate::hex::digit(c));
            let (Some(hi), Some(lo)) = (hi, lo) else {
                return Err(QueryError::BadEscape);
            };
            i += 3;
            hi << 4 | lo
        } else {
            i += 1;
            b
        };
        if let Some(slot) = dst.get_mut(n) {
            *slot = byte;
        }
        n += 1;
    }
    Ok(n)
}

/// Hashes answered per HTTP scrape (opentracker's `OT_MAXMULTISCRAPE_COUNT`); extra ones are
/// still validated but not answered.
pub const MAX_SCRAPE: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{mutate, percent_encode, random_bytes, xorshift};

    const SPEC: &[u8] = b"info_hash=%01%23%45%67%89%ab%cd%ef%01%23%45%67%89%ab%cd%ef%01%23%45%67&peer_id=ABCDEFGHIJKLMNOPQRST&port=6881&left=0";
    const HASH: [u8; 20] = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef, 0x01, 0x23, 0x45, 0x67,
    ];

    #[test]
    fn spec_vector() {
        let q = parse_announce(SPEC).unwrap();
        assert_eq!(q.info_hash, Some(InfoHash(HASH)));
        assert_eq!(q.peer_id, Some(PeerId(*b"ABCDEFGHIJKLMNOPQRST")));
        assert_eq!(q.port, 6881);
        assert_eq!(q.left, Some(0));
        assert_eq!(q.event, Event::None);
        assert_eq!(q.numwant, None);
        assert!(q.compact);
        assert_eq!(q.ip, None);
    }

    #[test]
    fn binary_info_hash_mixed_raw_and_escaped() {
        // Raw safe bytes and escapes mixed, lowercase and uppercase hex.
        let q = parse_announce(b"info_hash=abcdefghij%00%ff%FF%0a%7E+.-_~&x").unwrap();
        assert_eq!(
            q.info_hash,
            Some(InfoHash(*b"abcdefghij\x00\xff\xff\x0a\x7e+.-_~"))
        );
        let all: Vec<u8> = (0..=255u8).collect();
        for chunk in all.chunks(20).filter(|c| c.len() == 20) {
            // As clients send it (unreserved bytes raw), and with every byte escaped.
            let escaped: String = chunk.iter().map(|c| format!("%{c:02X}")).collect();
            for value in [percent_encode(chunk), escaped] {
                let s = format!("info_hash={value}");
                assert_eq!(
                    parse_announce(s.as_bytes()).unwrap().info_hash.unwrap().0,
                    chunk
                );
            }
        }
    }

    #[test]
    fn announce_errors() {
        let h = format!("info_hash={}", percent_encode(&HASH));
        let cases: Vec<(String, QueryError)> = vec![
            ("info_hash=%0".into(), QueryError::BadEscape),
            (
                "info_hash=%g0aaaaaaaaaaaaaaaaaaa".into(),
                QueryError::BadEscape,
            ),
            ("info_hash=short".into(), QueryError::BadInfoHash),
            (
                "info_hash=aaaaaaaaaaaaaaaaaaaaa".into(),
                QueryError::BadInfoHash,
            ),
            ("info_hash=".into(), QueryError::BadInfoHash),
            (format!("{h}&{h}"), QueryError::DuplicateInfoHash),
            (format!("{h}&info_hash=x"), QueryError::DuplicateInfoHash),
            ("peer_id=abc".into(), QueryError::BadPeerId),
            ("port=65536".into(), QueryError::BadPort),
            ("port=".into(), QueryError::BadPort),
            ("port=-1".into(), QueryError::BadPort),
            ("port=12a".into(), QueryError::BadPort),
            ("left=".into(), QueryError::BadLeft),
            ("left=x".into(), QueryError::BadLeft),
            ("left=-5".into(), QueryError::BadLeft),
            ("left=18446744073709551616".into(), QueryError::BadLeft),
            ("numwant=".into(), QueryError::BadNumwant),
            ("numwant=ten".into(), QueryError::BadNumwant),
            ("compact=yes".into(), QueryError::BadCompact),
            ("ip=".into(), QueryError::BadIp),
            (format!("ip={}", "1".repeat(65)), QueryError::BadIp),
            ("event=%zz".into(), QueryError::BadEscape),
        ];
        for (s, err) in cases {
            assert_eq!(parse_announce(s.as_bytes()), Err(err), "{s}");
            assert_eq!(err.status(), 400);
            assert!(!err.reason().is_empty());
        }
    }

    #[test]
    fn announce_values() {
        let q = parse_announce(
            b"event=started&numwant=-1&compact=0&left=18446744073709551615&port=0065535&ip=10.0.0.1&foo&=x&Port=1",
        )
        .unwrap();
        assert_eq!(q.event, Event::Started);
        assert_eq!(q.numwant, None);
        assert!(!q.compact);
        assert_eq!(q.left, Some(u64::MAX));
        assert_eq!(q.port, 65535);
        let (ip, n) = q.ip.unwrap();
        assert_eq!(&ip[..n], b"10.0.0.1");
        assert_eq!(q.info_hash, None);

        let q = parse_announce(b"event=completed&numwant=99999999999&compact=1&left=4294967296")
            .unwrap();
        assert_eq!(q.event, Event::Completed);
        assert_eq!(q.numwant, Some(u32::MAX));
        assert!(q.compact);
        assert_eq!(q.left, Some(4_294_967_296));
        for (e, want) in [
            ("stopped", Event::Stopped),
            ("paused", Event::None),
            ("", Event::None),
            ("Started", Event::None),
        ] {
            assert_eq!(
                parse_announce(format!("event={e}").as_bytes())
                    .unwrap()
                    .event,
                want
            );
        }
        // Keys are decoded, then compared case-sensitively.
        assert_eq!(parse_announce(b"p%6Frt=7").unwrap().port, 7);
        assert_eq!(parse_announce(b"PORT=7").unwrap().port, 0);
        assert_eq!(parse_announce(b"").unwrap(), AnnounceQuery::default());
    }

    #[test]
    fn scrape() {
        let h = |i: u8| format!("info_hash={}", percent_encode(&[i; 20]));
        let q = parse_scrape(format!("{}&{}&{}&x=1", h(1), h(2), h(1)).as_bytes()).unwrap();
        assert_eq!(
            q.hashes(),
            &[InfoHash([1; 20]), InfoHash([2; 20]), InfoHash([1; 20])]
        );
        assert_eq!(parse_scrape(b""), Err(QueryError::MissingInfoHash));
        assert_eq!(parse_scrape(b"peer_id=x"), Err(QueryError::MissingInfoHash));
        assert_eq!(parse_scrape(b"info_hash=x"), Err(QueryError::BadInfoHash));

        let many: Vec<String> = (0..70u8).map(h).collect();
        let q = parse_scrape(many.join("&").as_bytes()).unwrap();
        assert_eq!(q.hashes().len(), MAX_SCRAPE);
        assert_eq!(q.hashes()[63], InfoHash([63; 20]));
        // Hashes past the limit are still validated.
        let bad = format!("{}&info_hash=%zz", many.join("&"));
        assert_eq!(parse_scrape(bad.as_bytes()), Err(QueryError::BadEscape));
    }

    #[test]
    fn percent_decode() {
        let mut buf = [0u8; 4];
        assert_eq!(percent_decode_into(b"a%20b+", &mut buf), Ok(4));
        assert_eq!(&buf, b"a b+");
        assert_eq!(
            percent_decode_into(b"abcde", &mut buf),
            Err(QueryError::ValueTooLong)
        );
        assert_eq!(
            percent_decode_into(b"abcde%", &mut buf),
            Err(QueryError::BadEscape)
        );
        assert_eq!(
            percent_decode_into(b"%4", &mut buf),
            Err(QueryError::BadEscape)
        );
        assert_eq!(percent_decode_into(b"", &mut buf), Ok(0));
    }

    #[test]
    fn never_panics() {
        let valid: &[&[u8]] = &[
            SPEC,
            b"event=stopped&numwant=5&compact=1&ip=1.2.3.4&port=1&left=9",
        ];
        for v in valid {
            for n in 0..=v.len() {
                let _ = parse_announce(&v[..n]);
                let _ = parse_scrape(&v[..n]);
            }
        }
        let mut rng = 0xdead_beef_cafe_f00du64;
        let alphabet = b"info_hash=&%0aF-9port+\x00\xff";
        for _ in 0..20_000 {
            let base = valid[(xorshift(&mut rng) % 2) as usize];
            let m = mutate(&mut rng, base, alphabet);
            let _ = parse_announce(&m);
            let _ = parse_scrape(&m);
            let n = (xorshift(&mut rng) % 80) as usize;
            let r = random_bytes(&mut rng, alphabet, n);
            let _ = parse_announce(&r);
            let _ = parse_scrape(&r);
        }
    }
}
