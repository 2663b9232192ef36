//! What carries a connection's bytes: the socket itself, or TLS over it. [`conns`] reads
//! requests and writes replies through a [`Transport`] and sees plaintext either way, so
//! keep-alive, pipelining, streamed replies, limits and timeouts are the same over TLS.
//!
//! A plain connection pays one enum tag: the TLS state (a [`rustls::ServerConnection`] and
//! what the last socket read said) is boxed. An idle kept-alive TLS connection holds rustls' read buffer at its floor (4 KiB, the
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
    Tls(Box<Tls>),
}

/// A TLS session over a connection's socket.
pub(super) struct Tls {
    conn: ServerConnection,
    /// Decrypted bytes rustls holds that [`Transport::read`] has not handed out yet.
    plaintext: usize,
    /// The last socket read came back short (the socket was empty) and `plaintext` was 0 after
    /// it: another read would only say `WouldBlock`.
    drained: bool,
}

impl Transport {
    /// A TLS transport for a session not yet begun.
    pub(super) fn tls(conn: ServerConnection) -> Transport {
        Transport::Tls(Box::new(Tls {
            conn,
            plaintext: 0,
            drained: false,
        }))
    }

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
        tls.drained = false;
        while !bytes.is_empty() {
            tls.conn.read_tls(&mut bytes)?;
            process(tls, s)?;
        }
        Ok(true)
    }

    /// A TLS connection.
    pub(super) fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// After [`Transport::read`] gave `n` bytes into a buffer of `space`: whether the socket is
    /// empty, so that with edge-triggered readiness the next read can wait for an event rather
    /// than be tried now only to say `WouldBlock`. Plain: the read came back short. TLS: the
    /// socket read came back short and every record it brought has been handed out (rustls
    /// decrypts whole records, so a short plaintext read says nothing about the socket).
    pub(super) fn drained(&self, n: usize, space: usize) -> bool {
        match self {
            Transport::Plain => n < space,
            Transport::Tls(tls) => tls.drained,
        }
    }

    /// Takes some of `data` to send: the count taken, or `WouldBlock` when none could be.
    /// Over TLS, the records made from it wait in rustls (at most its buffer limit) until
    /// [`Transport::flush`], so that everything a turn writes leaves in one system call.
    pub(super) fn write(&mut self, s: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain => s.write(data),
            Transport::Tls(tls) => tls_write(&mut tls.conn, s, data),
        }
    }

    /// Sends what the transport itself holds (TLS records): `Ok(true)` when nothing is left.
    pub(super) fn flush(&mut self, s: &mut TcpStream) -> io::Result<bool> {
        match self {
            Transport::Plain => Ok(true),
            Transport::Tls(tls) => tls_flush(&mut tls.conn, s),
        }
    }

    /// Over TLS, queues close_notify (the reply is complete) to go out with the records before
    /// it at the next [`Transport::flush`]: one write for the last reply and its end.
    pub(super) fn end(&mut self) {
        if let Transport::Tls(tls) = self {
            if !tls.conn.is_handshaking() {
                tls.conn.send_close_notify();
            }
        }
    }

    /// Bytes wait in the transport for the socket to take them.
    pub(super) fn wants_write(&self) -> bool {
        match self {
            Transport::Plain => false,
            Transport::Tls(tls) => tls.conn.wants_write(),
        }
    }

    /// A TLS connection whose handshake has not completed.
    pub(super) fn handshaking(&self) -> bool {
        match self {
            Transport::Plain => false,
            Transport::Tls(tls) => tls.conn.is_handshaking(),
        }
    }

    /// Before a close: over TLS, tells the client the reply is complete (close_notify), as far
    /// as the socket takes it without waiting.
    pub(super) fn close(&mut self, s: &mut TcpStream) {
        if let Transport::Tls(tls) = self {
            if !tls.conn.is_handshaking() {
                // Sent once: a second call (after `end`) queues nothing.
                tls.conn.send_close_notify();
                let _ = tls_flush(&mut tls.conn, s);
            }
        }
    }
}

