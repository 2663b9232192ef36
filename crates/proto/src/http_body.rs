//! The bencoded bodies of HTTP tracker replies: announce, scrape and failure.
//!
//! Announce replies follow [BEP 3](https://www.bittorrent.org/beps/bep_0003.html) with compact
//! peers ([BEP 23](https://www.bittorrent.org/beps/bep_0023.html)) and IPv6 peers in `peers6`
//! ([BEP 7](https://www.bittorrent.org/beps/bep_0007.html)); scrape replies follow
//! [BEP 48](https://www.bittorrent.org/beps/bep_0048.html). Keys, their order and which ones are
//! left out are opentracker's (`trackerlogic.c` and `ot_http.c`,
//! <https://erdgeist.org/arts/software/opentracker/>), so clients see the same bytes from either.
//! Every writer appends to a `Vec<u8>` the caller reuses and allocates nothing of its own; the
//! HTTP head around a body is [`crate::http`]'s.

use crate::bencode;
use crate::InfoHash;

/// A torrent's totals as replies report them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Seeders (`complete`).
    pub complete: u32,
    /// Leechers (`incomplete`).
    pub incomplete: u32,
    /// Completed downloads (`downloaded`).
    pub downloaded: u32,
}

/// The address family of a client, for the empty peer list of a `stopped` reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// The peers of an announce reply. `v4` holds 6-byte entries (4 address bytes, 2 port bytes,
/// big-endian) and `v6` 18-byte ones (16 + 2), as the store hands them out. The compact form
/// writes them as they are; the dict form reads whole entries only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peers<'a> {
    /// `compact=1` (the default): `peers` (BEP 23) and `peers6` (BEP 7) as byte strings, each
    /// only when it has peers.
    Compact { v4: &'a [u8], v6: &'a [u8] },
    /// `compact=0`: BEP 3's `peers` list of `ip`/`port` dicts, both families in it (no peer ids:
    /// the store keeps none).
    Dicts { v4: &'a [u8], v6: &'a [u8] },
    /// No `peers` key at all (`compact=0` with `numwant=0`).
    Omitted,
}

/// Appends an announce reply: `complete`, `downloaded`, `incomplete`, `interval`,
/// `min interval`, then the peers.
pub fn write_announce(
    out: &mut Vec<u8>,
    counts: Counts,
    interval: u32,
    min_interval: u32,
    peers: Peers<'_>,
) {
    out.push(b'd');
    write_counts(out, counts, true);
    write_intervals(out, interval, min_interval);
    match peers {
        Peers::Compact { v4, v6 } => {
            if !v4.is_empty() {
                out.extend_from_slice(b"5:peers");
                bencode::write_bytes(out, v4);
            }
            if !v6.is_empty() {
                out.extend_from_slice(b"6:peers6");
                bencode::write_bytes(out, v6);
            }
        }
        Peers::Dicts { v4, v6 } => {
            out.extend_from_slice(b"5:peersl");
            for p in v4.chunks_exact(6) {
                if let Ok(&[a, b, c, d, p0, p1]) = <&[u8; 6]>::try_from(p) {
                    let ip = std::net::Ipv4Addr::new(a, b, c, d);
                    write_peer_dict(out, ip.into(), u16::from_be_bytes([p0, p1]));
                }
            }
            for p in v6.chunks_exact(18) {
                if let Ok(&[addr @ .., p0, p1]) = <&[u8; 18]>::try_from(p) {
                    let ip = std::net::Ipv6Addr::from(addr);
                    write_peer_dict(out, ip.into(), u16::from_be_bytes([p0, p1]));
                }
            }
            out.push(b'e');
        }
        Peers::Omitted => {}
    }
    out.push(b'e');
}

/// Appends opentracker's reply to a `stopped` announce: no `downloaded`, and an empty peer list
/// of the client's own family (`peers` or `peers6`).
pub fn write_stopped(
    out: &mut Vec<u8>,
    counts: Counts,
    interval: u32,
    min_interval: u32,
    family: Family,
) {
    out.push(b'd');
    write_counts(out, counts, false);
    write_intervals(out, interval, min_interval);
    out.extend_from_slice(match family {
        Family::V4 => b"5:peers0:e".as_slice(),
        Family::V6 => b"6:peers60:e".as_slice(),
    });
}

