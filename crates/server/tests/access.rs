//! Access lists (`-w`, `-b`, `access.whitelist`, `access.blacklist`) and their reloads, client
//! addresses from `ip=` and `X-Forwarded-For`, and the `GET /` redirect, against the real
//! binary over loopback.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use common::*;
use ferrotracker_proto::Event;

/// How long a reload may take to show (the file poll reloads within about 2 s).
const RELOAD_DEADLINE: Duration = Duration::from_secs(10);
const STEP: Duration = Duration::from_millis(50);
const EXIT_DEADLINE: Duration = Duration::from_secs(10);

/// opentracker's reply body for a refused hash.
const NOT_AUTHORIZED: &[u8] =
    b"d14:failure reason63:Requested download is not authorized for use with this tracker.e";

/// Lowercase hex, so that the tests which uppercase some hashes write both cases.
fn hex(h: &[u8; 20]) -> String {
    common::hex(h).to_ascii_lowercase()
}

/// A list file's text holding `hashes`, one per line.
fn list(hashes: &[[u8; 20]]) -> String {
    hashes.iter().map(|h| format!("{}\n", hex(h))).collect()
}

fn with_list(flag: &str, path: &Path) -> Tracker {
    let p = path.display().to_string();
    Tracker::v4_with_flags(&[flag, &p])
}

/// Whether an HTTP announce for `h` is tracked (true) or refused with opentracker's reply.
fn http_allowed(t: &Tracker, h: &[u8; 20]) -> bool {
    let r = http_get(t.http4(), &announce_target(h, 6881, 0, ""));
    assert_eq!(r.status, 200, "{r:?}");
    if r.body == NOT_AUTHORIZED {
        return false;
    }
    assert!(r.announce().ports4().contains(&6881), "{:?}", r.body_str());
    true
}

/// Whether a UDP announce for `h` is tracked (true) or refused with opentracker's 8-byte reply.
fn udp_allowed(t: &Tracker, h: &[u8; 20]) -> bool {
    let mut u = Udp::new(t.udp4());
    let req = u.announce_request(h, 6882, 0, Event::Started, -1);
    let reply = u.announce_raw(&req);
    let mut refused = 1u32.to_be_bytes().to_vec();
    refused.extend_from_slice(&req.transaction_id.to_be_bytes());
    if reply == refused {
        return false;
    }
    parse_udp_announce(&reply, req.transaction_id);
    true
}

fn wait_for_log(t: &Tracker, needle: &str) {
    let found = poll_until(RELOAD_DEADLINE, STEP, || {
        t.stderr().contains(needle).then_some(())
    });
    assert!(
        found.is_some(),
        "no {needle:?} in the log within {RELOAD_DEADLINE:?}:\n{}",
        t.stderr()
    );
}

fn wait_until_allowed(t: &Tracker, h: &[u8; 20], want: bool) {
    let ok = poll_until(RELOAD_DEADLINE, STEP, || {
        (http_allowed(t, h) == want).then_some(())
    });
    assert!(
        ok.is_some(),
        "hash {} still {} after {RELOAD_DEADLINE:?}; log:\n{}",
        hex(h),
        if want { "refused" } else { "allowed" },
        t.stderr()
    );
}

fn sighup(t: &Tracker) {
    // SAFETY: kill(2) takes no pointer. By PID: the harness's own running child.
    let rc = unsafe { libc::kill(t.pid() as libc::pid_t, libc::SIGHUP) };
    assert_eq!(rc, 0);
}

#[test]
fn whitelist_admits_listed_hashes_only_over_http_and_udp() {
    let dir = TempDir::new("white");
    let (a, b) = (hash(1), hash(2));
    let text = format!(
        "# my torrents\n{} ubuntu.iso\r\n\n{}0\n",
        hex(&a).to_uppercase(),
        hex(&b)
    );
    let path = dir.write("whitelist", &text);
    let t = with_list("-w", &path);
    wait_for_log(&t, "1 info_hashes loaded (at start)");
    // The 41-digit line is skipped, and the log says where.
    wait_for_log(&t, "first at line 4");

    assert!(http_allowed(&t, &a));
    assert!(!http_allowed(&t, &b));
    assert!(udp_allowed(&t, &a));
    assert!(!udp_allowed(&t, &b));

    // Not checked, as in opentracker: scrapes, and stopped (a peer can always leave).
    assert_eq!(http_get(t.http4(), &scrape_target(&[b])).scrape(), vec![]);
    assert_eq!(
        Udp::new(t.udp4()).scrape(&[a, b]),
        vec![(2, 0, 0), (0, 0, 0)]
    );
    let stopped = http_get(t.http4(), &announce_target(&b, 6881, 0, "&event=stopped"));
    assert_eq!(stopped.status, 200);
    assert!(
        stopped.failure_reason().is_none(),
        "{:?}",
        stopped.body_str()
    );
    let r = Udp::new(t.udp4()).announce(&b, 6882, 0, Event::Stopped, -1);
    assert_eq!((r.seeders, r.leechers), (0, 0));
}

