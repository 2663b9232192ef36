//! Flags, files and whole-config checks.

use super::values::bad;
use super::*;

use std::ffi::OsString;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

pub(super) fn args(line: &str) -> Vec<OsString> {
    line.split_whitespace().map(OsString::from).collect()
}

pub(super) fn run(line: &str) -> Config {
    match parse_args(args(line)) {
        Ok(Command::Run(cfg)) => cfg,
        other => panic!("`{line}` gave {other:?}"),
    }
}

pub(super) fn run_err(line: &str) -> ConfigError {
    match parse_args(args(line)) {
        Err(e) => e,
        other => panic!("`{line}` gave {other:?}, wanted an error"),
    }
}

pub(super) fn tcp(addr: &str) -> Listen {
    Listen {
        proto: Proto::Tcp,
        addr: addr.parse().unwrap(),
    }
}

pub(super) fn udp(addr: &str) -> Listen {
    Listen {
        proto: Proto::Udp,
        addr: addr.parse().unwrap(),
    }
}

pub(super) fn text(s: &str) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    parse_str(Path::new("test.conf"), s, &mut cfg).map(|()| cfg)
}

pub(super) fn text_err(s: &str) -> ConfigError {
    text(s).expect_err(s)
}
/// A config file in the temp dir, removed on drop.
pub(super) struct TempFile(pub(super) PathBuf);
impl TempFile {
    pub(super) fn new(contents: &str) -> Self {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let name = format!("ferrotracker-config-test-{}-{n}.conf", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }
    pub(super) fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn no_flags_listen_on_6969_dual_stack() {
    let cfg = run("");
    assert_eq!(cfg.listen, vec![tcp("[::]:6969"), udp("[::]:6969")]);
    assert_eq!(
        Config {
            listen: Vec::new(),
            ..cfg
        },
        Config::default()
    );
}

#[test]
fn defaults() {
    let cfg = Config::default();
    assert_eq!(cfg.tracker.interval, 1800);
    assert_eq!(cfg.store.peer_timeout, 2700);
    assert_eq!(cfg.store.torrent_timeout, 86400);
    assert_eq!(cfg.tracker.numwant_default, 50);
    assert_eq!(cfg.tracker.numwant_max, 200);
    assert_eq!(cfg.process.workers, 0);
    assert_eq!(cfg.tracker.redirect_url, None);
    assert!(cfg.http.keepalive);
    assert_eq!(cfg.http.idle_timeout, 30);
    assert!(cfg.listen.is_empty());
    assert_eq!(cfg.validate(), Ok(()));
}

#[test]
fn bare_i_moves_the_default_listens() {
    let cfg = run("-i 127.0.0.1");
    assert_eq!(
        cfg.listen,
        vec![tcp("127.0.0.1:6969"), udp("127.0.0.1:6969")]
    );
    let cfg = run("-i 127.0.0.1 -i ::1");
    assert_eq!(cfg.listen, vec![tcp("[::1]:6969"), udp("[::1]:6969")]);
}

#[test]
fn flags_bind_in_order_at_the_current_address() {
    let cfg = run("-i 127.0.0.1 -p 1 -i ::1 -p 2 -P 3");
    assert_eq!(
        cfg.listen,
        vec![tcp("127.0.0.1:1"), tcp("[::1]:2"), udp("[::1]:3")]
    );
    // Before any -i the address is `::`, and a trailing -i binds nothing.
    let cfg = run("-P 5 -p 6 -i 127.0.0.1");
    assert_eq!(cfg.listen, vec![udp("[::]:5"), tcp("[::]:6")]);
}

#[test]
fn only_one_protocol_bound_means_no_default() {
    assert_eq!(run("-P 6970").listen, vec![udp("[::]:6970")]);
    assert_eq!(run("-p 6970").listen, vec![tcp("[::]:6970")]);
}

#[test]
fn attached_values() {
    let cfg = run("-i127.0.0.1 -p6969 -P0 -rhttp://example.org/");
    assert_eq!(cfg.listen, vec![tcp("127.0.0.1:6969"), udp("127.0.0.1:0")]);
    assert_eq!(
        cfg.tracker.redirect_url.as_deref(),
        Some("http://example.org/")
    );
}

#[test]
fn i_accepts_brackets_and_rejects_junk() {
    assert_eq!(run("-i [::1] -p 1").listen, vec![tcp("[::1]:1")]);
    let e = run_err("-i localhost");
    assert_eq!(e.key, "-i");
    assert_eq!(e.to_string(), "-i: bad address `localhost`");
    run_err("-i 127.0.0.1:80");
}

#[test]
fn ports() {
    assert_eq!(
        run("-p 0 -p 65535").listen,
        vec![tcp("[::]:0"), tcp("[::]:65535")]
    );
    let e = run_err("-p x");
    assert_eq!(e, ConfigError::flag("-p", bad("bad port `x`".into())));
    assert_eq!(e.to_string(), "-p: bad port `x`");
    assert_eq!(
        run_err("-P 65536").to_string(),
        "-P: bad port `65536`: out of range"
    );
    run_err("-p -1");
    run_err("-p +1");
    run_err("-p ''");
}

#[test]
fn redirect() {
    assert_eq!(
        run("-r https://a.example/x?y=1")
            .tracker
            .redirect_url
            .as_deref(),
        Some("https://a.example/x?y=1")
    );
    let e = parse_args([
        OsString::from("-r"),
        OsString::from("http://a/\r\nSet-Cookie: x"),
    ]);
    assert!(
        matches!(
            e,
            Err(ConfigError {
                kind: ConfigErrorKind::BadValue(_),
                ..
            })
        ),
        "{e:?}"
    );
    let e = parse_args([OsString::from("-r"), OsString::from("http://a b/")]).unwrap_err();
    assert_eq!(e.key, "-r");
    // Last one wins, flags and file alike.
    let f = TempFile::new("tracker.redirect_url http://from-file/\n");
    let cfg = run(&format!("-r http://flag/ -f {}", f.arg()));
    assert_eq!(
        cfg.tracker.redirect_url.as_deref(),
        Some("http://from-file/")
    );
}

#[test]
fn help_and_version() {
    for (line, want) in [
        ("-v", Command::Version),
        ("--version", Command::Version),
        ("-h", Command::Help),
        ("--help", Command::Help),
        ("-vh", Command::Version),
        ("-hv", Command::Help),
        ("-p 1 -v", Command::Version),
        ("-h -x", Command::Help),
    ] {
        assert_eq!(parse_args(args(line)), Ok(want), "{line}");
    }
    // Strictly in order: an earlier error wins.
    assert_eq!(run_err("-x -h").kind, ConfigErrorKind::BadFlag);
    assert_eq!(run_err("-p y --version").key, "-p");
}

#[test]
fn bad_flags() {
    for (line, key) in [
        ("-x", "-x"),
        ("--foo", "--foo"),
        ("--", "--"),
        ("-", "-"),
        ("6969", "6969"),
        ("-p 1 extra", "extra"),
    ] {
        let e = run_err(line);
        assert_eq!(e.key, key, "{line}");
        assert_eq!(e.kind, ConfigErrorKind::BadFlag, "{line}");
        assert_eq!(e.line, 0);
        assert_eq!(e.file, None);
    }
    assert_eq!(run_err("-x").to_string(), "-x: unknown flag (see -h)");
    // `v` is -p's argument here, not a flag.
    assert_eq!(run_err("-pv").to_string(), "-p: bad port `v`");
}

#[test]
fn missing_arguments() {
    for flag in [
        "-i", "-p", "-P", "-r", "-f", "-d", "-u", "-l", "-A", "-w", "-b", "-s",
    ] {
        let e = run_err(&format!("-p 1 {flag}"));
        assert_eq!(
            e,
            ConfigError::flag(flag, ConfigErrorKind::MissingValue),
            "{flag}"
        );
        assert_eq!(e.to_string(), format!("{flag}: missing value"));
    }
}

#[test]
fn livesync_flag_and_keys() {
    assert_eq!(Config::default().livesync.listen, None);
    assert_eq!(
        run("-s 9697").livesync.listen,
        Some("0.0.0.0:9697".parse().unwrap())
    );
    assert_eq!(
        run("-i 10.0.0.1 -s 9696").livesync.listen,
        Some("10.0.0.1:9696".parse().unwrap())
    );
    assert_eq!(run_err("-s x").key, "-s");
    assert!(run_err("-s 1 -s 2").to_string().contains("twice"));
    assert!(run_err("-i ::1 -s 9696").to_string().contains("IPv4 only"));
    let cfg = text(
        "livesync.cluster.listen 10.0.0.1\nlivesync.cluster.node_ip 10.0.0.0/24\n\
         livesync.cluster.peer 10.0.0.2:9000\nlivesync.cluster.peer 10.0.0.3\n\
         livesync.cluster.key 000102030405060708090a0b0c0d0e0F\nlivesync.flush_delay 2\n\
         livesync.cluster.send_port 9697\n",
    )
    .unwrap();
    let l = &cfg.livesync;
    assert_eq!(l.listen, Some("10.0.0.1:9696".parse().unwrap()));
    assert_eq!(l.peers.len(), 2);
    assert_eq!(l.peers[1], "10.0.0.3:9696".parse().unwrap());
    assert_eq!(l.key.as_deref(), Some(&(0..16).collect::<Vec<u8>>()[..]));
    assert_eq!((l.flush_delay, l.send_port), (2, 9697));
    assert_eq!(l.key_file.as_deref(), Some(Path::new("test.conf")));
    assert_eq!(
        text("livesync.cluster.listen 10.0.0.1")
            .unwrap()
            .livesync
            .key_file,
        None
    );
    let nodes = cfg.livesync_nodes();
    assert!(nodes.contains("10.0.0.200".parse().unwrap()));
    assert!(nodes.contains("10.0.0.3".parse().unwrap()));
    assert!(!nodes.contains("10.0.1.1".parse().unwrap()));
    cfg.validate().unwrap();
    for bad in [
        "livesync.cluster.key 0011",
        "livesync.cluster.key zz0102030405060708090a0b0c0d0e0f",
        "livesync.flush_delay 0",
        "livesync.cluster.listen nowhere",
        "livesync.cluster.bogus 1",
        "livesync.cluster.listen 1.2.3.4\nlivesync.cluster.listen 1.2.3.4",
    ] {
        assert!(text(bad).is_err(), "{bad}");
    }
    // Keys without a listen address, and multicast over IPv6, are refused by validate.
    let mut c = text("livesync.cluster.node_ip 10.0.0.2").unwrap();
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("needs livesync.cluster.listen"));
    c = text("livesync.cluster.listen [::1]:9696").unwrap();
    assert!(c.validate().is_err());
    for any in [
        "0.0.0.0",
        "[::]:9696",
        "[::ffff:0.0.0.0]:9696",
        "::ffff:0.0.0.0",
    ] {
        let e = text(&format!(
            "livesync.cluster.listen {any}\nlivesync.cluster.peer 10.0.0.2"
        ))
        .unwrap()
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("own address"), "{e}");
    }
    c = text("livesync.cluster.listen [::1]:9696\nlivesync.cluster.peer [::1]:9697").unwrap();
    assert!(c.validate().is_ok(), "unicast over IPv6 is fine");
    c = text("livesync.cluster.listen [::1]\nlivesync.cluster.peer [fd00::2]").unwrap();
    assert_eq!(c.livesync.listen, Some("[::1]:9696".parse().unwrap()));
    assert_eq!(c.livesync.peers, ["[fd00::2]:9696".parse().unwrap()]);
    assert!(text("livesync.cluster.peer [10.0.0.1]").is_err());
    // v4-mapped addresses are the IPv4 addresses they map: `-i ::ffff:0.0.0.0 -s` is
    // every IPv4 address, and with peers that is refused as above.
    let mut c = run("-i ::ffff:0.0.0.0 -s 9696");
    assert_eq!(c.livesync.listen, Some("0.0.0.0:9696".parse().unwrap()));
    c.livesync.peers.push("10.0.0.2:9696".parse().unwrap());
    assert!(c
        .validate()
        .unwrap_err()
        .to_string()
        .contains("own address"));
    c = text(
        "livesync.cluster.listen [::ffff:10.0.0.1]:9696\n\
         livesync.cluster.peer [::ffff:10.0.0.2]\nlivesync.cluster.peer 10.0.0.1",
    )
    .unwrap();
    let l = &c.livesync;
    assert_eq!(l.listen, Some("10.0.0.1:9696".parse().unwrap()));
    assert_eq!(l.peers[0], "10.0.0.2:9696".parse().unwrap());
    assert_eq!(l.peers[1], l.listen.unwrap(), "this node, however written");
    c.validate().unwrap();
    c = text("livesync.cluster.listen [::ffff:10.0.0.1]:9696").unwrap();
    assert!(
        c.validate().is_ok(),
        "multicast on a v4-mapped address is IPv4"
    );
    // -A nets may sync, as in opentracker.
    assert!(run("-A 192.168.0.0/16 -s 9696")
        .livesync_nodes()
        .contains("192.168.1.1".parse().unwrap()));
}

