//! Each key's values and bounds, `-h` and `--print-config`.

use super::tests::{run, run_err, tcp, text, text_err, udp};
use super::values::{bad, parse_listen_addr};
use super::*;
use std::ffi::OsString;
use std::net::SocketAddrV6;
use std::path::Path;

#[test]
fn every_key() {
    let cfg = text(
        "listen.tcp_udp 127.0.0.1:7000\n\
         listen.tcp [::1]:7001\n\
         listen.udp 0.0.0.0\n\
         listen.udp.workers 4\n\
         tracker.redirect_url https://example.org/\n\
         tracker.interval 900\n\
         tracker.peer_timeout 1200\n\
         tracker.torrent_timeout 3600\n\
         tracker.numwant 30\n\
         tracker.numwant_max 100\n\
         tracker.workers 8\n\
         http.keepalive off\n\
         http.idle_timeout 10\n",
    )
    .unwrap();
    let want = {
        let mut c = Config {
            listen: vec![
                tcp("127.0.0.1:7000"),
                udp("127.0.0.1:7000"),
                tcp("[::1]:7001"),
                udp("0.0.0.0:6969"),
            ],
            ..Config::default()
        };
        c.tracker.interval = 900;
        c.store.peer_timeout = 1200;
        c.store.torrent_timeout = 3600;
        c.tracker.numwant_default = 30;
        c.tracker.numwant_max = 100;
        c.process.workers = 8;
        c.tracker.redirect_url = Some("https://example.org/".to_string());
        c.http.keepalive = false;
        c.http.idle_timeout = 10;
        c
    };
    assert_eq!(cfg, want);
}

#[test]
fn listen_udp_workers_is_checked_and_ignored() {
    assert_eq!(text("listen.udp.workers 0").unwrap(), Config::default());
    let e = text_err("listen.udp.workers four");
    assert_eq!(e.key, "listen.udp.workers");
    assert_eq!(
        e.to_string(),
        "test.conf:1: listen.udp.workers: bad number `four`"
    );
}

#[test]
fn listen_tcp_udp_adds_both() {
    let cfg = text("listen.tcp_udp [2001:db8::1]:80").unwrap();
    assert_eq!(
        cfg.listen,
        vec![tcp("[2001:db8::1]:80"), udp("[2001:db8::1]:80")]
    );
}

#[test]
fn listen_address_forms() {
    let v6 = |ip: &str, port| SocketAddr::V6(SocketAddrV6::new(ip.parse().unwrap(), port, 0, 0));
    let v4 = |s: &str| s.parse::<SocketAddr>().unwrap();
    for (input, want) in [
        ("1.2.3.4", v4("1.2.3.4:6969")),
        ("1.2.3.4:80", v4("1.2.3.4:80")),
        ("0.0.0.0:0", v4("0.0.0.0:0")),
        ("[::1]:80", v6("::1", 80)),
        ("[::1].80", v6("::1", 80)),
        ("[::1]", v6("::1", 6969)),
        ("::1", v6("::1", 6969)),
        ("::", v6("::", 6969)),
        ("::1.80", v6("::1", 80)),
        ("2001:db8::7.443", v6("2001:db8::7", 443)),
        ("::ffff:1.2.3.4", v6("::ffff:1.2.3.4", 6969)),
        ("::ffff:1.2.3.4.80", v6("::ffff:1.2.3.4", 80)),
        // Ambiguous, read as an address as opentracker does; brackets give a port.
        ("::1:80", v6("::1:80", 6969)),
    ] {
        assert_eq!(parse_listen_addr(input), Ok(want), "{input}");
    }
}

#[test]
fn bad_listen_addresses() {
    for (input, why) in [
        ("1.2.3.4:99999", "port out of range"),
        ("1.2.3.4:", "bad port"),
        ("1.2.3.4:http", "bad port"),
        ("1.2.3.4.80", "not an IP address"),
        ("localhost:80", "not an IP address"),
        ("localhost", "not an IP address"),
        ("[::1", "missing `]`"),
        ("[::1]x80", "expected `:port` after `]`"),
        ("[1.2.3.4]:80", "brackets are for IPv6 addresses"),
        ("::1.99999", "port out of range"),
        ("1.2.3.4:80 # http", "bad port"),
    ] {
        let e = text_err(&format!("listen.tcp {input}"));
        assert_eq!(
            e.kind,
            bad(format!("bad address `{input}`: {why}")),
            "{input}"
        );
    }
}

