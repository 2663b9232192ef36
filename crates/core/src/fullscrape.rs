//! Full scrape, `tpbs` and `statedump`: every torrent of the store, encoded incrementally.
//!
//! A [`FullScrape`] walks the store one shard at a time (one lock held at a time, only while the
//! shard's entries are copied out), sorts the shard's entries by info_hash (shard `i` holds the
//! hashes whose top 12 bits are `i`, so sorted shards in order give opentracker's ascending
//! order), and encodes them into HTTP/1.1 chunks, gzip-compressed when asked (for an HTTP/1.0
//! client, which can't read chunks, the body goes unframed and its end is the connection's
//! close: [`FullScrape::unchunked`]). The caller (the
//! server's event loop) asks for the next chunk only when the connection has sent the previous
//! one, so memory per connection stays at one shard's entries plus one chunk, whatever the
//! number of torrents, and no thread blocks on a slow client.

// Indices here are nibbles (< 16) into 16-byte hex tables and shard numbers below SHARDS.
#![allow(clippy::indexing_slicing)]

use std::io::Write;

use ferrotracker_proto::http;
use ferrotracker_swarm::{Counts, Store, SHARDS};
use flate2::write::GzEncoder;
use flate2::Compression;

/// What each torrent becomes (spec §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `d5:filesd` + `20:<hash>d8:completei<S>e10:downloadedi<D>e10:incompletei<L>ee`... + `ee`.
    Bencode,
    /// `<20 raw hash bytes><u32 BE seeders><u32 BE leechers>`.
    Binary,
    /// `<url-encoded hash>:<S>:<L>\n`.
    UrlEncoded,
    /// `<HEX40>:<S>:<L>\n`.
    Text,
    /// `<HEX40>:<S>:<L>:<D>\n`.
    TextPlus,
    /// `<HEX40>:<minutes since the Unix epoch of the last announce>:<downloaded>\n`.
    Statedump,
}

/// Whether [`FullScrape::next_chunk`] has more to give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Call again when the output has been sent (the call may have appended nothing).
    More,
    /// The terminating chunk has been appended; the reply is complete.
    Done,
}

/// One streamed reply in progress.
pub struct FullScrape {
    format: Format,
    gz: Option<GzEncoder<Vec<u8>>>,
    next_shard: usize,
    entries: Vec<Entry>,
    pos: usize,
    raw: Vec<u8>,
    chunk: Vec<u8>,
    header_done: bool,
    done: bool,
    /// HTTP/1.1 chunk framing; without it the connection's close ends the body.
    chunked: bool,
    /// Body bytes appended so far (after compression, without chunk framing).
    bytes: u64,
}

#[derive(Clone, Copy)]
struct Entry {
    hash: [u8; 20],
    counts: Counts,
    last_active: u32,
}

impl FullScrape {
    /// The store's times must be Unix seconds (the server's clock) for statedump's minutes.
    pub fn new(format: Format, gzip: bool) -> Self {
        FullScrape {
            format,
            gz: gzip
                .then(|| GzEncoder::new(Vec::with_capacity(CHUNK), Compression::new(GZIP_LEVEL))),
            next_shard: 0,
            entries: Vec::new(),
            pos: 0,
            raw: Vec::with_capacity(RAW_STEP + 256),
            chunk: Vec::with_capacity(CHUNK + RAW_STEP),
            header_done: false,
            done: false,
            chunked: true,
            bytes: 0,
        }
    }

    /// For an HTTP/1.0 client: no chunk framing (HTTP/1.0 has none), no `Content-Length`
    /// (unknown until the end), so the head says `Connection: close` and closing ends the body.
    pub fn unchunked(mut self) -> Self {
        self.chunked = false;
        self
    }

    /// Whether the connection must close after the body (always so without chunks).
    pub fn keeps_alive(&self, keep_alive: bool) -> bool {
        keep_alive && self.chunked
    }

    pub fn is_gzip(&self) -> bool {
        self.gz.is_some()
    }

