//! Full scrape, `tpbs` and `statedump`: every torrent of the store, encoded incrementally.
//!
//! A [`FullScrape`] goes through the store's shards in order (shard `i` holds the hashes whose
//! top 12 bits are `i`, so shards in order, each in ascending order, give opentracker's
//! ascending order) and encodes torrents into HTTP/1.1 chunks, gzip-compressed when asked (for
//! an HTTP/1.0 client, which can't read chunks, the body goes unframed and its end is the
//! connection's close: [`FullScrape::unchunked`]). The caller (the server's event loop) asks
//! for the next chunk only when the connection has sent the previous one, so a client that
//! does not read holds one chunk, and no thread blocks on a slow client.
//!
//! # Bounded memory and time whatever the torrents
//!
//! The shard is chosen by the client (it is the top of the info_hash), so one shard may hold
//! every torrent of the store. A stream therefore never copies a shard: it takes the shard's
//! torrents [`BATCH`] at a time, in order. A *pass* walks the shard's hash table (in slices of
//! slots, [`Store::walk_shard`], one lock per slice) keeping in a bounded max-heap the `BATCH`
//! smallest hashes above the last one sent; those are sorted and encoded, and the next pass
//! starts above the last of them. Memory per stream is `BATCH` entries, one chunk and the gzip
//! state, whatever the store holds, and one call does at most [`SLOTS_PER_CALL`] slots of walk
//! and [`MAX_RAW_PER_CALL`] bytes of encoding, so it returns well within a
//! millisecond (see bench/RESULTS.md) and the worker serves its other connections in between.
//!
//! The price is time in a crowded shard: a shard of `n` torrents costs `n / BATCH` passes over
//! its table instead of one sort, so a full scrape of a store whose million torrents share one
//! shard takes about ten seconds of one core, spread over many turns, instead of a tenth of a
//! second and 36 MB. Torrents spread by real info_hashes (a few thousand per shard at most)
//! take one pass per shard, as before. An ordered index per shard would make every pass
//! cheap but cost memory and time on every new torrent for every operator; the process-wide
//! limit on streams ([`StreamLimit`]) and the per-address interval bound what an attacker can
//! make the tracker spend instead.
//!
//! What a stream promises while torrents come and go: the output is always in strictly
//! ascending info_hash order (no torrent twice); every torrent that is in the store for the
//! whole stream is in it, with its counts at some moment of the stream; a torrent added or
//! removed meanwhile may or may not be.

use std::collections::BinaryHeap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ferrotracker_proto::{hex, http, http_body, InfoHash};
use ferrotracker_swarm::{Counts, ShardWalk, Store, WalkStep, SHARDS};
use flate2::write::GzEncoder;
use flate2::Compression;

/// What each torrent becomes (as in opentracker's [`ot_fullscrape.c`](https://erdgeist.org/gitweb/opentracker/tree/ot_fullscrape.c)).
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
    /// The shard being sent.
    shard: usize,
    /// The last hash sent from `shard` (the next pass takes hashes above it); `None` before
    /// its first batch.
    after: Option<[u8; 20]>,
    /// Where the current pass over `shard` stands.
    walk: ShardWalk,
    /// The current pass's candidates: the `BATCH` smallest hashes above `after` seen so far.
    heap: BinaryHeap<Entry>,
    /// The last pass's result, ascending, being encoded from `pos` (the same allocation as
    /// `heap`, handed back and forth).
    batch: Vec<Entry>,
    pos: usize,
    raw: Vec<u8>,
    chunk: Vec<u8>,
    header_done: bool,
    done: bool,
    /// HTTP/1.1 chunk framing; without it the connection's close ends the body.
    chunked: bool,
    /// Body bytes appended so far (after compression, without chunk framing).
    bytes: u64,
    /// This stream's place under the process-wide limit, given back when it is dropped.
    _permit: Option<StreamPermit>,
}

/// Ordered by hash alone (hashes are unique in the store): the heap's top is the largest.
#[derive(Clone, Copy)]
struct Entry {
    hash: [u8; 20],
    counts: Counts,
    last_active: u32,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.hash == o.hash
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.hash.cmp(&o.hash)
    }
}

impl FullScrape {
    /// The store's times must be Unix seconds (the server's clock) for statedump's minutes.
    pub fn new(format: Format, gzip: bool) -> Self {
        FullScrape {
            format,
            gz: gzip
                .then(|| GzEncoder::new(Vec::with_capacity(CHUNK), Compression::new(GZIP_LEVEL))),
            shard: 0,
            after: None,
            walk: ShardWalk::default(),
            heap: BinaryHeap::new(),
            batch: Vec::new(),
            pos: 0,
            raw: Vec::with_capacity(RAW_STEP + 256),
            chunk: Vec::with_capacity(CHUNK + RAW_STEP),
            header_done: false,
            done: false,
            chunked: true,
            bytes: 0,
            _permit: None,
        }
    }