#[test]
fn access_list_flags() {
    let list = |mode, path: &str| {
        Some(AccessFile {
            mode,
            path: PathBuf::from(path),
        })
    };
    assert_eq!(Config::default().access.list, None);
    assert_eq!(
        run("-w /etc/white").access.list,
        list(Mode::White, "/etc/white")
    );
    assert_eq!(
        run("-b black.txt").access.list,
        list(Mode::Black, "black.txt")
    );
    assert_eq!(run("-wa -w b").access.list, list(Mode::White, "b"));
    let e = run_err("-w a -b b");
    assert_eq!(e.key, "-b");
    assert_eq!(
        e.to_string(),
        "-b: a blacklist and a whitelist can't both be in force: one mode at a time, as opentracker"
    );
    assert_eq!(run_err("-b a -w b").key, "-w");
}

#[test]
fn access_list_and_client_ip_keys() {
    let cfg = text(
        "access.whitelist /etc/opentracker/whitelist.txt
",
    )
    .unwrap();
    assert_eq!(
        cfg.access.list,
        Some(AccessFile {
            mode: Mode::White,
            path: PathBuf::from("/etc/opentracker/whitelist.txt")
        })
    );
    let cfg = text(
        "access.blacklist b # no inline comments
",
    )
    .unwrap();
    assert_eq!(
        cfg.access.list.map(|a| (a.mode, a.path)),
        Some((Mode::Black, PathBuf::from("b # no inline comments")))
    );
    let e = text_err(
        "access.blacklist a
access.whitelist b
",
    );
    assert_eq!((e.line, e.key.as_str()), (2, "access.whitelist"));
    assert_eq!(
        text_err("access.whitelist").kind,
        ConfigErrorKind::MissingValue
    );
    let cfg = text(
        "access.proxy 10.0.0.0/8
access.proxy ::1
",
    )
    .unwrap();
    assert_eq!(cfg.access.proxies.0.len(), 2);
    assert!(cfg
        .client_ip()
        .proxies
        .contains("10.1.2.3".parse().unwrap()));
    assert!(!cfg
        .client_ip()
        .proxies
        .contains("127.0.0.1".parse().unwrap()));
    assert_eq!(text_err("access.proxy 10.0.0.0/33").key, "access.proxy");
    assert!(Config::default().client_ip().proxies.is_empty());
    // -A blesses with every permission, proxy included, as opentracker.
    let mut cfg = run("-A 192.168.0.0/16 -p 1");
    assert!(cfg
        .client_ip()
        .proxies
        .contains("192.168.1.1".parse().unwrap()));
    cfg.access
        .proxies
        .push(Net::parse("192.168.0.0/16").unwrap());
    assert_eq!(cfg.client_ip().proxies.0.len(), 1);
    assert!(!Config::default().access.allow_ip_param);
    assert!(
        text("tracker.allow_ip_param on")
            .unwrap()
            .access
            .allow_ip_param
    );
    assert!(
        !text("tracker.allow_ip_param off")
            .unwrap()
            .access
            .allow_ip_param
    );
    assert_eq!(
        text_err("tracker.allow_ip_param sometimes").key,
        "tracker.allow_ip_param"
    );
}

