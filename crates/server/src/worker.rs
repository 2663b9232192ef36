//! One worker: an event loop on its own core that serves its share of every listening socket.
//!
//! Each worker owns SO_REUSEPORT copies of all TCP and UDP sockets, its HTTP connections, its
//! buffers and its counters, and shares only the `Tracker` (whose store is sharded). Nothing is
//! allocated per request: connection buffers come from a per-worker pool, UDP uses fixed
//! batches, and replies are written into buffers that are reused.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrotracker_core::counters::LiveCounters;
use ferrotracker_core::fullscrape::{FullScrape, Progress};
use ferrotracker_core::ratelimit::{AddressCounts, RateLimiter};
use ferrotracker_core::{After, Tracker, Worker};
use ferrotracker_proto::http::{self, Parsed, MAX_REQUEST_BYTES};
use ferrotracker_proto::{udp, InfoHash};
use ferrotracker_swarm::PREFETCH_BATCH;
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::udp_batch::Batch;

/// What every worker shares.
pub struct Shared {
    pub tracker: Tracker,
    pub start: Instant,
    /// Unix time (seconds) at `start`.
    pub start_unix: u32,
    pub shutdown: AtomicBool,
    pub http_keepalive: bool,
    pub http_idle_timeout: u32,
    /// Seconds a request head may take from its first byte (and a new connection from accept).
    pub http_request_timeout: u32,
    /// Open HTTP connections allowed in the whole process.
    pub http_max_connections: usize,
    /// Open HTTP connections now, all workers together: changed on accept and close only.
    pub http_open: AtomicUsize,
    /// Open HTTP connections per client address (`http.max_connections_per_ip`).
    pub per_ip: AddressCounts,
    /// The per-address rate limit, when `ratelimit.requests_per_second` is set.
    pub ratelimit: Option<RateLimiter>,
    pub ratelimit_udp: bool,
    pub ratelimit_http: bool,
}

impl Shared {
    /// The only clock the tracker sees: Unix seconds, anchored at start and then advanced by
    /// the monotonic clock, so that stored times can be dumped as opentracker does (minutes since
    /// the epoch) and a wall-clock step never mass-expires peers.
    pub fn now(&self) -> u32 {
        self.start_unix
            .wrapping_add(self.start.elapsed().as_secs() as u32)
    }

    /// Milliseconds since start: the rate limiter's clock.
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The rate limiter, if it applies to UDP.
    fn udp_limiter(&self) -> Option<&RateLimiter> {
        self.ratelimit.as_ref().filter(|_| self.ratelimit_udp)
    }

    /// The rate limiter, if it applies to HTTP.
    fn http_limiter(&self) -> Option<&RateLimiter> {
        self.ratelimit.as_ref().filter(|_| self.ratelimit_http)
    }

    /// Counts a new connection from `ip` against both connection limits; on refusal nothing
    /// stays counted. Every `Ok` is paired with a [`Shared::release`] when the connection closes.
    fn admit(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.http_open.fetch_add(1, Ordering::Relaxed) >= self.http_max_connections {
            self.http_open.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::Total);
        }
        if !self.per_ip.acquire(ip) {
            self.http_open.fetch_sub(1, Ordering::Relaxed);
            return Err(Refusal::PerAddress);
        }
        Ok(())
    }

    fn release(&self, ip: IpAddr) {
        self.http_open.fetch_sub(1, Ordering::Relaxed);
        self.per_ip.release(ip);
    }
}

/// Which connection limit turned a client away.
#[derive(Clone, Copy)]
enum Refusal {
    Total,
    PerAddress,
}

/// Failure reasons of the limits (bencoded in the reply body, so clients can show them).
pub const BUSY: &str = "tracker busy: too many open connections, try again later";
pub const BUSY_ADDRESS: &str = "too many open connections from your address";
pub const RATE_LIMITED: &str = "too many requests from your address, slow down";

