//! The config-file keys: one table holding, for each key, how it sets its section field, how
//! the value in force is written back (for `--print-config`), its bounds if it is a number,
//! and its help text (for `-h`). Adding a key is adding a row here.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use super::values::{
    bad, canonical, parse_addr_with_port, parse_bool, parse_key, parse_listen_addr,
    parse_livesync_addr, parse_memory_limit, parse_net, parse_number, parse_path, parse_port,
    parse_stats_path, parse_url, parse_user, Bounds, PortError,
};
use super::{
    AccessFile, Config, ConfigError, ConfigErrorKind, Listen, LogFormat, LogLevel, MemoryLimit,
    Proto, ProxyHeader,
};
use crate::access::Mode;
use crate::nets::Nets;

/// One config-file key.
pub(super) struct Key {
    pub name: &'static str,
    /// The value's form in help text (`SECS`, `on|off`, `FILE`).
    pub form: &'static str,
    /// What it does, for `-h` and `--print-config`; the default is added from [`Config::default`].
    pub help: &'static str,
    /// Applies one line's value.
    pub set: fn(&mut Config, &str) -> Result<(), ConfigErrorKind>,
    /// The config lines that give the value in force: one per entry of a list, none when unset.
    pub show: fn(&Config, &mut Vec<String>),
    /// A numeric key's bounds and its value in force, which [`Config::validate`] checks again.
    pub number: Option<(Bounds, Reads)>,
}

/// Reads a numeric key's value in force, widened to `u64`.
pub(super) type Reads = fn(&Config) -> u64;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// Any unsigned field as the `u64` that bounds are written in.
fn wide<T: TryInto<u64>>(n: T) -> u64 {
    n.try_into().unwrap_or(u64::MAX)
}

macro_rules! number {
    ($name:literal $form:literal [$min:expr, $max:expr] $($field:ident).+, $help:literal) => {
        Key {
            name: $name,
            form: $form,
            help: $help,
            set: |c, v| {
                c.$($field).+ = parse_number(v, Bounds::new($name, $min, $max))?;
                Ok(())
            },
            show: |c, out| out.push(format!("{} {}", $name, c.$($field).+)),
            number: Some((Bounds::new($name, $min, $max), |c| wide(c.$($field).+))),
        }
    };
}

macro_rules! switch {
    ($name:literal $($field:ident).+, $help:literal) => {
        Key {
            name: $name,
            form: "on|off",
            help: $help,
            set: |c, v| {
                c.$($field).+ = parse_bool(v)?;
                Ok(())
            },
            show: |c, out| out.push(format!("{} {}", $name, if c.$($field).+ { "on" } else { "off" })),
            number: None,
        }
    };
}

macro_rules! file {
    ($name:literal $form:literal $($field:ident).+, $help:literal) => {
        Key {
            name: $name,
            form: $form,
            help: $help,
            set: |c, v| {
                c.$($field).+ = Some(parse_path(v)?);
                Ok(())
            },
            show: |c, out| {
                if let Some(p) = &c.$($field).+ {
                    out.push(format!("{} {}", $name, p.display()));
                }
            },
            number: None,
        }
    };
}

macro_rules! nets {
    ($name:literal $($field:ident).+, $help:literal) => {
        Key {
            name: $name,
            form: "ip[/bits]",
            help: $help,
            set: |c, v| {
                c.$($field).+.push(parse_net(v)?);
                Ok(())
            },
            show: |c, out| show_nets($name, &c.$($field).+, out),
            number: None,
        }
    };
}

fn show_nets(name: &str, nets: &Nets, out: &mut Vec<String>) {
    out.extend(nets.0.iter().map(|n| format!("{name} {n}")));
}

fn add_listen(c: &mut Config, v: &str, tcp: bool, udp: bool) -> Result<(), ConfigErrorKind> {
    let addr = parse_listen_addr(v)?;
    for (on, proto) in [(tcp, Proto::Tcp), (udp, Proto::Udp)] {
        if on {
            c.listen.push(Listen { proto, addr });
        }
    }
    Ok(())
}

