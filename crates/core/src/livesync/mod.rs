//! Live sync, without sockets: what a node tells the cluster and what it accepts from it
//! (opentracker's cluster mode, `ot_livesync.c`).
//!
//! Workers decide *what* to sync while they answer announces ([`entry_for`], opentracker's
//! rule carried by `Announced::sync`) and hand the entries over once per event-loop turn through
//! a [`Handoff`] (one small mutex per worker slot, never one lock for all). The server's sync
//! thread owns a [`LiveSync`]: it batches entries into one packet per address family, sends a
//! packet when it is full or older than the flush delay (15 s, as `LIVESYNC_MAXDELAY`), and
//! checks and applies what other nodes send. Time is passed in; the sockets are the caller's.
//!
//! What a node accepts, in the order it is checked: a datagram from a node's address
//! ([`SyncRules::nodes`]), at most [`sync::MAX_PACKET`] bytes (refused before anything reads
//! it); with a key, a right tag and a time within the window; a well-formed packet that is not
//! our own echo; with a key, a tag not seen before from its sender ([`ReplayGuard`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use ferrotracker_proto::sync::{self, Builder, Entry, Family, Key, SyncError, TAG};
use ferrotracker_proto::{Event, InfoHash};
use ferrotracker_swarm::{PeerAddr, Store, SyncedPeer};

use crate::access::Access;
use crate::nets::Nets;

crate::counter_set! {
    /// Live-sync events, counted by the sync thread (and `dropped_queue_full` by the workers).
    pub struct SyncCounters / LiveSyncCounters {
        pub packets_sent: u64,
        pub peers_sent: u64,
        pub packets_received: u64,
        /// Entries in accepted packets (opentracker's `syncs`/`livesync` count).
        pub peers_received: u64,
        /// Datagrams from an address that is not a node (`livesync.cluster.node_ip`, `-A`, peers).
        pub refused_source: u64,
        /// Our own packets come back (same tracker id).
        pub refused_echo: u64,
        /// A key is configured and the MAC is missing or wrong.
        pub refused_mac: u64,
        /// The MAC is right but the packet's time is outside the window.
        pub refused_stale: u64,
        /// Larger than a live-sync packet can be ([`sync::MAX_PACKET`]).
        pub refused_oversize: u64,
        /// A keyed packet whose tag was already accepted within the window (a replay).
        pub refused_replay: u64,
        /// Not a live-sync packet (too short, unknown type, partial entries).
        pub refused_malformed: u64,
        /// Entries dropped because a worker's hand-off slot was full.
        pub dropped_queue_full: u64,
        /// Datagrams the socket refused to send.
        pub send_errors: u64,
    }
}

/// The entry an announce produces when the store says to sync it (`Announced::sync`), with
/// opentracker's flags: seeding for `left=0`, completed for a completion, stopped for a stop.
pub fn entry_for(info_hash: InfoHash, ip: IpAddr, port: u16, seeding: bool, event: Event) -> Entry {
    let mut flags = 0;
    if seeding {
        flags |= sync::FLAG_SEEDING;
        if event == Event::Completed {
            flags |= sync::FLAG_COMPLETED;
        }
    }
    if event == Event::Stopped {
        flags |= sync::FLAG_STOPPED;
    }
    Entry {
        info_hash,
        ip: ip.to_canonical(),
        port,
        flags,
    }
}

/// Worker slots of a [`Handoff`]; workers beyond share slots (index modulo this).
pub const HANDOFF_SLOTS: usize = 64;
/// Entries a slot holds before the sync thread takes them (it does every 50 ms); beyond, new
/// entries are dropped and counted rather than growing memory without bound.
pub const HANDOFF_CAPACITY: usize = 65_536;

/// Entries on their way from the workers to the sync thread: one mutex per worker slot, taken
/// by its worker once per event-loop turn (when it has entries) and by the sync thread.
#[derive(Debug)]
pub struct Handoff {
    slots: Vec<Mutex<Vec<Entry>>>,
    capacity: usize,
}

impl Default for Handoff {
    fn default() -> Self {
        Handoff::new(HANDOFF_CAPACITY)
    }
}

impl Handoff {
    pub fn new(capacity: usize) -> Handoff {
        Handoff {
            slots: (0..HANDOFF_SLOTS).map(|_| Mutex::new(Vec::new())).collect(),
            capacity,
        }
    }