pub const WAKER: Token = Token(usize::MAX - 1);
const CONN_BASE: usize = 1 << 20;
/// Stop reading from a connection while this much reply data is still unsent.
const MAX_PENDING_OUT: usize = 64 * 1024;
const TICK: Duration = Duration::from_millis(500);
/// Chunks of a streamed reply made per turn of the event loop (each at most about 32 KiB)...
const CHUNKS_PER_TURN: usize = 4;
/// ...and the time a turn spends on one stream at most (each chunk takes a bounded, shorter
/// time: see `ferrotracker_core::fullscrape`), so that streams walking a crowded shard, which
/// may yield no bytes for several calls, leave the loop to its other connections.
const STREAM_TIME_PER_TURN: Duration = Duration::from_millis(1);
/// The time a turn spends on all the streams waiting to go on (not those a socket event woke):
/// with many streams walking a crowded shard, announces still wait at most about this long.
const STREAMS_TIME_PER_TURN: Duration = Duration::from_millis(2);
/// How long, after SIGTERM/SIGINT, a worker keeps answering requests that have arrived and
/// flushing replies before it exits.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// A worker logs a failing `accept` at most this often.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(60);

struct Conn {
    stream: TcpStream,
    ip: IpAddr,
    buf: Box<[u8; MAX_REQUEST_BYTES]>,
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
    /// In the worker's `streaming` list: more chunks can be made without waiting for an event.
    queued: bool,
    /// Registered with epoll. A new connection is read and answered before it is registered,
    /// and one answered and closed on that first read (most clients) never is: two system
    /// calls (EPOLL_CTL_ADD, and the removal at close) less per connection.
    registered: bool,
}

