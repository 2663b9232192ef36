//! WebSocket frames as the tracker reads them from a client (`websocket::Reader`), a frame at a
//! time from the bytes a connection received, as the server does.
//!
//! Beyond "no panic": the reader never asks for fewer bytes than it has, consumes at least one
//! byte per frame, never hands out a message larger than the limit, and reads the same bytes
//! the same way whether they arrive at once or in two parts.
#![no_main]

use ferrotracker_proto::websocket::{Message, Next, Reader};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 4096;

/// Every message of `data` (Debug-formatted, owned) and how reading ended.
fn read(data: &[u8], split: usize) -> (Vec<String>, String) {
    let mut r = Reader::new();
    let mut buf = data.get(..split).unwrap_or(data).to_vec();
    let mut rest = data.get(split..).unwrap_or(&[]);
    let mut out = Vec::new();
    loop {
        let have = buf.len();
        match r.next(&mut buf, MAX) {
            Ok(Next::Message(m, n)) => {
                assert!(n > 0 && n <= have);
                if let Message::Text(t) = m {
                    assert!(t.len() <= MAX);
                }
                out.push(format!("{m:?}"));
                buf.drain(..n);
            }
            Ok(Next::Fragment(n)) => {
                assert!(n > 0 && n <= have);
                buf.drain(..n);
            }
            Ok(Next::Incomplete(need)) => {
                assert!(need > have);
                if rest.is_empty() {
                    return (out, format!("incomplete {}", buf.len()));
                }
                buf.extend_from_slice(rest);
                rest = &[];
            }
            Err(code) => return (out, format!("{code:?}")),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let whole = read(data, data.len());
    let split = data.first().map_or(0, |&b| usize::from(b)) % (data.len() + 1);
    assert_eq!(read(data, split), whole);
});