#[test]
fn blacklist_refuses_listed_hashes_only() {
    let dir = TempDir::new("black");
    let (a, b) = (hash(3), hash(4));
    let path = dir.write("blacklist", &list(&[b]));
    let t = Tracker::v4_with_config(&format!("access.blacklist {}\n", path.display()));
    assert!(http_allowed(&t, &a));
    assert!(!http_allowed(&t, &b));
    assert!(udp_allowed(&t, &a));
    assert!(!udp_allowed(&t, &b));
    wait_for_log(&t, "blacklist");
}

#[test]
fn both_list_modes_are_a_config_error() {
    let f = run_to_exit(
        &["-i", "127.0.0.1", "-p", "0", "-w", "/tmp/w", "-b", "/tmp/b"],
        EXIT_DEADLINE,
    );
    assert_eq!(f.status.code(), Some(1), "{}", f.stderr);
    assert!(f.stderr.contains("one mode at a time"), "{}", f.stderr);
    assert!(!f.stderr.contains("listening on"), "{}", f.stderr);
}

#[test]
fn sighup_reloads_the_list() {
    let dir = TempDir::new("hup");
    let (a, b) = (hash(5), hash(6));
    let path = dir.write("whitelist", &list(&[a]));
    let t = with_list("-w", &path);
    assert!(http_allowed(&t, &a) && !http_allowed(&t, &b));

    std::fs::write(&path, list(&[b, hash(7)])).unwrap();
    sighup(&t);
    wait_for_log(&t, "2 info_hashes loaded (SIGHUP)");
    assert!(!http_allowed(&t, &a));
    assert!(http_allowed(&t, &b));
    assert!(udp_allowed(&t, &b) && !udp_allowed(&t, &a));
}

#[test]
fn a_changed_file_is_reloaded_without_sighup() {
    let dir = TempDir::new("poll");
    let (a, b, c) = (hash(8), hash(9), hash(10));
    let path = dir.write("whitelist", &list(&[a]));
    let t = with_list("-w", &path);
    assert!(http_allowed(&t, &a) && !http_allowed(&t, &b));

    // Rewritten in place with the same size: only the modification time tells.
    std::fs::write(&path, list(&[b])).unwrap();
    wait_until_allowed(&t, &b, true);
    assert!(!http_allowed(&t, &a));
    assert!(t.stderr().contains("(changed on disk)"), "{}", t.stderr());

    // Replaced by a rename, as editors and deploy tools do.
    let tmp = dir.write("whitelist.new", &list(&[c]));
    std::fs::rename(&tmp, &path).unwrap();
    wait_until_allowed(&t, &c, true);
    assert!(!http_allowed(&t, &b));
}

#[test]
fn an_unreadable_list_keeps_the_previous_one() {
    let dir = TempDir::new("keep");
    let (a, b) = (hash(11), hash(12));
    let path = dir.write("whitelist", &list(&[a]));
    let t = with_list("-w", &path);
    assert!(http_allowed(&t, &a));

    // Gone: SIGHUP can't read it, and neither can the file poll.
    std::fs::remove_file(&path).unwrap();
    sighup(&t);
    wait_for_log(&t, "reload (SIGHUP) failed");
    assert!(
        t.stderr()
            .contains("previous list of 1 info_hashes stays in force"),
        "{}",
        t.stderr()
    );
    assert!(http_allowed(&t, &a));
    assert!(udp_allowed(&t, &a));
    assert!(!http_allowed(&t, &b));

    // A directory where the file was: not readable either.
    std::fs::create_dir(&path).unwrap();
    sighup(&t);
    let failed = poll_until(RELOAD_DEADLINE, STEP, || {
        (t.stderr().matches("reload (SIGHUP) failed").count() >= 2).then_some(())
    });
    assert!(failed.is_some(), "{}", t.stderr());
    assert!(http_allowed(&t, &a));

    // Back as a file: loaded by the poll.
    std::fs::remove_dir(&path).unwrap();
    std::fs::write(&path, list(&[b])).unwrap();
    wait_until_allowed(&t, &b, true);
    assert!(!http_allowed(&t, &a));
}