/// Runs until shutdown. `tcp` and `udp` are this worker's copies of the listening sockets.
pub fn run(
    index: usize,
    shared: Arc<Shared>,
    mut poll: Poll,
    mut tcp: Vec<TcpListener>,
    mut udp: Vec<UdpSocket>,
    seed: u64,
) -> io::Result<()> {
    let mut w = shared.tracker.worker(seed);
    w.index = index;
    for (i, l) in tcp.iter_mut().enumerate() {
        poll.registry().register(l, Token(i), Interest::READABLE)?;
    }
    let udp_base = tcp.len();
    for (i, s) in udp.iter_mut().enumerate() {
        poll.registry()
            .register(s, Token(udp_base + i), Interest::READABLE)?;
    }
    let mut events = Events::with_capacity(1024);
    let mut conns: Slab<Conn> = Slab::new();
    let mut pool: Vec<Box<[u8; MAX_REQUEST_BYTES]>> = Vec::new();
    let mut batch = Batch::new();
    let mut replies = Batch::reply_buffers();
    let mut last_tick = Instant::now();
    let mut udp_pending = vec![false; udp.len()];
    // A busy UDP socket is taken out of epoll (see `udp_after_turn`).
    let mut udp_state = vec![UdpState::default(); udp.len()];
    // Connections whose streamed reply yielded its turn without blocking (served after events).
    let mut streaming: Vec<usize> = Vec::new();
    let mut streaming_now: Vec<usize> = Vec::new();
    let mut udp_batches = 0u64;
    let mut accept_blocked = vec![false; tcp.len()];
    let mut accept_log = Throttle::default();
    let mut fresh: Vec<usize> = Vec::with_capacity(64);
    let busy = [BUSY, BUSY_ADDRESS].map(|reason| {
        let mut v = Vec::new();
        http::write_error(&mut v, 503, reason, false);
        v
    });

    while !shared.shutdown.load(Ordering::Relaxed) {
        let wait = if udp_pending.contains(&true) || !streaming.is_empty() {
            Duration::ZERO
        } else {
            TICK
        };
        if let Err(e) = poll.poll(&mut events, Some(wait)) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            let t = ev.token().0;
            if ev.token() == WAKER {
                continue;
            } else if t < udp_base {
                accept_blocked[t] = accept_all(
                    &shared,
                    &tcp[t],
                    &mut conns,
                    &mut pool,
                    &w.counters,
                    &busy,
                    &mut accept_log,
                    &mut fresh,
                );
                // The request usually arrives with the connection: read it now rather than
                // after another epoll_wait.
                for key in fresh.drain(..) {
                    let keep = match conns.get_mut(key) {
                        Some(c) => serve_conn(&shared, &mut w, &poll, key, c, &mut streaming),
                        None => continue,
                    };
                    if !keep {
                        close(&shared, &mut poll, &mut conns, &mut pool, key);
                    }
                }
            } else if t < CONN_BASE {
                let i = t - udp_base;
                if let Some(sock) = udp.get_mut(i) {
                    let turn = serve_udp(
                        &shared,
                        &mut w,
                        sock,
                        &mut batch,
                        &mut replies,
                        &mut udp_batches,
                    );
                    udp_pending[i] = udp_after_turn(&poll, sock, Token(t), &mut udp_state[i], turn);
                }
            } else {
                let key = t - CONN_BASE;
                let keep = match conns.get_mut(key) {
                    Some(c) => serve_conn(&shared, &mut w, &poll, key, c, &mut streaming),
                    None => continue,
                };
                if !keep {
                    close(&shared, &mut poll, &mut conns, &mut pool, key);
                }
            }
        }
        std::mem::swap(&mut streaming, &mut streaming_now);
        // Streams that yielded share STREAMS_TIME_PER_TURN (at least one is served), so that
        // however many are busy, the loop comes back to its other sockets soon.
        let streams_until = Instant::now() + STREAMS_TIME_PER_TURN;
        let mut served = 0;
        while served < streaming_now.len() && (served == 0 || Instant::now() < streams_until) {
            let key = streaming_now[served];
            served += 1;
            let keep = match conns.get_mut(key) {
                Some(c) if c.queued => {
                    c.queued = false;
                    serve_conn(&shared, &mut w, &poll, key, c, &mut streaming)
                }
                _ => continue,
            };
            if !keep {
                close(&shared, &mut poll, &mut conns, &mut pool, key);
            }
        }
        if served < streaming_now.len() {
            // Not reached this turn (still `queued`): first in line on the next.
            let waiting = streaming_now.len() - served;
            streaming.extend_from_slice(&streaming_now[served..]);
            streaming.rotate_right(waiting);
        }
        streaming_now.clear();
        for (i, sock) in udp.iter_mut().enumerate() {
            if udp_pending[i] {
                let turn = serve_udp(
                    &shared,
                    &mut w,
                    sock,
                    &mut batch,
                    &mut replies,
                    &mut udp_batches,
                );
                let token = Token(udp_base + i);
                udp_pending[i] = udp_after_turn(&poll, sock, token, &mut udp_state[i], turn);
            }
        }
        shared.tracker.hand_off_sync(&mut w);
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            let now = shared.now();
            let expired: Vec<usize> = conns
                .iter()
                .filter(|(_, c)| c.deadline <= now)
                .map(|(k, _)| k)
                .collect();
            for k in expired {
                if let Some(c) = conns.get(k) {
                    if c.reading_request {
                        w.counters.http_request_timeouts.inc();
                    } else {
                        w.counters.http_idle_timeouts.inc();
                    }
                }
                close(&shared, &mut poll, &mut conns, &mut pool, k);
            }
            // A listener that failed to accept (EMFILE...) has connections left in its
            // backlog but gets no new readiness edge for them: retry here, not per event.
            for (i, l) in tcp.iter().enumerate() {
                if accept_blocked[i] {
                    accept_blocked[i] = accept_all(
                        &shared,
                        l,
                        &mut conns,
                        &mut pool,
                        &w.counters,
                        &busy,
                        &mut accept_log,
                        &mut fresh,
                    );
                    // Not registered yet: served (and registered if they must wait) now.
                    for key in fresh.drain(..) {
                        let keep = match conns.get_mut(key) {
                            Some(c) => serve_conn(&shared, &mut w, &poll, key, c, &mut streaming),
                            None => continue,
                        };
                        if !keep {
                            close(&shared, &mut poll, &mut conns, &mut pool, key);
                        }
                    }
                }
            }
        }
    }

    // Shutdown: stop accepting, answer what has already arrived, flush, then return.
    for l in tcp.iter_mut() {
        let _ = poll.registry().deregister(l);
    }
    drop(tcp);
    for sock in &udp {
        serve_udp(
            &shared,
            &mut w,
            sock,
            &mut batch,
            &mut replies,
            &mut udp_batches,
        );
    }
    drain(
        &shared,
        &mut w,
        &mut poll,
        &mut events,
        &mut conns,
        &mut pool,
    );
    shared.tracker.hand_off_sync(&mut w);

    // Per-worker share of the load: the scaling benchmark reads these lines.
    let c = w.counters.read();
    tracing::info!(
        "worker {index}: {} UDP datagrams in {udp_batches} receive batches ({} busy spells served without epoll), {} HTTP announces, {} TCP connections",
        c.udp_packets,
        udp_state.iter().map(|s| s.busy_spells).sum::<u64>(),
        c.http_announces,
        c.tcp_accepts
    );
    Ok(())
}

