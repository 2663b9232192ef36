//! WebTorrent tracker messages: the JSON text frames browsers send over a WebSocket, parsed
//! and written with no I/O and no allocation.
//!
//! The protocol is the one webtorrent's `bittorrent-tracker` speaks (client:
//! [`lib/client/websocket-tracker.js`](https://github.com/webtorrent/bittorrent-tracker/blob/master/lib/client/websocket-tracker.js);
//! server: `lib/server/parse-websocket.js` and `server.js` beside it). A browser cannot take
//! incoming connections, so peers meet through the tracker: an announce carries WebRTC offers,
//! the tracker hands each to another peer of the swarm, and that peer's answer comes back
//! through the tracker to the offerer. Every message is a JSON object with an `action`:
//!
//! | direction | message |
//! |---|---|
//! | client → tracker | `{"action":"announce", info_hash, peer_id, uploaded?, downloaded?, left?, event?, numwant?, offers?:[{offer, offer_id}]}` |
//! | client → tracker (answer) | `{"action":"announce", info_hash, peer_id, to_peer_id, answer, offer_id}` |
//! | client → tracker | `{"action":"scrape", info_hash?: B \| [B, ...]}` |
//! | tracker → client | `{"action":"announce", info_hash, complete, incomplete, interval}` |
//! | tracker → client (relayed offer) | `{"action":"announce", info_hash, peer_id: offerer, offer, offer_id}` |
//! | tracker → client (relayed answer) | `{"action":"announce", info_hash, peer_id: answerer, answer, offer_id}` |
//! | tracker → client | `{"action":"scrape", files: {B: {complete, incomplete, downloaded}}}` |
//! | tracker → client | `{"action", "failure reason", info_hash?}` |
//!
//! What the reference client does, and so what this module accepts:
//! - `info_hash`, `peer_id`, `to_peer_id` and `offer_id` are 20-byte *binary strings*
//!   (`Buffer.toString('binary')`: one char per byte, U+0000..U+00FF). `JSON.stringify`
//!   escapes the control characters and sends U+0080..U+00FF as 2-byte UTF-8; any JSON spelling
//!   of those chars (`\u00e9` or raw) is accepted. The client compares replies with its own
//!   strings, so they are kept as `[u8; 20]` and written back byte-exact.
//! - Numbers are JSON numbers. `left` is `null` while a magnet link has no metadata
//!   (`Math.max(NaN, 0)`), and absent from bare tracker clients: both read as `None`.
//!   Fractions are truncated and huge values saturate; a negative number or a non-number is an
//!   error.
//! - `event` is `started`, `stopped`, `completed` or absent (`update`); `update`, `empty`
//!   and `paused` (which the reference server also accepts) read as [`Event::None`].
//! - Offers come only with no event or `started` (at most 5 from today's client, 10 from older
//!   ones); `numwant` is the number of offers and the reference server ignores it. An answer
//!   carries no counters at all.
//! - A scrape's `info_hash` is one binary string, or an array of them when the caller asked
//!   for several; absent, the reference server scrapes every torrent.
//! - The client drops an announce reply whose `info_hash` is not its own, and ignores
//!   `failure reason` in scrape replies; an error reply without `action` makes it close the
//!   socket. Errors are therefore written with their action, and with the info_hash when it
//!   was readable ([`Error`] carries both).
//!
//! # Bounds and determinism
//! Everything a client controls is bounded by [`Limits`] (message size, offers, scrape hashes,
//! size of one offer or answer) and by the nesting depth [`json::MAX_DEPTH`]. Offers beyond
//! `max_offers` are checked for syntax but otherwise ignored, as the reference server uses no
//! more offers than it has peers to send them to; more scrape hashes than `max_info_hashes` are
//! refused, as a reply without some of them would be wrong. Unknown keys are ignored. A
//! duplicate key's last value wins, as in `JSON.parse`, so a message means to this module what
//! it means to the reference server.
//!
//! # Why a hand-written JSON reader
//! This is a hot path (every announce of every browser, and each one holds up to 10 SDP blobs
//! of a few KiB that are relayed verbatim). `serde_json` would allocate on escaped strings
//! (binary ids are full of `\u00XX`) and for every error (a boxed error with a formatted
//! message, on attacker-chosen input), and could not say which `action` a rejected message had.
//! The reader here (`webtorrent/json.rs`, ~300 lines) checks RFC 8259 grammar and hands out
//! borrowed spans: offers and answers stay raw JSON slices of the received frame, relayed
//! without re-encoding; binary strings decode straight into `[u8; 20]`.