/// Appends the start of a scrape reply: `d5:filesd`. Follow it with one
/// [`write_scrape_file`] per known torrent, then [`write_scrape_end`].
pub fn write_scrape_start(out: &mut Vec<u8>) {
    out.extend_from_slice(b"d5:filesd");
}

/// Appends one torrent of a scrape reply: its 20-byte hash, then `complete`, `downloaded` and
/// `incomplete`.
pub fn write_scrape_file(out: &mut Vec<u8>, info_hash: &InfoHash, counts: Counts) {
    bencode::write_bytes(out, &info_hash.0);
    out.push(b'd');
    write_counts(out, counts, true);
    out.push(b'e');
}

/// Appends the end of a scrape reply (closes `files` and the reply).
pub fn write_scrape_end(out: &mut Vec<u8>) {
    out.extend_from_slice(b"ee");
}

/// Appends `d14:failure reason<len>:<reason>e`, the tracker-level error of BEP 3.
pub fn write_failure(out: &mut Vec<u8>, reason: &str) {
    out.extend_from_slice(b"d14:failure reason");
    bencode::write_bytes(out, reason.as_bytes());
    out.push(b'e');
}

/// Length of what [`write_failure`] appends, so a caller can write Content-Length first.
pub fn failure_len(reason: &str) -> usize {
    let mut buf = itoa::Buffer::new();
    b"d14:failure reason".len() + buf.format(reason.len()).len() + 1 + reason.len() + 1
}

/// Appends the digits of `v` (the inside of a bencoded integer).
/// Appends the keys every reply about a torrent starts with, inside its dictionary:
/// `complete`, `downloaded` (unless left out, as a `stopped` reply does) and `incomplete`.
fn write_counts(out: &mut Vec<u8>, counts: Counts, downloaded: bool) {
    out.extend_from_slice(b"8:completei");
    write_uint(out, counts.complete);
    if downloaded {
        out.extend_from_slice(b"e10:downloadedi");
        write_uint(out, counts.downloaded);
    }
    out.extend_from_slice(b"e10:incompletei");
    write_uint(out, counts.incomplete);
    out.push(b'e');
}

/// Appends an announce reply's `interval` and `min interval` keys.
fn write_intervals(out: &mut Vec<u8>, interval: u32, min_interval: u32) {
    out.extend_from_slice(b"8:intervali");
    write_uint(out, interval);
    out.extend_from_slice(b"e12:min intervali");
    write_uint(out, min_interval);
    out.push(b'e');
}

