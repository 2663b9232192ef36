//! One worker: an event loop on its own core that serves its share of every listening socket.
//!
//! Each worker owns SO_REUSEPORT copies of all TCP and UDP sockets, its HTTP connections, its
//! buffers and its counters, and shares only the `Tracker` (whose store is sharded). Nothing is
//! allocated per request: connection buffers come from a per-worker pool, UDP uses fixed
//! batches, and replies are written into buffers that are reused.
//!
//! This module owns what the workers share ([`Shared`]) and the loop, which dispatches each
//! event to the module that owns the socket: [`accept`] (listeners and connection limits),
//! [`conns`] (HTTP connections), [`udp`] (datagram batches); [`proxy_header`] is the PROXY
//! protocol stage in front of HTTP; [`stream`] bounds the time streamed replies take from the
//! loop, and [`transport`] carries a connection's bytes in plain or over TLS. [`ws`] serves
//! the connections upgraded to WebSockets (WebTorrent), and [`relay`] carries their relays
//! between workers: a worker's waker token says its inbox has some.

mod accept;
mod conns;
mod proxy_header;
mod relay;
mod stream;
mod transport;
mod udp;
mod ws;

use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrotracker_core::config::HttpConfig;
use ferrotracker_core::ratelimit::{AddressCounts, RateLimiter};
use ferrotracker_core::{Tracker, Worker};
use mio::net::UdpSocket;
use mio::{Events, Poll, Token};

use accept::Acceptor;
pub use accept::Listener;
use conns::{Conns, Why};
pub use relay::Inbox;
use udp::Udp;

/// What every worker shares.
pub struct Shared {
    pub tracker: Tracker,
    pub start: Instant,
    /// Unix time (seconds) at `start`.
    pub start_unix: u32,
    pub shutdown: AtomicBool,
    /// The `http.*` section.
    pub http: HttpConfig,
    /// Open HTTP connections now, all workers together: changed on accept and close only.
    pub http_open: AtomicUsize,
    /// Open HTTP connections per client address (`http.max_connections_per_ip`).
    pub per_ip: AddressCounts,
    /// The per-address rate limit, when `ratelimit.requests_per_second` is set; its config
    /// says which protocols it applies to.
    pub ratelimit: Option<RateLimiter>,
    /// What `listen.tls` connections start their session with (its certificate resolver
    /// follows reloads), when there are any.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Each worker's inbox of WebTorrent relays from the others (by worker index); its waker
    /// also wakes the worker for shutdown.
    pub inboxes: Vec<Inbox>,
    /// Each worker's turns of its loop, read by the systemd watchdog (`notify`).
    pub liveness: crate::notify::Liveness,
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
        self.ratelimit.as_ref().filter(|r| r.config().udp)
    }

    /// The rate limiter, if it applies to HTTP.
    fn http_limiter(&self) -> Option<&RateLimiter> {
        self.ratelimit.as_ref().filter(|r| r.config().http)
    }

    /// Counts a new connection from `ip` against both connection limits; on refusal nothing
    /// stays counted. Every `Ok` is paired with a [`Shared::release`] when the connection closes.
    fn admit(&self, ip: IpAddr) -> Result<(), Refusal> {
        if self.http_open.fetch_add(1, Ordering::Relaxed) >= self.http.max_connections as usize {
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
/// Tokens from here on are connections (slab key + `CONN_BASE`); below it, listeners, then UDP
/// sockets.
const CONN_BASE: usize = 1 << 20;
const TICK: Duration = Duration::from_millis(500);
/// How long, after SIGTERM/SIGINT, a worker keeps answering requests that have arrived and
/// flushing replies before it exits.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Runs until shutdown. `tcp` and `udp` are this worker's copies of the listening sockets.
pub fn run(
    index: usize,
    shared: Arc<Shared>,
    mut poll: Poll,
    tcp: Vec<Listener>,
    udp: Vec<UdpSocket>,
    seed: u64,
) -> io::Result<()> {
    let mut w = shared.tracker.worker(seed);
    w.index = index;
    let mut acceptor = Acceptor::new(&poll, tcp)?;
    let mut udp = Udp::new(&poll, udp, acceptor.len())?;
    let mut conns = Conns::new(index);
    let mut events = Events::with_capacity(1024);
    let mut last_tick = Instant::now();

    while !shared.shutdown.load(Ordering::Relaxed) {
        shared.liveness.beat(index);
        let wait = if udp.any_pending() || !conns.streams.is_empty() {
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
                conns.drain_inbox(&shared, &w);
            } else if t < acceptor.len() {
                acceptor.on_event(t, &shared, &mut conns, &w.counters);
                conns.serve_fresh(&shared, &mut w, &poll);
            } else if t < CONN_BASE {
                udp.on_event(&shared, &mut w, &poll, ev.token());
            } else {
                conns.serve(&shared, &mut w, &poll, t - CONN_BASE, Why::Event);
            }
        }
        conns.serve_streams(&shared, &mut w, &poll);
        udp.serve_pending(&shared, &mut w, &poll);
        shared.tracker.hand_off_sync(&mut w);
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            conns.expire(&shared, &w, &poll);
            acceptor.retry_blocked(&shared, &mut conns, &w.counters);
            // Not registered yet: served (and registered if they must wait) now.
            conns.serve_fresh(&shared, &mut w, &poll);
        }
        // Last: what every connection served in this turn relayed.
        conns.flush_relayed(&shared, &w, &poll);
    }

    // Shutdown: stop accepting, answer what has already arrived, flush, then return.
    acceptor.close(&poll);
    udp.serve_all_once(&shared, &mut w);
    drain(&shared, &mut w, &mut poll, &mut events, &mut conns);
    shared.tracker.hand_off_sync(&mut w);

    // Per-worker share of the load: the scaling benchmark reads these lines.
    let c = w.counters.read();
    let (udp_batches, busy_spells) = udp.totals();
    tracing::info!(
        "worker {index}: {} UDP datagrams in {udp_batches} receive batches ({busy_spells} busy spells served without epoll), {} HTTP announces, {} TCP connections",
        c.udp_packets,
        c.http_announces,
        c.tcp_accepts
    );
    Ok(())
}

/// The shutdown tail of a worker: answers every request that has already arrived (with
/// `Connection: close`), waits for requests whose head is partly there, and flushes replies,
/// until every connection is done or [`SHUTDOWN_GRACE`] has passed; then closes the rest.
fn drain(shared: &Shared, w: &mut Worker, poll: &mut Poll, events: &mut Events, conns: &mut Conns) {
    let end = Instant::now() + SHUTDOWN_GRACE;
    let mut todo: Vec<usize> = conns.keys();
    // Every connection is in `todo`: the queue starts empty.
    conns.streams.clear();
    loop {
        for key in todo.drain(..) {
            conns.serve(shared, w, poll, key, Why::Draining);
        }
        conns.flush_relayed(shared, w, poll);
        let now = Instant::now();
        if conns.is_empty() || now >= end {
            break;
        }
        let wait = if conns.streams.is_empty() {
            (end - now).min(Duration::from_millis(50))
        } else {
            Duration::ZERO
        };
        if let Err(e) = poll.poll(events, Some(wait)) {
            if e.kind() != io::ErrorKind::Interrupted {
                break;
            }
        }
        conns.streams.take_all(&mut todo);
        for ev in events.iter() {
            let t = ev.token().0;
            if ev.token() != WAKER && t >= CONN_BASE {
                todo.push(t - CONN_BASE);
            }
        }
    }
    for key in conns.keys() {
        conns.close(shared, w, key);
    }
}
