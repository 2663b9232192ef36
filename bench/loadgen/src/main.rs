//! ferrotracker-loadgen: puts exactly `torrents x peers` peers into a tracker over UDP
//! (BEP 15), then scrapes every torrent to check that the tracker really holds them.
//!
//! Peers are distinct by announce port (peer identity is address+port), so the whole load comes
//! from one loopback address. Requests go out in windows; lost datagrams are retried.
//!
//! With SHARD (three hex digits), every info_hash starts with those 12 bits, so every torrent
//! lands in one shard of the store (bench/attack_fullscrape.sh).
//!
//! usage: ferrotracker-loadgen UDP_ADDR TORRENTS PEERS_PER_TORRENT [SEED [SHARD]]

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use ferrotracker_loadgen::{connect, hash};
use ferrotracker_proto::udp::{self, AnnounceRequest, Response};
use ferrotracker_proto::{Event, InfoHash, PeerId};

const WINDOW: usize = 256;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!(
            "usage: {} UDP_ADDR TORRENTS PEERS_PER_TORRENT [SEED [SHARD]]",
            args[0]
        );
        std::process::exit(2);
    }
    let target: SocketAddr = args[1].parse().expect("UDP_ADDR");
    let torrents: u32 = args[2].parse().expect("TORRENTS");
    let peers: u32 = args[3].parse().expect("PEERS_PER_TORRENT");
    let seed: u64 = args.get(4).map(|s| s.parse().expect("SEED")).unwrap_or(1);
    let shard: Option<u16> = args.get(5).map(|s| {
        u16::from_str_radix(s, 16)
            .ok()
            .filter(|&v| v < 0x1000)
            .expect("SHARD: 3 hex digits")
    });
    let hash = |seed: u64, i: u32| {
        let mut h = hash(seed, i);
        if let Some(top) = shard {
            h.0[0] = (top >> 4) as u8;
            h.0[1] = ((top & 0xf) as u8) << 4 | (h.0[1] & 0x0f);
        }
        h
    };
    assert!(
        peers <= 65535,
        "peers per torrent are told apart by port: at most 65535"
    );

    let bind: SocketAddr = if target.is_ipv6() {
        "[::1]:0".parse().unwrap()
    } else {
        "127.0.0.1:0".parse().unwrap()
    };
    let sock = UdpSocket::bind(bind).expect("bind");
    // Room for a whole window of replies with peers in them: a lost reply costs a timeout.
    let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(8 << 20);
    sock.connect(target).expect("connect");
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();

    let started = Instant::now();
    let mut conn = connect(&sock);
    let mut conn_at = Instant::now();
    let total = u64::from(torrents) * u64::from(peers);
    let mut jobs: Vec<(u32, u16)> = Vec::with_capacity(WINDOW);
    let mut next: u64 = 0;
    let mut buf = Vec::with_capacity(128);
    let mut rbuf = [0u8; 2048];
    while next < total {
        if conn_at.elapsed() > Duration::from_secs(50) {
            conn = connect(&sock);
            conn_at = Instant::now();
        }
        jobs.clear();
        while jobs.len() < WINDOW && next < total {
            jobs.push((
                (next / u64::from(peers)) as u32,
                (next % u64::from(peers)) as u16 + 1,
            ));
            next += 1;
        }
        let mut pending: HashMap<u32, (u32, u16)> = jobs
            .iter()
            .enumerate()
            .map(|(i, j)| (i as u32, *j))
            .collect();
        let mut tries = 0;
        while !pending.is_empty() {
            tries += 1;
            assert!(tries < 50, "tracker stopped answering");
            for (&tid, &(t, port)) in &pending {
                buf.clear();
                let req = AnnounceRequest {
                    connection_id: conn,
                    transaction_id: tid,
                    info_hash: hash(seed, t),
                    peer_id: PeerId([7; 20]),
                    downloaded: 0,
                    left: if port % 2 == 0 { 0 } else { 1000 },
                    uploaded: 0,
                    event: Event::Started,
                    ip: 0,
                    key: 0,
                    num_want: 0,
                    port,
                };
                udp::encode_announce(&mut buf, &req);
                let _ = sock.send(&buf);
            }
            let deadline = Instant::now() + Duration::from_millis(500);
            while !pending.is_empty() && Instant::now() < deadline {
                let Ok(n) = sock.recv(&mut rbuf) else { break };
                if let Ok(Response::Announce { transaction_id, .. }) =
                    udp::parse_response(&rbuf[..n])
                {
                    pending.remove(&transaction_id);
                }
            }
        }
    }
    let fill = started.elapsed();

    // Check: scrape everything, sum peers.
    let (mut seen_peers, mut seen_torrents) = (0u64, 0u64);
    let mut t = 0u32;
    conn = connect(&sock);
    while t < torrents {
        let n = (torrents - t).min(74);
        let hashes: Vec<InfoHash> = (t..t + n).map(|i| hash(seed, i)).collect();
        let mut tries = 0;
        loop {
            tries += 1;
            if tries > 50 {
                eprintln!("no scrape reply for torrents {t}..{} after 50 tries", t + n);
                std::process::exit(1);
            }
            buf.clear();
            udp::encode_scrape(&mut buf, conn, t, &hashes);
            sock.send(&buf).unwrap();
            let Ok(len) = sock.recv(&mut rbuf) else {
                continue;
            };
            if let Ok(Response::Scrape {
                transaction_id,
                entries,
            }) = udp::parse_response(&rbuf[..len])
            {
                if transaction_id != t {
                    continue;
                }
                for e in entries.chunks_exact(12) {
                    let s = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
                    let l = u32::from_be_bytes([e[8], e[9], e[10], e[11]]);
                    seen_peers += u64::from(s + l);
                    if s + l > 0 {
                        seen_torrents += 1;
                    }
                }
                break;
            }
        }
        t += n;
    }
    println!(
        "announced {total} peers over {torrents} torrents in {:.1}s; scrape sees {seen_peers} peers in {seen_torrents} torrents",
        fill.as_secs_f64()
    );
    if seen_peers != total || seen_torrents != u64::from(torrents) {
        eprintln!("MISMATCH: the tracker does not hold every peer");
        std::process::exit(1);
    }
}
