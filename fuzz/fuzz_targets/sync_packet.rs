//! Live-sync (cluster) datagrams: `sync::parse`, `sync::open` (the authenticated extension)
//! and `sync::Builder`, then `livesync::LiveSync::receive` applying them to a tracker's store
//! (kept across runs) and `LiveSync::queue`/`tick`/`flush` sending them.
//!
//! Beyond "no panic": a parsed packet re-encodes to its bytes (but the age byte, always sent
//! as 0); its entries rebuilt with `Builder` never pass `MAX_PACKET`, and sealed with a key
//! they open (within the time window, `Stale` outside it) and parse back to the same entries;
//! the raw input never opens under the key (it would need a forged tag). A node accepts a
//! datagram from a cluster address exactly when it fits `MAX_PACKET`, `parse` takes it and it
//! is not its own echo, never from elsewhere; a keyed node refuses a sealed packet it has
//! taken before as a replay, and then knows the torrent of every entry the access list allows; what a
//! node sends parses, fits `MAX_PACKET`, carries every queued entry, and is refused as an echo
//! when it comes back.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, OnceLock};

use ferrotracker_core::access::{Access, HashList, Mode};
use ferrotracker_core::livesync::{LiveSync, Refusal, SyncRules};
use ferrotracker_core::nets::{Net, Nets};
use ferrotracker_core::config::Config;
use ferrotracker_core::Tracker;
use ferrotracker_proto::sync::{self, Builder, Entry, Key, SyncError, HEADER, MAX_PACKET};
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_700_000_000;
const WINDOW: u64 = 30;
const SECRET: &[u8] = b"ferrotracker fuzzing key";
/// This node's tracker id; a packet carrying it is our own echo.
const OUR_ID: u32 = 0x0102_0304;
/// Torrents beyond which the node's tracker is made anew (checked every 128 runs).
const MAX_TORRENTS: u64 = 4096;

/// One cluster node: a tracker, and its live-sync state without and with a key.
struct Node {
    tracker: Tracker,
    plain: LiveSync,
    keyed: LiveSync,
    runs: u64,
}

impl Node {
    fn new() -> Node {
        let blocked = HashList::parse(b"ffeeddccbbaa99887766554433221100ffeeddcc\n").list;
        let access = Arc::new(Access::new(Mode::Black, blocked));
        let rules = |key: Option<Key>| SyncRules {
            tracker_id: OUR_ID,
            nodes: Nets(vec![Net::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)), 8)]),
            key,
            flush_delay: 15,
            window: WINDOW as u32,
        };
        Node {
            tracker: Tracker::new(&Config::default(), access, NOW as u32, *b"ferrotracker fuz"),
            plain: LiveSync::new(rules(None)),
            keyed: LiveSync::new(rules(Some(Key::new(SECRET)))),
            runs: 0,
        }
    }
}

