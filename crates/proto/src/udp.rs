//! BEP 15 UDP tracker packets, server and client side, for IPv4 and IPv6 alike.
//!
//! <https://www.bittorrent.org/beps/bep_0015.html>. All integers are big-endian. Parsing borrows
//! from the datagram and never allocates; writers append to a `Vec<u8>` the caller reuses.
//! Connection ids are not checked here: that needs the server's key, so it is `core`'s job.

use crate::{Event, InfoHash, PeerId};

/// The magic constant a connect request carries in place of a connection id.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// Fixed size of an announce request; bytes past it (BEP 41 options) are ignored.
pub const ANNOUNCE_MIN_LEN: usize = 98;
/// Hashes answered per UDP scrape; more are ignored, not refused.
pub const MAX_SCRAPE: usize = 74;
/// opentracker's exact error text for a wrong connection id, typo and trailing NUL included,
/// because some clients and tests match on it.
pub const CONNECTION_ID_MISMATCH: &[u8] = b"Connection ID missmatch.\0";

/// A parsed client request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    Connect { transaction_id: u32 },
    Announce(AnnounceRequest),
    Scrape(ScrapeRequest<'a>),
}

/// An announce (action 1). `ip` and `key` are carried for completeness; trackers that follow
/// opentracker use the source address instead of `ip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnnounceRequest {
    pub connection_id: u64,
    pub transaction_id: u32,
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub downloaded: u64,
    pub left: u64,
    pub uploaded: u64,
    pub event: Event,
    pub ip: u32,
    pub key: u32,
    /// -1 (or any negative) asks for the tracker's default.
    pub num_want: i32,
    pub port: u16,
}

/// A scrape (action 2) borrowing its info_hashes from the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScrapeRequest<'a> {
    pub connection_id: u64,
    pub transaction_id: u32,
    /// Whole 20-byte hashes only, at most [`MAX_SCRAPE`] of them.
    hashes: &'a [u8],
}

impl ScrapeRequest<'_> {
    pub fn info_hashes(&self) -> impl Iterator<Item = InfoHash> + '_ {
        self.hashes
            .chunks_exact(20)
            .filter_map(|c| c.try_into().ok().map(InfoHash))
    }

    pub fn len(&self) -> usize {
        self.hashes.len() / 20
    }

    /// Always false for a parsed request: at least one hash is required.
    pub fn is_empty(&self) -> bool {
        self.hashes.len() < 20
    }
}

/// Why a datagram was not a valid request (or response, for [`parse_response`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// Shorter than the 16-byte header (8 for a response): nothing to reply to.
    TooShort,
    /// A connect without the protocol magic: likely not BitTorrent, so drop it.
    BadProtocolId,
    UnknownAction {
        transaction_id: u32,
    },
    /// An announce shorter than [`ANNOUNCE_MIN_LEN`] (or an announce reply under 20 bytes).
    TruncatedAnnounce {
        transaction_id: u32,
    },
    /// A scrape whose hash bytes are empty or not a multiple of 20 (opentracker reads past a
    /// partial hash, a bug we do not copy); for replies, entries not a multiple of 12.
    BadScrapeLength {
        transaction_id: u32,
    },
}

impl RequestError {
    /// The transaction id to echo in an error packet, when one may be sent. Errors without one
    /// carry too little to be answered and are dropped. opentracker drops all of these silently;
    /// the reasons below are short so a reply is never much larger than the request.
    pub fn transaction_id(self) -> Option<u32> {
        match self {
            RequestError::TooShort | RequestError::BadProtocolId => None,
            RequestError::UnknownAction { transaction_id }
            | RequestError::TruncatedAnnounce { transaction_id }
            | RequestError::BadScrapeLength { transaction_id } => Some(transaction_id),
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            RequestError::TooShort => "packet too short",
            RequestError::BadProtocolId => "bad protocol id",
            RequestError::UnknownAction { .. } => "unknown action",
            RequestError::TruncatedAnnounce { .. } => "announce too short",
            RequestError::BadScrapeLength { .. } => "bad scrape length",
        }
    }
}

impl core::fmt::Display for RequestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for RequestError {}