#[test]
fn a_missing_whitelist_refuses_everything_until_it_appears() {
    let dir = TempDir::new("missing");
    let path = dir.path().join("not-yet");
    let a = hash(13);
    let t = with_list("-w", &path);
    wait_for_log(&t, "every announce is refused");
    assert!(!http_allowed(&t, &a));
    assert!(!udp_allowed(&t, &a));
    std::fs::write(&path, list(&[a])).unwrap();
    wait_until_allowed(&t, &a, true);
    assert!(udp_allowed(&t, &a));
}

#[test]
fn statedump_load_goes_through_the_whitelist() {
    let dir = TempDir::new("dump");
    let (a, b) = (hash(14), hash(15));
    let minutes = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60;
    let dump = dir.write(
        "dump",
        &format!(
            "{}:{minutes}:5\n{}:{minutes}:7\n",
            hex(&a).to_uppercase(),
            hex(&b).to_uppercase()
        ),
    );
    let white = dir.write("whitelist", &list(&[a]));
    let (d, w) = (dump.display().to_string(), white.display().to_string());
    let t = Tracker::v4_with_flags(&["-w", &w, "-l", &d]);
    let s = Udp::new(t.udp4()).scrape(&[a, b]);
    assert_eq!(s, vec![(0, 5, 0), (0, 0, 0)], "{}", t.stderr());
}

/// The IPv4 peers in an announce reply for `h` (numwant 50), asked from 127.0.0.1.
fn peers_of(t: &Tracker, h: &[u8; 20]) -> Vec<SocketAddrV4> {
    http_get(t.http4(), &announce_target(h, 7000, 1, "&numwant=50"))
        .announce()
        .peers4()
}

fn v4(a: [u8; 4], port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::from(a), port)
}

#[test]
fn ip_param_is_honoured_only_when_enabled() {
    let h = hash(16);
    let off = Tracker::v4();
    http_get(off.http4(), &announce_target(&h, 7001, 0, "&ip=10.9.8.7"));
    let peers = peers_of(&off, &h);
    assert!(peers.contains(&v4([127, 0, 0, 1], 7001)), "{peers:?}");
    assert!(!peers.contains(&v4([10, 9, 8, 7], 7001)), "{peers:?}");

    let on = Tracker::v4_with_config("tracker.allow_ip_param on\n");
    http_get(on.http4(), &announce_target(&h, 7001, 0, "&ip=10.9.8.7"));
    let peers = peers_of(&on, &h);
    assert!(peers.contains(&v4([10, 9, 8, 7], 7001)), "{peers:?}");
    assert!(!peers.contains(&v4([127, 0, 0, 1], 7001)), "{peers:?}");
    // An IPv6 ip= goes to the IPv6 list.
    let r = http_get(on.http4(), &announce_target(&h, 7002, 0, "&ip=2001:db8::7"));
    assert!(r.announce().peers6().iter().any(|p| p.port() == 7002));
    // Not an address: 400, as opentracker.
    let bad = http_get(on.http4(), &announce_target(&h, 7003, 0, "&ip=example.org"));
    assert_eq!(bad.status, 400, "{:?}", bad.body_str());
}

fn announce_with_xff(t: &Tracker, from: [u8; 4], h: &[u8; 20], port: u16, xff: &str) {
    announce_with_xff_lines(t, from, h, port, &[xff]);
}

/// One `X-Forwarded-For` header line per entry of `lines`.
fn announce_with_xff_lines(t: &Tracker, from: [u8; 4], h: &[u8; 20], port: u16, lines: &[&str]) {
    let mut c = Http::connect_from(IpAddr::from(from), t.http4());
    let target = announce_target(h, port, 0, "");
    let xff: String = lines
        .iter()
        .map(|l| format!("X-Forwarded-For: {l}\r\n"))
        .collect();
    c.send(
        format!("GET {target} HTTP/1.1\r\nHost: t\r\n{xff}Connection: close\r\n\r\n").as_bytes(),
    );
    let r = c.read_response();
    assert_eq!(r.status, 200, "{:?}", r.body_str());
    assert!(r.failure_reason().is_none(), "{:?}", r.body_str());
}

