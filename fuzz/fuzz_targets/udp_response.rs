//! BEP 15 tracker replies (`udp::parse_response`, `udp::scrape_entries`), as a client, the
//! load generator and the black-box tests read them.
//!
//! Beyond "no panic": every parsed reply re-encodes (with the server-side writers) to the
//! bytes it was parsed from.
#![no_main]

use ferrotracker_proto::udp::{self, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(resp) = udp::parse_response(data) else {
        return;
    };
    let mut out = Vec::new();
    match resp {
        Response::Connect {
            transaction_id,
            connection_id,
        } => {
            udp::write_connect(&mut out, transaction_id, connection_id);
            // Bytes after a connect reply are ignored.
            assert_eq!(out, data[..16]);
            return;
        }
        Response::Announce {
            transaction_id,
            interval,
            leechers,
            seeders,
            peers,
        } => {
            udp::write_announce_header(&mut out, transaction_id, interval, leechers, seeders);
            out.extend_from_slice(peers);
        }
        Response::Scrape {
            transaction_id,
            entries,
        } => {
            assert_eq!(entries.len() % 12, 0);
            udp::write_scrape_header(&mut out, transaction_id);
            let mut n = 0;
            for (seeders, completed, leechers) in udp::scrape_entries(entries) {
                udp::write_scrape_entry(&mut out, seeders, completed, leechers);
                n += 1;
            }
            assert_eq!(n, entries.len() / 12);
        }
        Response::Error {
            transaction_id,
            message,
        } => udp::write_error(&mut out, transaction_id, message),
    }
    assert_eq!(out, data);
});
