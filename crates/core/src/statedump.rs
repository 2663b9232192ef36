//! Statedump: what can't be recreated, written to any `Write` and read back from any `Read`.
//!
//! The torrent file is opentracker's format, one line per torrent,
//! `<40 uppercase hex>:<minutes since the Unix epoch of the last announce>:<downloaded>\n`, so
//! dumps move both ways between opentracker and ferrotracker. Loading does not double
//! `downloaded` (opentracker master does) and skips torrents the access list refuses.
//!
//! Beyond opentracker, the peers can be dumped too, in a separate binary file (opentracker's
//! loader must never see it): `FTPEERS1`, then per torrent `hash[20] | n4 u32 | n6 u32` and
//! `n4` records `ip4[4] port[2] flags[1]`, `n6` records `ip6[16] port[2] flags[1]` (big
//! endian). A restarted tracker then answers with full peer lists at once.

use std::io::{self, BufRead, Read, Write};

use ferrotracker_proto::{hex, InfoHash};
use ferrotracker_swarm::peers::PeerRecord;
use ferrotracker_swarm::{PeerAddr, Store, SHARDS};

/// First bytes of a peer file.
pub const PEERS_MAGIC: &[u8; 8] = b"FTPEERS1";
/// Longest torrent line accepted (opentracker reads 512-byte lines).
const MAX_LINE: usize = 512;

/// Why a torrent line was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineError {
    BadHash,
    MissingField,
    BadNumber,
    TooLong,
}

impl LineError {
    pub fn reason(self) -> &'static str {
        match self {
            LineError::BadHash => "expected 40 hex digits at the start of the line",
            LineError::MissingField => "expected HASH:MINUTES:DOWNLOADED",
            LineError::BadNumber => "minutes and downloaded must be decimal numbers",
            LineError::TooLong => "line longer than 512 bytes",
        }
    }
}

/// One torrent line, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TorrentLine {
    pub info_hash: InfoHash,
    /// Minutes since the Unix epoch of the last announce.
    pub base_minutes: u64,
    pub downloaded: u64,
}

/// What [`load_torrents`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub loaded: u64,
    pub refused_by_access_list: u64,
    pub already_known: u64,
    /// (line number, why) of the first few bad lines, and how many there were.
    pub bad_lines: Vec<(usize, LineError)>,
    pub bad_line_count: u64,
}

/// Appends one torrent line, newline included (also used by `/stats?mode=statedump`).
pub fn write_line(out: &mut Vec<u8>, info_hash: &InfoHash, base_minutes: u64, downloaded: u64) {
    hex::push_upper(out, &info_hash.0);
    out.push(b':');
    out.extend_from_slice(itoa::Buffer::new().format(base_minutes).as_bytes());
    out.push(b':');
    out.extend_from_slice(itoa::Buffer::new().format(downloaded).as_bytes());
    out.push(b'\n');
}

/// Parses one torrent line (without or with its newline).
pub fn parse_line(line: &[u8]) -> Result<TorrentLine, LineError> {
    if line.len() > MAX_LINE {
        return Err(LineError::TooLong);
    }
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut parts = line.splitn(3, |&b| b == b':');
    let hex = parts.next().ok_or(LineError::MissingField)?;
    let info_hash = InfoHash::from_hex(hex).ok_or(LineError::BadHash)?;
    let base = parts.next().ok_or(LineError::MissingField)?;
    let down = parts.next().ok_or(LineError::MissingField)?;
    Ok(TorrentLine {
        info_hash,
        base_minutes: decimal(base)?,
        downloaded: decimal(down)?,
    })
}

