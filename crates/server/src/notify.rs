//! systemd's service notification protocol (`sd_notify(3)`) and its watchdog: READY=1 once every
//! socket is bound and the workers serve, RELOADING=1/READY=1 around a SIGHUP reload,
//! STOPPING=1 at shutdown, STATUS= lines, and WATCHDOG=1 pings sent only while every worker
//! keeps turning its event loop, so a stuck worker gets the service restarted.
//!
//! Each message is one datagram to the unix socket named by `$NOTIFY_SOCKET` (a path, or an
//! abstract name after `@`). The socket is connected once at start, before a chroot could hide
//! the path; without `$NOTIFY_SOCKET` every call does nothing. Written by hand: it is a few
//! lines of `std`, and nothing here is on a hot path.

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::worker::Shared;

/// Where notifications go; a no-op without `$NOTIFY_SOCKET`.
#[derive(Clone, Default)]
pub struct Notifier {
    socket: Option<Arc<UnixDatagram>>,
    /// Half of `$WATCHDOG_USEC` (as systemd advises), when the watchdog is on for this process.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`; a socket that can't be
    /// reached is logged and leaves notifications off (the tracker serves without them).
    pub fn from_env() -> Notifier {
        let Some(name) = std::env::var_os("NOTIFY_SOCKET") else {
            return Notifier::default();
        };
        let socket = match connect(&name) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                tracing::warn!(
                    "NOTIFY_SOCKET {}: can't connect ({e}); no notifications to systemd",
                    name.to_string_lossy()
                );
                return Notifier::default();
            }
        };
        let watchdog = watchdog_interval(
            std::env::var("WATCHDOG_USEC").ok().as_deref(),
            std::env::var("WATCHDOG_PID").ok().as_deref(),
            std::process::id(),
        );
        Notifier {
            socket: Some(socket),
            watchdog,
        }
    }

    /// Every socket is bound and the workers serve.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// A reload begins; [`Notifier::ready`] ends it. systemd 253+ needs the monotonic time
    /// to tell this reload from an earlier one; older versions ignore it.
    pub fn reloading(&self) {
        self.send(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading",
            monotonic_usec()
        ));
    }

    /// Shutdown has begun (workers draining, statedump being written).
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=stopping");
    }

    /// Starts the thread that pings the watchdog while every worker progresses, when systemd
    /// asked for pings; it returns when `shared.shutdown` is set.
    pub fn spawn_watchdog(
        &self,
        shared: Arc<Shared>,
    ) -> std::io::Result<Option<std::thread::JoinHandle<()>>> {
        let Some(every) = self.watchdog.filter(|_| self.socket.is_some()) else {
            return Ok(None);
        };
        let notifier = self.clone();
        std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || notifier.watchdog_loop(&shared, every))
            .map(Some)
    }

    fn watchdog_loop(&self, shared: &Shared, every: Duration) {
        let mut seen = shared.liveness.snapshot();
        let mut last = Instant::now();
        let mut stuck_logged = false;
        while !shared.shutdown.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            if last.elapsed() < every {
                continue;
            }
            last = Instant::now();
            match shared.liveness.check(&mut seen) {
                None => {
                    self.send("WATCHDOG=1");
                    stuck_logged = false;
                }
                Some(worker) if !stuck_logged => {
                    stuck_logged = true;
                    tracing::error!(
                        "worker {worker} has not turned its event loop for {every:?}: no \
                         watchdog ping, so systemd restarts the service if it stays stuck"
                    );
                }
                Some(_) => {}
            }
        }
    }

    fn send(&self, message: &str) {
        if let Some(s) = &self.socket {
            if let Err(e) = s.send(message.as_bytes()) {
                tracing::debug!("NOTIFY_SOCKET: {e}");
            }
        }
    }
}

/// One counter per worker, bumped once per turn of its event loop (an uncontended relaxed
/// add on the worker's own cache line); the watchdog thread compares them between pings.
pub struct Liveness {
    turns: Box<[PaddedCounter]>,
}