#[test]
fn comments_blank_lines_and_whitespace() {
    let cfg = text(
        "\u{feff}# opentracker config\n\
         \n\
         \t   \n\
         \t# indented comment\n\
         #listen.tcp 1.2.3.4\n\
         \ttracker.interval \t 600  \r\n\
         tracker.numwant\t7\r\n",
    )
    .unwrap();
    assert_eq!(cfg.tracker.interval, 600);
    assert_eq!(cfg.tracker.numwant_default, 7);
    assert!(cfg.listen.is_empty());
    assert_eq!(text("").unwrap(), Config::default());
}

#[test]
fn inline_comments_are_part_of_the_value() {
    let e = text_err("tracker.interval 600\ntracker.interval 900 # 15 minutes\n");
    assert_eq!(e.line, 2);
    assert_eq!(e.key, "tracker.interval");
    assert_eq!(e.kind, bad("bad number `900 # 15 minutes`".into()));
    let e = text_err("http.keepalive on # please");
    assert_eq!(e.key, "http.keepalive");
    // URLs reject the spaces around an inline comment; a `#` alone is part of the URL.
    let e = text_err("tracker.redirect_url http://x/ # home");
    assert_eq!(e.key, "tracker.redirect_url");
    assert_eq!(
        text("tracker.redirect_url http://x/#home")
            .unwrap()
            .tracker
            .redirect_url
            .as_deref(),
        Some("http://x/#home")
    );
}

#[test]
fn stats_keys_and_blessed_nets() {
    let cfg = run("-p 1");
    assert_eq!(cfg.stats.path, "stats");
    assert!(cfg.tracker.full_scrape && !cfg.stats.open);
    assert_eq!(cfg.stats_readers().nets, Nets::loopback());
    assert!(!cfg.stats_readers().explicit);

    let cfg = run("-A 127.0.0.1 -A 10.0.0.0/8 -p 1");
    assert_eq!(cfg.access.blessed.0.len(), 2);
    let r = cfg.stats_readers().nets;
    assert!(r.contains("127.0.0.1".parse().unwrap()));
    assert!(!r.contains("127.0.0.2".parse().unwrap()));
    assert!(r.contains("10.9.9.9".parse().unwrap()));
    assert_eq!(
        run_err("-A 10.0.0.0/33").to_string(),
        "-A: bad network `10.0.0.0/33`: bad prefix length (at most /32 for IPv4, /128 for IPv6)"
    );

    let cfg = text(
        "access.stats 192.168.0.0/16\naccess.stats ::1\naccess.stats_path /my_stats\ntracker.full_scrape off\n",
    )
    .unwrap();
    assert_eq!(cfg.stats.path, "my_stats");
    assert!(!cfg.tracker.full_scrape);
    let r = cfg.stats_readers().nets;
    assert!(r.contains("192.168.4.4".parse().unwrap()) && r.contains("::1".parse().unwrap()));
    assert!(!r.contains("127.0.0.1".parse().unwrap()));

    let cfg = text("access.stats 10.0.0.1\naccess.stats_open on\n").unwrap();
    assert!(cfg.stats_readers().nets.is_empty(), "open: everyone");

    assert_eq!(text_err("access.stats nope").key, "access.stats");
    for bad in ["/", "announce", "scrape_stats", "a b"] {
        let e = text_err(&format!("access.stats_path {bad}"));
        assert_eq!(e.key, "access.stats_path", "{bad}");
    }
    assert_eq!(
        text_err("tracker.full_scrape maybe").key,
        "tracker.full_scrape"
    );
}

#[test]
fn dynamic_access_list_keys() {
    let cfg =
        text("access.fifo_add /run/ot/add\naccess.whitelist /etc/ot/wl\naccess.fifo_delete del\n")
            .unwrap();
    assert_eq!(
        cfg.access.fifo_add.as_deref(),
        Some(Path::new("/run/ot/add"))
    );
    assert_eq!(cfg.access.fifo_delete.as_deref(), Some(Path::new("del")));
    cfg.validate().unwrap();
    // Either FIFO alone is fine too, with either mode.
    let one = text("access.blacklist b\naccess.fifo_delete d").unwrap();
    one.validate().unwrap();
    assert!(one.access.fifo_add.is_none());

    for key in ["access.fifo_add", "access.fifo_delete"] {
        let e = text_err(key);
        assert_eq!(
            (e.kind, e.line, e.key.as_str()),
            (ConfigErrorKind::MissingValue, 1, key)
        );
        // Without a list there is nothing to edit: refused when the whole config is checked.
        let e = text(&format!("{key} /run/f"))
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.key, key);
        assert!(
            e.to_string()
                .contains("access.whitelist or access.blacklist"),
            "{e}"
        );
    }
    let e = text("access.whitelist w\naccess.fifo_add f\naccess.fifo_delete f")
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "access.fifo_delete: f is access.fifo_add's FIFO too: each needs its own"
    );
}