    /// Body bytes produced so far (compressed size when gzip), without chunk framing.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Appends the response head: `200`, `application/octet-stream`, chunked (unless
    /// [`FullScrape::unchunked`]), gzip if chosen.
    pub fn write_head(&self, out: &mut Vec<u8>, keep_alive: bool) {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n");
        if self.gz.is_some() {
            out.extend_from_slice(b"Content-Encoding: gzip\r\n");
        }
        if self.chunked {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        if !self.keeps_alive(keep_alive) {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Appends the next chunk (about [`CHUNK`] bytes of body, never more than one shard's worth
    /// of raw input beyond [`MAX_RAW_PER_CALL`]) to `out`, and the terminating `0` chunk when
    /// everything has been encoded.
    pub fn next_chunk(&mut self, store: &Store, out: &mut Vec<u8>) -> Progress {
        if self.done {
            return Progress::Done;
        }
        let mut raw_this_call = 0usize;
        let mut finishing = false;
        while !self.done && self.chunk.len() < CHUNK && raw_this_call < MAX_RAW_PER_CALL {
            self.raw.clear();
            if !self.header_done {
                self.header_done = true;
                if self.format == Format::Bencode {
                    self.raw.extend_from_slice(b"d5:filesd");
                }
            }
            while self.raw.len() < RAW_STEP {
                if let Some(e) = self.entries.get(self.pos) {
                    encode(self.format, e, &mut self.raw);
                    self.pos += 1;
                    continue;
                }
                if self.next_shard >= SHARDS {
                    if self.format == Format::Bencode {
                        self.raw.extend_from_slice(b"ee");
                    }
                    finishing = true;
                    break;
                }
                self.load_shard(store);
            }
            raw_this_call += self.raw.len();
            match &mut self.gz {
                Some(gz) => {
                    // Writing into a Vec cannot fail.
                    let _ = gz.write_all(&self.raw);
                    if finishing {
                        let _ = gz.try_finish();
                    }
                    self.chunk.append(gz.get_mut());
                }
                None => self.chunk.extend_from_slice(&self.raw),
            }
            if finishing {
                self.done = true;
                self.entries = Vec::new();
            }
        }
        if !self.chunk.is_empty() {
            // A zero-length chunk would end the body, so only non-empty ones are framed.
            if self.chunked {
                out.extend_from_slice(format!("{:x}\r\n", self.chunk.len()).as_bytes());
            }
            out.extend_from_slice(&self.chunk);
            if self.chunked {
                out.extend_from_slice(b"\r\n");
            }
            self.bytes += self.chunk.len() as u64;
            self.chunk.clear();
        }
        if self.done {
            if self.chunked {
                out.extend_from_slice(b"0\r\n\r\n");
            }
            Progress::Done
        } else {
            Progress::More
        }
    }

    fn load_shard(&mut self, store: &Store) {
        self.entries.clear();
        self.pos = 0;
        let entries = &mut self.entries;
        store.for_each_detail_in_shard(self.next_shard, |h, counts, last_active, _| {
            entries.push(Entry {
                hash: h.0,
                counts,
                last_active,
            })
        });
        self.next_shard += 1;
        self.entries.sort_unstable_by_key(|e| e.hash);
        // A shard grown by an attack must not pin its memory for the rest of the stream.
        if self.entries.capacity() > 4 * SHRINK_ABOVE && self.entries.len() < SHRINK_ABOVE {
            self.entries.shrink_to(SHRINK_ABOVE);
        }
    }
}

/// Writes a whole (unstreamed) body of `format` for every torrent: for tests and tools.
pub fn encode_all(store: &Store, format: Format, gzip: bool) -> Vec<u8> {
    let mut f = FullScrape::new(format, gzip);
    let mut framed = Vec::new();
    while f.next_chunk(store, &mut framed) == Progress::More {}
    dechunk(&framed).unwrap_or_default()
}

/// Removes HTTP/1.1 chunk framing; `None` if `framed` is not a complete chunked body.
pub fn dechunk(mut framed: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let eol = framed.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(framed.get(..eol)?).ok()?, 16).ok()?;
        // A size near usize::MAX must not overflow: such a chunk is simply not there.
        let end = (eol + 2).checked_add(size)?;
        let data = framed.get(eol + 2..end)?;
        body.extend_from_slice(data);
        let rest = framed.get(end..)?;
        framed = rest.strip_prefix(b"\r\n")?;
        if size == 0 {
            return framed.is_empty().then_some(body);
        }
    }
}

fn encode(format: Format, e: &Entry, out: &mut Vec<u8>) {
    let c = e.counts;
    match format {
        Format::Bencode => {
            out.extend_from_slice(b"20:");
            out.extend_from_slice(&e.hash);
            out.extend_from_slice(b"d8:completei");
            push(out, c.seeders.into());
            out.extend_from_slice(b"e10:downloadedi");
            push(out, c.downloaded.into());
            out.extend_from_slice(b"e10:incompletei");
            push(out, c.leechers.into());
            out.extend_from_slice(b"ee");
        }
        Format::Binary => {
            out.extend_from_slice(&e.hash);
            out.extend_from_slice(&c.seeders.to_be_bytes());
            out.extend_from_slice(&c.leechers.to_be_bytes());
        }
        Format::UrlEncoded => {
            for &b in &e.hash {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    out.push(b);
                } else {
                    out.extend_from_slice(&[
                        b'%',
                        LOWER_HEX[usize::from(b >> 4)],
                        LOWER_HEX[usize::from(b & 15)],
                    ]);
                }
            }
            out.push(b':');
            push(out, c.seeders.into());
            out.push(b':');
            push(out, c.leechers.into());
            out.push(b'\n');
        }
        Format::Text | Format::TextPlus => {
            push_hex(out, &e.hash);
            out.push(b':');
            push(out, c.seeders.into());
            out.push(b':');
            push(out, c.leechers.into());
            if format == Format::TextPlus {
                out.push(b':');
                push(out, c.downloaded.into());
            }
            out.push(b'\n');
        }
        Format::Statedump => crate::statedump::write_line(
            out,
            &ferrotracker_proto::InfoHash(e.hash),
            u64::from(e.last_active) / 60,
            c.downloaded.into(),
        ),
    }
}

/// Uppercase hex of a hash, as opentracker's `to_hex`.
pub fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(UPPER_HEX[usize::from(b >> 4)]);
        out.push(UPPER_HEX[usize::from(b & 15)]);
    }
}

