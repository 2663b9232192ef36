//! Start-up behaviour of the binary: flags, config file keys, errors and signals.

mod common;

use std::time::Duration;

use common::*;
use ferrotracker_proto::Event;

const EXIT_DEADLINE: Duration = Duration::from_secs(10);

/// True if `stderr` names line `line` of `path` (as `path:line` or `line <n>`).
fn names_line(stderr: &str, path: &str, line: u32) -> bool {
    stderr.contains(&format!("{path}:{line}"))
        || (stderr.contains(path) && stderr.contains(&format!("line {line}")))
}

#[test]
fn help_prints_usage_and_exits_zero() {
    for flag in ["-h", "--help"] {
        let f = run_to_exit(&[flag], EXIT_DEADLINE);
        assert!(f.status.success(), "{flag}: {:?} {}", f.status, f.stderr);
        assert!(f.stdout.contains("Usage"), "{flag}: {:?}", f.stdout);
        assert!(f.stdout.contains("-f"), "{flag}: {:?}", f.stdout);
    }
}

#[test]
fn sigterm_and_sigint_exit_zero() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut t = Tracker::dual();
        // Serve something first so that shutdown happens with live state and connections.
        let r = http_announce(t.http4(), &hash(1), 4000, 0, "");
        assert_eq!(r.ports4(), vec![4000]);
        Udp::new(t.udp6()).announce(&hash(1), 4001, 0, Event::Started, -1);
        let _idle = Http::connect(t.http6());
        let st = t.stop_with(sig, EXIT_DEADLINE);
        assert_eq!(
            st.code(),
            Some(0),
            "signal {sig}: {st:?}; stderr:\n{}",
            t.stderr()
        );
    }
}

#[test]
fn sighup_does_not_stop_the_tracker() {
    let mut t = Tracker::v4();
    let pid = t.pid();
    // SAFETY: kill(2) takes no pointer; the pid is the harness's running child.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGHUP);
    }
    // A request round trip after the signal: a process killed by SIGHUP would be gone by then.
    assert_eq!(
        http_announce(t.http4(), &hash(2), 4100, 0, "").ports4(),
        vec![4100]
    );
    assert!(
        t.is_running(),
        "SIGHUP stopped the tracker; stderr:\n{}",
        t.stderr()
    );
    assert_eq!(
        http_announce(t.http4(), &hash(2), 4101, 0, "").ports4(),
        vec![4100, 4101]
    );
}

/// `-s` (live sync) is real now; multicast at an IPv6 address is refused, as opentracker does.
#[test]
fn livesync_flag_over_ipv6_exits_nonzero() {
    let argv = ["-i", "::1", "-p", "0", "-s", "9696"];
    let f = run_to_exit(&argv, EXIT_DEADLINE);
    assert!(!f.status.success(), "{argv:?}: exited {:?}", f.status);
    assert!(f.stderr.contains("IPv4 only"), "{argv:?}: {}", f.stderr);
    assert!(!f.stderr.contains("listening on"), "{}", f.stderr);
}

#[test]
fn bad_config_lines_exit_nonzero_naming_file_line_and_key() {
    for (text, line, key) in [
        (
            "# c\ntracker.numwant 10\ntracker.interval abc\n",
            3,
            "tracker.interval",
        ),
        ("tracker.peer_timeout -5\n", 1, "tracker.peer_timeout"),
        ("\n\nhttp.keepalive maybe\n", 3, "http.keepalive"),
        ("tracker.numwant\n", 1, "tracker.numwant"),
        ("tracker.no_such_key 1\n", 1, "tracker.no_such_key"),
    ] {
        fails_naming("badconf", text, line, key);
    }
}

/// Starts the tracker on config file `text` and asserts that it exits non-zero before binding
/// anything, with an error that names the file, `line` and contains `needle` (the key).
fn fails_naming(tag: &str, text: &str, line: u32, needle: &str) {
    let dir = TempDir::new(tag);
    let path = dir.write("conf", text);
    let p = path.display().to_string();
    let f = run_to_exit(
        &["-i", "127.0.0.1", "-p", "0", "-P", "0", "-f", &p],
        EXIT_DEADLINE,
    );
    assert!(!f.status.success(), "{text:?}: exited {:?}", f.status);
    assert!(
        f.stderr.contains(needle),
        "{text:?}: {needle:?} not in {}",
        f.stderr
    );
    assert!(
        names_line(&f.stderr, &p, line),
        "{text:?}: no {p}:{line} in {}",
        f.stderr
    );
    assert!(
        !f.stderr.contains("listening on"),
        "{text:?}: bound before failing"
    );
}