mod json;
mod write;

pub use write::*;

use crate::http_body::Counts;
use crate::{Event, InfoHash, PeerId};
use json::{Elements, Names, Reader, Value};

pub use json::JsonStr;

/// A WebRTC offer's 20-byte id, chosen by the offerer and echoed with the answer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Debug)]
pub struct OfferId(pub [u8; 20]);

/// A message's `action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Announce,
    Scrape,
}

impl Action {
    /// The action as the wire spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Announce => "announce",
            Action::Scrape => "scrape",
        }
    }
}

/// Bounds on what one message may hold; the caller chooses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest message, in bytes.
    pub max_message: usize,
    /// Offers used from one announce; later ones are ignored (see the module doc).
    pub max_offers: usize,
    /// Most info_hashes in one scrape request or reply; more is an error.
    pub max_info_hashes: usize,
    /// Largest `offer` or `answer` object, in bytes of JSON text.
    pub max_signal: usize,
}

impl Default for Limits {
    /// 64 KiB messages, 10 offers (what older clients send), 64 scrape hashes (HTTP's bound,
    /// [`crate::query::MAX_SCRAPE`]), 16 KiB per SDP object (a non-trickle data-channel
    /// offer with its ICE candidates is 1 to 4 KiB).
    fn default() -> Self {
        Limits {
            max_message: 64 * 1024,
            max_offers: 10,
            max_info_hashes: crate::query::MAX_SCRAPE,
            max_signal: 16 * 1024,
        }
    }
}

/// A message from a browser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    Announce(Announce<'a>),
    Scrape(Scrape<'a>),
}

/// An announce; with `answer`, the reply to an offer this peer received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Announce<'a> {
    pub info_hash: InfoHash,
    pub peer_id: PeerId,
    pub event: Event,
    /// `None` when absent or `null`.
    pub uploaded: Option<u64>,
    pub downloaded: Option<u64>,
    /// `None` when absent or `null` (a magnet link without metadata): not a seeder.
    pub left: Option<u64>,
    /// The client sets it to the number of offers; informative only.
    pub numwant: Option<u64>,
    /// The first [`Limits::max_offers`] offers, to hand to other peers of the swarm.
    pub offers: Offers<'a>,
    pub answer: Option<Answer<'a>>,
}

/// One WebRTC offer of an announce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer<'a> {
    pub offer_id: OfferId,
    /// The `offer` object (`{"type":"offer","sdp":...}`) as the JSON text received, checked
    /// and bounded: relay it as it is.
    pub offer: &'a str,
}

/// A WebRTC answer to an offer, for the peer `to_peer_id`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer<'a> {
    pub to_peer_id: PeerId,
    pub offer_id: OfferId,
    /// The `answer` object as the JSON text received, checked and bounded.
    pub answer: &'a str,
}

/// A scrape request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scrape<'a> {
    /// `None` when `info_hash` is absent or `null` (the reference server then scrapes every
    /// torrent; the caller decides).
    pub info_hashes: Option<InfoHashes<'a>>,
}

/// A message from the tracker, as a client reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    Announce {
        info_hash: InfoHash,
        complete: u32,
        incomplete: u32,
        interval: u32,
    },
    /// An offer from `peer_id`.
    Offer {
        info_hash: InfoHash,
        peer_id: PeerId,
        offer: Offer<'a>,
    },
    /// An answer from `peer_id`.
    Answer {
        info_hash: InfoHash,
        peer_id: PeerId,
        offer_id: OfferId,
        answer: &'a str,
    },
    Scrape(ScrapeFiles<'a>),
    Failure {
        action: Option<Action>,
        info_hash: Option<InfoHash>,
        reason: JsonStr<'a>,
    },
}

