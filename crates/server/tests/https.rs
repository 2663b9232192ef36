//! HTTPS served by the tracker itself (`listen.tls`), over 127.0.0.1 and [::1], with a test CA
//! made here: curl and the rustls test client announce and scrape; TLS 1.3 and 1.2 with ALPN
//! `http/1.1`; keep-alive and a full scrape over TLS; the certificate rotated by SIGHUP and by a
//! change on disk while a kept-alive connection carries on; a bad pair refused at start, by
//! `--check-config` and on reload; and connections that never finish their handshake closed
//! by `http.request_timeout` without holding up an honest client, and counted once, as handshake
//! failures; the pair rotated inside a chroot after the privilege drop (as root).

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::tls::{KeyType, ServerCert, TestPki};
use common::*;
use rustls::ProtocolVersion;

/// Where the tracker reads its pair: copied over from an issued one, so a test can swap it.
struct Live {
    certificate: PathBuf,
    private_key: PathBuf,
}

impl Live {
    fn new(pki: &TestPki, from: &ServerCert) -> Live {
        let live = Live {
            certificate: pki.dir().join("live.pem"),
            private_key: pki.dir().join("live.key"),
        };
        live.install(&from.certificate, &from.private_key);
        live
    }

    /// Replaces both files, each by a rename (as certbot's symlink swap: never half written).
    fn install(&self, certificate: &Path, private_key: &Path) {
        for (from, to) in [
            (certificate, &self.certificate),
            (private_key, &self.private_key),
        ] {
            let tmp = to.with_extension("tmp");
            std::fs::copy(from, &tmp).expect("copy");
            std::fs::rename(&tmp, to).expect("rename");
        }
    }
}

fn config(live: &Live, extra: &str) -> String {
    format!(
        "listen.tcp 127.0.0.1:0\nlisten.tls 127.0.0.1:0\nlisten.tls [::1]:0\n\
         tls.certificate {}\ntls.private_key {}\n{extra}",
        live.certificate.display(),
        live.private_key.display()
    )
}

/// A tracker with a plain HTTP socket on 127.0.0.1 (for /metrics) and TLS on 127.0.0.1 and
/// [::1], presenting `live`'s pair.
fn start(live: &Live, extra: &str) -> Tracker {
    Tracker::start_expecting(&[], Some(&config(live, extra)), 3)
}

/// One `/metrics` sample, read over plain HTTP from 127.0.0.1.
fn metric(t: &Tracker, series: &str) -> u64 {
    let r = http_get(t.http4(), "/metrics");
    let body = r.body_str();
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{body}"))
}

const TIMED_OUT: &str = r#"ferrotracker_tls_handshake_failures_total{reason="timeout"}"#;
const ERRORS: &str = r#"ferrotracker_tls_handshake_failures_total{reason="error"}"#;

fn curl() -> Option<()> {
    let ok = Command::new("curl")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run curl ({e})"))
        .and_then(|s| {
            s.success()
                .then_some(())
                .ok_or("curl --version failed".into())
        });
    require_or_skip("curl", ok)
}