#[test]
fn connection_and_rate_limit_keys() {
    let d = Config::default();
    assert_eq!(
        (
            d.http.request_timeout,
            d.http.max_connections,
            d.http.max_connections_per_ip
        ),
        (10, 100_000, 128)
    );
    assert_eq!(
        (d.http.max_streams, d.tracker.full_scrape_interval),
        (64, 10)
    );
    assert_eq!(d.ratelimit.per_second, 0, "rate limiting is off by default");
    assert!(d.ratelimit.udp && d.ratelimit.http);
    let cfg = text(
        "http.request_timeout 3\nhttp.max_connections 500\nhttp.max_connections_per_ip 0\n\
         ratelimit.requests_per_second 20\nratelimit.burst 50\nratelimit.max_addresses 9\n\
         ratelimit.udp off\nratelimit.http on\nhttp.max_streams 3\ntracker.full_scrape_interval 0\n",
    )
    .unwrap();
    assert_eq!(
        (cfg.http.max_streams, cfg.tracker.full_scrape_interval),
        (3, 0)
    );
    assert_eq!(
        (
            cfg.http.request_timeout,
            cfg.http.max_connections,
            cfg.http.max_connections_per_ip
        ),
        (3, 500, 0)
    );
    assert_eq!(
        (
            cfg.ratelimit.per_second,
            cfg.ratelimit.burst,
            cfg.ratelimit.max_addresses
        ),
        (20, 50, 9)
    );
    assert!(!cfg.ratelimit.udp && cfg.ratelimit.http);
    for bad in [
        "http.request_timeout 0",
        "http.max_connections 0",
        "http.max_streams 0",
        "http.max_streams 99999999999",
        "tracker.full_scrape_interval -1",
        "tracker.full_scrape_interval 1e3",
        "ratelimit.max_addresses 0",
        "ratelimit.burst -1",
        "ratelimit.udp sometimes",
    ] {
        let key = bad.split(' ').next().unwrap();
        assert_eq!(text_err(bad).key, key, "{bad}");
    }
    let u = usage();
    for key in [
        "http.request_timeout",
        "http.max_connections",
        "http.max_connections_per_ip",
        "http.max_streams",
        "tracker.full_scrape_interval",
        "ratelimit.requests_per_second",
        "ratelimit.burst",
        "ratelimit.max_addresses",
        "ratelimit.udp",
        "ratelimit.http",
    ] {
        assert!(u.contains(key), "{key}");
    }
}