#[test]
fn x_forwarded_for_is_believed_only_from_proxies() {
    let t = Tracker::v4_with_config("access.proxy 127.0.0.2/32\naccess.proxy 10.0.0.0/8\n");
    let h = hash(17);
    // Through the proxy: the rightmost address that is not a trusted proxy. The client wrote
    // 6.6.6.6 itself; the proxy chain appended 9.9.9.9 and 10.0.0.1.
    announce_with_xff(&t, [127, 0, 0, 2], &h, 7010, "6.6.6.6, 9.9.9.9, 10.0.0.1");
    // The same chain written as one line per hop is the same list.
    announce_with_xff_lines(
        &t,
        [127, 0, 0, 2],
        &h,
        7013,
        &["6.6.6.7", "9.9.9.8", "10.0.0.1"],
    );
    // A spoofing attempt straight from an untrusted address: the header is ignored.
    announce_with_xff(&t, [127, 0, 0, 1], &h, 7011, "8.8.8.8");
    // A proxy without the header: its own address.
    let mut c = Http::connect_from(IpAddr::from([127, 0, 0, 2]), t.http4());
    assert_eq!(c.get(&announce_target(&h, 7012, 0, "")).status, 200);

    let peers = peers_of(&t, &h);
    assert!(peers.contains(&v4([9, 9, 9, 9], 7010)), "{peers:?}");
    assert!(peers.contains(&v4([9, 9, 9, 8], 7013)), "{peers:?}");
    assert!(peers.contains(&v4([127, 0, 0, 1], 7011)), "{peers:?}");
    assert!(peers.contains(&v4([127, 0, 0, 2], 7012)), "{peers:?}");
    for p in &peers {
        assert!(
            ![[6, 6, 6, 6], [6, 6, 6, 7], [8, 8, 8, 8], [10, 0, 0, 1]].contains(&p.ip().octets()),
            "forged or proxy address recorded: {peers:?}"
        );
    }
}

/// An announce from `from` with whole header lines `headers`.
fn announce_with_headers(t: &Tracker, from: [u8; 4], h: &[u8; 20], port: u16, headers: &str) {
    let mut c = Http::connect_from(IpAddr::from(from), t.http4());
    let target = announce_target(h, port, 0, "");
    c.send(
        format!("GET {target} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n")
            .as_bytes(),
    );
    let r = c.read_response();
    assert_eq!(r.status, 200, "{:?}", r.body_str());
}

#[test]
fn access_proxy_header_chooses_which_header_names_the_client() {
    let all = "X-Forwarded-For: 1.1.1.1\r\nX-Real-IP: 2.2.2.2\r\nCF-Connecting-IP: 3.3.3.3\r\n\
               True-Client-IP: 4.4.4.4\r\nForwarded: for=\"5.5.5.5:80\";proto=https\r\n";
    for (name, client) in [
        ("X-Real-IP", [2, 2, 2, 2]),
        ("cf-connecting-ip", [3, 3, 3, 3]),
        ("True-Client-IP", [4, 4, 4, 4]),
        ("Forwarded", [5, 5, 5, 5]),
        ("X-Forwarded-For", [1, 1, 1, 1]),
    ] {
        let t = Tracker::v4_with_config(&format!(
            "access.proxy 127.0.0.2\naccess.proxy_header {name}\n"
        ));
        let h = hash(19);
        announce_with_headers(&t, [127, 0, 0, 2], &h, 7030, all);
        // Not from a proxy: every header ignored.
        announce_with_headers(&t, [127, 0, 0, 1], &h, 7031, all);
        let peers = peers_of(&t, &h);
        assert!(peers.contains(&v4(client, 7030)), "{name}: {peers:?}");
        assert!(
            peers.contains(&v4([127, 0, 0, 1], 7031)),
            "{name}: {peers:?}"
        );
        // And the asking peer, 127.0.0.1:7000: nothing else was recorded.
        assert_eq!(peers.len(), 3, "{name}: {peers:?}");
    }
    // A name that is not one of them stops the start, naming the key.
    let dir = TempDir::new("proxyheader");
    let conf = dir.write("c.conf", "access.proxy_header X-Client\n");
    let f = run_to_exit(
        &[
            "-i",
            "127.0.0.1",
            "-p",
            "0",
            "-f",
            &conf.display().to_string(),
        ],
        std::time::Duration::from_secs(10),
    );
    assert!(!f.status.success());
    assert!(f.stderr.contains("access.proxy_header"), "{}", f.stderr);
}

