//! The tracker process: [`Tracker`] spawns the binary, learns its ports from the `listening
//! on <proto> <addr>` lines on stderr, keeps draining stderr, and stops the process by PID when
//! dropped (SIGTERM, then SIGKILL after a deadline), so a failed assert never leaks a tracker;
//! [`run_to_exit`] runs it to its own exit (a bad configuration, `--help`).

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{TempDir, IO_TIMEOUT};

/// How long the tracker may take to bind and log its sockets.
pub const START_DEADLINE: Duration = Duration::from_secs(15);
/// Between SIGTERM and SIGKILL when a guard is dropped.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// Arguments that bind TCP and UDP on 127.0.0.1 and [::1], all on ephemeral ports.
pub const DUAL: &[&str] = &[
    "-i",
    "127.0.0.1",
    "-p",
    "0",
    "-P",
    "0",
    "-i",
    "::1",
    "-p",
    "0",
    "-P",
    "0",
];
/// Arguments that bind TCP and UDP on 127.0.0.1 only.
pub const V4: &[&str] = &["-i", "127.0.0.1", "-p", "0", "-P", "0"];

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ferrotracker")
}

/// Waits for `child` to exit, at most `deadline`. `None` if it is still running.
pub fn wait_deadline(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + deadline;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() >= end => return None,
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for child {}: {e}", child.id()),
        }
    }
}

pub fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill(2) takes no pointer. The pid is our own child's, which we have not reaped yet, so it cannot have been reused.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({}, {sig}) failed", child.id());
}

/// Runs the binary with `args` to completion (it is expected to exit by itself, e.g. on a
/// bad configuration), killing it if it runs past `deadline`.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

pub fn run_to_exit(args: &[&str], deadline: Duration) -> Finished {
    let ran = run_command(Command::new(bin()).args(args), deadline);
    let Some(status) = ran.status else {
        panic!(
            "ferrotracker {args:?} did not exit within {deadline:?}; stderr:\n{}",
            ran.stderr
        );
    };
    Finished {
        status,
        stdout: ran.stdout,
        stderr: ran.stderr,
    }
}