#[test]
fn statedump_and_privilege_keys() {
    let cfg = text("tracker.statedump /var/lib/ft/state\ntracker.statedump_interval 0\ntracker.statedump_peers on\ntracker.rootdir /srv/ft\ntracker.user _ft\n").unwrap();
    assert_eq!(cfg.statedump.file, Some(PathBuf::from("/var/lib/ft/state")));
    assert_eq!((cfg.statedump.interval, cfg.statedump.peers), (0, true));
    assert_eq!(cfg.process.rootdir, Some(PathBuf::from("/srv/ft")));
    assert_eq!(cfg.process.user.as_deref(), Some("_ft"));
    let cfg = text(
        "tracker.max_torrents 5\ntracker.max_peers_per_torrent 7\ntracker.max_memory_mb 64\ntracker.max_peers_per_ip 9\n",
    )
    .unwrap();
    assert_eq!(
        (
            cfg.store.max_torrents,
            cfg.store.max_peers_per_torrent,
            cfg.store.max_memory,
            cfg.store.max_peers_per_address
        ),
        (5, 7, MemoryLimit::Bytes((64) << 20), 9)
    );
    let d = Config::default();
    assert_eq!(
        (d.store.max_memory, d.store.max_peers_per_address),
        (MemoryLimit::Auto, 256)
    );
    for (line, want) in [
        ("tracker.max_memory_mb 0", MemoryLimit::Unlimited),
        ("tracker.max_memory_mb auto", MemoryLimit::Auto),
        (
            "tracker.max_memory_mb 16777216",
            MemoryLimit::Bytes((1 << 24) << 20),
        ),
    ] {
        assert_eq!(text(line).unwrap().store.max_memory, want, "{line}");
    }
    assert_eq!(
        text("tracker.max_peers_per_ip 0")
            .unwrap()
            .store
            .max_peers_per_address,
        0
    );
    for bad in [
        "tracker.max_memory_mb 16777217",
        "tracker.max_memory_mb -1",
        "tracker.max_memory_mb lots",
        "tracker.max_peers_per_ip 65536",
        "tracker.max_peers_per_ip -1",
    ] {
        let key = bad.split(' ').next().unwrap();
        assert_eq!(text_err(bad).key, key, "{bad}");
    }
    assert_eq!(
        text_err("tracker.max_torrents 0").key,
        "tracker.max_torrents"
    );
    assert_eq!(text_err("tracker.user bad:name").key, "tracker.user");
    assert_eq!(
        text_err("tracker.statedump_interval -1").key,
        "tracker.statedump_interval"
    );
    let Command::Run(cfg) =
        parse_args(["-l", "dump.txt", "-d", "/tmp", "-u", "nobody"].map(OsString::from)).unwrap()
    else {
        panic!("not a run command")
    };
    assert_eq!(cfg.statedump.load, Some(PathBuf::from("dump.txt")));
    assert_eq!(cfg.process.rootdir, Some(PathBuf::from("/tmp")));
    assert_eq!(cfg.process.user.as_deref(), Some("nobody"));
}

#[test]
fn batchsync_was_never_implemented() {
    let e = text_err("batchsync.cluster.admin_ip 10.1.1.1");
    assert_eq!(e.kind, ConfigErrorKind::NeverImplemented);
    assert!(e.to_string().contains("never implemented"), "{e}");
}

#[test]
fn unknown_keys() {
    for line in [
        "tracker.intervall 5",
        "listen.tcp_udpx 1.2.3.4",
        "listen 1.2.3.4",
        "Tracker.interval 5",
        "foo",
    ] {
        let e = text_err(line);
        assert_eq!(e.kind, ConfigErrorKind::UnknownKey, "{line}");
        assert_eq!(e.key, line.split_whitespace().next().unwrap());
    }
    assert_eq!(
        text_err("\n\nfoo bar").to_string(),
        "test.conf:3: foo: unknown key"
    );
}

#[test]
fn missing_values() {
    for key in [
        "listen.tcp_udp",
        "listen.tcp",
        "listen.udp",
        "listen.udp.workers",
        "tracker.redirect_url",
        "tracker.interval",
        "tracker.peer_timeout",
        "tracker.torrent_timeout",
        "tracker.numwant",
        "tracker.numwant_max",
        "tracker.workers",
        "http.keepalive",
        "http.idle_timeout",
    ] {
        let e = text_err(&format!("{key}   \t"));
        assert_eq!(e.kind, ConfigErrorKind::MissingValue, "{key}");
        assert_eq!(e.to_string(), format!("test.conf:1: {key}: missing value"));
    }
}

#[test]
fn numbers_and_minimums() {
    for (line, why) in [
        ("tracker.interval 0", "must be at least 1, not 0"),
        ("tracker.peer_timeout 0", "must be at least 1, not 0"),
        ("tracker.torrent_timeout 0", "must be at least 1, not 0"),
        ("tracker.numwant_max 0", "must be at least 1, not 0"),
        ("http.idle_timeout 0", "must be at least 1, not 0"),
        ("tracker.interval -5", "bad number `-5`"),
        ("tracker.interval +5", "bad number `+5`"),
        ("tracker.interval 1.5", "bad number `1.5`"),
        ("tracker.interval 30m", "bad number `30m`"),
        (
            "tracker.interval 4294967296",
            "must be at most 604800, not 4294967296",
        ),
        (
            "http.idle_timeout 4294967295",
            "must be at most 86400, not 4294967295",
        ),
        (
            "tracker.workers 99999999999999999999999",
            "must be at most 1024, not 99999999999999999999999",
        ),
    ] {
        assert_eq!(text_err(line).kind, bad(why.into()), "{line}");
    }
    let cfg = text("tracker.numwant 0\ntracker.workers 0\ntracker.interval 604800").unwrap();
    assert_eq!(
        (
            cfg.tracker.numwant_default,
            cfg.process.workers,
            cfg.tracker.interval
        ),
        (0, 0, 604800)
    );
}

