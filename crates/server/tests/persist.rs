//! Statedump across a restart and the privilege drop, against the real binary.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;

/// Counts (complete, downloaded, incomplete) of `h` by HTTP scrape.
fn scrape(t: &Tracker, h: &[u8; 20]) -> Option<ScrapeEntry> {
    let mut c = Http::connect(t.http4());
    let r = c.get(&scrape_target(&[*h]));
    assert_eq!(r.status, 200, "{}", r.body_str());
    r.scrape().into_iter().find(|(k, _)| k == h).map(|(_, e)| e)
}

fn restart_keeps_state(sig: libc::c_int, with_peers: bool) {
    let dir = writable_dir("dump");
    let file = dir.path().join("state");
    let conf = format!(
        "tracker.statedump {}\ntracker.statedump_interval 0\ntracker.statedump_peers {}\n",
        file.display(),
        if with_peers { "on" } else { "off" }
    );
    let conf_path = dir.write("ft.conf", &conf);
    let (h1, h2) = (hash(1), hash(2));
    let mut t = Tracker::v4_with_flags(&["-f", conf_path.to_str().unwrap()]);
    {
        let mut c = Http::connect(t.http4());
        for port in 1000..1003u16 {
            c.get(&announce_target(&h1, port, 0, "&event=completed"))
                .announce();
        }
        c.get(&announce_target(&h1, 2000, 5, "")).announce();
        c.get(&announce_target(&h2, 3000, 0, "&event=completed"))
            .announce();
    }
    let st = t.stop_with(sig, Duration::from_secs(10));
    assert!(st.success(), "exit {st:?}; stderr:\n{}", t.stderr());
    let dump = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("no dump: {e}; stderr:\n{}", t.stderr()));
    assert_eq!(dump.lines().count(), 2, "{dump}");
    assert!(
        !dir.path().join("state.tmp").exists(),
        "temporary file left behind"
    );
    assert_eq!(dir.path().join("state.peers").exists(), with_peers);

    let t2 = Tracker::v4_with_flags(&[
        "-f",
        conf_path.to_str().unwrap(),
        "-l",
        file.to_str().unwrap(),
    ]);
    let e1 = scrape(&t2, &h1).expect("h1 restored");
    let e2 = scrape(&t2, &h2).expect("h2 restored");
    assert_eq!(
        (e1.downloaded, e2.downloaded),
        (3, 1),
        "downloaded as dumped, not doubled"
    );
    if with_peers {
        assert_eq!((e1.complete, e1.incomplete), (3, 1));
        // A new client gets the old swarm at once.
        let mut c = Http::connect(t2.http4());
        let a = c.get(&announce_target(&h1, 4000, 9, "")).announce();
        let mut ports = a.ports4();
        ports.sort();
        assert_eq!(ports, vec![1000, 1001, 1002, 2000, 4000]);
    } else {
        assert_eq!(
            (e1.complete, e1.incomplete),
            (0, 0),
            "peers are not in an opentracker dump"
        );
    }
}

#[test]
fn sigterm_dump_and_l_restore_torrents_and_downloaded() {
    restart_keeps_state(libc::SIGTERM, false);
}

#[test]
fn sigint_dump_with_peers_restores_full_swarms() {
    restart_keeps_state(libc::SIGINT, true);
}

#[test]
fn opentracker_dump_lines_load_and_bad_lines_are_reported() {
    let dir = writable_dir("otdump");
    let hex = hex(&hash(7));
    let file = dir.write("ot.state", &format!("{hex}:29926553:5\nnot a line\n"));
    let t = Tracker::v4_with_flags(&["-l", file.to_str().unwrap()]);
    let e = scrape(&t, &hash(7)).expect("restored");
    assert_eq!(e.downloaded, 5);
    // The torrents are in the store (and scraped) a moment before the load's report is logged.
    let named = |log: &String| log.contains(":2: expected 40 hex digits");
    let log = poll_until(Duration::from_secs(5), Duration::from_millis(10), || {
        Some(t.stderr()).filter(named)
    })
    .unwrap_or_else(|| t.stderr());
    assert!(
        log.contains("1 torrents loaded") && log.contains("1 bad lines"),
        "{log}"
    );
    assert!(
        log.contains(":2: expected 40 hex digits"),
        "line number named: {log}"
    );
}