#[repr(align(128))]
#[derive(Default)]
struct PaddedCounter(AtomicU64);

impl Liveness {
    pub fn new(workers: usize) -> Liveness {
        Liveness {
            turns: (0..workers).map(|_| PaddedCounter::default()).collect(),
        }
    }

    /// Worker `index` completed a turn of its loop.
    pub fn beat(&self, index: usize) {
        if let Some(c) = self.turns.get(index) {
            c.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> Vec<u64> {
        self.turns
            .iter()
            .map(|c| c.0.load(Ordering::Relaxed))
            .collect()
    }

    /// `None` when every worker turned since `seen` (which then becomes the present), else the
    /// first worker that did not (and `seen` is kept, so the next ping still needs it to move).
    fn check(&self, seen: &mut [u64]) -> Option<usize> {
        let now = self.snapshot();
        let stuck = first_stuck(seen, &now);
        if stuck.is_none() {
            seen.copy_from_slice(&now);
        }
        stuck
    }
}

/// The first worker whose count has not moved from `before` to `now`.
fn first_stuck(before: &[u64], now: &[u64]) -> Option<usize> {
    before.iter().zip(now).position(|(b, n)| b == n)
}

/// Half the watchdog timeout, if systemd set one for this process (`WATCHDOG_PID` unset or
/// ours: a child that inherited the variables must not ping for its parent).
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok() != Some(own_pid) {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2))
}

fn connect(name: &std::ffi::OsStr) -> std::io::Result<UnixDatagram> {
    use std::os::unix::ffi::OsStrExt;
    let socket = UnixDatagram::unbound()?;
    match name.as_bytes() {
        [b'@', abstract_name @ ..] => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)?;
            socket.connect_addr(&addr)?;
        }
        _ => socket.connect(name)?,
    }
    Ok(socket)
}

/// CLOCK_MONOTONIC in microseconds, as systemd reads it.
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the struct passed in; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_only_when_every_worker_turned() {
        let l = Liveness::new(3);
        let mut seen = l.snapshot();
        // Nobody turned yet: worker 0 is the first stuck.
        assert_eq!(l.check(&mut seen), Some(0));
        l.beat(0);
        l.beat(2);
        assert_eq!(l.check(&mut seen), Some(1));
        l.beat(1);
        // 0 and 2 turned before the last check: still counted, since `seen` was kept.
        assert_eq!(l.check(&mut seen), None);
        // Since that ping only worker 1 and 2 turned: worker 0 is stuck, and stays so.
        l.beat(1);
        l.beat(2);
        assert_eq!(l.check(&mut seen), Some(0));
        l.beat(1);
        assert_eq!(l.check(&mut seen), Some(0));
        l.beat(0);
        assert_eq!(l.check(&mut seen), None);
    }

    #[test]
    fn a_beat_beyond_the_workers_is_ignored() {
        let l = Liveness::new(1);
        l.beat(5);
        assert_eq!(first_stuck(&[0], &l.snapshot()), Some(0));
    }

    #[test]
    fn watchdog_interval_is_half_the_timeout_for_this_process_only() {
        assert_eq!(
            watchdog_interval(Some("30000000"), None, 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(
            watchdog_interval(Some("30000000"), Some("7"), 7),
            Some(Duration::from_secs(15))
        );
        assert_eq!(watchdog_interval(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("x"), None, 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
    }

    #[test]
    fn messages_reach_a_bound_socket() {
        let dir = std::env::temp_dir().join(format!("ft-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            socket: Some(Arc::new(connect(path.as_os_str()).unwrap())),
            watchdog: None,
        };
        n.reloading();
        let mut buf = [0u8; 256];
        let len = server.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..len]).unwrap();
        assert!(text.starts_with("RELOADING=1\nMONOTONIC_USEC="), "{text}");
        let usec: u64 = text.lines().nth(1).unwrap()[15..].parse().unwrap();
        assert!(usec > 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_socket_is_a_no_op() {
        Notifier::default().ready("x");
        Notifier::default().stopping();
    }
}
