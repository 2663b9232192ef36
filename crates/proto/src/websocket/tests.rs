use super::*;
use crate::testutil::{random_bytes, xorshift};

const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];
const MAX: usize = 64 * 1024;

fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_client_frame(&mut out, opcode, fin, payload, MASK);
    out
}

/// Reads every frame of `bytes` with a fresh reader: the messages (as owned values) or the
/// first close code.
fn read_all(bytes: &[u8], max: usize) -> Result<Vec<Owned>, CloseCode> {
    let mut r = Reader::new();
    let mut buf = bytes.to_vec();
    let mut at = 0;
    let mut out = Vec::new();
    while at < buf.len() {
        let rest = &mut buf[at..];
        match r.next(rest, max)? {
            Next::Message(m, n) => {
                out.push(Owned::from(m));
                at += n;
            }
            Next::Fragment(n) => at += n,
            Next::Incomplete(_) => panic!("incomplete at {at}"),
        }
    }
    Ok(out)
}

#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Text(String),
    Binary,
    Ping(Vec<u8>),
    Pong,
    Close(Option<u16>),
}

impl From<Message<'_>> for Owned {
    fn from(m: Message<'_>) -> Self {
        match m {
            Message::Text(s) => Owned::Text(s.to_owned()),
            Message::Binary => Owned::Binary,
            Message::Ping(p) => Owned::Ping(p.to_vec()),
            Message::Pong => Owned::Pong,
            Message::Close(c) => Owned::Close(c),
        }
    }
}

#[test]
fn text_frames_of_every_length_form_read_back() {
    for len in [0, 1, 125, 126, 127, 65_535, 65_536, MAX] {
        let text = "é".repeat(len / 2) + &"a".repeat(len % 2);
        let f = frame(OP_TEXT, true, text.as_bytes());
        let head = f.len() - text.len();
        assert_eq!(
            head,
            match text.len() {
                0..=125 => 6,
                126..=65_535 => 8,
                _ => 14,
            }
        );
        assert_eq!(read_all(&f, MAX), Ok(vec![Owned::Text(text)]), "{len}");
    }
}

#[test]
fn every_prefix_is_incomplete_and_says_how_much_more_is_needed() {
    let f = frame(OP_TEXT, true, &[b'x'; 300]);
    let mut r = Reader::new();
    for cut in 0..f.len() {
        let mut part = f[..cut].to_vec();
        match r.next(&mut part, MAX) {
            Ok(Next::Incomplete(need)) => assert!(need > cut && need <= f.len(), "{cut}: {need}"),
            other => panic!("{cut}: {other:?}"),
        }
    }
    let mut whole = f.clone();
    assert!(
        matches!(r.next(&mut whole, MAX), Ok(Next::Message(Message::Text(_), n)) if n == f.len())
    );
}

#[test]
fn frames_that_break_the_protocol_are_refused() {
    let text = frame(OP_TEXT, true, b"hi");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unmasked", {
            let mut f = text.clone();
            f[1] &= 0x7F;
            f
        }),
        ("reserved bit", {
            let mut f = text.clone();
            f[0] |= 0x40;
            f
        }),
        ("reserved data opcode", frame(0x3, true, b"x")),
        ("reserved control opcode", frame(0xB, true, b"x")),
        ("fragmented ping", frame(OP_PING, false, b"x")),
        ("long ping", frame(OP_PING, true, &[0; 126])),
        ("continuation first", frame(OP_CONTINUE, true, b"x")),
        ("text inside a fragmented message", {
            let mut f = frame(OP_TEXT, false, b"a");
            f.extend(frame(OP_TEXT, true, b"b"));
            f
        }),
        ("one-byte close", frame(OP_CLOSE, true, &[3])),
        ("close 1005", frame(OP_CLOSE, true, &1005u16.to_be_bytes())),
        ("close 999", frame(OP_CLOSE, true, &999u16.to_be_bytes())),
        ("close 2000", frame(OP_CLOSE, true, &2000u16.to_be_bytes())),
        ("close 5000", frame(OP_CLOSE, true, &5000u16.to_be_bytes())),
        ("length with its top bit", {
            let mut f = vec![0x81, 0xFF];
            f.extend_from_slice(&(1u64 << 63).to_be_bytes());
            f.extend_from_slice(&MASK);
            f
        }),
    ];
    for (what, f) in cases {
        assert_eq!(read_all(&f, MAX), Err(CloseCode::Protocol), "{what}");
    }
}