/// `curl --cacert CA URL`: the body, or panics with curl's error.
fn curl_get(ca: &Path, url: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--max-time", "10", "--cacert"])
        .arg(ca)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn curl_announces_and_scrapes_over_https_on_both_families() {
    if curl().is_none() {
        return;
    }
    let pki = TestPki::new();
    let cert = pki.issue("server", KeyType::EcdsaP256);
    let t = start(&Live::new(&pki, &cert), "");
    let h = hash(41);
    for (i, addr) in [t.https4(), t.https6()].into_iter().enumerate() {
        let port = 7000 + i as u16;
        let url = format!("https://{addr}{}", announce_target(&h, port, 100, ""));
        // `parse` fails on a failure reason.
        let reply = AnnounceReply::parse(&curl_get(&pki.ca_certificate, &url));
        assert_eq!(reply.incomplete, i as i64 + 1);
        let url = format!("https://{addr}{}", scrape_target(&[h]));
        let scrape = parse_scrape(&curl_get(&pki.ca_certificate, &url));
        assert_eq!(scrape.len(), 1);
        assert_eq!(scrape[0].1.incomplete, i as i64 + 1, "{addr}");
    }
}

#[test]
fn tls13_and_tls12_with_alpn_and_keep_alive_then_a_clean_stop() {
    let pki = TestPki::new();
    let cert = pki.issue("server", KeyType::EcdsaP256);
    let mut t = start(&Live::new(&pki, &cert), "");
    let h = hash(42);
    let mut port = 8000;
    for addr in [t.https4(), t.https6()] {
        for (versions, want) in [
            (&[&rustls::version::TLS13][..], ProtocolVersion::TLSv1_3),
            (&[&rustls::version::TLS12][..], ProtocolVersion::TLSv1_2),
        ] {
            let mut c = pki.client().versions(versions).connect(addr);
            let n = c.negotiated();
            assert_eq!(n.version, want, "{addr}");
            assert_eq!(n.alpn.as_deref(), Some(&b"http/1.1"[..]), "{addr}");
            assert_eq!(n.fingerprint, cert.fingerprint);
            // Several requests on the one connection, the last two pipelined.
            for _ in 0..3 {
                port += 1;
                let r = c.get(&announce_target(&h, port, 100, ""));
                assert_eq!(r.status, 200);
                assert!(!r.says_close());
                r.announce();
            }
            let scrape = format!(
                "GET {} HTTP/1.1\r\nHost: t\r\n\r\nGET {} HTTP/1.1\r\nHost: t\r\n\r\n",
                scrape_target(&[h]),
                scrape_target(&[h])
            );
            c.send(scrape.as_bytes());
            for _ in 0..2 {
                let s = c.read_response().scrape();
                assert_eq!(s[0].1.incomplete, i64::from(port - 8000));
            }
        }
    }
    // A kept-alive TLS connection does not hold up the stop.
    let mut idle = pki.client().connect(t.https4());
    assert_eq!(idle.get(&scrape_target(&[h])).status, 200);
    let st = t.stop_with(libc::SIGTERM, Duration::from_secs(10));
    assert!(st.success(), "{st:?}\n{}", t.stderr());
}

#[test]
fn full_scrape_over_tls() {
    let pki = TestPki::new();
    let cert = pki.issue("server", KeyType::Rsa2048);
    let t = start(&Live::new(&pki, &cert), "");
    // Enough torrents that the streamed reply takes many chunks and TLS records.
    const N: u32 = 3000;
    let mut plain = Http::connect(t.http4());
    for n in 0..N {
        let mut h = [0x33u8; 20];
        h[..4].copy_from_slice(&n.to_be_bytes());
        assert_eq!(plain.get(&announce_target(&h, 6881, 1, "")).status, 200);
    }
    for addr in [t.https4(), t.https6()] {
        let mut c = pki.client().connect(addr);
        let r = c.get("/scrape");
        assert_eq!(r.status, 200, "{}", r.body_str());
        assert_eq!(r.scrape().len(), N as usize);
        // The connection is kept after the stream.
        assert_eq!(c.get(&scrape_target(&[hash(1)])).status, 200);
    }
}

#[test]
fn rotation_by_sighup_and_by_a_changed_file_keeps_open_connections() {
    let pki = TestPki::new();
    let a = pki.issue("a", KeyType::EcdsaP256);
    let b = pki.issue("b", KeyType::Ed25519);
    let c = pki.issue("c", KeyType::EcdsaP256);
    let d = pki.issue("d", KeyType::Rsa2048);
    let live = Live::new(&pki, &a);
    let t = start(&live, "");
    let h = hash(43);
    let fingerprint = |addr| pki.client().connect(addr).negotiated().fingerprint;
    let mut kept = pki.client().connect(t.https4());
    assert_eq!(kept.negotiated().fingerprint, a.fingerprint);
    assert_eq!(kept.get(&announce_target(&h, 1, 1, "")).status, 200);

    // SIGHUP: new handshakes get b; the connection made with a carries on.
    live.install(&b.certificate, &b.private_key);
    signal_tracker(&t, libc::SIGHUP);
    let got = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
        let f = fingerprint(t.https6());
        (f == b.fingerprint).then_some(f)
    });
    assert!(got.is_some(), "no rotation to b:\n{}", t.stderr());
    let said = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
        t.stderr()
            .contains("SIGHUP: TLS certificate reloaded")
            .then_some(())
    });
    assert!(said.is_some(), "{}", t.stderr());
    assert_eq!(kept.get(&announce_target(&h, 2, 1, "")).status, 200);

    // A broken pair (c's certificate, d's key) is refused and b stays, said in the log.
    live.install(&c.certificate, &d.private_key);
    signal_tracker(&t, libc::SIGHUP);
    let said = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
        t.stderr().contains("not reloaded").then_some(())
    });
    assert!(said.is_some(), "{}", t.stderr());
    assert!(t.stderr().contains(&*live.private_key.to_string_lossy()));
    assert_eq!(fingerprint(t.https4()), b.fingerprint);
    assert_eq!(kept.get(&announce_target(&h, 3, 1, "")).status, 200);

    // A changed pair without a signal is picked up by the poll.
    live.install(&d.certificate, &d.private_key);
    let got = poll_until(Duration::from_secs(15), Duration::from_millis(100), || {
        (fingerprint(t.https4()) == d.fingerprint).then_some(())
    });
    assert!(got.is_some(), "no rotation to d:\n{}", t.stderr());
    let s = kept.get(&scrape_target(&[h])).scrape();
    assert_eq!(s[0].1.complete, 0);
    assert_eq!(s[0].1.incomplete, 3);
}