/// Parses one client datagram. Extra bytes after a connect or announce are ignored.
pub fn parse_request(packet: &[u8]) -> Result<Request<'_>, RequestError> {
    let (Some(connection_id), Some(action), Some(transaction_id)) =
        (u64_at(packet, 0), u32_at(packet, 8), u32_at(packet, 12))
    else {
        return Err(RequestError::TooShort);
    };
    match action {
        ACTION_CONNECT => {
            if connection_id != PROTOCOL_ID {
                return Err(RequestError::BadProtocolId);
            }
            Ok(Request::Connect { transaction_id })
        }
        ACTION_ANNOUNCE => parse_announce(packet, connection_id, transaction_id)
            .map(Request::Announce)
            .ok_or(RequestError::TruncatedAnnounce { transaction_id }),
        ACTION_SCRAPE => {
            let hashes = packet.get(16..).unwrap_or_default();
            if hashes.is_empty() || hashes.len() % 20 != 0 {
                return Err(RequestError::BadScrapeLength { transaction_id });
            }
            let hashes = hashes
                .get(..hashes.len().min(MAX_SCRAPE * 20))
                .unwrap_or_default();
            Ok(Request::Scrape(ScrapeRequest {
                connection_id,
                transaction_id,
                hashes,
            }))
        }
        _ => Err(RequestError::UnknownAction { transaction_id }),
    }
}

/// The info_hash an announce, or the first one a scrape, is about, read without validating the
/// rest: a receive batch uses it to warm the store's caches before the requests are parsed
/// and served. `None` for anything else.
pub fn peek_info_hash(packet: &[u8]) -> Option<InfoHash> {
    let hash = match u32_at(packet, 8)? {
        ACTION_ANNOUNCE if packet.len() >= ANNOUNCE_MIN_LEN => packet.get(16..36)?,
        ACTION_SCRAPE => packet.get(16..36)?,
        _ => return None,
    };
    Some(InfoHash(hash.try_into().ok()?))
}

fn parse_announce(p: &[u8], connection_id: u64, transaction_id: u32) -> Option<AnnounceRequest> {
    if p.len() < ANNOUNCE_MIN_LEN {
        return None;
    }
    Some(AnnounceRequest {
        connection_id,
        transaction_id,
        info_hash: InfoHash(array_at(p, 16)?),
        peer_id: PeerId(array_at(p, 36)?),
        downloaded: u64_at(p, 56)?,
        left: u64_at(p, 64)?,
        uploaded: u64_at(p, 72)?,
        event: match u32_at(p, 80)? {
            1 => Event::Completed,
            2 => Event::Started,
            3 => Event::Stopped,
            _ => Event::None,
        },
        ip: u32_at(p, 84)?,
        key: u32_at(p, 88)?,
        num_want: i32::from_be_bytes(array_at(p, 92)?),
        port: u16::from_be_bytes(array_at(p, 96)?),
    })
}

/// Connect reply: 16 bytes.
pub fn write_connect(out: &mut Vec<u8>, transaction_id: u32, connection_id: u64) {
    out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(&connection_id.to_be_bytes());
}

