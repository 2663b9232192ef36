//! WebSocket frames ([RFC 6455](https://www.rfc-editor.org/rfc/rfc6455) section 5) as a server
//! reads them from its clients, and the frames it writes: no I/O, no allocation per message.
//!
//! Hand-written rather than read through tungstenite because it is the tracker's hottest path
//! for WebTorrent: every message is unmasked in place in the caller's buffer and handed out as
//! a borrowed `&str`, its UTF-8 checked once by a SIMD validator (`simdutf8`), where
//! tungstenite copies each message into its own buffer and checks it a byte at a time with
//! `std`'s validator (a tenth of the tracker's CPU under load). A connection then also holds no
//! read buffer of its own between messages.
//!
//! [`Reader::next`] takes the bytes a connection has received and answers a [`Message`], "more
//! bytes needed" (with how many the frame in progress needs), or the [`CloseCode`] to close
//! the connection with. It enforces what RFC 6455 asks of a server: client frames masked, no
//! reserved bits or opcodes, control frames final and at most 125 bytes, continuation frames
//! only inside a fragmented message, text valid UTF-8, a close frame's code allowed and its
//! reason UTF-8; and the caller's size limit, which it checks from a frame's header, before
//! any of its payload is buffered.

/// Largest payload of a control frame (ping, pong, close).
pub const MAX_CONTROL: usize = 125;

/// Longest frame header: 2 bytes, an 8-byte length, a 4-byte mask.
pub const MAX_HEADER: usize = 14;

/// Why a connection is closed, as sent in the close frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseCode {
    /// 1000.
    Normal,
    /// 1001: the server is shutting down, or the connection was idle.
    Away,
    /// 1002: a frame broke the protocol.
    Protocol,
    /// 1003: a binary message (the tracker speaks text).
    Unsupported,
    /// 1007: text that is not UTF-8.
    Invalid,
    /// 1008: the client broke a policy (a rate limit).
    Policy,
    /// 1009: a message larger than the limit.
    Size,
}

impl CloseCode {
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::Away => 1001,
            CloseCode::Protocol => 1002,
            CloseCode::Unsupported => 1003,
            CloseCode::Invalid => 1007,
            CloseCode::Policy => 1008,
            CloseCode::Size => 1009,
        }
    }
}

