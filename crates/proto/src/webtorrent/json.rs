//! The small JSON reader under [`super`]: validates RFC 8259 grammar and hands out borrowed
//! spans, never decoding a string into an allocation.
//!
//! A value is read once to check it and to learn its extent ([`Reader::value`]); a caller then
//! re-reads the spans it cares about (an offer's members, a scrape's hashes) with a fresh
//! [`Reader`], which cannot fail on text that was checked. Depth is bounded by [`MAX_DEPTH`] so
//! recursion is bounded whatever the input.

use super::ErrorKind;

/// Deepest nesting of objects and arrays accepted (the protocol needs 4).
pub const MAX_DEPTH: u32 = 32;

/// A value's kind and, for composite values and strings, its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Null,
    Bool,
    /// The number's text, grammar checked.
    Number(&'a str),
    Str(JsonStr<'a>),
    /// The whole object, braces included.
    Object(&'a str),
    /// The whole array, brackets included.
    Array(&'a str),
}

/// A JSON string's content between its quotes, escapes still in it (checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct JsonStr<'a>(pub &'a str);

impl<'a> JsonStr<'a> {
    /// The string's UTF-16 code units where escaped, scalar values where written raw: what a
    /// comparison with an ASCII name or a one-byte-per-char binary string needs.
    pub fn units(self) -> Units<'a> {
        Units(self.0)
    }

    /// Whether the decoded string is `name` (ASCII).
    pub fn is(self, name: &str) -> bool {
        if !self.0.contains('\\') {
            return self.0 == name;
        }
        self.units().eq(name.bytes().map(u32::from))
    }

    /// The 20 bytes of a binary string (one char per byte, U+0000..U+00FF, as JavaScript's
    /// `Buffer.toString('binary')` makes them), or `None` for any other string.
    pub fn bin20(self) -> Option<[u8; 20]> {
        // What `units` gives, read straight from the bytes: an id is in every message, and
        // most of its chars are raw or `\u00XX`.
        let s = self.0.as_bytes();
        let mut out = [0u8; 20];
        let mut i = 0;
        for slot in &mut out {
            let b = *s.get(i)?;
            *slot = match b {
                b'\\' => {
                    let (unit, len) = escape(s.get(i + 1..)?)?;
                    i += 1 + len;
                    u8::try_from(unit).ok()?
                }
                0..=0x7F => {
                    i += 1;
                    b
                }
                // U+0080..U+00FF in UTF-8 (the text is valid UTF-8: a continuation follows).
                0xC2 | 0xC3 => {
                    let c = *s.get(i + 1)?;
                    i += 2;
                    ((b & 0x03) << 6) | (c & 0x3F)
                }
                _ => return None,
            };
        }
        (i == s.len()).then_some(out)
    }

    /// Appends the decoded string (surrogate pairs joined, a lone surrogate as U+FFFD).
    pub fn decode_into(self, out: &mut String) {
        let mut units = self.units().peekable();
        while let Some(u) = units.next() {
            let c = if (0xD800..0xDC00).contains(&u) {
                match units.peek() {
                    Some(&lo) if (0xDC00..0xE000).contains(&lo) => {
                        units.next();
                        char::from_u32(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00))
                    }
                    _ => None,
                }
            } else {
                char::from_u32(u)
            };
            out.push(c.unwrap_or(char::REPLACEMENT_CHARACTER));
        }
    }
}

/// See [`JsonStr::units`].
#[derive(Clone, Debug)]
pub struct Units<'a>(&'a str);

impl Iterator for Units<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let mut chars = self.0.chars();
        let c = chars.next()?;
        if c == '\\' {
            let (unit, len) = escape(self.0.as_bytes().get(1..)?)?;
            self.0 = self.0.get(1 + len..)?;
            return Some(unit);
        }
        self.0 = chars.as_str();
        Some(u32::from(c))
    }
}