fn add_tls_listen(c: &mut Config, v: &str) -> Result<(), ConfigErrorKind> {
    let addr = parse_addr_with_port(v, super::DEFAULT_TLS_PORT)?;
    c.listen.push(Listen {
        proto: Proto::Tls,
        addr,
    });
    Ok(())
}

/// `-w`/`-b`/`access.whitelist`/`access.blacklist`. A later one of the same mode replaces the
/// path (as opentracker); the other mode is an error, since opentracker is compiled with one or
/// the other and a config naming both was never honoured as written.
pub(super) fn set_access_list(
    cfg: &mut Config,
    mode: Mode,
    path: &str,
) -> Result<(), ConfigErrorKind> {
    if let Some(old) = &cfg.access.list {
        if old.mode != mode {
            return Err(bad(format!(
                "a {mode} and a {} can't both be in force: one mode at a time, as opentracker",
                old.mode
            )));
        }
    }
    cfg.access.list = Some(AccessFile {
        mode,
        path: parse_path(path)?,
    });
    Ok(())
}

fn show_list(c: &Config, mode: Mode, name: &str, out: &mut Vec<String>) {
    if let Some(f) = c.access.list.as_ref().filter(|f| f.mode == mode) {
        out.push(format!("{name} {}", f.path.display()));
    }
}