/// Why a message was refused, with what of it could be read: the server answers
/// `{"failure reason": kind.reason(), "action": ..., "info_hash": ...}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    /// The message's action, when it was readable.
    pub action: Option<Action>,
    /// The announce's (or single-hash scrape's) info_hash, when it was readable.
    pub info_hash: Option<InfoHash>,
    pub kind: ErrorKind,
}

impl Error {
    /// The failure reason to send back.
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }
}

/// What was wrong with a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    TooLarge,
    NotUtf8,
    /// Not JSON (or trailing bytes after it).
    Syntax,
    TooDeep,
    NotObject,
    MissingAction,
    UnknownAction,
    BadInfoHash,
    BadPeerId,
    BadEvent,
    /// A counter that is not a non-negative number (or, in a reply, is missing or too large).
    BadNumber,
    /// `offers` is not an array.
    BadOffers,
    /// An offer without an `offer` object.
    BadOffer,
    BadOfferId,
    /// `answer` is not an object.
    BadAnswer,
    BadToPeerId,
    /// An `offer` or `answer` larger than [`Limits::max_signal`].
    SignalTooLarge,
    TooManyInfoHashes,
    /// A scrape reply without a valid `files` object.
    BadFiles,
}

impl ErrorKind {
    /// A fixed failure reason.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::TooLarge => "message too large",
            ErrorKind::NotUtf8 => "message is not UTF-8",
            ErrorKind::Syntax => "message is not JSON",
            ErrorKind::TooDeep => "message nested too deep",
            ErrorKind::NotObject => "message is not a JSON object",
            ErrorKind::MissingAction => "missing action",
            ErrorKind::UnknownAction => "invalid action",
            ErrorKind::BadInfoHash => "invalid info_hash",
            ErrorKind::BadPeerId => "invalid peer_id",
            ErrorKind::BadEvent => "invalid event",
            ErrorKind::BadNumber => "invalid number",
            ErrorKind::BadOffers => "invalid offers",
            ErrorKind::BadOffer => "invalid offer",
            ErrorKind::BadOfferId => "invalid offer_id",
            ErrorKind::BadAnswer => "invalid answer",
            ErrorKind::BadToPeerId => "invalid `to_peer_id` (required with `answer`)",
            ErrorKind::SignalTooLarge => "offer or answer too large",
            ErrorKind::TooManyInfoHashes => "too many info_hashes",
            ErrorKind::BadFiles => "invalid scrape files",
        }
    }
}

/// Parses a browser's message (a WebSocket text frame's payload).
pub fn parse_request<'a>(msg: &'a [u8], limits: &Limits) -> Result<Request<'a>, Error> {
    parse_request_text(utf8(msg, limits)?, limits)
}

