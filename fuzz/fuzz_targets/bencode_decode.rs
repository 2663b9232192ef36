//! The bounded bencode decoder (`bencode::decode`).
//!
//! Beyond "no panic" (and no stack overflow: nesting is bounded): the decoder accepts only
//! canonical input, so re-encoding what it decoded with the tracker's writers must give back
//! the input byte for byte.
#![no_main]

use ferrotracker_proto::bencode::{self, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = bencode::decode(data) else {
        return;
    };
    let mut out = Vec::with_capacity(data.len());
    encode(&v, &mut out);
    assert_eq!(out, data);
});

fn encode(v: &Value<'_>, out: &mut Vec<u8>) {
    match v {
        Value::Int(i) => bencode::write_int(out, *i),
        Value::Bytes(b) => bencode::write_bytes(out, b),
        Value::List(items) => {
            out.push(b'l');
            for i in items {
                encode(i, out);
            }
            out.push(b'e');
        }
        Value::Dict(entries) => {
            out.push(b'd');
            for (k, v) in entries {
                bencode::write_bytes(out, k);
                encode(v, out);
            }
            out.push(b'e');
        }
    }
}