fn push(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Writes an `http` error for a full scrape that is turned off.
pub fn write_disabled(out: &mut Vec<u8>, keep_alive: bool) {
    http::write_error(
        out,
        403,
        "full scrape is turned off on this tracker (tracker.full_scrape off)",
        keep_alive,
    );
}

/// Body bytes per chunk (before framing): small enough that one chunk is quick to produce and
/// a slow reader holds little, large enough to amortise the framing and the event-loop turn.
pub const CHUNK: usize = 32 * 1024;
/// Raw (uncompressed) bytes encoded per step.
const RAW_STEP: usize = 16 * 1024;
/// Raw bytes encoded per call at most, so gzip's buffering cannot make one call run long.
const MAX_RAW_PER_CALL: usize = 256 * 1024;
/// Level 1: the hashes are random and do not compress, the bencode around them compresses as
/// well at level 1 as at 9, and this runs on the event loop.
const GZIP_LEVEL: u32 = 1;
const SHRINK_ABOVE: usize = 4096;
const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";
const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;
    use ferrotracker_proto::bencode;
    use ferrotracker_proto::{Event, InfoHash};
    use ferrotracker_swarm::{Announce, PeerAddr, Rng, StoreConfig, Want};
    use std::io::Read;

    fn hash(i: u32) -> InfoHash {
        // Spread over shards: the top bytes vary.
        let mut h = [0u8; 20];
        h[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
        h[16..].copy_from_slice(&i.to_be_bytes());
        InfoHash(h)
    }

    fn announce(store: &Store, h: InfoHash, ip: [u8; 4], seeding: bool, event: Event, now: u32) {
        let mut rng = Rng::new(1);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        store
            .announce(
                &Announce {
                    info_hash: h,
                    addr: PeerAddr::V4(ip),
                    port: 6881,
                    seeding,
                    event,
                },
                Want::Both(0),
                now,
                &mut rng,
                &mut a,
                &mut b,
            )
            .expect("within the store limits");
    }

    /// `n` torrents; torrent i has 1 + (i % 3) leechers, one seeder if i is even, and one download
    /// if i % 4 == 0.
    fn filled(n: u32) -> Store {
        let store = Store::new(StoreConfig::default());
        for i in 0..n {
            let h = hash(i);
            for l in 0..=(i % 3) {
                announce(&store, h, [10, 0, 0, l as u8 + 1], false, Event::None, 60);
            }
            if i % 2 == 0 {
                let ev = if i % 4 == 0 {
                    Event::Completed
                } else {
                    Event::None
                };
                announce(&store, h, [10, 0, 1, 1], true, ev, 60);
            }
        }
        store
    }

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn check_bencode(body: &[u8], n: u32) {
        let v = bencode::decode(body).unwrap();
        let files = v.get(b"files").unwrap().as_dict().unwrap();
        assert_eq!(files.len(), n as usize);
        let mut prev: Option<&[u8]> = None;
        for (k, d) in files {
            assert_eq!(k.len(), 20);
            if let Some(p) = prev {
                assert!(p < *k, "ascending order");
            }
            prev = Some(k);
            let i = u32::from_be_bytes([k[16], k[17], k[18], k[19]]);
            assert_eq!(&hash(i).0[..], *k);
            let get = |key: &[u8]| d.get(key).unwrap().as_int().unwrap();
            assert_eq!(get(b"complete"), i64::from(i % 2 == 0));
            assert_eq!(get(b"incomplete"), i64::from(i % 3) + 1);
            assert_eq!(get(b"downloaded"), i64::from(i % 4 == 0));
        }
    }

    #[test]
    fn empty_tracker() {
        let store = Store::new(StoreConfig::default());
        assert_eq!(encode_all(&store, Format::Bencode, false), b"d5:filesdee");
        assert_eq!(encode_all(&store, Format::Text, false), b"");
        assert_eq!(
            gunzip(&encode_all(&store, Format::Bencode, true)),
            b"d5:filesdee"
        );
    }

    #[test]
    fn bencode_decodes_sorted_with_counts() {
        let store = filled(5000);
        let body = encode_all(&store, Format::Bencode, false);
        check_bencode(&body, 5000);
    }

    #[test]
    fn gzip_round_trip() {
        let store = filled(3000);
        let plain = encode_all(&store, Format::Bencode, false);
        let gz = encode_all(&store, Format::Bencode, true);
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        assert_eq!(gunzip(&gz), plain);
        check_bencode(&gunzip(&gz), 3000);
    }

    #[test]
    fn chunks_are_bounded_and_framed() {
        let store = filled(20_000);
        for gzip in [false, true] {
            let mut f = FullScrape::new(Format::Bencode, gzip);
            let mut framed = Vec::new();
            let mut calls = 0;
            loop {
                let before = framed.len();
                let p = f.next_chunk(&store, &mut framed);
                calls += 1;
                assert!(framed.len() - before <= CHUNK + MAX_RAW_PER_CALL + 64);
                if p == Progress::Done {
                    break;
                }
            }
            assert!(calls > 3, "streamed in several chunks");
            let body = dechunk(&framed).unwrap();
            assert_eq!(f.bytes(), body.len() as u64);
            let body = if gzip { gunzip(&body) } else { body };
            check_bencode(&body, 20_000);
            assert_eq!(f.next_chunk(&store, &mut framed), Progress::Done);
        }
    }

    #[test]
    fn unchunked_for_http10_is_the_raw_body_then_close() {
        let store = filled(20_000);
        for gzip in [false, true] {
            let f = FullScrape::new(Format::Bencode, gzip).unchunked();
            let mut head = Vec::new();
            f.write_head(&mut head, true);
            let head = String::from_utf8(head).unwrap();
            assert!(!head.contains("Transfer-Encoding"), "{head}");
            assert!(head.contains("Connection: close\r\n"), "{head}");
            assert!(!f.keeps_alive(true));
            let mut f = f;
            let mut body = Vec::new();
            while f.next_chunk(&store, &mut body) == Progress::More {}
            assert_eq!(f.bytes(), body.len() as u64);
            let body = if gzip { gunzip(&body) } else { body };
            check_bencode(&body, 20_000);
        }
        // Chunked is the default, and keeps the connection when asked.
        assert!(FullScrape::new(Format::Bencode, false).keeps_alive(true));
    }

    #[test]
    fn text_formats() {
        let store = Store::new(StoreConfig::default());
        let mut h = [0u8; 20];
        h[..8].copy_from_slice(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        let h = InfoHash(h);
        let now = 1_795_595_120;
        announce(&store, h, [10, 0, 0, 1], false, Event::None, now);
        announce(&store, h, [10, 0, 0, 2], true, Event::Completed, now);
        announce(&store, h, [10, 0, 0, 3], true, Event::None, now);
        let hex = "0123456789ABCDEF000000000000000000000000";
        let txt = encode_all(&store, Format::Text, false);
        assert_eq!(txt, format!("{hex}:2:1\n").as_bytes());
        let txtp = encode_all(&store, Format::TextPlus, false);
        assert_eq!(txtp, format!("{hex}:2:1:1\n").as_bytes());
        let bin = encode_all(&store, Format::Binary, false);
        let mut want = h.0.to_vec();
        want.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 1]);
        assert_eq!(bin, want);
        let url = encode_all(&store, Format::UrlEncoded, false);
        let zeros = "%00".repeat(12);
        assert_eq!(url, format!("%01%23Eg%89%ab%cd%ef{zeros}:2:1\n").as_bytes());
        // Statedump: the store's clock is Unix seconds; base is minutes since the epoch.
        let dump = encode_all(&store, Format::Statedump, false);
        let minutes = now / 60;
        assert_eq!(dump, format!("{hex}:{minutes}:1\n").as_bytes());
    }

    #[test]
    fn head() {
        let f = FullScrape::new(Format::Bencode, true);
        let mut out = Vec::new();
        f.write_head(&mut out, false);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn dechunk_refuses_truncation() {
        assert_eq!(dechunk(b"3\r\nabc\r\n0\r\n\r\n"), Some(b"abc".to_vec()));
        assert_eq!(dechunk(b"3\r\nabc\r\n"), None);
        assert_eq!(dechunk(b"4\r\nabc\r\n0\r\n\r\n"), None);
        assert_eq!(dechunk(b"ffffffffffffffff\r\nabc\r\n0\r\n\r\n"), None);
    }
}