/// Writes every torrent in opentracker's statedump format; returns how many.
pub fn write_torrents(store: &Store, w: &mut impl Write) -> io::Result<u64> {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut n = 0u64;
    for shard in 0..SHARDS {
        store.for_each_detail_in_shard(shard, |h, counts, last_active, _| {
            write_line(
                &mut buf,
                h,
                u64::from(last_active) / 60,
                u64::from(counts.downloaded),
            );
            n += 1;
        });
        if buf.len() > 60 * 1024 {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)?;
    Ok(n)
}

/// Loads torrent lines into `store`, skipping those `allowed` refuses and those already known.
/// Bad lines are counted and skipped, never fatal: a damaged dump still restores what it can.
pub fn load_torrents(
    r: impl BufRead,
    store: &Store,
    allowed: impl Fn(&InfoHash) -> bool,
) -> io::Result<LoadReport> {
    let mut report = LoadReport::default();
    let mut line = Vec::with_capacity(128);
    // A line longer than MAX_LINE is consumed but not kept.
    let mut r = r;
    let mut number = 0usize;
    loop {
        line.clear();
        let n = (&mut r)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.len() > MAX_LINE && line.last() != Some(&b'\n') {
            // Skip the rest of the over-long line.
            let mut sink = Vec::new();
            r.read_until(b'\n', &mut sink)?;
        }
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        match parse_line(&line) {
            Ok(t) => {
                if !allowed(&t.info_hash) {
                    report.refused_by_access_list += 1;
                    continue;
                }
                let last_active =
                    u32::try_from(t.base_minutes.saturating_mul(60)).unwrap_or(u32::MAX);
                let downloaded = u32::try_from(t.downloaded).unwrap_or(u32::MAX);
                if store.restore_torrent(&t.info_hash, last_active, downloaded) {
                    report.loaded += 1;
                } else {
                    report.already_known += 1;
                }
            }
            Err(e) => {
                report.bad_line_count += 1;
                if report.bad_lines.len() < 5 {
                    report.bad_lines.push((number, e));
                }
            }
        }
    }
    Ok(report)
}

/// Writes every peer of every torrent in the peer-file format; returns how many peers.
pub fn write_peers(store: &Store, w: &mut impl Write) -> io::Result<u64> {
    let mut buf = Vec::with_capacity(64 * 1024);
    buf.extend_from_slice(PEERS_MAGIC);
    let mut n = 0u64;
    for shard in 0..SHARDS {
        store.peers_in_shard(shard, |h, p4, p6| {
            buf.extend_from_slice(&h.0);
            buf.extend_from_slice(&(p4.len() as u32).to_be_bytes());
            buf.extend_from_slice(&(p6.len() as u32).to_be_bytes());
            for p in p4 {
                buf.extend_from_slice(p.wire());
                buf.push(p.flags());
            }
            for p in p6 {
                buf.extend_from_slice(p.wire());
                buf.push(p.flags());
            }
            n += (p4.len() + p6.len()) as u64;
        });
        if buf.len() > 60 * 1024 {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)?;
    Ok(n)
}

/// Why a peer file was refused (partway: what was read before stays loaded).
#[derive(Debug)]
pub enum PeersError {
    NotAPeerFile,
    Truncated,
    Io(io::Error),
}

impl std::fmt::Display for PeersError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeersError::NotAPeerFile => f.write_str("not a ferrotracker peer file (bad magic)"),
            PeersError::Truncated => f.write_str("peer file ends in the middle of a record"),
            PeersError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for PeersError {}

/// Puts the peers of a peer file back, for torrents that exist in `store` (restore the
/// torrents first, so the access list has had its say). Returns how many peers were restored.
pub fn load_peers(r: impl Read, store: &Store, now: u32) -> Result<u64, PeersError> {
    let mut r = io::BufReader::new(r);
    let mut magic = [0u8; 8];
    read_exact_or(&mut r, &mut magic, PeersError::NotAPeerFile)?;
    if &magic != PEERS_MAGIC {
        return Err(PeersError::NotAPeerFile);
    }
    let mut restored = 0u64;
    loop {
        let mut head = [0u8; 28];
        match r.read(&mut head[..1]) {
            Ok(0) => return Ok(restored),
            Ok(_) => {}
            Err(e) => return Err(PeersError::Io(e)),
        }
        read_exact_or(&mut r, &mut head[1..], PeersError::Truncated)?;
        let mut hash = [0u8; 20];
        hash.copy_from_slice(&head[..20]);
        let hash = InfoHash(hash);
        let n4 = u32::from_be_bytes([head[20], head[21], head[22], head[23]]);
        let n6 = u32::from_be_bytes([head[24], head[25], head[26], head[27]]);
        for _ in 0..n4 {
            let mut rec = [0u8; 7];
            read_exact_or(&mut r, &mut rec, PeersError::Truncated)?;
            let addr = PeerAddr::V4([rec[0], rec[1], rec[2], rec[3]]);
            if store.restore_peer(
                &hash,
                addr,
                u16::from_be_bytes([rec[4], rec[5]]),
                rec[6],
                now,
            ) {
                restored += 1;
            }
        }
        for _ in 0..n6 {
            let mut rec = [0u8; 19];
            read_exact_or(&mut r, &mut rec, PeersError::Truncated)?;
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&rec[..16]);
            let port = u16::from_be_bytes([rec[16], rec[17]]);
            if store.restore_peer(&hash, PeerAddr::V6(ip), port, rec[18], now) {
                restored += 1;
            }
        }
    }
}

fn read_exact_or(r: &mut impl Read, buf: &mut [u8], short: PeersError) -> Result<(), PeersError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => short,
        _ => PeersError::Io(e),
    })
}

