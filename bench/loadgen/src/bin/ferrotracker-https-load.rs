//! ferrotracker-https-load: HTTPS announce load for bench/https.sh, one thread, rustls (ring)
//! over mio. Every request announces a random port on a random torrent of HASH_FILE (one
//! 40-hex-digit info_hash a line, bench/hashes.py's output), as bench/announce.lua does for
//! wrk, with one request in flight per connection.
//!
//! MODE:
//! * `keepalive`: CONNECTIONS connections, each sending its next announce as soon as the last
//!   reply is in, for SECS seconds; a connection the server closes is replaced.
//! * `close`: CONNECTIONS connections at a time, each a full handshake (no resumption), one
//!   announce with `Connection: close`, then close_notify and close, for SECS seconds.
//! * `idle`: opens IDLE connections (CONNECTIONS at a time), one announce each, and holds them
//!   all open and quiet; prints `READY` when every one has had its reply, then holds them for
//!   HOLD seconds (or until killed) and prints how many the server closed meanwhile.
//! * `fill`: announces once into every torrent of HASH_FILE, in the file's order, over
//!   CONNECTIONS kept-alive connections, then closes them and exits (at the latest after SECS):
//!   a store of that many torrents before a measured run.
//!
//! TLS 1.3 only (`--tls12`: 1.2 only), ALPN `http/1.1`, no session resumption. The server's
//! certificate is not verified: the load is ours, on loopback, and verifying a signature per
//! handshake would cost this client more than signing costs the server.
//!
//! Prints one line `FTBENCH requests=.. duration_us=.. bad=.. errors=.. timeouts=..
//! server_closed=.. handshakes=.. version=.. cpu_ticks=..`: `requests` are replies with
//! `interval` in them, `bad` other replies (a failure reason, a non-200 status), `errors`
//! connections lost to an I/O or TLS error or closed mid-request, `server_closed` keep-alive
//! connections the server closed between requests, `cpu_ticks` this process's CPU time
//! (utime + stime, in clock ticks).
//!
//! usage: ferrotracker-https-load ADDR HASH_FILE MODE [--connections N] [--duration SECS]
//!                                [--idle N] [--hold SECS] [--tls12]
//!   defaults: 64 connections, 10 s, 10000 idle connections held 600 s.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::ring as provider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};
use slab::Slab;

/// A connection that makes no progress for this long is counted as a timeout and replaced.
const STALL: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    KeepAlive,
    Close,
    Idle,
    Fill,
}

/// Which torrent the next announce goes to: a random one, or (fill mode) the next in the file.
struct Pick {
    rng: u64,
    next: usize,
}

struct Args {
    addr: SocketAddr,
    hashes: Vec<String>,
    mode: Mode,
    connections: usize,
    duration: Duration,
    idle: usize,
    hold: Duration,
    tls12: bool,
}

#[derive(Default)]
struct Counts {
    requests: u64,
    bad: u64,
    errors: u64,
    timeouts: u64,
    server_closed: u64,
    handshakes: u64,
}

struct Conn {
    sock: TcpStream,
    tls: ClientConnection,
    inbuf: Vec<u8>,
    /// A request was sent and its reply is not all in.
    in_flight: bool,
    /// Our close_notify and FIN are sent; waiting for the server's end.
    closing: bool,
    /// Idle mode: the reply is in; the connection is held.
    held: bool,
    handshake_counted: bool,
    last_progress: Instant,
}

/// Why a connection left.
enum Gone {
    /// The exchange is over (close mode) or the server closed an idle keep-alive connection.
    Done,
    ServerClosed,
    Error,
}

