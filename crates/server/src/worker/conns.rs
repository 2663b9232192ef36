//! The worker's HTTP connections: their state, the pool their request buffers come from, and
//! serving one (read, answer every buffered request, write, make a streamed reply's next
//! chunks) then closing it unless it is to be kept. A connection upgraded to a WebSocket is
//! served by [`super::ws`] from then on, and its relays delivered here: to a connection of this
//! worker directly, to another worker's through that worker's [`Inbox`].

use std::io;
use std::net::IpAddr;
use std::sync::atomic::Ordering;

use ferrotracker_core::fullscrape::{FullScrape, Progress};
use ferrotracker_core::{After, Relays, Worker};
use ferrotracker_proto::http::{self, Parsed, Route, MAX_REQUEST_BYTES};
use mio::net::TcpStream;
use mio::{Interest, Poll, Token};
use slab::Slab;

use super::proxy_header::{self, Expect, Step};
use super::relay::{self, Batch, Inbox};
use super::stream::{Budget, Streams};
use super::transport::Transport;
use super::ws::{Buffers, Input, Ws};
use super::{Shared, BUSY_ADDRESS, CONN_BASE, RATE_LIMITED};

/// Stop reading from a connection while this much reply data is still unsent.
const MAX_PENDING_OUT: usize = 64 * 1024;
/// Request buffers kept for reuse, at most.
const POOL_MAX: usize = 1024;

/// Why a connection is served: [`Conns::serve`] differs only in what it checks first.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Why {
    /// Epoll reported it, or it was just accepted.
    Event,
    /// Its stream waits in the queue: served only if still `queued`.
    Queued,
    /// Shutdown: served whatever it waits for, and closed once it has nothing left to do.
    Draining,
}

/// The worker's open connections (slab keys are their epoll tokens less `CONN_BASE`).
#[derive(Default)]
pub(super) struct Conns {
    slab: Slab<Conn>,
    pool: Vec<Box<[u8; MAX_REQUEST_BYTES]>>,
    /// Streams that yielded their turn.
    pub(super) streams: Streams,
    /// Connections accepted and not yet served.
    fresh: Vec<usize>,
    /// This worker's index (in WebSocket connection keys).
    index: usize,
    /// WebSocket connections opened here so far: the generation in their keys.
    generation: u32,
    /// The handlers' relays for one message, ...
    relays: Relays,
    /// ... those of the connection being served, delivered once it is, ...
    pending: Batch,
    /// ... and those from other workers' (swapped with this worker's inbox).
    inbound: Batch,
    /// WebSocket replies before they are framed, and what is read from a connection.
    scratch: Buffers,
    /// WebSocket connections given relays since the last [`Conns::flush_relayed`]: each is
    /// sent once per turn of the event loop, however many relays it got.
    relayed: Vec<usize>,
    /// By slab key: the WebSocket connection's unsent `out` had reached `webtorrent.max_backlog`
    /// when last looked at, and nothing has been sent since. Relays to it are then dropped
    /// before they are written ([`Tracker::handle_ws_to`]). Never true for a connection that
    /// could take a relay: it is brought up to date whenever a connection sends or is given
    /// something, and is false for the connection being served (checked on delivery).
    ///
    /// [`Tracker::handle_ws_to`]: ferrotracker_core::Tracker::handle_ws_to
    backlogged: Vec<bool>,
}