fn write_uint(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends `d2:ip<literal>4:porti<port>ee`.
fn write_peer_dict(out: &mut Vec<u8>, ip: std::net::IpAddr, port: u16) {
    use std::io::Write;
    out.extend_from_slice(b"d2:ip");
    // An IP literal is at most 45 bytes; format it on the stack.
    let mut buf = [0u8; 64];
    let mut cur = std::io::Cursor::new(&mut buf[..]);
    // Writing into a 64-byte buffer cannot fail for an IP literal.
    let _ = write!(cur, "{ip}");
    let n = cur.position() as usize;
    bencode::write_bytes(out, buf.get(..n).unwrap_or_default());
    out.extend_from_slice(b"4:porti");
    write_uint(out, u32::from(port));
    out.extend_from_slice(b"ee");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bencode::{decode, Value};
    use crate::testutil::xorshift;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    /// Counts at the extremes of `u32` and in between, one per field.
    fn counts_cases(rng: &mut u64) -> Vec<Counts> {
        let edge = [0, 1, 9, 10, u32::MAX - 1, u32::MAX];
        let mut v: Vec<Counts> = edge
            .iter()
            .map(|&n| Counts {
                complete: n,
                incomplete: n,
                downloaded: n,
            })
            .collect();
        for _ in 0..20 {
            let pick = |rng: &mut u64| match xorshift(rng) % 3 {
                0 => edge[(xorshift(rng) % edge.len() as u64) as usize],
                _ => xorshift(rng) as u32,
            };
            v.push(Counts {
                complete: pick(rng),
                incomplete: pick(rng),
                downloaded: pick(rng),
            });
        }
        v
    }

    fn random_entries(rng: &mut u64, n: usize, size: usize) -> Vec<u8> {
        (0..n * size).map(|_| xorshift(rng) as u8).collect()
    }

    fn int(v: &Value<'_>, key: &[u8]) -> i64 {
        v.get(key)
            .and_then(Value::as_int)
            .unwrap_or_else(|| panic!("no int {:?}", String::from_utf8_lossy(key)))
    }

    fn keys<'a>(v: &'a Value<'_>) -> Vec<&'a [u8]> {
        v.as_dict().unwrap().iter().map(|(k, _)| *k).collect()
    }

    /// Peer counts 0..=N for both families, plus the most a UDP or HTTP reply carries.
    const PEER_COUNTS: &[usize] = &[0, 1, 2, 3, 7, 66, 200];

    #[test]
    fn announce_compact_round_trip() {
        let mut rng = 0x0123_4567_89ab_cdefu64;
        let mut out = Vec::new();
        for counts in counts_cases(&mut rng) {
            for &n4 in PEER_COUNTS {
                for &n6 in PEER_COUNTS {
                    let v4 = random_entries(&mut rng, n4, 6);
                    let v6 = random_entries(&mut rng, n6, 18);
                    let interval = xorshift(&mut rng) as u32;
                    out.clear();
                    let peers = Peers::Compact { v4: &v4, v6: &v6 };
                    write_announce(&mut out, counts, interval, interval / 2, peers);
                    let v = decode(&out).unwrap();
                    assert_eq!(int(&v, b"complete"), i64::from(counts.complete));
                    assert_eq!(int(&v, b"incomplete"), i64::from(counts.incomplete));
                    assert_eq!(int(&v, b"downloaded"), i64::from(counts.downloaded));
                    assert_eq!(int(&v, b"interval"), i64::from(interval));
                    assert_eq!(int(&v, b"min interval"), i64::from(interval / 2));
                    let mut want: Vec<&[u8]> = vec![
                        b"complete",
                        b"downloaded",
                        b"incomplete",
                        b"interval",
                        b"min interval",
                    ];
                    if n4 > 0 {
                        want.push(b"peers");
                    }
                    if n6 > 0 {
                        want.push(b"peers6");
                    }
                    // Only the keys written, sorted as BEP 3 asks.
                    assert_eq!(keys(&v), want);
                    if n4 > 0 {
                        assert_eq!(v.get(b"peers").and_then(Value::as_bytes), Some(&v4[..]));
                    }
                    if n6 > 0 {
                        assert_eq!(v.get(b"peers6").and_then(Value::as_bytes), Some(&v6[..]));
                    }
                }
            }
        }
    }

    #[test]
    fn announce_dicts_round_trip() {
        let mut rng = 0xfeed_f00d_dead_beefu64;
        let mut out = Vec::new();
        for &n4 in PEER_COUNTS {
            for &n6 in PEER_COUNTS {
                let mut v4 = random_entries(&mut rng, n4, 6);
                let mut v6 = random_entries(&mut rng, n6, 18);
                // The extreme ports and addresses too.
                if let Some(e) = v4.first_chunk_mut::<6>() {
                    *e = [0, 0, 0, 0, 0, 0];
                }
                if let Some(e) = v4.last_chunk_mut::<6>() {
                    *e = [255; 6];
                }
                if let Some(e) = v6.first_chunk_mut::<18>() {
                    *e = [0; 18];
                }
                if let Some(e) = v6.last_chunk_mut::<18>() {
                    *e = [255; 18];
                }
                out.clear();
                let counts = Counts {
                    complete: n4 as u32,
                    incomplete: n6 as u32,
                    downloaded: u32::MAX,
                };
                write_announce(
                    &mut out,
                    counts,
                    1800,
                    900,
                    Peers::Dicts { v4: &v4, v6: &v6 },
                );
                let v = decode(&out).unwrap();
                assert_eq!(int(&v, b"downloaded"), i64::from(u32::MAX));
                assert_eq!(v.get(b"peers6"), None);
                let list = v.get(b"peers").and_then(Value::as_list).unwrap();
                assert_eq!(list.len(), n4 + n6);
                let want = v4
                    .chunks_exact(6)
                    .map(|p| {
                        let ip = Ipv4Addr::new(p[0], p[1], p[2], p[3]);
                        (IpAddr::V4(ip), u16::from_be_bytes([p[4], p[5]]))
                    })
                    .chain(v6.chunks_exact(18).map(|p| {
                        let ip = Ipv6Addr::from(<[u8; 16]>::try_from(&p[..16]).unwrap());
                        (IpAddr::V6(ip), u16::from_be_bytes([p[16], p[17]]))
                    }));
                for (d, (ip, port)) in list.iter().zip(want) {
                    assert_eq!(keys(d), [&b"ip"[..], b"port"]);
                    let text = std::str::from_utf8(d.get(b"ip").and_then(Value::as_bytes).unwrap());
                    assert_eq!(text.unwrap().parse::<IpAddr>().unwrap(), ip);
                    assert_eq!(int(d, b"port"), i64::from(port));
                }
            }
        }
    }

    #[test]
    fn announce_dicts_read_whole_entries_only() {
        let mut out = Vec::new();
        let peers = Peers::Dicts {
            v4: &[127, 0, 0, 1, 0x1a, 0xe1, 9, 9, 9],
            v6: &[1; 17],
        };
        write_announce(&mut out, Counts::default(), 2, 1, peers);
        let v = decode(&out).unwrap();
        assert_eq!(v.get(b"peers").and_then(Value::as_list).unwrap().len(), 1);
    }

    #[test]
    fn announce_without_peers_key() {
        let mut out = b"prefix".to_vec();
        write_announce(&mut out, Counts::default(), 0, 0, Peers::Omitted);
        // Writers append: what the buffer held stays.
        let body = out.strip_prefix(b"prefix").unwrap();
        assert_eq!(
            body,
            b"d8:completei0e10:downloadedi0e10:incompletei0e8:intervali0e12:min intervali0ee"
        );
        assert_eq!(decode(body).unwrap().get(b"peers"), None);
    }

    #[test]
    fn announce_bytes_are_opentrackers() {
        let counts = Counts {
            complete: 1,
            incomplete: 2,
            downloaded: 3,
        };
        let mut out = Vec::new();
        let v4 = [127, 0, 0, 1, 0x1a, 0xe1];
        let v6 = [[0; 15].as_slice(), &[1, 0x1a, 0xe2]].concat();
        write_announce(
            &mut out,
            counts,
            1800,
            900,
            Peers::Compact { v4: &v4, v6: &v6 },
        );
        assert_eq!(
            out,
            [
                &b"d8:completei1e10:downloadedi3e10:incompletei2e8:intervali1800e12:min intervali900e5:peers6:"[..],
                &v4,
                b"6:peers618:",
                &v6,
                b"e",
            ]
            .concat()
        );
        out.clear();
        write_announce(
            &mut out,
            counts,
            1800,
            900,
            Peers::Dicts { v4: &v4, v6: &v6 },
        );
        assert_eq!(
            out,
            &b"d8:completei1e10:downloadedi3e10:incompletei2e8:intervali1800e12:min intervali900e5:peersld2:ip9:127.0.0.14:porti6881eed2:ip3:::14:porti6882eeee"[..]
        );
    }

    #[test]
    fn stopped_round_trip() {
        let mut rng = 0x5eed_u64;
        let mut out = Vec::new();
        for counts in counts_cases(&mut rng) {
            for (family, key) in [(Family::V4, &b"peers"[..]), (Family::V6, b"peers6")] {
                let interval = xorshift(&mut rng) as u32;
                out.clear();
                write_stopped(&mut out, counts, interval, interval / 2, family);
                let v = decode(&out).unwrap();
                assert_eq!(
                    keys(&v),
                    [
                        &b"complete"[..],
                        b"incomplete",
                        b"interval",
                        b"min interval",
                        key
                    ]
                );
                assert_eq!(int(&v, b"complete"), i64::from(counts.complete));
                assert_eq!(int(&v, b"incomplete"), i64::from(counts.incomplete));
                assert_eq!(int(&v, b"interval"), i64::from(interval));
                assert_eq!(int(&v, b"min interval"), i64::from(interval / 2));
                assert_eq!(v.get(key).and_then(Value::as_bytes), Some(&b""[..]));
            }
        }
        out.clear();
        let c = Counts {
            complete: 4,
            incomplete: 5,
            downloaded: 6,
        };
        write_stopped(&mut out, c, 30, 15, Family::V6);
        assert_eq!(
            out,
            b"d8:completei4e10:incompletei5e8:intervali30e12:min intervali15e6:peers60:e"
        );
    }

    #[test]
    fn scrape_round_trip() {
        let mut rng = 0xabcd_ef01_u64;
        let counts = counts_cases(&mut rng);
        // 13 hashes of consecutive bytes: every byte value 0..=255 appears in one.
        let hashes: Vec<InfoHash> = (0..13u32)
            .map(|i| InfoHash(std::array::from_fn(|j| (i * 20 + j as u32) as u8)))
            .collect();
        let mut out = Vec::new();
        for n in 0..=hashes.len() {
            out.clear();
            write_scrape_start(&mut out);
            for (h, c) in hashes.iter().zip(counts.iter().cycle()).take(n) {
                write_scrape_file(&mut out, h, *c);
            }
            write_scrape_end(&mut out);
            let v = decode(&out).unwrap();
            assert_eq!(keys(&v), [&b"files"[..]]);
            let files = v.get(b"files").and_then(Value::as_dict).unwrap();
            assert_eq!(files.len(), n);
            for ((k, f), (h, c)) in files.iter().zip(hashes.iter().zip(counts.iter().cycle())) {
                assert_eq!(*k, &h.0[..]);
                assert_eq!(keys(f), [&b"complete"[..], b"downloaded", b"incomplete"]);
                assert_eq!(int(f, b"complete"), i64::from(c.complete));
                assert_eq!(int(f, b"downloaded"), i64::from(c.downloaded));
                assert_eq!(int(f, b"incomplete"), i64::from(c.incomplete));
            }
        }
        out.clear();
        write_scrape_start(&mut out);
        write_scrape_end(&mut out);
        assert_eq!(out, b"d5:filesdee");
    }

    #[test]
    fn failure_round_trip() {
        let long = "e:".repeat(5000);
        let reasons = [
            "",
            "e",
            ":",
            "0:",
            "d14:failure reasone",
            "i-1e",
            "quote \" backslash \\ percent %00",
            "tab\tCR\rLF\nNUL\0",
            "ünïcødé ✓ 🚀",
            "Requested download is not authorized for use with this tracker.",
            long.as_str(),
        ];
        let mut out = Vec::new();
        for reason in reasons {
            out.clear();
            write_failure(&mut out, reason);
            assert_eq!(failure_len(reason), out.len(), "{reason:?}");
            let v = decode(&out).unwrap();
            assert_eq!(keys(&v), [&b"failure reason"[..]]);
            assert_eq!(
                v.get(b"failure reason").and_then(Value::as_bytes),
                Some(reason.as_bytes())
            );
        }
    }

    #[test]
    fn failure_matches_opentracker() {
        let reason = "Requested download is not authorized for use with this tracker.";
        let mut out = Vec::new();
        write_failure(&mut out, reason);
        assert_eq!(
            out,
            b"d14:failure reason63:Requested download is not authorized for use with this tracker.e"
        );
    }
}
