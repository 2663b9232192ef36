//! Black-box test harness: starts the real `ferrotracker` binary on ephemeral ports and talks to
//! it over real sockets on 127.0.0.1 / 127.0.0.2 / [::1] only.
//!
//! * [`Tracker`] spawns the binary, learns its ports from the `listening on <proto> <addr>`
//!   lines on stderr, keeps draining stderr, and stops the process by PID when dropped (SIGTERM,
//!   then SIGKILL after a deadline), so a failed assert never leaks a tracker.
//! * [`Http`] is a minimal raw HTTP/1.1 client over `TcpStream` that can reuse a connection and
//!   read pipelined replies.
//! * [`Udp`] is a BEP 15 client built on `ferrotracker_proto::udp`.
//!
//! Every blocking call is bounded by a socket timeout or a deadline.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpStream, UdpSocket,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrotracker_proto::bencode::{self, Value};
use ferrotracker_proto::udp::{self as pudp, AnnounceRequest, Response};
use ferrotracker_proto::{Event, InfoHash, PeerId};

pub use ferrotracker_proto::testutil::percent_encode;

/// How long the tracker may take to bind and log its sockets.
pub const START_DEADLINE: Duration = Duration::from_secs(15);
/// How long a reply may take on loopback before the test gives up.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);
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

// ------------------------------------------------------------------------------ dependencies

/// For a test that needs what a fresh machine may lack (python3-libtorrent, network
/// namespaces, root): `check` is `Ok` with what the test needs, or `Err` saying what is missing.
///
/// Missing, and `CI` unset (a developer's `cargo test`): prints which test is skipped, why, and
/// how to run it, and returns `None`; the caller returns without asserting anything. Missing
/// with `CI` set (`scripts/test.sh` in CI, which runs as root and installs everything): the
/// test fails, since there a missing dependency is a broken setup, not a reason to skip.
pub fn require_or_skip<T>(dependency: &str, check: Result<T, String>) -> Option<T> {
    let why = match check {
        Ok(v) => return Some(v),
        Err(why) => why,
    };
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    if ci() {
        panic!("{test} needs {dependency}, which is required when CI is set: {why}");
    }
    // Straight to stderr, not `eprintln!`: the test harness would capture that and show it
    // only for a failing test.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs {dependency}: {why}. `bash scripts/test.sh` (as root) installs \
         and runs everything; with CI set, a missing dependency fails the test instead."
    );
    None
}

/// `CI` is set to anything but empty (CI services set `CI=true`).
pub fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// `Ok` when running as root (privilege drop, chroot and network namespaces need it).
pub fn root() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        Ok(())
    } else {
        Err("not running as root".into())
    }
}

// ------------------------------------------------------------------------------ temp files

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "ferrotracker-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` in the directory and returns its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, contents).expect("write temp file");
        p
    }
}