/// What a command printed, and how it ended: `status` is `None` when it ran past its deadline
/// and was killed.
pub struct Ran {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` (any program: the tracker, node, python3, chromium) with no input and its output
/// collected, killing it (by its PID) if it runs past `deadline`.
pub fn run_command(cmd: &mut Command, deadline: Duration) -> Ran {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
    let out = drain(child.stdout.take().expect("stdout"));
    let err = drain(child.stderr.take().expect("stderr"));
    let status = wait_deadline(&mut child, deadline);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    Ran {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Reads `r` to its end on a thread of its own (so that a full pipe never blocks the child).
pub fn drain<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = r.read_to_end(&mut v);
        String::from_utf8_lossy(&v).into_owned()
    })
}

/// A running tracker, stopped when dropped.
pub struct Tracker {
    child: Option<Child>,
    pub tcp: Vec<SocketAddr>,
    pub udp: Vec<SocketAddr>,
    /// `listen.tls` sockets.
    pub tls: Vec<SocketAddr>,
    log: Arc<Mutex<String>>,
    _dir: Option<TempDir>,
    pub config_path: Option<PathBuf>,
}

impl Tracker {
    /// 127.0.0.1 only, TCP and UDP.
    pub fn v4() -> Tracker {
        Tracker::start(V4, None)
    }

    /// 127.0.0.1 and [::1], TCP and UDP on each.
    pub fn dual() -> Tracker {
        Tracker::start(DUAL, None)
    }

    /// 127.0.0.1 only, TCP and UDP, with `extra` flags after the address and ports.
    pub fn v4_with_flags(extra: &[&str]) -> Tracker {
        Tracker::start(&[V4, extra].concat(), None)
    }

    /// 127.0.0.1 only, with `config` written to a file passed with `-f`.
    pub fn v4_with_config(config: &str) -> Tracker {
        Tracker::start(V4, Some(config))
    }

    /// Starts the binary with `args` (plus `-f <file>` holding `config` if given) and waits
    /// until it has logged one listening line per `-p`/`-P` in `args`.
    pub fn start(args: &[&str], config: Option<&str>) -> Tracker {
        let expected = args.iter().filter(|a| **a == "-p" || **a == "-P").count();
        Tracker::start_expecting(args, config, expected)
    }

    pub fn start_expecting(args: &[&str], config: Option<&str>, expected: usize) -> Tracker {
        // Keep the log format predictable whatever the developer's environment says.
        Tracker::start_with_env(args, config, expected, &[("RUST_LOG", Some("info"))])
    }

    /// As [`start_expecting`](Tracker::start_expecting), with `env` set (`None`: removed)
    /// instead of `RUST_LOG=info`.
    pub fn start_with_env(
        args: &[&str],
        config: Option<&str>,
        expected: usize,
        env: &[(&str, Option<&str>)],
    ) -> Tracker {
        let mut argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut dir = None;
        let mut config_path = None;
        if let Some(text) = config {
            let d = TempDir::new("conf");
            let p = d.write("ferrotracker.conf", text);
            argv.push("-f".into());
            argv.push(p.display().to_string());
            config_path = Some(p);
            dir = Some(d);
        }
        let mut command = Command::new(bin());
        command
            .args(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            match value {
                Some(v) => command.env(name, v),
                None => command.env_remove(name),
            };
        }
        let mut child = command.spawn().expect("spawn ferrotracker");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        {
            let log = Arc::clone(&log);
            // Drains stderr for the life of the process so the child never blocks on a full pipe.
            std::thread::spawn(move || {
                let mut r = BufReader::new(stderr);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match r.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let s = String::from_utf8_lossy(&line).into_owned();
                            log.lock().unwrap_or_else(|e| e.into_inner()).push_str(&s);
                            let _ = tx.send(s);
                        }
                    }
                }
            });
        }
        let mut t = Tracker {
            child: Some(child),
            tcp: Vec::new(),
            udp: Vec::new(),
            tls: Vec::new(),
            log,
            _dir: dir,
            config_path,
        };
        let end = Instant::now() + START_DEADLINE;
        while t.tcp.len() + t.udp.len() + t.tls.len() < expected {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some((proto, addr)) = parse_listening(&line) {
                        match proto {
                            "tcp" => t.tcp.push(addr),
                            "tls" => t.tls.push(addr),
                            _ => t.udp.push(addr),
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "ferrotracker {argv:?} logged {} of {expected} listening lines within \
                     {START_DEADLINE:?}; stderr:\n{}",
                    t.tcp.len() + t.udp.len() + t.tls.len(),
                    t.stderr()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let st = t.child.as_mut().and_then(|c| wait_deadline(c, IO_TIMEOUT));
                    panic!(
                        "ferrotracker {argv:?} closed stderr before listening (exit: {st:?}); \
                         stderr:\n{}",
                        t.stderr()
                    )
                }
            }
        }
        for a in t.tcp.iter().chain(&t.udp).chain(&t.tls) {
            assert_ne!(a.port(), 0, "tracker logged port 0: {a}");
        }
        t
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Everything the tracker wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn find(list: &[SocketAddr], v6: bool, what: &str) -> SocketAddr {
        *list
            .iter()
            .find(|a| a.is_ipv6() == v6)
            .unwrap_or_else(|| panic!("tracker has no {what} socket: {list:?}"))
    }

    pub fn http4(&self) -> SocketAddr {
        Self::find(&self.tcp, false, "IPv4 TCP")
    }
    pub fn http6(&self) -> SocketAddr {
        Self::find(&self.tcp, true, "IPv6 TCP")
    }
    pub fn udp4(&self) -> SocketAddr {
        Self::find(&self.udp, false, "IPv4 UDP")
    }
    pub fn udp6(&self) -> SocketAddr {
        Self::find(&self.udp, true, "IPv6 UDP")
    }
    pub fn https4(&self) -> SocketAddr {
        Self::find(&self.tls, false, "IPv4 TLS")
    }
    pub fn https6(&self) -> SocketAddr {
        Self::find(&self.tls, true, "IPv6 TLS")
    }

    /// Sends `sig` and waits for the exit status (killing the process after `deadline`).
    pub fn stop_with(&mut self, sig: libc::c_int, deadline: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("tracker already stopped");
        signal(&child, sig);
        match wait_deadline(&mut child, deadline) {
            Some(st) => st,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "tracker did not exit within {deadline:?} of signal {sig}; stderr:\n{}",
                    self.stderr()
                );
            }
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            // SAFETY: kill(2) takes no pointer. By PID: our own unreaped child.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            if wait_deadline(&mut child, STOP_DEADLINE).is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Parses `... listening on tcp 127.0.0.1:41234` into ("tcp", addr), in a text log line or a
/// JSON one (`"message":"listening on tcp 127.0.0.1:41234",...`).
pub fn parse_listening(line: &str) -> Option<(&'static str, SocketAddr)> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let mut words = rest.split_whitespace();
    let proto = match words.next()? {
        "tcp" => "tcp",
        "udp" => "udp",
        "tls" => "tls",
        _ => return None,
    };
    let addr = words.next()?.split('"').next()?.parse().ok()?;
    Some((proto, addr))
}
