//! Accepting HTTP connections: this worker's copies of the listening sockets (plain and TLS),
//! the connection limits checked at accept (a refused plain client gets a whole 503, a TLS
//! client a close), and retrying a listener whose `accept` failed (EMFILE and friends) on the
//! worker's tick.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use ferrotracker_core::counters::LiveCounters;
use ferrotracker_proto::http;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Poll, Token};

use super::conns::Conns;
use super::transport::Transport;
use super::{Refusal, Shared, BUSY, BUSY_ADDRESS};

/// A worker logs a failing `accept` at most this often.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(60);

/// A listening socket, and whether its connections speak TLS.
pub struct Listener {
    pub socket: TcpListener,
    /// `listen.tls`: connections get a TLS session from [`Shared::tls`].
    pub tls: bool,
}

/// The listeners (tokens `0..len`) and what accepting needs besides.
pub(super) struct Acceptor {
    listeners: Vec<Listener>,
    /// The listener's last `accept` failed: retried on the tick, not per event.
    blocked: Vec<bool>,
    /// The 503 replies for [`Refusal::Total`] and [`Refusal::PerAddress`], made once.
    busy: [Vec<u8>; 2],
    log: Throttle,
}

impl Acceptor {
    /// Registers the listeners with tokens `0..listeners.len()`.
    pub(super) fn new(poll: &Poll, mut listeners: Vec<Listener>) -> io::Result<Self> {
        for (i, l) in listeners.iter_mut().enumerate() {
            poll.registry()
                .register(&mut l.socket, Token(i), Interest::READABLE)?;
        }
        let busy = [BUSY, BUSY_ADDRESS].map(|reason| {
            let mut v = Vec::new();
            http::write_error(&mut v, 503, reason, false);
            v
        });
        Ok(Acceptor {
            blocked: vec![false; listeners.len()],
            listeners,
            busy,
            log: Throttle::default(),
        })
    }

    /// The number of listeners: tokens below it are theirs.
    pub(super) fn len(&self) -> usize {
        self.listeners.len()
    }

    /// Accepts everything waiting on listener `i` into `conns` (to be served by
    /// [`Conns::serve_fresh`]).
    pub(super) fn on_event(
        &mut self,
        i: usize,
        shared: &Shared,
        conns: &mut Conns,
        counters: &LiveCounters,
    ) {
        if let Some(l) = self.listeners.get(i) {
            self.blocked[i] = accept_all(shared, l, conns, counters, &self.busy, &mut self.log);
        }
    }

    /// A listener that failed to accept (EMFILE...) has connections left in its backlog but
    /// gets no new readiness edge for them: retried here, on the tick, not per event.
    pub(super) fn retry_blocked(
        &mut self,
        shared: &Shared,
        conns: &mut Conns,
        counters: &LiveCounters,
    ) {
        for (i, l) in self.listeners.iter().enumerate() {
            if self.blocked[i] {
                self.blocked[i] = accept_all(shared, l, conns, counters, &self.busy, &mut self.log);
            }
        }
    }

    /// Shutdown: stops accepting.
    pub(super) fn close(self, poll: &Poll) {
        for mut l in self.listeners {
            let _ = poll.registry().deregister(&mut l.socket);
        }
    }
}

/// Accepts until the backlog is empty. Returns true if `accept` failed (EMFILE and friends:
/// the connection stays in the backlog, and the caller retries on its next tick rather than
/// spinning or logging per event).
fn accept_all(
    shared: &Shared,
    listener: &Listener,
    conns: &mut Conns,
    counters: &LiveCounters,
    busy: &[Vec<u8>; 2],
    log: &mut Throttle,
) -> bool {
    loop {
        match listener.socket.accept() {
            Ok((stream, addr)) => {
                counters.tcp_accepts.inc();
                let ip = addr.ip().to_canonical();
                if let Err(why) = shared.admit(ip) {
                    let reply = match why {
                        Refusal::Total => {
                            counters.conn_limited.inc();
                            &busy[0]
                        }
                        Refusal::PerAddress => {
                            counters.conn_limited_ip.inc();
                            &busy[1]
                        }
                    };
                    if !listener.tls {
                        refuse(stream, reply);
                    }
                    // A TLS client can't read a plain 503: it sees the close (the counters
                    // say why).
                    continue;
                }
                let transport = match (&shared.tls, listener.tls) {
                    (_, false) => Transport::Plain,
                    (Some(config), true) => match rustls::ServerConnection::new(config.clone()) {
                        Ok(tls) => Transport::tls(tls),
                        Err(_) => {
                            counters.tls_handshake_failures.inc();
                            shared.release(ip);
                            continue;
                        }
                    },
                    // Not reached: TLS listeners are bound only with a TLS configuration.
                    (None, true) => {
                        shared.release(ip);
                        continue;
                    }
                };
                conns.insert(shared, stream, ip, transport);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                counters.accept_errors.inc();
                if let Some(more) = log.ready(Instant::now(), ACCEPT_LOG_EVERY) {
                    tracing::warn!(
                        "accept failed: {e} ({more} more failures since the last such line; \
                         see http.max_connections and the open-files limit)"
                    );
                }
                return true;
            }
        }
    }
}

/// Answers a connection that a limit turned away with `reply` (a whole 503) and closes it.
/// The socket's send buffer is empty, so the write does not block; whatever the client has
/// already sent is read first so that the close sends FIN after the reply rather than a reset.
fn refuse(stream: TcpStream, reply: &[u8]) {
    let mut s = &stream;
    let _ = s.write(reply);
    let _ = stream.shutdown(Shutdown::Write);
    let mut sink = [0u8; 2048];
    let _ = s.read(&mut sink);
}

/// At most one log line per interval; counts what it held back.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
    held: u64,
}

impl Throttle {
    /// `Some(lines held back since the last one)` if a line may be logged now.
    fn ready(&mut self, now: Instant, every: Duration) -> Option<u64> {
        if self.last.is_some_and(|t| now.duration_since(t) < every) {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}
