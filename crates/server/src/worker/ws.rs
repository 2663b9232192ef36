//! WebSocket (WebTorrent) connections: the upgrade from HTTP, framing by tungstenite's
//! stream-agnostic [`WebSocketContext`] driven by the event loop, messages to
//! [`Tracker::handle_ws`], pings and the idle timeout, and close codes.
//!
//! Everything a connection sends goes through its `out` buffer, in order: tungstenite writes
//! its control frames (pong, close) into it through [`Io`], and replies and relays are framed
//! straight into it (no allocation per message; tungstenite's own `write` wants an owned
//! payload). `out` is sent by the connection's transport as an HTTP reply is. A client that
//! reads slowly has its messages read all the same (an announce matters to the swarm more than
//! its reply does to the client): once half of `webtorrent.max_backlog` waits to be sent, its
//! replies are dropped, past the whole backlog relays to it are too (an offer or an answer is
//! worth more to a client than counts it will get again), and reading stops only
//! [`super::conns`]' `MAX_PENDING_OUT` later, which bounds what control frames (pongs) can add.
//! A connection is read [`MESSAGES_PER_TURN`] messages at a time.
//!
//! [`Tracker::handle_ws`]: ferrotracker_core::Tracker::handle_ws

use std::io::{self, Read, Write};

use ferrotracker_core::{Relays, Worker, WsConn};
use mio::net::TcpStream;
use tungstenite::error::{CapacityError, Error, ProtocolError};
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, FrameHeader};
use tungstenite::protocol::{Role, WebSocketConfig, WebSocketContext};
use tungstenite::Message;

use super::relay::Batch;
use super::transport::Transport;
use super::Shared;

/// Messages read from one connection per turn of the event loop: then it yields to the others
/// (and is served again after them, in the same turn), so that one client with a deep queue of
/// messages cannot hold the worker, and the replies and relays that a turn produces
/// reach each connection interleaved rather than one connection's replies first.
pub(super) const MESSAGES_PER_TURN: usize = 32;

/// tungstenite's read buffer (its floor: a message larger than this grows it to the message's
/// size, up to `webtorrent.max_message`). Small, for memory per idle connection.
const READ_BUFFER: usize = 2048;

