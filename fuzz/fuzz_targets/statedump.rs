//! Statedump files: one torrent line (`statedump::parse_line`), a whole torrent dump
//! (`load_torrents`) and a peer file (`load_peers`), loaded into an in-memory store.
//!
//! The input is a torrent dump, optionally followed by a peer file starting at the first
//! `FTPEERS1`. Beyond "no panic": a parsed line writes back to itself, the load report adds
//! up, only lines that `parse_line` accepts are loaded, and whatever was loaded survives a dump
//! and reload unchanged (torrents, peers, seeders, downloads).
//!
//! Making a `Store` (4096 shards) costs more than the rest of a run, so two stores are kept
//! across runs and emptied after each: their torrents time out after one second, so a sweep at
//! `u32::MAX` drops every one, except a torrent whose last activity saturated to `u32::MAX`;
//! for those inputs the stores are made anew.
#![no_main]

use std::sync::{Mutex, OnceLock};

use ferrotracker_core::statedump::{self, PEERS_MAGIC};
use ferrotracker_swarm::{Store, StoreConfig, SHARDS};
use libfuzzer_sys::fuzz_target;

/// The tracker clock when peers are restored (Unix seconds).
const NOW: u32 = 1_700_000_000;

struct Stores {
    loaded: Store,
    reloaded: Store,
}

static STORES: OnceLock<Mutex<Stores>> = OnceLock::new();

fn store() -> Store {
    Store::new(StoreConfig {
        peer_timeout: 1,
        torrent_timeout: 1,
        ..StoreConfig::default()
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = statedump::parse_line(data) {
        let mut line = Vec::new();
        statedump::write_line(&mut line, &t.info_hash, t.base_minutes, t.downloaded);
        assert_eq!(statedump::parse_line(&line), Ok(t));
    }

    let split = data
        .windows(PEERS_MAGIC.len())
        .position(|w| w == PEERS_MAGIC)
        .unwrap_or(data.len());
    let (text, peers) = data.split_at(split);

    // The lines the loader should accept, and the shards they land in.
    let mut valid = 0u64;
    let mut shards = Vec::new();
    let mut saturated = false;
    for line in text.split_inclusive(|&b| b == b'\n') {
        if let Ok(t) = statedump::parse_line(line) {
            valid += 1;
            let top = u32::from_be_bytes(t.info_hash.0[..4].try_into().unwrap());
            shards.push((top >> (32 - SHARDS.trailing_zeros())) as usize);
            saturated |= t.base_minutes.saturating_mul(60) >= u64::from(u32::MAX);
        }
    }

    let mut guard = STORES
        .get_or_init(|| {
            Mutex::new(Stores {
                loaded: store(),
                reloaded: store(),
            })
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let stores = &mut *guard;
    check(text, peers, valid, &stores.loaded, &stores.reloaded);

    if saturated {
        *stores = Stores {
            loaded: store(),
            reloaded: store(),
        };
    } else {
        for &s in &shards {
            for store in [&stores.loaded, &stores.reloaded] {
                store.sweep_shard(s, u32::MAX);
                store.for_each_in_shard(s, |h, _| panic!("{h:?} left behind in shard {s}"));
            }
        }
    }
});

fn check(text: &[u8], peers: &[u8], valid: u64, store: &Store, again: &Store) {
    // Refuse some hashes, as an access list would.
    let report = statedump::load_torrents(text, store, |h| h.0[19] != 0xff)
        .expect("reading from memory cannot fail");
    let lines = text.split(|&b| b == b'\n').count() as u64;
    assert!(
        report.loaded
            + report.refused_by_access_list
            + report.already_known
            + report.bad_line_count
            <= lines
    );
    assert_eq!(
        report.loaded + report.refused_by_access_list + report.already_known,
        valid
    );
    assert_eq!(report.bad_lines.len() as u64, report.bad_line_count.min(5));
    if report.loaded == 0 {
        // No torrent to restore peers into; nothing to dump.
        assert!(matches!(
            statedump::load_peers(peers, store, NOW),
            Ok(0) | Err(_)
        ));
        return;
    }
    if let Ok(n) = statedump::load_peers(peers, store, NOW) {
        let t = store.totals();
        assert!(t.peers4 + t.peers6 <= n);
    }

    // Dump, reload into an empty store, dump again: nothing changes.
    let before = store.totals();
    assert_eq!(before.torrents, report.loaded);
    let (torrents, peer_file) = dump(store);
    let r = statedump::load_torrents(&torrents[..], again, |_| true).unwrap();
    assert_eq!((r.loaded, r.bad_line_count), (before.torrents, 0));
    let restored = statedump::load_peers(&peer_file[..], again, NOW).expect("own peer file");
    assert_eq!(restored, before.peers4 + before.peers6);
    assert_eq!(again.totals(), before);
    let (torrents2, _) = dump(again);
    assert_eq!(sorted_lines(&torrents), sorted_lines(&torrents2));
}

fn dump(store: &Store) -> (Vec<u8>, Vec<u8>) {
    let (mut torrents, mut peers) = (Vec::new(), Vec::new());
    statedump::write_torrents(store, &mut torrents).unwrap();
    statedump::write_peers(store, &mut peers).unwrap();
    (torrents, peers)
}

fn sorted_lines(dump: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = dump.split(|&b| b == b'\n').collect();
    v.sort_unstable();
    v
}