#[test]
fn non_utf8_arguments() {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        let junk = OsString::from_vec(vec![b'-', 0xff]);
        assert_eq!(
            parse_args([junk]).unwrap_err().kind,
            ConfigErrorKind::BadFlag
        );
        let junk = OsString::from_vec(vec![b'1', 0xff]);
        let e = parse_args([OsString::from("-p"), junk]).unwrap_err();
        assert_eq!(e.key, "-p");
        // A non-UTF-8 -f path is fine as a path; this one just does not exist.
        let path = OsString::from_vec(b"/nonexistent-\xff.conf".to_vec());
        let e = parse_args([OsString::from("-f"), path]).unwrap_err();
        assert!(matches!(e.kind, ConfigErrorKind::CannotRead(_)), "{e:?}");
    }
}

#[test]
fn f_reads_the_file_in_place() {
    let f = TempFile::new("listen.tcp 10.0.0.1:2\n# comment\nlisten.udp [::1]:4\n");
    let cfg = run(&format!("-i 127.0.0.1 -p 1 -f {} -p 3", f.arg()));
    assert_eq!(
        cfg.listen,
        vec![
            tcp("127.0.0.1:1"),
            tcp("10.0.0.1:2"),
            udp("[::1]:4"),
            tcp("127.0.0.1:3")
        ]
    );
    // Attached form too.
    assert_eq!(
        run(&format!("-f{}", f.arg())).listen,
        vec![tcp("10.0.0.1:2"), udp("[::1]:4")]
    );
}