/// [`parse_request`] of a message known to be UTF-8: a text frame's payload that the
/// WebSocket layer has validated already (RFC 6455 requires it), which is then not checked twice.
pub fn parse_request_text<'a>(msg: &'a str, limits: &Limits) -> Result<Request<'a>, Error> {
    const KEYS: Names<12> = Names::new([
        "action",
        "info_hash",
        "peer_id",
        "event",
        "uploaded",
        "downloaded",
        "left",
        "numwant",
        "offers",
        "answer",
        "to_peer_id",
        "offer_id",
    ]);
    const OFFERS: usize = 8;
    // The offers of the last `offers` array, read with its grammar (one pass over them).
    let mut offers_read = None;
    let (read, slots) = read_top(msg, limits, &KEYS, |i, r, depth| {
        if i != OFFERS {
            return r.value(depth);
        }
        offers_read = None;
        if !r.at_array() {
            return r.value(depth);
        }
        let (v, offers) = read_offers(r, depth, limits)?;
        offers_read = Some(offers);
        Ok(v)
    })?;
    let [action, info_hash, peer_id, event, uploaded, downloaded, left, numwant, offers, answer, to_peer_id, offer_id] =
        slots;
    let (act, hash) = context(action, info_hash);
    let err = |kind| Error {
        action: act,
        info_hash: hash,
        kind,
    };
    read.map_err(err)?;
    match act {
        None if action.is_none() => Err(err(ErrorKind::MissingAction)),
        None => Err(err(ErrorKind::UnknownAction)),
        Some(Action::Announce) => {
            let info_hash = hash.ok_or(err(ErrorKind::BadInfoHash))?;
            let read = || -> Result<Announce<'a>, ErrorKind> {
                Ok(Announce {
                    info_hash,
                    peer_id: PeerId(id(peer_id, ErrorKind::BadPeerId)?),
                    event: parse_event(event)?,
                    uploaded: number(uploaded)?,
                    downloaded: number(downloaded)?,
                    left: number(left)?,
                    numwant: number(numwant)?,
                    offers: match (offers, offers_read) {
                        (None | Some(Value::Null), _) => Offers::default(),
                        (Some(Value::Array(text)), Some(len)) => {
                            Offers(OffersInner::Parsed { text, len: len? })
                        }
                        _ => return Err(ErrorKind::BadOffers),
                    },
                    answer: match answer {
                        None | Some(Value::Null) => None,
                        Some(Value::Object(text)) => Some(Answer {
                            answer: signal(text, limits.max_signal)?,
                            to_peer_id: PeerId(id(to_peer_id, ErrorKind::BadToPeerId)?),
                            offer_id: OfferId(id(offer_id, ErrorKind::BadOfferId)?),
                        }),
                        Some(_) => return Err(ErrorKind::BadAnswer),
                    },
                })
            };
            read().map(Request::Announce).map_err(err)
        }
        Some(Action::Scrape) => {
            let info_hashes = match info_hash {
                None | Some(Value::Null) => None,
                Some(Value::Str(_)) => {
                    Some(InfoHashes::one(hash.ok_or(err(ErrorKind::BadInfoHash))?))
                }
                Some(Value::Array(text)) => {
                    let mut hashes = Reader::new(text).array().map_err(err)?;
                    let mut len = 0;
                    while let Some(v) = hashes.next(1).map_err(err)? {
                        match v {
                            Value::Str(s) if s.bin20().is_some() => len += 1,
                            _ => return Err(err(ErrorKind::BadInfoHash)),
                        }
                        if len > limits.max_info_hashes {
                            return Err(err(ErrorKind::TooManyInfoHashes));
                        }
                    }
                    Some(InfoHashes(HashesInner::Parsed { text, len }))
                }
                Some(_) => return Err(err(ErrorKind::BadInfoHash)),
            };
            Ok(Request::Scrape(Scrape { info_hashes }))
        }
    }
}

/// Parses a tracker's message, as a client (the load generator, the tests) reads it.
pub fn parse_reply<'a>(msg: &'a [u8], limits: &Limits) -> Result<Reply<'a>, Error> {
    let msg = utf8(msg, limits)?;
    const KEYS: Names<11> = Names::new([
        "action",
        "info_hash",
        "peer_id",
        "offer",
        "answer",
        "offer_id",
        "complete",
        "incomplete",
        "interval",
        "files",
        "failure reason",
    ]);
    let (read, slots) = read_top(msg, limits, &KEYS, |_, r, depth| r.value(depth))?;
    let [action, info_hash, peer_id, offer, answer, offer_id, complete, incomplete, interval, files, failure] =
        slots;
    let (act, hash) = context(action, info_hash);
    let err = |kind| Error {
        action: act,
        info_hash: hash,
        kind,
    };
    read.map_err(err)?;
    if let Some(failure) = failure {
        let Value::Str(reason) = failure else {
            return Err(err(ErrorKind::Syntax));
        };
        return Ok(Reply::Failure {
            action: act,
            info_hash: hash,
            reason,
        });
    }
    let count = |v: Option<Value<'a>>| {
        number(v)?
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(ErrorKind::BadNumber)
    };
    match act {
        None if action.is_none() => Err(err(ErrorKind::MissingAction)),
        None => Err(err(ErrorKind::UnknownAction)),
        Some(Action::Announce) => {
            let info_hash = hash.ok_or(err(ErrorKind::BadInfoHash))?;
            let read = || -> Result<Reply<'a>, ErrorKind> {
                if offer.is_some() || answer.is_some() {
                    let peer_id = PeerId(id(peer_id, ErrorKind::BadPeerId)?);
                    let offer_id = OfferId(id(offer_id, ErrorKind::BadOfferId)?);
                    return Ok(match (offer, answer) {
                        (Some(Value::Object(text)), _) => Reply::Offer {
                            info_hash,
                            peer_id,
                            offer: Offer {
                                offer_id,
                                offer: signal(text, limits.max_signal)?,
                            },
                        },
                        (None, Some(Value::Object(text))) => Reply::Answer {
                            info_hash,
                            peer_id,
                            offer_id,
                            answer: signal(text, limits.max_signal)?,
                        },
                        (Some(_), _) => return Err(ErrorKind::BadOffer),
                        _ => return Err(ErrorKind::BadAnswer),
                    });
                }
                Ok(Reply::Announce {
                    info_hash,
                    complete: count(complete)?,
                    incomplete: count(incomplete)?,
                    interval: count(interval)?,
                })
            };
            read().map_err(err)
        }
        Some(Action::Scrape) => {
            let Some(Value::Object(text)) = files else {
                return Err(err(ErrorKind::BadFiles));
            };
            let mut members = Reader::new(text).object().map_err(err)?;
            let mut len = 0;
            while let Some((key, value)) = members.next(1).map_err(err)? {
                file_entry(key, value).map_err(err)?;
                len += 1;
                if len > limits.max_info_hashes {
                    return Err(err(ErrorKind::TooManyInfoHashes));
                }
            }
            Ok(Reply::Scrape(ScrapeFiles { text, len }))
        }
    }
}