/// As root, chrooted to `tracker.rootdir` and running as `nobody`: the pair lives where the
/// documentation puts it, at the configured absolute path inside the root directory. The start
/// reads it there before the drop (a key only root may read is fine then); a SIGHUP re-reads it
/// there, after the drop, and new handshakes get the new certificate; a broken pair there is
/// refused and the old one stays.
#[test]
fn rotation_inside_a_chroot_after_the_privilege_drop() {
    if require_or_skip("root (chroot and the privilege drop)", root()).is_none() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let pki = TestPki::new();
    let a = pki.issue("a", KeyType::EcdsaP256);
    let b = pki.issue("b", KeyType::Ed25519);
    let c = pki.issue("c", KeyType::EcdsaP256);
    let d = pki.issue("d", KeyType::Rsa2048);
    let dir = TempDir::new("tls-chroot");
    let rootdir = dir.path().canonicalize().expect("canonical");
    std::fs::create_dir(rootdir.join("tls")).expect("mkdir");
    for p in [rootdir.clone(), rootdir.join("tls")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    // Inside the root directory, at the path the configuration names from inside the chroot.
    let live = Live {
        certificate: rootdir.join("tls/cert.pem"),
        private_key: rootdir.join("tls/key.pem"),
    };
    // SAFETY: getpwnam with a NUL-terminated name; the result is read at once.
    let nobody = unsafe {
        let pw = libc::getpwnam(c"nobody".as_ptr());
        assert!(!pw.is_null(), "no user nobody on this machine");
        ((*pw).pw_uid, (*pw).pw_gid)
    };
    // The first key is root's alone (mode 0600): only the start, before the drop, reads it.
    live.install(&a.certificate, &a.private_key);
    std::fs::set_permissions(&live.private_key, std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    // The later ones belong to the user the tracker runs as, as a deploy hook would leave them.
    let install_for_nobody = |certificate: &Path, private_key: &Path| {
        for (from, to) in [
            (certificate, &live.certificate),
            (private_key, &live.private_key),
        ] {
            let tmp = to.with_extension("tmp");
            std::fs::copy(from, &tmp).expect("copy");
            std::os::unix::fs::chown(&tmp, Some(nobody.0), Some(nobody.1)).expect("chown");
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).expect("chmod");
            std::fs::rename(&tmp, to).expect("rename");
        }
    };
    let conf = format!(
        "listen.tcp 127.0.0.1:0\nlisten.tls 127.0.0.1:0\nlisten.tls [::1]:0\n\
         tls.certificate /tls/cert.pem\ntls.private_key /tls/key.pem\n\
         tracker.rootdir {}\ntracker.user nobody\n",
        rootdir.display()
    );
    let t = Tracker::start_expecting(&[], Some(&conf), 3);
    let fingerprint = |addr| pki.client().connect(addr).negotiated().fingerprint;
    assert_eq!(fingerprint(t.https4()), a.fingerprint);
    // Really chrooted and no longer root.
    let proc_root = std::fs::read_link(format!("/proc/{}/root", t.pid())).expect("root");
    assert_eq!(proc_root, rootdir, "chrooted");
    let status = std::fs::read_to_string(format!("/proc/{}/status", t.pid())).expect("status");
    let uid = status.lines().find(|l| l.starts_with("Uid:")).expect("Uid");
    assert!(
        uid.split_whitespace()
            .skip(1)
            .all(|u| u == nobody.0.to_string()),
        "{uid}"
    );

    install_for_nobody(&b.certificate, &b.private_key);
    signal_tracker(&t, libc::SIGHUP);
    let got = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
        (fingerprint(t.https6()) == b.fingerprint).then_some(())
    });
    assert!(
        got.is_some(),
        "no rotation to b in the chroot:\n{}",
        t.stderr()
    );
    assert_eq!(fingerprint(t.https4()), b.fingerprint);

    // A broken pair inside the chroot: refused, b stays.
    install_for_nobody(&c.certificate, &d.private_key);
    signal_tracker(&t, libc::SIGHUP);
    let said = poll_until(Duration::from_secs(10), Duration::from_millis(50), || {
        t.stderr().contains("not reloaded").then_some(())
    });
    assert!(said.is_some(), "{}", t.stderr());
    assert!(t.stderr().contains("/tls/key.pem"), "{}", t.stderr());
    assert_eq!(fingerprint(t.https4()), b.fingerprint);
    assert_eq!(fingerprint(t.https6()), b.fingerprint);
    let r = pki
        .client()
        .get(t.https6(), &announce_target(&hash(46), 1, 1, ""))
        .0;
    assert_eq!(r.status, 200);
}