#[test]
fn out_of_range_numbers_exit_nonzero_naming_file_line_and_key() {
    for (text, line, key) in [
        // Would wrap the connection deadline (u32 seconds) at once.
        (
            "tracker.workers 1\nhttp.idle_timeout 4294967295\n",
            2,
            "http.idle_timeout",
        ),
        (
            "http.request_timeout 4294967295\n",
            1,
            "http.request_timeout",
        ),
        (
            "\ntracker.peer_timeout 99999999\n",
            2,
            "tracker.peer_timeout",
        ),
        ("tracker.numwant_max 4000000000\n", 1, "tracker.numwant_max"),
        (
            "ratelimit.max_addresses 4000000000\n",
            1,
            "ratelimit.max_addresses",
        ),
    ] {
        fails_naming("bigconf", text, line, &format!("{key}: must be at most "));
    }
}

#[test]
fn missing_config_file_exits_nonzero() {
    let dir = TempDir::new("missing");
    let p = dir.path().join("nope.conf").display().to_string();
    let f = run_to_exit(&["-i", "127.0.0.1", "-p", "0", "-f", &p], EXIT_DEADLINE);
    assert!(!f.status.success());
    assert!(f.stderr.contains(&p), "{}", f.stderr);
}

#[test]
fn bad_flags_exit_nonzero() {
    for args in [
        &["-p", "99999"][..],
        &["-i", "not-an-ip", "-p", "0"],
        &["-x"],
        &["-p"],
    ] {
        let f = run_to_exit(args, EXIT_DEADLINE);
        assert!(!f.status.success(), "{args:?}: exited {:?}", f.status);
        assert!(!f.stderr.is_empty(), "{args:?}: no message");
    }
}

#[test]
fn configured_interval_is_used_over_http_and_udp() {
    let t = Tracker::v4_with_config("# short interval\ntracker.interval 100\n");
    for port in 1..=5u16 {
        let r = http_announce(t.http4(), &hash(3), port, 0, "");
        assert!(
            (90..=110).contains(&r.interval),
            "interval {} not 100 ±10%",
            r.interval
        );
        assert_eq!(r.min_interval, r.interval / 2);
        let u = Udp::new(t.udp4()).announce(&hash(3), port, 0, Event::None, 0);
        assert!(
            (90..=110).contains(&u.interval),
            "udp interval {}",
            u.interval
        );
    }
}

#[test]
fn configured_numwant_and_numwant_max() {
    let t = Tracker::v4_with_config("tracker.numwant 7\ntracker.numwant_max 10\n");
    let h = hash(4);
    let mut c = Http::connect(t.http4());
    for p in 0..20u16 {
        c.get(&announce_target(&h, 1000 + p, 1, "&numwant=0"))
            .announce();
    }
    let r = c.get(&announce_target(&h, 1000, 1, "")).announce();
    assert_eq!(r.peers4().len(), 7, "tracker.numwant is the default");
    let r = c
        .get(&announce_target(&h, 1000, 1, "&numwant=3"))
        .announce();
    assert_eq!(r.peers4().len(), 3);
    let r = c
        .get(&announce_target(&h, 1000, 1, "&numwant=50"))
        .announce();
    assert_eq!(r.peers4().len(), 10, "tracker.numwant_max caps numwant");
    let mut u = Udp::new(t.udp4());
    let r = u.announce(&h, 1000, 1, Event::None, -1);
    assert_eq!(r.raw_peers.len(), 7 * 6);
    let r = u.announce(&h, 1000, 1, Event::None, 50);
    assert_eq!(r.raw_peers.len(), 10 * 6);
}

#[test]
fn redirect_url_from_flag_and_config() {
    let url = "http://tracker.invalid/info";
    let flag = Tracker::start(&["-r", url, "-i", "127.0.0.1", "-p", "0"], None);
    let conf = Tracker::v4_with_config(&format!("tracker.redirect_url {url}\n"));
    for t in [&flag, &conf] {
        let r = http_get(t.http4(), "/");
        assert_eq!(r.status, 302, "{:?}", r.status_line);
        assert_eq!(r.header("location"), Some(url));
        // Other paths are unaffected.
        assert_eq!(http_get(t.http4(), "/foo").status, 404);
    }
    // Without a redirect, / is a 404 (checked against a plain tracker).
    let plain = Tracker::v4();
    assert_eq!(http_get(plain.http4(), "/").status, 404);
}

#[test]
fn one_worker_serves_everything() {
    let t = Tracker::v4_with_config("tracker.workers 1\n");
    let h = hash(5);
    let mut conns: Vec<Http> = (0..5).map(|_| Http::connect(t.http4())).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        let r = c
            .get(&announce_target(&h, 2000 + i as u16, 1, ""))
            .announce();
        assert_eq!(r.incomplete, i as i64 + 1);
    }
    let u = Udp::new(t.udp4()).announce(&h, 2100, 0, Event::None, -1);
    assert_eq!((u.leechers, u.seeders), (5, 1));
    // Every connection is still served after the others were used.
    for c in &mut conns {
        assert_eq!(c.get(&scrape_target(&[h])).scrape()[0].1.incomplete, 5);
    }
}