fn decimal(s: &[u8]) -> Result<u64, LineError> {
    if s.is_empty() || s.len() > 20 {
        return Err(LineError::BadNumber);
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return Err(LineError::BadNumber);
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or(LineError::BadNumber)?;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrotracker_proto::Event;
    use ferrotracker_swarm::{Announce, Rng, StoreConfig, Want};

    fn h(n: u8) -> InfoHash {
        InfoHash([n; 20])
    }

    fn announce(s: &Store, hash: InfoHash, addr: PeerAddr, port: u16, completed: bool, now: u32) {
        let a = Announce {
            info_hash: hash,
            addr,
            port,
            seeding: completed,
            event: if completed {
                Event::Completed
            } else {
                Event::Started
            },
        };
        s.announce(
            &a,
            Want::Both(0),
            now,
            &mut Rng::new(1),
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .expect("within the store limits");
    }

    #[test]
    fn line_format_matches_opentracker() {
        let mut out = Vec::new();
        write_line(
            &mut out,
            &InfoHash([
                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0xff,
            ]),
            29926553,
            5,
        );
        assert_eq!(
            out,
            b"0123456789ABCDEF0000000000000000000000FF:29926553:5\n".to_vec()
        );
        let t = parse_line(&out).unwrap();
        assert_eq!((t.base_minutes, t.downloaded), (29926553, 5));
        assert_eq!(
            parse_line(b"0123456789abcdef0000000000000000000000ff:1:2\r\n")
                .unwrap()
                .info_hash,
            t.info_hash
        );
    }

    #[test]
    fn bad_lines_are_named() {
        assert_eq!(parse_line(b"xyz:1:2"), Err(LineError::BadHash));
        assert_eq!(
            parse_line(b"0123456789abcdef0000000000000000000000fg:1:2"),
            Err(LineError::BadHash)
        );
        assert_eq!(
            parse_line(b"0123456789abcdef0000000000000000000000ff:1"),
            Err(LineError::MissingField)
        );
        assert_eq!(
            parse_line(b"0123456789abcdef0000000000000000000000ff:1:x"),
            Err(LineError::BadNumber)
        );
        assert_eq!(
            parse_line(b"0123456789abcdef0000000000000000000000ff:-1:2"),
            Err(LineError::BadNumber)
        );
        assert_eq!(parse_line(&[b'a'; 600]), Err(LineError::TooLong));
        // Never panics on any prefix.
        let good = b"0123456789abcdef0000000000000000000000ff:123:456\n";
        for i in 0..good.len() {
            let _ = parse_line(&good[..i]);
        }
    }

    #[test]
    fn round_trip_keeps_downloaded_once_and_respects_the_access_list() {
        let s = Store::new(StoreConfig::default());
        let now = 1_800_000_000;
        announce(&s, h(1), PeerAddr::V4([1, 1, 1, 1]), 1, true, now);
        announce(&s, h(1), PeerAddr::V4([1, 1, 1, 2]), 1, true, now);
        announce(&s, h(2), PeerAddr::V6([2; 16]), 2, false, now);
        announce(&s, h(3), PeerAddr::V4([3, 3, 3, 3]), 3, true, now);
        let mut dump = Vec::new();
        assert_eq!(write_torrents(&s, &mut dump).unwrap(), 3);
        let mut peers = Vec::new();
        assert_eq!(write_peers(&s, &mut peers).unwrap(), 4);

        let fresh = Store::new(StoreConfig::default());
        let mut text = dump.clone();
        text.extend_from_slice(b"garbage line\n\n");
        let report = load_torrents(&text[..], &fresh, |x| *x != h(3)).unwrap();
        assert_eq!(
            (
                report.loaded,
                report.refused_by_access_list,
                report.bad_line_count
            ),
            (2, 1, 1)
        );
        assert_eq!(report.bad_lines, vec![(4, LineError::BadHash)]);
        assert_eq!(
            fresh.scrape(&h(1)).map(|c| c.downloaded),
            Some(2),
            "not doubled"
        );
        // Reloading the same dump changes nothing.
        let again = load_torrents(&dump[..], &fresh, |_| true).unwrap();
        assert_eq!((again.loaded, again.already_known), (1, 2));

        let restored = load_peers(&peers[..], &fresh, now + 60).unwrap();
        assert_eq!(restored, 4, "h(3) was loaded by the second pass");
        let c = fresh.scrape(&h(1)).unwrap();
        assert_eq!((c.seeders, c.leechers, c.downloaded), (2, 0, 2));
        assert_eq!(fresh.scrape(&h(2)).map(|c| c.leechers), Some(1));
        // Same minute-granular time stamps come back.
        let mut redump = Vec::new();
        write_torrents(&fresh, &mut redump).unwrap();
        let mut a: Vec<_> = dump.split(|&b| b == b'\n').collect();
        let mut b: Vec<_> = redump.split(|&b| b == b'\n').collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    }

    #[test]
    fn damaged_peer_files_are_refused_without_panic() {
        let s = Store::new(StoreConfig::default());
        assert!(matches!(
            load_peers(&b"NOTPEERS"[..], &s, 0),
            Err(PeersError::NotAPeerFile)
        ));
        assert!(matches!(
            load_peers(&b"FTP"[..], &s, 0),
            Err(PeersError::NotAPeerFile)
        ));
        let mut f = PEERS_MAGIC.to_vec();
        f.extend_from_slice(&[0u8; 20]);
        f.extend_from_slice(&5u32.to_be_bytes());
        f.extend_from_slice(&0u32.to_be_bytes());
        f.extend_from_slice(&[1, 2, 3]);
        assert!(matches!(
            load_peers(&f[..], &s, 0),
            Err(PeersError::Truncated)
        ));
        assert_eq!(load_peers(&PEERS_MAGIC[..], &s, 0).unwrap(), 0);
    }
}
