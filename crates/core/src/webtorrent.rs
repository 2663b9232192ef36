//! WebTorrent tracker requests, with no sockets: one WebSocket text message in, the reply to
//! its sender and the messages to relay to other connections out.
//!
//! Browsers cannot accept connections, so a WebTorrent tracker introduces peers by relaying
//! WebRTC signalling (the protocol is described in [`ferrotracker_proto::webtorrent`]): an
//! announce's offers go to other peers of the torrent, each peer's answer back to the offerer.
//! The server owns a [`WsConn`] per WebSocket connection and calls:
//!
//! - [`Tracker::handle_ws`] for each text message: the reply (if any) goes back on the same
//!   connection, and each entry of [`Relays`] to the connection [`Relay::to`] names;
//! - [`Tracker::ws_relayed`] as it delivers a relay to its connection: that records an offer,
//!   so that the receiver's answer to it is later accepted;
//! - [`Tracker::ws_closed`] when the connection ends: its peers leave every torrent.
//!
//! # What a client can make the tracker hold
//! A connection holds at most `webtorrent.max_peers_per_connection` peers (a torrent and a
//! peer_id each: the clients of one process share one connection), and a ring of the offers
//! relayed to it. An answer is relayed only if it answers one of those, received less than
//! [`OFFER_WINDOW`] seconds ago, from that offerer on that offerer's connection, in that
//! torrent, by the peer it was relayed to, and only once: a client cannot aim answers at peers
//! that never offered it anything, nor answer as another peer. The ring keeps a 64-bit mark
//! of each offer (a SipHash of the torrent, offer id, offerer and its connection, and the
//! receiving peer, keyed with the tracker's secret) rather than the 88 bytes it names (a
//! forged answer would have to guess a secret-keyed 64-bit value), with a hash index over it
//! (an answer finds its mark in a few probes). It starts empty, holds [`FIRST_RING`] offers
//! once the first comes, and doubles whenever the offer it would forget is still within the
//! window, up to `webtorrent.offers_remembered`: a connection that receives many offers can
//! still answer them for the whole window, one that receives few holds little (20 bytes an
//! offer: the mark and its time, and the index).
//!
//! Nothing here allocates per message once a worker's buffers have grown to their working
//! size: offers and answers are copied from the received message into the relay buffer as
//! they came, a connection's state grows only when it joins a torrent, up to its bound.

use std::hash::Hasher as _;

use ferrotracker_proto::webtorrent::{
    self as wt, Action, Announce, Limits, OfferId, Request, Scrape,
};
use ferrotracker_proto::{Event, InfoHash, PeerId};
use ferrotracker_swarm::{AnnouncedWs, Refused};
use siphasher::sip::SipHasher13;

use crate::config::WebTorrentConfig;

mod marks;
use crate::tracker::{derive_key, jittered, NOT_AUTHORIZED};
use crate::{Tracker, Worker};
use marks::Marks;

/// Seconds during which an offer relayed to a connection may be answered. The reference client
/// drops an offer it got no answer to after 50 s.
pub const OFFER_WINDOW: u32 = 120;

/// Offers a connection's ring holds when it is first needed (see the module doc).
pub const FIRST_RING: usize = 16;

/// Failure reasons of the handlers (the parser's are in [`wt::ErrorKind::reason`]).
pub const TOO_MANY_PEERS: &str =
    "too many peers on one connection (webtorrent.max_peers_per_connection)";
pub const NO_SUCH_OFFER: &str = "answer to an offer this connection did not receive";
pub const FULL_SCRAPE_REFUSED: &str =
    "scrape without info_hash: full scrapes are served over HTTP only";

/// What a delivered relay is: an offer (recorded by the receiver, whose answer it makes
/// acceptable) or an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relay {
    /// The connection it goes to ([`WsConn::conn`] of the receiver).
    pub to: u64,
    /// For an offer, its mark, which [`Tracker::ws_relayed`] records; `None` for an answer.
    pub offer: Option<OfferMark>,
}

/// An offer's fingerprint (see the module doc); opaque, carried with the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OfferMark(pub u64);