#[test]
fn blessed_nets_are_trusted_proxies_too() {
    let t = Tracker::v4_with_flags(&["-A", "127.0.0.3"]);
    let h = hash(18);
    announce_with_xff(&t, [127, 0, 0, 3], &h, 7020, "1.2.3.4");
    announce_with_xff(&t, [127, 0, 0, 1], &h, 7021, "1.2.3.5");
    let peers = peers_of(&t, &h);
    assert!(peers.contains(&v4([1, 2, 3, 4], 7020)), "{peers:?}");
    assert!(peers.contains(&v4([127, 0, 0, 1], 7021)), "{peers:?}");
}

#[test]
fn root_redirects_when_configured_else_404() {
    let url = "https://example.org/tracker-info?x=1";
    for t in [
        Tracker::start(&["-i", "127.0.0.1", "-p", "0", "-r", url], None),
        Tracker::start(
            &["-i", "127.0.0.1", "-p", "0"],
            Some(&format!("tracker.redirect_url {url}\n")),
        ),
    ] {
        let r = http_get(t.tcp[0], "/");
        assert_eq!(r.status, 302, "{r:?}");
        assert_eq!(r.header("location"), Some(url), "{r:?}");
        // Keep-alive: the connection serves on after a redirect.
        let mut c = Http::connect(t.tcp[0]);
        assert_eq!(c.get("/").status, 302);
        assert_eq!(c.get("/").status, 302);
    }
    let t = Tracker::start(&["-i", "127.0.0.1", "-p", "0"], None);
    assert_eq!(http_get(t.tcp[0], "/").status, 404);
    let mut c = Http::connect(t.tcp[0]);
    assert_eq!(c.get("/").status, 404);
}

/// Writes `text` to the FIFO at `path` without waiting for a reader: if the tracker did not
/// open the FIFO the open fails (ENXIO) instead of hanging the test.
fn write_fifo(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .unwrap_or_else(|e| panic!("open {} for writing: {e}", path.display()));
    f.write_all(text.as_bytes()).unwrap();
}

#[test]
fn fifos_add_to_and_delete_from_a_whitelist_until_the_next_reload() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = writable_dir("fifo-white");
    let (a, b, c) = (hash(20), hash(21), hash(22));
    let path = dir.write("whitelist", &list(&[a]));
    let (add, del) = (dir.path().join("add"), dir.path().join("del"));
    let t = Tracker::v4_with_config(&format!(
        "access.whitelist {}\naccess.fifo_add {}\naccess.fifo_delete {}\n",
        path.display(),
        add.display(),
        del.display()
    ));
    wait_for_log(&t, "access.fifo_delete");
    // Created by the tracker, readable and writable by its user only.
    for f in [&add, &del] {
        let m = std::fs::metadata(f).unwrap();
        assert!(m.file_type().is_fifo(), "{}", f.display());
        assert_eq!(m.permissions().mode() & 0o777, 0o600, "{}", f.display());
    }
    assert!(http_allowed(&t, &a) && !http_allowed(&t, &b));

    // A line of text, a hash with a comment, and a hash split across two writers.
    let bh = hex(&b);
    write_fifo(
        &add,
        &format!("not a hash\n{} b.iso\n{}", hex(&c).to_uppercase(), &bh[..7]),
    );
    wait_until_allowed(&t, &c, true);
    assert!(!http_allowed(&t, &b), "half a line is not a hash yet");
    write_fifo(&add, &format!("{}\n", &bh[7..]));
    wait_until_allowed(&t, &b, true);
    assert!(udp_allowed(&t, &b) && udp_allowed(&t, &c));
    wait_for_log(&t, "1 lines skipped");

    // Deleting beats the file, and adding again beats the delete.
    write_fifo(&del, &format!("{}\n{}\n", hex(&a), hex(&c)));
    wait_until_allowed(&t, &a, false);
    assert!(!udp_allowed(&t, &a) && !http_allowed(&t, &c));
    assert!(http_allowed(&t, &b));
    write_fifo(&add, &format!("{}\n", hex(&c)));
    wait_until_allowed(&t, &c, true);
    // Operators see the edits in /metrics (loopback may read it by default).
    let metrics = http_get(t.http4(), "/metrics").body_str();
    for line in [
        "ferrotracker_access_list_hashes{source=\"file\"} 1\n",
        "ferrotracker_access_list_hashes{source=\"fifo_added\"} 2\n",
        "ferrotracker_access_list_hashes{source=\"fifo_deleted\"} 1\n",
    ] {
        assert!(metrics.contains(line), "no {line:?} in\n{metrics}");
    }

    // A reload takes the file as the whole truth again, as opentracker's SIGHUP.
    sighup(&t);
    wait_for_log(&t, "1 info_hashes loaded (SIGHUP)");
    assert!(http_allowed(&t, &a));
    assert!(!http_allowed(&t, &b) && !http_allowed(&t, &c));
    // The FIFOs still work after the reload.
    write_fifo(&add, &format!("{}\n", hex(&b)));
    wait_until_allowed(&t, &b, true);
}

