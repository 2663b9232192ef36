//! Live sync, without sockets: what a node tells the cluster and what it accepts from it
//! (opentracker's cluster mode, spec §9).
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
//! it); with a key, a right tag, a time within the window and a tag not seen before
//! ([`ReplayGuard`]); a well-formed packet that is not our own echo.

use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

use ferrotracker_proto::sync::{self, Builder, Entry, Family, Key, SyncError, TAG};
use ferrotracker_proto::{Event, InfoHash};
use ferrotracker_swarm::SyncedPeer;

use crate::nets::Nets;
use crate::tracker::{peer_addr, Tracker};

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
/// 500 packets a second for the whole cluster at the 120 s window, in about 4 MiB at most.
pub const REPLAY_TAGS: usize = 65_536;

/// The tags of the keyed packets accepted within the window, so that a copy sent again (by
/// anyone who saw the packet go by) is refused rather than applied twice: a replayed `stopped`
/// would drop a peer that has come back, a replayed add would bring back one that has left.
///
/// Only genuine packets are remembered (the tag is checked first), so an attacker without the
/// key cannot fill it. It holds at most `capacity` tags; a tag is forgotten once its packet's
/// time is out of the window (such a copy is refused as stale anyway) or, when full, oldest
/// first. Forgetting a tag that is still within the window raises a floor: packets sent at or
/// before that tag's time are refused too, so when the cluster sends more than `capacity`
/// packets per window the window shrinks for late packets instead of letting a replay through.
///
/// A restarted node starts with no tags: a packet recorded up to one window before the restart
/// can be applied once more after it.
#[derive(Debug)]
pub struct ReplayGuard {
    seen: HashSet<[u8; TAG]>,
    /// Tags with their packet's time, in the order accepted.
    order: VecDeque<(u64, [u8; TAG])>,
    capacity: usize,
    window: u64,
    /// Packets sent at or before this time are refused: a tag this old may have been forgotten.
    floor: Option<u64>,
}

impl ReplayGuard {
    pub fn new(capacity: usize, window: u32) -> ReplayGuard {
        ReplayGuard {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            window: u64::from(window),
            floor: None,
        }
    }

    /// Whether a packet with this time and tag (already checked: right tag, time within the
    /// window of `now`) is new; it is remembered if so. `now` never goes back.
    pub fn admit(&mut self, sent: u64, tag: [u8; TAG], now: u64) -> bool {
        while let Some(&(t, old)) = self.order.front() {
            if t.saturating_add(self.window) >= now {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&old);
        }
        if self.floor.is_some_and(|f| sent <= f) || self.seen.contains(&tag) {
            return false;
        }
        if self.order.len() >= self.capacity {
            if let Some((t, old)) = self.order.pop_front() {
                self.seen.remove(&old);
                self.floor = Some(self.floor.map_or(t, |f| f.max(t)));
            }
        }
        self.seen.insert(tag);
        self.order.push_back((sent, tag));
        true
    }

    /// Tags remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
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
            replay: ReplayGuard::new(REPLAY_TAGS, rules.window),
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