/// The messages one [`Tracker::handle_ws`] call relays: their bytes in one buffer, each with
/// its [`Relay`]. The server keeps one per worker and reuses it.
#[derive(Debug, Default)]
pub struct Relays {
    bytes: Vec<u8>,
    items: Vec<(Relay, usize, usize)>,
    /// The peers an announce's offers go to (a reused buffer).
    picks: Vec<(u64, PeerId)>,
}

impl Relays {
    /// Buffers sized for one announce's offers.
    pub fn new() -> Self {
        Relays {
            bytes: Vec::with_capacity(16 * 1024),
            items: Vec::with_capacity(16),
            picks: Vec::with_capacity(16),
        }
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.items.clear();
        self.picks.clear();
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Each relay with its message.
    pub fn iter(&self) -> impl Iterator<Item = (Relay, &[u8])> + '_ {
        self.items
            .iter()
            .map(|&(r, start, end)| (r, self.bytes.get(start..end).unwrap_or_default()))
    }

    /// The buffers' capacities (bytes, relays, picks), for tests of allocation.
    pub fn capacities(&self) -> (usize, usize, usize) {
        (
            self.bytes.capacity(),
            self.items.capacity(),
            self.picks.capacity(),
        )
    }

    fn push(&mut self, relay: Relay, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.bytes.len();
        write(&mut self.bytes);
        self.items.push((relay, start, self.bytes.len()));
    }
}

/// One WebSocket connection's state, owned by the server and handed to the handlers.
#[derive(Debug)]
pub struct WsConn {
    conn: u64,
    /// Its peers: the torrents it announced in, with each peer_id it announced there.
    swarms: Vec<(InfoHash, PeerId)>,
    max_peers: usize,
    /// Offers relayed to it that its client may answer.
    marks: Marks,
}

impl WsConn {
    /// The state of a new connection with the server's key `conn` (unique among open
    /// connections; the store and relays address the connection by it).
    pub fn new(conn: u64, cfg: &WebTorrentConfig) -> Self {
        let max_peers = cfg.max_peers_per_connection.max(1);
        WsConn {
            conn,
            swarms: Vec::with_capacity(max_peers.min(4)),
            max_peers,
            marks: Marks::new(cfg.offers_remembered),
        }
    }

    pub fn conn(&self) -> u64 {
        self.conn
    }

    /// Its peers: each torrent it announced in with the peer_id it announced there, in the
    /// order of their bytes.
    pub fn swarms(&self) -> &[(InfoHash, PeerId)] {
        &self.swarms
    }

    /// Heap bytes it holds (for memory accounting and tests of allocation).
    pub fn heap_bytes(&self) -> usize {
        self.swarms.capacity() * std::mem::size_of::<(InfoHash, PeerId)>() + self.marks.heap_bytes()
    }

    /// Offers the ring holds now (for tests of its growth).
    pub fn ring_len(&self) -> usize {
        self.marks.len()
    }

    /// Where the peer is in `swarms` (kept sorted: a connection may hold thousands), or
    /// where it would go.
    fn peer_in(&self, info_hash: &InfoHash, peer_id: &PeerId) -> Result<usize, usize> {
        let want = order_key(info_hash, peer_id);
        self.swarms
            .binary_search_by(|(h, p)| order_key(h, p).cmp(&want))
    }
}

/// The order of the bytes of an info_hash and then a peer_id, as integers (big-endian
/// words compare as the bytes do), so that a search compares registers rather than calling
/// `memcmp` on each probe.
fn order_key(h: &InfoHash, p: &PeerId) -> (u128, u32, u128, u32) {
    fn words(b: &[u8; 20]) -> (u128, u32) {
        let (hi, lo) = b.split_at(16);
        let hi: [u8; 16] = hi.try_into().unwrap_or_default();
        let lo: [u8; 4] = lo.try_into().unwrap_or_default();
        (u128::from_be_bytes(hi), u32::from_be_bytes(lo))
    }
    let (a, b) = words(&h.0);
    let (c, d) = words(&p.0);
    (a, b, c, d)
}