/// A whole message from a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message, checked UTF-8.
    Text(&'a str),
    /// A binary message (its payload is of no use to the tracker).
    Binary,
    /// A ping, with its payload (to send back in the pong).
    Ping(&'a [u8]),
    Pong,
    /// A close frame, with its code if it had one (then an allowed one, with a UTF-8 reason).
    Close(Option<u16>),
}

/// What [`Reader::next`] found at the start of the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next<'a> {
    /// A message, and the bytes its frame took (to consume).
    Message(Message<'a>, usize),
    /// A frame that is not a whole message (a fragment): consume the bytes, read on.
    Fragment(usize),
    /// The frame is not all there: at least this many bytes in all are needed.
    Incomplete(usize),
}

/// A connection's reading state: the fragments of a message in progress (rare: browsers send
/// each message as one frame).
#[derive(Debug, Default)]
pub struct Reader {
    /// Whether a fragmented message is in progress, and whether it is text.
    fragmented: Option<bool>,
    /// Its payload so far (unmasked).
    fragments: Vec<u8>,
}

impl Reader {
    pub fn new() -> Self {
        Reader::default()
    }

    /// Heap bytes held (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.fragments.capacity()
    }

    /// Reads the frame at the start of `buf`, unmasking its payload in place. `max_message`
    /// bounds a message's payload (a frame's, and a fragmented message's in all).
    pub fn next<'a>(
        &'a mut self,
        buf: &'a mut [u8],
        max_message: usize,
    ) -> Result<Next<'a>, CloseCode> {
        let Some(h) = header(buf)? else {
            return Ok(Next::Incomplete(header_len(buf)));
        };
        let len = usize::try_from(h.len).map_err(|_| CloseCode::Size)?;
        if len > max_message {
            return Err(CloseCode::Size);
        }
        let end = h.size + len;
        if buf.len() < end {
            return Ok(Next::Incomplete(end));
        }
        let payload = buf.get_mut(h.size..end).unwrap_or_default();
        unmask(payload, h.mask);
        let payload: &'a [u8] = payload;
        let message = match h.opcode {
            OP_CONTINUE => {
                let Some(text) = self.fragmented else {
                    return Err(CloseCode::Protocol);
                };
                if self.fragments.len() + len > max_message {
                    return Err(CloseCode::Size);
                }
                self.fragments.extend_from_slice(payload);
                if !h.fin {
                    return Ok(Next::Fragment(end));
                }
                self.fragmented = None;
                if !text {
                    self.release();
                    return Ok(Next::Message(Message::Binary, end));
                }
                // The fragments are kept until the next frame (the message borrows them).
                match simdutf8::basic::from_utf8(&self.fragments) {
                    Ok(s) => Message::Text(s),
                    Err(_) => return Err(CloseCode::Invalid),
                }
            }
            OP_TEXT | OP_BINARY if self.fragmented.is_some() => return Err(CloseCode::Protocol),
            OP_TEXT | OP_BINARY if !h.fin => {
                self.fragmented = Some(h.opcode == OP_TEXT);
                self.fragments.clear();
                self.fragments.extend_from_slice(payload);
                return Ok(Next::Fragment(end));
            }
            OP_TEXT => match simdutf8::basic::from_utf8(payload) {
                Ok(s) => {
                    self.release();
                    Message::Text(s)
                }
                Err(_) => return Err(CloseCode::Invalid),
            },
            OP_BINARY => Message::Binary,
            OP_CLOSE => Message::Close(close_code(payload)?),
            OP_PING => Message::Ping(payload),
            OP_PONG => Message::Pong,
            _ => return Err(CloseCode::Protocol),
        };
        Ok(Next::Message(message, end))
    }

    /// Frees the buffer of a fragmented message once it is done with.
    fn release(&mut self) {
        if self.fragmented.is_none() && self.fragments.capacity() > 0 {
            self.fragments = Vec::new();
        }
    }
}

/// Frame opcodes (section 5.2).
pub const OP_CONTINUE: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// A frame header, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    len: u64,
    /// The header's own length.
    size: usize,
}

/// The header's length as far as its first two bytes tell (2 if they are not there yet).
fn header_len(buf: &[u8]) -> usize {
    match buf.get(1).map(|b| b & 0x7F) {
        None => 2,
        Some(126) => 2 + 2 + 4,
        Some(127) => 2 + 8 + 4,
        Some(_) => 2 + 4,
    }
}

/// The header at the start of `buf`, or `None` if it is not all there yet.
fn header(buf: &[u8]) -> Result<Option<Header>, CloseCode> {
    let (Some(&b0), Some(&b1)) = (buf.first(), buf.get(1)) else {
        return Ok(None);
    };
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0F;
    // No extension is negotiated: reserved bits must be 0 (RFC 6455 section 5.2).
    if b0 & 0x70 != 0 {
        return Err(CloseCode::Protocol);
    }
    match opcode {
        OP_CONTINUE | OP_TEXT | OP_BINARY => {}
        OP_CLOSE | OP_PING | OP_PONG => {
            // Control frames are final and short (section 5.5).
            if !fin || usize::from(b1 & 0x7F) > MAX_CONTROL {
                return Err(CloseCode::Protocol);
            }
        }
        _ => return Err(CloseCode::Protocol),
    }
    // A client masks every frame (section 5.1).
    if b1 & 0x80 == 0 {
        return Err(CloseCode::Protocol);
    }
    let size = header_len(buf);
    let Some(h) = buf.get(..size) else {
        return Ok(None);
    };
    let (len, mask_at) = match b1 & 0x7F {
        126 => (u64::from(u16::from_be_bytes([byte(h, 2), byte(h, 3)])), 4),
        127 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(h.get(2..10).unwrap_or(&[0; 8]));
            let len = u64::from_be_bytes(b);
            // The most significant bit must be 0 (section 5.2).
            if len >> 63 != 0 {
                return Err(CloseCode::Protocol);
            }
            (len, 10)
        }
        n => (u64::from(n), 2),
    };
    let mask = [
        byte(h, mask_at),
        byte(h, mask_at + 1),
        byte(h, mask_at + 2),
        byte(h, mask_at + 3),
    ];
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        len,
        size,
    }))
}