    /// Moves `entries` (emptied) into `worker`'s slot; returns how many did not fit.
    pub fn give(&self, worker: usize, entries: &mut Vec<Entry>) -> usize {
        let Some(slot) = self.slots.get(worker % HANDOFF_SLOTS) else {
            return 0;
        };
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.capacity.saturating_sub(slot.len());
        let dropped = entries.len().saturating_sub(room);
        entries.truncate(room);
        slot.append(entries);
        entries.clear();
        dropped
    }

    /// Appends every slot's entries to `into` (the sync thread's side).
    pub fn take(&self, into: &mut Vec<Entry>) {
        for slot in &self.slots {
            let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
            into.append(&mut slot);
        }
    }
}

/// The sync thread's rules.
#[derive(Clone, Debug)]
pub struct SyncRules {
    /// This node's id (the tracker's): written into every packet, and packets carrying it are
    /// our own echo.
    pub tracker_id: u32,
    /// Addresses packets are accepted from (`livesync.cluster.node_ip`, `-A`, unicast peers).
    pub nodes: Nets,
    /// Shared key of the authenticated extension; `None` = opentracker's plain packets.
    pub key: Option<Key>,
    /// Seconds a partly filled packet may wait (`livesync.flush_delay`, opentracker: 15).
    pub flush_delay: u32,
    /// With a key: seconds a packet's time may differ from ours before it is refused as stale.
    pub window: u32,
}

/// Tags [`ReplayGuard`] remembers: 65,536 keyed packets (3.3 million entries) per window, over
/// 500 packets a second for the whole cluster at the 120 s window before a tag is forgotten
/// early. Its tables are made for this many at the start (about 6.3 MiB: 4.25 MiB of tag set,
/// 2 MiB of queue) and never grow.
pub const REPLAY_TAGS: usize = 65_536;
/// Senders (tracker ids) whose floors [`ReplayGuard`] keeps apart. Only genuine packets make
/// one, so these are the cluster's nodes (and the ids of restarted ones, for a window or two);
/// beyond this many at once, one floor serves the others.
pub const REPLAY_SENDERS: usize = 1024;

/// The tags of the keyed packets accepted within the window, so that a copy sent again (by
/// anyone who saw the packet go by) is refused rather than applied twice: a replayed `stopped`
/// would drop a peer that has come back, a replayed add would bring back one that has left.
///
/// Only genuine packets are remembered (the tag is checked first), so an attacker without the
/// key cannot fill it. It holds at most `capacity` tags, forgotten in the order they came: once
/// they came a window ago, or, when full, the first to come. Forgetting a tag whose copy would
/// not yet be stale (the guard is full, or the sender's clock runs ahead of ours) raises its
/// sender's floor: that sender's packets sent at or before the forgotten one are refused too,
/// so a replay never passes. The floors are per sender, in the sender's own clock, and the tag
/// forgotten is the one that came first, so a floor stays behind what its sender sends now
/// (by a window, or by `capacity` packets of the cluster's): a node whose clock runs ahead
/// raises no floor for the others, and a node whose clock lags is not refused for it. The
/// sender is the tracker id inside the authenticated packet, not the source address (which
/// anyone can forge).
///
/// A restarted node starts with no tags: a packet recorded up to one window before the restart
/// can be applied once more after it.
#[derive(Debug)]
pub struct ReplayGuard {
    /// Made for twice `capacity` tags, so that hashbrown clears its tombstones in place rather
    /// than doubling the table: its size is fixed from the start.
    seen: HashSet<[u8; TAG]>,
    /// The same tags in the order they came, each with its packet's time, when it came and its
    /// sender.
    order: VecDeque<Remembered>,
    /// Per sender: its packets sent at or before this time are refused (a tag of its this old
    /// may have been forgotten). At most `max_senders`, made for twice that as `seen`; a floor
    /// a window behind our time goes (such packets are stale anyway).
    floors: HashMap<u32, u64>,
    /// The floor of the senders that found `floors` full; it applies to every sender.
    overflow: Option<u64>,
    capacity: usize,
    max_senders: usize,
    window: u32,
}

#[derive(Debug)]
struct Remembered {
    sent: u64,
    came: u32,
    sender: u32,
    tag: [u8; TAG],
}