/// The tracker's WebTorrent settings, as the handlers use them.
#[derive(Debug)]
pub(crate) struct Settings {
    pub cfg: WebTorrentConfig,
    limits: Limits,
    mark_key: [u8; 16],
}

impl Settings {
    pub(crate) fn new(cfg: &WebTorrentConfig, secret: &[u8; 16]) -> Self {
        let mark_key = derive_key(secret, b"ferrotracker webtorrent offer mark");
        Settings {
            cfg: cfg.clone(),
            limits: Limits {
                max_message: cfg.max_message,
                max_offers: cfg.max_offers,
                ..Limits::default()
            },
            mark_key,
        }
    }

    /// The mark of offer `offer_id` in torrent `info_hash` from peer `from` on connection
    /// `conn`, relayed to peer `to`.
    fn mark(
        &self,
        info_hash: &InfoHash,
        offer_id: &OfferId,
        from: &PeerId,
        conn: u64,
        to: &PeerId,
    ) -> OfferMark {
        let mut h = SipHasher13::new_with_key(&self.mark_key);
        h.write(&info_hash.0);
        h.write(&offer_id.0);
        h.write(&from.0);
        h.write_u64(conn);
        h.write(&to.0);
        // 0 marks an empty slot.
        OfferMark(h.finish().max(1))
    }
}

impl Tracker {
    /// The WebTorrent settings in force (`webtorrent.*`).
    pub fn webtorrent(&self) -> &WebTorrentConfig {
        &self.ws.cfg
    }

    /// The state of a new WebSocket connection keyed `conn` (see [`WsConn::new`]).
    pub fn ws_conn(&self, conn: u64) -> WsConn {
        WsConn::new(conn, &self.ws.cfg)
    }

    /// Answers one WebSocket text message of connection `c` (UTF-8, as the WebSocket layer
    /// checked it: it is not checked again): `out` (cleared first) gets the
    /// reply to send back on `c`, or stays empty (an answer gets none, as from the reference
    /// server); `relays` (cleared first) gets the messages for other connections. A bad or
    /// refused message gets a failure reason with its action and, when readable, its
    /// info_hash; the connection stays open. Rate limits are the server's.
    pub fn handle_ws(
        &self,
        w: &mut Worker,
        c: &mut WsConn,
        msg: &str,
        now: u32,
        out: &mut Vec<u8>,
        relays: &mut Relays,
    ) {
        self.handle_ws_to(w, c, msg, now, out, relays, |_| true);
    }

    /// [`Tracker::handle_ws`], asking `takes` of each relay's connection before its message is
    /// written: a relay to a connection for which it answers false (one whose client reads
    /// too slowly, whose backlog is full) is dropped and counted in `ws_relays_dropped` as
    /// the server counts those it drops on delivery, without the cost of writing it. An offer
    /// dropped so is counted in `ws_offers_relayed` all the same, as one dropped on delivery is.
    #[allow(clippy::too_many_arguments)]
    pub fn handle_ws_to(
        &self,
        w: &mut Worker,
        c: &mut WsConn,
        msg: &str,
        now: u32,
        out: &mut Vec<u8>,
        relays: &mut Relays,
        takes: impl Fn(u64) -> bool,
    ) {
        out.clear();
        relays.clear();
        match wt::parse_request_text(msg, &self.ws.limits) {
            Ok(Request::Announce(a)) => match a.answer {
                Some(_) => self.ws_answer(w, c, &a, now, out, relays, &takes),
                None => self.ws_announce(w, c, &a, now, out, relays, &takes),
            },
            Ok(Request::Scrape(s)) => self.ws_scrape(w, &s, out),
            Err(e) => {
                match e.action {
                    Some(Action::Scrape) => w.counters.ws_scrapes.inc(),
                    _ => w.counters.ws_announces.inc(),
                }
                let action = e.action.unwrap_or(Action::Announce);
                fail(w, out, action, e.info_hash.as_ref(), e.reason());
            }
        }
    }

