//! Bencode (BEP 3): a hand-written writer for the hot reply path and a bounded decoder.
//!
//! The writer appends straight into a reused `Vec<u8>`: a tracker reply is a handful of keys, so
//! a generic serializer would only add cost. The decoder is for tests and tooling; it allocates
//! `Vec`s for lists and dicts but bounds nesting so hostile input cannot exhaust the stack.

/// Appends `i<v>e`.
pub fn write_int(out: &mut Vec<u8>, v: i64) {
    let mut buf = itoa::Buffer::new();
    out.push(b'i');
    out.extend_from_slice(buf.format(v).as_bytes());
    out.push(b'e');
}

/// Appends `<len>:<b>`.
pub fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(b.len()).as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

/// A decoded bencode value borrowing its byte strings from the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Int(i64),
    Bytes(&'a [u8]),
    List(Vec<Value<'a>>),
    /// Keys in input order; duplicates and unsorted keys are kept, because opentracker's scrape
    /// replies have both.
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

impl Value<'_> {
    /// The first value under `key` if this is a dict.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'_>> {
        match self {
            Value::Dict(entries) => entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[Value<'_>]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&[(&[u8], Value<'_>)]> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }
}

/// Why [`decode`] rejected its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside a value.
    UnexpectedEnd,
    /// A byte that cannot start or continue a value here.
    UnexpectedByte,
    /// An integer that is empty, has leading zeros, is `-0`, or does not fit an `i64`.
    BadInt,
    /// A string length that is malformed or longer than the input.
    BadLength,
    /// A dict key that is not a byte string.
    BadKey,
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Bytes after the one top-level value.
    TrailingBytes,
}

impl DecodeError {
    pub fn reason(self) -> &'static str {
        match self {
            DecodeError::UnexpectedEnd => "bencode: input ends inside a value",
            DecodeError::UnexpectedByte => "bencode: unexpected byte",
            DecodeError::BadInt => "bencode: malformed integer",
            DecodeError::BadLength => "bencode: malformed or too long string length",
            DecodeError::BadKey => "bencode: dict key is not a byte string",
            DecodeError::TooDeep => "bencode: nesting too deep",
            DecodeError::TrailingBytes => "bencode: bytes after the value",
        }
    }
}

impl core::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for DecodeError {}

/// Decodes `input`, which must hold exactly one value. Lists and dicts nest at most
/// [`MAX_DEPTH`] deep. Integers must be canonical (no leading zeros, no `-0`); dict keys need not
/// be sorted.
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    let mut d = Decoder { input, pos: 0 };
    let v = d.value(0)?;
    if d.pos != input.len() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(v)
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn peek(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::UnexpectedEnd)
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, DecodeError> {
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                self.int().map(Value::Int)
            }
            b'0'..=b'9' => self.bytes().map(Value::Bytes),
            b'l' => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
                self.pos += 1;
                let mut entries = Vec::new();
                loop {
                    match self.peek()? {
                        b'e' => break,
                        b'0'..=b'9' => {}
                        _ => return Err(DecodeError::BadKey),
                    }
                    let k = self.bytes()?;
                    let v = self.value(depth + 1)?;
                    entries.push((k, v));
                }
                self.pos += 1;
                Ok(Value::Dict(entries))
            }
            _ => Err(DecodeError::UnexpectedByte),
        }
    }

    /// Parses `<digits>e` after the `i`.
    fn int(&mut self) -> Result<i64, DecodeError> {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let end = rest
            .iter()
            .position(|&b| b == b'e')
            .ok_or(DecodeError::UnexpectedEnd)?;
        let digits = rest.get(..end).unwrap_or_default();
        let (neg, abs) = match digits.split_first() {
            Some((b'-', abs)) => (true, abs),
            _ => (false, digits),
        };
        let canonical = match abs {
            [] => false,
            [b'0'] => !neg,
            [b'0', ..] => false,
            _ => abs.iter().all(u8::is_ascii_digit),
        };
        if !canonical {
            return Err(DecodeError::BadInt);
        }
        // Accumulate negatively so i64::MIN parses.
        let mut v: i64 = 0;
        for &b in abs {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_sub(i64::from(b - b'0')))
                .ok_or(DecodeError::BadInt)?;
        }
        if !neg {
            v = v.checked_neg().ok_or(DecodeError::BadInt)?;
        }
        self.pos += end + 1;
        Ok(v)
    }

    /// Parses `<len>:<bytes>`.
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let colon = rest
            .iter()
            .position(|&b| b == b':')
            .ok_or(DecodeError::UnexpectedEnd)?;
        let digits = rest.get(..colon).unwrap_or_default();
        if digits.is_empty()
            || (digits.len() > 1 && digits.first() == Some(&b'0'))
            || !digits.iter().all(u8::is_ascii_digit)
        {
            return Err(DecodeError::BadLength);
        }
        let mut len: usize = 0;
        for &b in digits {
            len = len
                .checked_mul(10)
                .and_then(|l| l.checked_add(usize::from(b - b'0')))
                .ok_or(DecodeError::BadLength)?;
        }
        let start = colon + 1;
        let end = start.checked_add(len).ok_or(DecodeError::BadLength)?;
        let b = rest.get(start..end).ok_or(DecodeError::BadLength)?;
        self.pos += end;
        Ok(b)
    }
}