fn tls_read(tls: &mut Tls, s: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut socket_empty = false;
    loop {
        match tls.conn.reader().read(buf) {
            // 0: the client sent close_notify.
            Ok(n) => {
                tls.plaintext = tls.plaintext.saturating_sub(n);
                tls.drained = socket_empty && tls.plaintext == 0;
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        // Handshake messages go out before more is read; if the socket can't take them now,
        // `wants_write` says so and the caller waits for writability.
        tls_flush(&mut tls.conn, s)?;
        if socket_empty {
            // A handshake flight answered; the client's next one brings an event.
            tls.drained = true;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let mut socket = ShortRead {
            socket: s,
            short: false,
        };
        if tls.conn.read_tls(&mut socket)? == 0 {
            return Ok(0);
        }
        socket_empty = socket.short;
        process(tls, s)?;
    }
}

/// Decrypts and handles every whole record rustls has buffered (rustls processes them all, so
/// only a partial record stays behind).
fn process(tls: &mut Tls, s: &mut TcpStream) -> io::Result<()> {
    match tls.conn.process_new_packets() {
        Ok(state) => {
            tls.plaintext = state.plaintext_bytes_to_read();
            Ok(())
        }
        Err(e) => {
            // rustls has queued the alert that says why.
            let _ = tls_flush(&mut tls.conn, s);
            Err(io::Error::new(io::ErrorKind::InvalidData, e))
        }
    }
}

/// The socket as rustls reads it, noting whether the read came back short: TCP hands over
/// everything it holds up to the buffer's size, so a short read emptied the socket.
struct ShortRead<'a> {
    socket: &'a mut TcpStream,
    short: bool,
}

impl Read for ShortRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.socket.read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

fn tls_write(tls: &mut ServerConnection, s: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
    loop {
        // Takes nothing while rustls holds its buffer limit of records.
        let n = tls.writer().write(data)?;
        if n > 0 || data.is_empty() {
            return Ok(n);
        }
        // Full: send some records to make room.
        if !tls_flush(tls, s)? {
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

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::TcpListener;
    use std::sync::Arc;
    use std::thread::JoinHandle;
    use std::time::Duration;

    use mio::{Events, Interest, Poll, Token};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, StreamOwned};

    const REQUEST: &[u8] = b"GET /announce HTTP/1.1\r\n\r\n";
    const REPLY: &[u8] = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

    /// The server side of a TLS 1.3 session over loopback, as the worker holds it.
    struct Server {
        poll: Poll,
        socket: TcpStream,
        transport: Transport,
    }

    impl Server {
        /// Reads from the transport, waiting (at most 10 s) for the socket while it would
        /// block; the handshake is answered on the way.
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let mut events = Events::with_capacity(4);
            loop {
                match self.transport.read(&mut self.socket, buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    r => return r,
                }
                self.poll
                    .poll(&mut events, Some(Duration::from_secs(10)))
                    .expect("poll");
                assert!(
                    !events.is_empty(),
                    "the server socket never became readable"
                );
            }
        }
    }

    /// A server and, on a thread, a client that completes the handshake, sends `records` (each
    /// a TLS record, all in one write) and returns the plaintext it reads until close_notify.
    fn pair(records: &'static [&'static [u8]]) -> (Server, JoinHandle<Vec<u8>>) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("server config");
        let mut roots = RootCertStore::empty();
        roots.add(cert.der().clone()).expect("root");
        let client_config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = std::thread::spawn(move || {
            let socket = std::net::TcpStream::connect(addr).expect("connect");
            socket
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let conn = ClientConnection::new(
                Arc::new(client_config),
                ServerName::try_from("localhost").expect("name"),
            )
            .expect("client");
            let mut tls = StreamOwned::new(conn, socket);
            while tls.conn.is_handshaking() {
                tls.conn.complete_io(&mut tls.sock).expect("handshake");
            }
            for r in records {
                tls.conn.writer().write_all(r).expect("record");
            }
            tls.conn.complete_io(&mut tls.sock).expect("send");
            let mut plain = Vec::new();
            tls.read_to_end(&mut plain).expect("reply and close_notify");
            plain
        });
        let (socket, _) = listener.accept().expect("accept");
        socket.set_nonblocking(true).expect("nonblocking");
        let mut socket = TcpStream::from_std(socket);
        let poll = Poll::new().expect("poll");
        poll.registry()
            .register(&mut socket, Token(0), Interest::READABLE)
            .expect("register");
        let transport =
            Transport::tls(ServerConnection::new(Arc::new(server_config)).expect("server"));
        (
            Server {
                poll,
                socket,
                transport,
            },
            client,
        )
    }

    /// Sends the last reply and its end the way the worker does (write, end, flush).
    fn reply_and_end(s: &mut Server) {
        assert_eq!(
            s.transport.write(&mut s.socket, REPLY).expect("write"),
            REPLY.len()
        );
        // The record waits for the flush, so that close_notify joins it in one write.
        assert!(s.transport.wants_write());
        s.transport.end();
        assert!(s.transport.flush(&mut s.socket).expect("flush"));
    }

    #[test]
    fn a_request_in_one_record_leaves_the_socket_drained() {
        let (mut s, client) = pair(&[REQUEST]);
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).expect("read");
        assert_eq!(&buf[..n], REQUEST);
        assert!(s.transport.drained(n, buf.len()));
        reply_and_end(&mut s);
        assert_eq!(client.join().expect("client"), REPLY);
    }

    #[test]
    fn records_still_held_are_read_before_waiting() {
        let (mut s, client) = pair(&[REQUEST, REQUEST]);
        let mut got = Vec::new();
        let mut buf = [0u8; 10];
        while got.len() < 2 * REQUEST.len() {
            let n = s.read(&mut buf).expect("read");
            got.extend_from_slice(&buf[..n]);
            if got.len() < 2 * REQUEST.len() {
                assert!(
                    !s.transport.drained(n, buf.len()),
                    "drained with plaintext held"
                );
            }
        }
        assert_eq!(got, [REQUEST, REQUEST].concat());
        reply_and_end(&mut s);
        assert_eq!(client.join().expect("client"), REPLY);
    }
}