    /// Delivers a relay to its connection `c`: records an offer in `c`'s recent offers, so
    /// that `c`'s answer to it is accepted, and returns the message to send. `None` when `c`
    /// is not the relay's connection (the server's key was reused: drop the message).
    pub fn ws_relayed<'a>(
        &self,
        c: &mut WsConn,
        relay: Relay,
        msg: &'a [u8],
        now: u32,
    ) -> Option<&'a [u8]> {
        if relay.to != c.conn {
            return None;
        }
        if let Some(mark) = relay.offer {
            c.marks.record(mark.0, now);
        }
        Some(msg)
    }

    /// Connection `c` closed: its peers leave every torrent it announced in (as if stopped).
    /// Returns how many peers went.
    pub fn ws_closed(&self, c: &WsConn) -> u32 {
        c.swarms
            .iter()
            .map(|(h, _)| self.store.remove_ws_conn(h, c.conn))
            .sum()
    }

    #[allow(clippy::too_many_arguments)]
    fn ws_announce(
        &self,
        w: &mut Worker,
        c: &mut WsConn,
        a: &Announce<'_>,
        now: u32,
        out: &mut Vec<u8>,
        relays: &mut Relays,
        takes: &impl Fn(u64) -> bool,
    ) {
        w.counters.ws_announces.inc();
        let h = &a.info_hash;
        // As over HTTP and UDP, `stopped` is not checked: a peer can always leave.
        if a.event != Event::Stopped && !self.access.allows(h) {
            return fail(w, out, Action::Announce, Some(h), NOT_AUTHORIZED);
        }
        let slot = c.peer_in(h, &a.peer_id);
        if slot.is_err() && a.event != Event::Stopped && c.swarms.len() >= c.max_peers {
            return fail(w, out, Action::Announce, Some(h), TOO_MANY_PEERS);
        }
        let seeder = a.left == Some(0);
        let done = match self
            .store
            .announce_ws(h, &a.peer_id, c.conn, seeder, a.event, now)
        {
            Ok(done) => done,
            Err(refused) => {
                count_refused(w, refused);
                return fail(w, out, Action::Announce, Some(h), refused.reason());
            }
        };
        self.count_announce(w, &done, a.event);
        let counts = done.counts;
        match (slot, a.event) {
            (Ok(i), Event::Stopped) => {
                c.swarms.remove(i);
            }
            (Err(_), Event::Stopped) | (Ok(_), _) => {}
            (Err(i), _) => c.swarms.insert(i, (*h, a.peer_id)),
        }
        let interval = jittered(self.ws.cfg.interval, &mut w.rng);
        wt::write_announce_reply(out, h, counts.into(), interval);
        if a.event == Event::Stopped || a.offers.is_empty() {
            return;
        }
        relays.picks.clear();
        let mut picks = std::mem::take(&mut relays.picks);
        self.store
            .pick_ws(h, a.offers.len(), &a.peer_id, &mut w.rng, &mut picks);
        // Offer i goes to pick i; the offers of dropped relays are passed over unread.
        let mut offers = a.offers.iter();
        let mut skipped = 0;
        for &(to, ref peer) in picks.iter() {
            if !takes(to) {
                w.counters.ws_relays_dropped.inc();
                skipped += 1;
                continue;
            }
            let Some(offer) = offers.nth(std::mem::take(&mut skipped)) else {
                break;
            };
            let mark = self.ws.mark(h, &offer.offer_id, &a.peer_id, c.conn, peer);
            let relay = Relay {
                to,
                offer: Some(mark),
            };
            relays.push(relay, |b| wt::write_offer(b, h, &a.peer_id, &offer));
        }
        w.counters.ws_offers_relayed.add(picks.len() as u64);
        relays.picks = picks;
    }

    #[allow(clippy::too_many_arguments)]
    fn ws_answer(
        &self,
        w: &mut Worker,
        c: &mut WsConn,
        a: &Announce<'_>,
        now: u32,
        out: &mut Vec<u8>,
        relays: &mut Relays,
        takes: &impl Fn(u64) -> bool,
    ) {
        let Some(ans) = &a.answer else { return };
        let h = &a.info_hash;
        if !self.access.allows(h) {
            return fail(w, out, Action::Announce, Some(h), NOT_AUTHORIZED);
        }
        let Some(to) = self.store.find_ws(h, &ans.to_peer_id) else {
            if c.peer_in(h, &a.peer_id).is_err() {
                // Not one of the connection's peers: refused as below, whether the peer it
                // names is there or not (that is not for it to learn).
                w.counters.ws_answers_refused.inc();
                return fail(w, out, Action::Announce, Some(h), NO_SUCH_OFFER);
            }
            // The offerer left; the answerer's client gives up on it by itself.
            w.counters.ws_answers_lost.inc();
            return;
        };
        // The mark names the peer the offer went to: an answer is taken only from that peer
        // (one of this connection's) and only on this connection.
        let mark = self
            .ws
            .mark(h, &ans.offer_id, &ans.to_peer_id, to, &a.peer_id);
        if !c.marks.take(mark.0, now) {
            w.counters.ws_answers_refused.inc();
            return fail(w, out, Action::Announce, Some(h), NO_SUCH_OFFER);
        }
        w.counters.ws_answers_relayed.inc();
        if !takes(to) {
            w.counters.ws_relays_dropped.inc();
            return;
        }
        relays.push(Relay { to, offer: None }, |b| {
            wt::write_answer(b, h, &a.peer_id, &ans.offer_id, ans.answer)
        });
    }

    fn ws_scrape(&self, w: &mut Worker, s: &Scrape<'_>, out: &mut Vec<u8>) {
        w.counters.ws_scrapes.inc();
        let Some(hashes) = &s.info_hashes else {
            // The reference server scrapes every torrent here: a full scrape per message,
            // which any page could ask for in a loop.
            return fail(w, out, Action::Scrape, None, FULL_SCRAPE_REFUSED);
        };
        // Every hash asked for, known or not (the reference server answers zeros).
        let files = hashes
            .iter()
            .map(|h| (h, self.store.scrape(&h).unwrap_or_default().into()));
        wt::write_scrape_reply(out, files);
    }

    fn count_announce(&self, w: &mut Worker, done: &AnnouncedWs, event: Event) {
        if done.completed {
            w.counters.completed.inc();
        }
        w.counters
            .peers_not_stored
            .add(u64::from(!done.stored && event != Event::Stopped));
        if let Some(age) = done.renewed_after {
            w.counters.renew(age);
        }
    }
}