/// Accepts until the backlog is empty. Returns true if `accept` failed (EMFILE and friends:
/// the connection stays in the backlog, and the caller retries on its next tick rather than
/// spinning or logging per event).
#[allow(clippy::too_many_arguments)]
fn accept_all(
    shared: &Shared,
    listener: &TcpListener,
    conns: &mut Slab<Conn>,
    pool: &mut Vec<Box<[u8; MAX_REQUEST_BYTES]>>,
    counters: &LiveCounters,
    busy: &[Vec<u8>; 2],
    log: &mut Throttle,
    fresh: &mut Vec<usize>,
) -> bool {
    loop {
        match listener.accept() {
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
                    refuse(stream, reply);
                    continue;
                }
                // TCP_NODELAY comes from the listener (Linux copies it to accepted sockets).
                // Registered with epoll only if the first read leaves it waiting (serve_conn).
                let entry = conns.vacant_entry();
                let key = entry.key();
                let buf = pool
                    .pop()
                    .unwrap_or_else(|| Box::new([0u8; MAX_REQUEST_BYTES]));
                entry.insert(Conn {
                    stream,
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
                        .saturating_add(shared.http_request_timeout.min(shared.http_idle_timeout)),
                    reading_request: shared.http_request_timeout <= shared.http_idle_timeout,
                    close_after_write: false,
                    wants_write: false,
                    body: None,
                    body_keep_alive: false,
                    queued: false,
                    registered: false,
                });
                fresh.push(key);
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

fn close(
    shared: &Shared,
    poll: &mut Poll,
    conns: &mut Slab<Conn>,
    pool: &mut Vec<Box<[u8; MAX_REQUEST_BYTES]>>,
    key: usize,
) {
    if let Some(c) = conns.try_remove(key) {
        shared.release(c.ip);
        // Closing the socket (dropping `c`) takes it out of epoll too: no deregister or
        // shutdown call, two system calls less per connection.
        let _ = poll;
        if pool.len() < 1024 {
            pool.push(c.buf);
        }
    }
}

/// The shutdown tail of a worker: answers every request that has already arrived (with
/// `Connection: close`), waits for requests whose head is partly there, and flushes replies,
/// until every connection is done or [`SHUTDOWN_GRACE`] has passed; then closes the rest.
fn drain(
    shared: &Shared,
    w: &mut Worker,
    poll: &mut Poll,
    events: &mut Events,
    conns: &mut Slab<Conn>,
    pool: &mut Vec<Box<[u8; MAX_REQUEST_BYTES]>>,
) {
    let end = Instant::now() + SHUTDOWN_GRACE;
    let mut streaming: Vec<usize> = Vec::new();
    let mut todo: Vec<usize> = conns.iter().map(|(k, _)| k).collect();
    loop {
        for key in todo.drain(..) {
            let keep = match conns.get_mut(key) {
                Some(c) => {
                    c.queued = false;
                    serve_conn(shared, w, poll, key, c, &mut streaming)
                        && !(c.filled == 0 && c.out_pos >= c.out.len() && c.body.is_none())
                }
                None => continue,
            };
            if !keep {
                close(shared, poll, conns, pool, key);
            }
        }
        let now = Instant::now();
        if conns.is_empty() || now >= end {
            break;
        }
        let wait = if streaming.is_empty() {
            (end - now).min(Duration::from_millis(50))
        } else {
            Duration::ZERO
        };
        if let Err(e) = poll.poll(events, Some(wait)) {
            if e.kind() != io::ErrorKind::Interrupted {
                break;
            }
        }
        todo.append(&mut streaming);
        for ev in events.iter() {
            let t = ev.token().0;
            if ev.token() != WAKER && t >= CONN_BASE {
                todo.push(t - CONN_BASE);
            }
        }
    }
    let left: Vec<usize> = conns.iter().map(|(k, _)| k).collect();
    for key in left {
        close(shared, poll, conns, pool, key);
    }
}

/// Reads, answers and writes until the socket would block. Returns false to close.
///
/// A streamed reply makes at most `CHUNKS_PER_TURN` chunks per call; if the socket still takes
/// more, the connection goes on `streaming` and is served again after the other events, so
/// one fast full-scrape reader cannot hold the event loop.
fn serve_conn(
    shared: &Shared,
    w: &mut Worker,
    poll: &Poll,
    key: usize,
    c: &mut Conn,
    streaming: &mut Vec<usize>,
) -> bool {
    if c.queued {
        // An event for a connection whose stream waits in `streaming`, where streams share a
        // bounded time per turn: the stream is not run here (that would give it a second
        // slice), but a client that has gone is noticed now, and its stream's place freed.
        if c.filled == c.buf.len() {
            return true;
        }
        return match c.stream.read(&mut c.buf[c.filled..]) {
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
    let mut chunks = 0;
    // The clock is read only once a stream has made a chunk this call.
    let mut stream_started: Option<Instant> = None;
    loop {
        // Requests already buffered (pipelined behind a reply that had to wait) come first.
        answer_buffered(shared, w, c);
        if !flush(c) {
            return false;
        }
        if c.out_pos >= c.out.len() {
            if let Some(mut body) = c.body.take() {
                let out_of_time =
                    stream_started.is_some_and(|t| t.elapsed() >= STREAM_TIME_PER_TURN);
                if chunks == CHUNKS_PER_TURN || out_of_time {
                    c.body = Some(body);
                    if !c.queued {
                        c.queued = true;
                        streaming.push(key);
                    }
                    // Registered, so that a client that goes away is seen while it waits.
                    return c.registered || set_interest(poll, key, c, Interest::READABLE);
                }
                chunks += 1;
                stream_started.get_or_insert_with(Instant::now);
                c.deadline = shared.now().saturating_add(shared.http_idle_timeout);
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
        if c.out_pos < c.out.len() {
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
        match c.stream.read(&mut c.buf[c.filled..]) {
            Ok(0) => return false,
            Ok(n) => {
                c.filled += n;
                drained = n < space;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
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
    // Requests behind a streamed reply wait for it to end.
    while !c.close_after_write && c.body.is_none() && c.out.len() < MAX_PENDING_OUT {
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
        match http::parse_request(&c.buf[..c.filled]) {
            Ok(Parsed::Incomplete) => {
                if !c.reading_request {
                    // The first bytes of a request head: it has request_timeout to complete.
                    c.reading_request = true;
                    c.deadline = now.saturating_add(shared.http_request_timeout);
                }
                return;
            }
            Ok(Parsed::Complete(mut req)) => {
                // Replies during shutdown say `Connection: close`.
                req.keep_alive &= shared.http_keepalive && !shared.shutdown.load(Ordering::Relaxed);
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
                c.deadline = now.saturating_add(shared.http_idle_timeout);
            }
            Err(e) => {
                shared.tracker.http_framing_error(w, e, &mut c.out);
                c.close_after_write = true;
            }
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
        match c.stream.write(&c.out[c.out_pos..]) {
            Ok(0) => return false,
            Ok(n) => c.out_pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
    c.out.clear();
    c.out_pos = 0;
    if c.out.capacity() > 4 * MAX_PENDING_OUT {
        c.out.shrink_to(MAX_PENDING_OUT);
    }
    true
}

/// Batches per readiness event before the loop looks at its other sockets again.
const UDP_BATCHES_PER_TURN: usize = 16;

/// How a UDP turn ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum UdpTurn {
    /// Every batch of the turn brought datagrams: more are surely waiting.
    Busy,
    /// A receive found the queue empty; whether anything came before it.
    Drained { received: bool },
}

/// A UDP socket's standing with epoll.
#[derive(Clone, Copy)]
struct UdpState {
    registered: bool,
    /// Turns in a row that found nothing while out of epoll.
    idle_turns: u8,
    /// Times the socket was taken out of epoll (logged at shutdown).
    busy_spells: u64,
}

impl Default for UdpState {
    fn default() -> Self {
        UdpState {
            registered: true,
            idle_turns: 0,
            busy_spells: 0,
        }
    }
}

/// Empty turns in a row before a socket served without epoll is registered again.
const UDP_IDLE_TURNS: u8 = 4;

/// Decides after a UDP turn whether the loop comes back to the socket without waiting for
/// epoll (returns true), and takes a busy socket out of epoll or puts an idle one back.
///
/// While a socket is registered, the kernel calls epoll's wakeup hook for every datagram we
/// send (each sent buffer freed signals "writable" to the socket's wait queue): a lock and an
/// interrupt-flag round trip, about 3% of the CPU at full load here. A socket busy for a
/// whole turn is served without epoll (the loop polls it between its other events) until a
/// few turns in a row find it empty; then it is registered again, and epoll reports at once
/// anything that arrived in between.
fn udp_after_turn(
    poll: &Poll,
    sock: &mut UdpSocket,
    token: Token,
    st: &mut UdpState,
    turn: UdpTurn,
) -> bool {
    if st.registered {
        if turn == UdpTurn::Busy {
            st.registered = poll.registry().deregister(sock).is_err();
            st.idle_turns = 0;
            st.busy_spells += 1;
        }
        return turn == UdpTurn::Busy;
    }
    if turn != (UdpTurn::Drained { received: false }) {
        st.idle_turns = 0;
        return true;
    }
    st.idle_turns += 1;
    if st.idle_turns < UDP_IDLE_TURNS {
        return true;
    }
    st.registered = poll
        .registry()
        .register(sock, token, Interest::READABLE)
        .is_ok();
    // If epoll refused, keep polling the socket rather than lose it.
    !st.registered
}

/// Serves the socket in batches: receive up to BATCH datagrams, answer, send, repeat, until a
/// receive finds the queue empty or `UDP_BATCHES_PER_TURN` batches were served.
fn serve_udp(
    shared: &Shared,
    w: &mut Worker,
    sock: &UdpSocket,
    batch: &mut Batch,
    replies: &mut [Vec<u8>],
    batches: &mut u64,
) -> UdpTurn {
    let fd = sock.as_raw_fd();
    for k in 0..UDP_BATCHES_PER_TURN {
        let drained = UdpTurn::Drained { received: k > 0 };
        let n = match batch.recv(fd) {
            Ok(0) => return drained,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!("recvmmsg: {e}");
                return drained;
            }
        };
        *batches += 1;
        // Warm the store for the whole batch first, so its cache misses overlap.
        let mut hashes = [InfoHash([0; 20]); PREFETCH_BATCH];
        let mut k = 0;
        for i in 0..n.min(PREFETCH_BATCH) {
            if let Some(h) = udp::peek_info_hash(batch.payload(i)) {
                hashes[k] = h;
                k += 1;
            }
        }
        shared.tracker.store.prefetch(&hashes[..k]);
        let now = shared.now();
        let limiter = shared.udp_limiter();
        let now_ms = if limiter.is_some() {
            shared.now_ms()
        } else {
            0
        };
        for (i, reply) in replies.iter_mut().enumerate().take(n) {
            reply.clear();
            let Some((data, src)) = batch.datagram(i) else {
                continue;
            };
            if let Some(rl) = limiter {
                // Never answered: a reply to a forged source would be the attack.
                if !rl.allow(src.ip(), now_ms) {
                    w.counters.udp_packets.inc();
                    w.counters.udp_rate_limited.inc();
                    continue;
                }
            }
            if batch.truncated(i) {
                // Larger than any BEP 15 request we serve: dropped, counted as bad.
                w.counters.udp_packets.inc();
                w.counters.udp_bad_packets.inc();
                continue;
            }
            shared.tracker.handle_udp(w, data, src, now, reply);
        }
        batch.send(fd, replies, n);
    }
    UdpTurn::Busy
}