/// Every key, in the order `-h` and `--print-config` list them.
pub(super) static KEYS: &[Key] = &[
    Key {
        name: "listen.tcp_udp",
        form: "ADDR",
        help: "listen on TCP and UDP (ADDR: ip, ip:port, [v6]:port; port 6969; repeatable). \
               Without any listen, TCP and UDP [::]:6969",
        set: |c, v| add_listen(c, v, true, true),
        // The sockets in their order, each as listen.tcp or listen.udp.
        show: |c, out| {
            for l in &c.listen {
                let key = match l.proto {
                    Proto::Tcp => "listen.tcp",
                    Proto::Udp => "listen.udp",
                    Proto::Tls => "listen.tls",
                };
                out.push(format!("{key} {}", l.addr));
            }
        },
        number: None,
    },
    Key {
        name: "listen.tcp",
        form: "ADDR",
        help: "listen for HTTP (repeatable)",
        set: |c, v| add_listen(c, v, true, false),
        show: |_, _| {},
        number: None,
    },
    Key {
        name: "listen.udp",
        form: "ADDR",
        help: "listen for UDP, BEP 15 (repeatable)",
        set: |c, v| add_listen(c, v, false, true),
        show: |_, _| {},
        number: None,
    },
    Key {
        name: "listen.tls",
        form: "ADDR",
        help: "listen for HTTPS: HTTP over TLS with tls.certificate and tls.private_key \
               (port 443 when ADDR has none; repeatable; not in opentracker)",
        set: add_tls_listen,
        show: |_, _| {},
        number: None,
    },
    // opentracker's per-socket blocking UDP threads. Every ferrotracker event loop
    // (`tracker.workers`) serves every socket, so the count is checked and then ignored.
    Key {
        name: "listen.udp.workers",
        form: "N",
        help: "accepted and ignored (every worker serves every socket)",
        set: |_, v| parse_number::<usize>(v, UDP_WORKERS).map(drop),
        show: |_, _| {},
        number: None,
    },
    number!("tracker.workers" "N" [0, 1024] process.workers,
        "event loops; 0 = one per CPU core"),
    file!("tracker.rootdir" "DIR" process.rootdir,
        "as -d: chroot here when started as root (else change directory); files named in the \
         config are opened inside it"),
    Key {
        name: "tracker.user",
        form: "NAME",
        help: "as -u: user to become when started as root (unset: nobody)",
        set: |c, v| {
            c.process.user = Some(parse_user(v)?);
            Ok(())
        },
        show: |c, out| out.extend(c.process.user.iter().map(|u| format!("tracker.user {u}"))),
        number: None,
    },
    Key {
        name: "tracker.redirect_url",
        form: "URL",
        help: "as -r: where GET / redirects to",
        set: |c, v| {
            c.tracker.redirect_url = Some(parse_url(v)?);
            Ok(())
        },
        show: |c, out| {
            let url = c.tracker.redirect_url.iter();
            out.extend(url.map(|u| format!("tracker.redirect_url {u}")));
        },
        number: None,
    },
    number!("tracker.interval" "SECS" [1, 7 * DAY] tracker.interval,
        "announce interval"),
    number!("tracker.numwant" "N" [0, 10_000] tracker.numwant_default,
        "peers returned when the client asks for no number"),
    number!("tracker.numwant_max" "N" [1, 10_000] tracker.numwant_max,
        "most peers returned"),
    switch!("tracker.full_scrape" tracker.full_scrape,
        "answer GET /scrape without info_hash with every torrent"),
    number!("tracker.full_scrape_interval" "SECS" [0, DAY] tracker.full_scrape_interval,
        "one full scrape per address (IPv6: per /64) per SECS; sooner, a 429; 0 = no limit"),
    number!("tracker.peer_timeout" "SECS" [1, 7 * DAY] store.peer_timeout,
        "drop peers silent this long"),
    number!("tracker.torrent_timeout" "SECS" [1, 30 * DAY] store.torrent_timeout,
        "drop idle torrents after this long"),
    number!("tracker.max_torrents" "N" [1, 1_000_000_000] store.max_torrents,
        "refuse new torrents beyond N"),
    number!("tracker.max_peers_per_torrent" "N" [1, 100_000_000] store.max_peers_per_torrent,
        "answer but don't store new peers beyond N"),
    number!("tracker.max_peers_per_ip" "N" [0, 65535] store.max_peers_per_address,
        "refuse an announce that would give one address (IPv6: /64) more than N peers in a \
         torrent; 0 = no limit"),
    Key {
        name: "tracker.max_memory_mb",
        form: "N|auto",
        help: "estimated swarm memory limit in MiB, 0 = none; auto: half of physical memory \
               or of the cgroup limit, whichever is smaller",
        set: |c, v| {
            c.store.max_memory = parse_memory_limit(v, MAX_MEMORY_MB)?;
            Ok(())
        },
        show: |c, out| {
            out.push(match c.store.max_memory {
                MemoryLimit::Auto => "tracker.max_memory_mb auto".to_string(),
                MemoryLimit::Unlimited => "tracker.max_memory_mb 0".to_string(),
                MemoryLimit::Bytes(b) => format!("tracker.max_memory_mb {}", b >> 20),
            })
        },
        number: Some((MAX_MEMORY_MB, |c| match c.store.max_memory {
            MemoryLimit::Bytes(b) => b >> 20,
            MemoryLimit::Auto | MemoryLimit::Unlimited => 0,
        })),
    },
    switch!("http.keepalive" http.keepalive,
        "keep HTTP connections open between requests"),
    number!("http.idle_timeout" "SECS" [1, DAY] http.idle_timeout,
        "close idle HTTP connections after this long"),
    number!("http.request_timeout" "SECS" [1, HOUR] http.request_timeout,
        "a request head must arrive within this long of its first byte (and of the \
         connection), else the connection is closed"),
    number!("http.max_connections" "N" [1, 1 << 24] http.max_connections,
        "open HTTP connections in all; beyond, new ones get a 503"),
    number!("http.max_connections_per_ip" "N" [0, 1 << 24] http.max_connections_per_ip,
        "open HTTP connections per client address (IPv6: per /64); beyond, a 503; 0 = no limit"),
    number!("http.max_streams" "N" [1, 1 << 20] http.max_streams,
        "full scrapes, tpbs and statedumps in progress at once; beyond, a 503"),
    switch!("http.proxy_protocol" http.proxy_protocol,
        "connections from access.proxy and -A networks must begin with a PROXY protocol \
         header (v1 or v2), whose source is then the client; a header from anyone else closes \
         the connection"),
    number!("ratelimit.requests_per_second" "N" [0, 1_000_000] ratelimit.per_second,
        "per client address (IPv6: per /64), token bucket; UDP beyond it is dropped \
         unanswered, HTTP gets a 429; 0 = off"),
    number!("ratelimit.burst" "N" [0, 10_000_000] ratelimit.burst,
        "requests an idle address may send at once; 0 = twice the rate"),
    number!("ratelimit.max_addresses" "N" [1, 100_000_000] ratelimit.max_addresses,
        "addresses tracked at once, least recently used evicted; also bounds the addresses \
         tracker.full_scrape_interval remembers"),
    switch!("ratelimit.udp" ratelimit.udp, "rate-limit UDP"),
    switch!("ratelimit.http" ratelimit.http, "rate-limit HTTP"),
    Key {
        name: "access.whitelist",
        form: "FILE",
        help: "as -w: track only the info_hashes listed in this file (reloaded on SIGHUP and \
               when it changes)",
        set: |c, v| set_access_list(c, Mode::White, v),
        show: |c, out| show_list(c, Mode::White, "access.whitelist", out),
        number: None,
    },
    Key {
        name: "access.blacklist",
        form: "FILE",
        help: "as -b: refuse the info_hashes listed in this file (one list mode at a time)",
        set: |c, v| set_access_list(c, Mode::Black, v),
        show: |c, out| show_list(c, Mode::Black, "access.blacklist", out),
        number: None,
    },
    file!("access.fifo_add" "FIFO" access.fifo_add,
        "hashes written to this FIFO, one per line, are added to the list in force (created \
         if missing; a reload of the list forgets them)"),
    file!("access.fifo_delete" "FIFO" access.fifo_delete,
        "hashes written here are taken off it (even if the file lists them)"),
    nets!("access.proxy" access.proxies,
        "believe the client-address header (access.proxy_header) from these proxies \
         (repeatable)"),
    Key {
        name: "access.proxy_header",
        form: "NAME",
        help: "the header that names the client in requests from access.proxy and -A nets: \
               X-Forwarded-For (rightmost address not a trusted proxy), X-Real-IP, \
               CF-Connecting-IP, True-Client-IP or Forwarded (RFC 7239: its rightmost for= \
               not a trusted proxy)",
        set: |c, v| {
            c.access.proxy_header = ProxyHeader::from_name(v).ok_or_else(|| {
                bad(format!(
                    "unknown header `{v}`: X-Forwarded-For, X-Real-IP, CF-Connecting-IP, \
                     True-Client-IP or Forwarded"
                ))
            })?;
            Ok(())
        },
        show: |c, out| {
            out.push(format!(
                "access.proxy_header {}",
                c.access.proxy_header.name()
            ))
        },
        number: None,
    },
    switch!("tracker.allow_ip_param" access.allow_ip_param,
        "record announces under their ip= parameter"),
    nets!("access.bless" access.blessed,
        "as -A: may read /stats and /metrics, is a trusted proxy and a live-sync node \
         (repeatable)"),
    nets!("access.stats" stats.readers,
        "may read /stats and /metrics (repeatable; none: loopback only)"),
    switch!("access.stats_open" stats.open, "everyone may read /stats and /metrics"),
    Key {
        name: "access.stats_path",
        form: "PATH",
        help: "the stats page's path",
        set: |c, v| {
            c.stats.path = parse_stats_path(v)?;
            Ok(())
        },
        show: |c, out| out.push(format!("access.stats_path {}", c.stats.path)),
        number: None,
    },
    switch!("dashboard" dashboard.enabled,
        "serve the live dashboard at /dashboard and its samples at /dashboard.json (to those \
         who may read /stats)"),
    number!("dashboard.interval" "SECS" [1, MINUTE] dashboard.interval,
        "between the dashboard's samples of the counters"),
    number!("dashboard.samples" "N" [2, 8640] dashboard.samples,
        "samples the dashboard keeps and charts: samples * interval seconds of history, about \
         250 bytes each"),
    file!("tracker.statedump_load" "FILE" statedump.load,
        "as -l: load this statedump at start (after the access list)"),
    file!("tracker.statedump" "FILE" statedump.file,
        "write the statedump here periodically and at shutdown"),
    number!("tracker.statedump_interval" "SECS" [0, 7 * DAY] statedump.interval,
        "between dumps; 0 = only at shutdown"),
    switch!("tracker.statedump_peers" statedump.peers,
        "also dump and load the peers, FILE.peers"),
    Key {
        name: "livesync.cluster.listen",
        form: "IP[:PORT]",
        help: "live sync with other nodes (opentracker's cluster mode: multicast to 224.0.23.5 \
               on this interface; port 9696)",
        set: |c, v| c.livesync.set_listen(parse_livesync_addr(v)?),
        show: |c, out| {
            let l = c.livesync.listen.iter();
            out.extend(l.map(|a| format!("livesync.cluster.listen {a}")));
        },
        number: None,
    },
    nets!("livesync.cluster.node_ip" livesync.nodes,
        "accept live-sync packets from these (repeatable; -A too)"),
    Key {
        name: "livesync.cluster.send_port",
        form: "PORT",
        help: "multicast destination port (opentracker sends to 9696 whatever port it \
               listens on)",
        set: |c, v| {
            c.livesync.send_port = parse_port(v).map_err(|_| bad(format!("bad port `{v}`")))?;
            Ok(())
        },
        show: |c, out| {
            out.push(format!(
                "livesync.cluster.send_port {}",
                c.livesync.send_port
            ))
        },
        number: None,
    },
    Key {
        name: "livesync.cluster.peer",
        form: "IP[:PORT]",
        help: "unicast mode: send to each listed node instead of multicast (repeatable; not \
               in opentracker; listed nodes are accepted)",
        set: |c, v| {
            c.livesync.peers.push(canonical(parse_livesync_addr(v)?));
            Ok(())
        },
        show: |c, out| {
            let p = c.livesync.peers.iter();
            out.extend(p.map(|a| format!("livesync.cluster.peer {a}")));
        },
        number: None,
    },
    Key {
        name: "livesync.cluster.key",
        form: "HEX",
        help: "authenticate packets with this shared key (32-128 hex digits; not in \
               opentracker: opentracker nodes can't join a keyed cluster)",
        set: |c, v| {
            c.livesync.key = Some(parse_key(v)?);
            Ok(())
        },
        show: |c, out| {
            if let Some(k) = &c.livesync.key {
                let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
                out.push(format!("livesync.cluster.key {hex}"));
            }
        },
        number: None,
    },
    number!("livesync.flush_delay" "SECS" [1, HOUR] livesync.flush_delay,
        "longest wait before a partly filled packet is sent"),
    file!("tls.certificate" "FILE" tls.certificate,
        "PEM certificate chain for listen.tls, end-entity certificate first; inside \
         tracker.rootdir, read there before the privilege drop and again on SIGHUP or when \
         it changes"),
    file!("tls.private_key" "FILE" tls.private_key,
        "PEM private key of tls.certificate (RSA, ECDSA P-256/P-384 or Ed25519; unencrypted); \
         read as tls.certificate is"),
    switch!("webtorrent" webtorrent.enabled,
        "serve WebTorrent trackers: WebSocket announces at ws://HOST:PORT/announce on the \
         HTTP listens (wss:// on TLS ones)"),
    number!("webtorrent.interval" "SECS" [1, HOUR] webtorrent.interval,
        "announce interval sent to WebSocket clients"),
    number!("webtorrent.idle_timeout" "SECS" [10, DAY] webtorrent.idle_timeout,
        "close a WebSocket connection that sent no message for this long (must be more than \
         webtorrent.interval plus 10%)"),
    number!("webtorrent.max_offers" "N" [0, 50] webtorrent.max_offers,
        "WebRTC offers of one announce relayed to other peers; later ones are ignored"),
    number!("webtorrent.max_message" "BYTES" [1024, 1 << 20] webtorrent.max_message,
        "largest WebSocket message; a larger one is refused"),
    number!("webtorrent.max_peers_per_connection" "N" [1, 4096]
        webtorrent.max_peers_per_connection,
        "peers (torrent and peer_id) one WebSocket connection may hold; one more is refused"),
    number!("webtorrent.max_backlog" "BYTES" [4096, 64 << 20] webtorrent.max_backlog,
        "bytes a WebSocket connection may have unsent; past it, messages for it (replies and \
         relays) are dropped until its client reads"),
    number!("webtorrent.ping_after" "SECS" [5, HOUR] webtorrent.ping_after,
        "ping a WebSocket client that sent no frame for this long"),
    number!("webtorrent.offers_remembered" "N" [16, 8192] webtorrent.offers_remembered,
        "offers relayed to one WebSocket connection that it may answer (within 120 s), at most"),
    Key {
        name: "log.format",
        form: "text|json",
        help: "stderr log lines: text (no colours unless stderr is a terminal; no timestamp \
               under systemd, whose journal adds its own) or json, one object per line",
        set: |c, v| {
            c.log.format = LogFormat::from_name(v)
                .ok_or_else(|| bad(format!("unknown log format `{v}`: text or json")))?;
            Ok(())
        },
        show: |c, out| out.push(format!("log.format {}", c.log.format.name())),
        number: None,
    },
    Key {
        name: "log.level",
        form: "error|warn|info|debug|trace",
        help: "least severe events logged (info: start, stop, reloads and summaries, nothing \
               per request); RUST_LOG overrides it when set",
        set: |c, v| {
            c.log.level = LogLevel::from_name(v).ok_or_else(|| {
                bad(format!(
                    "unknown log level `{v}`: error, warn, info, debug or trace"
                ))
            })?;
            Ok(())
        },
        show: |c, out| out.push(format!("log.level {}", c.log.level.name())),
        number: None,
    },
];