impl Conns {
    pub(super) fn new(index: usize) -> Self {
        Conns {
            fresh: Vec::with_capacity(64),
            index,
            relays: Relays::new(),
            pending: Batch::with_capacity(16 * 1024, 16),
            inbound: Batch::with_capacity(64 * 1024, 256),
            relayed: Vec::with_capacity(64),
            ..Conns::default()
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Every open connection's key.
    pub(super) fn keys(&self) -> Vec<usize> {
        self.slab.iter().map(|(k, _)| k).collect()
    }

    /// Adds an accepted connection, counted against the limits already ([`Shared::admit`]); it
    /// is served by the next [`Conns::serve_fresh`]. A TLS connection's handshake is answered
    /// as its requests are, under the same request deadline.
    pub(super) fn insert(
        &mut self,
        shared: &Shared,
        stream: TcpStream,
        ip: IpAddr,
        transport: Transport,
    ) {
        // TCP_NODELAY comes from the listener (Linux copies it to accepted sockets).
        // Registered with epoll only if the first read leaves it waiting (serve_conn).
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        if self.backlogged.len() <= key {
            self.backlogged.resize(key + 1, false);
        }
        let buf = ReqBuf(Some(
            self.pool
                .pop()
                .unwrap_or_else(|| Box::new([0u8; MAX_REQUEST_BYTES])),
        ));
        entry.insert(Conn {
            expect: Expect::at_accept(shared, ip),
            stream,
            transport,
            ip,
            buf,
            filled: 0,
            skip: 0,
            out: Vec::new(),
            out_pos: 0,
            // A silent new connection is both idle and a request not yet begun: the
            // shorter timeout applies.
            deadline: shared
                .now()
                .saturating_add(shared.http.request_timeout.min(shared.http.idle_timeout)),
            reading_request: shared.http.request_timeout <= shared.http.idle_timeout,
            close_after_write: false,
            wants_write: false,
            body: None,
            body_keep_alive: false,
            queued: false,
            registered: false,
            upgrade: false,
            ws: None,
            relayed: false,
        });
        self.fresh.push(key);
    }

    /// Serves the connections just accepted. The request usually arrives with the connection:
    /// it is read now rather than after another epoll_wait, and a connection answered and
    /// closed on that first read is never registered.
    pub(super) fn serve_fresh(&mut self, shared: &Shared, w: &mut Worker, poll: &Poll) {
        let mut fresh = std::mem::take(&mut self.fresh);
        for key in fresh.drain(..) {
            self.serve(shared, w, poll, key, Why::Event);
        }
        self.fresh = fresh;
    }

    /// Serves the streams that yielded their turn (see [`Streams::begin_turn`]).
    pub(super) fn serve_streams(&mut self, shared: &Shared, w: &mut Worker, poll: &Poll) {
        self.streams.begin_turn();
        while let Some(key) = self.streams.next() {
            self.serve(shared, w, poll, key, Why::Queued);
        }
        self.streams.end_turn();
    }

    /// Serves connection `key` (see [`serve_conn`]), then closes it unless it is to be kept.
    #[inline]
    pub(super) fn serve(
        &mut self,
        shared: &Shared,
        w: &mut Worker,
        poll: &Poll,
        key: usize,
        why: Why,
    ) {
        let Some(c) = self.slab.get_mut(key) else {
            return;
        };
        match why {
            Why::Event => {}
            Why::Queued if c.queued => c.queued = false,
            Why::Queued => return,
            Why::Draining => c.queued = false,
        }
        if c.ws.is_none() {
            let mut keep = serve_conn(shared, w, poll, key, c, &mut self.streams);
            if why == Why::Draining {
                keep = keep && !(c.filled == 0 && !c.unsent() && c.body.is_none());
            }
            if !keep || !c.upgrade {
                if !keep {
                    self.close(shared, w, key);
                }
                return;
            }
            // The 101 is in `out`: from here on a WebSocket.
            c.upgrade = false;
            self.generation = self.generation.wrapping_add(1);
            let conn = relay::conn_key(self.index, key, self.generation);
            let Some(buf) = c.buf.0.take() else { return };
            c.ws = Some(Ws::new(
                shared,
                conn,
                buf.get(..c.filled).unwrap_or_default(),
                shared.now(),
            ));
            c.filled = 0;
            w.counters.ws_opened.inc();
            if self.pool.len() < POOL_MAX {
                self.pool.push(buf);
            }
        }
        if why == Why::Event && c.queued {
            // It waits its turn in `streams` (it yielded with messages left): not read here,
            // which would give it a second slice, but what it has unsent goes out.
            if !write_ws(poll, key, c) {
                self.close(shared, w, key);
            }
            return;
        }
        // Its own backlog changes as it is served: relays to it are checked on delivery.
        if let Some(b) = self.backlogged.get_mut(key) {
            *b = false;
        }
        let (index, backlogged) = (self.index, &self.backlogged);
        let takes = |to: u64| {
            let (worker, k) = relay::split_key(to);
            worker != index || !backlogged.get(k).copied().unwrap_or(false)
        };
        let keep = serve_ws(
            shared,
            w,
            poll,
            key,
            c,
            why,
            &mut self.scratch,
            &mut self.relays,
            &mut self.pending,
            &takes,
            &mut self.streams,
        );
        if !keep {
            self.close(shared, w, key);
        } else {
            self.note_backlog(shared, key);
        }
        if !self.pending.is_empty() {
            let mut pending = std::mem::take(&mut self.pending);
            self.deliver(shared, w, &pending);
            pending.clear();
            self.pending = pending;
        }
    }

    /// Brings [`Conns::backlogged`] up to date for connection `key`.
    fn note_backlog(&mut self, shared: &Shared, key: usize) {
        let Some(c) = self.slab.get(key) else { return };
        let over = c.ws.is_some() && c.over_backlog(shared);
        if let Some(b) = self.backlogged.get_mut(key) {
            *b = over;
        }
    }

    /// Delivers relays: to connections of this worker directly, to other workers' through
    /// their inboxes.
    fn deliver(&mut self, shared: &Shared, w: &Worker, batch: &Batch) {
        for i in 0..batch.len() {
            let Some((r, msg)) = batch.get(i) else { break };
            let (worker, key) = relay::split_key(r.to);
            if worker == self.index {
                self.deliver_here(shared, w, key, r, msg);
            } else {
                let sent = shared
                    .inboxes
                    .get(worker)
                    .is_some_and(|b: &Inbox| b.send(r, msg));
                if !sent {
                    w.counters.ws_relays_dropped.inc();
                }
            }
        }
    }

    fn deliver_here(
        &mut self,
        shared: &Shared,
        w: &Worker,
        key: usize,
        r: ferrotracker_core::Relay,
        msg: &[u8],
    ) {
        let Some(c) = self.slab.get_mut(key) else {
            return;
        };
        if c.ws.is_none() {
            return;
        }
        // A client that does not read cannot make the tracker queue for it without bound.
        if c.over_backlog(shared) {
            w.counters.ws_relays_dropped.inc();
            if let Some(b) = self.backlogged.get_mut(key) {
                *b = true;
            }
            return;
        }
        let Some(ws) = c.ws.as_mut() else { return };
        let Some(msg) = shared
            .tracker
            .ws_relayed(&mut ws.state, r, msg, shared.now())
        else {
            return;
        };
        ws.send_text(&mut c.out, msg);
        let over = c.over_backlog(shared);
        // Sent at the end of the turn, with whatever else it gets by then.
        if !c.relayed {
            c.relayed = true;
            self.relayed.push(key);
        }
        if let Some(b) = self.backlogged.get_mut(key) {
            *b = over;
        }
    }

    /// Sends what the relays of this turn of the event loop put in their connections' `out`:
    /// one write (over TLS, one record) per connection rather than one per relay.
    pub(super) fn flush_relayed(&mut self, shared: &Shared, w: &Worker, poll: &Poll) {
        let mut relayed = std::mem::take(&mut self.relayed);
        for key in relayed.drain(..) {
            let Some(c) = self.slab.get_mut(key) else {
                continue;
            };
            if !std::mem::replace(&mut c.relayed, false) {
                continue;
            }
            if !write_ws(poll, key, c) {
                self.close(shared, w, key);
            } else {
                self.note_backlog(shared, key);
            }
        }
        self.relayed = relayed;
    }

    /// Delivers the relays other workers queued for this one.
    pub(super) fn drain_inbox(&mut self, shared: &Shared, w: &Worker) {
        let Some(inbox) = shared.inboxes.get(self.index) else {
            return;
        };
        let mut inbound = std::mem::take(&mut self.inbound);
        inbox.take(&mut inbound);
        if !inbound.is_empty() {
            self.deliver(shared, w, &inbound);
            inbound.clear();
        }
        self.inbound = inbound;
    }

    /// Closes the connections whose deadline has passed, counting which timeout closed each;
    /// pings WebSocket connections that have been quiet.
    pub(super) fn expire(&mut self, shared: &Shared, w: &Worker, poll: &Poll) {
        let now = shared.now();
        let expired: Vec<usize> = self
            .slab
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(k, _)| k)
            .collect();
        for k in expired {
            if let Some(c) = self.slab.get_mut(k) {
                if let Some(ws) = c.ws.as_mut() {
                    let alive = ws.tick(shared, now, &mut c.out);
                    c.deadline = ws.deadline(shared);
                    if alive {
                        if !write_ws(poll, k, c) {
                            self.close(shared, w, k);
                        } else {
                            self.note_backlog(shared, k);
                        }
                        continue;
                    }
                    w.counters.ws_idle_timeouts.inc();
                    // The close frame, as far as the socket takes it now.
                    let _ = flush(c);
                    self.close(shared, w, k);
                    continue;
                }
                // Counted once, by the stage the connection was in: an operator reads a TLS
                // handshake cut short as a handshake failure (a TLS slowloris), and HTTP
                // timeouts as HTTP clients that went quiet.
                if c.expect == Expect::Header {
                    proxy_header::timed_out(&w.counters);
                } else if c.transport.handshaking() {
                    w.counters.tls_handshake_timeouts.inc();
                } else if c.reading_request {
                    w.counters.http_request_timeouts.inc();
                } else {
                    w.counters.http_idle_timeouts.inc();
                }
                self.remove(shared, w, k);
                continue;
            }
            self.close(shared, w, k);
        }
    }

    pub(super) fn close(&mut self, shared: &Shared, w: &Worker, key: usize) {
        // Closed before its handshake completed, by anything but a timeout (counted by
        // `expire`) or the PROXY stage (counted there): an error, or the client gone.
        if let Some(c) = self.slab.get(key) {
            if c.transport.handshaking() && c.expect == Expect::Nothing {
                w.counters.tls_handshake_failures.inc();
            }
        }
        self.remove(shared, w, key);
    }

    /// Closes the connection and frees what it holds, counting nothing about why.
    fn remove(&mut self, shared: &Shared, w: &Worker, key: usize) {
        if let Some(b) = self.backlogged.get_mut(key) {
            *b = false;
        }
        if let Some(mut c) = self.slab.try_remove(key) {
            shared.release(c.ip);
            if let Some(ws) = &c.ws {
                shared.tracker.ws_closed(&ws.state);
                w.counters.ws_closed.inc();
            }
            c.transport.close(&mut c.stream);
            // Closing the socket (dropping `c`) takes it out of epoll too: no deregister or
            // shutdown call, two system calls less per connection.
            if let (Some(buf), true) = (c.buf.0.take(), self.pool.len() < POOL_MAX) {
                self.pool.push(buf);
            }
        }
    }
}

/// A connection's request buffer, from the pool; given back when the connection becomes a
/// WebSocket (whose framing has its own buffer), after which it reads as empty.
struct ReqBuf(Option<Box<[u8; MAX_REQUEST_BYTES]>>);

impl std::ops::Deref for ReqBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_deref().map_or(&[], |b| &b[..])
    }
}