/// The offers of an announce: parsed ones (a checked span of the message) or, for a client
/// writing a request, a slice.
#[derive(Clone, Copy, Debug, Default)]
pub struct Offers<'a>(OffersInner<'a>);

#[derive(Clone, Copy, Debug)]
enum OffersInner<'a> {
    Parsed { text: &'a str, len: usize },
    Slice(&'a [Offer<'a>]),
}

impl Default for OffersInner<'_> {
    fn default() -> Self {
        OffersInner::Slice(&[])
    }
}

impl<'a> Offers<'a> {
    /// Offers to write in a request.
    pub fn from_slice(offers: &'a [Offer<'a>]) -> Self {
        Offers(OffersInner::Slice(offers))
    }

    pub fn len(&self) -> usize {
        match self.0 {
            OffersInner::Parsed { len, .. } => len,
            OffersInner::Slice(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The offers, in message order.
    pub fn iter(&self) -> OffersIter<'a> {
        OffersIter(match self.0 {
            OffersInner::Parsed { text, len } => {
                IterInner::Parsed(Reader::new(text).array().ok(), len)
            }
            OffersInner::Slice(s) => IterInner::Slice(s.iter()),
        })
    }
}

impl PartialEq for Offers<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for Offers<'_> {}

/// See [`Offers::iter`].
#[derive(Clone, Debug)]
pub struct OffersIter<'a>(IterInner<'a, Offer<'a>>);

#[derive(Clone, Debug)]
enum IterInner<'a, T> {
    Parsed(Option<Elements<'a>>, usize),
    Slice(std::slice::Iter<'a, T>),
}

impl<'a> Iterator for OffersIter<'a> {
    type Item = Offer<'a>;

    fn next(&mut self) -> Option<Offer<'a>> {
        match &mut self.0 {
            IterInner::Parsed(elements, left) => {
                *left = left.checked_sub(1)?;
                // Checked by `parse_request`: reading it again cannot fail.
                let elements = elements.as_mut()?;
                if !elements.more().ok()? {
                    return None;
                }
                read_offer(elements.reader(), 2, usize::MAX).ok()?.ok()
            }
            IterInner::Slice(s) => s.next().copied(),
        }
    }

    /// Passes over the first `n` offers unread (the message was checked: only their strings
    /// and nesting are followed): a caller that uses only some offers skips the others cheaply.
    fn nth(&mut self, n: usize) -> Option<Offer<'a>> {
        if let IterInner::Parsed(elements, left) = &mut self.0 {
            for _ in 0..n {
                *left = left.checked_sub(1)?;
                let elements = elements.as_mut()?;
                if !elements.more().ok()? {
                    return None;
                }
                elements.reader().skip_checked();
            }
            return self.next();
        }
        let IterInner::Slice(s) = &mut self.0 else {
            return None;
        };
        s.nth(n).copied()
    }
}

