//! The worker's UDP sockets: BEP 15 datagrams served in `recvmmsg`/`sendmmsg` batches, and each
//! socket's standing with epoll (a busy socket is polled by the loop rather than woken by epoll).

use std::io;
use std::os::fd::AsRawFd;

use ferrotracker_core::Worker;
use ferrotracker_proto::{udp, InfoHash};
use ferrotracker_swarm::PREFETCH_BATCH;

use ferrotracker::udp_batch::Batch;
use mio::net::UdpSocket;
use mio::{Interest, Poll, Token};

use super::Shared;

/// This worker's copies of the UDP sockets, the batch buffers they share, and what the loop
/// needs to know to come back to a socket without an event.
pub(super) struct Udp {
    socks: Vec<UdpSocket>,
    /// The token of `socks[0]`; the others follow.
    base: usize,
    /// Sockets to serve again after this turn's events, without waiting for epoll.
    pending: Vec<bool>,
    state: Vec<UdpState>,
    batch: Batch,
    replies: Vec<Vec<u8>>,
    /// Receive batches served (logged at shutdown).
    batches: u64,
}

impl Udp {
    /// Registers `socks` with tokens from `base` on.
    pub(super) fn new(poll: &Poll, mut socks: Vec<UdpSocket>, base: usize) -> io::Result<Self> {
        for (i, s) in socks.iter_mut().enumerate() {
            poll.registry()
                .register(s, Token(base + i), Interest::READABLE)?;
        }
        let n = socks.len();
        Ok(Udp {
            socks,
            base,
            pending: vec![false; n],
            // A busy UDP socket is taken out of epoll (see `udp_after_turn`).
            state: vec![UdpState::default(); n],
            batch: Batch::new(),
            replies: Batch::reply_buffers(),
            batches: 0,
        })
    }

    /// Some socket is to be served this turn without an event: the loop must not sleep.
    pub(super) fn any_pending(&self) -> bool {
        self.pending.contains(&true)
    }

    /// Serves the socket whose token epoll reported.
    pub(super) fn on_event(&mut self, shared: &Shared, w: &mut Worker, poll: &Poll, token: Token) {
        let i = token.0 - self.base;
        self.turn(shared, w, poll, i);
    }

    /// Serves the sockets that were busy (or out of epoll) after this turn's events.
    pub(super) fn serve_pending(&mut self, shared: &Shared, w: &mut Worker, poll: &Poll) {
        for i in 0..self.socks.len() {
            if self.pending[i] {
                self.turn(shared, w, poll, i);
            }
        }
    }

    /// At shutdown: answers what has already arrived on every socket, once.
    pub(super) fn serve_all_once(&mut self, shared: &Shared, w: &mut Worker) {
        for sock in &self.socks {
            serve_udp(
                shared,
                w,
                sock,
                &mut self.batch,
                &mut self.replies,
                &mut self.batches,
            );
        }
    }

    /// Receive batches served, and times a socket was taken out of epoll.
    pub(super) fn totals(&self) -> (u64, u64) {
        let spells = self.state.iter().map(|s| s.busy_spells).sum::<u64>();
        (self.batches, spells)
    }

    fn turn(&mut self, shared: &Shared, w: &mut Worker, poll: &Poll, i: usize) {
        let Some(sock) = self.socks.get_mut(i) else {
            return;
        };
        let turn = serve_udp(
            shared,
            w,
            sock,
            &mut self.batch,
            &mut self.replies,
            &mut self.batches,
        );
        let token = Token(self.base + i);
        self.pending[i] = udp_after_turn(poll, sock, token, &mut self.state[i], turn);
    }
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