/// Dumps are private (the peer file holds client addresses) and a link planted where the
/// temporary file goes is replaced, not followed: its target is left as it was.
#[test]
fn dumps_are_mode_0600_and_a_planted_link_is_not_followed() {
    use std::os::unix::fs::MetadataExt;
    let dir = writable_dir("dump-link");
    let file = dir.path().join("state");
    // A file the tracker's user could write, that someone wants overwritten.
    let victim = dir.write("victim", "keep me\n");
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o666)).unwrap();
    for tmp in ["state.tmp", "state.peers.tmp"] {
        std::os::unix::fs::symlink(&victim, dir.path().join(tmp)).unwrap();
    }
    let conf = dir.write(
        "ft.conf",
        &format!(
            "tracker.statedump {}\ntracker.statedump_interval 0\ntracker.statedump_peers on\n",
            file.display()
        ),
    );
    let mut t = Tracker::start(
        &["-f", conf.to_str().unwrap(), "-i", "127.0.0.1", "-p", "0"],
        None,
    );
    Http::connect(t.http4())
        .get(&announce_target(&hash(3), 4000, 0, "&event=completed"))
        .announce();
    let st = t.stop_with(libc::SIGTERM, Duration::from_secs(10));
    assert!(st.success(), "exit {st:?}; stderr:\n{}", t.stderr());
    assert!(
        std::fs::read(&victim).unwrap() == b"keep me\n",
        "the link was followed: its target was overwritten; stderr:\n{}",
        t.stderr()
    );
    for name in ["state", "state.peers"] {
        let p = dir.path().join(name);
        let m = std::fs::symlink_metadata(&p)
            .unwrap_or_else(|e| panic!("{name}: {e}; stderr:\n{}", t.stderr()));
        assert!(m.file_type().is_file(), "{name} is not a plain file");
        assert_eq!(m.mode() & 0o777, 0o600, "{name}");
        assert!(!dir.path().join(format!("{name}.tmp")).exists());
    }
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().lines().count(),
        1,
        "one torrent dumped"
    );
}

#[test]
fn privileges_are_dropped_after_binding() {
    let dir = TempDir::new("root");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let rootdir = dir.path().canonicalize().unwrap();
    let t = Tracker::v4_with_flags(&["-d", rootdir.to_str().unwrap(), "-u", "nobody"]);
    let pid = t.pid();
    // The sockets are logged as they are bound, before the drop: wait for it (bounded), then
    // serve one request, which only happens once start-up is done.
    let mut c = Http::connect(t.http4());
    c.get(&announce_target(&hash(3), 1, 0, "")).announce();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .unwrap()
        .to_string();
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    if require_or_skip("root (the privilege drop and chroot)", root()).is_none() {
        // Without root there is no chroot, only the change of directory (as opentracker).
        assert_eq!(cwd, rootdir);
        c.get(&announce_target(&hash(3), 2, 0, "")).announce();
        return;
    }
    // SAFETY: getpwnam with a NUL-terminated name; the result is read at once.
    let nobody = unsafe {
        let pw = libc::getpwnam(c"nobody".as_ptr());
        assert!(!pw.is_null(), "no user nobody on this machine");
        (*pw).pw_uid
    };
    let ids: Vec<u32> = uid_line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![nobody; 4],
        "real, effective, saved and fs uid: {uid_line}"
    );
    let proc_root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert_eq!(proc_root, rootdir, "chrooted");
    let groups = status.lines().find(|l| l.starts_with("Groups:")).unwrap();
    assert!(
        !groups.split_whitespace().skip(1).any(|g| g == "0"),
        "root group kept: {groups}"
    );
    // Still serving after the drop.
    c.get(&announce_target(&hash(3), 2, 0, "")).announce();
}

#[test]
fn unknown_user_stops_the_start() {
    // The user is only looked up when there is root to give up.
    if require_or_skip("root (the user to drop to)", root()).is_none() {
        return;
    }
    let f = run_to_exit(
        &["-u", "no-such-user-ft", "-i", "127.0.0.1", "-p", "0"],
        Duration::from_secs(10),
    );
    assert_eq!(f.status.code(), Some(111), "{}", f.stderr);
    assert!(f.stderr.contains("no-such-user-ft"), "{}", f.stderr);
}