fn count_refused(w: &mut Worker, refused: Refused) {
    match refused {
        Refused::PeerIdTaken => {}
        r if r.is_full() => w.counters.refused_full.inc(),
        _ => w.counters.refused_address.inc(),
    }
}

fn fail(w: &mut Worker, out: &mut Vec<u8>, action: Action, h: Option<&InfoHash>, reason: &str) {
    w.counters.ws_errors.inc();
    wt::write_error(out, action, h, reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_key_orders_as_the_bytes_do() {
        let mut state = 11;
        let mut pairs: Vec<(InfoHash, PeerId)> = (0..300)
            .map(|i| {
                let mut h = [0u8; 20];
                let mut p = [0u8; 20];
                for b in h.iter_mut().chain(p.iter_mut()) {
                    // Few values, so that ties run deep into both ids.
                    *b = (ferrotracker_proto::testutil::xorshift(&mut state) % 3) as u8 * 0x7F;
                }
                if i % 7 == 0 {
                    h = [0xFF; 20];
                }
                (InfoHash(h), PeerId(p))
            })
            .collect();
        pairs.sort_by(|a, b| a.0 .0.cmp(&b.0 .0).then_with(|| a.1 .0.cmp(&b.1 .0)));
        for w in pairs.windows(2) {
            let (x, y) = (&w[0], &w[1]);
            let bytes = x.0 .0.cmp(&y.0 .0).then_with(|| x.1 .0.cmp(&y.1 .0));
            assert_eq!(order_key(&x.0, &x.1).cmp(&order_key(&y.0, &y.1)), bytes);
            assert_eq!(
                order_key(&y.0, &y.1).cmp(&order_key(&x.0, &x.1)),
                bytes.reverse()
            );
        }
    }
}