#[test]
fn text_must_be_utf8_and_close_reasons_too() {
    assert_eq!(
        read_all(&frame(OP_TEXT, true, b"a\xFFb"), MAX),
        Err(CloseCode::Invalid)
    );
    let mut close = 1000u16.to_be_bytes().to_vec();
    close.extend_from_slice(b"\xC3");
    assert_eq!(
        read_all(&frame(OP_CLOSE, true, &close), MAX),
        Err(CloseCode::Invalid)
    );
    // A character split between fragments is whole in the message.
    let mut f = frame(OP_TEXT, false, b"caf\xC3");
    f.extend(frame(OP_CONTINUE, true, b"\xA9"));
    assert_eq!(read_all(&f, MAX), Ok(vec![Owned::Text("café".into())]));
    let mut f = frame(OP_TEXT, false, b"caf\xC3");
    f.extend(frame(OP_CONTINUE, true, b"!"));
    assert_eq!(read_all(&f, MAX), Err(CloseCode::Invalid));
}

#[test]
fn sizes_are_refused_from_the_header_before_the_payload_comes() {
    let f = frame(OP_TEXT, true, &[b'a'; 1001]);
    let mut head = f[..8].to_vec();
    assert_eq!(Reader::new().next(&mut head, 1000), Err(CloseCode::Size));
    assert_eq!(read_all(&f, 1001).map(|m| m.len()), Ok(1));
    // Fragments count together.
    let mut f = frame(OP_TEXT, false, &[b'a'; 600]);
    f.extend(frame(OP_CONTINUE, true, &[b'a'; 600]));
    assert_eq!(read_all(&f, 1000), Err(CloseCode::Size));
    assert_eq!(read_all(&f, 1200).map(|m| m.len()), Ok(1));
}

#[test]
fn fragments_join_with_control_frames_between_them() {
    let mut f = frame(OP_TEXT, false, b"{\"a\":");
    f.extend(frame(OP_PING, true, b"p"));
    f.extend(frame(OP_CONTINUE, false, b"1"));
    f.extend(frame(OP_CONTINUE, true, b"}"));
    f.extend(frame(OP_BINARY, false, b"x"));
    f.extend(frame(OP_CONTINUE, true, b"y"));
    f.extend(frame(OP_TEXT, true, b"next"));
    f.extend(frame(OP_PONG, true, b""));
    f.extend(frame(OP_CLOSE, true, &[]));
    f.extend(frame(OP_CLOSE, true, b"\x0f\xa0bye"));
    assert_eq!(
        read_all(&f, MAX),
        Ok(vec![
            Owned::Ping(b"p".to_vec()),
            Owned::Text("{\"a\":1}".into()),
            Owned::Binary,
            Owned::Text("next".into()),
            Owned::Pong,
            Owned::Close(None),
            Owned::Close(Some(4000)),
        ])
    );
}

#[test]
fn unmask_is_xor_with_the_mask_repeated() {
    let mut state = 5;
    for len in 0..70 {
        let data = random_bytes(&mut state, &[], len);
        let mask = [
            xorshift(&mut state) as u8,
            xorshift(&mut state) as u8,
            7,
            0xFF,
        ];
        let mut fast = data.clone();
        unmask(&mut fast, mask);
        let slow: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        assert_eq!(fast, slow, "{len}");
    }
}

#[test]
fn server_frames_have_the_right_headers() {
    let mut out = Vec::new();
    write_text(&mut out, &[b'a'; 126]);
    assert_eq!(&out[..4], &[0x81, 126, 0, 126]);
    out.clear();
    write_text(&mut out, &vec![b'a'; 65_536]);
    assert_eq!(&out[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    out.clear();
    write_ping(&mut out);
    write_pong(&mut out, b"xy");
    write_close(&mut out, Some(1009));
    write_close(&mut out, None);
    assert_eq!(
        out,
        [0x89, 0, 0x8A, 2, b'x', b'y', 0x88, 2, 0x03, 0xF1, 0x88, 0]
    );
}

#[test]
fn random_bytes_never_panic() {
    let mut state = 99;
    let valid = frame(OP_TEXT, true, b"{\"action\":\"announce\"}");
    for i in 0..50_000 {
        let mut buf = if i % 2 == 0 {
            {
                let n = (xorshift(&mut state) % 64) as usize;
                random_bytes(&mut state, &[], n)
            }
        } else {
            let mut f = valid.clone();
            let at = (xorshift(&mut state) as usize) % f.len();
            f[at] ^= 1 << (xorshift(&mut state) % 8);
            f
        };
        let mut r = Reader::new();
        let mut at = 0;
        while at < buf.len() {
            match r.next(&mut buf[at..], 1024) {
                Ok(Next::Message(_, n) | Next::Fragment(n)) => {
                    assert!(n > 0);
                    at += n;
                }
                Ok(Next::Incomplete(need)) => {
                    assert!(need > buf.len() - at);
                    break;
                }
                Err(_) => break,
            }
        }
    }
}