/// A temp dir the tracker can still create files in (dumps, FIFOs) after it has dropped root
/// for `nobody`: mode 0777.
pub fn writable_dir(tag: &str) -> TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = TempDir::new(tag);
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    d
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ------------------------------------------------------------------------------ process

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
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ferrotracker");
    let out = drain(child.stdout.take().expect("stdout"));
    let err = drain(child.stderr.take().expect("stderr"));
    let status = match wait_deadline(&mut child, deadline) {
        Some(st) => st,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "ferrotracker {args:?} did not exit within {deadline:?}; stderr:\n{}",
                err.join().unwrap_or_default()
            );
        }
    };
    Finished {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

fn drain<R: Read + Send + 'static>(mut r: R) -> std::thread::JoinHandle<String> {
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
        let mut child = Command::new(bin())
            .args(&argv)
            // Keep the log format predictable whatever the developer's environment says.
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ferrotracker");
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
            log,
            _dir: dir,
            config_path,
        };
        let end = Instant::now() + START_DEADLINE;
        while t.tcp.len() + t.udp.len() < expected {
            let left = end.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some((proto, addr)) = parse_listening(&line) {
                        match proto {
                            "tcp" => t.tcp.push(addr),
                            _ => t.udp.push(addr),
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "ferrotracker {argv:?} logged {} of {expected} listening lines within \
                     {START_DEADLINE:?}; stderr:\n{}",
                    t.tcp.len() + t.udp.len(),
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
        for a in t.tcp.iter().chain(&t.udp) {
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

/// Parses `... listening on tcp 127.0.0.1:41234` into ("tcp", addr).
pub fn parse_listening(line: &str) -> Option<(&'static str, SocketAddr)> {
    let rest = &line[line.find("listening on ")? + "listening on ".len()..];
    let mut words = rest.split_whitespace();
    let proto = match words.next()? {
        "tcp" => "tcp",
        "udp" => "udp",
        _ => return None,
    };
    let addr = words.next()?.parse().ok()?;
    Some((proto, addr))
}

// ------------------------------------------------------------------------------ encoding

/// A test info_hash that needs escaping (NUL, '%', '&', '=', '?', space, high bytes).
pub fn hash(n: u8) -> [u8; 20] {
    let mut h = [0u8; 20];
    h[0] = n;
    h[1..9].copy_from_slice(&[0x00, b'%', b'&', b'=', b'?', b' ', 0xff, b'+']);
    for (i, b) in h.iter_mut().enumerate().skip(9) {
        *b = (i as u8).wrapping_mul(37).wrapping_add(n);
    }
    h
}

/// A distinct 20-byte peer id per port.
pub fn peer_id(port: u16) -> [u8; 20] {
    let mut id = *b"-FT0001-000000000000";
    let digits = format!("{port:012}");
    id[8..].copy_from_slice(digits.as_bytes());
    id
}

/// `/announce?info_hash=..&peer_id=..&port=..&left=..` followed by `extra` (e.g.
/// `&event=started`).
pub fn announce_target(h: &[u8; 20], port: u16, left: u64, extra: &str) -> String {
    format!(
        "/announce?info_hash={}&peer_id={}&port={port}&left={left}{extra}",
        percent_encode(h),
        percent_encode(&peer_id(port))
    )
}

pub fn scrape_target(hashes: &[[u8; 20]]) -> String {
    let q: Vec<String> = hashes
        .iter()
        .map(|h| format!("info_hash={}", percent_encode(h)))
        .collect();
    format!("/scrape?{}", q.join("&"))
}

// ------------------------------------------------------------------------------ HTTP client

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status_line: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// True if the reply says the connection closes after it.
    pub fn says_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    /// The body as a bencoded `failure reason`, if it is one.
    pub fn failure_reason(&self) -> Option<String> {
        let v = bencode::decode(&self.body).ok()?;
        v.get(b"failure reason")
            .and_then(Value::as_bytes)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    pub fn announce(&self) -> AnnounceReply {
        assert_eq!(
            self.status,
            200,
            "announce failed: {self:?} body {:?}",
            self.body_str()
        );
        AnnounceReply::parse(&self.body)
    }

    pub fn scrape(&self) -> Vec<([u8; 20], ScrapeEntry)> {
        assert_eq!(
            self.status,
            200,
            "scrape failed: {self:?} body {:?}",
            self.body_str()
        );
        parse_scrape(&self.body)
    }
}

/// A decoded HTTP announce reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceReply {
    pub complete: i64,
    pub incomplete: i64,
    pub downloaded: Option<i64>,
    pub interval: i64,
    pub min_interval: i64,
    /// `None` if the key is absent.
    pub peers: Option<Vec<SocketAddrV4>>,
    pub peers6: Option<Vec<SocketAddrV6>>,
    /// The keys in reply order.
    pub keys: Vec<String>,
}

impl AnnounceReply {
    pub fn parse(body: &[u8]) -> AnnounceReply {
        let v = bencode::decode(body)
            .unwrap_or_else(|e| panic!("reply is not bencode ({e:?}): {:?}", lossy(body)));
        let dict = v
            .as_dict()
            .unwrap_or_else(|| panic!("reply is not a dict: {:?}", lossy(body)));
        assert!(
            v.get(b"failure reason").is_none(),
            "announce failed: {:?}",
            lossy(body)
        );
        let int = |k: &[u8]| {
            v.get(k)
                .and_then(Value::as_int)
                .unwrap_or_else(|| panic!("no int {:?} in {:?}", lossy(k), lossy(body)))
        };
        let peers = v.get(b"peers").map(|p| {
            let b = p
                .as_bytes()
                .unwrap_or_else(|| panic!("peers is not compact: {:?}", lossy(body)));
            compact4(b)
        });
        let peers6 = v.get(b"peers6").map(|p| {
            let b = p
                .as_bytes()
                .unwrap_or_else(|| panic!("peers6 is not a string: {:?}", lossy(body)));
            compact6(b)
        });
        AnnounceReply {
            complete: int(b"complete"),
            incomplete: int(b"incomplete"),
            downloaded: v.get(b"downloaded").and_then(Value::as_int),
            interval: int(b"interval"),
            min_interval: int(b"min interval"),
            peers,
            peers6,
            keys: dict.iter().map(|(k, _)| lossy(k)).collect(),
        }
    }

    pub fn peers4(&self) -> Vec<SocketAddrV4> {
        self.peers.clone().unwrap_or_default()
    }

    pub fn peers6(&self) -> Vec<SocketAddrV6> {
        self.peers6.clone().unwrap_or_default()
    }

    /// Ports of the IPv4 peers, sorted.
    pub fn ports4(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self.peers4().iter().map(|p| p.port()).collect();
        v.sort_unstable();
        v
    }
}

/// 6-byte compact IPv4 peers.
pub fn compact4(b: &[u8]) -> Vec<SocketAddrV4> {
    assert_eq!(
        b.len() % 6,
        0,
        "compact peers length {} not a multiple of 6",
        b.len()
    );
    b.chunks_exact(6)
        .map(|c| {
            SocketAddrV4::new(
                Ipv4Addr::new(c[0], c[1], c[2], c[3]),
                u16::from_be_bytes([c[4], c[5]]),
            )
        })
        .collect()
}

/// 18-byte compact IPv6 peers.
pub fn compact6(b: &[u8]) -> Vec<SocketAddrV6> {
    assert_eq!(
        b.len() % 18,
        0,
        "compact peers6 length {} not a multiple of 18",
        b.len()
    );
    b.chunks_exact(18)
        .map(|c| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&c[..16]);
            SocketAddrV6::new(Ipv6Addr::from(a), u16::from_be_bytes([c[16], c[17]]), 0, 0)
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrapeEntry {
    pub complete: i64,
    pub downloaded: i64,
    pub incomplete: i64,
}

/// `d5:filesd<hash>d8:complete..e..ee` in reply order.
pub fn parse_scrape(body: &[u8]) -> Vec<([u8; 20], ScrapeEntry)> {
    let v = bencode::decode(body)
        .unwrap_or_else(|e| panic!("scrape reply is not bencode ({e:?}): {:?}", lossy(body)));
    let files = v
        .get(b"files")
        .and_then(Value::as_dict)
        .unwrap_or_else(|| panic!("no files dict in {:?}", lossy(body)));
    files
        .iter()
        .map(|(k, e)| {
            let h: [u8; 20] = (*k)
                .try_into()
                .unwrap_or_else(|_| panic!("scrape key is not 20 bytes: {:?}", lossy(k)));
            let int = |key: &[u8]| {
                e.get(key)
                    .and_then(Value::as_int)
                    .unwrap_or_else(|| panic!("no {:?} in scrape {:?}", lossy(key), lossy(body)))
            };
            (
                h,
                ScrapeEntry {
                    complete: int(b"complete"),
                    downloaded: int(b"downloaded"),
                    incomplete: int(b"incomplete"),
                },
            )
        })
        .collect()
}

pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One TCP connection to the tracker; replies are read from a buffer so pipelined replies that
/// arrive in one segment are split correctly.
pub struct Http {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Http {
    pub fn connect(addr: SocketAddr) -> Http {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("set timeout");
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("set timeout");
        stream.set_nodelay(true).expect("nodelay");
        Http {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects from a specific local address (e.g. 127.0.0.2).
    pub fn connect_from(local: IpAddr, addr: SocketAddr) -> Http {
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .expect("socket");
        sock.bind(&SocketAddr::new(local, 0).into())
            .expect("bind local");
        sock.connect_timeout(&addr.into(), IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr} from {local}: {e}"));
        let stream: TcpStream = sock.into();
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("set timeout");
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("set timeout");
        Http {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).expect("write request");
    }

    /// Sends a keep-alive HTTP/1.1 GET and reads the reply.
    pub fn get(&mut self, target: &str) -> HttpResponse {
        self.send(format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes());
        self.read_response()
    }

    /// Reads one whole response (head and Content-Length body).
    pub fn read_response(&mut self) -> HttpResponse {
        self.try_read_response()
            .unwrap_or_else(|e| panic!("reading HTTP response: {e}"))
    }

    pub fn try_read_response(&mut self) -> Result<HttpResponse, String> {
        let head_end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end - 4]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_string();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .ok_or_else(|| format!("no Content-Length in {head:?}"))?
            .1
            .parse()
            .map_err(|_| format!("bad Content-Length in {head:?}"))?;
        while self.buf.len() < head_end + len {
            self.fill()?;
        }
        let body = self.buf[head_end..head_end + len].to_vec();
        self.buf.drain(..head_end + len);
        Ok(HttpResponse {
            status_line,
            status,
            headers,
            body,
        })
    }

    fn fill(&mut self) -> Result<(), String> {
        let mut tmp = [0u8; 16384];
        loop {
            // A signal to the test process (another test's child exiting) interrupts a read:
            // retried, as the other readers here do.
            return match self.stream.read(&mut tmp) {
                Ok(0) => Err(format!(
                    "connection closed with {} unparsed bytes: {:?}",
                    self.buf.len(),
                    lossy(&self.buf)
                )),
                Ok(n) => {
                    self.buf.extend_from_slice(&tmp[..n]);
                    Ok(())
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => Err(format!("read: {e}")),
            };
        }
    }

    /// Waits up to `within` for the server to close the connection. True if it did (EOF or
    /// reset) with no further bytes; false if the connection was still open at the deadline.
    /// Panics if unexpected bytes arrive.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        assert!(self.buf.is_empty(), "unread bytes: {:?}", lossy(&self.buf));
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let mut tmp = [0u8; 512];
            let r = self.stream.read(&mut tmp);
            self.stream
                .set_read_timeout(Some(IO_TIMEOUT))
                .expect("timeout");
            match r {
                Ok(0) => return true,
                Ok(n) => panic!(
                    "unexpected bytes while waiting for close: {:?}",
                    lossy(&tmp[..n])
                ),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return false
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection with `Connection: close`.
pub fn http_get(addr: SocketAddr, target: &str) -> HttpResponse {
    let mut c = Http::connect(addr);
    c.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes());
    c.read_response()
}

/// Sends raw bytes on a fresh connection and reads one reply.
pub fn http_raw(addr: SocketAddr, raw: &[u8]) -> HttpResponse {
    let mut c = Http::connect(addr);
    c.send(raw);
    c.read_response()
}

/// Announces over a fresh connection and decodes the reply.
pub fn http_announce(
    addr: SocketAddr,
    h: &[u8; 20],
    port: u16,
    left: u64,
    extra: &str,
) -> AnnounceReply {
    http_get(addr, &announce_target(h, port, left, extra)).announce()
}

/// Polls `f` until it returns `Some` or `deadline` passes.
pub fn poll_until<T>(
    deadline: Duration,
    step: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(step);
    }
}

// ------------------------------------------------------------------------------ UDP client

/// A decoded UDP announce reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpAnnounce {
    pub interval: u32,
    pub leechers: u32,
    pub seeders: u32,
    /// Raw compact peers (6 bytes each for IPv4 requesters, 18 for IPv6).
    pub raw_peers: Vec<u8>,
}

/// A BEP 15 client socket talking to one tracker address.
pub struct Udp {
    pub sock: UdpSocket,
    pub server: SocketAddr,
    next_tid: u32,
    pub connection_id: Option<u64>,
}

impl Udp {
    /// Bound to the loopback address of the server's family.
    pub fn new(server: SocketAddr) -> Udp {
        let local: IpAddr = match server {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        };
        Udp::bind(local, server)
    }

    pub fn bind(local: IpAddr, server: SocketAddr) -> Udp {
        let sock = UdpSocket::bind(SocketAddr::new(local, 0))
            .unwrap_or_else(|e| panic!("bind udp {local}: {e}"));
        sock.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        static SEED: AtomicU32 = AtomicU32::new(0x1000);
        Udp {
            sock,
            server,
            next_tid: SEED.fetch_add(0x10000, Ordering::Relaxed),
            connection_id: None,
        }
    }

    pub fn tid(&mut self) -> u32 {
        self.next_tid = self.next_tid.wrapping_add(1);
        self.next_tid
    }

    /// Sends `pkt` and returns the first reply carrying `tid`, retrying (UDP may drop) up to
    /// three times. Replies with other transaction ids (late duplicates) are skipped.
    pub fn request(&self, pkt: &[u8], tid: u32) -> Vec<u8> {
        self.try_request(pkt, tid)
            .unwrap_or_else(|| panic!("no UDP reply from {} for tid {tid:#x}", self.server))
    }

    pub fn try_request(&self, pkt: &[u8], tid: u32) -> Option<Vec<u8>> {
        for _ in 0..3 {
            self.sock.send_to(pkt, self.server).expect("send_to");
            let end = Instant::now() + Duration::from_secs(2);
            while let Some(reply) = self.recv_until(end) {
                if reply.len() >= 8 && reply[4..8] == tid.to_be_bytes() {
                    return Some(reply);
                }
            }
        }
        None
    }

    /// Receives one datagram from the server before `end`.
    pub fn recv_until(&self, end: Instant) -> Option<Vec<u8>> {
        let mut buf = [0u8; 65536];
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock.set_read_timeout(Some(left)).expect("timeout");
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) if from == self.server => return Some(buf[..n].to_vec()),
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => panic!("recv_from: {e}"),
            }
        }
    }

    pub fn send_raw(&self, pkt: &[u8]) {
        self.sock.send_to(pkt, self.server).expect("send_to");
    }

    /// Connects and remembers the connection id.
    pub fn connect(&mut self) -> u64 {
        let tid = self.tid();
        let mut pkt = Vec::new();
        pudp::encode_connect(&mut pkt, tid);
        let reply = self.request(&pkt, tid);
        assert_eq!(reply.len(), 16, "connect reply length: {reply:?}");
        match pudp::parse_response(&reply) {
            Ok(Response::Connect {
                transaction_id,
                connection_id,
            }) => {
                assert_eq!(transaction_id, tid);
                self.connection_id = Some(connection_id);
                connection_id
            }
            other => panic!("not a connect reply: {other:?} {reply:?}"),
        }
    }

    fn conn_id(&mut self) -> u64 {
        match self.connection_id {
            Some(c) => c,
            None => self.connect(),
        }
    }

    pub fn announce_request(
        &mut self,
        h: &[u8; 20],
        port: u16,
        left: u64,
        event: Event,
        num_want: i32,
    ) -> AnnounceRequest {
        AnnounceRequest {
            connection_id: self.conn_id(),
            transaction_id: self.tid(),
            info_hash: InfoHash(*h),
            peer_id: PeerId(peer_id(port)),
            downloaded: 0,
            left,
            uploaded: 0,
            event,
            ip: 0,
            key: 0x1234,
            num_want,
            port,
        }
    }

    /// Sends an announce and returns the raw reply.
    pub fn announce_raw(&mut self, req: &AnnounceRequest) -> Vec<u8> {
        let mut pkt = Vec::new();
        pudp::encode_announce(&mut pkt, req);
        assert_eq!(pkt.len(), pudp::ANNOUNCE_MIN_LEN);
        self.request(&pkt, req.transaction_id)
    }

    pub fn announce(
        &mut self,
        h: &[u8; 20],
        port: u16,
        left: u64,
        event: Event,
        num_want: i32,
    ) -> UdpAnnounce {
        let req = self.announce_request(h, port, left, event, num_want);
        let reply = self.announce_raw(&req);
        parse_udp_announce(&reply, req.transaction_id)
    }

    pub fn scrape_raw(&mut self, hashes: &[[u8; 20]]) -> (u32, Vec<u8>) {
        let cid = self.conn_id();
        let tid = self.tid();
        let hs: Vec<InfoHash> = hashes.iter().map(|h| InfoHash(*h)).collect();
        let mut pkt = Vec::new();
        pudp::encode_scrape(&mut pkt, cid, tid, &hs);
        (tid, self.request(&pkt, tid))
    }

    /// (seeders, completed, leechers) per hash.
    pub fn scrape(&mut self, hashes: &[[u8; 20]]) -> Vec<(u32, u32, u32)> {
        let (tid, reply) = self.scrape_raw(hashes);
        match pudp::parse_response(&reply) {
            Ok(Response::Scrape {
                transaction_id,
                entries,
            }) => {
                assert_eq!(transaction_id, tid);
                pudp::scrape_entries(entries).collect()
            }
            other => panic!("not a scrape reply: {other:?} {reply:?}"),
        }
    }
}

pub fn parse_udp_announce(reply: &[u8], tid: u32) -> UdpAnnounce {
    match pudp::parse_response(reply) {
        Ok(Response::Announce {
            transaction_id,
            interval,
            leechers,
            seeders,
            peers,
        }) => {
            assert_eq!(transaction_id, tid);
            UdpAnnounce {
                interval,
                leechers,
                seeders,
                raw_peers: peers.to_vec(),
            }
        }
        other => panic!("not an announce reply: {other:?} {reply:?}"),
    }
}

/// The exact error packet for a wrong connection id, cut to `request_len` bytes if shorter.
pub fn mismatch_packet(tid: u32, request_len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&3u32.to_be_bytes());
    v.extend_from_slice(&tid.to_be_bytes());
    v.extend_from_slice(pudp::CONNECTION_ID_MISMATCH);
    v.truncate(request_len);
    v
}

/// `bytes` as uppercase hex, as the tracker writes info_hashes.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(2 * bytes.len());
    ferrotracker_proto::hex::push_upper(&mut out, bytes);
    String::from_utf8_lossy(&out).into_owned()
}
