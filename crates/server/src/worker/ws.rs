//! WebSocket (WebTorrent) connections: the upgrade from HTTP, frames read by
//! [`ferrotracker_proto::websocket`] (unmasked in place in the worker's read buffer, each text
//! message handed on as a borrowed `&str`), messages to [`Tracker::handle_ws`], pings and the
//! idle timeout, and close codes.
//!
//! Everything a connection sends goes through its `out` buffer, in order: control frames (pong,
//! ping, close), replies and relays are framed straight into it (no allocation per message).
//! `out` is sent by the connection's transport as an HTTP reply is. A client that
//! reads slowly has its messages read all the same (an announce matters to the swarm more than
//! its reply does to the client): once half of `webtorrent.max_backlog` waits to be sent, its
//! replies are dropped, past the whole backlog relays to it are too (an offer or an answer is
//! worth more to a client than counts it will get again), and reading stops only
//! [`super::conns`]' `MAX_PENDING_OUT` later, which bounds what control frames (pongs) can add.
//! A connection is read [`FRAMES_PER_TURN`] frames at a time.
//!
//! A connection reads into the worker's buffer and keeps only the bytes of a frame not yet
//! whole (or of messages left for its next turn), so an idle connection holds no read buffer.
//!
//! [`Tracker::handle_ws`]: ferrotracker_core::Tracker::handle_ws

use std::io;

use ferrotracker_core::{Relays, Worker, WsConn};
use ferrotracker_proto::websocket::{self, CloseCode, Message, Next, Reader};
use mio::net::TcpStream;

use super::relay::Batch;
use super::transport::Transport;
use super::Shared;

/// Frames read from one connection per turn of the event loop (browsers send a message as one
/// frame): then it yields to the others (and is served again after them, in the same turn), so
/// that one client with a deep queue of messages, or a stream of pings or empty fragments,
/// cannot hold the worker, and the replies and relays that a turn produces reach each
/// connection interleaved rather than one connection's replies first.
pub(super) const FRAMES_PER_TURN: usize = 32;

/// Bytes read from a socket at a time (a TLS record's plaintext at most).
const READ_CHUNK: usize = 16 * 1024;

/// A kept partial frame's buffer larger than this is freed once empty (a large message came):
/// idle connections hold little.
const PART_KEPT: usize = 32 * 1024;

/// The worker's buffers for its WebSocket connections.
#[derive(Default)]
pub(super) struct Buffers {
    /// A reply, before it is framed.
    pub(super) reply: Vec<u8>,
    /// What is read from a connection: its kept partial frame, then the socket's bytes. Its
    /// length is its size (zeroed once): a whole frame (`webtorrent.max_message` and a header)
    /// and a chunk more.
    read: Vec<u8>,
}

/// A WebSocket connection's state beside its `Conn`.
pub(super) struct Ws {
    reader: Reader,
    /// Bytes read that are not yet a whole frame, or messages left for the next turn.
    part: Vec<u8>,
    /// While a frame is not whole: the bytes it needs in all, and how many of them have come
    /// (`part[..have]`). Its bytes are read straight into `part` until it is whole, so a client
    /// that sends a large frame a few bytes at a time does not have what came before copied
    /// into the worker's buffer and back on each read. `part` grows a chunk ahead of what
    /// came, not to the size the header announced.
    need: usize,
    have: usize,
    /// A close frame has gone into `out`: nothing more is sent or read.
    closed: bool,
    pub(super) state: WsConn,
    /// When the last message (not control frame) came: `webtorrent.idle_timeout` runs from it.
    last_message: u32,
    /// When the last frame of any kind came.
    last_frame: u32,
    /// A ping has been sent since `last_frame`.
    pinged: bool,
}

/// What serving a WebSocket connection's input found.
pub(super) enum Input {
    /// Read until the socket had nothing more.
    Drained,
    /// Stopped with input left: `out` holds [`MAX_PENDING_OUT`](super::conns) unsent.
    Full,
    /// Stopped when the turn's budget of [`FRAMES_PER_TURN`] frames ran out: there may be
    /// more to read.
    Yield,
    /// The connection is to be closed once `out` is sent (a close frame is in it, if any).
    Closing,
    /// The connection is gone: close it now.
    Gone,
}

