//! BEP 15 client datagrams (`udp::parse_request`).
//!
//! Beyond "no panic": every parsed request re-encodes (with the client-side encoders) to the
//! bytes it was parsed from, and an error carries a transaction id exactly when the datagram
//! had one to echo.
#![no_main]

use ferrotracker_proto::udp::{self, Request, RequestError, MAX_SCRAPE, PROTOCOL_ID};
use ferrotracker_proto::InfoHash;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let req = match udp::parse_request(data) {
        Ok(r) => r,
        Err(e) => {
            assert_eq!(e == RequestError::TooShort, data.len() < 16);
            assert_eq!(
                e.transaction_id().is_some(),
                data.len() >= 16 && e != RequestError::BadProtocolId
            );
            if let Some(tid) = e.transaction_id() {
                assert_eq!(tid.to_be_bytes(), data[12..16]);
            }
            assert!(!e.reason().is_empty());
            return;
        }
    };
    let mut out = Vec::new();
    match req {
        Request::Connect { transaction_id } => {
            udp::encode_connect(&mut out, transaction_id);
            assert_eq!(out, data[..16]);
            assert_eq!(data[..8], PROTOCOL_ID.to_be_bytes());
        }
        Request::Announce(a) => {
            udp::encode_announce(&mut out, &a);
            assert_eq!(out.len(), udp::ANNOUNCE_MIN_LEN);
            // The event field is the one lossy one: unknown values read as "none" (0).
            let event = u32::from_be_bytes(data[80..84].try_into().unwrap());
            if event <= 3 {
                assert_eq!(out, data[..98]);
            } else {
                assert_eq!(out[..80], data[..80]);
                assert_eq!(out[80..84], [0, 0, 0, 0]);
                assert_eq!(out[84..], data[84..98]);
            }
            assert_eq!(udp::parse_request(&out), Ok(req));
        }
        Request::Scrape(s) => {
            assert!(!s.is_empty() && s.len() <= MAX_SCRAPE);
            assert!((data.len() - 16) % 20 == 0);
            let hashes: Vec<InfoHash> = s.info_hashes().collect();
            assert_eq!(hashes.len(), s.len());
            udp::encode_scrape(&mut out, s.connection_id, s.transaction_id, &hashes);
            assert_eq!(out, data[..16 + 20 * s.len()]);
        }
    }
});