const UDP_WORKERS: Bounds = Bounds::new("listen.udp.workers", 0, 1024);
/// MiB; 0 = no ceiling (`auto`, the default, is not a number).
const MAX_MEMORY_MB: Bounds = Bounds::new("tracker.max_memory_mb", 0, 1 << 24);

/// Every numeric key's bounds (ports aside, which are `u16`).
pub fn numbers() -> impl Iterator<Item = Bounds> {
    let kept = KEYS.iter().filter_map(|k| k.number.map(|(b, _)| b));
    std::iter::once(UDP_WORKERS).chain(kept)
}

/// Checks every kept numeric value against its key's bounds, for configs built in code.
pub(super) fn check_numbers(cfg: &Config) -> Result<(), ConfigError> {
    for (b, value) in KEYS.iter().filter_map(|k| k.number) {
        b.check(value(cfg))
            .map_err(|kind| ConfigError::general(b.key, kind))?;
    }
    Ok(())
}

/// One config-file line.
fn apply_key(key: &str, value: &str, cfg: &mut Config) -> Result<(), ConfigErrorKind> {
    if key == "batchsync.cluster.admin_ip" {
        return Err(ConfigErrorKind::NeverImplemented);
    }
    let k = KEYS
        .iter()
        .find(|k| k.name == key)
        .ok_or(ConfigErrorKind::UnknownKey)?;
    if value.is_empty() {
        return Err(ConfigErrorKind::MissingValue);
    }
    (k.set)(cfg, value)
}