impl Ws {
    /// The WebSocket state of a connection keyed `conn` whose upgrade request was followed by
    /// `part` (bytes that belong to the WebSocket already).
    pub(super) fn new(shared: &Shared, conn: u64, part: &[u8], now: u32) -> Box<Ws> {
        Box::new(Ws {
            reader: Reader::new(),
            part: part.to_vec(),
            need: 0,
            have: 0,
            closed: false,
            state: shared.tracker.ws_conn(conn),
            last_message: now,
            last_frame: now,
            pinged: false,
        })
    }

    /// When [`Ws::tick`] has something to do: ping or close.
    pub(super) fn deadline(&self, shared: &Shared) -> u32 {
        let idle = self
            .last_message
            .saturating_add(shared.tracker.webtorrent().idle_timeout);
        if self.pinged {
            idle
        } else {
            idle.min(
                self.last_frame
                    .saturating_add(shared.tracker.webtorrent().ping_after),
            )
        }
    }

    /// On the connection's deadline: false if it has been idle for `webtorrent.idle_timeout`
    /// (to be closed: a close frame is in `out`), else sends a ping into `out`.
    pub(super) fn tick(&mut self, shared: &Shared, now: u32, out: &mut Vec<u8>) -> bool {
        let idle_timeout = shared.tracker.webtorrent().idle_timeout;
        if now >= self.last_message.saturating_add(idle_timeout) {
            close(&mut self.closed, out, Some(CloseCode::Away.code()));
            return false;
        }
        if !self.pinged && !self.closed {
            self.pinged = true;
            websocket::write_ping(out);
        }
        true
    }

    /// Shutdown: a close frame (1001, going away) into `out`.
    pub(super) fn going_away(&mut self, out: &mut Vec<u8>) {
        close(&mut self.closed, out, Some(CloseCode::Away.code()));
    }

    /// Appends `msg` to `out` as one text frame, unless a close frame has gone out already.
    pub(super) fn send_text(&self, out: &mut Vec<u8>, msg: &[u8]) {
        if !self.closed {
            websocket::write_text(out, msg);
        }
    }