impl std::ops::DerefMut for ReqBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.0.as_deref_mut().map_or(&mut [], |b| &mut b[..])
    }
}

struct Conn {
    stream: TcpStream,
    /// Plain, or TLS over `stream`: `buf` and `out` hold plaintext either way.
    transport: Transport,
    /// The client: the socket's peer, or the one a trusted proxy's PROXY header named.
    ip: IpAddr,
    /// What the first bytes must be before HTTP (`http.proxy_protocol`).
    expect: Expect,
    buf: ReqBuf,
    filled: usize,
    /// Request body bytes still to discard.
    skip: usize,
    out: Vec<u8>,
    out_pos: usize,
    /// When the connection is closed if nothing happens: `http.request_timeout` after the first
    /// byte of a request head (or after accept), else `http.idle_timeout` after the last reply.
    deadline: u32,
    /// `deadline` is a request deadline (for counting which timeout closed the connection).
    reading_request: bool,
    close_after_write: bool,
    wants_write: bool,
    /// A streamed reply (full scrape, tpbs, statedump) being sent: its next chunk is made only
    /// when `out` has drained, so a slow reader holds one chunk, not the whole body.
    body: Option<Box<FullScrape>>,
    /// Keep the connection open after `body` ends.
    body_keep_alive: bool,
    /// In the worker's `streams` queue: more chunks can be made without waiting for an event.
    queued: bool,
    /// Registered with epoll. A new connection is read and answered before it is registered,
    /// and one answered and closed on that first read (most clients) never is: two system
    /// calls (EPOLL_CTL_ADD, and the removal at close) less per connection.
    registered: bool,
    /// The last request was a WebSocket upgrade, answered 101: the connection becomes a
    /// WebSocket once served.
    upgrade: bool,
    /// A WebSocket connection.
    ws: Option<Box<Ws>>,
    /// In [`Conns::relayed`]: relays wait in `out` for the end of the turn.
    relayed: bool,
}