impl ReplayGuard {
    pub fn new(capacity: usize, max_senders: usize, window: u32) -> ReplayGuard {
        let capacity = capacity.max(1);
        let max_senders = max_senders.max(1);
        ReplayGuard {
            seen: HashSet::with_capacity(2 * capacity),
            order: VecDeque::with_capacity(capacity),
            floors: HashMap::with_capacity(2 * max_senders),
            overflow: None,
            capacity,
            max_senders,
            window,
        }
    }

    /// Whether a packet from `sender` with this time and tag (already checked: right tag, time
    /// within the window of `now`) is new; it is remembered if so. `now` never goes back.
    pub fn admit(&mut self, sender: u32, sent: u64, tag: [u8; TAG], now: u32) -> bool {
        while self
            .order
            .front()
            .is_some_and(|r| r.came.saturating_add(self.window) < now)
        {
            self.forget(now);
        }
        let floor = self.floors.get(&sender).copied().max(self.overflow);
        if floor.is_some_and(|f| sent <= f) || self.seen.contains(&tag) {
            return false;
        }
        if self.order.len() >= self.capacity {
            self.forget(now);
        }
        self.seen.insert(tag);
        self.order.push_back(Remembered {
            sent,
            came: now,
            sender,
            tag,
        });
        true
    }

    /// Tags remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Forgets the tag that came first, raising its sender's floor if a copy would still pass
    /// the window.
    fn forget(&mut self, now: u32) {
        let Some(r) = self.order.pop_front() else {
            return;
        };
        self.seen.remove(&r.tag);
        let now = u64::from(now);
        let window = u64::from(self.window);
        // A floor (or a tag) a window behind our time refuses nothing open() would pass.
        let live = |f: u64| f.saturating_add(window) >= now;
        if !live(r.sent) {
            return;
        }
        if let Some(f) = self.floors.get_mut(&r.sender) {
            *f = (*f).max(r.sent);
            return;
        }
        if self.floors.len() >= self.max_senders {
            self.floors.retain(|_, f| live(*f));
        }
        if self.overflow.is_some_and(|f| !live(f)) {
            self.overflow = None;
        }
        if self.floors.len() < self.max_senders {
            self.floors.insert(r.sender, r.sent);
        } else {
            self.overflow = Some(self.overflow.map_or(r.sent, |f| f.max(r.sent)));
        }
    }
}

/// Why a datagram was refused (each has its counter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Source,
    Oversize,
    Mac,
    Stale,
    Replay,
    Malformed(SyncError),
    Echo,
}

/// The sync thread's state: one outgoing packet per family, the rules and the counters.
pub struct LiveSync {
    rules: SyncRules,
    out: [Outgoing; 2],
    replay: ReplayGuard,
    pub counters: SyncCounters,
}

struct Outgoing {
    builder: Builder,
    /// When the first entry went into the packet being built.
    since: u32,
}

impl LiveSync {
    pub fn new(rules: SyncRules) -> LiveSync {
        let auth = rules.key.is_some();
        let id = rules.tracker_id;
        LiveSync {
            out: [Family::V4, Family::V6].map(|f| Outgoing {
                builder: Builder::new(f, id, auth),
                since: 0,
            }),
            // Made only for a keyed cluster: a plain one has no tags to remember.
            replay: ReplayGuard::new(
                if rules.key.is_some() { REPLAY_TAGS } else { 0 },
                REPLAY_SENDERS,
                rules.window,
            ),
            rules,
            counters: SyncCounters::default(),
        }
    }

    /// Adds `e` to its family's packet; a packet that fills up is sent at once. `send` gets
    /// each datagram and returns how many of its destinations failed.
    pub fn queue(&mut self, e: &Entry, now: u32, send: &mut impl FnMut(&[u8]) -> u64) {
        let i = match e.family() {
            Family::V4 => 0,
            Family::V6 => 1,
        };
        let Some(o) = self.out.get_mut(i) else { return };
        if o.builder.is_empty() {
            o.since = now;
        }
        o.builder.push(e);
        if o.builder.is_full() {
            self.send(i, now, send);
        }
    }