/// The info_hashes of a scrape request: one, a checked span of the message, or a slice.
#[derive(Clone, Copy, Debug)]
pub struct InfoHashes<'a>(HashesInner<'a>);

#[derive(Clone, Copy, Debug)]
enum HashesInner<'a> {
    One(InfoHash),
    Parsed { text: &'a str, len: usize },
    Slice(&'a [InfoHash]),
}

impl<'a> InfoHashes<'a> {
    /// A single hash, written as a string rather than an array.
    pub fn one(info_hash: InfoHash) -> Self {
        InfoHashes(HashesInner::One(info_hash))
    }

    /// Hashes written as an array.
    pub fn from_slice(info_hashes: &'a [InfoHash]) -> Self {
        InfoHashes(HashesInner::Slice(info_hashes))
    }

    pub fn len(&self) -> usize {
        match self.0 {
            HashesInner::One(_) => 1,
            HashesInner::Parsed { len, .. } => len,
            HashesInner::Slice(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the message held a single string rather than an array.
    pub fn is_one(&self) -> bool {
        matches!(self.0, HashesInner::One(_))
    }

    /// The hashes, in message order (duplicates kept).
    pub fn iter(&self) -> InfoHashesIter<'a> {
        InfoHashesIter(match self.0 {
            HashesInner::One(h) => HashesIter::One(Some(h)),
            HashesInner::Parsed { text, len } => {
                HashesIter::Inner(IterInner::Parsed(Reader::new(text).array().ok(), len))
            }
            HashesInner::Slice(s) => HashesIter::Inner(IterInner::Slice(s.iter())),
        })
    }
}

impl PartialEq for InfoHashes<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.is_one() == other.is_one() && self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for InfoHashes<'_> {}

/// See [`InfoHashes::iter`].
#[derive(Clone, Debug)]
pub struct InfoHashesIter<'a>(HashesIter<'a>);

#[derive(Clone, Debug)]
enum HashesIter<'a> {
    One(Option<InfoHash>),
    Inner(IterInner<'a, InfoHash>),
}

impl Iterator for InfoHashesIter<'_> {
    type Item = InfoHash;

    fn next(&mut self) -> Option<InfoHash> {
        match &mut self.0 {
            HashesIter::One(h) => h.take(),
            HashesIter::Inner(IterInner::Parsed(elements, left)) => {
                *left = left.checked_sub(1)?;
                // Checked by `parse_request`: reading it again cannot fail.
                match elements.as_mut()?.next(1).ok()?? {
                    Value::Str(s) => s.bin20().map(InfoHash),
                    _ => None,
                }
            }
            HashesIter::Inner(IterInner::Slice(s)) => s.next().copied(),
        }
    }
}

/// The `files` of a scrape reply (a checked span of the message).
#[derive(Clone, Copy, Debug)]
pub struct ScrapeFiles<'a> {
    text: &'a str,
    len: usize,
}

impl<'a> ScrapeFiles<'a> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The files, in message order.
    pub fn iter(&self) -> impl Iterator<Item = (InfoHash, Counts)> + 'a {
        let mut members = Reader::new(self.text).object().ok();
        (0..self.len).map_while(move |_| {
            // Checked by `parse_reply`: reading it again cannot fail.
            let (key, value) = members.as_mut()?.next(1).ok()??;
            file_entry(key, value).ok()
        })
    }
}

impl PartialEq for ScrapeFiles<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for ScrapeFiles<'_> {}

// ------------------------------------------------------------------------------ internals

/// A message's text: checked for size (first) and UTF-8.
fn utf8<'a>(msg: &'a [u8], limits: &Limits) -> Result<&'a str, Error> {
    if msg.len() > limits.max_message {
        return Err(bare(ErrorKind::TooLarge));
    }
    std::str::from_utf8(msg).map_err(|_| bare(ErrorKind::NotUtf8))
}