impl Conn {
    /// Reply bytes not yet taken by the socket: in `out`, or in the transport (TLS records).
    fn unsent(&self) -> bool {
        self.out_pos < self.out.len() || self.transport.wants_write()
    }

    /// A WebSocket connection whose unsent `out` has reached `webtorrent.max_backlog`: relays
    /// to it are dropped.
    fn over_backlog(&self, shared: &Shared) -> bool {
        self.out.len() - self.out_pos >= shared.tracker.webtorrent().max_backlog
    }

    /// Puts the connection on `streams`, to be served again after the loop's socket events.
    fn queue(&mut self, key: usize, streams: &mut Streams) {
        if !self.queued {
            self.queued = true;
            streams.push(key);
        }
    }
}

/// Reads, answers and writes until the socket would block. Returns false to close.
///
/// A streamed reply makes at most a [`Budget`] of chunks per call; if the socket still takes
/// more, the connection goes on `streams` and is served again after the other events, so
/// one fast full-scrape reader cannot hold the event loop.
fn serve_conn(
    shared: &Shared,
    w: &mut Worker,
    poll: &Poll,
    key: usize,
    c: &mut Conn,
    streams: &mut Streams,
) -> bool {
    if c.queued {
        // An event for a connection whose stream waits in `streams`, where streams share a
        // bounded time per turn: the stream is not run here (that would give it a second
        // slice), but a client that has gone is noticed now, and its stream's place freed.
        if c.filled == c.buf.len() {
            return true;
        }
        return match c.transport.read(&mut c.stream, &mut c.buf[c.filled..]) {
            Ok(0) => false,
            Ok(n) => {
                c.filled += n;
                true
            }
            Err(e) => matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ),
        };
    }
    let mut drained = false;
    let mut budget = Budget::default();
    loop {
        // Requests already buffered (pipelined behind a reply that had to wait) come first.
        answer_buffered(shared, w, c);
        if c.upgrade {
            // The caller makes it a WebSocket (the 101 goes out with its first flush).
            return true;
        }
        if !flush(c) {
            return false;
        }
        if !c.unsent() {
            if let Some(mut body) = c.body.take() {
                if budget.spent() {
                    c.body = Some(body);
                    c.queue(key, streams);
                    // Registered, so that a client that goes away is seen while it waits.
                    return c.registered || set_interest(poll, key, c, Interest::READABLE);
                }
                budget.charge();
                c.deadline = shared.now().saturating_add(shared.http.idle_timeout);
                match shared.tracker.continue_stream(w, &mut body, &mut c.out) {
                    Progress::More => c.body = Some(body),
                    Progress::Done => {
                        if !c.body_keep_alive {
                            c.close_after_write = true;
                        }
                    }
                }
                continue;
            }
        }
        if c.unsent() {
            // Still sending: wait for writability before reading more (backpressure).
            if !c.wants_write {
                c.wants_write = true;
                return set_interest(poll, key, c, Interest::READABLE | Interest::WRITABLE);
            }
            return true;
        }
        if c.close_after_write {
            return false;
        }
        if c.wants_write {
            c.wants_write = false;
            if !set_interest(poll, key, c, Interest::READABLE) {
                return false;
            }
        }
        if c.filled == c.buf.len() {
            // Not reached: a full buffer without a complete head has been answered 500.
            return false;
        }
        if drained {
            // The last read came back short, so the socket was empty: with edge-triggered
            // readiness, new bytes bring a new event, and a read now would only say EAGAIN.
            return c.registered || set_interest(poll, key, c, Interest::READABLE);
        }
        let space = c.buf.len() - c.filled;
        let raw = c.expect != Expect::Nothing;
        let read = if raw {
            // A PROXY header comes before the TLS bytes too.
            c.transport.read_raw(&mut c.stream, &mut c.buf[c.filled..])
        } else {
            c.transport.read(&mut c.stream, &mut c.buf[c.filled..])
        };
        match read {
            Ok(0) => return false,
            Ok(n) => {
                c.filled += n;
                drained = if raw {
                    // Under TLS the bytes after the header go to rustls first (feed), which
                    // may hold records of them: read on.
                    n < space && !c.transport.is_tls()
                } else {
                    c.transport.drained(n, space)
                };
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if c.transport.wants_write() {
                    // A TLS handshake reply the socket could not take yet.
                    c.wants_write = true;
                    return set_interest(poll, key, c, Interest::READABLE | Interest::WRITABLE);
                }
                return c.registered || set_interest(poll, key, c, Interest::READABLE);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
}

/// Registers the connection with epoll for `interest`, or changes its interest if it is
/// registered already (adding a socket that is ready reports it at once, so nothing that
/// arrived before is missed). False if epoll refused: the caller closes the connection.
fn set_interest(poll: &Poll, key: usize, c: &mut Conn, interest: Interest) -> bool {
    let t = Token(CONN_BASE + key);
    let r = if c.registered {
        poll.registry().reregister(&mut c.stream, t, interest)
    } else {
        poll.registry().register(&mut c.stream, t, interest)
    };
    c.registered = r.is_ok();
    c.registered
}

/// Answers every complete request in the buffer (pipelining), appending replies to `c.out`.
fn answer_buffered(shared: &Shared, w: &mut Worker, c: &mut Conn) {
    let now = shared.now();
    if c.expect != Expect::Nothing && !take_proxy_header(shared, w, c) {
        return;
    }

    // Requests behind a streamed reply wait for it to end.
    while !c.close_after_write && !c.upgrade && c.body.is_none() && c.out.len() < MAX_PENDING_OUT {
        if c.skip > 0 {
            let d = c.skip.min(c.filled);
            consume(c, d);
            c.skip -= d;
            if c.skip > 0 {
                return;
            }
        }
        if c.filled == 0 {
            return;
        }
        let client_header = shared.tracker.client_header();
        match http::parse_request(&c.buf[..c.filled], client_header) {
            Ok(Parsed::Incomplete) => {
                if !c.reading_request {
                    // The first bytes of a request head: it has request_timeout to complete.
                    c.reading_request = true;
                    c.deadline = now.saturating_add(shared.http.request_timeout);
                }
                return;
            }
            Ok(Parsed::Complete(mut req)) => {
                // Replies during shutdown say `Connection: close`.
                req.keep_alive &= shared.http.keepalive && !shared.shutdown.load(Ordering::Relaxed);
                let (head, body) = (req.head_len, req.body_len);
                c.reading_request = false;
                if let Some(rl) = shared.http_limiter() {
                    if !rl.allow(c.ip, shared.now_ms()) {
                        w.counters.http_rate_limited.inc();
                        http::write_error(&mut c.out, 429, RATE_LIMITED, false);
                        c.close_after_write = true;
                        return;
                    }
                }
                if let Some(key) = upgrade_key(shared, &req) {
                    http::write_switching_protocols(&mut c.out, ws_accept(key).as_bytes());
                    consume(c, head.min(c.filled));
                    c.upgrade = true;
                    return;
                }
                let after = shared.tracker.handle_http(w, &req, c.ip, now, &mut c.out);
                match after {
                    After::KeepOpen => {}
                    After::Close => c.close_after_write = true,
                    After::Stream { keep_alive } => {
                        c.body = w.stream.take();
                        c.body_keep_alive = keep_alive;
                    }
                }
                consume(c, head.min(c.filled));
                c.skip = body;
                c.deadline = now.saturating_add(shared.http.idle_timeout);
            }
            Err(e) => {
                shared.tracker.http_framing_error(w, e, &mut c.out);
                c.close_after_write = true;
            }
        }
    }
}

/// The PROXY protocol stage on the connection's first bytes ([`proxy_header`]): consumes the
/// header and takes the client it names. True once HTTP may follow.
fn take_proxy_header(shared: &Shared, w: &Worker, c: &mut Conn) -> bool {
    match proxy_header::step(shared, &w.counters, c.expect, c.ip, &c.buf[..c.filled]) {
        Step::Wait => {
            if c.filled > 0 && !c.reading_request {
                // As a request head: request_timeout from the first byte.
                c.reading_request = true;
                c.deadline = shared.now().saturating_add(shared.http.request_timeout);
            }
            false
        }
        Step::Pass { consumed, client } => {
            consume(c, consumed);
            c.ip = client;
            c.expect = Expect::Nothing;
            if c.transport.is_tls() {
                // What was read past the header is the start of the TLS handshake.
                let fed = c.transport.feed(&mut c.stream, &c.buf[..c.filled]);
                c.filled = 0;
                if fed.is_err() {
                    c.close_after_write = true;
                    return false;
                }
            }
            true
        }
        Step::Close => {
            c.close_after_write = true;
            false
        }
        Step::Busy => {
            http::write_error(&mut c.out, 503, BUSY_ADDRESS, false);
            c.close_after_write = true;
            false
        }
    }
}

fn consume(c: &mut Conn, n: usize) {
    c.buf.copy_within(n..c.filled, 0);
    c.filled -= n;
}

/// Writes pending output; false on a broken connection.
fn flush(c: &mut Conn) -> bool {
    while c.out_pos < c.out.len() {
        match c.transport.write(&mut c.stream, &c.out[c.out_pos..]) {
            Ok(0) => return false,
            Ok(n) => c.out_pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    if c.close_after_write && c.body.is_none() {
        // The last reply is all in the transport: its end goes in the same write.
        c.transport.end();
    }
    if c.transport.flush(&mut c.stream).is_err() {
        return false;
    }
    c.out.clear();
    c.out_pos = 0;
    if c.out.capacity() > 4 * MAX_PENDING_OUT {
        c.out.shrink_to(MAX_PENDING_OUT);
    }
    true
}

/// The key of a WebSocket upgrade to accept: `GET /announce` (any path routed as an announce)
/// or `GET /`, when `webtorrent` is on. Any other request, upgrade or not, is HTTP.
fn upgrade_key<'a>(shared: &Shared, req: &http::Request<'a>) -> Option<&'a [u8]> {
    let key = req.websocket_key?;
    if !shared.tracker.webtorrent().enabled || req.body_len != 0 {
        return None;
    }
    let route = http::route(req, shared.tracker.stats_path().as_bytes());
    matches!(route, Route::Announce | Route::Root).then_some(key)
}

fn ws_accept(key: &[u8]) -> String {
    super::ws::accept_key(key)
}

/// Serves a WebSocket connection: reads and answers its messages (see [`Ws::serve`]) and
/// sends `out`, stopping reads while much is unsent. False to close it.
#[allow(clippy::too_many_arguments)]
fn serve_ws(
    shared: &Shared,
    w: &mut Worker,
    poll: &Poll,
    key: usize,
    c: &mut Conn,
    why: Why,
    scratch: &mut Buffers,
    relays: &mut Relays,
    pending: &mut Batch,
    takes: &dyn Fn(u64) -> bool,
    streams: &mut Streams,
) -> bool {
    let Some(ws) = c.ws.as_mut() else {
        return false;
    };
    if why == Why::Draining && !c.close_after_write {
        ws.going_away(&mut c.out);
        c.close_after_write = true;
    }
    let mut budget = super::ws::FRAMES_PER_TURN;
    loop {
        if !flush(c) {
            return false;
        }
        if c.close_after_write {
            if c.unsent() {
                return write_ws(poll, key, c);
            }
            return false;
        }
        let Some(ws) = c.ws.as_mut() else {
            return false;
        };
        // Below half of `webtorrent.max_backlog` unsent, reading pauses when `out` reaches
        // that half, to see whether the socket takes it (a client that reads loses no reply,
        // however many requests it sent at once). Past it, the client is slow: its replies are
        // dropped (relays to it only past the whole backlog: an offer or an answer is worth
        // more to it than counts it will get again), and its messages are still read (its
        // announces matter to the swarm) until MAX_PENDING_OUT past the backlog, which bounds
        // what control frames (pongs) can add.
        let max_backlog = shared.tracker.webtorrent().max_backlog;
        let half = c.out_pos + max_backlog / 2;
        let slow = c.out.len() >= half;
        let input = ws.serve(
            shared,
            w,
            c.ip,
            &mut c.transport,
            &mut c.stream,
            &mut c.out,
            if slow {
                c.out_pos + max_backlog + MAX_PENDING_OUT
            } else {
                half
            },
            half,
            &mut budget,
            scratch,
            relays,
            pending,
            takes,
        );
        c.deadline = ws.deadline(shared);
        match input {
            Input::Gone => return false,
            Input::Closing => c.close_after_write = true,
            // Flushed at the top of the loop, then looked at again.
            Input::Full if !slow => {}
            Input::Full => {
                // Wait for the socket to take `out` before reading more (backpressure).
                if !flush(c) {
                    return false;
                }
                if c.unsent() {
                    return write_ws(poll, key, c);
                }
            }
            Input::Drained => {
                if !flush(c) {
                    return false;
                }
                return write_ws(poll, key, c);
            }
            Input::Yield => {
                // Served again after the other connections (see `FRAMES_PER_TURN`).
                c.queue(key, streams);
                return write_ws(poll, key, c);
            }
        }
    }
}

/// Sends what a WebSocket connection has in `out` as far as the socket takes it, and sets
/// its epoll interest: writable too while something is left. False on a broken connection.
fn write_ws(poll: &Poll, key: usize, c: &mut Conn) -> bool {
    if !flush(c) {
        return false;
    }
    let wants = c.unsent();
    if wants != c.wants_write || !c.registered {
        c.wants_write = wants;
        let interest = if wants {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        return set_interest(poll, key, c, interest);
    }
    true
}
