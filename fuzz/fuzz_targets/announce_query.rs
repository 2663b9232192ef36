//! Announce query strings (`query::parse_announce`) and percent-decoding.
//!
//! Beyond "no panic": whatever parses is written back as a canonical query (binary values
//! percent-encoded as clients do) and must parse to the same announce, so no value is lost or bent on the way.
#![no_main]

use ferrotracker_proto::query::{self, AnnounceQuery, QueryError};
use ferrotracker_proto::testutil::percent_encode;
use ferrotracker_proto::Event;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = [0u8; 64];
    match query::percent_decode_into(data, &mut buf) {
        Ok(n) => assert!(n <= buf.len()),
        Err(e) => assert!(matches!(
            e,
            QueryError::BadEscape | QueryError::ValueTooLong
        )),
    }

    let Ok(q) = query::parse_announce(data) else {
        return;
    };
    if let Some((_, n)) = q.ip {
        assert!((1..=64).contains(&n));
    }
    let again = encode(&q);
    assert_eq!(
        query::parse_announce(&again),
        Ok(q),
        "re-encoded as {}",
        String::from_utf8_lossy(&again)
    );
});

fn encode(q: &AnnounceQuery) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(h) = q.info_hash {
        param(&mut out, "info_hash", percent_encode(&h.0).as_bytes());
    }
    if let Some(p) = q.peer_id {
        param(&mut out, "peer_id", percent_encode(&p.0).as_bytes());
    }
    param(&mut out, "port", q.port.to_string().as_bytes());
    if let Some(left) = q.left {
        param(&mut out, "left", left.to_string().as_bytes());
    }
    match q.event {
        Event::None => {}
        Event::Started => param(&mut out, "event", b"started"),
        Event::Completed => param(&mut out, "event", b"completed"),
        Event::Stopped => param(&mut out, "event", b"stopped"),
    }
    if let Some(n) = q.numwant {
        param(&mut out, "numwant", n.to_string().as_bytes());
    }
    if !q.compact {
        param(&mut out, "compact", b"0");
    }
    if let Some((ip, n)) = q.ip {
        param(&mut out, "ip", percent_encode(&ip[..n]).as_bytes());
    }
    out
}

fn param(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    if !out.is_empty() {
        out.push(b'&');
    }
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value);
}
