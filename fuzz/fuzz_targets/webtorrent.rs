//! WebTorrent tracker messages (`webtorrent::parse_request`, `webtorrent::parse_reply`), as
//! browsers and the tracker send them over a WebSocket.
//!
//! Beyond "no panic": every parsed message, written back with the module's writers (the
//! client-side ones for requests, the tracker's for replies), parses back equal, and an
//! announce's offers skipped unread (`nth`) are those read one by one.
#![no_main]

use ferrotracker_proto::http_body::Counts;
use ferrotracker_proto::webtorrent::{self, Limits, Reply, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_message: 16 * 1024,
        max_offers: 3,
        max_info_hashes: 8,
        max_signal: 2048,
    };
    // Rewriting may lengthen a message (numbers, escapes): no size bound on the re-read.
    let unbounded = Limits {
        max_message: usize::MAX,
        ..limits
    };
    let mut out = Vec::new();

    let parsed = webtorrent::parse_request(data, &limits);
    // A message known to be UTF-8 (a text frame) parses the same without the second check.
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(webtorrent::parse_request_text(text, &limits), parsed);
    }
    if let Ok(req) = parsed {
        match &req {
            Request::Announce(a) => {
                assert!(a.offers.len() <= limits.max_offers);
                assert_eq!(a.offers.iter().count(), a.offers.len());
                // Skipping offers unread lands on the same offer as reading up to it.
                for n in 0..a.offers.len() {
                    let mut read = a.offers.iter();
                    for _ in 0..n {
                        read.next();
                    }
                    assert_eq!(a.offers.iter().nth(n), read.next());
                }
                webtorrent::write_announce_request(&mut out, a);
            }
            Request::Scrape(s) => {
                if let Some(h) = &s.info_hashes {
                    assert!(h.len() <= limits.max_info_hashes);
                    assert_eq!(h.iter().count(), h.len());
                }
                webtorrent::write_scrape_request(&mut out, s);
            }
        }
        assert!(std::str::from_utf8(&out).is_ok());
        assert_eq!(webtorrent::parse_request(&out, &unbounded), Ok(req));
    }

    out.clear();
    let Ok(reply) = webtorrent::parse_reply(data, &limits) else {
        return;
    };
    match reply {
        Reply::Announce {
            info_hash,
            complete,
            incomplete,
            interval,
        } => {
            let counts = Counts {
                complete,
                incomplete,
                downloaded: 0,
            };
            webtorrent::write_announce_reply(&mut out, &info_hash, counts, interval);
        }
        Reply::Offer {
            info_hash,
            peer_id,
            offer,
        } => webtorrent::write_offer(&mut out, &info_hash, &peer_id, &offer),
        Reply::Answer {
            info_hash,
            peer_id,
            offer_id,
            answer,
        } => webtorrent::write_answer(&mut out, &info_hash, &peer_id, &offer_id, answer),
        Reply::Scrape(files) => {
            assert_eq!(files.iter().count(), files.len());
            webtorrent::write_scrape_reply(&mut out, files.iter());
        }
        Reply::Failure {
            action,
            info_hash,
            reason,
        } => {
            let Some(action) = action else {
                return;
            };
            let mut text = String::new();
            reason.decode_into(&mut text);
            webtorrent::write_error(&mut out, action, info_hash.as_ref(), &text);
            let Ok(Reply::Failure {
                action: a,
                info_hash: h,
                reason: r,
            }) = webtorrent::parse_reply(&out, &unbounded)
            else {
                panic!("rewritten failure does not parse");
            };
            let mut back = String::new();
            r.decode_into(&mut back);
            assert_eq!((a, h, back), (Some(action), info_hash, text));
            return;
        }
    }
    assert!(std::str::from_utf8(&out).is_ok());
    assert_eq!(webtorrent::parse_reply(&out, &unbounded), Ok(reply));
});