#[test]
fn f_ignores_and_keeps_the_current_address() {
    // The file's bare addresses do not use -i, and -i after the file still applies.
    let f = TempFile::new("listen.tcp ::1\n");
    let cfg = run(&format!("-i 127.0.0.1 -f {} -P 7", f.arg()));
    assert_eq!(cfg.listen, vec![tcp("[::1]:6969"), udp("127.0.0.1:7")]);
    let mut cfg = Config::default();
    parse_file(&f.0, &mut cfg).unwrap();
    assert_eq!(cfg.listen, vec![tcp("[::1]:6969")]);
}

#[test]
fn f_without_listens_gets_the_default_listens() {
    let f = TempFile::new("tracker.interval 900\n");
    let cfg = run(&format!("-i 127.0.0.1 -f {}", f.arg()));
    assert_eq!(
        cfg.listen,
        vec![tcp("127.0.0.1:6969"), udp("127.0.0.1:6969")]
    );
    assert_eq!(cfg.tracker.interval, 900);
}

#[test]
fn f_errors_name_file_line_and_key() {
    let f = TempFile::new("# settings\n\ntracker.interval 60\nlisten.tcp 1.2.3.4:99999\n");
    let e = run_err(&format!("-p 1 -f {}", f.arg()));
    assert_eq!(e.file.as_deref(), Some(f.0.as_path()));
    assert_eq!(e.line, 4);
    assert_eq!(e.key, "listen.tcp");
    assert_eq!(
        e.to_string(),
        format!(
            "{}:4: listen.tcp: bad address `1.2.3.4:99999`: port out of range",
            f.arg()
        )
    );
}