fn main() {
    let args = parse_args();
    let config = client_config(args.tls12);
    let name = ServerName::from(args.addr.ip());
    let mut poll = Poll::new().expect("poll");
    let mut events = Events::with_capacity(1024);
    let mut conns: Slab<Conn> = Slab::new();
    let mut counts = Counts::default();
    let mut pick = Pick {
        rng: 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(std::process::id()),
        next: 0,
    };
    let mut req = Vec::with_capacity(512);
    let mut version = String::from("none");
    let mut consecutive_failures = 0u32;

    let started = Instant::now();
    let deadline = started + args.duration;
    // Idle mode: when every connection was open and held.
    let mut ready_at: Option<Instant> = None;

    loop {
        let now = Instant::now();
        let running = match args.mode {
            Mode::Idle => ready_at.map_or(true, |t| now < t + args.hold),
            Mode::Fill => now < deadline && (pick.next < args.hashes.len() || !conns.is_empty()),
            _ => now < deadline,
        };
        if !running {
            break;
        }
        // Top up: keep CONNECTIONS exchanges going (idle mode: until IDLE are open and held;
        // one lost before then is replaced).
        let busy = conns.iter().filter(|(_, c)| !c.held).count();
        let mut want = args.connections.saturating_sub(busy);
        if args.mode == Mode::Idle {
            want = if ready_at.is_some() {
                0
            } else {
                want.min(args.idle.saturating_sub(conns.len()))
            };
        }
        if args.mode == Mode::Fill {
            want = want.min(args.hashes.len().saturating_sub(pick.next));
        }
        for _ in 0..want {
            let Ok(sock) = TcpStream::connect(args.addr) else {
                counts.errors += 1;
                break;
            };
            let _ = sock.set_nodelay(true);
            let tls = ClientConnection::new(Arc::clone(&config), name.clone()).expect("client");
            let entry = conns.vacant_entry();
            let token = Token(entry.key());
            let mut c = Conn {
                sock,
                tls,
                inbuf: Vec::new(),
                in_flight: false,
                closing: false,
                held: false,
                handshake_counted: false,
                last_progress: now,
            };
            poll.registry()
                .register(&mut c.sock, token, Interest::READABLE | Interest::WRITABLE)
                .expect("register");
            // Queued until the handshake is done; sent with the client's Finished.
            send_request(&mut c, &args, &mut pick, &mut req);
            entry.insert(c);
        }
        if args.mode == Mode::Idle
            && ready_at.is_none()
            && conns.len() == args.idle
            && conns.iter().all(|(_, c)| c.held)
        {
            ready_at = Some(Instant::now());
            println!("READY open={}", conns.len());
            let _ = io::stdout().flush();
        }

        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .or_else(|e| {
                if e.kind() == ErrorKind::Interrupted {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .expect("poll");
        for ev in events.iter() {
            let key = ev.token().0;
            let Some(c) = conns.get_mut(key) else {
                continue;
            };
            let gone = drive(c, &args, &mut counts, &mut pick, &mut req);
            if !c.handshake_counted && !c.tls.is_handshaking() {
                c.handshake_counted = true;
                counts.handshakes += 1;
                if counts.handshakes == 1 {
                    if let Some(v) = c.tls.protocol_version() {
                        version = format!("{v:?}");
                    }
                }
            }
            if let Some(gone) = gone {
                match gone {
                    Gone::Done => consecutive_failures = 0,
                    Gone::ServerClosed => counts.server_closed += 1,
                    Gone::Error => {
                        counts.errors += 1;
                        consecutive_failures += 1;
                    }
                }
                let mut c = conns.remove(key);
                let _ = poll.registry().deregister(&mut c.sock);
            }
        }
        if consecutive_failures > 1000 {
            eprintln!(
                "1000 connections in a row failed: is the server up at {}?",
                args.addr
            );
            std::process::exit(1);
        }
        // Stalled connections.
        let now = Instant::now();
        let stalled: Vec<usize> = conns
            .iter()
            .filter(|(_, c)| !c.held && now - c.last_progress > STALL)
            .map(|(k, _)| k)
            .collect();
        for key in stalled {
            let mut c = conns.remove(key);
            let _ = poll.registry().deregister(&mut c.sock);
            counts.timeouts += 1;
        }
    }
    let elapsed = match (args.mode, ready_at) {
        (Mode::Idle, Some(t)) => t - started,
        _ => started.elapsed(),
    };
    if args.mode == Mode::Idle {
        println!(
            "IDLE held={} closed_while_held={}",
            conns.iter().filter(|(_, c)| c.held).count(),
            counts.server_closed
        );
    }
    println!(
        "FTBENCH requests={} duration_us={} bad={} errors={} timeouts={} server_closed={} \
         handshakes={} version={} cpu_ticks={}",
        counts.requests,
        elapsed.as_micros(),
        counts.bad,
        counts.errors,
        counts.timeouts,
        counts.server_closed,
        counts.handshakes,
        version,
        own_cpu_ticks()
    );
}

/// Moves bytes both ways and acts on a whole reply. `Some` when the connection is to go.
fn drive(
    c: &mut Conn,
    args: &Args,
    counts: &mut Counts,
    pick: &mut Pick,
    req: &mut Vec<u8>,
) -> Option<Gone> {
    let eof = match pump(c) {
        Ok(eof) => eof,
        Err(()) => return Some(if c.closing { Gone::Done } else { Gone::Error }),
    };
    if c.in_flight {
        match parse_reply(&c.inbuf) {
            Reply::Incomplete => {}
            Reply::Done { len, ok, close } => {
                c.inbuf.drain(..len);
                c.in_flight = false;
                if ok {
                    counts.requests += 1;
                } else {
                    counts.bad += 1;
                }
                match args.mode {
                    Mode::KeepAlive | Mode::Fill if close => {
                        // The server ends this connection (a per-connection request limit).
                        counts.server_closed += 1;
                        c.tls.send_close_notify();
                        c.closing = true;
                    }
                    Mode::KeepAlive => send_request(c, args, pick, req),
                    Mode::Fill if pick.next < args.hashes.len() => send_request(c, args, pick, req),
                    Mode::Close | Mode::Fill => {
                        c.tls.send_close_notify();
                        c.closing = true;
                    }
                    Mode::Idle => c.held = true,
                }
                if pump(c).is_err() {
                    return Some(if c.closing { Gone::Done } else { Gone::Error });
                }
                if c.closing {
                    let _ = c.sock.shutdown(Shutdown::Write);
                }
            }
            Reply::Malformed => return Some(Gone::Error),
        }
    }
    if eof {
        return Some(if c.closing {
            Gone::Done
        } else if c.in_flight {
            Gone::Error
        } else {
            Gone::ServerClosed
        });
    }
    None
}

/// Reads what the socket has, decrypts it into `inbuf`, and writes what rustls has to send.
/// `Ok(true)` when the server closed its side.
fn pump(c: &mut Conn) -> Result<bool, ()> {
    let mut eof = false;
    loop {
        let more = match c.tls.read_tls(&mut c.sock) {
            Ok(0) => {
                eof = true;
                false
            }
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(e) if e.kind() == ErrorKind::Interrupted => true,
            Err(_) => return Err(()),
        };
        let state = c.tls.process_new_packets().map_err(|_| ())?;
        let n = state.plaintext_bytes_to_read();
        if n > 0 {
            let at = c.inbuf.len();
            c.inbuf.resize(at + n, 0);
            c.tls
                .reader()
                .read_exact(&mut c.inbuf[at..])
                .map_err(|_| ())?;
            c.last_progress = Instant::now();
        }
        if state.peer_has_closed() {
            eof = true;
        }
        if !more || eof {
            break;
        }
    }
    while c.tls.wants_write() {
        match c.tls.write_tls(&mut c.sock) {
            Ok(_) => c.last_progress = Instant::now(),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    Ok(eof)
}

fn send_request(c: &mut Conn, args: &Args, pick: &mut Pick, req: &mut Vec<u8>) {
    let rng = &mut pick.rng;
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let i = if args.mode == Mode::Fill {
        pick.next += 1;
        pick.next - 1
    } else {
        (*rng % args.hashes.len() as u64) as usize
    };
    let hash = &args.hashes[i];
    let port = (*rng >> 32) as u16 | 1;
    req.clear();
    // Same query as bench/announce.lua.
    let _ = write!(
        req,
        "GET /announce?info_hash={hash}&peer_id=-FH0001-%00%01%02%03%04%05%06%07%08%09%0a%0b\
         &port={port}&uploaded=0&downloaded=0&left={}&compact=1&numwant=50 HTTP/1.1\r\n\
         Host: {}\r\n{}\r\n",
        (port % 2) * 1000,
        args.addr,
        if args.mode == Mode::Close {
            "Connection: close\r\n"
        } else {
            ""
        }
    );
    // Into rustls' plaintext buffer: cannot fail short of a closed connection, which the
    // next pump reports.
    let _ = c.tls.writer().write_all(req);
    c.in_flight = true;
}

enum Reply {
    Incomplete,
    /// `close`: the reply says `Connection: close`.
    Done {
        len: usize,
        ok: bool,
        close: bool,
    },
    Malformed,
}

fn parse_reply(buf: &[u8]) -> Reply {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4) else {
        return if buf.len() > 16 << 10 {
            Reply::Malformed
        } else {
            Reply::Incomplete
        };
    };
    let head = &buf[..head_end];
    let status_ok = head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200");
    let header = |name: &str| {
        head.split(|&b| b == b'\n').find_map(|line| {
            let line = std::str::from_utf8(line).ok()?;
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    };
    let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) else {
        return Reply::Malformed;
    };
    let close = header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
    if buf.len() < head_end + len {
        return Reply::Incomplete;
    }
    let body = &buf[head_end..head_end + len];
    let ok = status_ok && body.windows(10).any(|w| w == b"8:interval");
    Reply::Done {
        len: head_end + len,
        ok,
        close,
    }
}

fn client_config(tls12: bool) -> Arc<ClientConfig> {
    let provider = Arc::new(provider::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

/// Accepts any certificate and signature (see the module doc).
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// utime + stime of this process, in clock ticks.
fn own_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name (field 2) may hold spaces: count fields after its closing ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)
}

fn parse_args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!(
            "usage: {} ADDR HASH_FILE keepalive|close|idle|fill [--connections N] [--duration SECS] \
             [--idle N] [--hold SECS] [--tls12]",
            argv.first()
                .map_or("ferrotracker-https-load", String::as_str)
        );
        std::process::exit(2)
    };
    if argv.len() < 4 {
        usage();
    }
    let addr: SocketAddr = argv[1].parse().unwrap_or_else(|_| usage());
    let text = std::fs::read_to_string(&argv[2]).unwrap_or_else(|e| {
        eprintln!("{}: {e}", argv[2]);
        std::process::exit(2)
    });
    let hashes: Vec<String> = text
        .lines()
        .filter(|l| l.len() >= 40 && l.as_bytes()[..40].iter().all(u8::is_ascii_hexdigit))
        .map(|l| {
            (0..20)
                .map(|i| format!("%{}", &l[2 * i..2 * i + 2]))
                .collect()
        })
        .collect();
    if hashes.is_empty() {
        eprintln!("{}: no info_hashes", argv[2]);
        std::process::exit(2);
    }
    let mode = match argv[3].as_str() {
        "keepalive" => Mode::KeepAlive,
        "close" => Mode::Close,
        "idle" => Mode::Idle,
        "fill" => Mode::Fill,
        _ => usage(),
    };
    let mut a = Args {
        addr,
        hashes,
        mode,
        connections: 64,
        duration: Duration::from_secs(10),
        idle: 10_000,
        hold: Duration::from_secs(600),
        tls12: false,
    };
    let mut rest = argv[4..].iter();
    while let Some(flag) = rest.next() {
        let mut num = || -> u64 {
            rest.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage())
        };
        match flag.as_str() {
            "--connections" => a.connections = num().max(1) as usize,
            "--duration" => a.duration = Duration::from_secs(num()),
            "--idle" => a.idle = num().max(1) as usize,
            "--hold" => a.hold = Duration::from_secs(num()),
            "--tls12" => a.tls12 = true,
            _ => usage(),
        }
    }
    a
}
