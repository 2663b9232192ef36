//! One worker: an event loop on its own core that serves its share of every listening socket.
//!
//! Each worker owns SO_REUSEPORT copies of all TCP and UDP sockets, its HTTP connections, its
//! buffers and its counters, and shares only the `Tracker` (whose store is sharded). Nothing is
//! allocated per request: connection buffers come from a per-worker pool, UDP uses fixed
//! batches, and replies are written into buffers that are reused.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrotracker_core::fullscrape::{FullScrape, Progress};
use ferrotracker_core::{After, Counters, Tracker, Worker};
use ferrotracker_proto::http::{self, Parsed, MAX_REQUEST_BYTES};
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::udp_batch::{Batch, BATCH};

/// What every worker shares.
pub struct Shared {
    pub tracker: Tracker,
    pub start: Instant,
    /// Unix time (seconds) at `start`.
    pub start_unix: u32,
    pub shutdown: AtomicBool,
    pub http_keepalive: bool,
    pub http_idle_timeout: u32,
    /// Each worker's counters, published about once a second for stats.
    pub counters: Vec<Mutex<Counters>>,
}

impl Shared {
    /// The only clock the tracker sees: Unix seconds, anchored at start and then advanced by
    /// the monotonic clock, so that stored times can be dumped as opentracker does (minutes since
    /// the epoch) and a wall-clock step never mass-expires peers.
    pub fn now(&self) -> u32 {
        self.start_unix
            .wrapping_add(self.start.elapsed().as_secs() as u32)
    }
}

pub const WAKER: Token = Token(usize::MAX - 1);
const CONN_BASE: usize = 1 << 20;
/// Stop reading from a connection while this much reply data is still unsent.
const MAX_PENDING_OUT: usize = 64 * 1024;
const TICK: Duration = Duration::from_millis(500);
/// Chunks of a streamed reply made per turn of the event loop (each about 32 KiB).
const CHUNKS_PER_TURN: usize = 4;

struct Conn {
    stream: TcpStream,
    ip: IpAddr,
    buf: Box<[u8; MAX_REQUEST_BYTES]>,
    filled: usize,
    /// Request body bytes still to discard.
    skip: usize,
    out: Vec<u8>,
    out_pos: usize,
    deadline: u32,
    close_after_write: bool,
    wants_write: bool,
    /// A streamed reply (full scrape, tpbs, statedump) being sent: its next chunk is made only
    /// when `out` has drained, so a slow reader holds one chunk, not the whole body.
    body: Option<Box<FullScrape>>,
    /// Keep the connection open after `body` ends.
    body_keep_alive: bool,
    /// In the worker's `streaming` list: more chunks can be made without waiting for an event.
    queued: bool,
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
    let mut w = Worker::new(seed);
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
    // Connections whose streamed reply yielded its turn without blocking (served after events).
    let mut streaming: Vec<usize> = Vec::new();
    let mut streaming_now: Vec<usize> = Vec::new();
    let mut udp_batches = 0u64;

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
                accept_all(
                    &shared,
                    &mut poll,
                    &tcp[t],
                    &mut conns,
                    &mut pool,
                    &mut w.counters,
                );
            } else if t < CONN_BASE {
                let i = t - udp_base;
                let Some(sock) = udp.get(i) else {
                    continue;
                };
                udp_pending[i] = serve_udp(
                    &shared,
                    &mut w,
                    sock,
                    &mut batch,
                    &mut replies,
                    &mut udp_batches,
                );
            } else {
                let key = t - CONN_BASE;
                let keep = match conns.get_mut(key) {
                    Some(c) => serve_conn(&shared, &mut w, &poll, key, c, &mut streaming),
                    None => continue,
                };
                if !keep {
                    close(&mut poll, &mut conns, &mut pool, key);
                }
            }
        }
        std::mem::swap(&mut streaming, &mut streaming_now);
        for key in streaming_now.drain(..) {
            let keep = match conns.get_mut(key) {
                Some(c) if c.queued => {
                    c.queued = false;
                    serve_conn(&shared, &mut w, &poll, key, c, &mut streaming)
                }
                _ => continue,
            };
            if !keep {
                close(&mut poll, &mut conns, &mut pool, key);
            }
        }
        for (i, sock) in udp.iter().enumerate() {
            if udp_pending[i] {
                udp_pending[i] = serve_udp(
                    &shared,
                    &mut w,
                    sock,
                    &mut batch,
                    &mut replies,
                    &mut udp_batches,
                );
            }
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            let now = shared.now();
            let expired: Vec<usize> = conns
                .iter()
                .filter(|(_, c)| c.deadline <= now)
                .map(|(k, _)| k)
                .collect();
            for k in expired {
                close(&mut poll, &mut conns, &mut pool, k);
            }
            if let Some(m) = shared.counters.get(index) {
                *m.lock().unwrap_or_else(|e| e.into_inner()) = w.counters;
            }
            shared.tracker.publish(index, &w.counters);
        }
    }
    if let Some(m) = shared.counters.get(index) {
        *m.lock().unwrap_or_else(|e| e.into_inner()) = w.counters;
    }
    tracing::debug!(
        "worker {index}: {} datagrams in {udp_batches} receive batches",
        w.counters.udp_packets
    );
    Ok(())
}