fn signal_tracker(t: &Tracker, sig: libc::c_int) {
    // SAFETY: kill(2) takes no pointer. By PID: the test's own running child.
    unsafe {
        libc::kill(t.pid() as libc::pid_t, sig);
    }
}

#[test]
fn a_bad_pair_stops_the_start_and_fails_check_config_naming_the_file() {
    let pki = TestPki::new();
    let a = pki.issue("a", KeyType::EcdsaP256);
    let b = pki.issue("b", KeyType::EcdsaP256);
    let dir = TempDir::new("tls-conf");
    let mismatch = Live {
        certificate: a.certificate.clone(),
        private_key: b.private_key.clone(),
    };
    let missing = Live {
        certificate: pki.dir().join("nowhere.pem"),
        private_key: a.private_key.clone(),
    };
    for (live, named) in [
        (&mismatch, &b.private_key),
        (&missing, &missing.certificate),
    ] {
        let conf = dir.write("t.conf", &config(live, ""));
        let conf = conf.to_str().expect("utf-8 path");
        let run = run_to_exit(&["-f", conf], Duration::from_secs(10));
        assert!(!run.status.success(), "{}", run.stderr);
        assert!(
            run.stderr.contains(&*named.to_string_lossy()),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("listening on"), "{}", run.stderr);
        let check = run_to_exit(&["--check-config", "-f", conf], Duration::from_secs(10));
        assert_eq!(check.status.code(), Some(1), "{}", check.stdout);
        assert!(
            check.stderr.contains(&*named.to_string_lossy()),
            "{}",
            check.stderr
        );
    }
    let good = dir.write("good.conf", &config(&Live::new(&pki, &a), ""));
    let check = run_to_exit(
        &["--check-config", "-f", good.to_str().expect("utf-8 path")],
        Duration::from_secs(10),
    );
    assert!(check.status.success(), "{}{}", check.stdout, check.stderr);
    assert!(check.stdout.contains(&a.fingerprint), "{}", check.stdout);
}

/// The first bytes of a TLS handshake record announcing a ClientHello longer than what
/// follows: the server waits for the rest.
const PARTIAL_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
];

#[test]
fn stalled_handshakes_time_out_without_delaying_an_honest_client() {
    let pki = TestPki::new();
    let cert = pki.issue("server", KeyType::EcdsaP256);
    let t = start(
        &Live::new(&pki, &cert),
        "http.request_timeout 2\nhttp.max_connections_per_ip 0\n",
    );
    assert_eq!(metric(&t, TIMED_OUT), 0);
    const SLOW: usize = 3000;
    raise_open_files_limit(SLOW as u64 + 256);
    let mut slow: Vec<TcpStream> = (0..SLOW)
        .map(|i| {
            let addr = if i % 2 == 0 { t.https4() } else { t.https6() };
            let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
            s.write_all(PARTIAL_HELLO).expect("write");
            s
        })
        .collect();
    // The honest client is served while they wait (every call is bounded by IO_TIMEOUT).
    for addr in [t.https4(), t.https6()] {
        let (r, n) = pki
            .client()
            .get(addr, &announce_target(&hash(44), 9, 1, ""));
        assert_eq!(r.status, 200);
        assert_eq!(n.fingerprint, cert.fingerprint);
    }
    // Then the request timeout closes every stalled handshake, and each is counted.
    let counted = poll_until(Duration::from_secs(20), Duration::from_millis(100), || {
        (metric(&t, TIMED_OUT) >= SLOW as u64).then_some(())
    });
    assert!(counted.is_some(), "{TIMED_OUT} = {}", metric(&t, TIMED_OUT));
    let s = slow.pop().expect("one");
    let mut c = Http::over(s);
    assert!(c.stream.set_read_timeout(Some(IO_TIMEOUT)).is_ok());
    assert!(
        c.try_read_response().is_err(),
        "a reply to a stalled handshake"
    );
}