/// The UTF-16 code unit of the escape whose text (after its backslash) starts `s`, and that
/// text's length.
fn escape(s: &[u8]) -> Option<(u32, usize)> {
    Some(match *s.first()? {
        b'b' => (0x08, 1),
        b'f' => (0x0C, 1),
        b'n' => (0x0A, 1),
        b'r' => (0x0D, 1),
        b't' => (0x09, 1),
        b'u' => {
            let mut v = 0u32;
            for &h in s.get(1..5)? {
                v = v * 16 + char::from(h).to_digit(16)?;
            }
            (v, 5)
        }
        // They stand for themselves; checked text has no other escape.
        c @ (b'"' | b'\\' | b'/') => (u32::from(c), 1),
        _ => return None,
    })
}

/// A cursor over checked UTF-8 text.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(text: &'a str) -> Self {
        Reader { text, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Skips white space, then `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let hit = self.peek() == Some(c);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect(&mut self, c: u8) -> Result<(), ErrorKind> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(ErrorKind::Syntax)
        }
    }

    /// Whether only white space is left.
    pub fn at_end(&mut self) -> bool {
        self.ws();
        self.pos >= self.text.len()
    }

    fn span(&self, start: usize) -> &'a str {
        self.text.get(start..self.pos).unwrap_or_default()
    }

    /// Whether the next value is an object (white space skipped).
    pub fn at_object(&mut self) -> bool {
        self.ws();
        self.peek() == Some(b'{')
    }

    /// Whether the next value is an array (white space skipped).
    pub fn at_array(&mut self) -> bool {
        self.ws();
        self.peek() == Some(b'[')
    }

    /// Where the reader is, for [`Reader::since`].
    pub fn mark(&mut self) -> usize {
        self.ws();
        self.pos
    }

    /// The text from `mark` (a [`Reader::mark`]) to here.
    pub fn since(&self, mark: usize) -> &'a str {
        self.span(mark)
    }

    /// Reads and checks one value at nesting `depth` (the top level is 1).
    pub fn value(&mut self, depth: u32) -> Result<Value<'a>, ErrorKind> {
        if depth > MAX_DEPTH {
            return Err(ErrorKind::TooDeep);
        }
        self.ws();
        let start = self.pos;
        match self.peek() {
            Some(b'{') => {
                let mut members = self.object()?;
                while members.next(depth)?.is_some() {}
                *self = members.r;
                Ok(Value::Object(self.span(start)))
            }
            Some(b'[') => {
                let mut elements = self.array()?;
                while elements.next(depth)?.is_some() {}
                *self = elements.r;
                Ok(Value::Array(self.span(start)))
            }
            Some(b'"') => self.string().map(Value::Str),
            Some(b't') => self.literal("true").map(|()| Value::Bool),
            Some(b'f') => self.literal("false").map(|()| Value::Bool),
            Some(b'n') => self.literal("null").map(|()| Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number().map(Value::Number),
            _ => Err(ErrorKind::Syntax),
        }
    }

    /// Starts reading an object's members; the reader stays where it was.
    pub fn object(&mut self) -> Result<Members<'a>, ErrorKind> {
        let mut r = *self;
        r.expect(b'{')?;
        Ok(Members { r, first: true })
    }

    /// Starts reading an array's elements; the reader stays where it was.
    pub fn array(&mut self) -> Result<Elements<'a>, ErrorKind> {
        let mut r = *self;
        r.expect(b'[')?;
        Ok(Elements { r, first: true })
    }

    /// Passes over the value at the reader in text that [`Reader::value`] has checked already
    /// (an offer the caller does not use): strings and nesting are followed, nothing else is
    /// looked at, so it costs a scan rather than a parse. On unchecked text it stops somewhere
    /// without failing.
    pub fn skip_checked(&mut self) {
        self.ws();
        let bytes = self.text.as_bytes();
        if !matches!(self.peek(), Some(b'"' | b'{' | b'[')) {
            // A number or a literal.
            while let Some(b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'+' | b'-' | b'.') =
                self.peek()
            {
                self.pos += 1;
            }
            return;
        }
        let mut depth = 0usize;
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b'"' => {
                    self.pos += 1;
                    // Checked text: the scan stops only at a quote or a backslash.
                    loop {
                        self.pos = special(bytes, self.pos);
                        match bytes.get(self.pos) {
                            Some(b'\\') => self.pos += 2,
                            Some(_) => {
                                self.pos += 1;
                                break;
                            }
                            None => return,
                        }
                    }
                    if depth == 0 {
                        return;
                    }
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.pos += 1;
                }
                b'}' | b']' => {
                    // A closing bracket at depth 0 ends the enclosing value, not this one.
                    let Some(d) = depth.checked_sub(1) else {
                        return;
                    };
                    depth = d;
                    self.pos += 1;
                    if depth == 0 {
                        return;
                    }
                }
                _ => self.pos += 1,
            }
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), ErrorKind> {
        let end = self.pos + word.len();
        if self.text.get(self.pos..end) == Some(word) {
            self.pos = end;
            Ok(())
        } else {
            Err(ErrorKind::Syntax)
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<&'a str, ErrorKind> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(ErrorKind::Syntax),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(ErrorKind::Syntax);
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(ErrorKind::Syntax);
            }
        }
        Ok(self.span(start))
    }

    fn string(&mut self) -> Result<JsonStr<'a>, ErrorKind> {
        self.expect(b'"')?;
        let start = self.pos;
        let bytes = self.text.as_bytes();
        loop {
            // Plain bytes (UTF-8 continuation bytes among them: the text is valid UTF-8) are
            // passed over eight at a time.
            self.pos = special(bytes, self.pos);
            match self.peek() {
                Some(b'"') => {
                    let s = self.span(start);
                    self.pos += 1;
                    return Ok(JsonStr(s));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1;
                        }
                        Some(b'u') => {
                            self.pos += 1;
                            for _ in 0..4 {
                                match self.peek() {
                                    Some(h) if h.is_ascii_hexdigit() => self.pos += 1,
                                    _ => return Err(ErrorKind::Syntax),
                                }
                            }
                        }
                        _ => return Err(ErrorKind::Syntax),
                    }
                }
                // Control characters must be escaped; the end must be a quote.
                _ => return Err(ErrorKind::Syntax),
            }
        }
    }
}

/// The index of the first byte at or after `from` that ends a run of plain string content: a
/// quote, a backslash or a control character (below 0x20); `bytes.len()` if there is none.
/// Eight bytes at a time (SWAR): a string's content is mostly SDP text and ids.
fn special(bytes: &[u8], from: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // Bytes of `w` that are zero get their high bit set in the result; the lowest flagged byte
    // is exact (a borrow only runs upwards from a byte that is flagged itself).
    let zero = |w: u64| w.wrapping_sub(LO) & !w & HI;
    let rest = bytes.get(from..).unwrap_or_default();
    let mut chunks = rest.chunks_exact(8);
    let mut at = from;
    for chunk in &mut chunks {
        let Ok(word) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let w = u64::from_le_bytes(word);
        // Quote, backslash, and (as the zero test, for bytes below 0x80) below 0x20.
        let hits = zero(w ^ (LO * u64::from(b'"')))
            | zero(w ^ (LO * u64::from(b'\\')))
            | (w.wrapping_sub(LO * 0x20) & !w & HI);
        if hits != 0 {
            return at + (hits.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    let tail = chunks.remainder();
    at + tail
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .unwrap_or(tail.len())
}

/// An object's members, read one at a time.
#[derive(Clone, Debug)]
pub struct Members<'a> {
    r: Reader<'a>,
    first: bool,
}

impl<'a> Members<'a> {
    /// The next member's key and value, read at nesting `depth + 1`; `None` after the `}`.
    pub fn next(&mut self, depth: u32) -> Result<Option<(JsonStr<'a>, Value<'a>)>, ErrorKind> {
        let Some(key) = self.key()? else {
            return Ok(None);
        };
        let value = self.r.value(depth + 1)?;
        Ok(Some((key, value)))
    }

    /// The next member's key, [`Members::reader`] left at its value (to be read in full
    /// before the next call); `None` after the `}`.
    pub fn key(&mut self) -> Result<Option<JsonStr<'a>>, ErrorKind> {
        if self.r.eat(b'}') {
            return Ok(None);
        }
        if !std::mem::replace(&mut self.first, false) {
            self.r.expect(b',')?;
        }
        self.r.ws();
        let key = self.r.string()?;
        self.r.expect(b':')?;
        Ok(Some(key))
    }

    /// The reader, at the value of the key [`Members::key`] gave.
    pub fn reader(&mut self) -> &mut Reader<'a> {
        &mut self.r
    }

    /// The reader after the `}` (once `next` said `None`).
    pub fn end(self) -> Reader<'a> {
        self.r
    }
}

/// An array's elements, read one at a time.
#[derive(Clone, Debug)]
pub struct Elements<'a> {
    r: Reader<'a>,
    first: bool,
}

impl<'a> Elements<'a> {
    /// The next element, read at nesting `depth + 1`; `None` after the `]`.
    pub fn next(&mut self, depth: u32) -> Result<Option<Value<'a>>, ErrorKind> {
        if !self.more()? {
            return Ok(None);
        }
        self.r.value(depth + 1).map(Some)
    }

    /// Whether another element follows (then [`Elements::reader`] is at it, to be read in
    /// full before the next call); false after the `]`.
    pub fn more(&mut self) -> Result<bool, ErrorKind> {
        if self.r.eat(b']') {
            return Ok(false);
        }
        if !std::mem::replace(&mut self.first, false) {
            self.r.expect(b',')?;
        }
        Ok(true)
    }

    /// The reader, at the element [`Elements::more`] announced.
    pub fn reader(&mut self) -> &mut Reader<'a> {
        &mut self.r
    }

    /// The reader after the `]` (once `more` said false).
    pub fn end(self) -> Reader<'a> {
        self.r
    }
}

/// A non-negative JSON number as `u64`: fractions truncated, too large saturated, `-0` is 0.
/// `None` for a negative number.
pub fn to_u64(number: &str) -> Option<u64> {
    if number.bytes().all(|b| b.is_ascii_digit()) {
        return Some(number.bytes().fold(0u64, |v, d| {
            v.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        }));
    }
    // Exponents, fractions and signs: rare, and f64 reads them all (`as` saturates).
    let v: f64 = number.parse().ok()?;
    if v < 0.0 {
        return None;
    }
    Some(v as u64)
}

/// A fixed set of ASCII names (object keys, enumerated values) to find a [`JsonStr`] among, as
/// [`JsonStr::is`] would, without a string comparison per name: a name of up to 16 bytes is
/// kept as one integer, and a key written without escapes (every key a client sends) is
/// loaded into one and compared with each.
#[derive(Debug)]
pub struct Names<const N: usize> {
    names: [&'static str; N],
    packed: [(usize, u128); N],
}

impl<const N: usize> Names<N> {
    /// The table of `names`, each ASCII and at most 16 bytes (checked at compile time where
    /// the table is a constant).
    // `get` is not usable in a const fn; every index is below the length it is checked against
    // (and the tables are constants: a panic here would fail the build).
    #[allow(clippy::indexing_slicing)]
    pub const fn new(names: [&'static str; N]) -> Self {
        let mut packed = [(0, 0); N];
        let mut i = 0;
        while i < N {
            let b = names[i].as_bytes();
            assert!(b.len() <= 16, "a name of at most 16 bytes");
            let mut buf = [0u8; 16];
            let mut j = 0;
            while j < b.len() {
                assert!(b[j].is_ascii(), "an ASCII name");
                buf[j] = b[j];
                j += 1;
            }
            packed[i] = (b.len(), u128::from_le_bytes(buf));
            i += 1;
        }
        Names { names, packed }
    }

    /// The index of the first name `s` decodes to.
    #[inline]
    pub fn find(&self, s: JsonStr<'_>) -> Option<usize> {
        const LO: u128 = u128::from_le_bytes([1; 16]);
        const HI: u128 = LO << 7;
        let b = s.0.as_bytes();
        if b.len() <= 16 {
            let mut buf = [0u8; 16];
            for (d, s) in buf.iter_mut().zip(b) {
                *d = *s;
            }
            let w = u128::from_le_bytes(buf);
            let x = w ^ (LO * u128::from(b'\\'));
            // No byte is a backslash (the zero-byte test): the text is the string.
            if x.wrapping_sub(LO) & !x & HI == 0 {
                return self
                    .packed
                    .iter()
                    .position(|&(len, p)| p == w && len == b.len());
            }
        }
        self.names.iter().position(|n| s.is(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{random_bytes, xorshift};

    /// The string scan as it was written first, a byte at a time: the reference the scan
    /// eight bytes at a time must agree with.
    fn string_bytewise(text: &str) -> (Result<&str, ErrorKind>, usize) {
        let b = text.as_bytes();
        let mut pos = 1;
        if b.first() != Some(&b'"') {
            return (Err(ErrorKind::Syntax), 0);
        }
        loop {
            match b.get(pos) {
                Some(b'"') => return (Ok(&text[1..pos]), pos + 1),
                Some(b'\\') => {
                    pos += 1;
                    match b.get(pos) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => pos += 1,
                        Some(b'u') => {
                            pos += 1;
                            for _ in 0..4 {
                                match b.get(pos) {
                                    Some(h) if h.is_ascii_hexdigit() => pos += 1,
                                    _ => return (Err(ErrorKind::Syntax), pos),
                                }
                            }
                        }
                        _ => return (Err(ErrorKind::Syntax), pos),
                    }
                }
                Some(0x00..=0x1F) | None => return (Err(ErrorKind::Syntax), pos),
                Some(_) => pos += 1,
            }
        }
    }

    #[test]
    fn skip_checked_ends_where_value_does() {
        let values = [
            r#"{"offer":{"type":"offer","sdp":"v=0\r\n{[\"]}"},"offer_id":"\u0001\u00ff\"x"}"#,
            r#"[1,[2,{"a":[]}],"]",-0.5e3,true]"#,
            r#""a \\\" \u1234""#,
            "12.5e-3",
            "true",
            "null",
            "{}",
            "[]",
            r#"{"k":{"k":{"k":["}}}"]}}}"#,
        ];
        for v in values {
            for tail in ["", ",1", " ]", "}", "\t,"] {
                let text = format!(" {v}{tail}");
                let mut checked = Reader::new(&text);
                checked.value(1).unwrap_or_else(|e| panic!("{v}: {e:?}"));
                let mut skipped = Reader::new(&text);
                skipped.skip_checked();
                assert_eq!(skipped.pos, checked.pos, "{text}");
            }
        }
        // Random values: any checked value is skipped to where its check ended.
        let mut state = 77;
        let parts = [
            "{", "}", "[", "]", ",", ":", "\"", "\\", "a", "1", " ", "\u{e9}", "-", "e",
        ];
        for _ in 0..20_000 {
            let n = 1 + xorshift(&mut state) % 12;
            let text: String = (0..n)
                .map(|_| parts[(xorshift(&mut state) % parts.len() as u64) as usize])
                .collect();
            let mut checked = Reader::new(&text);
            // What may follow a value where one is skipped: an array's or object's next
            // member or end.
            let follows = |r: &Reader<'_>| {
                let mut r = *r;
                r.ws();
                matches!(r.peek(), None | Some(b',' | b']' | b'}'))
            };
            if checked.value(1).is_ok() && follows(&checked) {
                let mut skipped = Reader::new(&text);
                skipped.skip_checked();
                assert_eq!(skipped.pos, checked.pos, "{text:?}");
            }
        }
    }

    fn string(text: &str) -> (Result<&str, ErrorKind>, usize) {
        let mut r = Reader::new(text);
        let s = r.string().map(|s| s.0);
        (s, r.pos)
    }

    /// `units` as it was written first, a char at a time.
    fn units_before(s: &str) -> Vec<u32> {
        let mut out = Vec::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            out.push(if c == '\\' {
                match chars.next() {
                    Some('b') => 0x08,
                    Some('f') => 0x0C,
                    Some('n') => 0x0A,
                    Some('r') => 0x0D,
                    Some('t') => 0x09,
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).collect();
                        match u32::from_str_radix(&hex, 16) {
                            Ok(v) if hex.len() == 4 => v,
                            _ => break,
                        }
                    }
                    Some(other) => u32::from(other),
                    None => break,
                }
            } else {
                u32::from(c)
            });
        }
        out
    }

    /// `bin20` as it was written first, through `units`.
    fn bin20_by_units(s: JsonStr<'_>) -> Option<[u8; 20]> {
        let units = units_before(s.0);
        assert_eq!(s.units().collect::<Vec<_>>(), units, "{:?}", s.0);
        let bytes: Vec<u8> = units
            .iter()
            .map(|&u| u8::try_from(u).ok())
            .collect::<Option<_>>()?;
        bytes.try_into().ok()
    }

    /// Pieces a string's text is made of: plain ASCII, the bytes the scan stops at, escapes
    /// (good and bad), and 2-, 3- and 4-byte UTF-8 (whose bytes are all 0x80 or above).
    const PIECES: &[&str] = &[
        "a",
        "Z",
        "0",
        " ",
        "~",
        "\u{7f}",
        "\"",
        "\\",
        "\\\"",
        "\\\\",
        "\\/",
        "\\b",
        "\\f",
        "\\n",
        "\\r",
        "\\t",
        "\\u0000",
        "\\u00e9",
        "\\u00FF",
        "\\uD83D\\uDE00",
        "\\u12",
        "\\x",
        "\\u00g0",
        "\u{0}",
        "\u{1f}",
        "\t",
        "\n",
        "\u{e9}",
        "\u{ff}",
        "\u{100}",
        "\u{20ac}",
        "\u{1f600}",
        "abcdefgh",
        "v=0\\r\\no=- 4215 2 IN IP4 127.0.0.1\\r\\n",
    ];

    #[test]
    fn string_scan_agrees_with_the_bytewise_scan() {
        let mut state = 0x5eed_0001;
        for _ in 0..50_000 {
            let n = (xorshift(&mut state) % 40) as usize;
            let mut text = String::from("\"");
            for _ in 0..n {
                let i = (xorshift(&mut state) % PIECES.len() as u64) as usize;
                text.push_str(PIECES[i]);
            }
            if xorshift(&mut state) % 4 != 0 {
                text.push('"');
            }
            if xorshift(&mut state) % 2 == 0 {
                text.push_str(",\"k\":1}");
            }
            assert_eq!(string(&text), string_bytewise(&text), "{text:?}");
        }
    }

    #[test]
    fn string_scan_finds_each_stop_byte_at_every_offset_of_a_word() {
        for stop in ["\"", "\\n", "\\u00e9", "\u{1}", "\u{1f}", "\\q"] {
            for len in 0..40 {
                for fill in ["a", "\u{e9}", "\u{7f}", " ", "!", "#", "[", "]"] {
                    let text = format!("\"{}{stop}tail\"", fill.repeat(len));
                    assert_eq!(string(&text), string_bytewise(&text), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn long_strings_parse_whole() {
        // Longer than any word or chunk, with the end past a word boundary in every position.
        for len in [7, 8, 9, 63, 64, 65, 1000, 4096, 4097, 65_537] {
            let body = "x".repeat(len);
            let text = format!("\"{body}\"");
            assert_eq!(string(&text), (Ok(body.as_str()), len + 2));
            let escaped = format!("\"{}\\u00e9\\n{body}\"", "\u{e9}".repeat(len));
            assert_eq!(string(&escaped), string_bytewise(&escaped));
            assert!(string(&escaped).0.is_ok());
            let unterminated = format!("\"{body}");
            assert_eq!(string(&unterminated), string_bytewise(&unterminated));
        }
    }

    #[test]
    fn bin20_agrees_with_units() {
        let mut state = 0x5eed_0002;
        let one_char = |b: u8| -> String {
            match b {
                b'"' => "\\\"".into(),
                b'\\' => "\\\\".into(),
                0x08 => "\\b".into(),
                0x0c => "\\f".into(),
                b'\n' => "\\n".into(),
                b'\r' => "\\r".into(),
                b'\t' => "\\t".into(),
                0..=0x1f => format!("\\u{b:04x}"),
                _ => char::from(b).to_string(),
            }
        };
        for round in 0..20_000 {
            let bytes = random_bytes(&mut state, &[], 20 + round % 3);
            let mut text = String::new();
            for &b in &bytes {
                // Every spelling: raw where JSON allows, `\u00XX` in either case, and an
                // escape of a char above U+00FF now and then.
                match xorshift(&mut state) % 8 {
                    0 => text.push_str(&format!("\\u{b:04x}")),
                    1 => text.push_str(&format!("\\u{b:04X}")),
                    2 if round % 7 == 0 => text.push_str("\\u0100"),
                    3 if round % 11 == 0 => text.push('\u{20ac}'),
                    _ => text.push_str(&one_char(b)),
                }
            }
            let quoted = format!("\"{text}\"");
            let (Ok(s), _) = string(&quoted) else {
                panic!("not a string: {quoted:?}");
            };
            let s = JsonStr(s);
            assert_eq!(s.bin20(), bin20_by_units(s), "{quoted:?}");
            if bytes.len() == 20 && round % 7 != 0 && round % 11 != 0 {
                assert_eq!(s.bin20(), Some(<[u8; 20]>::try_from(&bytes[..]).unwrap()));
            }
        }
        // Short, long, and cut inside an escape.
        for text in ["", "abc", "\\u00", "0123456789012345678\\u00"] {
            assert_eq!(
                JsonStr(text).bin20(),
                bin20_by_units(JsonStr(text)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn names_find_as_is_compares() {
        const NAMES: Names<6> = Names::new([
            "action",
            "info_hash",
            "a",
            "",
            "failure reason",
            "sixteen_bytes_xx",
        ]);
        let mut keys: Vec<String> = NAMES.names.iter().map(|n| n.to_string()).collect();
        keys.extend(
            [
                "\\u0061ction",
                "info_hash\\u0000",
                "\\u0061",
                "b",
                "actio",
                "actionx",
                "sixteen_bytes_xy",
                "sixteen_bytes_xxx",
                "failure\\u0020reason",
                "failure reason\\\\",
                "\\\\",
                "acti\\\"n",
                "ação",
                "info_hash\\ud800",
            ]
            .map(String::from),
        );
        let mut state = 7;
        let mut rng = || xorshift(&mut state);
        for _ in 0..2000 {
            let len = (rng() % 20) as usize;
            let s: String = (0..len)
                .map(|_| match rng() % 6 {
                    0 => '\\',
                    1 => 'a',
                    2 => 'é',
                    _ => char::from(b'_' + (rng() % 27) as u8),
                })
                .collect();
            keys.push(s);
        }
        for k in &keys {
            // Only checked strings are ever asked: a random one is read as a JSON string first.
            let text = format!("\"{k}\"");
            let Ok(js) = Reader::new(&text).string() else {
                continue;
            };
            let want = NAMES.names.iter().position(|n| js.is(n));
            assert_eq!(NAMES.find(js), want, "{k:?}");
        }
        assert_eq!(NAMES.find(JsonStr("\\u0061ction")), Some(0));
        assert_eq!(NAMES.find(JsonStr("failure\\u0020reason")), Some(4));
        assert_eq!(NAMES.find(JsonStr("")), Some(3));
    }
}
