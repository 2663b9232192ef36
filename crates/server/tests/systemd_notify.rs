//! systemd's notification protocol as the service sees it: the test binds a unix datagram
//! socket, starts the tracker with `NOTIFY_SOCKET` (and `WATCHDOG_USEC`) naming it, and reads
//! what it is told: READY=1 once it listens and serves, RELOADING=1 (with MONOTONIC_USEC) then
//! READY=1 around a SIGHUP, STOPPING=1 at SIGTERM, and WATCHDOG=1 pings.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// The tracker under a fake systemd: its notification socket and its stderr.
struct Service {
    child: Child,
    socket: UnixDatagram,
    log: Arc<Mutex<String>>,
    _dir: TempDir,
}

impl Service {
    fn start(watchdog_usec: Option<&str>) -> Service {
        let dir = TempDir::new("notify");
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut cmd = Command::new(bin());
        cmd.args(V4)
            .env("NOTIFY_SOCKET", &path)
            .env("RUST_LOG", "info")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(usec) = watchdog_usec {
            cmd.env("WATCHDOG_USEC", usec);
        }
        let mut child = cmd.spawn().expect("spawn ferrotracker");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        Service {
            child,
            socket,
            log,
            _dir: dir,
        }
    }

    /// The next datagram within `deadline`.
    fn next(&self, deadline: Duration) -> Option<String> {
        let end = Instant::now() + deadline;
        let mut buf = [0u8; 4096];
        while Instant::now() < end {
            if let Ok(n) = self.socket.recv(&mut buf) {
                return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        None
    }

    /// The next datagram, which must be there within a few seconds.
    fn expect(&self, what: &str) -> String {
        self.next(Duration::from_secs(10)).unwrap_or_else(|| {
            panic!(
                "no {what} notification; stderr:\n{}",
                self.log.lock().unwrap()
            )
        })
    }

    /// The listening lines logged before READY=1 (stderr is read by another thread, so it may
    /// lag behind the datagram by a moment).
    fn listening(&self) -> Vec<(&'static str, std::net::SocketAddr)> {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            let found: Vec<_> = self
                .log
                .lock()
                .unwrap()
                .lines()
                .filter_map(parse_listening)
                .collect();
            if found.len() == 2 || Instant::now() > end {
                return found;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(mut self) -> Option<std::process::ExitStatus> {
        signal(&self.child, libc::SIGTERM);
        wait_deadline(&mut self.child, Duration::from_secs(10))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ready_reloading_and_stopping_are_notified() {
    let s = Service::start(None);
    let ready = s.expect("READY");
    assert!(
        ready.lines().any(|l| l == "READY=1"),
        "first message is not READY=1: {ready:?}"
    );
    assert!(ready.contains("STATUS=serving"), "{ready:?}");
    // Ready means bound and serving: both listening lines came first, and a request is answered.
    let listening = s.listening();
    assert_eq!(listening.len(), 2, "{listening:?}");
    let http = listening
        .iter()
        .find(|(p, _)| *p == "tcp")
        .expect("a TCP listener")
        .1;
    let reply = Http::connect(http).get("/stats");
    assert_eq!(reply.status, 200, "{}", reply.status_line);

    signal(&s.child, libc::SIGHUP);
    let reloading = s.expect("RELOADING");
    let mut lines = reloading.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"), "{reloading:?}");
    let usec: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
    assert!(usec > 0);
    let ready = s.expect("READY after the reload");
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");

    signal(&s.child, libc::SIGTERM);
    let stopping = s.expect("STOPPING");
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let status = s.stop().expect("tracker did not exit after SIGTERM");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn watchdog_is_pinged_while_workers_turn() {
    // 400 ms: a ping every 200 ms while every worker's loop turns (at least every 500 ms tick,
    // so each check after the first few sees them all move).
    let s = Service::start(Some("400000"));
    let ready = s.expect("READY");
    assert!(ready.contains("READY=1"), "{ready:?}");
    let mut pings = 0;
    let end = Instant::now() + Duration::from_secs(10);
    while pings < 3 && Instant::now() < end {
        if let Some(m) = s.next(Duration::from_millis(500)) {
            if m == "WATCHDOG=1" {
                pings += 1;
            }
        }
    }
    assert!(
        pings >= 3,
        "{pings} WATCHDOG=1 pings in 10 s with WATCHDOG_USEC=400000; stderr:\n{}",
        s.log.lock().unwrap()
    );
    assert_eq!(s.stop().and_then(|st| st.code()), Some(0));
}

#[test]
fn no_watchdog_pings_without_watchdog_usec() {
    let s = Service::start(None);
    s.expect("READY");
    // Two seconds is many intervals of the test above: a ping here would be sent unasked.
    if let Some(m) = s.next(Duration::from_secs(2)) {
        panic!("unexpected notification without WATCHDOG_USEC: {m:?}");
    }
    assert_eq!(s.stop().and_then(|st| st.code()), Some(0));
}
