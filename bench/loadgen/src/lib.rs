//! What the load generators share: the info_hashes they announce and the BEP 15 connect.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use ferrotracker_proto::udp::{self, Response};
use ferrotracker_proto::InfoHash;

/// Torrent `i` of the set named by `seed`: pseudo-random bytes, with `i` in the last four so
/// that the hashes of one seed are distinct.
pub fn hash(seed: u64, i: u32) -> InfoHash {
    let mut x = seed ^ (u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut h = [0u8; 20];
    for chunk in h.chunks_mut(8) {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        let b = x.to_le_bytes();
        let n = chunk.len();
        chunk.copy_from_slice(&b[..n]);
    }
    h[16..20].copy_from_slice(&i.to_be_bytes());
    InfoHash(h)
}

/// A connection id from the tracker `sock` is connected to (retried; panics after 50 tries).
pub fn connect(sock: &UdpSocket) -> u64 {
    let mut buf = Vec::new();
    let mut rbuf = [0u8; 2048];
    for _ in 0..50 {
        buf.clear();
        udp::encode_connect(&mut buf, 0xc0ffee);
        sock.send(&buf).expect("send");
        // Late announce replies may still be queued: skip them until the connect reply.
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            let Ok(n) = sock.recv(&mut rbuf) else { break };
            if let Ok(Response::Connect {
                connection_id,
                transaction_id: 0xc0ffee,
            }) = udp::parse_response(&rbuf[..n])
            {
                return connection_id;
            }
        }
    }
    panic!("no connect reply from the tracker");
}