#[test]
fn every_numeric_key_is_bounded_at_parse_and_validate() {
    for b in numbers() {
        // The ends are accepted, and fit the field (numwant and numwant_max are also
        // checked against each other: start from the widest pair).
        for n in [b.min, b.max] {
            let line = format!(
                "tracker.numwant 0\ntracker.numwant_max 10000\nwebtorrent.interval 1\n\
                 webtorrent.idle_timeout 86400\n{} {n}",
                b.key
            );
            let cfg = text(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(cfg.validate(), Ok(()), "{line}");
            // validate() checks the field this key set, under this key's name.
            match keys::KEYS
                .iter()
                .find(|k| k.name == b.key)
                .and_then(|k| k.number)
            {
                Some((kept, value)) => assert_eq!((kept, value(&cfg)), (b, n), "{}", b.key),
                None => assert_eq!(b.key, "listen.udp.workers", "only this one is not kept"),
            }
        }
        // Beyond them: an error naming the file, the line and the key.
        let beyond = [b.min.checked_sub(1), b.max.checked_add(1)];
        for n in beyond.into_iter().flatten() {
            let e = text_err(&format!("# bounds\n{} {n}", b.key));
            assert_eq!((e.line, e.key.as_str()), (2, b.key));
            let shown = e.to_string();
            assert!(shown.starts_with(&format!("test.conf:2: {}: must be at ", b.key)));
            assert!(shown.ends_with(&format!(", not {n}")), "{shown}");
        }
    }
    assert_eq!(numbers().count(), 32);
}

#[test]
fn validate_repeats_the_maximums() {
    let cfg = {
        let mut c = Config::default();
        c.http.idle_timeout = u32::MAX;
        c
    };
    let e = cfg.validate().unwrap_err();
    assert_eq!(e.key, "http.idle_timeout");
    assert_eq!(
        e.to_string(),
        "http.idle_timeout: must be at most 86400, not 4294967295"
    );
    let cfg = {
        let mut c = Config::default();
        c.store.max_memory = MemoryLimit::Bytes(u64::MAX);
        c
    };
    assert_eq!(cfg.validate().unwrap_err().key, "tracker.max_memory_mb");
}

#[test]
fn webtorrent_keys() {
    let d = Config::default().webtorrent;
    assert!(d.enabled);
    assert_eq!(
        (d.interval, d.idle_timeout, d.max_offers, d.max_message),
        (120, 300, 10, 65536)
    );
    assert_eq!(d.max_peers_per_connection, 64);
    let cfg = text("webtorrent no\nwebtorrent.max_offers 0\nwebtorrent.max_peers_per_connection 1")
        .unwrap();
    assert!(!cfg.webtorrent.enabled);
    assert_eq!(cfg.webtorrent.max_offers, 0);
    assert_eq!(cfg.webtorrent.max_peers_per_connection, 1);
    assert_eq!(
        text_err("webtorrent.max_offers 51").key,
        "webtorrent.max_offers"
    );
    // The idle timeout must outlast the longest jittered interval (132 s for 120).
    let e = text("webtorrent.idle_timeout 132")
        .unwrap()
        .validate()
        .unwrap_err();
    assert_eq!(e.key, "webtorrent.idle_timeout");
    assert!(e.to_string().contains("132 s"), "{e}");
    let cfg = text("webtorrent.idle_timeout 133").unwrap();
    assert_eq!(cfg.validate(), Ok(()));
    let cfg = text("webtorrent.interval 600").unwrap();
    assert_eq!(
        cfg.validate().unwrap_err().key,
        "webtorrent.idle_timeout",
        "a longer interval needs a longer idle timeout"
    );
}

#[test]
fn switches() {
    for (value, want) in [
        ("on", true),
        ("yes", true),
        ("true", true),
        ("1", true),
        ("ON", true),
        ("off", false),
        ("no", false),
        ("false", false),
        ("0", false),
        ("False", false),
    ] {
        assert_eq!(
            text(&format!("http.keepalive {value}"))
                .unwrap()
                .http
                .keepalive,
            want,
            "{value}"
        );
    }
    let e = text_err("http.keepalive maybe");
    assert_eq!(
        e.kind,
        bad("bad switch `maybe`: use on/off, yes/no, true/false or 1/0".into())
    );
}

#[test]
fn later_lines_override_earlier_ones() {
    let cfg = text("tracker.interval 10\ntracker.interval 20").unwrap();
    assert_eq!(cfg.tracker.interval, 20);
}

#[test]
fn error_stops_at_the_first_bad_line() {
    let mut cfg = Config::default();
    let r = parse_str(
        Path::new("x"),
        "tracker.interval 10\nbogus 1\ntracker.interval 20",
        &mut cfg,
    );
    assert_eq!(r.unwrap_err().line, 2);
    assert_eq!(cfg.tracker.interval, 10);
}

#[test]
fn usage_mentions_every_flag_and_key() {
    let u = usage();
    for flag in [
        "-i",
        "-p",
        "-P",
        "-r",
        "-f",
        "-v",
        "-h",
        "-d",
        "-u",
        "-l",
        "-A",
        "-w",
        "-b",
        "-s",
        "--print-config",
        "--check-config",
    ] {
        assert!(u.contains(flag), "{flag}");
    }
    for k in keys::KEYS {
        assert!(
            u.contains(&format!("\t{} {}: ", k.name, k.form)),
            "{}",
            k.name
        );
    }
    // Defaults come from Config::default(), not from text written beside them.
    assert!(
        u.contains("tracker.interval SECS: announce interval (default 1800)"),
        "{u}"
    );
    assert!(u.starts_with("Usage: "));
}

#[test]
fn error_is_a_std_error() {
    fn takes(_: &dyn std::error::Error) {}
    takes(&run_err("-x"));
}

/// `--print-config`'s output is a config file that gives the same configuration back.
#[test]
fn print_config_reads_back_as_the_same_config() {
    let file = "listen.tcp 127.0.0.1:7000\nlisten.udp [::1]:7001\nlisten.tcp 10.0.0.1\n\
        tracker.workers 3\ntracker.rootdir /srv/tracker\ntracker.user tracker\n\
        tracker.redirect_url https://example.org/\ntracker.interval 900\ntracker.numwant 20\n\
        tracker.numwant_max 80\ntracker.full_scrape off\ntracker.full_scrape_interval 0\n\
        tracker.peer_timeout 600\ntracker.torrent_timeout 7200\ntracker.max_torrents 5\n\
        tracker.max_peers_per_torrent 6\ntracker.max_peers_per_ip 0\ntracker.max_memory_mb 64\n\
        http.keepalive off\nhttp.idle_timeout 5\nhttp.request_timeout 4\nhttp.max_connections 9\n\
        http.max_connections_per_ip 0\nhttp.max_streams 2\nhttp.proxy_protocol on\nratelimit.requests_per_second 7\n\
        ratelimit.burst 8\nratelimit.max_addresses 99\nratelimit.udp off\nratelimit.http off\n\
        access.blacklist black.txt\naccess.fifo_add add.fifo\naccess.fifo_delete del.fifo\n\
        access.proxy 10.0.0.0/8\naccess.proxy ::1\naccess.proxy_header Forwarded\n\
        tracker.allow_ip_param on\n\
        access.bless 192.168.0.0/16\naccess.stats 172.16.0.0/12\naccess.stats_open on\n\
        access.stats_path my_stats\ndashboard off\ndashboard.interval 1\ndashboard.samples 60\n\
        tracker.statedump_load in.dump\ntracker.statedump out.dump\n\
        tracker.statedump_interval 0\ntracker.statedump_peers on\n\
        livesync.cluster.listen 10.0.0.1:9000\nlivesync.cluster.node_ip 10.0.0.0/24\n\
        livesync.cluster.send_port 9001\nlivesync.cluster.peer 10.0.0.2\n\
        livesync.cluster.key 00112233445566778899aabbccddeeff\nlivesync.flush_delay 3\n\
        listen.tls [::1]:8443\nlisten.tls 127.0.0.1\ntls.certificate /etc/tracker/cert.pem\n\
        tls.private_key /etc/tracker/key.pem\n\
        webtorrent off\nwebtorrent.interval 60\nwebtorrent.idle_timeout 90\n\
        webtorrent.max_offers 4\nwebtorrent.max_message 2048\n\
        webtorrent.max_peers_per_connection 3\nwebtorrent.max_backlog 8192\n\
        webtorrent.ping_after 20\nwebtorrent.offers_remembered 100\nlog.format json\nlog.level debug\n";
    let cfg = text(file).unwrap();
    // Every key was set away from its default, so a key the printer forgot would show.
    let printed = print(&cfg);
    let mut back = text(&printed).unwrap_or_else(|e| panic!("{e}\n{printed}"));
    back.livesync.key_file = cfg.livesync.key_file.clone();
    assert_eq!(back, cfg, "{printed}");
    assert_eq!(back.validate(), Ok(()));
    // The defaults too: every key shown, unset ones commented out.
    let defaults = print(&Config::default());
    assert_eq!(text(&defaults).unwrap(), Config::default(), "{defaults}");
    for k in keys::KEYS {
        assert!(
            defaults.contains(&format!("\n{} ", k.name))
                || defaults.contains(&format!("\n#{} ", k.name)),
            "{}",
            k.name
        );
    }
    assert!(defaults.contains("\ntracker.interval 1800\n"), "{defaults}");
    assert!(
        defaults.contains("\n#access.whitelist FILE\n"),
        "{defaults}"
    );
}

#[test]
fn print_and_check_config_flags() {
    let cfg = run("-p 7000");
    let a = |line: &str| parse_args(args_of(line)).unwrap();
    assert_eq!(
        a("--print-config -p 7000"),
        Command::PrintConfig(cfg.clone())
    );
    assert_eq!(a("-p 7000 --check-config"), Command::CheckConfig(cfg));
    // A bad configuration is an error whichever mode was asked for.
    assert!(parse_args(args_of("--check-config -p x")).is_err());
}

fn args_of(line: &str) -> Vec<OsString> {
    line.split_whitespace().map(OsString::from).collect()
}

#[test]
fn tls_listens_default_to_port_443_and_need_both_files() {
    let pair = "tls.certificate c.pem\ntls.private_key k.pem\n";
    let cfg = text(&format!(
        "listen.tls 127.0.0.1\nlisten.tls [::1]:8443\n{pair}"
    ))
    .unwrap();
    assert_eq!(
        cfg.listen,
        vec![
            Listen {
                proto: Proto::Tls,
                addr: "127.0.0.1:443".parse().unwrap()
            },
            Listen {
                proto: Proto::Tls,
                addr: "[::1]:8443".parse().unwrap()
            },
        ]
    );
    assert_eq!(cfg.validate(), Ok(()));
    assert_eq!(cfg.tls.certificate.as_deref(), Some(Path::new("c.pem")));
    assert_eq!(cfg.tls.private_key.as_deref(), Some(Path::new("k.pem")));
    for (conf, key) in [
        ("listen.tls ::1\ntls.certificate c.pem\n", "tls.private_key"),
        ("listen.tls ::1\ntls.private_key k.pem\n", "tls.certificate"),
        ("listen.tls ::1\n", "tls.certificate"),
        (pair, "tls.certificate"),
        ("listen.tcp ::1\ntls.private_key k.pem\n", "tls.private_key"),
    ] {
        let e = text(conf).unwrap().validate().unwrap_err();
        assert_eq!(e.key, key, "{conf}");
    }
    assert!(text("listen.tls 127.0.0.1:70000").is_err());
}

#[test]
fn log_keys() {
    let d = text("").unwrap().log;
    assert_eq!((d.format, d.level), (LogFormat::Text, LogLevel::Info));
    let c = text("log.format json\nlog.level warn\n").unwrap().log;
    assert_eq!((c.format, c.level), (LogFormat::Json, LogLevel::Warn));
    for (level, want) in [
        ("error", LogLevel::Error),
        ("warn", LogLevel::Warn),
        ("info", LogLevel::Info),
        ("debug", LogLevel::Debug),
        ("trace", LogLevel::Trace),
    ] {
        let line = format!("log.level {level}");
        assert_eq!(text(&line).unwrap().log.level, want);
        assert_eq!(want.name(), level);
    }
    let e = text_err("log.format syslog");
    assert_eq!(
        (e.key.as_str(), e.kind),
        (
            "log.format",
            bad("unknown log format `syslog`: text or json".into())
        )
    );
    let e = text_err("log.level INFO");
    assert_eq!(e.key, "log.level");
    assert!(
        e.to_string().contains("error, warn, info, debug or trace"),
        "{e}"
    );
}