fn bare(kind: ErrorKind) -> Error {
    Error {
        action: None,
        info_hash: None,
        kind,
    }
}

/// Checks the size and grammar of a message and collects the values of `keys` (last wins).
/// The grammar's verdict is returned beside the values so that an error can still carry the
/// action and info_hash read before it.
/// `read` reads the value of `keys[i]` at the reader, at nesting depth `depth`
/// ([`Reader::value`], or more than that where a value is worth reading on the way).
#[allow(clippy::type_complexity)]
fn read_top<'a, const N: usize>(
    text: &'a str,
    limits: &Limits,
    keys: &Names<N>,
    read: impl FnMut(usize, &mut Reader<'a>, u32) -> Result<Value<'a>, ErrorKind>,
) -> Result<(Result<(), ErrorKind>, [Option<Value<'a>>; N]), Error> {
    if text.len() > limits.max_message {
        return Err(bare(ErrorKind::TooLarge));
    }
    let mut r = Reader::new(text);
    if !r.at_object() {
        return Err(bare(ErrorKind::NotObject));
    }
    let mut slots = [None; N];
    let read = collect_with(r, 1, keys, &mut slots, read).and_then(|mut end| {
        if end.at_end() {
            Ok(())
        } else {
            Err(ErrorKind::Syntax)
        }
    });
    Ok((read, slots))
}

/// Reads the object at `r` (at depth 1), keeping the values of `keys`; returns the reader
/// after it.
fn collect<'a, const N: usize>(
    r: Reader<'a>,
    keys: &Names<N>,
    slots: &mut [Option<Value<'a>>; N],
) -> Result<Reader<'a>, ErrorKind> {
    collect_at(r, 1, keys, slots)
}

/// [`collect`] of an object at nesting `depth`.
fn collect_at<'a, const N: usize>(
    r: Reader<'a>,
    depth: u32,
    keys: &Names<N>,
    slots: &mut [Option<Value<'a>>; N],
) -> Result<Reader<'a>, ErrorKind> {
    collect_with(r, depth, keys, slots, |_, r, depth| r.value(depth))
}

/// [`collect_at`], reading the value of `keys[i]` with `read` (see [`read_top`]).
fn collect_with<'a, const N: usize>(
    mut r: Reader<'a>,
    depth: u32,
    keys: &Names<N>,
    slots: &mut [Option<Value<'a>>; N],
    mut read: impl FnMut(usize, &mut Reader<'a>, u32) -> Result<Value<'a>, ErrorKind>,
) -> Result<Reader<'a>, ErrorKind> {
    let mut members = r.object()?;
    while let Some(key) = members.key()? {
        match keys.find(key) {
            Some(i) => {
                let value = read(i, members.reader(), depth + 1)?;
                if let Some(slot) = slots.get_mut(i) {
                    *slot = Some(value);
                }
            }
            None => {
                members.reader().value(depth + 1)?;
            }
        }
    }
    r = members.end();
    Ok(r)
}

/// The action and info_hash, as far as they are readable, for errors.
fn context(
    action: Option<Value<'_>>,
    info_hash: Option<Value<'_>>,
) -> (Option<Action>, Option<InfoHash>) {
    const ACTIONS: Names<2> = Names::new(["announce", "scrape"]);
    let act = match action {
        Some(Value::Str(s)) => match ACTIONS.find(s) {
            Some(0) => Some(Action::Announce),
            Some(_) => Some(Action::Scrape),
            None => None,
        },
        _ => None,
    };
    let hash = match info_hash {
        Some(Value::Str(s)) => s.bin20().map(InfoHash),
        _ => None,
    };
    (act, hash)
}

fn id(v: Option<Value<'_>>, bad: ErrorKind) -> Result<[u8; 20], ErrorKind> {
    match v {
        Some(Value::Str(s)) => s.bin20().ok_or(bad),
        _ => Err(bad),
    }
}

fn number(v: Option<Value<'_>>) -> Result<Option<u64>, ErrorKind> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => json::to_u64(n).map(Some).ok_or(ErrorKind::BadNumber),
        Some(_) => Err(ErrorKind::BadNumber),
    }
}

