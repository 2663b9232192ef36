//! Streamed replies' (full scrape, tpbs, statedump) share of the event loop: how many chunks
//! and how much time one stream gets per call, and the queue of streams that yielded their
//! turn and are served again after the loop's socket events, within a time for all of them.

use std::time::{Duration, Instant};

/// Chunks of a streamed reply made per turn of the event loop (each at most about 32 KiB)...
const CHUNKS_PER_TURN: usize = 4;
/// ...and the time a turn spends on one stream at most (each chunk takes a bounded, shorter
/// time: see `ferrotracker_core::fullscrape`), so that streams walking a crowded shard, which
/// may yield no bytes for several calls, leave the loop to its other connections.
const STREAM_TIME_PER_TURN: Duration = Duration::from_millis(1);
/// The time a turn spends on all the streams waiting to go on (not those a socket event woke):
/// with many streams walking a crowded shard, announces still wait at most about this long.
const STREAMS_TIME_PER_TURN: Duration = Duration::from_millis(2);

/// One stream's budget for one call: `CHUNKS_PER_TURN` chunks or `STREAM_TIME_PER_TURN`.
#[derive(Default)]
pub(super) struct Budget {
    chunks: usize,
    /// The clock is read only once a stream has made a chunk this call.
    started: Option<Instant>,
}

impl Budget {
    /// The stream must yield: it goes on the queue.
    #[inline]
    pub(super) fn spent(&self) -> bool {
        let out_of_time = self
            .started
            .is_some_and(|t| t.elapsed() >= STREAM_TIME_PER_TURN);
        self.chunks == CHUNKS_PER_TURN || out_of_time
    }

    /// Counts a chunk about to be made.
    #[inline]
    pub(super) fn charge(&mut self) {
        self.chunks += 1;
        self.started.get_or_insert_with(Instant::now);
    }
}

/// Connections (slab keys) whose streamed reply yielded its turn without blocking.
#[derive(Default)]
pub(super) struct Streams {
    /// Queued for the next turn.
    waiting: Vec<usize>,
    /// Being served this turn.
    now: Vec<usize>,
    /// How many of `now` have been taken.
    served: usize,
    /// When this turn's time for streams is up.
    until: Option<Instant>,
}

impl Streams {
    /// Queues a connection (which marks itself `queued`, so it is here at most once).
    #[inline]
    pub(super) fn push(&mut self, key: usize) {
        self.waiting.push(key);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Forgets every queued connection (the shutdown drain serves them all anyway).
    pub(super) fn clear(&mut self) {
        self.waiting.clear();
    }

    /// Moves every queued connection to `into`.
    pub(super) fn take_all(&mut self, into: &mut Vec<usize>) {
        into.append(&mut self.waiting);
    }

    /// Starts a turn: the streams queued so far share `STREAMS_TIME_PER_TURN` (at least one is
    /// served), so that however many are busy, the loop comes back to its other sockets soon.
    /// Those that yield again during the turn wait for the next.
    pub(super) fn begin_turn(&mut self) {
        std::mem::swap(&mut self.waiting, &mut self.now);
        self.served = 0;
        self.until = Some(Instant::now() + STREAMS_TIME_PER_TURN);
    }

    /// The next connection to serve this turn, or `None` when all were or time is up.
    pub(super) fn next(&mut self) -> Option<usize> {
        let key = *self.now.get(self.served)?;
        if self.served > 0 && self.until.is_some_and(|u| Instant::now() >= u) {
            return None;
        }
        self.served += 1;
        Some(key)
    }

    /// Ends a turn: connections not reached (still `queued`) are first in line on the next.
    pub(super) fn end_turn(&mut self) {
        if self.served < self.now.len() {
            let waiting = self.now.len() - self.served;
            self.waiting.extend_from_slice(&self.now[self.served..]);
            self.waiting.rotate_right(waiting);
        }
        self.now.clear();
        self.served = 0;
    }
}