/// Reads the config file at `path` and applies it to `cfg` (what `-f` does).
///
/// Every `listen.*` line names its own address (opentracker's `parse_configfile`), so an `-i`
/// before `-f` does not affect the file, and the file does not change it.
pub fn parse_file(path: &Path, cfg: &mut Config) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: Some(path.to_path_buf()),
        line: 0,
        key: String::new(),
        kind: ConfigErrorKind::CannotRead(e.to_string()),
    })?;
    parse_str(path, &text, cfg)
}

/// Applies config-file `text` to `cfg`; `origin` names the file in errors. Stops at the first
/// bad line.
///
/// Format (opentracker's): each line is trimmed; blank lines and lines starting with `#` are
/// skipped; the key is the first whitespace-separated word and the value the rest of the line.
/// There are no inline comments: in `tracker.interval 900 # 15 min` the value is
/// `900 # 15 min`, which then fails to parse, and that is reported. Unlike opentracker, long
/// lines are not split at 512 bytes.
pub fn parse_str(origin: &Path, text: &str, cfg: &mut Config) -> Result<(), ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(char::is_whitespace) {
            Some((key, value)) => (key, value.trim_start()),
            None => (line, ""),
        };
        apply_key(key, value, cfg).map_err(|kind| ConfigError {
            file: Some(origin.to_path_buf()),
            line: index + 1,
            key: key.to_string(),
            kind,
        })?;
        if key == "livesync.cluster.key" {
            cfg.livesync.key_file = Some(origin.to_path_buf());
        }
    }
    Ok(())
}