/// Each connection a timeout closes is counted once, by the stage it was in: a TLS handshake
/// cut short (silent since accept, or a partial ClientHello) is a handshake failure with
/// `reason="timeout"`, not an HTTP timeout as well; a TLS error is `reason="error"`; plain
/// connections keep their `kind="idle"` and `kind="request"`.
#[test]
fn a_handshake_timeout_is_one_handshake_failure_and_no_http_timeout() {
    let pki = TestPki::new();
    let cert = pki.issue("server", KeyType::EcdsaP256);
    // A silent new connection gets the shorter idle timeout, a begun request head (or
    // handshake) the request timeout: both paths to a handshake timeout are taken.
    let t = start(
        &Live::new(&pki, &cert),
        "http.idle_timeout 1\nhttp.request_timeout 2\n",
    );
    let mut held = Vec::new();
    for addr in [t.https4(), t.https6()] {
        // Silent since accept, and a partial ClientHello.
        held.push(TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect"));
        let mut s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
        s.write_all(PARTIAL_HELLO).expect("write");
        held.push(s);
    }
    // Plain HTTP on the TLS port: a handshake error, closed at once.
    let mut bad = TcpStream::connect_timeout(&t.https4(), IO_TIMEOUT).expect("connect");
    bad.write_all(b"GET /announce HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("write");
    // Whatever alert comes back, then the close (bounded by the read timeout).
    assert!(bad.set_read_timeout(Some(IO_TIMEOUT)).is_ok());
    let mut sink = Vec::new();
    match std::io::Read::read_to_end(&mut bad, &mut sink) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("plain HTTP on a TLS port was not closed: {e}"),
    }
    // Plain connections: a silent one and a half-sent request head.
    held.push(TcpStream::connect_timeout(&t.http4(), IO_TIMEOUT).expect("connect"));
    let mut slow = TcpStream::connect_timeout(&t.http4(), IO_TIMEOUT).expect("connect");
    slow.write_all(b"GET /announce?info_hash=").expect("write");
    held.push(slow);

    let series = [
        (TIMED_OUT, 4),
        (ERRORS, 1),
        (r#"ferrotracker_http_timeouts_total{kind="idle"}"#, 1),
        (r#"ferrotracker_http_timeouts_total{kind="request"}"#, 1),
    ];
    let all_closed = poll_until(Duration::from_secs(20), Duration::from_millis(100), || {
        series
            .iter()
            .all(|&(s, n)| metric(&t, s) >= n)
            .then_some(())
    });
    let got: Vec<(&str, u64)> = series.iter().map(|&(s, _)| (s, metric(&t, s))).collect();
    assert!(all_closed.is_some(), "{got:?}");
    let want: Vec<(&str, u64)> = series.to_vec();
    assert_eq!(
        got, want,
        "each timed-out connection counted once, where it was"
    );
    drop(held);
}

/// Raises this process's soft open-files limit to at least `want` (up to the hard limit), so
/// that the test can hold thousands of sockets; fails the test if the hard limit is lower.
fn raise_open_files_limit(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed in.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    assert!(
        lim.rlim_max >= want,
        "hard open-files limit {} < {want}",
        lim.rlim_max
    );
    if lim.rlim_cur < want {
        lim.rlim_cur = want;
        // SAFETY: as above.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }
}

/// A leecher's torrent for one 16 KiB file that no one has, announcing to `url`.
fn torrent(url: &str) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(format!("d8:announce{}:{url}4:info", url.len()).as_bytes());
    t.extend_from_slice(b"d6:lengthi16384e4:name8:data.bin12:piece lengthi16384e6:pieces20:");
    t.extend_from_slice(&[0x5a; 20]);
    t.extend_from_slice(b"ee");
    t
}

fn aria2c() -> Option<()> {
    let ok = Command::new("aria2c")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run aria2c ({e})"))
        .and_then(|s| {
            s.success()
                .then_some(())
                .ok_or("aria2c --version failed".into())
        });
    require_or_skip("aria2c", ok)
}

/// aria2c, trusting the test CA, announces over https://127.0.0.1 and https://[::1]: the
/// tracker then lists it as a leecher.
#[test]
fn aria2c_announces_over_https() {
    if aria2c().is_none() {
        return;
    }
    let pki = TestPki::new();
    let cert = pki.issue("server", KeyType::EcdsaP256);
    let t = start(&Live::new(&pki, &cert), "");
    for addr in [t.https4(), t.https6()] {
        aria2c_announces(&pki, &t, &format!("https://{addr}/announce"));
    }
}

/// aria2c downloads a torrent whose tracker is `url` until the tracker lists it.
fn aria2c_announces(pki: &TestPki, t: &Tracker, url: &str) {
    let dir = TempDir::new("aria2c");
    let url = url.to_string();
    let file = dir.path().join("t.torrent");
    std::fs::write(&file, torrent(&url)).expect("write torrent");
    let info_hash = {
        let t = torrent(&url);
        let start = t.windows(5).position(|w| w == b"4:inf").expect("info") + 6;
        ring::digest::digest(
            &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &t[start..t.len() - 1],
        )
    };
    let mut h = [0u8; 20];
    h.copy_from_slice(info_hash.as_ref());
    let mut child = Command::new("aria2c")
        .arg(format!("--ca-certificate={}", pki.ca_certificate.display()))
        .arg(format!("--dir={}", dir.path().display()))
        .args([
            "--enable-dht=false",
            "--enable-dht6=false",
            "--bt-enable-lpd=false",
            "--enable-peer-exchange=false",
            "--bt-stop-timeout=60",
            "--summary-interval=0",
            "--console-log-level=warn",
        ])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn aria2c");
    let listed = poll_until(Duration::from_secs(20), Duration::from_millis(100), || {
        let s = http_get(t.http4(), &scrape_target(&[h])).scrape();
        (s.first().map(|e| e.1.incomplete) == Some(1)).then_some(())
    });
    // By PID: the test's own child.
    let _ = child.kill();
    let out = child.wait_with_output().expect("aria2c output");
    assert!(
        listed.is_some(),
        "aria2c's announce to {url} did not reach the tracker:\n{}{}\ntracker:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        t.stderr()
    );
}

/// With `http.proxy_protocol`, a trusted proxy's PROXY header comes before the TLS handshake on
/// a TLS listener, and the announce is recorded for the client it names.
#[test]
fn a_proxy_header_before_the_handshake_names_the_client() {
    let pki = TestPki::new();
    let cert = pki.issue("server", KeyType::EcdsaP256);
    let t = start(
        &Live::new(&pki, &cert),
        "http.proxy_protocol on\naccess.proxy 127.0.0.2\n",
    );
    let h = hash(45);
    let proxy: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    for (source, port) in [("192.0.2.7", 6881), ("2001:db8::7", 6882)] {
        let family = if source.contains(':') { "TCP6" } else { "TCP4" };
        let dest = if source.contains(':') {
            "::1"
        } else {
            "127.0.0.1"
        };
        let header = format!("PROXY {family} {source} {dest} 5555 443\r\n");
        let mut tcp = Http::connect_from(proxy, t.https4()).stream;
        tcp.write_all(header.as_bytes()).expect("header");
        let mut c = pki.client().handshake(tcp, t.https4()).expect("handshake");
        assert_eq!(c.negotiated().fingerprint, cert.fingerprint);
        assert_eq!(c.get(&announce_target(&h, port, 1, "")).status, 200);
    }
    // From 127.0.0.1, not a proxy: TLS from the first byte.
    let r = pki
        .client()
        .get(t.https4(), &announce_target(&h, 7000, 1, "&numwant=50"))
        .0
        .announce();
    let peers4 = r.peers4();
    assert!(
        peers4.contains(&"192.0.2.7:6881".parse().unwrap()),
        "{peers4:?}"
    );
    assert!(
        peers4.iter().all(|p| p.ip().octets() != [127, 0, 0, 2]),
        "{peers4:?}"
    );
    assert_eq!(r.peers6(), vec!["[2001:db8::7]:6882".parse().unwrap()]);
    // A TLS connection from the trusted proxy without a header is closed, not served.
    let tcp = Http::connect_from(proxy, t.https4()).stream;
    assert!(pki.client().handshake(tcp, t.https4()).is_err());
}