    /// Reads and answers messages until the socket has nothing more, `out` is `max_out` long
    /// or `budget` frames have been read (it counts down). Replies go into `out`, unless it
    /// is `drop_at` long already (then they are dropped and counted: the client reads too
    /// slowly); relays into `pending` (delivered by the caller after this connection is
    /// served), unless `takes` says their connection takes none now.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn serve(
        &mut self,
        shared: &Shared,
        w: &mut Worker,
        ip: std::net::IpAddr,
        transport: &mut Transport,
        stream: &mut TcpStream,
        out: &mut Vec<u8>,
        max_out: usize,
        drop_at: usize,
        budget: &mut usize,
        bufs: &mut Buffers,
        relays: &mut Relays,
        pending: &mut Batch,
        takes: &dyn Fn(u64) -> bool,
    ) -> Input {
        if self.closed {
            return Input::Closing;
        }
        if self.need > 0 {
            match self.fill(transport, stream) {
                Some(input) => return input,
                None => self.need = 0,
            }
        }
        let now = shared.now();
        let max_message = shared.tracker.webtorrent().max_message;
        let size = max_message + websocket::MAX_HEADER + READ_CHUNK;
        if bufs.read.len() < size {
            bufs.read = vec![0; size];
        }
        let Buffers { reply, read } = bufs;
        // What was kept from the last read, then the socket's bytes: `read[at..end]`.
        let kept = self.part.len().min(read.len());
        read.get_mut(..kept)
            .unwrap_or_default()
            .copy_from_slice(self.part.get(..kept).unwrap_or_default());
        self.part.clear();
        if self.part.capacity() > PART_KEPT {
            self.part = Vec::new();
        }
        let (mut at, mut end) = (0, kept);
        // The last read emptied the socket: with edge-triggered readiness, the next bytes
        // bring an event, so a read now would only say `WouldBlock`.
        let mut empty = false;
        let mut incomplete = 0;
        let result = loop {
            if self.closed {
                break Input::Closing;
            }
            if out.len() >= max_out {
                break Input::Full;
            }
            if *budget == 0 {
                break Input::Yield;
            }
            let frame = read.get_mut(at..end).unwrap_or_default();
            let msg = match self.reader.next(frame, max_message) {
                Ok(Next::Message(msg, n)) => {
                    at += n;
                    *budget -= 1;
                    msg
                }
                Ok(Next::Fragment(n)) => {
                    at += n;
                    *budget -= 1;
                    self.last_frame = now;
                    self.pinged = false;
                    continue;
                }
                Ok(Next::Incomplete(need)) => {
                    // Room for the frame and a chunk more (a frame's size was checked against
                    // `webtorrent.max_message` before it asked for it).
                    if empty {
                        incomplete = need;
                        break Input::Drained;
                    }
                    read.copy_within(at..end, 0);
                    (end, at) = (end - at, 0);
                    let stop = read
                        .len()
                        .min(end + READ_CHUNK.max(need.saturating_sub(end)));
                    match read_some(
                        transport,
                        stream,
                        read.get_mut(end..stop).unwrap_or_default(),
                    ) {
                        Ok((n, drained)) => {
                            empty = drained;
                            end += n;
                        }
                        Err(Input::Drained) => {
                            incomplete = need;
                            break Input::Drained;
                        }
                        Err(input) => return input,
                    }
                    continue;
                }
                Err(code) => {
                    w.counters.ws_protocol_errors.inc();
                    close(&mut self.closed, out, Some(code.code()));
                    break Input::Closing;
                }
            };
            self.last_frame = now;
            self.pinged = false;
            match msg {
                Message::Text(text) => {
                    self.last_message = now;
                    if let Some(rl) = shared.http_limiter() {
                        if !rl.allow(ip, shared.now_ms()) {
                            w.counters.ws_rate_limited.inc();
                            close(&mut self.closed, out, Some(CloseCode::Policy.code()));
                            break Input::Closing;
                        }
                    }
                    shared.tracker.handle_ws_to(
                        w,
                        &mut self.state,
                        text,
                        now,
                        reply,
                        relays,
                        takes,
                    );
                    if !reply.is_empty() {
                        if out.len() < drop_at {
                            websocket::write_text(out, reply);
                        } else {
                            w.counters.ws_replies_dropped.inc();
                        }
                    }
                    for (relay, m) in relays.iter() {
                        pending.push(relay, m);
                    }
                }
                Message::Binary => {
                    w.counters.ws_protocol_errors.inc();
                    close(&mut self.closed, out, Some(CloseCode::Unsupported.code()));
                    break Input::Closing;
                }
                // Not closed: the loop stops once a close frame has gone.
                Message::Ping(payload) => websocket::write_pong(out, payload),
                Message::Pong => {}
                Message::Close(code) => {
                    // Echoed, as RFC 6455 section 5.5.1 has it.
                    close(&mut self.closed, out, code);
                    break Input::Closing;
                }
            }
        };
        // Bytes not yet a whole frame, or messages left for the next turn.
        self.part
            .extend_from_slice(read.get(at..end).unwrap_or_default());
        if incomplete > self.part.len() {
            self.have = self.part.len();
            self.need = incomplete;
        }
        result
    }

    /// Reads the rest of a frame not yet whole into `part`: `None` once it is whole, else what
    /// stopped the reading.
    fn fill(&mut self, transport: &mut Transport, stream: &mut TcpStream) -> Option<Input> {
        while self.have < self.need {
            let stop = self.need.min(self.have + READ_CHUNK);
            if self.part.len() < stop {
                self.part.resize(stop, 0);
            }
            let into = self.part.get_mut(self.have..stop).unwrap_or_default();
            match read_some(transport, stream, into) {
                Ok((n, drained)) => {
                    self.have += n;
                    if self.have < self.need && drained {
                        return Some(Input::Drained);
                    }
                }
                Err(input) => return Some(input),
            }
        }
        None
    }
}

/// One read from the connection into `buf`: the bytes read (none after `Interrupted`) and
/// whether the socket is now empty ([`Transport::drained`]), or what stops the reading:
/// `Drained` (nothing to read) or `Gone` (closed or broken).
fn read_some(
    transport: &mut Transport,
    stream: &mut TcpStream,
    buf: &mut [u8],
) -> Result<(usize, bool), Input> {
    match transport.read(stream, buf) {
        Ok(0) => Err(Input::Gone),
        Ok(n) => Ok((n, transport.drained(n, buf.len()))),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(Input::Drained),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok((0, false)),
        Err(_) => Err(Input::Gone),
    }
}

/// A close frame with `code` into `out`, unless one has gone already (`closed`).
fn close(closed: &mut bool, out: &mut Vec<u8>, code: Option<u16>) {
    if !std::mem::replace(closed, true) {
        websocket::write_close(out, code);
    }
}

/// The `Sec-WebSocket-Accept` value for a request's `Sec-WebSocket-Key` (RFC 6455 section 4.2.2).
pub(super) fn accept_key(key: &[u8]) -> String {
    tungstenite::handshake::derive_accept_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
