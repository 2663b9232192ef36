//! Tests of the WebTorrent messages: samples as the reference client writes them, round trips,
//! every byte in binary strings, every error, the bounds, and never-panic.

use super::*;
use crate::testutil::{mutate, random_bytes, xorshift};

/// 20 bytes meant to hit every spelling `JSON.stringify` has for a binary string.
const HASH: [u8; 20] = [
    0x00, 0x08, 0x0a, 0x1f, 0x22, 0x5c, 0x2f, 0x41, 0x7f, 0x80, 0xa0, 0xe9, 0xff, 0x30, 0x31, 0x32,
    0x33, 0x34, 0x35, 0x36,
];
/// `JSON.stringify(HASH as a binary string)`, written out by hand.
const HASH_JSON: &str = concat!(
    r#""\u0000\b\n\u001f\"\\/A"#,
    "\u{7f}\u{80}\u{a0}\u{e9}\u{ff}0123456\""
);
/// webtorrent's peer id: `-WW` + version + `-` + 9 random bytes in base64.
const PEER: [u8; 20] = *b"-WW0208-Zm9vYmFyYmF6";
const PEER_JSON: &str = r#""-WW0208-Zm9vYmFyYmF6""#;
const OTHER_PEER: [u8; 20] = *b"-WW0208-b3RoZXJwZWVy";
/// `hexToBinary(randombytes(20).toString('hex'))`.
const OFFER_ID: [u8; 20] = [
    0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff,
    0x00, 0x01, 0x02, 0x03,
];
const OFFER_ID_JSON: &str =
    "\"\u{f0}\u{f1}\u{f2}\u{f3}\u{f4}\u{f5}\u{f6}\u{f7}\u{f8}\u{f9}\u{fa}\u{fb}\u{fc}\u{fd}\u{fe}\u{ff}\\u0000\\u0001\\u0002\\u0003\"";
/// simple-peer's signal data for a non-trickle data-channel offer.
const OFFER: &str = r#"{"type":"offer","sdp":"v=0\r\no=- 4215 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:Xq5f\r\na=fingerprint:sha-256 AA:BB:CC\r\na=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\n"}"#;
const ANSWER: &str =
    r#"{"type":"answer","sdp":"v=0\r\no=- 99 2 IN IP4 127.0.0.1\r\na=setup:active\r\n"}"#;

fn limits() -> Limits {
    Limits::default()
}

fn req(msg: &str) -> Result<Request<'_>, Error> {
    parse_request(msg.as_bytes(), &limits())
}

fn announce(msg: &str) -> Announce<'_> {
    match req(msg) {
        Ok(Request::Announce(a)) => a,
        other => panic!("not an announce: {other:?} from {msg}"),
    }
}

fn err_kind(msg: &str) -> ErrorKind {
    req(msg).expect_err(msg).kind
}

/// Writes a request back with the client-side writers.
fn rewrite_request(r: &Request<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    match r {
        Request::Announce(a) => write_announce_request(&mut out, a),
        Request::Scrape(s) => write_scrape_request(&mut out, s),
    }
    out
}

/// Writes a reply back with the server-side writers; `None` for a failure without action.
fn rewrite_reply(r: &Reply<'_>) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match r {
        Reply::Announce {
            info_hash,
            complete,
            incomplete,
            interval,
        } => write_announce_reply(
            &mut out,
            info_hash,
            Counts {
                complete: *complete,
                incomplete: *incomplete,
                downloaded: 0,
            },
            *interval,
        ),
        Reply::Offer {
            info_hash,
            peer_id,
            offer,
        } => write_offer(&mut out, info_hash, peer_id, offer),
        Reply::Answer {
            info_hash,
            peer_id,
            offer_id,
            answer,
        } => write_answer(&mut out, info_hash, peer_id, offer_id, answer),
        Reply::Scrape(files) => write_scrape_reply(&mut out, files.iter()),
        Reply::Failure {
            action,
            info_hash,
            reason,
        } => {
            let mut text = String::new();
            reason.decode_into(&mut text);
            write_error(&mut out, (*action)?, info_hash.as_ref(), &text);
        }
    }
    Some(out)
}