fn byte(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// Unmasks (or masks) `payload` with `mask`, eight bytes at a time.
pub fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let m = u32::from_ne_bytes(mask);
    let wide = u64::from(m) | (u64::from(m) << 32);
    let mut chunks = payload.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let x = u64::from_ne_bytes(w) ^ wide;
        c.copy_from_slice(&x.to_ne_bytes());
    }
    // The chunks were whole multiples of 4 bytes: the mask restarts at its first byte.
    for (b, k) in chunks.into_remainder().iter_mut().zip(mask.iter().cycle()) {
        *b ^= k;
    }
}

/// A close frame's code, checked (section 7.4): none, or an allowed one with a UTF-8 reason.
fn close_code(payload: &[u8]) -> Result<Option<u16>, CloseCode> {
    match payload {
        [] => Ok(None),
        [_] => Err(CloseCode::Protocol),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            let allowed = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !allowed {
                return Err(CloseCode::Protocol);
            }
            if simdutf8::basic::from_utf8(reason).is_err() {
                return Err(CloseCode::Invalid);
            }
            Ok(Some(code))
        }
    }
}

/// Appends a server's (unmasked) frame header for a final frame of `opcode` with a payload of
/// `len` bytes.
fn write_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    match len {
        0..=125 => out.push(len as u8),
        126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// Appends a text frame carrying `msg`.
pub fn write_text(out: &mut Vec<u8>, msg: &[u8]) {
    write_header(out, OP_TEXT, msg.len());
    out.extend_from_slice(msg);
}

/// Appends a ping with no payload.
pub fn write_ping(out: &mut Vec<u8>) {
    write_header(out, OP_PING, 0);
}

/// Appends the pong to a ping with `payload` (at most [`MAX_CONTROL`] bytes, as a ping's is).
pub fn write_pong(out: &mut Vec<u8>, payload: &[u8]) {
    let payload = payload.get(..MAX_CONTROL).unwrap_or(payload);
    write_header(out, OP_PONG, payload.len());
    out.extend_from_slice(payload);
}

/// Appends a close frame with `code`, or with none (the answer to a close that had none).
pub fn write_close(out: &mut Vec<u8>, code: Option<u16>) {
    match code {
        Some(c) => {
            write_header(out, OP_CLOSE, 2);
            out.extend_from_slice(&c.to_be_bytes());
        }
        None => write_header(out, OP_CLOSE, 0),
    }
}

/// A client's (masked) frame, for tests and load generators: `opcode`, final or not, `payload`
/// masked with `mask`.
pub fn write_client_frame(out: &mut Vec<u8>, opcode: u8, fin: bool, payload: &[u8], mask: [u8; 4]) {
    let start = out.len();
    write_header(out, opcode, payload.len());
    if let Some(b0) = out.get_mut(start) {
        *b0 = if fin { 0x80 | opcode } else { opcode };
    }
    if let Some(b1) = out.get_mut(start + 1) {
        *b1 |= 0x80;
    }
    out.extend_from_slice(&mask);
    let at = out.len();
    out.extend_from_slice(payload);
    unmask(out.get_mut(at..).unwrap_or_default(), mask);
}

#[cfg(test)]
mod tests;
