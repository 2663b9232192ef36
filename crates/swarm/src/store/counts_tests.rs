//! The shard counts that [`Store::totals`] sums stay equal to a walk over every torrent, through
//! every kind of change: announces of both families and of WebTorrent, completions, stops,
//! closed connections, synced and restored peers, expiry and dead torrents.

use super::*;
use crate::Rng;
use ferrotracker_proto::{Event, PeerId};

fn hash(n: u64) -> InfoHash {
    let mut h = [0u8; 20];
    h[..8].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
    InfoHash(h)
}

fn event(rng: &mut Rng) -> Event {
    match rng.below(6) {
        0 => Event::Started,
        1 => Event::Completed,
        2 => Event::Stopped,
        _ => Event::None,
    }
}

#[test]
fn shard_counts_equal_a_walk_through_every_change() {
    let s = Store::new(StoreConfig {
        peer_timeout: 600,
        torrent_timeout: 3000,
        max_peers_per_torrent: 6,
        max_memory: MemoryLimit::Unlimited,
        ..StoreConfig::default()
    });
    let mut rng = Rng::new(7);
    let (mut o4, mut o6, mut now) = (Vec::new(), Vec::new(), 0u32);
    let mut restored = 1_000u64;
    for step in 0..20_000u32 {
        let h = hash(rng.below(40));
        let seeding = rng.below(3) == 0;
        match rng.below(20) {
            0..=7 => {
                let a = Announce {
                    info_hash: h,
                    addr: if rng.below(2) == 0 {
                        PeerAddr::V4([10, 0, 0, rng.below(8) as u8])
                    } else {
                        PeerAddr::V6([rng.below(8) as u8; 16])
                    },
                    port: 1 + rng.below(3) as u16,
                    seeding,
                    event: event(&mut rng),
                };
                let want = Want::Both(rng.below(5) as usize);
                let _ = s.announce(&a, want, now, &mut rng, &mut o4, &mut o6);
            }
            8..=13 => {
                let peer = PeerId([rng.below(10) as u8; 20]);
                let conn = rng.below(4);
                let _ = s.announce_ws(&h, &peer, conn, seeding, event(&mut rng), now);
            }
            14 => {
                s.remove_ws_conn(&h, rng.below(4));
            }
            15 => {
                let completed = seeding && rng.below(2) == 0;
                s.apply_sync(
                    &SyncedPeer {
                        info_hash: h,
                        addr: PeerAddr::V4([192, 0, 2, rng.below(4) as u8]),
                        port: 80,
                        seeding,
                        completed,
                        stopped: rng.below(4) == 0,
                    },
                    now,
                );
            }
            16 => {
                restored += 1;
                let r = hash(restored);
                s.restore_torrent(&r, now, rng.below(5) as u32);
                s.restore_peer(
                    &r,
                    PeerAddr::V6([1; 16]),
                    9,
                    FLAG_SEEDING | FLAG_COMPLETED,
                    now,
                );
            }
            17 => {
                s.sweep_shard(rng.below(SHARDS as u64) as usize, now);
            }
            _ => now += rng.below(120) as u32,
        }
        if step % 97 == 0 {
            s.sweep_all(now);
        }
        assert_eq!(s.totals(), s.totals_by_walk(), "after step {step}");
    }
    let t = s.totals();
    assert!(
        t.peers4 > 0 && t.peers6 > 0 && t.peers_ws > 0 && t.downloaded > 0,
        "{t:?}"
    );
    // Everything expires in the end, downloads with their torrents.
    s.sweep_all(now + 10_000);
    assert_eq!(s.totals(), Totals::default());
    assert_eq!(s.totals_by_walk(), Totals::default());
}