fn accept_all(
    shared: &Shared,
    poll: &mut Poll,
    listener: &TcpListener,
    conns: &mut Slab<Conn>,
    pool: &mut Vec<Box<[u8; MAX_REQUEST_BYTES]>>,
    counters: &mut Counters,
) {
    loop {
        match listener.accept() {
            Ok((mut stream, addr)) => {
                counters.tcp_accepts += 1;
                let _ = stream.set_nodelay(true);
                let entry = conns.vacant_entry();
                let token = Token(CONN_BASE + entry.key());
                if poll
                    .registry()
                    .register(&mut stream, token, Interest::READABLE)
                    .is_err()
                {
                    continue;
                }
                let buf = pool
                    .pop()
                    .unwrap_or_else(|| Box::new([0u8; MAX_REQUEST_BYTES]));
                entry.insert(Conn {
                    stream,
                    ip: addr.ip().to_canonical(),
                    buf,
                    filled: 0,
                    skip: 0,
                    out: Vec::new(),
                    out_pos: 0,
                    deadline: shared.now() + shared.http_idle_timeout,
                    close_after_write: false,
                    wants_write: false,
                    body: None,
                    body_keep_alive: false,
                    queued: false,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // EMFILE and friends: the connection stays in the backlog; try again next event.
                tracing::warn!("accept failed: {e}");
                return;
            }
        }
    }
}

fn close(
    poll: &mut Poll,
    conns: &mut Slab<Conn>,
    pool: &mut Vec<Box<[u8; MAX_REQUEST_BYTES]>>,
    key: usize,
) {
    if let Some(mut c) = conns.try_remove(key) {
        let _ = poll.registry().deregister(&mut c.stream);
        let _ = c.stream.shutdown(Shutdown::Both);
        if pool.len() < 1024 {
            pool.push(c.buf);
        }
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
    let mut drained = false;
    let mut chunks = 0;
    loop {
        // Requests already buffered (pipelined behind a reply that had to wait) come first.
        answer_buffered(shared, w, c);
        if !flush(c) {
            return false;
        }
        if c.out_pos >= c.out.len() {
            if let Some(mut body) = c.body.take() {
                if chunks == CHUNKS_PER_TURN {
                    c.body = Some(body);
                    if !c.queued {
                        c.queued = true;
                        streaming.push(key);
                    }
                    return true;
                }
                chunks += 1;
                c.deadline = shared.now() + shared.http_idle_timeout;
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
                let t = Token(CONN_BASE + key);
                if poll
                    .registry()
                    .reregister(&mut c.stream, t, Interest::READABLE | Interest::WRITABLE)
                    .is_err()
                {
                    return false;
                }
            }
            return true;
        }
        if c.close_after_write {
            return false;
        }
        if c.wants_write {
            c.wants_write = false;
            let t = Token(CONN_BASE + key);
            if poll
                .registry()
                .reregister(&mut c.stream, t, Interest::READABLE)
                .is_err()
            {
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
            return true;
        }
        let space = c.buf.len() - c.filled;
        match c.stream.read(&mut c.buf[c.filled..]) {
            Ok(0) => return false,
            Ok(n) => {
                c.filled += n;
                drained = n < space;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
    }
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
            Ok(Parsed::Incomplete) => return,
            Ok(Parsed::Complete(mut req)) => {
                req.keep_alive &= shared.http_keepalive;
                let (head, body) = (req.head_len, req.body_len);
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
                c.deadline = now + shared.http_idle_timeout;
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

/// Serves the socket in batches: receive up to BATCH datagrams, answer, send, repeat. Returns
/// true if datagrams may still be waiting (the turn ended first); the loop then comes back
/// without waiting for a new readiness edge.
fn serve_udp(
    shared: &Shared,
    w: &mut Worker,
    sock: &UdpSocket,
    batch: &mut Batch,
    replies: &mut [Vec<u8>],
    batches: &mut u64,
) -> bool {
    let fd = sock.as_raw_fd();
    for _ in 0..UDP_BATCHES_PER_TURN {
        let n = match batch.recv(fd) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!("recvmmsg: {e}");
                return false;
            }
        };
        *batches += 1;
        let now = shared.now();
        for (i, reply) in replies.iter_mut().enumerate().take(n) {
            match batch.datagram(i) {
                Some((data, src)) => shared.tracker.handle_udp(w, data, src, now, reply),
                None => reply.clear(),
            }
        }
        batch.send(fd, replies, n);
        if n < BATCH {
            // A short batch emptied the queue; new datagrams bring a new readiness event.
            return false;
        }
    }
    true
}