#[test]
fn fifos_edit_a_blacklist() {
    let dir = writable_dir("fifo-black");
    let (a, b) = (hash(23), hash(24));
    let path = dir.write("blacklist", &list(&[a]));
    let (add, del) = (dir.path().join("ban"), dir.path().join("unban"));
    let t = Tracker::v4_with_config(&format!(
        "access.blacklist {}\naccess.fifo_add {}\naccess.fifo_delete {}\n",
        path.display(),
        add.display(),
        del.display()
    ));
    wait_for_log(&t, "access.fifo_delete");
    assert!(!http_allowed(&t, &a) && http_allowed(&t, &b));
    write_fifo(&add, &format!("{}\n", hex(&b)));
    wait_until_allowed(&t, &b, false);
    assert!(!udp_allowed(&t, &b));
    write_fifo(&del, &format!("{}\n", hex(&a)));
    wait_until_allowed(&t, &a, true);
    assert!(udp_allowed(&t, &a));

    // A bulk load in one write (1,500 lines, within a pipe's 64 KiB): all of it lands.
    let bulk: Vec<[u8; 20]> = (0..1500u32)
        .map(|i| {
            let mut h = [0x5a; 20];
            h[16..].copy_from_slice(&i.to_be_bytes());
            h
        })
        .collect();
    write_fifo(&add, &list(&bulk));
    wait_until_allowed(&t, &bulk[1499], false);
    assert!(!udp_allowed(&t, &bulk[0]) && !http_allowed(&t, &bulk[750]));
    let metrics = http_get(t.http4(), "/metrics").body_str();
    assert!(
        metrics.contains("ferrotracker_access_list_hashes{source=\"fifo_added\"} 1501\n"),
        "{metrics}"
    );
}

#[test]
fn fifo_mistakes_stop_the_start_with_the_key_and_path() {
    let dir = TempDir::new("fifo-bad");
    // No list to edit.
    let run_with = |conf: &Path| {
        let conf = conf.display().to_string();
        run_to_exit(&["-i", "127.0.0.1", "-p", "0", "-f", &conf], EXIT_DEADLINE)
    };
    let f = run_with(&dir.write("a.conf", "access.fifo_add /tmp/nowhere\n"));
    assert_eq!(f.status.code(), Some(1), "{}", f.stderr);
    assert!(f.stderr.contains("access.fifo_add"), "{}", f.stderr);
    assert!(
        f.stderr.contains("access.whitelist or access.blacklist"),
        "{}",
        f.stderr
    );
    assert!(!f.stderr.contains("listening on"), "{}", f.stderr);
    assert!(!Path::new("/tmp/nowhere").exists());

    // A regular file where the FIFO should be is left alone.
    let wl = dir.write("whitelist", "");
    let plain = dir.write("plain", "keep me\n");
    let conf = dir.write(
        "b.conf",
        &format!(
            "access.whitelist {}\naccess.fifo_delete {}\n",
            wl.display(),
            plain.display()
        ),
    );
    let f = run_with(&conf);
    assert!(!f.status.success(), "{}", f.stderr);
    assert!(
        f.stderr
            .contains(&format!("access.fifo_delete {}", plain.display())),
        "{}",
        f.stderr
    );
    assert!(f.stderr.contains("not a FIFO"), "{}", f.stderr);
    assert_eq!(std::fs::read_to_string(&plain).unwrap(), "keep me\n");
}