#[test]
fn unreadable_file() {
    let path = std::env::temp_dir().join("ferrotracker-config-test-does-not-exist.conf");
    let e = run_err(&format!("-f {}", path.display()));
    assert_eq!(e.file.as_deref(), Some(path.as_path()));
    assert_eq!(e.line, 0);
    assert!(matches!(e.kind, ConfigErrorKind::CannotRead(_)), "{e:?}");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{}: cannot read: ", path.display())),
        "{shown}"
    );
    // A directory cannot be read as a file either.
    let dir = std::env::temp_dir();
    let e = run_err(&format!("-f {}", dir.display()));
    assert!(matches!(e.kind, ConfigErrorKind::CannotRead(_)), "{e:?}");
}

#[test]
fn numwant_default_above_max_is_checked_at_the_end() {
    // In either order within the file, and across files.
    let ok = TempFile::new("tracker.numwant 300\ntracker.numwant_max 400\n");
    assert_eq!(
        run(&format!("-f {}", ok.arg())).tracker.numwant_default,
        300
    );
    let ok = TempFile::new("tracker.numwant_max 400\ntracker.numwant 300\n");
    assert_eq!(run(&format!("-f {}", ok.arg())).tracker.numwant_max, 400);
    let bad_file = TempFile::new("tracker.numwant 300\n");
    let e = run_err(&format!("-f {}", bad_file.arg()));
    assert_eq!(e.key, "tracker.numwant");
    assert_eq!(
        e.to_string(),
        "tracker.numwant: 300 is more than tracker.numwant_max (200)"
    );
    let e = text("tracker.numwant_max 10")
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(e.key, "tracker.numwant");
    assert_eq!(
        text("tracker.numwant 0\ntracker.numwant_max 1")
            .unwrap()
            .validate(),
        Ok(())
    );
}

#[test]
fn validate_repeats_the_minimums() {
    let cfg = {
        let mut c = Config::default();
        c.tracker.interval = 0;
        c
    };
    assert_eq!(cfg.validate().unwrap_err().key, "tracker.interval");
    let cfg = {
        let mut c = Config::default();
        c.http.idle_timeout = 0;
        c
    };
    assert_eq!(cfg.validate().unwrap_err().key, "http.idle_timeout");
}