/// Announce reply header: 20 bytes; the caller appends 6-byte (IPv4) or 18-byte (IPv6) peers.
pub fn write_announce_header(
    out: &mut Vec<u8>,
    transaction_id: u32,
    interval: u32,
    leechers: u32,
    seeders: u32,
) {
    for v in [ACTION_ANNOUNCE, transaction_id, interval, leechers, seeders] {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Scrape reply header: 8 bytes; one [`write_scrape_entry`] per requested hash follows.
pub fn write_scrape_header(out: &mut Vec<u8>, transaction_id: u32) {
    out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
}

/// One scrape entry: 12 bytes, in BEP 15's order.
pub fn write_scrape_entry(out: &mut Vec<u8>, seeders: u32, completed: u32, leechers: u32) {
    for v in [seeders, completed, leechers] {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Error reply (action 3): 8 bytes and the message as is (no terminator added).
pub fn write_error(out: &mut Vec<u8>, transaction_id: u32, message: &[u8]) {
    out.extend_from_slice(&ACTION_ERROR.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    out.extend_from_slice(message);
}

/// Client side: a 16-byte connect request.
pub fn encode_connect(out: &mut Vec<u8>, transaction_id: u32) {
    out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
    out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
}

/// Client side: a 98-byte announce request.
pub fn encode_announce(out: &mut Vec<u8>, req: &AnnounceRequest) {
    out.extend_from_slice(&req.connection_id.to_be_bytes());
    out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
    out.extend_from_slice(&req.transaction_id.to_be_bytes());
    out.extend_from_slice(&req.info_hash.0);
    out.extend_from_slice(&req.peer_id.0);
    out.extend_from_slice(&req.downloaded.to_be_bytes());
    out.extend_from_slice(&req.left.to_be_bytes());
    out.extend_from_slice(&req.uploaded.to_be_bytes());
    let event: u32 = match req.event {
        Event::None => 0,
        Event::Completed => 1,
        Event::Started => 2,
        Event::Stopped => 3,
    };
    out.extend_from_slice(&event.to_be_bytes());
    out.extend_from_slice(&req.ip.to_be_bytes());
    out.extend_from_slice(&req.key.to_be_bytes());
    out.extend_from_slice(&req.num_want.to_be_bytes());
    out.extend_from_slice(&req.port.to_be_bytes());
}

/// Client side: a scrape request for `hashes` (all of them, even past [`MAX_SCRAPE`]).
pub fn encode_scrape(
    out: &mut Vec<u8>,
    connection_id: u64,
    transaction_id: u32,
    hashes: &[InfoHash],
) {
    out.extend_from_slice(&connection_id.to_be_bytes());
    out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    for h in hashes {
        out.extend_from_slice(&h.0);
    }
}

/// A parsed tracker reply (client side, for tests, fuzzing and load generation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response<'a> {
    Connect {
        transaction_id: u32,
        connection_id: u64,
    },
    /// `peers` is the raw compact list: 6 bytes per IPv4 peer, 18 per IPv6 peer; which one
    /// depends on the family the request was sent over.
    Announce {
        transaction_id: u32,
        interval: u32,
        leechers: u32,
        seeders: u32,
        peers: &'a [u8],
    },
    /// `entries` is a whole number of 12-byte (seeders, completed, leechers) entries.
    Scrape {
        transaction_id: u32,
        entries: &'a [u8],
    },
    Error {
        transaction_id: u32,
        message: &'a [u8],
    },
}

/// Parses a tracker reply. opentracker's 8-byte announce reply for a refused hash is a
/// [`RequestError::TruncatedAnnounce`].
pub fn parse_response(packet: &[u8]) -> Result<Response<'_>, RequestError> {
    let (Some(action), Some(transaction_id)) = (u32_at(packet, 0), u32_at(packet, 4)) else {
        return Err(RequestError::TooShort);
    };
    let rest = packet.get(8..).unwrap_or_default();
    match action {
        ACTION_CONNECT => u64_at(packet, 8)
            .map(|connection_id| Response::Connect {
                transaction_id,
                connection_id,
            })
            .ok_or(RequestError::TooShort),
        ACTION_ANNOUNCE => {
            let truncated = RequestError::TruncatedAnnounce { transaction_id };
            Ok(Response::Announce {
                transaction_id,
                interval: u32_at(packet, 8).ok_or(truncated)?,
                leechers: u32_at(packet, 12).ok_or(truncated)?,
                seeders: u32_at(packet, 16).ok_or(truncated)?,
                peers: packet.get(20..).ok_or(truncated)?,
            })
        }
        ACTION_SCRAPE if rest.len() % 12 == 0 => Ok(Response::Scrape {
            transaction_id,
            entries: rest,
        }),
        ACTION_SCRAPE => Err(RequestError::BadScrapeLength { transaction_id }),
        ACTION_ERROR => Ok(Response::Error {
            transaction_id,
            message: rest,
        }),
        _ => Err(RequestError::UnknownAction { transaction_id }),
    }
}

/// Splits scrape reply entries into (seeders, completed, leechers).
pub fn scrape_entries(entries: &[u8]) -> impl Iterator<Item = (u32, u32, u32)> + '_ {
    entries
        .chunks_exact(12)
        .filter_map(|e| Some((u32_at(e, 0)?, u32_at(e, 4)?, u32_at(e, 8)?)))
}

fn array_at<const N: usize>(p: &[u8], at: usize) -> Option<[u8; N]> {
    p.get(at..at.checked_add(N)?)?.try_into().ok()
}

fn u32_at(p: &[u8], at: usize) -> Option<u32> {
    array_at(p, at).map(u32::from_be_bytes)
}

fn u64_at(p: &[u8], at: usize) -> Option<u64> {
    array_at(p, at).map(u64::from_be_bytes)
}

const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{mutate, random_bytes, xorshift};

    fn announce() -> AnnounceRequest {
        AnnounceRequest {
            connection_id: 0x0102_0304_0506_0708,
            transaction_id: 0x4d,
            info_hash: InfoHash([0xab; 20]),
            peer_id: PeerId(*b"-FT0001-abcdefghijkl"),
            downloaded: 1,
            left: 2,
            uploaded: 3,
            event: Event::Started,
            ip: 0x0a01_0203,
            key: 0xdead_beef,
            num_want: -1,
            port: 6881,
        }
    }

    #[test]
    fn connect_round_trip() {
        let mut out = Vec::new();
        encode_connect(&mut out, 0xcafe);
        assert_eq!(
            out,
            b"\x00\x00\x04\x17\x27\x10\x19\x80\x00\x00\x00\x00\x00\x00\xca\xfe"
        );
        assert_eq!(
            parse_request(&out),
            Ok(Request::Connect {
                transaction_id: 0xcafe
            })
        );
        out.extend_from_slice(b"trailing");
        assert_eq!(
            parse_request(&out),
            Ok(Request::Connect {
                transaction_id: 0xcafe
            })
        );
        out[0] = 1;
        assert_eq!(parse_request(&out), Err(RequestError::BadProtocolId));
        assert_eq!(RequestError::BadProtocolId.transaction_id(), None);
    }

    #[test]
    fn announce_round_trip() {
        for event in [
            Event::None,
            Event::Completed,
            Event::Started,
            Event::Stopped,
        ] {
            let req = AnnounceRequest {
                event,
                ..announce()
            };
            let mut out = Vec::new();
            encode_announce(&mut out, &req);
            assert_eq!(out.len(), ANNOUNCE_MIN_LEN);
            assert_eq!(parse_request(&out), Ok(Request::Announce(req)));
            out.extend_from_slice(b"\x02\x05/path"); // BEP 41 options are ignored.
            assert_eq!(parse_request(&out), Ok(Request::Announce(req)));
        }
        let mut out = Vec::new();
        encode_announce(&mut out, &announce());
        out[83] = 9;
        assert!(matches!(parse_request(&out), Ok(Request::Announce(r)) if r.event == Event::None));
        let e = parse_request(&out[..97]).unwrap_err();
        assert_eq!(
            e,
            RequestError::TruncatedAnnounce {
                transaction_id: 0x4d
            }
        );
        assert_eq!(e.transaction_id(), Some(0x4d));
    }

    #[test]
    fn scrape_round_trip_and_limits() {
        let hashes: Vec<InfoHash> = (0..80u8).map(|i| InfoHash([i; 20])).collect();
        let mut out = Vec::new();
        encode_scrape(&mut out, 7, 8, &hashes[..3]);
        let Ok(Request::Scrape(s)) = parse_request(&out) else {
            panic!()
        };
        assert_eq!((s.connection_id, s.transaction_id, s.len()), (7, 8, 3));
        assert!(!s.is_empty());
        assert!(s.info_hashes().eq(hashes[..3].iter().copied()));

        out.clear();
        encode_scrape(&mut out, 7, 8, &hashes);
        let Ok(Request::Scrape(s)) = parse_request(&out) else {
            panic!()
        };
        assert_eq!(s.len(), MAX_SCRAPE);
        assert!(s.info_hashes().eq(hashes[..MAX_SCRAPE].iter().copied()));

        out.clear();
        encode_scrape(&mut out, 7, 8, &[]);
        assert_eq!(
            parse_request(&out),
            Err(RequestError::BadScrapeLength { transaction_id: 8 })
        );
        out.extend_from_slice(&[1; 21]);
        assert_eq!(
            parse_request(&out),
            Err(RequestError::BadScrapeLength { transaction_id: 8 })
        );
    }

    #[test]
    fn other_requests() {
        assert_eq!(parse_request(&[0; 15]), Err(RequestError::TooShort));
        let mut p = [0u8; 16];
        p[11] = 3;
        p[15] = 9;
        let e = parse_request(&p).unwrap_err();
        assert_eq!(e, RequestError::UnknownAction { transaction_id: 9 });
        assert_eq!(e.transaction_id(), Some(9));
    }

    #[test]
    fn spec_connect_reply() {
        let mut out = Vec::new();
        write_connect(&mut out, 0x1234_5678, 0x0011_2233_4455_6677);
        assert_eq!(
            out,
            b"\x00\x00\x00\x00\x12\x34\x56\x78\x00\x11\x22\x33\x44\x55\x66\x77"
        );
        assert_eq!(
            parse_response(&out),
            Ok(Response::Connect {
                transaction_id: 0x1234_5678,
                connection_id: 0x0011_2233_4455_6677
            })
        );
    }

    #[test]
    fn spec_error_packet() {
        let mut out = Vec::new();
        write_error(&mut out, 0x4d, CONNECTION_ID_MISMATCH);
        assert_eq!(out.len(), 33);
        assert_eq!(
            out,
            b"\x00\x00\x00\x03\x00\x00\x00\x4dConnection ID missmatch.\0"
        );
        assert_eq!(
            parse_response(&out),
            Ok(Response::Error {
                transaction_id: 0x4d,
                message: CONNECTION_ID_MISMATCH
            })
        );
    }

    #[test]
    fn spec_announce_reply() {
        let peers = b"\x0a\x01\x02\x03\x1a\xe2\x7f\x00\x00\x01\x1a\xe4\x7f\x00\x00\x01\x1b\x58";
        let mut out = Vec::new();
        write_announce_header(&mut out, 0x4d, 1800, 4, 0);
        assert_eq!(out.len(), 20);
        out.extend_from_slice(peers);
        assert_eq!(
            out[..20],
            *b"\x00\x00\x00\x01\x00\x00\x00\x4d\x00\x00\x07\x08\x00\x00\x00\x04\x00\x00\x00\x00"
        );
        assert_eq!(
            parse_response(&out),
            Ok(Response::Announce {
                transaction_id: 0x4d,
                interval: 1800,
                leechers: 4,
                seeders: 0,
                peers
            })
        );
        assert_eq!(
            parse_response(&out[..8]),
            Err(RequestError::TruncatedAnnounce {
                transaction_id: 0x4d
            })
        );
    }

    #[test]
    fn spec_scrape_reply() {
        let mut out = Vec::new();
        write_scrape_header(&mut out, 5);
        write_scrape_entry(&mut out, 0, 0, 3);
        write_scrape_entry(&mut out, 0, 0, 0);
        assert_eq!(
            out,
            b"\x00\x00\x00\x02\x00\x00\x00\x05\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\
              \x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        );
        let Ok(Response::Scrape {
            transaction_id: 5,
            entries,
        }) = parse_response(&out)
        else {
            panic!()
        };
        assert!(scrape_entries(entries).eq([(0, 0, 3), (0, 0, 0)]));
        assert_eq!(
            parse_response(&out[..31]),
            Err(RequestError::BadScrapeLength { transaction_id: 5 })
        );
        assert_eq!(parse_response(&out[..7]), Err(RequestError::TooShort));
    }

    #[test]
    fn never_panics() {
        let mut valid = Vec::new();
        let mut p = Vec::new();
        encode_connect(&mut p, 1);
        valid.push(p.clone());
        p.clear();
        encode_announce(&mut p, &announce());
        valid.push(p.clone());
        p.clear();
        encode_scrape(&mut p, 1, 2, &[InfoHash([3; 20]), InfoHash([4; 20])]);
        valid.push(p.clone());
        p.clear();
        write_connect(&mut p, 1, 2);
        valid.push(p.clone());
        p.clear();
        write_announce_header(&mut p, 1, 2, 3, 4);
        p.extend_from_slice(&[9; 18]);
        valid.push(p.clone());
        p.clear();
        write_scrape_header(&mut p, 1);
        write_scrape_entry(&mut p, 1, 2, 3);
        valid.push(p.clone());
        p.clear();
        write_error(&mut p, 1, CONNECTION_ID_MISMATCH);
        valid.push(p.clone());
        let check = |b: &[u8]| {
            if let Ok(Request::Scrape(s)) = parse_request(b) {
                assert_eq!(s.info_hashes().count(), s.len());
            }
            // The prefetch peek names the hash the request is about, whenever it parses.
            match parse_request(b) {
                Ok(Request::Announce(a)) => assert_eq!(peek_info_hash(b), Some(a.info_hash)),
                Ok(Request::Scrape(s)) => assert_eq!(peek_info_hash(b), s.info_hashes().next()),
                Ok(Request::Connect { .. }) => assert_eq!(peek_info_hash(b), None),
                Err(_) => {
                    let _ = peek_info_hash(b);
                }
            }
            if let Ok(Response::Scrape { entries, .. }) = parse_response(b) {
                let _ = scrape_entries(entries).count();
            }
        };
        for v in &valid {
            for n in 0..=v.len() {
                check(&v[..n]);
            }
        }
        let mut rng = 0x0bad_5eed_1234_5678u64;
        let alphabet: Vec<u8> = (0..=255).collect();
        for _ in 0..20_000 {
            let base = &valid[(xorshift(&mut rng) % valid.len() as u64) as usize];
            check(&mutate(&mut rng, base, &[0, 1, 2, 3, 4, 0xff]));
            let n = (xorshift(&mut rng) % 200) as usize;
            check(&random_bytes(&mut rng, &alphabet, n));
        }
    }
}