/// Replies equal, failure reasons compared decoded.
fn same_reply(a: &Reply<'_>, b: &Reply<'_>) -> bool {
    match (a, b) {
        (
            Reply::Failure {
                action: a1,
                info_hash: h1,
                reason: r1,
            },
            Reply::Failure {
                action: a2,
                info_hash: h2,
                reason: r2,
            },
        ) => {
            let (mut s1, mut s2) = (String::new(), String::new());
            r1.decode_into(&mut s1);
            r2.decode_into(&mut s2);
            a1 == a2 && h1 == h2 && s1 == s2
        }
        _ => a == b,
    }
}

/// The fuzz target's invariant: whatever parses, written back, parses back equal.
fn check_round_trips(data: &[u8]) {
    // Rewriting may lengthen a message (numbers, escapes): no size bound on the re-read.
    let unbounded = Limits {
        max_message: usize::MAX,
        ..limits()
    };
    let parsed = parse_request(data, &limits());
    // A text frame (UTF-8 already checked) parses the same without the second check.
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(parse_request_text(text, &limits()), parsed);
    }
    if let Ok(r) = parsed {
        let out = rewrite_request(&r);
        let back = parse_request(&out, &unbounded);
        assert_eq!(back, Ok(r), "{}", String::from_utf8_lossy(&out));
    }
    if let Ok(r) = parse_reply(data, &limits()) {
        if let Some(out) = rewrite_reply(&r) {
            let back = parse_reply(&out, &unbounded).expect("rewritten reply parses");
            assert!(same_reply(&back, &r), "{r:?} -> {back:?}");
        }
    }
}

// ------------------------------------------------------------------ samples from the client

/// `client.start()` on a torrent with metadata: `_defaultAnnounceOpts`, then
/// `getAnnounceOpts()`, then `event`, then `Object.assign`'s action, info_hash and peer_id,
/// then `numwant = min(numwant, 5)` and the offers.
#[test]
fn started_announce_with_offers() {
    let msg = format!(
        r#"{{"numwant":2,"uploaded":0,"downloaded":0,"left":1048576,"event":"started","action":"announce","info_hash":{HASH_JSON},"peer_id":{PEER_JSON},"offers":[{{"offer":{OFFER},"offer_id":{OFFER_ID_JSON}}},{{"offer":{OFFER},"offer_id":"aaaaaaaaaaaaaaaaaaaa"}}]}}"#
    );
    let a = announce(&msg);
    assert_eq!(a.info_hash, InfoHash(HASH));
    assert_eq!(a.peer_id, PeerId(PEER));
    assert_eq!(a.event, Event::Started);
    assert_eq!(
        (a.uploaded, a.downloaded, a.left, a.numwant),
        (Some(0), Some(0), Some(1_048_576), Some(2))
    );
    assert_eq!(a.answer, None);
    let offers: Vec<Offer<'_>> = a.offers.iter().collect();
    assert_eq!(
        offers,
        [
            Offer {
                offer_id: OfferId(OFFER_ID),
                offer: OFFER
            },
            Offer {
                offer_id: OfferId(*b"aaaaaaaaaaaaaaaaaaaa"),
                offer: OFFER
            }
        ]
    );
    check_round_trips(msg.as_bytes());
}

