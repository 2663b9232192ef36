//! Hexadecimal digits: info_hashes in access lists, statedumps and full scrapes, and shared keys.
//!
//! Pure and panic-free: decoding answers `None` for a wrong length or a non-hex digit.

use crate::InfoHash;

/// The value of one hex digit (`0-9`, `a-f`, `A-F`).
pub fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Appends `bytes` as uppercase hex, as opentracker's `to_hex`.
pub fn push_upper(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(upper_digit(b >> 4));
        out.push(upper_digit(b & 15));
    }
}

/// Decodes `digits` into `out`; `None` unless `digits` is exactly two hex digits per byte of
/// `out`. `out` is unspecified after a `None`.
pub fn decode_into(digits: &[u8], out: &mut [u8]) -> Option<()> {
    if digits.len() != 2 * out.len() {
        return None;
    }
    for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let &[hi, lo] = pair else {
            return None;
        };
        *o = digit(hi)? << 4 | digit(lo)?;
    }
    Some(())
}

/// Decodes an even number of hex digits; `None` for an odd count or a non-hex digit.
pub fn decode(digits: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0u8; digits.len() / 2];
    decode_into(digits, &mut out)?;
    Some(out)
}

impl InfoHash {
    /// An info_hash from exactly 40 hex digits, either case.
    pub fn from_hex(digits: &[u8]) -> Option<InfoHash> {
        let mut h = [0u8; 20];
        decode_into(digits, &mut h)?;
        Some(InfoHash(h))
    }
}

fn upper_digit(n: u8) -> u8 {
    match n {
        0..=9 => b'0' + n,
        _ => b'A' + (n & 15) - 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_round_trips_in_upper_and_lower_case() {
        let all: Vec<u8> = (0..=255).collect();
        let mut up = Vec::new();
        push_upper(&mut up, &all);
        assert_eq!(up.len(), 512);
        for (b, pair) in all.iter().zip(up.chunks(2)) {
            assert_eq!(pair, format!("{b:02X}").as_bytes());
        }
        assert_eq!(decode(&up).unwrap(), all);
        assert_eq!(decode(&up.to_ascii_lowercase()).unwrap(), all);
    }

    #[test]
    fn digit_accepts_exactly_the_hex_alphabet() {
        for c in 0..=255u8 {
            let want = (c as char).to_digit(16).map(|d| d as u8);
            assert_eq!(digit(c), want, "{c:#x}");
        }
    }

    #[test]
    fn bad_digits_and_wrong_lengths_are_none() {
        assert_eq!(decode(b""), Some(vec![]));
        assert_eq!(decode(b"a"), None);
        assert_eq!(decode(b"abc"), None);
        assert_eq!(decode(b"0g"), None);
        assert_eq!(decode(b"g0"), None);
        assert_eq!(decode(b"0 "), None);
        assert_eq!(decode(b"\xff0"), None);
        let mut two = [0u8; 2];
        assert_eq!(decode_into(b"abcd", &mut two), Some(()));
        assert_eq!(two, [0xab, 0xcd]);
        assert_eq!(decode_into(b"abc", &mut two), None);
        assert_eq!(decode_into(b"abcdef", &mut two), None);
    }

    #[test]
    fn info_hash_from_40_digits_only() {
        let text = b"0123456789abcdefABCDEF0123456789abcdef01";
        let h = InfoHash::from_hex(text).unwrap();
        assert_eq!(h.0[0], 0x01);
        assert_eq!(h.0[19], 0x01);
        assert_eq!(h.0[5], 0xab);
        let mut up = Vec::new();
        push_upper(&mut up, &h.0);
        assert_eq!(up, text.to_ascii_uppercase());
        assert_eq!(InfoHash::from_hex(&text[..39]), None);
        assert_eq!(InfoHash::from_hex(&[text.as_slice(), b"0"].concat()), None);
        assert_eq!(InfoHash::from_hex(&[b'0'; 42][..]), None);
        let mut bad = *text;
        bad[39] = b'z';
        assert_eq!(InfoHash::from_hex(&bad), None);
    }
}
