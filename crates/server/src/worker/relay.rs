//! Carrying WebTorrent relays (offers and answers) to the connection they are for, which may
//! be on another worker: connection keys that name the worker, and one inbox per worker.
//!
//! A WebSocket connection's key (what the store and [`Relay::to`] name it by) is its worker's
//! index, its slab key and a generation that each worker counts up per WebSocket connection, so
//! that a relay for a connection that closed never reaches the next one in its slot
//! ([`ferrotracker_core::Tracker::ws_relayed`] checks the whole key again).
//!
//! Each worker has an [`Inbox`]: a [`Batch`] behind its own mutex, which other workers append
//! to and the owner swaps with an empty one it keeps (double buffering: in steady state
//! neither side allocates). The sender that finds the batch empty wakes the owner's event loop
//! with its mio `Waker`; a batch past [`INBOX_MAX_BYTES`] takes nothing more (dropped, counted),
//! so a slow worker cannot make the others queue without bound.

use std::sync::Mutex;

use ferrotracker_core::webtorrent::Relay;
use mio::Waker;

/// Bytes of messages an inbox holds at most; more are dropped until its worker drains it.
pub(super) const INBOX_MAX_BYTES: usize = 4 << 20;

const KEY_BITS: u32 = 32;
const GEN_BITS: u32 = 22;
const GEN_MASK: u64 = (1 << GEN_BITS) - 1;

/// The key of connection `slab` (slab key) on worker `worker`, generation `gen`.
pub(super) fn conn_key(worker: usize, slab: usize, gen: u32) -> u64 {
    ((worker as u64) << (KEY_BITS + GEN_BITS))
        | ((u64::from(gen) & GEN_MASK) << KEY_BITS)
        | (slab as u64 & u64::from(u32::MAX))
}

/// The worker and slab key a connection key names.
pub(super) fn split_key(key: u64) -> (usize, usize) {
    (
        (key >> (KEY_BITS + GEN_BITS)) as usize,
        (key & u64::from(u32::MAX)) as usize,
    )
}

/// Relays with their messages, in one byte buffer.
#[derive(Default)]
pub(super) struct Batch {
    bytes: Vec<u8>,
    items: Vec<(Relay, usize, usize)>,
}

impl Batch {
    pub(super) fn with_capacity(bytes: usize, items: usize) -> Self {
        Batch {
            bytes: Vec::with_capacity(bytes),
            items: Vec::with_capacity(items),
        }
    }

    pub(super) fn push(&mut self, relay: Relay, msg: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(msg);
        self.items.push((relay, start, self.bytes.len()));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.bytes.clear();
        self.items.clear();
    }

    /// The `i`th relay and its message.
    pub(super) fn get(&self, i: usize) -> Option<(Relay, &[u8])> {
        let &(r, start, end) = self.items.get(i)?;
        Some((r, self.bytes.get(start..end)?))
    }

    pub(super) fn len(&self) -> usize {
        self.items.len()
    }
}

/// One worker's inbox of relays from the other workers.
pub struct Inbox {
    batch: Mutex<Batch>,
    waker: Waker,
}

impl Inbox {
    /// The inbox of the worker whose event loop `waker` wakes.
    pub fn new(waker: Waker) -> Self {
        Inbox {
            batch: Mutex::new(Batch::with_capacity(64 * 1024, 256)),
            waker,
        }
    }

    /// Wakes the worker (shutdown).
    pub fn wake(&self) {
        let _ = self.waker.wake();
    }

    /// Queues a relay for this inbox's worker. False if it was dropped (the inbox is full).
    pub(super) fn send(&self, relay: Relay, msg: &[u8]) -> bool {
        let was_empty = {
            // A poisoned lock means a worker panicked while holding it (the process aborts on
            // panic in release builds): the batch itself is still whole.
            let mut b = self.batch.lock().unwrap_or_else(|e| e.into_inner());
            if b.bytes.len() + msg.len() > INBOX_MAX_BYTES {
                return false;
            }
            let was_empty = b.is_empty();
            b.push(relay, msg);
            was_empty
        };
        if was_empty {
            let _ = self.waker.wake();
        }
        true
    }

    /// Swaps the queued relays into `spare` (which must be empty), leaving `spare`'s buffers
    /// in the inbox.
    pub(super) fn take(&self, spare: &mut Batch) {
        let mut b = self.batch.lock().unwrap_or_else(|e| e.into_inner());
        if !b.is_empty() {
            std::mem::swap(&mut *b, spare);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_worker_and_slot_and_differ_by_generation() {
        let k = conn_key(1023, 123_456, 7);
        assert_eq!(split_key(k), (1023, 123_456));
        assert_ne!(k, conn_key(1023, 123_456, 8));
        assert_ne!(conn_key(0, 1, 0), conn_key(1, 1, 0));
        // The generation wraps within its bits, never into the worker's.
        assert_eq!(split_key(conn_key(3, 9, u32::MAX)), (3, 9));
    }

    #[test]
    fn batch_keeps_messages_apart() {
        let mut b = Batch::default();
        let r = Relay { to: 5, offer: None };
        b.push(r, b"one");
        b.push(r, b"two!");
        assert_eq!(b.len(), 2);
        assert_eq!(b.get(1), Some((r, &b"two!"[..])));
        b.clear();
        assert!(b.is_empty() && b.get(0).is_none());
    }

    #[test]
    fn inbox_is_bounded_and_swaps_buffers() {
        let poll = mio::Poll::new().unwrap();
        let inbox = Inbox::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let r = Relay { to: 1, offer: None };
        let big = vec![b'x'; INBOX_MAX_BYTES / 2];
        assert!(inbox.send(r, &big));
        assert!(inbox.send(r, &big));
        assert!(!inbox.send(r, b"one more byte"));
        let mut spare = Batch::default();
        inbox.take(&mut spare);
        assert_eq!(spare.len(), 2);
        spare.clear();
        assert!(inbox.send(r, b"room again"));
    }
}