#[test]
fn listen_keys_in_the_config_file_bind() {
    let t = Tracker::start_expecting(&[], Some("listen.tcp 127.0.0.1:0\nlisten.udp [::1]:0\n"), 2);
    assert_eq!(t.tcp.len(), 1);
    assert_eq!(t.udp.len(), 1);
    assert_eq!(
        http_announce(t.http4(), &hash(6), 2200, 0, "").ports4(),
        vec![2200]
    );
    Udp::new(t.udp6()).connect();
}

/// `--print-config` writes a config file that starts the same tracker: printed again it is
/// byte-identical, and a tracker started on it answers with the printed settings.
#[test]
fn print_config_output_is_a_config_that_starts_the_same_tracker() {
    let dir = TempDir::new("printconf");
    let conf = dir.write(
        "in.conf",
        "tracker.interval 900\ntracker.numwant 2\ntracker.numwant_max 3\naccess.stats_path my_stats\n",
    );
    let conf = conf.display().to_string();
    let first = run_to_exit(
        &["--print-config", "-i", "127.0.0.1", "-p", "0", "-f", &conf],
        EXIT_DEADLINE,
    );
    assert!(
        first.status.success(),
        "{:?} {}",
        first.status,
        first.stderr
    );
    for line in [
        "\ntracker.interval 900\n",
        "\nlisten.tcp 127.0.0.1:0\n",
        "\ntracker.numwant 2\n",
        "\nhttp.idle_timeout 30\n",
    ] {
        assert!(
            first.stdout.contains(line),
            "{line:?} not in\n{}",
            first.stdout
        );
    }
    assert!(!first.stderr.contains("listening on"), "{}", first.stderr);
    let printed = dir.write("printed.conf", &first.stdout);
    let printed = printed.display().to_string();
    let again = run_to_exit(&["--print-config", "-f", &printed], EXIT_DEADLINE);
    assert!(again.status.success(), "{}", again.stderr);
    assert_eq!(again.stdout, first.stdout, "printing is a fixed point");

    let t = Tracker::start_expecting(&["-f", &printed], None, 1);
    let r = http_announce(t.http4(), &hash(3), 4000, 0, "");
    assert!((810..=990).contains(&r.interval), "{}", r.interval);
    for port in 4001..4006 {
        http_announce(t.http4(), &hash(3), port, 0, "");
    }
    let r = http_announce(t.http4(), &hash(3), 4010, 0, "&numwant=50");
    assert_eq!(r.peers4().len(), 3, "tracker.numwant_max 3 in force");
    assert_eq!(http_get(t.http4(), "/my_stats?mode=peer").status, 200);
}

/// `--check-config` binds nothing (it passes with its port taken), opens the files named,
/// and exits 1 naming what is wrong.
#[test]
fn check_config_checks_files_and_binds_nothing() {
    let dir = TempDir::new("checkconf");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let list = dir.write("white.txt", &format!("{}\nnot a hash\n", "ab".repeat(20)));
    let good = dir.write(
        "good.conf",
        &format!("access.whitelist {}\n", list.display()),
    );
    let good = good.display().to_string();
    let ok = run_to_exit(
        &[
            "--check-config",
            "-i",
            "127.0.0.1",
            "-p",
            &port,
            "-f",
            &good,
        ],
        EXIT_DEADLINE,
    );
    assert!(
        ok.status.success(),
        "{:?} {} {}",
        ok.status,
        ok.stdout,
        ok.stderr
    );
    assert!(ok.stdout.contains("configuration OK"), "{}", ok.stdout);
    assert!(ok.stdout.contains("1 info_hashes"), "{}", ok.stdout);
    assert!(ok.stdout.contains("first at line 2"), "{}", ok.stdout);

    let missing = dir.path().join("no-such-list.txt");
    let bad = dir.write(
        "bad.conf",
        &format!(
            "access.whitelist {}\ntracker.statedump {}/no/such/dir/dump\n",
            missing.display(),
            dir.path().display()
        ),
    );
    let bad = bad.display().to_string();
    let f = run_to_exit(&["--check-config", "-p", &port, "-f", &bad], EXIT_DEADLINE);
    assert_eq!(f.status.code(), Some(1), "{} {}", f.stdout, f.stderr);
    assert!(
        f.stderr.contains(&missing.display().to_string()),
        "{}",
        f.stderr
    );
    assert!(f.stderr.contains("tracker.statedump"), "{}", f.stderr);
    assert!(!f.stdout.contains("configuration OK"), "{}", f.stdout);

    // A bad line is reported as at start: file, line and key.
    let worse = dir.write("worse.conf", "\ntracker.interval soon\n");
    let p = worse.display().to_string();
    let f = run_to_exit(&["--check-config", "-f", &p], EXIT_DEADLINE);
    assert_eq!(f.status.code(), Some(1), "{}", f.stderr);
    assert!(
        names_line(&f.stderr, &p, 2) && f.stderr.contains("tracker.interval"),
        "{}",
        f.stderr
    );
}
