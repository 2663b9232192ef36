//! What carries a connection's bytes: the socket itself, or TLS over it. [`conns`] reads
//! requests and writes replies through a [`Transport`] and sees plaintext either way, so
//! keep-alive, pipelining, streamed replies, limits and timeouts are the same over TLS.
//!
//! A plain connection pays one enum tag: the TLS state (a [`rustls::ServerConnection`]) is
//! boxed. An idle kept-alive TLS connection holds rustls' read buffer at its floor (4 KiB, the
//! size rustls shrinks it back to once no record is partly buffered) and no send buffer
//! (rustls frees each record once the socket took it).
//!
//! Anything that must come before the TLS bytes (a PROXY protocol header) is read from the
//! socket with [`Transport::read_raw`]; what followed it in the same reads is handed to TLS with
//! [`Transport::feed`] before the first [`Transport::read`].
//!
//! [`conns`]: super::conns

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use rustls::ServerConnection;

/// A connection's transport.
pub(super) enum Transport {
    Plain,
    Tls(Box<ServerConnection>),
}

impl Transport {
    /// Reads plaintext into `buf` (not empty): `Ok(0)` when the client has closed, `WouldBlock`
    /// when the socket has nothing more. Over TLS this also answers the handshake, and a
    /// handshake or record error comes back as an `InvalidData` error (after its alert is sent).
    pub(super) fn read(&mut self, s: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain => s.read(buf),
            Transport::Tls(tls) => tls_read(tls, s, buf),
        }
    }

    /// Reads from the socket itself, under TLS: the bytes before the handshake.
    pub(super) fn read_raw(&mut self, s: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        s.read(buf)
    }

    /// Hands TLS the bytes that [`Transport::read_raw`] read past what came before it, as if
    /// they had been read from the socket. Plain connections keep them where they are: false.
    pub(super) fn feed(&mut self, s: &mut TcpStream, mut bytes: &[u8]) -> io::Result<bool> {
        let Transport::Tls(tls) = self else {
            return Ok(false);
        };
        while !bytes.is_empty() {
            tls.read_tls(&mut bytes)?;
            if let Err(e) = tls.process_new_packets() {
                let _ = tls_flush(tls, s);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
        }
        Ok(true)
    }

    /// A TLS connection.
    pub(super) fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// Whether a read that filled less than the buffer means the socket is empty. Over TLS it
    /// does not: rustls reads one record's worth at a time.
    pub(super) fn short_read_drains(&self) -> bool {
        matches!(self, Transport::Plain)
    }

    /// Takes some of `data` to send: the count taken, or `WouldBlock` when none could be.
    /// Over TLS, the records made from it may wait in rustls (see [`Transport::flush`]), at
    /// most rustls' buffer limit.
    pub(super) fn write(&mut self, s: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain => s.write(data),
            Transport::Tls(tls) => tls_write(tls, s, data),
        }
    }

    /// Sends what the transport itself holds (TLS records): `Ok(true)` when nothing is left.
    pub(super) fn flush(&mut self, s: &mut TcpStream) -> io::Result<bool> {
        match self {
            Transport::Plain => Ok(true),
            Transport::Tls(tls) => tls_flush(tls, s),
        }
    }

    /// Bytes wait in the transport for the socket to take them.
    pub(super) fn wants_write(&self) -> bool {
        match self {
            Transport::Plain => false,
            Transport::Tls(tls) => tls.wants_write(),
        }
    }

    /// A TLS connection whose handshake has not completed.
    pub(super) fn handshaking(&self) -> bool {
        match self {
            Transport::Plain => false,
            Transport::Tls(tls) => tls.is_handshaking(),
        }
    }

    /// Before a close: over TLS, tells the client the reply is complete (close_notify), as far
    /// as the socket takes it without waiting.
    pub(super) fn close(&mut self, s: &mut TcpStream) {
        if let Transport::Tls(tls) = self {
            if !tls.is_handshaking() {
                tls.send_close_notify();
                let _ = tls_flush(tls, s);
            }
        }
    }
}

fn tls_read(tls: &mut ServerConnection, s: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match tls.reader().read(buf) {
            // 0: the client sent close_notify.
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        // Handshake messages go out before more is read; if the socket can't take them now,
        // `wants_write` says so and the caller waits for writability.
        tls_flush(tls, s)?;
        if tls.read_tls(s)? == 0 {
            return Ok(0);
        }
        if let Err(e) = tls.process_new_packets() {
            // rustls has queued the alert that says why.
            let _ = tls_flush(tls, s);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
    }
}

fn tls_write(tls: &mut ServerConnection, s: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
    loop {
        // Takes nothing while rustls holds its buffer limit of records.
        let n = tls.writer().write(data)?;
        let sent_all = tls_flush(tls, s)?;
        if n > 0 || data.is_empty() {
            return Ok(n);
        }
        if !sent_all {
            return Err(io::ErrorKind::WouldBlock.into());
        }
    }
}

fn tls_flush(tls: &mut ServerConnection, s: &mut TcpStream) -> io::Result<bool> {
    while tls.wants_write() {
        match tls.write_tls(s) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