/// Deepest list/dict nesting [`decode`] accepts; tracker messages nest at most 3 deep.
pub const MAX_DEPTH: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{mutate, random_bytes, xorshift};

    #[test]
    fn writer_output() {
        let mut out = Vec::new();
        write_int(&mut out, 0);
        write_int(&mut out, -42);
        write_int(&mut out, i64::MAX);
        write_bytes(&mut out, b"");
        write_bytes(&mut out, b"spam");
        assert_eq!(out, b"i0ei-42ei9223372036854775807e0:4:spam");
    }

    #[test]
    fn round_trip_announce_reply() {
        let mut out = Vec::new();
        out.push(b'd');
        write_bytes(&mut out, b"complete");
        write_int(&mut out, 1);
        write_bytes(&mut out, b"interval");
        write_int(&mut out, 1800);
        write_bytes(&mut out, b"peers");
        write_bytes(&mut out, b"\x7f\x00\x00\x01\x1a\xe1");
        write_bytes(&mut out, b"list");
        out.push(b'l');
        write_int(&mut out, i64::MIN);
        write_bytes(&mut out, b"x");
        out.extend_from_slice(b"dee");
        out.push(b'e');
        let v = decode(&out).unwrap();
        assert_eq!(v.get(b"complete").and_then(Value::as_int), Some(1));
        assert_eq!(v.get(b"interval").and_then(Value::as_int), Some(1800));
        assert_eq!(
            v.get(b"peers").and_then(Value::as_bytes),
            Some(&b"\x7f\x00\x00\x01\x1a\xe1"[..])
        );
        let list = v.get(b"list").and_then(Value::as_list).unwrap();
        assert_eq!(list[0], Value::Int(i64::MIN));
        assert_eq!(list[1], Value::Bytes(b"x"));
        assert_eq!(list[2], Value::Dict(Vec::new()));
        assert_eq!(v.get(b"missing"), None);
    }

    #[test]
    fn unsorted_and_duplicate_keys_are_kept() {
        let v = decode(b"d1:bi1e1:ai2e1:bi3ee").unwrap();
        assert_eq!(v.as_dict().unwrap().len(), 3);
        assert_eq!(v.get(b"b").and_then(Value::as_int), Some(1));
    }

    #[test]
    fn rejects_malformed() {
        let cases: &[(&[u8], DecodeError)] = &[
            (b"", DecodeError::UnexpectedEnd),
            (b"i", DecodeError::UnexpectedEnd),
            (b"ie", DecodeError::BadInt),
            (b"i-e", DecodeError::BadInt),
            (b"i-0e", DecodeError::BadInt),
            (b"i03e", DecodeError::BadInt),
            (b"i1x2e", DecodeError::BadInt),
            (b"i9223372036854775808e", DecodeError::BadInt),
            (b"5:abc", DecodeError::BadLength),
            (b"01:a", DecodeError::BadLength),
            (b"99999999999999999999999:a", DecodeError::BadLength),
            (b"x", DecodeError::UnexpectedByte),
            (b"di1ei2ee", DecodeError::BadKey),
            (b"l", DecodeError::UnexpectedEnd),
            (b"i1ei2e", DecodeError::TrailingBytes),
        ];
        for (input, err) in cases {
            assert_eq!(
                decode(input),
                Err(*err),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn depth_is_bounded() {
        let ok = [b"l".repeat(MAX_DEPTH), b"e".repeat(MAX_DEPTH)].concat();
        assert!(decode(&ok).is_ok());
        let deep = [b"l".repeat(MAX_DEPTH + 1), b"e".repeat(MAX_DEPTH + 1)].concat();
        assert_eq!(decode(&deep), Err(DecodeError::TooDeep));
        assert_eq!(decode(&b"l".repeat(100_000)), Err(DecodeError::TooDeep));
    }

    #[test]
    fn never_panics() {
        let valid: &[&[u8]] = &[
            b"d8:completei1e10:downloadedi0e10:incompletei0e8:intervali1800e5:peers6:\x7f\x00\x00\x01\x1a\xe1e",
            b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei5eeee",
            b"li-1e0:ledee",
        ];
        for v in valid {
            assert!(
                decode(v).is_ok(),
                "{:?} {:?}",
                String::from_utf8_lossy(v),
                decode(v)
            );
            for n in 0..v.len() {
                assert!(decode(&v[..n]).is_err());
            }
        }
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let alphabet = b"ilde0123456789:-x";
        for _ in 0..20_000 {
            let base = valid[(xorshift(&mut rng) % valid.len() as u64) as usize];
            let _ = decode(&mutate(&mut rng, base, alphabet));
            let len = (xorshift(&mut rng) % 64) as usize;
            let random = random_bytes(&mut rng, alphabet, len);
            let _ = decode(&random);
        }
    }
}