static NODE: OnceLock<Mutex<Node>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let key = Key::new(SECRET);
    assert!(matches!(
        sync::open(data, &key, NOW, WINDOW),
        Err(SyncError::BadMac)
    ));

    let mut guard = NODE
        .get_or_init(|| Mutex::new(Node::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let node = &mut *guard;
    node.runs += 1;
    if node.runs % 128 == 0 && node.tracker.store.totals().torrents >= MAX_TORRENTS {
        *node = Node::new();
    }
    receive(node, data);

    let Ok(p) = sync::parse(data) else {
        return;
    };
    let entries: Vec<Entry> = p.entries().collect();
    assert_eq!(entries.len(), p.len());
    assert!(!p.is_empty());
    let mut again = data[..HEADER].to_vec();
    for e in &entries {
        sync::encode_entry(&mut again, e);
    }
    let size = p.family.entry_size();
    let mut want = data.to_vec();
    for age in want[HEADER..].chunks_exact_mut(size) {
        age[size - 1] = 0;
    }
    assert_eq!(again, want);

    // Rebuild and seal: the clock skew comes from the tracker id bytes.
    let skew = i64::from(i8::from_be_bytes([p.tracker_id[0]]));
    let sent = NOW.saturating_add_signed(skew);
    let id = u32::from_le_bytes(p.tracker_id);
    let mut b = Builder::new(p.family, id, true);
    let mut pushed = Vec::new();
    for e in &entries {
        if !b.push(e) {
            assert!(b.is_full());
            break;
        }
        pushed.push(*e);
    }
    assert_eq!(b.len(), pushed.len());
    let sealed = b.finish(Some(&key), sent).to_vec();
    assert!(sealed.len() <= MAX_PACKET);
    let from = IpAddr::V4(Ipv4Addr::new(10, 9, 8, 7));
    match node.keyed.receive(
        &sealed,
        from,
        &node.tracker.store,
        &node.tracker.access,
        NOW as u32,
    ) {
        Ok(n) => {
            assert!(n <= pushed.len() && skew.unsigned_abs() <= WINDOW);
            // The same bytes again: a replay (the node outlives this run).
            assert_eq!(
                node.keyed.receive(
                    &sealed,
                    from,
                    &node.tracker.store,
                    &node.tracker.access,
                    NOW as u32
                ),
                Err(Refusal::Replay)
            );
        }
        // Taken in an earlier run with the same entries.
        Err(Refusal::Replay) => assert!(skew.unsigned_abs() <= WINDOW),
        Err(Refusal::Stale) => assert!(skew.unsigned_abs() > WINDOW),
        Err(Refusal::Echo) => assert_eq!(id, OUR_ID),
        Err(r) => panic!("sealed packet refused: {r:?}"),
    }
    // The raw input carries no valid tag; a datagram over the limit is refused unread.
    let want = if data.len() > MAX_PACKET {
        Refusal::Oversize
    } else {
        Refusal::Mac
    };
    assert_eq!(
        node.keyed.receive(
            data,
            from,
            &node.tracker.store,
            &node.tracker.access,
            NOW as u32
        ),
        Err(want)
    );
    match sync::open(&sealed, &key, NOW, WINDOW) {
        Ok(o) => {
            assert!(skew.unsigned_abs() <= WINDOW);
            assert_eq!(o.sent, sent);
            let q = sync::parse(o.body).expect("a sealed packet's body parses");
            assert_eq!(q.tracker_id, p.tracker_id);
            assert_eq!(q.entries().collect::<Vec<_>>(), pushed);
        }
        Err(e) => {
            assert_eq!(e, SyncError::Stale);
            assert!(skew.unsigned_abs() > WINDOW);
        }
    }
    // Any flipped bit breaks the tag.
    let mut forged = sealed.clone();
    let i = usize::from(data[0]) % forged.len();
    forged[i] ^= 1;
    assert!(sync::open(&forged, &Key::new(b"ferrotracker fuzzing key"), NOW, WINDOW).is_err());
    let _ = Builder::new(p.family, id, false).capacity();

    // What this node sends: every entry queued, then flushed; each datagram parses, fits, and
    // is refused as our own echo when it comes back.
    let mut out = Vec::new();
    let mut send = |d: &[u8]| {
        out.push(d.to_vec());
        0
    };
    for e in &entries {
        node.plain.queue(e, NOW as u32, &mut send);
    }
    node.plain.tick(NOW as u32, &mut send);
    node.plain.flush(NOW as u32, &mut send);
    assert_eq!(node.plain.pending(), 0);
    let mut count = 0;
    for d in &out {
        assert!(d.len() <= MAX_PACKET);
        count += sync::parse(d).expect("our own packet parses").len();
        assert_eq!(
            node.plain.receive(
                d,
                from,
                &node.tracker.store,
                &node.tracker.access,
                NOW as u32
            ),
            Err(Refusal::Echo)
        );
    }
    assert_eq!(count, entries.len());
});

/// The input as a datagram from an outsider and from a cluster node (v4-mapped, as a
/// dual-stack socket reports it).
fn receive(node: &mut Node, data: &[u8]) {
    let now = NOW as u32;
    let outsider = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(
        node.plain.receive(
            data,
            outsider,
            &node.tracker.store,
            &node.tracker.access,
            now
        ),
        Err(Refusal::Source)
    );
    let from = IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped());
    let got = node.plain.receive(
        data,
        from,
        &node.tracker.store,
        &node.tracker.access,
        now,
    );
    if data.len() > MAX_PACKET {
        assert_eq!(got, Err(Refusal::Oversize));
        return;
    }
    let p = match sync::parse(data) {
        Err(e) => {
            assert_eq!(got, Err(Refusal::Malformed(e)));
            return;
        }
        Ok(p) if p.tracker_id == OUR_ID.to_le_bytes() => {
            assert_eq!(got, Err(Refusal::Echo));
            return;
        }
        Ok(p) => p,
    };
    let applied = got.expect("a well-formed packet from a node is accepted");
    assert!(applied <= p.len());
    let access = &node.tracker.access;
    for e in p.entries() {
        if !e.stopped() && access.allows(&e.info_hash) {
            assert!(
                node.tracker.store.scrape(&e.info_hash).is_some(),
                "synced torrent {:?} not in the store",
                e.info_hash
            );
        }
    }
}