    /// Sends each partly filled packet that has waited `flush_delay` seconds.
    pub fn tick(&mut self, now: u32, send: &mut impl FnMut(&[u8]) -> u64) {
        for i in 0..self.out.len() {
            let due = self.out.get(i).is_some_and(|o| {
                !o.builder.is_empty() && now.wrapping_sub(o.since) >= self.rules.flush_delay
            });
            if due {
                self.send(i, now, send);
            }
        }
    }

    /// Sends whatever is waiting (at shutdown).
    pub fn flush(&mut self, now: u32, send: &mut impl FnMut(&[u8]) -> u64) {
        for i in 0..self.out.len() {
            if self.out.get(i).is_some_and(|o| !o.builder.is_empty()) {
                self.send(i, now, send);
            }
        }
    }

    /// Entries waiting in the packets being built.
    pub fn pending(&self) -> usize {
        self.out.iter().map(|o| o.builder.len()).sum()
    }

    fn send(&mut self, i: usize, now: u32, send: &mut impl FnMut(&[u8]) -> u64) {
        let Some(o) = self.out.get_mut(i) else { return };
        let n = o.builder.len() as u64;
        let failed = send(o.builder.finish(self.rules.key.as_ref(), u64::from(now)));
        o.builder.clear();
        self.counters.packets_sent += 1;
        self.counters.peers_sent += n;
        self.counters.send_errors += failed;
    }

    /// Checks a datagram from `from` and applies its entries to `store` (stopped removes,
    /// anything else adds or refreshes, as a synced peer: no reply, never re-sent). `access`
    /// applies as to announces. Returns the number of entries applied.
    pub fn receive(
        &mut self,
        datagram: &[u8],
        from: IpAddr,
        store: &Store,
        access: &Access,
        now: u32,
    ) -> Result<usize, Refusal> {
        let r = self.check(datagram, from, now);
        let packet = match r {
            Ok(p) => p,
            Err(refusal) => {
                let c = &mut self.counters;
                match refusal {
                    Refusal::Source => c.refused_source += 1,
                    Refusal::Oversize => c.refused_oversize += 1,
                    Refusal::Mac => c.refused_mac += 1,
                    Refusal::Stale => c.refused_stale += 1,
                    Refusal::Replay => c.refused_replay += 1,
                    Refusal::Malformed(_) => c.refused_malformed += 1,
                    Refusal::Echo => c.refused_echo += 1,
                }
                return Err(refusal);
            }
        };
        self.counters.packets_received += 1;
        self.counters.peers_received += packet.len() as u64;
        let mut applied = 0;
        for e in packet.entries() {
            if !e.stopped() && !access.allows(&e.info_hash) {
                continue;
            }
            let peer = SyncedPeer {
                info_hash: e.info_hash,
                addr: PeerAddr::from(e.ip),
                port: e.port,
                seeding: e.seeding(),
                completed: e.completed(),
                stopped: e.stopped(),
            };
            store.apply_sync(&peer, now);
            applied += 1;
        }
        Ok(applied)
    }

    fn check<'a>(
        &mut self,
        datagram: &'a [u8],
        from: IpAddr,
        now: u32,
    ) -> Result<sync::Packet<'a>, Refusal> {
        if !self.rules.nodes.contains(from.to_canonical()) {
            return Err(Refusal::Source);
        }
        if datagram.len() > sync::MAX_PACKET {
            return Err(Refusal::Oversize);
        }
        // The tag is remembered last: only packets that would be applied take room.
        let opened = match &self.rules.key {
            None => None,
            Some(key) => {
                let window = u64::from(self.rules.window);
                let o = sync::open(datagram, key, u64::from(now), window).map_err(|e| match e {
                    SyncError::Stale => Refusal::Stale,
                    _ => Refusal::Mac,
                })?;
                Some(o)
            }
        };
        let body = opened.map_or(datagram, |o| o.body);
        let packet = sync::parse(body).map_err(Refusal::Malformed)?;
        if packet.tracker_id == self.rules.tracker_id.to_le_bytes() {
            return Err(Refusal::Echo);
        }
        if let Some(o) = opened {
            let sender = u32::from_le_bytes(packet.tracker_id);
            if !self.replay.admit(sender, o.sent, o.tag, now) {
                return Err(Refusal::Replay);
            }
        }
        Ok(packet)
    }
}

#[cfg(test)]
mod tests;
