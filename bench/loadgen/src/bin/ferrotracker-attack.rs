//! ferrotracker-attack: one address announces every port it has into torrents, while an
//! honest client (another loopback address) announces into the same torrents and times each
//! reply. Counts what the tracker stored, refused (error packets) and left unanswered.
//!
//! usage: ferrotracker-attack UDP_ADDR TORRENTS PORTS [SEED] [HONEST_SRC]
//!   TORRENTS x PORTS announces from 127.0.0.1 (ports 1..=PORTS, at most 65535), in windows;
//!   the honest client (default source 127.0.0.2) announces one at a time, first alone for two
//!   seconds (the baseline), then during the attack.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrotracker_loadgen::connect;
use ferrotracker_proto::udp::{self, AnnounceRequest, Response};
use ferrotracker_proto::{Event, InfoHash, PeerId};

const WINDOW: usize = 256;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!(
            "usage: {} UDP_ADDR TORRENTS PORTS [SEED] [HONEST_SRC]",
            args[0]
        );
        std::process::exit(2);
    }
    let target: SocketAddr = args[1].parse().expect("UDP_ADDR");
    let torrents: u32 = args[2].parse().expect("TORRENTS");
    let ports: u32 = args[3].parse().expect("PORTS");
    assert!((1..=65535).contains(&ports), "PORTS: 1..=65535");
    let seed: u64 = args.get(4).map_or(1, |s| s.parse().expect("SEED"));
    let honest_src: IpAddr = args
        .get(5)
        .map_or("127.0.0.2", String::as_str)
        .parse()
        .expect("HONEST_SRC");

    let stop = Arc::new(AtomicBool::new(false));
    let honest = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || honest_client(target, honest_src, torrents.max(1), seed, &stop))
    };
    std::thread::sleep(Duration::from_secs(2));
    let attack_started = Instant::now();
    let (stored, refused, lost) = attack(target, torrents, ports, seed);
    let took = attack_started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (base, during) = honest.join().expect("honest client");
    let total = u64::from(torrents) * u64::from(ports);
    println!(
        "attack: {total} announces ({torrents} torrents x {ports} ports) in {:.1}s, {:.0}/s: {stored} stored, {refused} refused, {lost} unanswered",
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );
    println!("honest before: {}", summary(base));
    println!("honest during: {}", summary(during));
}

/// (stored, refused, unanswered after retries).
fn attack(target: SocketAddr, torrents: u32, ports: u32, seed: u64) -> (u64, u64, u64) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(8 << 20);
    sock.connect(target).expect("connect");
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let (mut stored, mut refused, mut lost) = (0u64, 0u64, 0u64);
    let mut conn = connect(&sock);
    let mut conn_at = Instant::now();
    let total = u64::from(torrents) * u64::from(ports);
    let mut next = 0u64;
    let (mut buf, mut rbuf) = (Vec::with_capacity(128), [0u8; 2048]);
    while next < total {
        if conn_at.elapsed() > Duration::from_secs(50) {
            conn = connect(&sock);
            conn_at = Instant::now();
        }
        let mut pending: HashMap<u32, (u32, u16)> = HashMap::with_capacity(WINDOW);
        while pending.len() < WINDOW && next < total {
            let job = (
                (next / u64::from(ports)) as u32,
                (next % u64::from(ports)) as u16 + 1,
            );
            pending.insert(next as u32, job);
            next += 1;
        }
        for _ in 0..3 {
            for (&tid, &(t, port)) in &pending {
                buf.clear();
                udp::encode_announce(&mut buf, &request(conn, tid, hash(seed, t), port));
                let _ = sock.send(&buf);
            }
            let deadline = Instant::now() + Duration::from_millis(500);
            while !pending.is_empty() && Instant::now() < deadline {
                let Ok(n) = sock.recv(&mut rbuf) else { break };
                match udp::parse_response(&rbuf[..n]) {
                    Ok(Response::Announce { transaction_id, .. }) => {
                        stored += u64::from(pending.remove(&transaction_id).is_some());
                    }
                    Ok(Response::Error { transaction_id, .. }) => {
                        refused += u64::from(pending.remove(&transaction_id).is_some());
                    }
                    _ => {}
                }
            }
            if pending.is_empty() {
                break;
            }
        }
        lost += pending.len() as u64;
    }
    (stored, refused, lost)
}

/// Announces one at a time from `src` until `stop`, timing each reply: (before the attack,
/// during it), in microseconds; a lost reply counts as `u64::MAX`.
fn honest_client(
    target: SocketAddr,
    src: IpAddr,
    torrents: u32,
    seed: u64,
    stop: &AtomicBool,
) -> (Vec<u64>, Vec<u64>) {
    let sock = UdpSocket::bind((src, 0)).expect("bind the honest client's address");
    sock.connect(target).expect("connect");
    sock.set_read_timeout(Some(Duration::from_millis(1000)))
        .expect("timeout");
    let (mut conn, mut conn_at) = (connect(&sock), Instant::now());
    let started = Instant::now();
    let (mut before, mut during) = (Vec::new(), Vec::new());
    let (mut buf, mut rbuf) = (Vec::with_capacity(128), [0u8; 2048]);
    let mut i = 0u32;
    while !stop.load(Ordering::Relaxed) {
        i = i.wrapping_add(1);
        if conn_at.elapsed() > Duration::from_secs(50) {
            (conn, conn_at) = (connect(&sock), Instant::now());
        }
        // Fifty honest peers per torrent, re-announcing.
        let req = request(
            conn,
            i,
            hash(seed, i % torrents),
            20_000 + (i / torrents % 50) as u16,
        );
        buf.clear();
        udp::encode_announce(&mut buf, &req);
        let sent = Instant::now();
        let _ = sock.send(&buf);
        let mut took = u64::MAX;
        while let Ok(n) = sock.recv(&mut rbuf) {
            if rbuf[..n].get(4..8) == Some(&i.to_be_bytes()[..]) {
                took = sent.elapsed().as_micros() as u64;
                break;
            }
        }
        if started.elapsed() < Duration::from_secs(2) {
            before.push(took);
        } else {
            during.push(took);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    (before, during)
}

fn summary(mut v: Vec<u64>) -> String {
    if v.is_empty() {
        return "no announces".into();
    }
    v.sort_unstable();
    let lost = v.iter().filter(|&&x| x == u64::MAX).count();
    let ok = &v[..v.len() - lost];
    let q = |p: f64| {
        ok.get(((ok.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or(0)
    };
    format!(
        "{} announces, p50 {} us, p99 {} us, max {} us, {lost} unanswered",
        v.len(),
        q(0.5),
        q(0.99),
        q(1.0)
    )
}

fn request(conn: u64, tid: u32, info_hash: InfoHash, port: u16) -> AnnounceRequest {
    AnnounceRequest {
        connection_id: conn,
        transaction_id: tid,
        info_hash,
        peer_id: PeerId([9; 20]),
        downloaded: 0,
        left: 1000,
        uploaded: 0,
        event: Event::None,
        ip: 0,
        key: 0,
        num_want: 50,
        port,
    }
}

/// The torrents of the attack: distinct from bench/loadgen's for the same seed.
fn hash(seed: u64, i: u32) -> InfoHash {
    ferrotracker_loadgen::hash(seed ^ 0xa77a_c4ed, i)
}