/// The uid the tracker runs as when a test starts it: `nobody` when the test runs as root.
fn tracker_uid() -> u32 {
    let me = nix::unistd::geteuid();
    if !me.is_root() {
        return me.as_raw();
    }
    nix::unistd::User::from_name("nobody")
        .expect("look up nobody")
        .expect("user nobody")
        .uid
        .as_raw()
}

/// A FIFO at `path` with `mode`, owned by `uid`.
fn make_fifo(path: &Path, mode: u32, uid: u32) {
    use std::os::unix::fs::PermissionsExt;
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    if uid != nix::unistd::geteuid().as_raw() {
        std::os::unix::fs::chown(path, Some(uid), None).unwrap();
    }
}

/// Whoever can write a FIFO edits the access list, and whoever can read it can take lines
/// meant for the tracker: the start stops, naming the key, the path and why, for a symbolic
/// link (even to a FIFO that would do), a FIFO group or others may read or write, and a FIFO
/// owned by another user (the test makes one as root; with `CI` set it fails without root).
#[test]
fn fifos_others_could_read_or_write_stop_the_start() {
    let dir = writable_dir("fifo-owner");
    let wl = dir.write("whitelist", "");
    let uid = tracker_uid();
    let good = dir.path().join("good");
    make_fifo(&good, 0o600, uid);
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let mut cases = vec![(link, "is a symbolic link".to_string())];
    for mode in [0o620, 0o602, 0o640, 0o604] {
        let fifo = dir.path().join(format!("mode{mode:o}"));
        make_fifo(&fifo, mode, uid);
        cases.push((fifo, format!("open to group or others (mode {mode:04o})")));
    }
    if require_or_skip("root (to make a FIFO owned by another user)", root()).is_some() {
        // Open to the tracker's user through "others" (the owner is checked first): its
        // owner could take that back, or give it to anyone, at any time.
        let theirs = dir.path().join("theirs");
        make_fifo(&theirs, 0o606, 0);
        cases.push((theirs, "owned by uid 0, not by uid".to_string()));
    }
    for (i, (fifo, why)) in cases.iter().enumerate() {
        let conf = dir.write(
            &format!("{i}.conf"),
            &format!(
                "access.whitelist {}\naccess.fifo_add {}\n",
                wl.display(),
                fifo.display()
            ),
        );
        let f = run_to_exit(
            &["-i", "127.0.0.1", "-p", "0", "-f", conf.to_str().unwrap()],
            EXIT_DEADLINE,
        );
        assert!(!f.status.success(), "{}: {}", fifo.display(), f.stderr);
        let named = format!("access.fifo_add {}: ", fifo.display());
        assert!(
            f.stderr.contains(&named) && f.stderr.contains(why.as_str()),
            "want {named:?} and {why:?}:\n{}",
            f.stderr
        );
        assert!(!f.stderr.contains("reading hashes"), "{}", f.stderr);
    }
    // The FIFO the link points at is fine by itself.
    let t = Tracker::v4_with_config(&format!(
        "access.whitelist {}\naccess.fifo_add {}\n",
        wl.display(),
        good.display()
    ));
    wait_for_log(&t, "access.fifo_add");
    let a = hash(26);
    write_fifo(&good, &format!("{}\n", hex(&a)));
    wait_until_allowed(&t, &a, true);
}

#[test]
fn fifos_are_made_under_the_rootdir_like_the_list() {
    // Relative paths are opened after the chroot (as root) or the change of directory.
    let dir = writable_dir("fifo-root");
    let root = dir.path().canonicalize().unwrap();
    let a = hash(25);
    std::fs::write(root.join("wl"), "").unwrap();
    let args = [&["-d", root.to_str().unwrap()][..], V4].concat();
    let t = Tracker::start(&args, Some("access.whitelist wl\naccess.fifo_add add\n"));
    wait_for_log(&t, "access.fifo_add add: reading hashes");
    assert!(!http_allowed(&t, &a));
    write_fifo(&root.join("add"), &format!("{}\n", hex(&a)));
    wait_until_allowed(&t, &a, true);
}
