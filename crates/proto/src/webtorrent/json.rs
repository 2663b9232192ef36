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
        let mut out = [0u8; 20];
        let mut units = self.units();
        for slot in &mut out {
            *slot = u8::try_from(units.next()?).ok()?;
        }
        units.next().is_none().then_some(out)
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
        let unit = if c == '\\' {
            match chars.next()? {
                'b' => 0x08,
                'f' => 0x0C,
                'n' => 0x0A,
                'r' => 0x0D,
                't' => 0x09,
                'u' => {
                    let mut v = 0u32;
                    for _ in 0..4 {
                        v = v * 16 + chars.next()?.to_digit(16)?;
                    }
                    v
                }
                // '"', '\\' and '/' stand for themselves.
                other => u32::from(other),
            }
        } else {
            u32::from(c)
        };
        self.0 = chars.as_str();
        Some(unit)
    }
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
        loop {
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
                Some(0x00..=0x1F) | None => return Err(ErrorKind::Syntax),
                // UTF-8 continuation bytes pass one at a time: the text is valid UTF-8.
                Some(_) => self.pos += 1,
            }
        }
    }
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
        if self.r.eat(b'}') {
            return Ok(None);
        }
        if !std::mem::replace(&mut self.first, false) {
            self.r.expect(b',')?;
        }
        self.r.ws();
        let key = self.r.string()?;
        self.r.expect(b':')?;
        let value = self.r.value(depth + 1)?;
        Ok(Some((key, value)))
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
        if self.r.eat(b']') {
            return Ok(None);
        }
        if !std::mem::replace(&mut self.first, false) {
            self.r.expect(b',')?;
        }
        self.r.value(depth + 1).map(Some)
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