fn parse_event(v: Option<Value<'_>>) -> Result<Event, ErrorKind> {
    let s = match v {
        None | Some(Value::Null) => return Ok(Event::None),
        Some(Value::Str(s)) => s,
        Some(_) => return Err(ErrorKind::BadEvent),
    };
    const EVENTS: Names<7> = Names::new([
        "started",
        "stopped",
        "completed",
        "update",
        "empty",
        "paused",
        "",
    ]);
    Ok(match EVENTS.find(s) {
        Some(0) => Event::Started,
        Some(1) => Event::Stopped,
        Some(2) => Event::Completed,
        Some(_) => Event::None,
        None => return Err(ErrorKind::BadEvent),
    })
}

/// Reads the array of offers at `r` (nesting `depth`), checking its grammar as
/// [`Reader::value`] does and, on the way, the first [`Limits::max_offers`] offers: the
/// array, and then how many offers are used or what is wrong with the first bad one.
#[allow(clippy::type_complexity)]
fn read_offers<'a>(
    r: &mut Reader<'a>,
    depth: u32,
    limits: &Limits,
) -> Result<(Value<'a>, Result<usize, ErrorKind>), ErrorKind> {
    if depth > json::MAX_DEPTH {
        return Err(ErrorKind::TooDeep);
    }
    let start = r.mark();
    let mut elements = r.array()?;
    let mut offers = Ok(0);
    while elements.more()? {
        match &mut offers {
            Ok(len) if *len < limits.max_offers => {
                match read_offer(elements.reader(), depth + 1, limits.max_signal)? {
                    Ok(_) => *len += 1,
                    Err(kind) => offers = Err(kind),
                }
            }
            // Past the limit or the first bad offer: the grammar only.
            _ => {
                elements.reader().value(depth + 1)?;
            }
        }
    }
    *r = elements.end();
    Ok((Value::Array(r.since(start)), offers))
}

/// Reads one element of an announce's `offers` at `r` (nesting `depth`): a grammar error, or
/// the offer or what is wrong with it.
fn read_offer<'a>(
    r: &mut Reader<'a>,
    depth: u32,
    max_signal: usize,
) -> Result<Result<Offer<'a>, ErrorKind>, ErrorKind> {
    if depth > json::MAX_DEPTH {
        return Err(ErrorKind::TooDeep);
    }
    if !r.at_object() {
        r.value(depth)?;
        return Ok(Err(ErrorKind::BadOffer));
    }
    let mut slots = [None; 2];
    const KEYS: Names<2> = Names::new(["offer", "offer_id"]);
    *r = collect_at(*r, depth, &KEYS, &mut slots)?;
    let [offer, offer_id] = slots;
    let Some(Value::Object(offer)) = offer else {
        return Ok(Err(ErrorKind::BadOffer));
    };
    let offer = match signal(offer, max_signal) {
        Ok(offer) => offer,
        Err(kind) => return Ok(Err(kind)),
    };
    Ok(id(offer_id, ErrorKind::BadOfferId).map(|id| Offer {
        offer,
        offer_id: OfferId(id),
    }))
}

fn signal(text: &str, max: usize) -> Result<&str, ErrorKind> {
    if text.len() > max {
        Err(ErrorKind::SignalTooLarge)
    } else {
        Ok(text)
    }
}

fn file_entry(key: JsonStr<'_>, value: Value<'_>) -> Result<(InfoHash, Counts), ErrorKind> {
    let hash = key.bin20().ok_or(ErrorKind::BadInfoHash)?;
    let Value::Object(text) = value else {
        return Err(ErrorKind::BadFiles);
    };
    let mut slots = [None; 3];
    const KEYS: Names<3> = Names::new(["complete", "incomplete", "downloaded"]);
    collect(Reader::new(text), &KEYS, &mut slots)?;
    let [complete, incomplete, downloaded] = slots;
    let count = |v| {
        number(v)?
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(ErrorKind::BadNumber)
    };
    Ok((
        InfoHash(hash),
        Counts {
            complete: count(complete)?,
            incomplete: count(incomplete)?,
            downloaded: count(downloaded)?,
        },
    ))
}

#[cfg(test)]
mod tests;
