//! Test info_hashes and peer ids, and the HTTP request targets built from them.

pub use ferrotracker_proto::testutil::percent_encode;

/// A test info_hash that needs escaping (NUL, '%', '&', '=', '?', space, high bytes).
pub fn hash(n: u8) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = n;
    h[1..9].copy_from_slice(&[0x00, b'%', b'&', b'=', b'?', b' ', 0xff, b'+']);
    for (i, b) in h.iter_mut().enumerate().skip(9) {
        *b = (i as u8).wrapping_mul(37).wrapping_add(n);
    }
    h
}

/// A distinct 20-byte peer id per port.
pub fn peer_id(port: u16) -> [u8; 20] {
    let mut id = *b"-FT0001-000000000000";
    let digits = format!("{port:012}");
    id[8..].copy_from_slice(digits.as_bytes());
    id
}

/// `/announce?info_hash=..&peer_id=..&port=..&left=..` followed by `extra` (e.g.
/// `&event=started`).
pub fn announce_target(h: &[u8; 20], port: u16, left: u64, extra: &str) -> String {
    format!(
        "/announce?info_hash={}&peer_id={}&port={port}&left={left}{extra}",
        percent_encode(h),
        percent_encode(&peer_id(port))
    )
}

pub fn scrape_target(hashes: &[[u8; 20]]) -> String {
    let q: Vec<String> = hashes
        .iter()
        .map(|h| format!("info_hash={}", percent_encode(h)))
        .collect();
    format!("/scrape?{}", q.join("&"))
}

/// `bytes` as uppercase hex, as the tracker writes info_hashes.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(2 * bytes.len());
    ferrotracker_proto::hex::push_upper(&mut out, bytes);
    String::from_utf8_lossy(&out).into_owned()
}