    /// Holds `permit` (see [`StreamLimit::try_start`]) until the stream is dropped.
    pub fn with_permit(mut self, permit: StreamPermit) -> Self {
        self._permit = Some(permit);
        self
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

    /// Appends the next chunk (about [`CHUNK`] bytes of body) to `out`, and the terminating `0`
    /// chunk when everything has been encoded. One call walks at most [`SLOTS_PER_CALL`] table
    /// slots and encodes at most [`MAX_RAW_PER_CALL`] bytes, so it may append nothing (a
    /// crowded shard being walked, or gzip buffering): call again all the same.
    pub fn next_chunk(&mut self, store: &Store, out: &mut Vec<u8>) -> Progress {
        if self.done {
            return Progress::Done;
        }
        let mut raw_this_call = 0usize;
        let mut slots_left = SLOTS_PER_CALL;
        let mut finishing = false;
        while !self.done && self.chunk.len() < CHUNK && raw_this_call < MAX_RAW_PER_CALL {
            self.raw.clear();
            if !self.header_done {
                self.header_done = true;
                if self.format == Format::Bencode {
                    self.raw.extend_from_slice(b"d5:filesd");
                }
            }
            let mut out_of_time = false;
            while self.raw.len() < RAW_STEP {
                if let Some(e) = self.batch.get(self.pos) {
                    encode(self.format, e, &mut self.raw);
                    self.pos += 1;
                    continue;
                }
                if self.shard >= SHARDS {
                    if self.format == Format::Bencode {
                        self.raw.extend_from_slice(b"ee");
                    }
                    finishing = true;
                    break;
                }
                if slots_left == 0 {
                    out_of_time = true;
                    break;
                }
                slots_left = slots_left.saturating_sub(self.gather(store, slots_left));
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
                self.heap = BinaryHeap::new();
                self.batch = Vec::new();
            }
            if out_of_time {
                break;
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

    /// Walks up to `budget` slots of the current pass (the batch before it has been encoded);
    /// at the pass's end, its entries become the next batch. Returns the work done, in slots.
    fn gather(&mut self, store: &Store, budget: usize) -> usize {
        if !self.batch.is_empty() {
            // Encoded: the buffer goes back to gathering.
            let mut v = std::mem::take(&mut self.batch);
            v.clear();
            self.heap = BinaryHeap::from(v);
            self.pos = 0;
        }
        let (after, heap) = (self.after, &mut self.heap);
        let from = self.walk.position();
        let step = store.walk_shard(
            self.shard,
            &mut self.walk,
            budget,
            |h, counts, last_active| {
                if after.is_some_and(|a| h.0 <= a) {
                    return;
                }
                let e = Entry {
                    hash: h.0,
                    counts,
                    last_active,
                };
                if heap.len() < BATCH {
                    heap.push(e);
                } else if let Some(mut top) = heap.peek_mut() {
                    if e.hash < top.hash {
                        *top = e;
                    }
                }
            },
        );
        let walked = self.walk.position().saturating_sub(from) + SHARD_VISIT_SLOTS;
        match step {
            WalkStep::More => {}
            WalkStep::Restarted => self.heap.clear(),
            WalkStep::Done => {
                let full = self.heap.len() == BATCH;
                // pdqsort: about twice as fast as the heap's own sort on 4096 entries.
                self.batch = std::mem::take(&mut self.heap).into_vec();
                self.batch.sort_unstable();
                self.walk = ShardWalk::default();
                if full {
                    // Maybe more above the largest of this batch: another pass.
                    self.after = self.batch.last().map(|e| e.hash);
                } else {
                    self.after = None;
                    self.shard += 1;
                }
            }
        }
        walked
    }
}

/// The process-wide limit on streams in progress (full scrapes, `tpbs`, `statedump`):
/// `http.max_streams`. Taken and given back with one atomic operation at a stream's start and
/// end, never per request.
#[derive(Clone, Debug)]
pub struct StreamLimit {
    open: Arc<AtomicUsize>,
    max: usize,
}

/// One stream's place under a [`StreamLimit`]; dropping it gives the place back.
#[derive(Debug)]
pub struct StreamPermit(Arc<AtomicUsize>);

impl StreamLimit {
    pub fn new(max: usize) -> Self {
        StreamLimit {
            open: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A place for one more stream, or `None` if `max` are open.
    pub fn try_start(&self) -> Option<StreamPermit> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| StreamPermit(Arc::clone(&self.open)))
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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
        // The same entry as a scrape reply's.
        Format::Bencode => http_body::write_scrape_file(out, &InfoHash(e.hash), c.into()),
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
                    out.extend_from_slice(&[b'%', lower_hex(b >> 4), lower_hex(b)]);
                }
            }
            out.push(b':');
            push(out, c.seeders.into());
            out.push(b':');
            push(out, c.leechers.into());
            out.push(b'\n');
        }
        Format::Text | Format::TextPlus => {
            hex::push_upper(out, &e.hash);
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
            &InfoHash(e.hash),
            u64::from(e.last_active) / 60,
            c.downloaded.into(),
        ),
    }
}

/// The lowercase hex digit of the low four bits of `n`.
fn lower_hex(n: u8) -> u8 {
    // Masked below 16, the table's length: `get` always finds the digit.
    LOWER_HEX.get(usize::from(n & 15)).copied().unwrap_or(b'0')
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
pub const MAX_RAW_PER_CALL: usize = 32 * 1024;
/// Level 1: the hashes are random and do not compress, the bencode around them compresses as
/// well at level 1 as at 9, and this runs on the event loop.
const GZIP_LEVEL: u32 = 1;
/// Torrents a pass over a shard gathers, so the entries a stream holds: 36 bytes each. A shard
/// of `n` torrents takes `n / BATCH + 1` passes; see the module comment for the choice.
pub const BATCH: usize = 4096;
/// Table slots (one cache line each) walked per [`FullScrape::next_chunk`] call, under one
/// shard lock at a time: about 0.1 ms on a crowded shard.
pub const SLOTS_PER_CALL: usize = 8 * 1024;
/// What visiting a shard costs besides its slots (its lock, its first cache lines), in slots:
/// a walk over 4096 nearly empty shards is spread over several calls too.
const SHARD_VISIT_SLOTS: usize = 16;
const LOWER_HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests;