/// Skipping offers (`nth`, which reads only their grammar) lands on the offers `next` gives.
#[test]
fn offers_skipped_with_nth_are_the_ones_next_passes() {
    let one = |i: usize| format!(r#"{{"offer":{OFFER},"offer_id":"{:a<20}","x":[{{}}]}}"#, i);
    let list: Vec<String> = (0..7).map(one).collect();
    let msg = format!(
        r#"{{"action":"announce","info_hash":{HASH_JSON},"peer_id":{PEER_JSON},"offers":[{}]}}"#,
        list.join(",")
    );
    let a = announce(&msg);
    let all: Vec<Offer<'_>> = a.offers.iter().collect();
    assert_eq!(all.len(), 7);
    let slice = Offers::from_slice(&all);
    for offers in [a.offers, slice] {
        for gaps in [
            [0, 0, 0],
            [1, 2, 0],
            [3, 0, 5],
            [0, 6, 0],
            [7, 0, 0],
            [2, 2, 1],
        ] {
            let mut it = offers.iter();
            let mut at = 0;
            for gap in gaps {
                at += gap;
                assert_eq!(it.nth(gap), all.get(at).copied(), "{gaps:?}");
                at += 1;
            }
        }
    }
}

/// A magnet link before metadata: `left` is `Math.max(NaN, 0)`, which JSON writes as null.
#[test]
fn magnet_announce_has_null_left() {
    let msg = format!(
        r#"{{"numwant":5,"uploaded":0,"downloaded":0,"left":null,"event":"started","action":"announce","info_hash":{HASH_JSON},"peer_id":{PEER_JSON},"offers":[]}}"#
    );
    let a = announce(&msg);
    assert_eq!(a.left, None);
    assert!(a.offers.is_empty());
}

/// `client.stop()` sends no offers; a bare tracker client has no `left`.
#[test]
fn stopped_announce_without_offers() {
    let msg = format!(
        r#"{{"numwant":50,"uploaded":0,"downloaded":0,"event":"stopped","action":"announce","info_hash":{HASH_JSON},"peer_id":{PEER_JSON}}}"#
    );
    let a = announce(&msg);
    assert_eq!(a.event, Event::Stopped);
    assert_eq!((a.left, a.numwant), (None, Some(50)));
    assert!(a.offers.is_empty());
}

/// `client.update()` deletes `event`; a tracker's `tracker id` comes back as `trackerid`.
#[test]
fn update_announce_ignores_trackerid() {
    let msg = format!(
        r#"{{"numwant":5,"uploaded":123456,"downloaded":654321,"left":0,"action":"announce","info_hash":{HASH_JSON},"peer_id":{PEER_JSON},"trackerid":"abc","offers":[{{"offer":{OFFER},"offer_id":{OFFER_ID_JSON}}}]}}"#
    );
    let a = announce(&msg);
    assert_eq!(a.event, Event::None);
    assert_eq!(a.left, Some(0));
    assert_eq!(a.offers.len(), 1);
}

/// `peer.once('signal', answer => ...)`: an answer carries no counters.
#[test]
fn answer_announce() {
    let msg = format!(
        r#"{{"action":"announce","info_hash":{HASH_JSON},"peer_id":{PEER_JSON},"to_peer_id":"-WW0208-b3RoZXJwZWVy","answer":{ANSWER},"offer_id":{OFFER_ID_JSON}}}"#
    );
    let a = announce(&msg);
    assert_eq!(
        a.answer,
        Some(Answer {
            to_peer_id: PeerId(OTHER_PEER),
            offer_id: OfferId(OFFER_ID),
            answer: ANSWER
        })
    );
    assert_eq!((a.event, a.uploaded, a.left), (Event::None, None, None));
    check_round_trips(msg.as_bytes());
}

/// `tracker.scrape()`: one string for the client's own torrent, an array when asked for more.
#[test]
fn scrape_requests() {
    let one = format!(r#"{{"action":"scrape","info_hash":{HASH_JSON}}}"#);
    let Ok(Request::Scrape(s)) = req(&one) else {
        panic!("{one}")
    };
    let hashes = s.info_hashes.expect("hashes");
    assert!(hashes.is_one());
    assert_eq!(hashes.iter().collect::<Vec<_>>(), [InfoHash(HASH)]);

    let many = format!(
        r#"{{"action":"scrape","info_hash":[{HASH_JSON},"aaaaaaaaaaaaaaaaaaaa",{HASH_JSON}]}}"#
    );
    let Ok(Request::Scrape(s)) = req(&many) else {
        panic!("{many}")
    };
    let hashes = s.info_hashes.expect("hashes");
    assert!(!hashes.is_one());
    assert_eq!(
        hashes.iter().collect::<Vec<_>>(),
        [
            InfoHash(HASH),
            InfoHash(*b"aaaaaaaaaaaaaaaaaaaa"),
            InfoHash(HASH)
        ]
    );

    for all in [
        r#"{"action":"scrape"}"#,
        r#"{"action":"scrape","info_hash":null}"#,
    ] {
        assert_eq!(req(all), Ok(Request::Scrape(Scrape { info_hashes: None })));
    }
    for msg in [one, many] {
        check_round_trips(msg.as_bytes());
    }
}

// ------------------------------------------------------------------ binary strings

#[test]
fn binary_strings_are_written_as_json_stringify_writes_them() {
    let mut out = Vec::new();
    write_binary(&mut out, &HASH);
    assert_eq!(std::str::from_utf8(&out), Ok(HASH_JSON));
    out.clear();
    write_binary(&mut out, &OFFER_ID);
    assert_eq!(std::str::from_utf8(&out), Ok(OFFER_ID_JSON));
}

#[test]
fn every_byte_value_round_trips_in_every_id() {
    let all: Vec<u8> = (0..=255u8).collect();
    for chunk in all.chunks(20) {
        let mut id = [0xAAu8; 20];
        id[..chunk.len()].copy_from_slice(chunk);

        // Client to tracker, through the client-side writer.
        let a = Announce {
            info_hash: InfoHash(id),
            peer_id: PeerId(id),
            event: Event::None,
            uploaded: None,
            downloaded: None,
            left: None,
            numwant: None,
            offers: Offers::default(),
            answer: Some(Answer {
                to_peer_id: PeerId(id),
                offer_id: OfferId(id),
                answer: ANSWER,
            }),
        };
        let mut out = Vec::new();
        write_announce_request(&mut out, &a);
        assert_eq!(parse_request(&out, &limits()), Ok(Request::Announce(a)));

        // Tracker to client: every writer that carries an id.
        out.clear();
        write_offer(
            &mut out,
            &InfoHash(id),
            &PeerId(id),
            &Offer {
                offer_id: OfferId(id),
                offer: OFFER,
            },
        );
        assert_eq!(
            parse_reply(&out, &limits()),
            Ok(Reply::Offer {
                info_hash: InfoHash(id),
                peer_id: PeerId(id),
                offer: Offer {
                    offer_id: OfferId(id),
                    offer: OFFER
                }
            })
        );
        out.clear();
        write_scrape_reply(&mut out, [(InfoHash(id), Counts::default())]);
        let Ok(Reply::Scrape(files)) = parse_reply(&out, &limits()) else {
            panic!()
        };
        assert_eq!(
            files.iter().collect::<Vec<_>>(),
            [(InfoHash(id), Counts::default())]
        );

        // Any other JSON spelling of the same chars: every byte as \u00XX.
        let escaped: String = id.iter().map(|b| format!("\\u00{b:02X}")).collect();
        let msg =
            format!(r#"{{"action":"announce","info_hash":"{escaped}","peer_id":"{escaped}"}}"#);
        let a = announce(&msg);
        assert_eq!((a.info_hash.0, a.peer_id.0), (id, id));
    }
}

#[test]
fn ids_must_be_twenty_one_byte_chars() {
    let bad = [
        r#""aaaaaaaaaaaaaaaaaaa""#,            // 19
        r#""aaaaaaaaaaaaaaaaaaaaa""#,          // 21
        "\"aaaaaaaaaaaaaaaaaaa\u{100}\"",      // U+0100
        r#""aaaaaaaaaaaaaaaaaaa\u0100""#,      // U+0100, escaped
        r#""aaaaaaaaaaaaaaaaaa\ud83d\ude00""#, // a surrogate pair
        "\"aaaaaaaaaaaaaaaaaa\u{1F600}\"",     // the same, raw
        "12345678901234567890",
        "null",
        r#"["aaaaaaaaaaaaaaaaaaaa"]"#,
    ];
    for id in bad {
        let msg = format!(r#"{{"action":"announce","info_hash":{id},"peer_id":{PEER_JSON}}}"#);
        assert_eq!(err_kind(&msg), ErrorKind::BadInfoHash, "{msg}");
        let msg = format!(r#"{{"action":"announce","info_hash":{HASH_JSON},"peer_id":{id}}}"#);
        let e = req(&msg).expect_err(&msg);
        assert_eq!(
            e,
            Error {
                action: Some(Action::Announce),
                info_hash: Some(InfoHash(HASH)),
                kind: ErrorKind::BadPeerId
            }
        );
    }
}

// ------------------------------------------------------------------ replies

#[test]
fn replies_round_trip() {
    let ih = InfoHash(HASH);
    let mut out = Vec::new();

    let counts = Counts {
        complete: 3,
        incomplete: u32::MAX,
        downloaded: 0,
    };
    write_announce_reply(&mut out, &ih, counts, 120);
    assert_eq!(
        parse_reply(&out, &limits()),
        Ok(Reply::Announce {
            info_hash: ih,
            complete: 3,
            incomplete: u32::MAX,
            interval: 120
        })
    );
    let expected = format!(
        r#"{{"action":"announce","info_hash":{HASH_JSON},"complete":3,"incomplete":4294967295,"interval":120}}"#
    );
    assert_eq!(std::str::from_utf8(&out), Ok(expected.as_str()));

    out.clear();
    write_answer(&mut out, &ih, &PeerId(PEER), &OfferId(OFFER_ID), ANSWER);
    assert_eq!(
        parse_reply(&out, &limits()),
        Ok(Reply::Answer {
            info_hash: ih,
            peer_id: PeerId(PEER),
            offer_id: OfferId(OFFER_ID),
            answer: ANSWER
        })
    );

    for n in [0, 1, 5] {
        out.clear();
        let files: Vec<(InfoHash, Counts)> = (0..n)
            .map(|i| {
                let mut h = HASH;
                h[19] = i;
                let c = u32::from(i);
                (
                    InfoHash(h),
                    Counts {
                        complete: c,
                        incomplete: c + 1,
                        downloaded: c + 2,
                    },
                )
            })
            .collect();
        write_scrape_reply(&mut out, files.iter().copied());
        let Ok(Reply::Scrape(parsed)) = parse_reply(&out, &limits()) else {
            panic!("{}", String::from_utf8_lossy(&out))
        };
        assert_eq!(parsed.len(), files.len());
        assert_eq!(parsed.iter().collect::<Vec<_>>(), files);
    }

    for (action, hash) in [(Action::Announce, Some(ih)), (Action::Scrape, None)] {
        out.clear();
        let reason = "bad \"thing\" \\ \n\u{1} é \u{1F600}";
        write_error(&mut out, action, hash.as_ref(), reason);
        let Ok(Reply::Failure {
            action: a,
            info_hash: h,
            reason: r,
        }) = parse_reply(&out, &limits())
        else {
            panic!("{}", String::from_utf8_lossy(&out))
        };
        let mut text = String::new();
        r.decode_into(&mut text);
        assert_eq!((a, h, text.as_str()), (Some(action), hash, reason));
    }
    out.clear();
    write_error(&mut out, Action::Announce, Some(&ih), "denied");
    let expected =
        format!(r#"{{"action":"announce","failure reason":"denied","info_hash":{HASH_JSON}}}"#);
    assert_eq!(std::str::from_utf8(&out), Ok(expected.as_str()));
}

/// The reference server's parse errors have no action: a client reads them as failures all
/// the same.
#[test]
fn failure_without_action_is_read() {
    let Ok(Reply::Failure { action, reason, .. }) =
        parse_reply(br#"{"failure reason":"invalid info_hash"}"#, &limits())
    else {
        panic!()
    };
    assert_eq!(action, None);
    assert!(reason.is("invalid info_hash"));
}

#[test]
fn requests_round_trip_through_the_client_writers() {
    let offers = [
        Offer {
            offer_id: OfferId(OFFER_ID),
            offer: OFFER,
        },
        Offer {
            offer_id: OfferId(HASH),
            offer: r#"{"type":"offer","sdp":""}"#,
        },
    ];
    for event in [
        Event::None,
        Event::Started,
        Event::Completed,
        Event::Stopped,
    ] {
        let a = Announce {
            info_hash: InfoHash(HASH),
            peer_id: PeerId(PEER),
            event,
            uploaded: Some(1),
            downloaded: Some(u64::MAX),
            left: Some(0),
            numwant: Some(2),
            offers: Offers::from_slice(&offers),
            answer: None,
        };
        let mut out = Vec::new();
        write_announce_request(&mut out, &a);
        assert_eq!(parse_request(&out, &limits()), Ok(Request::Announce(a)));
    }
    let hashes = [InfoHash(HASH), InfoHash(OFFER_ID)];
    for s in [
        Scrape { info_hashes: None },
        Scrape {
            info_hashes: Some(InfoHashes::one(InfoHash(HASH))),
        },
        Scrape {
            info_hashes: Some(InfoHashes::from_slice(&hashes)),
        },
        Scrape {
            info_hashes: Some(InfoHashes::from_slice(&[])),
        },
    ] {
        let mut out = Vec::new();
        write_scrape_request(&mut out, &s);
        assert_eq!(parse_request(&out, &limits()), Ok(Request::Scrape(s)));
    }
}

// ------------------------------------------------------------------ errors

mod errors_and_limits;