/// `cfg` as a config file: every key, its help and default as a comment, then the lines that
/// give the value in force (a key without a value is shown commented out). Read back, it
/// gives `cfg` again. The live-sync key is included: the output is as secret as the config.
pub fn print(cfg: &Config) -> String {
    let defaults = Config::default();
    let mut out = String::from(
        "# ferrotracker configuration in force (ferrotracker --print-config).\n\
         # Every key, with its help and default; lines starting with # are comments.\n",
    );
    let mut lines = Vec::new();
    for k in KEYS {
        out.push('\n');
        for line in wrap(&describe(k, &defaults), 92) {
            let _ = writeln!(out, "# {line}");
        }
        lines.clear();
        (k.show)(cfg, &mut lines);
        if lines.is_empty() {
            let _ = writeln!(out, "#{} {}", k.name, k.form);
        }
        for l in &lines {
            let _ = writeln!(out, "{l}");
        }
    }
    out
}

/// A key's help with its default, as `-h` and `--print-config` show it.
fn describe(k: &Key, defaults: &Config) -> String {
    let mut lines = Vec::new();
    (k.show)(defaults, &mut lines);
    let values: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix(k.name)?.strip_prefix(' '))
        .collect();
    match values.as_slice() {
        [] => format!("{} {}: {}", k.name, k.form, k.help),
        v => format!(
            "{} {}: {} (default {})",
            k.name,
            k.form,
            k.help,
            v.join(", ")
        ),
    }
}

/// The keys' part of `-h`.
pub(super) fn usage_keys() -> String {
    let defaults = Config::default();
    let mut out = String::new();
    for k in KEYS {
        let mut first = true;
        for line in wrap(&describe(k, &defaults), 88) {
            let indent = if first { "\t" } else { "\t          " };
            first = false;
            let _ = writeln!(out, "{indent}{line}");
        }
    }
    out
}

/// `text` broken at spaces into lines of at most `width` characters (longer words stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The `-s` flag's address: opentracker binds live sync at the current `-i` address; the
/// default `::` means every interface, which for this IPv4-only protocol is 0.0.0.0.
pub(super) fn livesync_flag_ip(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(a) if a.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        other => other,
    }
}

/// Maps a port parse failure to the listen-flag error text.
pub(super) fn port_error(value: &str, why: PortError) -> ConfigErrorKind {
    match why {
        PortError::NotANumber => bad(format!("bad port `{value}`")),
        PortError::OutOfRange => bad(format!("bad port `{value}`: out of range")),
    }
}
