//! Every error, the limits, and a parser that never panics.

use super::*;

#[test]
fn every_error_kind() {
    let h = HASH_JSON;
    let p = PEER_JSON;
    let o = OFFER_ID_JSON;
    let cases: Vec<(String, ErrorKind)> = vec![
        ("[1]".into(), ErrorKind::NotObject),
        ("".into(), ErrorKind::NotObject),
        (r#"{"action":"announce""#.into(), ErrorKind::Syntax),
        (r#"{"action":"scrape"} x"#.into(), ErrorKind::Syntax),
        (r#"{"action":"scrape",}"#.into(), ErrorKind::Syntax),
        (r#"{"action":"scrape","a":[1,]}"#.into(), ErrorKind::Syntax),
        (r#"{"action":"scrape","a":01}"#.into(), ErrorKind::Syntax),
        (r#"{"action":"scrape","a":1.}"#.into(), ErrorKind::Syntax),
        (r#"{"action":"scrape","a":"\x"}"#.into(), ErrorKind::Syntax),
        (
            r#"{"action":"scrape","a":"\u12"}"#.into(),
            ErrorKind::Syntax,
        ),
        (
            "{\"action\":\"scrape\",\"a\":\"\t\"}".into(),
            ErrorKind::Syntax,
        ),
        (r#"{"action":"scrape","a":tru}"#.into(), ErrorKind::Syntax),
        (r#"{"action":"scrape",1:2}"#.into(), ErrorKind::Syntax),
        (
            format!(r#"{{"action":"scrape","a":{}}}"#, "[".repeat(40)),
            ErrorKind::TooDeep,
        ),
        (r#"{"info_hash":"x"}"#.into(), ErrorKind::MissingAction),
        (r#"{"action":"connect"}"#.into(), ErrorKind::UnknownAction),
        (r#"{"action":1}"#.into(), ErrorKind::UnknownAction),
        (
            format!(r#"{{"action":"announce","peer_id":{p}}}"#),
            ErrorKind::BadInfoHash,
        ),
        (
            format!(r#"{{"action":"announce","info_hash":{h}}}"#),
            ErrorKind::BadPeerId,
        ),
        (
            format!(r#"{{"action":"announce","info_hash":{h},"peer_id":{p},"event":"paws"}}"#),
            ErrorKind::BadEvent,
        ),
        (
            format!(r#"{{"action":"announce","info_hash":{h},"peer_id":{p},"event":1}}"#),
            ErrorKind::BadEvent,
        ),
        (
            format!(r#"{{"action":"announce","info_hash":{h},"peer_id":{p},"left":"5"}}"#),
            ErrorKind::BadNumber,
        ),
        (
            format!(r#"{{"action":"announce","info_hash":{h},"peer_id":{p},"uploaded":-1}}"#),
            ErrorKind::BadNumber,
        ),
        (
            format!(r#"{{"action":"announce","info_hash":{h},"peer_id":{p},"offers":{{}}}}"#),
            ErrorKind::BadOffers,
        ),
        (
            format!(r#"{{"action":"announce","info_hash":{h},"peer_id":{p},"offers":[1]}}"#),
            ErrorKind::BadOffer,
        ),
        (
            format!(
                r#"{{"action":"announce","info_hash":{h},"peer_id":{p},"offers":[{{"offer_id":{o}}}]}}"#
            ),
            ErrorKind::BadOffer,
        ),
        (
            format!(
                r#"{{"action":"announce","info_hash":{h},"peer_id":{p},"offers":[{{"offer":"sdp","offer_id":{o}}}]}}"#
            ),
            ErrorKind::BadOffer,
        ),
        (
            format!(
                r#"{{"action":"announce","info_hash":{h},"peer_id":{p},"offers":[{{"offer":{{}}}}]}}"#
            ),
            ErrorKind::BadOfferId,
        ),
        (
            format!(r#"{{"action":"announce","info_hash":{h},"peer_id":{p},"answer":"x"}}"#),
            ErrorKind::BadAnswer,
        ),
        (
            format!(
                r#"{{"action":"announce","info_hash":{h},"peer_id":{p},"answer":{{}},"offer_id":{o}}}"#
            ),
            ErrorKind::BadToPeerId,
        ),
        (
            format!(
                r#"{{"action":"announce","info_hash":{h},"peer_id":{p},"answer":{{}},"to_peer_id":{p}}}"#
            ),
            ErrorKind::BadOfferId,
        ),
        (
            format!(r#"{{"action":"scrape","info_hash":[{h},1]}}"#),
            ErrorKind::BadInfoHash,
        ),
        (
            r#"{"action":"scrape","info_hash":{}}"#.into(),
            ErrorKind::BadInfoHash,
        ),
    ];
    for (msg, kind) in cases {
        let e = req(&msg).expect_err(&msg);
        assert_eq!(e.kind, kind, "{msg}");
        assert!(!e.reason().is_empty());
    }
    assert_eq!(
        parse_request(b"{\"action\":\"scrape\",\"a\":\"\xff\"}", &limits())
            .expect_err("not UTF-8")
            .kind,
        ErrorKind::NotUtf8
    );
}

/// The server answers `{"failure reason", action, info_hash}`: the error says what it could
/// read, even past a syntax error.
#[test]
fn errors_carry_the_action_and_info_hash_when_readable() {
    let e = req(&format!(
        r#"{{"action":"announce","info_hash":{HASH_JSON},"x":]"#
    ))
    .unwrap_err();
    assert_eq!(
        e,
        Error {
            action: Some(Action::Announce),
            info_hash: Some(InfoHash(HASH)),
            kind: ErrorKind::Syntax
        }
    );
    // Read after the fault: not readable.
    let e = req(r#"{"x":],"action":"announce"}"#).unwrap_err();
    assert_eq!((e.action, e.kind), (None, ErrorKind::Syntax));
    let e = req(r#"{"action":"scrape","info_hash":5}"#).unwrap_err();
    assert_eq!(e.action, Some(Action::Scrape));
    let e = req(r#"{"action":"nope"}"#).unwrap_err();
    assert_eq!(e.action, None);
}

// ------------------------------------------------------------------ bounds and determinism

#[test]
fn offers_past_the_limit_are_ignored() {
    let one = format!(r#"{{"offer":{OFFER},"offer_id":{OFFER_ID_JSON}}}"#);
    let list = [one.as_str(); 12].join(",");
    let msg = format!(
        r#"{{"action":"announce","info_hash":{HASH_JSON},"peer_id":{PEER_JSON},"offers":[{list},{{"not":"an offer"}}]}}"#
    );
    let small = Limits {
        max_offers: 3,
        ..limits()
    };
    let Ok(Request::Announce(a)) = parse_request(msg.as_bytes(), &small) else {
        panic!()
    };
    assert_eq!(a.offers.len(), 3);
    assert_eq!(a.offers.iter().count(), 3);
    assert!(a.offers.iter().all(|o| o.offer == OFFER));
    // The ignored ones are still JSON.
    let broken = msg.replace(r#""not":"an offer""#, r#""not":"#);
    assert_eq!(
        parse_request(broken.as_bytes(), &small).unwrap_err().kind,
        ErrorKind::Syntax
    );
}

#[test]
fn limits_hold() {
    let tight = Limits {
        max_message: 200,
        max_offers: 10,
        max_info_hashes: 2,
        max_signal: 30,
    };
    let big = format!(r#"{{"action":"scrape","pad":"{}"}}"#, "x".repeat(200));
    assert_eq!(
        parse_request(big.as_bytes(), &tight).unwrap_err(),
        Error {
            action: None,
            info_hash: None,
            kind: ErrorKind::TooLarge
        }
    );
    let three = r#"{"action":"scrape","info_hash":["aaaaaaaaaaaaaaaaaaaa","aaaaaaaaaaaaaaaaaaaa","aaaaaaaaaaaaaaaaaaaa"]}"#;
    assert_eq!(
        parse_request(three.as_bytes(), &tight).unwrap_err().kind,
        ErrorKind::TooManyInfoHashes
    );
    let signal = |s: &str| {
        format!(
            r#"{{"action":"announce","info_hash":"aaaaaaaaaaaaaaaaaaaa","peer_id":"aaaaaaaaaaaaaaaaaaaa","offers":[{{"offer":{s},"offer_id":"aaaaaaaaaaaaaaaaaaaa"}}]}}"#
        )
    };
    let fits = r#"{"type":"offer","sdp":"12345"}"#; // 30 bytes
    assert!(parse_request(signal(fits).as_bytes(), &tight).is_ok());
    let over = r#"{"type":"offer","sdp":"123456"}"#;
    assert_eq!(
        parse_request(signal(over).as_bytes(), &tight)
            .unwrap_err()
            .kind,
        ErrorKind::SignalTooLarge
    );
    // Depth: the protocol's own nesting fits, 33 levels do not.
    let deep = |n: usize| {
        format!(
            r#"{{"action":"scrape","x":{}{}}}"#,
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    assert!(req(&deep(json::MAX_DEPTH as usize - 1)).is_ok());
    assert_eq!(
        err_kind(&deep(json::MAX_DEPTH as usize)),
        ErrorKind::TooDeep
    );
    let unbounded = Limits {
        max_message: usize::MAX,
        ..limits()
    };
    let abyss = deep(1_000_000);
    assert_eq!(
        parse_request(abyss.as_bytes(), &unbounded)
            .unwrap_err()
            .kind,
        ErrorKind::TooDeep
    );
}

#[test]
fn duplicate_keys_last_wins_unknown_keys_ignored_escaped_keys_match() {
    let msg = format!(
        r#"{{"action":"scrape","info_hash":"bbbbbbbbbbbbbbbbbbbb","extra":{{"a":[1,2,{{"b":null}}],"c":true}},"action":"announce","info\u005fhash":{HASH_JSON},"peer_id":{PEER_JSON},"event":"stopped","event":"completed"}}"#
    );
    let a = announce(&msg);
    assert_eq!(a.info_hash, InfoHash(HASH));
    assert_eq!(a.event, Event::Completed);
}

#[test]
fn numbers_and_events() {
    // (left, uploaded, event) of an announce with `"k":v`.
    let with = |k: &str, v: &str| {
        let msg = format!(
            r#"{{"action":"announce","info_hash":{HASH_JSON},"peer_id":{PEER_JSON},"{k}":{v}}}"#
        );
        let a = announce(&msg);
        (a.left, a.uploaded, a.event)
    };
    assert_eq!(with("left", "1.9").0, Some(1));
    assert_eq!(with("left", "1e3").0, Some(1000));
    assert_eq!(with("left", "1e+30").0, Some(u64::MAX));
    assert_eq!(with("left", "99999999999999999999999").0, Some(u64::MAX));
    assert_eq!(with("left", "-0").0, Some(0));
    assert_eq!(with("left", "0").0, Some(0));
    assert_eq!(with("uploaded", "null").1, None);
    assert_eq!(with("uploaded", "7").1, Some(7));
    for (name, event) in [
        ("\"started\"", Event::Started),
        ("\"stopped\"", Event::Stopped),
        ("\"completed\"", Event::Completed),
        ("\"update\"", Event::None),
        ("\"empty\"", Event::None),
        ("\"paused\"", Event::None),
        ("\"\"", Event::None),
        ("null", Event::None),
    ] {
        assert_eq!(with("event", name).2, event, "{name}");
    }
}

// ------------------------------------------------------------------ never panic

#[test]
fn parse_never_panics_and_round_trips() {
    let mut out = Vec::new();
    write_scrape_reply(
        &mut out,
        [
            (InfoHash(HASH), Counts::default()),
            (InfoHash(PEER), Counts::default()),
        ],
    );
    let scrape_reply = out.clone();
    out.clear();
    write_offer(
        &mut out,
        &InfoHash(HASH),
        &PeerId(PEER),
        &Offer {
            offer_id: OfferId(OFFER_ID),
            offer: OFFER,
        },
    );
    let seeds: Vec<Vec<u8>> = vec![
        format!(
            r#"{{"numwant":2,"left":null,"event":"started","action":"announce","info_hash":{HASH_JSON},"peer_id":{PEER_JSON},"offers":[{{"offer":{OFFER},"offer_id":{OFFER_ID_JSON}}}]}}"#
        )
        .into_bytes(),
        format!(
            r#"{{"action":"announce","info_hash":{HASH_JSON},"peer_id":{PEER_JSON},"to_peer_id":{PEER_JSON},"answer":{ANSWER},"offer_id":{OFFER_ID_JSON}}}"#
        )
        .into_bytes(),
        format!(r#"{{"action":"scrape","info_hash":[{HASH_JSON},{HASH_JSON}]}}"#).into_bytes(),
        scrape_reply,
        out,
        format!(r#"{{"action":"announce","failure reason":"x\n","info_hash":{HASH_JSON}}}"#)
            .into_bytes(),
    ];
    let alphabet = b"{}[]\":,\\u0aA9e.-+ \x00\x7f\xc3\xa9\xff";
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for _ in 0..20_000 {
        let pick = (xorshift(&mut state) % (seeds.len() as u64 + 1)) as usize;
        let data = match seeds.get(pick) {
            Some(seed) => mutate(&mut state, seed, alphabet),
            None => {
                let n = (xorshift(&mut state) % 64) as usize;
                random_bytes(&mut state, alphabet, n)
            }
        };
        check_round_trips(&data);
    }
    for seed in &seeds {
        check_round_trips(seed);
    }
}

/// The offers as they were read first, in three passes: the grammar of the whole message,
/// then the array again, then each offer object again (`None`: no announce grammar to read).
fn offers_before<'a>(msg: &'a str, limits: &Limits) -> Option<Result<Vec<Offer<'a>>, ErrorKind>> {
    fn parse_offer(v: Value<'_>, max_signal: usize) -> Result<Offer<'_>, ErrorKind> {
        let Value::Object(text) = v else {
            return Err(ErrorKind::BadOffer);
        };
        let mut slots = [None; 2];
        collect(
            Reader::new(text),
            &Names::new(["offer", "offer_id"]),
            &mut slots,
        )?;
        let [offer, offer_id] = slots;
        let Some(Value::Object(offer)) = offer else {
            return Err(ErrorKind::BadOffer);
        };
        Ok(Offer {
            offer: signal(offer, max_signal)?,
            offer_id: OfferId(id(offer_id, ErrorKind::BadOfferId)?),
        })
    }
    let (read, [offers]) =
        read_top(msg, limits, &Names::new(["offers"]), |_, r, d| r.value(d)).ok()?;
    read.ok()?;
    Some(match offers {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(text)) => (|| {
            let mut elements = Reader::new(text).array()?;
            let mut list = Vec::new();
            while list.len() < limits.max_offers {
                let Some(v) = elements.next(1)? else {
                    break;
                };
                list.push(parse_offer(v, limits.max_signal)?);
            }
            Ok(list)
        })(),
        Some(_) => Err(ErrorKind::BadOffers),
    })
}

#[test]
fn offers_read_in_one_pass_are_the_offers_read_in_three() {
    let offer = |i: usize| format!(r#"{{"offer":{OFFER},"offer_id":{OFFER_ID_JSON},"n":{i}}}"#);
    let list: Vec<String> = (0..4).map(offer).collect();
    let seeds: Vec<String> = vec![
        format!(
            r#"{{"action":"announce","info_hash":{HASH_JSON},"peer_id":{PEER_JSON},"offers":[{}]}}"#,
            list.join(",")
        ),
        format!(
            r#"{{"offers":[{}, 7],"action":"announce","offers":[{}],"info_hash":{HASH_JSON},"peer_id":{PEER_JSON}}}"#,
            list[0], list[1]
        ),
        format!(
            r#"{{"action":"announce","info_hash":{HASH_JSON},"peer_id":{PEER_JSON},"offers":[{{"offer_id":{OFFER_ID_JSON},"offer":{{"sdp":[[[1]]]}}}},{{"offer":1}}]}}"#
        ),
    ];
    let alphabet = b"{}[]\":,\\u0aA9e.-+ 17";
    let mut state = 0x0FFE_2500_0000_0001u64;
    for max_offers in [0, 1, 2, 10] {
        let limits = Limits {
            max_offers,
            max_signal: OFFER.len() + (max_offers % 2),
            ..limits()
        };
        for round in 0..20_000 {
            let seed = seeds[round % seeds.len()].as_bytes();
            let data = if round < seeds.len() {
                seed.to_vec()
            } else {
                mutate(&mut state, seed, alphabet)
            };
            let Ok(msg) = std::str::from_utf8(&data) else {
                continue;
            };
            let before = offers_before(msg, &limits);
            match parse_request_text(msg, &limits) {
                Ok(Request::Announce(a)) => {
                    let now: Vec<Offer<'_>> = a.offers.iter().collect();
                    assert_eq!(now.len(), a.offers.len(), "{msg}");
                    assert_eq!(before, Some(Ok(now)), "{msg}");
                }
                Err(e)
                    if matches!(
                        e.kind,
                        ErrorKind::BadOffers
                            | ErrorKind::BadOffer
                            | ErrorKind::BadOfferId
                            | ErrorKind::SignalTooLarge
                    ) =>
                {
                    assert_eq!(before, Some(Err(e.kind)), "{msg}");
                }
                // Refused before its offers were looked at, or no announce.
                _ => {}
            }
        }
    }
}

#[test]
fn binary_strings_of_any_length_are_written_byte_for_byte() {
    // The writer as it was first written, one byte at a time.
    fn reference(bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![b'"'];
        for &b in bytes {
            match b {
                b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                0x08 => out.extend_from_slice(b"\\b"),
                0x09 => out.extend_from_slice(b"\\t"),
                0x0A => out.extend_from_slice(b"\\n"),
                0x0C => out.extend_from_slice(b"\\f"),
                0x0D => out.extend_from_slice(b"\\r"),
                0x00..=0x1F => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
                0x20..=0x7F => out.push(b),
                _ => out.extend_from_slice(&[0xC0 | (b >> 6), 0x80 | (b & 0x3F)]),
            }
        }
        out.push(b'"');
        out
    }
    let mut state = 0xB1_0000_0000_0001u64;
    for len in [0, 1, 19, 20, 21, 39, 40, 41, 100] {
        for _ in 0..200 {
            let bytes = random_bytes(&mut state, &[], len);
            let mut out = b"x".to_vec();
            write_binary(&mut out, &bytes);
            assert_eq!(out[1..], reference(&bytes)[..], "{bytes:?}");
        }
        let all: Vec<u8> = (0..=255u8).cycle().take(len.max(256)).collect();
        let mut out = Vec::new();
        write_binary(&mut out, &all);
        assert_eq!(out, reference(&all));
    }
}

#[test]
fn binary_strings_are_written_as_by_the_writer_that_branched_on_each_byte() {
    // The writer before its table, verbatim, `u00` included.
    fn before(out: &mut Vec<u8>, bytes: &[u8]) {
        fn u00(b: u8) -> [u8; 6] {
            let hex = |n: u8| if n < 10 { b'0' + n } else { b'a' + n - 10 };
            [b'\\', b'u', b'0', b'0', hex(b >> 4), hex(b & 0xF)]
        }
        const IN: usize = 20;
        out.push(b'"');
        for chunk in bytes.chunks(IN) {
            let mut buf = [0u8; 6 * IN];
            let mut n = 0;
            let mut put = |s: &[u8]| {
                for &x in s {
                    if let Some(slot) = buf.get_mut(n) {
                        *slot = x;
                    }
                    n += 1;
                }
            };
            for &b in chunk {
                match b {
                    b'"' | b'\\' => put(&[b'\\', b]),
                    0x08 => put(b"\\b"),
                    0x09 => put(b"\\t"),
                    0x0A => put(b"\\n"),
                    0x0C => put(b"\\f"),
                    0x0D => put(b"\\r"),
                    0x00..=0x1F => put(&u00(b)),
                    0x20..=0x7F => put(&[b]),
                    _ => put(&[0xC0 | (b >> 6), 0x80 | (b & 0x3F)]),
                }
            }
            out.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
        out.push(b'"');
    }
    let same = |bytes: &[u8]| {
        let (mut new, mut old) = (b"x".to_vec(), b"x".to_vec());
        write_binary(&mut new, bytes);
        before(&mut old, bytes);
        assert_eq!(new, old, "{bytes:?}");
    };
    for b in 0..=255u8 {
        same(&[b]);
        // Every byte also as the last of a full chunk and the first of the next.
        let mut id = [b'a'; 21];
        id[19] = b;
        id[20] = b;
        same(&id);
    }
    let mut state = 0xE5C_0000_0000_0001u64;
    for len in 0..100 {
        for _ in 0..100 {
            same(&random_bytes(&mut state, &[], len));
        }
    }
}