/// A WebSocket connection's state beside its `Conn`.
pub(super) struct Ws {
    ctx: WebSocketContext,
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
    /// Stopped when the turn's budget of [`MESSAGES_PER_TURN`] messages ran out: there may be
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
        let max = shared.tracker.webtorrent().max_message;
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_message_size(Some(max))
            .max_frame_size(Some(max));
        let ctx = if part.is_empty() {
            WebSocketContext::new(Role::Server, Some(config))
        } else {
            WebSocketContext::from_partially_read(part.to_vec(), Role::Server, Some(config))
        };
        Box::new(Ws {
            ctx,
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
    pub(super) fn tick(
        &mut self,
        shared: &Shared,
        now: u32,
        transport: &mut Transport,
        stream: &mut TcpStream,
        out: &mut Vec<u8>,
    ) -> bool {
        let idle_timeout = shared.tracker.webtorrent().idle_timeout;
        let mut io = Io {
            transport,
            stream,
            out,
        };
        if now >= self.last_message.saturating_add(idle_timeout) {
            let _ = self.ctx.close(&mut io, Some(close_frame(CloseCode::Away)));
            return false;
        }
        if !self.pinged && self.ctx.can_write() {
            self.pinged = true;
            let _ = self.ctx.write(&mut io, Message::Ping(Default::default()));
            let _ = self.ctx.flush(&mut io);
        }
        true
    }

    /// Shutdown: a close frame (1001, going away) into `out`.
    pub(super) fn going_away(
        &mut self,
        transport: &mut Transport,
        stream: &mut TcpStream,
        out: &mut Vec<u8>,
    ) {
        if self.ctx.can_write() {
            let mut io = Io {
                transport,
                stream,
                out,
            };
            let _ = self.ctx.close(&mut io, Some(close_frame(CloseCode::Away)));
            let _ = self.ctx.flush(&mut io);
        }
    }

    /// Appends `msg` to `out` as one text frame, unless a close frame has gone out already.
    pub(super) fn send_text(&self, out: &mut Vec<u8>, msg: &[u8]) {
        if self.ctx.can_write() {
            push_text(out, msg);
        }
    }

    /// Reads and answers messages until the socket has nothing more, `out` is `max_out` long
    /// or `budget` messages have been read (it counts down). Replies go into `out`, unless it
    /// is `drop_at` long already (then they are dropped and counted: the client reads too
    /// slowly); relays into `pending` (delivered by the caller after this connection is
    /// served), unless `takes` says their connection takes none now. `scratch` is the worker's
    /// reply buffer.
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
        scratch: &mut Vec<u8>,
        relays: &mut Relays,
        pending: &mut Batch,
        takes: &dyn Fn(u64) -> bool,
    ) -> Input {
        let now = shared.now();
        let mut io = Io {
            transport,
            stream,
            out,
        };
        let result = loop {
            if io.out.len() >= max_out {
                break Input::Full;
            }
            if *budget == 0 {
                break Input::Yield;
            }
            let msg = match self.ctx.read(&mut io) {
                Ok(m) => m,
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break Input::Drained,
                Err(Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(Error::ConnectionClosed | Error::AlreadyClosed | Error::Io(_)) => {
                    return Input::Gone
                }
                Err(e) => {
                    let code = match e {
                        Error::Capacity(CapacityError::MessageTooLong { .. }) => CloseCode::Size,
                        Error::Capacity(_) => CloseCode::Size,
                        Error::Utf8(_) => CloseCode::Invalid,
                        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
                            return Input::Gone
                        }
                        _ => CloseCode::Protocol,
                    };
                    w.counters.ws_protocol_errors.inc();
                    let _ = self.ctx.close(&mut io, Some(close_frame(code)));
                    break Input::Closing;
                }
            };
            self.last_frame = now;
            self.pinged = false;
            match msg {
                Message::Text(text) => {
                    *budget -= 1;
                    self.last_message = now;
                    if let Some(rl) = shared.http_limiter() {
                        if !rl.allow(ip, shared.now_ms()) {
                            w.counters.ws_rate_limited.inc();
                            let _ = self
                                .ctx
                                .close(&mut io, Some(close_frame(CloseCode::Policy)));
                            break Input::Closing;
                        }
                    }
                    shared.tracker.handle_ws_to(
                        w,
                        &mut self.state,
                        text.as_str(),
                        now,
                        scratch,
                        relays,
                        takes,
                    );
                    if scratch.is_empty() {
                    } else if io.out.len() < drop_at {
                        self.send_text(io.out, scratch);
                    } else {
                        w.counters.ws_replies_dropped.inc();
                    }
                    for (relay, m) in relays.iter() {
                        pending.push(relay, m);
                    }
                }
                Message::Binary(_) => {
                    w.counters.ws_protocol_errors.inc();
                    let _ = self
                        .ctx
                        .close(&mut io, Some(close_frame(CloseCode::Unsupported)));
                    break Input::Closing;
                }
                Message::Close(_) => break Input::Closing,
                // tungstenite queues the pong itself.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        };
        // The pong or close reply tungstenite queued, into `out`.
        if self.ctx.flush(&mut io).is_err() && !matches!(result, Input::Closing) {
            return Input::Closing;
        }
        result
    }
}

/// Appends a server's (unmasked) text frame carrying `msg` to `out`.
pub(super) fn push_text(out: &mut Vec<u8>, msg: &[u8]) {
    let header = FrameHeader {
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    };
    // Writing into a Vec does not fail.
    let _ = header.format(msg.len() as u64, out);
    out.extend_from_slice(msg);
}

/// The `Sec-WebSocket-Accept` value for a request's `Sec-WebSocket-Key` (RFC 6455 section 4.2.2).
pub(super) fn accept_key(key: &[u8]) -> String {
    tungstenite::handshake::derive_accept_key(key)
}

fn close_frame(code: CloseCode) -> CloseFrame {
    CloseFrame {
        code,
        reason: Default::default(),
    }
}

/// tungstenite's view of a connection: reads come from the transport (`WouldBlock` passes
/// through), writes go into the connection's `out` buffer, which the caller sends.
struct Io<'a> {
    transport: &'a mut Transport,
    stream: &'a mut TcpStream,
    out: &'a mut Vec<u8>,
}

impl Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.transport.read(self.stream, buf)
    }
}

impl Write for Io<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_frames_have_the_right_length_forms() {
        for (len, head) in [
            (5usize, 2usize),
            (125, 2),
            (126, 4),
            (65_535, 4),
            (65_536, 10),
        ] {
            let mut out = Vec::new();
            push_text(&mut out, &vec![b'a'; len]);
            assert_eq!(out.len(), head + len, "{len}");
            assert_eq!(out[0], 0x81);
        }
    }

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