    /// Checks a datagram from `from` and applies its entries to the tracker's store (stopped
    /// removes, anything else adds or refreshes, as a synced peer: no reply, never re-sent).
    /// The access list applies as to announces. Returns the number of entries applied.
    pub fn receive(
        &mut self,
        datagram: &[u8],
        from: IpAddr,
        tracker: &Tracker,
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
        let access = &tracker.settings.access;
        let mut applied = 0;
        for e in packet.entries() {
            if !e.stopped() && !access.allows(&e.info_hash) {
                continue;
            }
            let peer = SyncedPeer {
                info_hash: e.info_hash,
                addr: peer_addr(e.ip),
                port: e.port,
                seeding: e.seeding(),
                completed: e.completed(),
                stopped: e.stopped(),
            };
            tracker.store.apply_sync(&peer, now);
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
        let body = match &self.rules.key {
            None => datagram,
            Some(key) => {
                let now = u64::from(now);
                let o =
                    sync::open(datagram, key, now, u64::from(self.rules.window)).map_err(|e| {
                        match e {
                            SyncError::Stale => Refusal::Stale,
                            _ => Refusal::Mac,
                        }
                    })?;
                if !self.replay.admit(o.sent, o.tag, now) {
                    return Err(Refusal::Replay);
                }
                o.body
            }
        };
        let packet = sync::parse(body).map_err(Refusal::Malformed)?;
        if packet.tracker_id == self.rules.tracker_id.to_le_bytes() {
            return Err(Refusal::Echo);
        }
        Ok(packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nets::Net;
    use crate::tracker::Settings;
    use ferrotracker_swarm::{Announce, PeerAddr, Rng, Want};
    use std::net::Ipv4Addr;

    const NOW: u32 = 1_700_000_000;

    fn rules(id: u32, key: Option<&[u8]>) -> SyncRules {
        let mut nodes = Nets::default();
        nodes.push(Net::parse("10.0.0.0/24").unwrap());
        SyncRules {
            tracker_id: id,
            nodes,
            key: key.map(Key::new),
            flush_delay: 15,
            window: 120,
        }
    }

    fn entry(n: u8, flags: u8) -> Entry {
        Entry {
            info_hash: InfoHash([n; 20]),
            ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, n)),
            port: 6881,
            flags,
        }
    }

    fn node() -> IpAddr {
        "10.0.0.2".parse().unwrap()
    }

    fn peers(t: &Tracker, h: InfoHash) -> usize {
        t.store
            .scrape(&h)
            .map_or(0, |c| (c.seeders + c.leechers) as usize)
    }

    #[test]
    fn flush_rules_full_packet_or_delay() {
        let mut a = LiveSync::new(rules(1, None));
        let sent = std::cell::RefCell::new(Vec::<Vec<u8>>::new());
        let mut send = |d: &[u8]| {
            sent.borrow_mut().push(d.to_vec());
            0
        };
        for n in 0..51 {
            a.queue(&entry(n, 0), NOW, &mut send);
        }
        a.tick(NOW + 14, &mut send);
        assert!(
            sent.borrow().is_empty(),
            "51 entries younger than 15 s wait"
        );
        a.queue(&entry(51, 0), NOW + 14, &mut send);
        assert_eq!(sent.borrow().len(), 1, "the 52nd entry fills the packet");
        assert_eq!(sent.borrow()[0].len(), 8 + 52 * 28);
        a.queue(&entry(60, 0), NOW + 20, &mut send);
        a.tick(NOW + 34, &mut send);
        assert_eq!(sent.borrow().len(), 1);
        a.tick(NOW + 35, &mut send);
        assert_eq!(sent.borrow().len(), 2, "flushed 15 s after its first entry");
        assert_eq!(a.pending(), 0);
        assert_eq!(a.counters.packets_sent, 2);
        assert_eq!(a.counters.peers_sent, 53);
    }

    #[test]
    fn receive_applies_and_refuses() {
        let t = Tracker::new(Settings::default(), [1; 16]);
        let mut b = LiveSync::new(rules(2, None));
        let mut a = LiveSync::new(rules(1, None));
        let mut out = Vec::new();
        a.queue(&entry(1, sync::FLAG_SEEDING), NOW, &mut |_| 0);
        a.flush(NOW, &mut |d| {
            out = d.to_vec();
            0
        });
        assert_eq!(b.receive(&out, node(), &t, NOW), Ok(1));
        assert_eq!(peers(&t, InfoHash([1; 20])), 1);
        assert_eq!(b.counters.peers_received, 1);
        // Not a node; our own echo; garbage.
        assert_eq!(
            b.receive(&out, "10.0.1.1".parse().unwrap(), &t, NOW),
            Err(Refusal::Source)
        );
        let mut own = LiveSync::new(rules(2, None));
        own.queue(&entry(2, 0), NOW, &mut |_| 0);
        let mut echo = Vec::new();
        own.flush(NOW, &mut |d| {
            echo = d.to_vec();
            0
        });
        assert_eq!(b.receive(&echo, node(), &t, NOW), Err(Refusal::Echo));
        assert!(matches!(
            b.receive(&[0; 9], node(), &t, NOW),
            Err(Refusal::Malformed(_))
        ));
        // Stopped removes it.
        a.queue(&entry(1, sync::FLAG_STOPPED), NOW, &mut |_| 0);
        a.flush(NOW, &mut |d| {
            out = d.to_vec();
            0
        });
        assert_eq!(b.receive(&out, node(), &t, NOW), Ok(1));
        assert_eq!(peers(&t, InfoHash([1; 20])), 0);
        let c = b.counters;
        assert_eq!(
            (c.refused_source, c.refused_echo, c.refused_malformed),
            (1, 1, 1)
        );
        assert_eq!((c.packets_received, c.peers_received), (2, 2));
    }

    #[test]
    fn keyed_nodes_refuse_plain_and_wrong_key() {
        let t = Tracker::new(Settings::default(), [1; 16]);
        let mut b = LiveSync::new(rules(2, Some(b"sixteen byte key")));
        for (key, want) in [
            (None, Err(Refusal::Mac)),
            (Some(&b"another key 1234"[..]), Err(Refusal::Mac)),
            (Some(&b"sixteen byte key"[..]), Ok(1)),
        ] {
            let mut a = LiveSync::new(rules(1, key));
            let mut out = Vec::new();
            a.queue(&entry(3, 0), NOW, &mut |_| 0);
            a.flush(NOW, &mut |d| {
                out = d.to_vec();
                0
            });
            assert_eq!(b.receive(&out, node(), &t, NOW), want);
            if key.is_some() {
                assert!(out.len() <= sync::MAX_PACKET);
            }
        }
        // A replay from long ago.
        let mut a = LiveSync::new(rules(1, Some(b"sixteen byte key")));
        let mut out = Vec::new();
        a.queue(&entry(4, 0), NOW - 600, &mut |_| 0);
        a.flush(NOW - 600, &mut |d| {
            out = d.to_vec();
            0
        });
        assert_eq!(b.receive(&out, node(), &t, NOW), Err(Refusal::Stale));
        assert_eq!((b.counters.refused_mac, b.counters.refused_stale), (2, 1));
    }

    #[test]
    fn oversize_refused_before_reading() {
        let t = Tracker::new(Settings::default(), [1; 16]);
        let mut b = LiveSync::new(rules(2, None));
        // 54 whole IPv4 entries: parse() alone would take it.
        let mut d = vec![9, 9, 9, 9, 0, 0, 0, 0];
        for n in 0..54 {
            sync::encode_entry(&mut d, &entry(n, 0));
        }
        assert!(d.len() > sync::MAX_PACKET && sync::parse(&d).is_ok());
        assert_eq!(b.receive(&d, node(), &t, NOW), Err(Refusal::Oversize));
        assert_eq!(peers(&t, InfoHash([0; 20])), 0);
        // Exactly MAX_PACKET passes the size check (and then fails as partial entries).
        d.truncate(sync::MAX_PACKET);
        assert!(matches!(
            b.receive(&d, node(), &t, NOW),
            Err(Refusal::Malformed(_))
        ));
        // A stranger's is refused for its source first.
        d.resize(4000, 0);
        assert_eq!(
            b.receive(&d, "10.0.1.1".parse().unwrap(), &t, NOW),
            Err(Refusal::Source)
        );
        let c = b.counters;
        assert_eq!(
            (c.refused_oversize, c.refused_malformed, c.refused_source),
            (1, 1, 1)
        );
    }

    /// One keyed packet from node 1 with entry `n` (flags `flags`), sent at `at`.
    fn keyed(n: u8, flags: u8, at: u32) -> Vec<u8> {
        let mut a = LiveSync::new(rules(1, Some(b"sixteen byte key")));
        let mut out = Vec::new();
        a.queue(&entry(n, flags), at, &mut |_| 0);
        a.flush(at, &mut |d| {
            out = d.to_vec();
            0
        });
        out
    }

    #[test]
    fn replayed_keyed_packet_refused_within_the_window() {
        let t = Tracker::new(Settings::default(), [1; 16]);
        let mut b = LiveSync::new(rules(2, Some(b"sixteen byte key")));
        let add = keyed(5, 0, NOW);
        let stop = keyed(5, sync::FLAG_STOPPED, NOW + 1);
        assert_eq!(b.receive(&add, node(), &t, NOW), Ok(1));
        assert_eq!(b.receive(&stop, node(), &t, NOW + 2), Ok(1));
        assert_eq!(peers(&t, InfoHash([5; 20])), 0);
        // The add again, at any time its timestamp still passes: refused, the peer stays gone.
        for at in [NOW + 2, NOW + 60, NOW + 120] {
            assert_eq!(b.receive(&add, node(), &t, at), Err(Refusal::Replay));
        }
        assert_eq!(peers(&t, InfoHash([5; 20])), 0);
        // Past the window it is stale (and the tag may go).
        assert_eq!(b.receive(&add, node(), &t, NOW + 121), Err(Refusal::Stale));
        assert_eq!(
            (b.counters.refused_replay, b.counters.refused_stale),
            (3, 1)
        );
        // A plain cluster has no tags to compare: the same bytes apply again (opentracker's).
        let mut plain = LiveSync::new(rules(2, None));
        let mut a = LiveSync::new(rules(1, None));
        let mut out = Vec::new();
        a.queue(&entry(6, 0), NOW, &mut |_| 0);
        a.flush(NOW, &mut |d| {
            out = d.to_vec();
            0
        });
        assert_eq!(plain.receive(&out, node(), &t, NOW), Ok(1));
        assert_eq!(plain.receive(&out, node(), &t, NOW), Ok(1));
    }

    #[test]
    fn replay_guard_forgets_by_time_and_when_full_raises_a_floor() {
        let tag = |n: u8| [n; TAG];
        let mut g = ReplayGuard::new(3, 120);
        assert!(g.admit(1000, tag(1), 1000));
        assert!(!g.admit(1000, tag(1), 1100));
        assert!(g.admit(1001, tag(2), 1100));
        // Past its window the first tag is forgotten (open() refuses such a copy as stale).
        assert!(g.admit(1100, tag(3), 1121));
        assert_eq!(g.len(), 2);
        // Full: the oldest tag still in the window goes, and nothing sent at or before its
        // time passes any more, a new tag included.
        assert!(g.admit(1101, tag(4), 1121));
        assert!(g.admit(1102, tag(5), 1121));
        assert_eq!(g.len(), 3);
        assert!(
            !g.admit(1001, tag(2), 1121),
            "forgotten, but below the floor"
        );
        assert!(!g.admit(1001, tag(6), 1121), "new, but below the floor");
        assert!(g.admit(1103, tag(7), 1121));
        assert!(!g.admit(1101, tag(4), 1121));
        // Genuine traffic at 16 packets a second, 30 times what 64 tags cover in 120 s: memory
        // stays bounded, every copy is refused, and packets on time still pass (the floor is 4 s
        // behind).
        let mut g = ReplayGuard::new(64, 120);
        for i in 0..10_000u32 {
            let now = 5000 + u64::from(i / 16);
            let mut t = [0u8; TAG];
            t[..4].copy_from_slice(&i.to_be_bytes());
            assert!(g.admit(now, t, now), "packet {i}");
            assert!(!g.admit(now, t, now), "copy of {i}");
            assert!(g.len() <= 64);
        }
    }

    #[test]
    fn announces_sync_by_opentracker_rules() {
        let t = Tracker::new(Settings::default(), [1; 16]);
        let h = InfoHash([9; 20]);
        let mut rng = Rng::new(1);
        let (mut o4, mut o6) = (Vec::new(), Vec::new());
        let mut announce = |ip: [u8; 4], event: Event, now: u32| {
            let a = Announce {
                info_hash: h,
                addr: PeerAddr::V4(ip),
                port: 1,
                seeding: true,
                event,
            };
            t.store
                .announce(&a, Want::Both(0), now, &mut rng, &mut o4, &mut o6)
                .unwrap()
                .sync
        };
        assert!(announce([1, 1, 1, 1], Event::Started, NOW), "new peer");
        assert!(
            !announce([1, 1, 1, 1], Event::None, NOW + 60),
            "re-announce"
        );
        assert!(announce([1, 1, 1, 1], Event::Stopped, NOW + 60), "stopped");
        let e = entry_for(
            h,
            "::ffff:1.2.3.4".parse().unwrap(),
            1,
            true,
            Event::Completed,
        );
        assert_eq!(e.ip, IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(e.flags, sync::FLAG_SEEDING | sync::FLAG_COMPLETED);
        assert_eq!(
            entry_for(h, e.ip, 1, false, Event::Stopped).flags,
            sync::FLAG_STOPPED
        );
    }

    #[test]
    fn handoff_bounds_and_drains() {
        let h = Handoff::new(3);
        let mut v = vec![entry(1, 0), entry(2, 0)];
        assert_eq!(h.give(0, &mut v), 0);
        assert!(v.is_empty());
        let mut v = vec![entry(3, 0), entry(4, 0)];
        assert_eq!(
            h.give(HANDOFF_SLOTS, &mut v),
            1,
            "slot 0 again: one did not fit"
        );
        assert!(v.is_empty());
        let mut v = vec![entry(5, 0)];
        assert_eq!(h.give(1, &mut v), 0);
        let mut all = Vec::new();
        h.take(&mut all);
        assert_eq!(all.len(), 4);
        h.take(&mut all);
        assert_eq!(all.len(), 4);
    }
}
