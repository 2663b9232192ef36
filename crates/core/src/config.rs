//! Configuration: opentracker's config file format and command-line flags, plus ferrotracker's own keys.
//!
//! Flags and config-file lines are applied strictly in order, as opentracker does (`main` and
//! `parse_configfile` in `opentracker.c`): `-i` sets the address that the *following*
//! `-p`/`-P` bind to, and `-f` reads its file at the point where it appears, so the file's
//! listens land between the flags around it. If nothing was bound at the end, ferrotracker
//! listens on TCP and UDP port 6969 at the last `-i` address.
//!
//! Where opentracker merely warns and carries on (unknown key, unparsable line, unreadable file)
//! ferrotracker stops with an error naming the file, line and key: a tracker that silently runs
//! with half its configuration is worse than one that does not start.
//!
//! This module only parses: it opens no sockets and binds nothing; the server does that with
//! [`Config::listen`] afterwards.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::access::Mode;
use crate::nets::{Net, Nets};

/// Transport of a listening socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// HTTP announces and scrapes.
    Tcp,
    /// BEP 15 announces and scrapes.
    Udp,
}

/// One socket to bind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    pub proto: Proto,
    /// An IPv6 unspecified address (`::`) means dual stack: the server binds it with
    /// `IPV6_V6ONLY` off, as opentracker (libowfat) does.
    pub addr: SocketAddr,
}

/// Everything the server needs to start.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// In the order given. [`parse_args`] fills in the default (TCP and UDP on port 6969 at the
    /// last `-i` address) when flags and files bound nothing; [`Config::default`] leaves it empty.
    pub listen: Vec<Listen>,
    /// Announce interval in seconds; key `tracker.interval`.
    pub interval: u32,
    /// Seconds after its last announce that a peer is dropped; key `tracker.peer_timeout`.
    pub peer_timeout: u32,
    /// Seconds after which an idle torrent is dropped; key `tracker.torrent_timeout`.
    pub torrent_timeout: u32,
    /// Peers returned when the client does not ask for a number; key `tracker.numwant`.
    pub numwant_default: u32,
    /// Most peers returned whatever the client asks; key `tracker.numwant_max`.
    pub numwant_max: u32,
    /// Event loops (each serves every socket); 0 = one per CPU core; key `tracker.workers`.
    pub workers: usize,
    /// Where `GET /` redirects to; `tracker.redirect_url` / `-r`.
    pub redirect_url: Option<String>,
    /// Serve more than one request per HTTP connection; key `http.keepalive`.
    pub http_keepalive: bool,
    /// Seconds an HTTP connection may sit idle (opentracker's `OT_CLIENT_TIMEOUT`); key
    /// `http.idle_timeout`.
    pub http_idle_timeout: u32,
    /// Seconds from the first byte of a request head to its end; key `http.request_timeout`.
    /// Slow (byte-at-a-time) clients are closed by it.
    pub http_request_timeout: u32,
    /// Open HTTP connections in the whole process; beyond it, new ones get a 503 and are
    /// closed; key `http.max_connections`.
    pub http_max_connections: u32,
    /// Open HTTP connections per client address (IPv6: per /64), 0 = no limit; key
    /// `http.max_connections_per_ip`.
    pub http_max_connections_per_ip: u32,
    /// Streamed replies (full scrapes, `tpbs`, `statedump`) in progress at once in the whole
    /// process; beyond, a 503; key `http.max_streams`. Each holds a bounded amount (about
    /// 0.5 MiB with gzip), so this bounds their memory and the workers' time they take.
    pub http_max_streams: u32,
    /// Requests per second per client address (IPv6: per /64), 0 = no rate limit (the
    /// default); key `ratelimit.requests_per_second`.
    pub ratelimit_per_second: u32,
    /// Requests an idle address may send at once; 0 = twice the rate; key `ratelimit.burst`.
    pub ratelimit_burst: u32,
    /// Addresses the rate limiter tracks at once (bounds its memory); key
    /// `ratelimit.max_addresses`.
    pub ratelimit_max_addresses: u32,
    /// Apply the rate limit to UDP datagrams; key `ratelimit.udp` (default on).
    pub ratelimit_udp: bool,
    /// Apply the rate limit to HTTP requests; key `ratelimit.http` (default on).
    pub ratelimit_http: bool,
    /// Stats page path without the leading '/'; key `access.stats_path` (default `stats`).
    pub stats_path: String,
    /// Nets that may read `/stats` and `/metrics`; key `access.stats` (repeatable).
    pub stats_nets: Nets,
    /// Nets blessed with every permission by `-A` (stats, and trusted proxy for whoever
    /// implements `access.proxy`), as opentracker's `-A`.
    pub blessed: Nets,
    /// Let everyone read `/stats` and `/metrics`; key `access.stats_open` (default off).
    pub stats_open: bool,
    /// Answer full scrapes (`GET /scrape` without a query); key `tracker.full_scrape` (default on).
    pub full_scrape: bool,
    /// Seconds an address (IPv6: a /64) waits between full scrapes, 0 = no limit; sooner, a
    /// 429; key `tracker.full_scrape_interval` (opentracker's `WANT_MODEST_FULLSCRAPES`, 300 s).
    pub full_scrape_interval: u32,
    /// Statedump to load at start; `-l` (after the access list, so nothing refused comes back).
    pub statedump_load: Option<PathBuf>,
    /// Where to write the statedump periodically and at shutdown; key `tracker.statedump`.
    pub statedump_file: Option<PathBuf>,
    /// Seconds between dumps to `statedump_file`, 0 = only at shutdown; key
    /// `tracker.statedump_interval` (default 600).
    pub statedump_interval: u32,
    /// Also dump and load the peers (`FILE.peers`); key `tracker.statedump_peers` (default off).
    pub statedump_peers: bool,
    /// chroot directory when started as root, else the directory to change to; `-d` /
    /// `tracker.rootdir`. Files named in the config (access lists, statedumps) are opened after
    /// it, relative to it, as opentracker opens them.
    pub rootdir: Option<PathBuf>,
    /// User to switch to when started as root (default `nobody`); `-u` / `tracker.user`.
    pub user: Option<String>,
    /// New torrents beyond this many are refused; key `tracker.max_torrents`.
    pub max_torrents: u64,
    /// New peers per torrent (and address family) beyond this many are not stored; key
    /// `tracker.max_peers_per_torrent`.
    pub max_peers_per_torrent: u32,
    /// Peers one IPv4 address (IPv6: one /64) may have in one torrent; an announce for one
    /// more is refused. 0 = no limit; key `tracker.max_peers_per_ip` (default
    /// [`ferrotracker_swarm::DEFAULT_MAX_PEERS_PER_ADDRESS`]).
    pub max_peers_per_ip: u32,
    /// Estimated swarm memory beyond which new torrents are refused and new peers not stored;
    /// key `tracker.max_memory_mb` (default `auto`: derived from the machine, see
    /// [`crate::memory`]).
    pub max_memory: MemoryLimit,
    /// The access list: `access.whitelist` / `-w` or `access.blacklist` / `-b` (one mode at a
    /// time, as opentracker is built with one or the other). Opened after `rootdir`.
    pub access_list: Option<AccessFile>,
    /// Dynamic access lists: FIFOs whose lines add hashes to / delete hashes from the list in
    /// force; keys `access.fifo_add` / `access.fifo_delete` (need an access list). Created if
    /// missing, opened after `rootdir`.
    pub access_fifo_add: Option<PathBuf>,
    pub access_fifo_delete: Option<PathBuf>,
    /// Proxies whose `X-Forwarded-For` is believed; key `access.proxy` (repeatable). `-A` nets
    /// are trusted too: see [`Config::proxies`].
    pub proxy_nets: Nets,
    /// Record announces under the `ip=` query parameter; key `tracker.allow_ip_param`
    /// (default off: any client could otherwise announce someone else's address).
    pub allow_ip_param: bool,
    /// Live sync with other nodes: `livesync.*`, `-s`.
    pub livesync: LiveSyncConfig,
}

/// `tracker.max_memory_mb`: the swarm's memory ceiling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryLimit {
    /// `auto` (the default): a share of physical memory or the cgroup limit, whichever is
    /// smaller ([`crate::memory::default_ceiling`]); the server reads them at start.
    Auto,
    /// `0`: no ceiling, as before there was a default (a machine dedicated to the tracker,
    /// watched by its operator).
    Unlimited,
    /// This many MiB.
    Mib(u64),
}

impl MemoryLimit {
    /// The key's number: MiB, 0 for no ceiling; `auto` (not a number) counts as 0 for the
    /// bounds check.
    pub fn mib(self) -> u64 {
        match self {
            MemoryLimit::Mib(n) => n,
            MemoryLimit::Auto | MemoryLimit::Unlimited => 0,
        }
    }
}

/// An access-list file and what it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessFile {
    pub mode: Mode,
    pub path: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: Vec::new(),
            interval: 1800,
            peer_timeout: 45 * 60,
            torrent_timeout: 24 * 60 * 60,
            numwant_default: 50,
            numwant_max: 200,
            workers: 0,
            redirect_url: None,
            http_keepalive: true,
            http_idle_timeout: 30,
            http_request_timeout: 10,
            http_max_connections: 100_000,
            http_max_connections_per_ip: 128,
            http_max_streams: 64,
            ratelimit_per_second: 0,
            ratelimit_burst: 0,
            ratelimit_max_addresses: 100_000,
            ratelimit_udp: true,
            ratelimit_http: true,
            stats_path: "stats".to_string(),
            stats_nets: Nets::default(),
            blessed: Nets::default(),
            stats_open: false,
            full_scrape: true,
            full_scrape_interval: 10,
            statedump_load: None,
            statedump_file: None,
            statedump_interval: 600,
            statedump_peers: false,
            rootdir: None,
            user: None,
            max_torrents: 20_000_000,
            max_peers_per_torrent: 1_000_000,
            max_peers_per_ip: ferrotracker_swarm::DEFAULT_MAX_PEERS_PER_ADDRESS,
            max_memory: MemoryLimit::Auto,
            access_list: None,
            access_fifo_add: None,
            access_fifo_delete: None,
            proxy_nets: Nets::default(),
            allow_ip_param: false,
            livesync: LiveSyncConfig::default(),
        }
    }
}

impl Config {
    /// Who may read `/stats` and `/metrics`: everyone with `access.stats_open on` (an empty
    /// list), else the `access.stats` and `-A` nets, else (none configured) loopback only.
    pub fn stats_readers(&self) -> Nets {
        if self.stats_open {
            return Nets::default();
        }
        let mut n = self.stats_nets.clone();
        for net in &self.blessed.0 {
            n.push(*net);
        }
        if n.is_empty() {
            Nets::loopback()
        } else {
            n
        }
    }

    /// Every numeric setting with its key's bounds (`listen.udp.workers` is not kept).
    fn numbers(&self) -> [(Bounds, u64); NUMBERS.len() - 1] {
        [
            (INTERVAL, self.interval.into()),
            (PEER_TIMEOUT, self.peer_timeout.into()),
            (TORRENT_TIMEOUT, self.torrent_timeout.into()),
            (NUMWANT, self.numwant_default.into()),
            (NUMWANT_MAX, self.numwant_max.into()),
            (WORKERS, self.workers as u64),
            (IDLE_TIMEOUT, self.http_idle_timeout.into()),
            (REQUEST_TIMEOUT, self.http_request_timeout.into()),
            (MAX_CONNECTIONS, self.http_max_connections.into()),
            (
                MAX_CONNECTIONS_PER_IP,
                self.http_max_connections_per_ip.into(),
            ),
            (RATE, self.ratelimit_per_second.into()),
            (BURST, self.ratelimit_burst.into()),
            (RATE_ADDRESSES, self.ratelimit_max_addresses.into()),
            (STATEDUMP_INTERVAL, self.statedump_interval.into()),
            (MAX_TORRENTS, self.max_torrents),
            (MAX_PEERS, self.max_peers_per_torrent.into()),
            (MAX_PEERS_PER_IP, self.max_peers_per_ip.into()),
            (MAX_MEMORY_MB, self.max_memory.mib()),
            (FLUSH_DELAY, self.livesync.flush_delay.into()),
            (MAX_STREAMS, self.http_max_streams.into()),
            (FULL_SCRAPE_INTERVAL, self.full_scrape_interval.into()),
        ]
    }

    /// Whose `X-Forwarded-For` is believed: the `access.proxy` and `-A` nets.
    pub fn proxies(&self) -> Nets {
        let mut n = self.proxy_nets.clone();
        for net in &self.blessed.0 {
            n.push(*net);
        }
        n
    }

    /// Checks what no single line can: `tracker.numwant <= tracker.numwant_max`, and repeats the
    /// per-key bounds for configs built in code. [`parse_args`] calls it last.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (b, value) in self.numbers() {
            b.check(value)
                .map_err(|kind| ConfigError::general(b.key, kind))?;
        }
        if self.numwant_default > self.numwant_max {
            let why = format!(
                "{} is more than tracker.numwant_max ({})",
                self.numwant_default, self.numwant_max
            );
            return Err(ConfigError::general(
                "tracker.numwant",
                ConfigErrorKind::BadValue(why),
            ));
        }
        for (key, fifo) in [
            ("access.fifo_add", &self.access_fifo_add),
            ("access.fifo_delete", &self.access_fifo_delete),
        ] {
            if fifo.is_some() && self.access_list.is_none() {
                return Err(ConfigError::general(
                    key,
                    ConfigErrorKind::BadValue(
                        "a dynamic access list edits the whitelist or blacklist: set \
                         access.whitelist or access.blacklist (-w/-b) too"
                            .into(),
                    ),
                ));
            }
        }
        if let (Some(add), Some(delete)) = (&self.access_fifo_add, &self.access_fifo_delete) {
            if add == delete {
                return Err(ConfigError::general(
                    "access.fifo_delete",
                    ConfigErrorKind::BadValue(format!(
                        "{} is access.fifo_add's FIFO too: each needs its own",
                        delete.display()
                    )),
                ));
            }
        }
        self.livesync.validate()?;
        Ok(())
    }
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // made once per process; boxing buys nothing
pub enum Command {
    Run(Config),
    /// `-h` / `--help`: print [`usage`] and exit 0.
    Help,
    /// `-v` / `--version`: print the version and exit 0.
    Version,
}

/// Parses the command line (without `argv[0]`), reading `-f` files as they come.
///
/// Hand-written rather than clap: opentracker's flags are not a set of options but a small
/// program run left to right (`-i` changes what the next `-p` means, `-f` runs a file in
/// between), which clap's parse-then-read model cannot express. getopt conventions: `-p 6969`
/// and `-p6969` both work, value-less flags may be clustered (`-vh`), and a flag's argument is
/// taken even if it starts with `-`. `-v`/`-h` act when reached, so an earlier bad flag still
/// fails. Positional arguments are errors (opentracker's glibc getopt silently ignores them).
pub fn parse_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Command, ConfigError> {
    let mut cfg = Config::default();
    let mut ip = DEFAULT_IP;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(text) = arg.to_str() else {
            return Err(ConfigError::flag(
                &arg.to_string_lossy(),
                ConfigErrorKind::BadFlag,
            ));
        };
        match text {
            "--help" => return Ok(Command::Help),
            "--version" => return Ok(Command::Version),
            _ => {}
        }
        let cluster = match text.strip_prefix('-') {
            Some(c) if !c.is_empty() && !c.starts_with('-') => c,
            _ => return Err(ConfigError::flag(text, ConfigErrorKind::BadFlag)),
        };
        // Only `-v` and `-h` take no value, and both end parsing, so a cluster like `-vh` needs
        // no loop: the first letter decides.
        let mut letters = cluster.chars();
        let c = letters.next().unwrap_or('-'); // `cluster` is non-empty (checked above)
        let rest = letters.as_str();
        let flag = format!("-{c}");
        match c {
            'v' => return Ok(Command::Version),
            'h' => return Ok(Command::Help),
            'i' | 'p' | 'P' | 'r' | 'f' | 'd' | 'u' | 'l' | 'A' | 'w' | 'b' | 's' => {
                let value = if rest.is_empty() {
                    args.next()
                        .ok_or_else(|| ConfigError::flag(&flag, ConfigErrorKind::MissingValue))?
                } else {
                    OsString::from(rest)
                };
                if c == 'f' {
                    // The file's errors name the file and line themselves.
                    parse_file(Path::new(&value), &mut cfg, &mut ip)?;
                } else {
                    apply_flag(c, &value, &mut cfg, &mut ip)
                        .map_err(|kind| ConfigError::flag(&flag, kind))?;
                }
            }
            _ => return Err(ConfigError::flag(&flag, ConfigErrorKind::BadFlag)),
        }
    }
    if cfg.listen.is_empty() {
        let addr = SocketAddr::new(ip, DEFAULT_PORT);
        cfg.listen.push(Listen {
            proto: Proto::Tcp,
            addr,
        });
        cfg.listen.push(Listen {
            proto: Proto::Udp,
            addr,
        });
    }
    cfg.validate()?;
    Ok(Command::Run(cfg))
}

/// Reads the config file at `path` and applies it to `cfg` (what `-f` does).
///
/// `current_ip` is the address the flags' last `-i` set. The file neither reads nor changes
/// it: every `listen.*` line names its own address (opentracker's `parse_configfile`), so an `-i` before `-f` does not
/// affect the file. It is passed so the flag loop and the file share one piece of state.
pub fn parse_file(
    path: &Path,
    cfg: &mut Config,
    current_ip: &mut IpAddr,
) -> Result<(), ConfigError> {
    let _ = current_ip;
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

/// Usage and help text, opentracker-like, covering every flag and config key.
pub fn usage() -> &'static str {
    USAGE
}

/// A bad flag or config line, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The config file, or `None` for flags and whole-config checks.
    pub file: Option<PathBuf>,
    /// 1-based line in `file`; 0 for flags, whole-config checks and unreadable files.
    pub line: usize,
    /// The config key or the flag (`"-p"`); empty when the whole file is at fault.
    pub key: String,
    pub kind: ConfigErrorKind,
}

/// What was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// Not a config key that ferrotracker or opentracker knows.
    UnknownKey,
    /// A key or flag without its value.
    MissingValue,
    /// The value did not parse or is out of range; the text says how.
    BadValue(String),
    /// opentracker documents the key but never implemented it (`batchsync.cluster.admin_ip`).
    NeverImplemented,
    /// The config file could not be read; the I/O error's text.
    CannotRead(String),
    /// Not a flag ferrotracker knows, or a stray positional argument.
    BadFlag,
}

impl ConfigError {
    fn flag(flag: &str, kind: ConfigErrorKind) -> Self {
        ConfigError {
            file: None,
            line: 0,
            key: flag.to_string(),
            kind,
        }
    }

    fn general(key: &str, kind: ConfigErrorKind) -> Self {
        ConfigError {
            file: None,
            line: 0,
            key: key.to_string(),
            kind,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), 0) => write!(f, "{}: ", file.display())?,
            (Some(file), line) => write!(f, "{}:{line}: ", file.display())?,
            (None, _) => {}
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        write!(f, "{}", self.kind)
    }
}

impl fmt::Display for ConfigErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigErrorKind::UnknownKey => f.write_str("unknown key"),
            ConfigErrorKind::MissingValue => f.write_str("missing value"),
            ConfigErrorKind::BadValue(why) => f.write_str(why),
            ConfigErrorKind::NeverImplemented => f.write_str(
                "opentracker documents this key but never implemented it either; remove the line",
            ),
            ConfigErrorKind::CannotRead(why) => write!(f, "cannot read: {why}"),
            ConfigErrorKind::BadFlag => f.write_str("unknown flag (see -h)"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// One flag other than `-f` with its argument; `ip` is the `-i` state.
fn apply_flag(
    flag: char,
    value: &OsStr,
    cfg: &mut Config,
    ip: &mut IpAddr,
) -> Result<(), ConfigErrorKind> {
    let Some(value) = value.to_str() else {
        return Err(ConfigErrorKind::BadValue("not valid UTF-8".to_string()));
    };
    match flag {
        'i' => {
            let bare = value
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .unwrap_or(value);
            *ip = bare
                .parse()
                .map_err(|_| bad(format!("bad address `{value}`")))?;
        }
        'p' | 'P' => {
            let port = parse_port(value).map_err(|why| match why {
                PortError::NotANumber => bad(format!("bad port `{value}`")),
                PortError::OutOfRange => bad(format!("bad port `{value}`: out of range")),
            })?;
            let proto = if flag == 'p' { Proto::Tcp } else { Proto::Udp };
            cfg.listen.push(Listen {
                proto,
                addr: SocketAddr::new(*ip, port),
            });
        }
        'r' => cfg.redirect_url = Some(parse_url(value)?),
        'A' => cfg.blessed.push(parse_net(value)?),
        'l' => cfg.statedump_load = Some(parse_path(value)?),
        'd' => cfg.rootdir = Some(parse_path(value)?),
        'u' => cfg.user = Some(parse_user(value)?),
        'w' => set_access_list(cfg, Mode::White, value)?,
        'b' => set_access_list(cfg, Mode::Black, value)?,
        's' => {
            let port = parse_port(value).map_err(|_| bad(format!("bad port `{value}`")))?;
            // opentracker binds live sync at the current -i address; the default `::` means
            // every interface, which for this IPv4-only protocol is 0.0.0.0.
            let ip = match ip.to_canonical() {
                IpAddr::V6(a) if a.is_unspecified() => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                other => other,
            };
            cfg.livesync.set_listen(SocketAddr::new(ip, port))?;
        }
        _ => unreachable!("parse_args only passes flags that take a value"),
    }
    Ok(())
}

/// One config-file line.
fn apply_key(key: &str, value: &str, cfg: &mut Config) -> Result<(), ConfigErrorKind> {
    let need = |value: &str| {
        if value.is_empty() {
            Err(ConfigErrorKind::MissingValue)
        } else {
            Ok(value.to_string())
        }
    };
    match key {
        "listen.tcp_udp" | "listen.tcp" | "listen.udp" => {
            let addr = parse_listen_addr(&need(value)?)?;
            if key != "listen.udp" {
                cfg.listen.push(Listen {
                    proto: Proto::Tcp,
                    addr,
                });
            }
            if key != "listen.tcp" {
                cfg.listen.push(Listen {
                    proto: Proto::Udp,
                    addr,
                });
            }
        }
        // opentracker's per-socket blocking UDP threads. Every ferrotracker event loop
        // (`tracker.workers`) serves every socket, so the count is checked and then ignored.
        "listen.udp.workers" => {
            parse_number::<usize>(&need(value)?, UDP_WORKERS)?;
        }
        "tracker.redirect_url" => cfg.redirect_url = Some(parse_url(&need(value)?)?),
        "tracker.interval" => cfg.interval = parse_number(&need(value)?, INTERVAL)?,
        "tracker.peer_timeout" => cfg.peer_timeout = parse_number(&need(value)?, PEER_TIMEOUT)?,
        "tracker.torrent_timeout" => {
            cfg.torrent_timeout = parse_number(&need(value)?, TORRENT_TIMEOUT)?
        }
        "tracker.numwant" => cfg.numwant_default = parse_number(&need(value)?, NUMWANT)?,
        "tracker.numwant_max" => cfg.numwant_max = parse_number(&need(value)?, NUMWANT_MAX)?,
        "tracker.workers" => cfg.workers = parse_number(&need(value)?, WORKERS)?,
        "http.keepalive" => cfg.http_keepalive = parse_bool(&need(value)?)?,
        "http.idle_timeout" => cfg.http_idle_timeout = parse_number(&need(value)?, IDLE_TIMEOUT)?,
        "http.request_timeout" => {
            cfg.http_request_timeout = parse_number(&need(value)?, REQUEST_TIMEOUT)?
        }
        "http.max_connections" => {
            cfg.http_max_connections = parse_number(&need(value)?, MAX_CONNECTIONS)?
        }
        "http.max_connections_per_ip" => {
            cfg.http_max_connections_per_ip = parse_number(&need(value)?, MAX_CONNECTIONS_PER_IP)?
        }
        "http.max_streams" => cfg.http_max_streams = parse_number(&need(value)?, MAX_STREAMS)?,
        "ratelimit.requests_per_second" => {
            cfg.ratelimit_per_second = parse_number(&need(value)?, RATE)?
        }
        "ratelimit.burst" => cfg.ratelimit_burst = parse_number(&need(value)?, BURST)?,
        "ratelimit.max_addresses" => {
            cfg.ratelimit_max_addresses = parse_number(&need(value)?, RATE_ADDRESSES)?
        }
        "ratelimit.udp" => cfg.ratelimit_udp = parse_bool(&need(value)?)?,
        "ratelimit.http" => cfg.ratelimit_http = parse_bool(&need(value)?)?,
        "access.whitelist" => set_access_list(cfg, Mode::White, &need(value)?)?,
        "access.blacklist" => set_access_list(cfg, Mode::Black, &need(value)?)?,
        "access.fifo_add" => cfg.access_fifo_add = Some(parse_path(&need(value)?)?),
        "access.fifo_delete" => cfg.access_fifo_delete = Some(parse_path(&need(value)?)?),
        "access.stats" => cfg.stats_nets.push(parse_net(&need(value)?)?),
        "access.stats_path" => cfg.stats_path = parse_stats_path(&need(value)?)?,
        "access.stats_open" => cfg.stats_open = parse_bool(&need(value)?)?,
        "tracker.full_scrape" => cfg.full_scrape = parse_bool(&need(value)?)?,
        "tracker.full_scrape_interval" => {
            cfg.full_scrape_interval = parse_number(&need(value)?, FULL_SCRAPE_INTERVAL)?
        }
        "access.proxy" => cfg.proxy_nets.push(parse_net(&need(value)?)?),
        "tracker.allow_ip_param" => cfg.allow_ip_param = parse_bool(&need(value)?)?,
        k if k.starts_with("livesync.") => apply_livesync_key(k, &need(value)?, cfg)?,
        "tracker.rootdir" => cfg.rootdir = Some(parse_path(&need(value)?)?),
        "tracker.user" => cfg.user = Some(parse_user(&need(value)?)?),
        "tracker.statedump" => cfg.statedump_file = Some(parse_path(&need(value)?)?),
        "tracker.statedump_interval" => {
            cfg.statedump_interval = parse_number(&need(value)?, STATEDUMP_INTERVAL)?
        }
        "tracker.statedump_peers" => cfg.statedump_peers = parse_bool(&need(value)?)?,
        "tracker.max_torrents" => cfg.max_torrents = parse_number(&need(value)?, MAX_TORRENTS)?,
        "tracker.max_peers_per_torrent" => {
            cfg.max_peers_per_torrent = parse_number(&need(value)?, MAX_PEERS)?
        }
        "tracker.max_peers_per_ip" => {
            cfg.max_peers_per_ip = parse_number(&need(value)?, MAX_PEERS_PER_IP)?
        }
        "tracker.max_memory_mb" => cfg.max_memory = parse_memory_limit(&need(value)?)?,
        "batchsync.cluster.admin_ip" => return Err(ConfigErrorKind::NeverImplemented),
        _ => return Err(ConfigErrorKind::UnknownKey),
    }
    Ok(())
}

/// Live sync: opentracker's multicast cluster mode (`ot_livesync.c`), plus ferrotracker's
/// unicast peers and shared key (extensions opentracker nodes do not understand; off by
/// default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveSyncConfig {
    /// Where to listen (`livesync.cluster.listen IP[:PORT]` or `-i IP -s PORT`, port 9696);
    /// `None` = live sync off. In multicast mode an IPv4 interface address.
    pub listen: Option<SocketAddr>,
    /// Nets whose packets are accepted (`livesync.cluster.node_ip`, repeatable); `-A` nets and
    /// unicast peers are accepted too ([`Config::livesync_nodes`]).
    pub nodes: Nets,
    /// Unicast mode (`livesync.cluster.peer IP[:PORT]`, repeatable): every packet goes to each
    /// of these instead of the multicast group. A peer equal to `listen` (this node) is skipped,
    /// so every node can share one list.
    pub peers: Vec<SocketAddr>,
    /// Shared key of the authenticated extension (`livesync.cluster.key HEX`).
    pub key: Option<Vec<u8>>,
    /// The config file the key was read from: the server warns when others may read it.
    pub key_file: Option<PathBuf>,
    /// Destination port of multicast packets (`livesync.cluster.send_port`). opentracker
    /// always sends to 9696, whatever port it listens on; so does the default.
    pub send_port: u16,
    /// Seconds a partly filled packet may wait (`livesync.flush_delay`, opentracker: 15).
    pub flush_delay: u32,
}

impl Default for LiveSyncConfig {
    fn default() -> Self {
        LiveSyncConfig {
            listen: None,
            nodes: Nets::default(),
            peers: Vec::new(),
            key: None,
            key_file: None,
            send_port: LIVESYNC_PORT,
            flush_delay: 15,
        }
    }
}

impl LiveSyncConfig {
    /// opentracker allows one listen statement (`-s` included).
    fn set_listen(&mut self, addr: SocketAddr) -> Result<(), ConfigErrorKind> {
        if self.listen.is_some() {
            return Err(bad("live sync listen address given twice".to_string()));
        }
        self.listen = Some(canonical(addr));
        Ok(())
    }

    /// Multicast mode is IPv4 (as opentracker); the other keys need a listen address.
    fn validate(&self) -> Result<(), ConfigError> {
        let Some(listen) = self.listen else {
            let given = [
                (!self.nodes.is_empty(), "livesync.cluster.node_ip"),
                (!self.peers.is_empty(), "livesync.cluster.peer"),
                (self.key.is_some(), "livesync.cluster.key"),
            ];
            return match given.iter().find(|(g, _)| *g) {
                Some((_, key)) => Err(ConfigError::general(
                    key,
                    ConfigErrorKind::BadValue(
                        "live sync needs livesync.cluster.listen (or -s)".to_string(),
                    ),
                )),
                None => Ok(()),
            };
        };
        // Canonical already (see `canonical`); checked so again, as what it guards is the rule
        // that a unicast node takes datagrams sent to its own address only.
        if !self.peers.is_empty() && listen.ip().to_canonical().is_unspecified() {
            return Err(ConfigError::general(
                "livesync.cluster.listen",
                ConfigErrorKind::BadValue(format!(
                    "{listen}: unicast live sync listens on this node's own address (an \
                     unspecified one would take datagrams sent to any address of the host)"
                )),
            ));
        }
        if self.peers.is_empty() && listen.is_ipv6() {
            return Err(ConfigError::general(
                "livesync.cluster.listen",
                ConfigErrorKind::BadValue(format!(
                    "{listen}: multicast live sync is IPv4 only (as opentracker); list the nodes \
                     with livesync.cluster.peer for unicast over IPv6"
                )),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// Whose live-sync packets are accepted: `livesync.cluster.node_ip` and `-A` nets (opentracker's
    /// -A grants every permission) and the unicast peers.
    pub fn livesync_nodes(&self) -> Nets {
        let l = &self.livesync;
        let mut n = l.nodes.clone();
        for net in &self.blessed.0 {
            n.push(*net);
        }
        for p in &l.peers {
            n.push(Net::new(p.ip(), if p.is_ipv4() { 32 } else { 128 }));
        }
        n
    }
}

/// One `livesync.*` line.
fn apply_livesync_key(key: &str, value: &str, cfg: &mut Config) -> Result<(), ConfigErrorKind> {
    let l = &mut cfg.livesync;
    match key {
        "livesync.cluster.listen" => l.set_listen(parse_livesync_addr(value)?)?,
        "livesync.cluster.node_ip" => l.nodes.push(parse_net(value)?),
        "livesync.cluster.peer" => l.peers.push(canonical(parse_livesync_addr(value)?)),
        "livesync.cluster.key" => l.key = Some(parse_key(value)?),
        "livesync.cluster.send_port" => {
            l.send_port = parse_port(value).map_err(|_| bad(format!("bad port `{value}`")))?
        }
        "livesync.flush_delay" => l.flush_delay = parse_number(value, FLUSH_DELAY)?,
        _ => return Err(ConfigErrorKind::UnknownKey),
    }
    Ok(())
}

/// An IPv4 address written v4-mapped (`[::ffff:10.0.0.1]`) as the IPv4 address it is, so that
/// `[::ffff:0.0.0.0]` is the unspecified address it means, multicast takes it as IPv4, and a
/// peer is recognised as this node however either is written.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// As a listen address, but the port defaults to 9696 (`[IPv6]` without a port included).
fn parse_livesync_addr(text: &str) -> Result<SocketAddr, ConfigErrorKind> {
    let bracketed = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
    let ip = match bracketed {
        Some(inner) => inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => text.parse::<IpAddr>().ok(),
    };
    match ip {
        Some(ip) => Ok(SocketAddr::new(ip, LIVESYNC_PORT)),
        None => parse_listen_addr(text),
    }
}

/// A shared key: 32 to 128 hex digits (16 to 64 bytes), e.g. `openssl rand -hex 32`.
fn parse_key(text: &str) -> Result<Vec<u8>, ConfigErrorKind> {
    let digits = text.as_bytes();
    // `% 2` rather than `is_multiple_of`: that is newer than our minimum Rust (1.80).
    #[allow(clippy::manual_is_multiple_of)]
    let odd = digits.len() % 2 != 0;
    if odd || !(32..=128).contains(&digits.len()) {
        return Err(bad(
            "a key is 32 to 128 hex digits (16 to 64 bytes), e.g. `openssl rand -hex 32`".into(),
        ));
    }
    ferrotracker_proto::hex::decode(digits).ok_or_else(|| bad("a key is hex digits only".into()))
}

/// Live sync's default port, also where opentracker sends (`LIVESYNC_PORT` in
/// `ot_livesync.h`).
pub const LIVESYNC_PORT: u16 = 9696;

/// `-w`/`-b`/`access.whitelist`/`access.blacklist`. A later one of the same mode replaces the
/// path (as opentracker); the other mode is an error, since opentracker is compiled with one or
/// the other and a config naming both was never honoured as written.
fn set_access_list(cfg: &mut Config, mode: Mode, path: &str) -> Result<(), ConfigErrorKind> {
    if let Some(old) = &cfg.access_list {
        if old.mode != mode {
            return Err(bad(format!(
                "a {mode} and a {} can't both be in force: one mode at a time, as opentracker",
                old.mode
            )));
        }
    }
    cfg.access_list = Some(AccessFile {
        mode,
        path: parse_path(path)?,
    });
    Ok(())
}

/// opentracker's `scan_ip6_port`: `ip`, `v4:port`, `[v6]:port`, bare `v6`, and also `v6.port` /
/// `[v6].port`; the port defaults to 6969. A bare v6 address ending in `:digits` is an address
/// (`::1:80` is `[::1:80]:6969`), as in opentracker; write `[::1]:80` for a port.
fn parse_listen_addr(text: &str) -> Result<SocketAddr, ConfigErrorKind> {
    let bad_addr = |why: &str| bad(format!("bad address `{text}`: {why}"));
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_PORT));
    }
    let (host, port, bracketed) = if let Some(inner) = text.strip_prefix('[') {
        let (host, after) = inner
            .split_once(']')
            .ok_or_else(|| bad_addr("missing `]`"))?;
        let port = if after.is_empty() {
            None
        } else {
            let port = after.strip_prefix(':').or_else(|| after.strip_prefix('.'));
            Some(port.ok_or_else(|| bad_addr("expected `:port` after `]`"))?)
        };
        (host, port, true)
    } else if text.matches(':').count() > 1 {
        // Unbracketed v6: only `.` can separate the port.
        let (host, port) = text
            .rsplit_once('.')
            .ok_or_else(|| bad_addr("not an IP address"))?;
        (host, Some(port), false)
    } else {
        let (host, port) = text
            .split_once(':')
            .ok_or_else(|| bad_addr("not an IP address"))?;
        (host, Some(port), false)
    };
    let ip: IpAddr = host.parse().map_err(|_| bad_addr("not an IP address"))?;
    if bracketed && ip.is_ipv4() {
        return Err(bad_addr("brackets are for IPv6 addresses"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(port) => parse_port(port).map_err(|why| match why {
            PortError::NotANumber => bad_addr("bad port"),
            PortError::OutOfRange => bad_addr("port out of range"),
        })?,
    };
    Ok(SocketAddr::new(ip, port))
}

enum PortError {
    NotANumber,
    OutOfRange,
}

/// Decimal digits only; 0 is allowed (an ephemeral port, which tests use).
fn parse_port(text: &str) -> Result<u16, PortError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PortError::NotANumber);
    }
    text.parse().map_err(|_| PortError::OutOfRange)
}

/// A decimal number within `b`.
fn parse_number<T: TryFrom<u64>>(text: &str, b: Bounds) -> Result<T, ConfigErrorKind> {
    if text.is_empty() || !text.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad(format!("bad number `{text}`")));
    }
    // Digits only: a parse failure is a number beyond u64.
    let n = text
        .parse::<u64>()
        .map_err(|_| bad(too_large(text, b.max)))?;
    b.check(n)?;
    T::try_from(n).map_err(|_| bad(too_large(text, b.max)))
}

/// Inclusive bounds of a numeric key; every numeric key has one (see [`NUMBERS`]), so no
/// operator-set value can overflow the arithmetic that uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub key: &'static str,
    pub min: u64,
    pub max: u64,
}

impl Bounds {
    const fn new(key: &'static str, min: u64, max: u64) -> Bounds {
        Bounds { key, min, max }
    }

    fn check(&self, n: u64) -> Result<(), ConfigErrorKind> {
        if n < self.min {
            Err(bad(too_small(n, self.min)))
        } else if n > self.max {
            Err(bad(too_large(n, self.max)))
        } else {
            Ok(())
        }
    }
}

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
const UDP_WORKERS: Bounds = Bounds::new("listen.udp.workers", 0, 1024);
const INTERVAL: Bounds = Bounds::new("tracker.interval", 1, 7 * DAY);
const PEER_TIMEOUT: Bounds = Bounds::new("tracker.peer_timeout", 1, 7 * DAY);
const TORRENT_TIMEOUT: Bounds = Bounds::new("tracker.torrent_timeout", 1, 30 * DAY);
const NUMWANT: Bounds = Bounds::new("tracker.numwant", 0, 10_000);
const NUMWANT_MAX: Bounds = Bounds::new("tracker.numwant_max", 1, 10_000);
const WORKERS: Bounds = Bounds::new("tracker.workers", 0, 1024);
const IDLE_TIMEOUT: Bounds = Bounds::new("http.idle_timeout", 1, DAY);
const REQUEST_TIMEOUT: Bounds = Bounds::new("http.request_timeout", 1, HOUR);
const MAX_CONNECTIONS: Bounds = Bounds::new("http.max_connections", 1, 1 << 24);
const MAX_CONNECTIONS_PER_IP: Bounds = Bounds::new("http.max_connections_per_ip", 0, 1 << 24);
const RATE: Bounds = Bounds::new("ratelimit.requests_per_second", 0, 1_000_000);
const BURST: Bounds = Bounds::new("ratelimit.burst", 0, 10_000_000);
const RATE_ADDRESSES: Bounds = Bounds::new("ratelimit.max_addresses", 1, 100_000_000);
const STATEDUMP_INTERVAL: Bounds = Bounds::new("tracker.statedump_interval", 0, 7 * DAY);
const MAX_TORRENTS: Bounds = Bounds::new("tracker.max_torrents", 1, 1_000_000_000);
const MAX_PEERS: Bounds = Bounds::new("tracker.max_peers_per_torrent", 1, 100_000_000);
const MAX_PEERS_PER_IP: Bounds = Bounds::new("tracker.max_peers_per_ip", 0, 65535);
/// MiB; 0 = no ceiling (`auto`, the default, is not a number).
const MAX_MEMORY_MB: Bounds = Bounds::new("tracker.max_memory_mb", 0, 1 << 24);
const FLUSH_DELAY: Bounds = Bounds::new("livesync.flush_delay", 1, HOUR);
const MAX_STREAMS: Bounds = Bounds::new("http.max_streams", 1, 1 << 20);
const FULL_SCRAPE_INTERVAL: Bounds = Bounds::new("tracker.full_scrape_interval", 0, DAY);

/// Every numeric config key with its bounds (ports aside, which are `u16`).
pub const NUMBERS: [Bounds; 22] = [
    UDP_WORKERS,
    INTERVAL,
    PEER_TIMEOUT,
    TORRENT_TIMEOUT,
    NUMWANT,
    NUMWANT_MAX,
    WORKERS,
    IDLE_TIMEOUT,
    REQUEST_TIMEOUT,
    MAX_CONNECTIONS,
    MAX_CONNECTIONS_PER_IP,
    RATE,
    BURST,
    RATE_ADDRESSES,
    STATEDUMP_INTERVAL,
    MAX_TORRENTS,
    MAX_PEERS,
    MAX_PEERS_PER_IP,
    MAX_MEMORY_MB,
    FLUSH_DELAY,
    MAX_STREAMS,
    FULL_SCRAPE_INTERVAL,
];

fn too_large<T: fmt::Display>(n: T, max: u64) -> String {
    format!("must be at most {max}, not {n}")
}

/// `auto`, `0` (no ceiling) or MiB within [`MAX_MEMORY_MB`].
fn parse_memory_limit(text: &str) -> Result<MemoryLimit, ConfigErrorKind> {
    if text.eq_ignore_ascii_case("auto") {
        return Ok(MemoryLimit::Auto);
    }
    Ok(match parse_number(text, MAX_MEMORY_MB)? {
        0 => MemoryLimit::Unlimited,
        n => MemoryLimit::Mib(n),
    })
}

fn too_small<T: fmt::Display>(n: T, min: u64) -> String {
    format!("must be at least {min}, not {n}")
}

fn parse_bool(text: &str) -> Result<bool, ConfigErrorKind> {
    match text.to_ascii_lowercase().as_str() {
        "on" | "yes" | "true" | "1" => Ok(true),
        "off" | "no" | "false" | "0" => Ok(false),
        _ => Err(bad(format!(
            "bad switch `{text}`: use on/off, yes/no, true/false or 1/0"
        ))),
    }
}

/// The redirect target goes verbatim into a `Location:` header, so no whitespace or control
/// characters (which would split or inject headers).
fn parse_url(text: &str) -> Result<String, ConfigErrorKind> {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(format!(
            "bad URL `{}`: spaces and control characters are not allowed",
            text.escape_debug()
        )));
    }
    Ok(text.to_string())
}

/// `ip[/bits]` as opentracker's `scan_ip6_net`.
fn parse_net(text: &str) -> Result<Net, ConfigErrorKind> {
    Net::parse(text).map_err(|e| bad(format!("bad network `{text}`: {e}")))
}

/// The stats path as opentracker compares it: the raw path without leading '/'. One leading
/// '/' is forgiven; empty, `announce…`/`sc…` (routed before stats), spaces, '?' and '#' are not.
fn parse_stats_path(text: &str) -> Result<String, ConfigErrorKind> {
    let path = text.trim_start_matches('/');
    let why = if path.is_empty() {
        Some("must not be empty")
    } else if path.starts_with('a') || path.starts_with("sc") {
        Some("paths starting with `a` are announces and with `sc` scrapes")
    } else if path
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#')
    {
        Some("no spaces, control characters, `?` or `#`")
    } else {
        None
    };
    match why {
        Some(why) => Err(bad(format!("bad stats path `{text}`: {why}"))),
        None => Ok(path.to_string()),
    }
}

/// A file or directory path: any non-empty text (no inline comments, so `#` is part of it).
fn parse_path(text: &str) -> Result<PathBuf, ConfigErrorKind> {
    if text.is_empty() || text.chars().any(char::is_control) {
        return Err(bad(format!("bad path `{text}`")));
    }
    Ok(PathBuf::from(text))
}

/// A user name as `getpwnam` takes it.
fn parse_user(text: &str) -> Result<String, ConfigErrorKind> {
    let ok = !text.is_empty()
        && text.len() <= 32
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-$".contains(c));
    if ok {
        Ok(text.to_string())
    } else {
        Err(bad(format!("bad user name `{text}`")))
    }
}

fn bad(why: String) -> ConfigErrorKind {
    ConfigErrorKind::BadValue(why)
}

/// Port for listens without one, and for the default listens.
pub const DEFAULT_PORT: u16 = 6969;

/// The `-i` address before any `-i`: all interfaces, IPv4 and IPv6.
pub const DEFAULT_IP: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

const USAGE: &str = "\
Usage: ferrotracker [-i ip] [-p port] [-P port] [-r redirect] [-A ip[/bits]] [-f config]
                    [-w whitelist | -b blacklist] [-s livesyncport] [-v] [-h]

Flags are applied in order: -i sets the address for the -p/-P after it, and -f reads its file
at that point, so its listens come between the flags around it.
\t-f config include and execute the config file
\t-i ip     address to bind the next -p/-P to (default: ::, all IPv4 and IPv6 interfaces)
\t-p port   listen for HTTP on this TCP port (may be repeated)
\t-P port   listen for UDP (BEP 15) on this port (may be repeated)
\t-r url    where GET / redirects to (default: none)
\t-A ip[/bits] bless a network: it may read /stats and /metrics, and its X-Forwarded-For
\t          is believed (repeatable)
\t-v        print the version and exit
\t-h        print this help and exit (also --help; --version as -v)
\t-l file   load this statedump at start (after the access list)
\t-d dir    chroot here when started as root (else change directory); files named in
\t          the config are opened inside it
\t-u user   user to become when started as root (default: nobody)
\t-w file   track only the info_hashes listed in this file (reloaded on SIGHUP and
\t          when it changes)
\t-b file   refuse the info_hashes listed in this file (reloaded likewise)
\t-s port   live sync at the last -i address (IPv4; default 0.0.0.0) on this port
If nothing is bound, ferrotracker listens on TCP and UDP port 6969 at the last -i address.

Config file (-f): one `key value` per line; lines starting with # are comments. There are no
inline comments: a # after a value is part of the value. Every bad line is an error, and so
is a number outside its key's bounds (docs/configuration.md lists them).
\tlisten.tcp_udp ADDR       listen on TCP and UDP (ADDR: ip, ip:port, [v6]:port; port 6969)
\tlisten.tcp ADDR           listen on TCP
\tlisten.udp ADDR           listen on UDP
\tlisten.udp.workers N      accepted and ignored (every worker serves every socket)
\ttracker.redirect_url URL  as -r
\ttracker.interval SECS     announce interval (default 1800)
\ttracker.peer_timeout SECS drop peers silent this long (default 2700)
\ttracker.torrent_timeout SECS  drop idle torrents after this long (default 86400)
\ttracker.numwant N         peers returned by default (default 50)
\ttracker.numwant_max N     most peers returned (default 200)
\ttracker.workers N         event loops; 0 = one per CPU core (default 0)
\thttp.keepalive on|off     keep HTTP connections open between requests (default on)
\thttp.idle_timeout SECS    close idle HTTP connections after this long (default 30)
\thttp.request_timeout SECS a request head must arrive within this long of its first
\t          byte (and of the connection), else the connection is closed (default 10)
\thttp.max_connections N    open HTTP connections in all; beyond, new ones get a 503
\t          (default 100000)
\thttp.max_connections_per_ip N  open HTTP connections per client address (IPv6: per /64);
\t          beyond, a 503; 0 = no limit (default 128)
\thttp.max_streams N        full scrapes, tpbs and statedumps in progress at once; beyond,
\t          a 503 (default 64)
\tratelimit.requests_per_second N  per client address (IPv6: per /64), token bucket;
\t          UDP beyond it is dropped unanswered, HTTP gets a 429; 0 = off (default 0)
\tratelimit.burst N         requests an idle address may send at once (default 2x rate)
	ratelimit.max_addresses N addresses tracked at once, least recently used evicted
	          (default 100000); also bounds the addresses tracker.full_scrape_interval remembers
\tratelimit.udp on|off, ratelimit.http on|off  which protocols are limited (default on)
\ttracker.full_scrape on|off  answer GET /scrape without info_hash with every torrent (default on)
\ttracker.full_scrape_interval SECS  one full scrape per address (IPv6: per /64) per SECS;
\t          sooner, a 429; 0 = no limit (default 10)
\taccess.stats ip[/bits]    may read /stats and /metrics (repeatable; default: loopback only)
\taccess.stats_open on|off  everyone may read /stats and /metrics (default off)
\taccess.stats_path PATH    the stats page's path (default stats)
\ttracker.rootdir DIR       as -d
\ttracker.user NAME         as -u
\ttracker.statedump FILE    write the statedump here periodically and at shutdown
\ttracker.statedump_interval SECS  between dumps; 0 = only at shutdown (default 600)
\ttracker.statedump_peers on|off  also dump and load the peers, FILE.peers (default off)
\ttracker.max_torrents N    refuse new torrents beyond N (default 20000000)
\ttracker.max_peers_per_torrent N  answer but don't store new peers beyond N (default 1000000)
\ttracker.max_peers_per_ip N  refuse an announce that would give one address (IPv6: /64)
\t          more than N peers in a torrent; 0 = no limit (default 256)
\ttracker.max_memory_mb N|auto  estimated swarm memory limit in MiB, 0 = none (default
\t          auto: half of physical memory or of the cgroup limit, whichever is smaller)
\taccess.whitelist FILE     as -w
\taccess.blacklist FILE     as -b (one list mode at a time)
\taccess.proxy ip[/bits]    believe X-Forwarded-For from these proxies (repeatable)
\ttracker.allow_ip_param on|off  record announces under their ip= parameter (default off)
\tlivesync.cluster.listen IP[:PORT]  live sync with other nodes (opentracker's cluster
\t          mode: multicast to 224.0.23.5 on this interface; port 9696)
\tlivesync.cluster.node_ip ip[/bits]  accept live-sync packets from these (repeatable; -A too)
\tlivesync.cluster.send_port PORT  multicast destination port (default 9696, as opentracker
\t          whatever port it listens on)
\tlivesync.cluster.peer IP[:PORT]  unicast mode: send to each listed node instead of
\t          multicast (repeatable; not in opentracker; listed nodes are accepted)
\tlivesync.cluster.key HEX  authenticate packets with this shared key (32-128 hex digits;
\t          not in opentracker: opentracker nodes can't join a keyed cluster)
\tlivesync.flush_delay SECS  longest wait before a partly filled packet is sent (default 15)
\taccess.fifo_add FIFO     hashes written to this FIFO, one per line, are added to the
\t          whitelist/blacklist in force (created if missing; a reload of the list forgets them)
\taccess.fifo_delete FIFO  hashes written here are taken off it (even if the file lists them)

Example: ferrotracker -i 127.0.0.1 -p 6969 -P 6969 -f ./opentracker.conf -i 10.1.1.23 -p 2710 -p 80
";

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV6};
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn args(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    fn run(line: &str) -> Config {
        match parse_args(args(line)) {
            Ok(Command::Run(cfg)) => cfg,
            other => panic!("`{line}` gave {other:?}"),
        }
    }

    fn run_err(line: &str) -> ConfigError {
        match parse_args(args(line)) {
            Err(e) => e,
            other => panic!("`{line}` gave {other:?}, wanted an error"),
        }
    }

    fn tcp(addr: &str) -> Listen {
        Listen {
            proto: Proto::Tcp,
            addr: addr.parse().unwrap(),
        }
    }

    fn udp(addr: &str) -> Listen {
        Listen {
            proto: Proto::Udp,
            addr: addr.parse().unwrap(),
        }
    }

    fn text(s: &str) -> Result<Config, ConfigError> {
        let mut cfg = Config::default();
        parse_str(Path::new("test.conf"), s, &mut cfg).map(|()| cfg)
    }

    fn text_err(s: &str) -> ConfigError {
        text(s).expect_err(s)
    }

    /// A config file in the temp dir, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(contents: &str) -> Self {
            static COUNT: AtomicUsize = AtomicUsize::new(0);
            let n = COUNT.fetch_add(1, Ordering::Relaxed);
            let name = format!("ferrotracker-config-test-{}-{n}.conf", std::process::id());
            let path = std::env::temp_dir().join(name);
            std::fs::write(&path, contents).unwrap();
            TempFile(path)
        }

        fn arg(&self) -> &str {
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
        assert_eq!(cfg.interval, 1800);
        assert_eq!(cfg.peer_timeout, 2700);
        assert_eq!(cfg.torrent_timeout, 86400);
        assert_eq!(cfg.numwant_default, 50);
        assert_eq!(cfg.numwant_max, 200);
        assert_eq!(cfg.workers, 0);
        assert_eq!(cfg.redirect_url, None);
        assert!(cfg.http_keepalive);
        assert_eq!(cfg.http_idle_timeout, 30);
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
        assert_eq!(cfg.redirect_url.as_deref(), Some("http://example.org/"));
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
            run("-r https://a.example/x?y=1").redirect_url.as_deref(),
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
        assert_eq!(cfg.redirect_url.as_deref(), Some("http://from-file/"));
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
        assert_eq!(Config::default().access_list, None);
        assert_eq!(
            run("-w /etc/white").access_list,
            list(Mode::White, "/etc/white")
        );
        assert_eq!(
            run("-b black.txt").access_list,
            list(Mode::Black, "black.txt")
        );
        assert_eq!(run("-wa -w b").access_list, list(Mode::White, "b"));
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
            cfg.access_list,
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
            cfg.access_list.map(|a| (a.mode, a.path)),
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
        assert_eq!(cfg.proxy_nets.0.len(), 2);
        assert!(cfg.proxies().contains("10.1.2.3".parse().unwrap()));
        assert!(!cfg.proxies().contains("127.0.0.1".parse().unwrap()));
        assert_eq!(text_err("access.proxy 10.0.0.0/33").key, "access.proxy");
        assert!(Config::default().proxies().is_empty());
        // -A blesses with every permission, proxy included, as opentracker.
        let mut cfg = run("-A 192.168.0.0/16 -p 1");
        assert!(cfg.proxies().contains("192.168.1.1".parse().unwrap()));
        cfg.proxy_nets.push(Net::parse("192.168.0.0/16").unwrap());
        assert_eq!(cfg.proxies().0.len(), 1);

        assert!(!Config::default().allow_ip_param);
        assert!(text("tracker.allow_ip_param on").unwrap().allow_ip_param);
        assert!(!text("tracker.allow_ip_param off").unwrap().allow_ip_param);
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
        let mut ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        parse_file(&f.0, &mut cfg, &mut ip).unwrap();
        assert_eq!(ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
    }

    #[test]
    fn f_without_listens_gets_the_default_listens() {
        let f = TempFile::new("tracker.interval 900\n");
        let cfg = run(&format!("-i 127.0.0.1 -f {}", f.arg()));
        assert_eq!(
            cfg.listen,
            vec![tcp("127.0.0.1:6969"), udp("127.0.0.1:6969")]
        );
        assert_eq!(cfg.interval, 900);
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
        assert_eq!(run(&format!("-f {}", ok.arg())).numwant_default, 300);
        let ok = TempFile::new("tracker.numwant_max 400\ntracker.numwant 300\n");
        assert_eq!(run(&format!("-f {}", ok.arg())).numwant_max, 400);
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
        let cfg = Config {
            interval: 0,
            ..Config::default()
        };
        assert_eq!(cfg.validate().unwrap_err().key, "tracker.interval");
        let cfg = Config {
            http_idle_timeout: 0,
            ..Config::default()
        };
        assert_eq!(cfg.validate().unwrap_err().key, "http.idle_timeout");
    }

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
        let want = Config {
            listen: vec![
                tcp("127.0.0.1:7000"),
                udp("127.0.0.1:7000"),
                tcp("[::1]:7001"),
                udp("0.0.0.0:6969"),
            ],
            interval: 900,
            peer_timeout: 1200,
            torrent_timeout: 3600,
            numwant_default: 30,
            numwant_max: 100,
            workers: 8,
            redirect_url: Some("https://example.org/".to_string()),
            http_keepalive: false,
            http_idle_timeout: 10,
            ..Config::default()
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
        let v6 =
            |ip: &str, port| SocketAddr::V6(SocketAddrV6::new(ip.parse().unwrap(), port, 0, 0));
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
        assert_eq!(cfg.interval, 600);
        assert_eq!(cfg.numwant_default, 7);
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
                .redirect_url
                .as_deref(),
            Some("http://x/#home")
        );
    }

    #[test]
    fn stats_keys_and_blessed_nets() {
        let cfg = run("-p 1");
        assert_eq!(cfg.stats_path, "stats");
        assert!(cfg.full_scrape && !cfg.stats_open);
        assert_eq!(cfg.stats_readers(), Nets::loopback());

        let cfg = run("-A 127.0.0.1 -A 10.0.0.0/8 -p 1");
        assert_eq!(cfg.blessed.0.len(), 2);
        let r = cfg.stats_readers();
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
        assert_eq!(cfg.stats_path, "my_stats");
        assert!(!cfg.full_scrape);
        let r = cfg.stats_readers();
        assert!(r.contains("192.168.4.4".parse().unwrap()) && r.contains("::1".parse().unwrap()));
        assert!(!r.contains("127.0.0.1".parse().unwrap()));

        let cfg = text("access.stats 10.0.0.1\naccess.stats_open on\n").unwrap();
        assert!(cfg.stats_readers().is_empty(), "open: everyone");

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
        let cfg = text(
            "access.fifo_add /run/ot/add\naccess.whitelist /etc/ot/wl\naccess.fifo_delete del\n",
        )
        .unwrap();
        assert_eq!(
            cfg.access_fifo_add.as_deref(),
            Some(Path::new("/run/ot/add"))
        );
        assert_eq!(cfg.access_fifo_delete.as_deref(), Some(Path::new("del")));
        cfg.validate().unwrap();
        // Either FIFO alone is fine too, with either mode.
        let one = text("access.blacklist b\naccess.fifo_delete d").unwrap();
        one.validate().unwrap();
        assert!(one.access_fifo_add.is_none());

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
                d.http_request_timeout,
                d.http_max_connections,
                d.http_max_connections_per_ip
            ),
            (10, 100_000, 128)
        );
        assert_eq!((d.http_max_streams, d.full_scrape_interval), (64, 10));
        assert_eq!(d.ratelimit_per_second, 0, "rate limiting is off by default");
        assert!(d.ratelimit_udp && d.ratelimit_http);
        let cfg = text(
            "http.request_timeout 3\nhttp.max_connections 500\nhttp.max_connections_per_ip 0\n\
             ratelimit.requests_per_second 20\nratelimit.burst 50\nratelimit.max_addresses 9\n\
             ratelimit.udp off\nratelimit.http on\nhttp.max_streams 3\ntracker.full_scrape_interval 0\n",
        )
        .unwrap();
        assert_eq!((cfg.http_max_streams, cfg.full_scrape_interval), (3, 0));
        assert_eq!(
            (
                cfg.http_request_timeout,
                cfg.http_max_connections,
                cfg.http_max_connections_per_ip
            ),
            (3, 500, 0)
        );
        assert_eq!(
            (
                cfg.ratelimit_per_second,
                cfg.ratelimit_burst,
                cfg.ratelimit_max_addresses
            ),
            (20, 50, 9)
        );
        assert!(!cfg.ratelimit_udp && cfg.ratelimit_http);
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
        assert_eq!(cfg.statedump_file, Some(PathBuf::from("/var/lib/ft/state")));
        assert_eq!((cfg.statedump_interval, cfg.statedump_peers), (0, true));
        assert_eq!(cfg.rootdir, Some(PathBuf::from("/srv/ft")));
        assert_eq!(cfg.user.as_deref(), Some("_ft"));
        let cfg = text(
            "tracker.max_torrents 5\ntracker.max_peers_per_torrent 7\ntracker.max_memory_mb 64\ntracker.max_peers_per_ip 9\n",
        )
        .unwrap();
        assert_eq!(
            (
                cfg.max_torrents,
                cfg.max_peers_per_torrent,
                cfg.max_memory,
                cfg.max_peers_per_ip
            ),
            (5, 7, MemoryLimit::Mib(64), 9)
        );
        let d = Config::default();
        assert_eq!((d.max_memory, d.max_peers_per_ip), (MemoryLimit::Auto, 256));
        for (line, want) in [
            ("tracker.max_memory_mb 0", MemoryLimit::Unlimited),
            ("tracker.max_memory_mb auto", MemoryLimit::Auto),
            ("tracker.max_memory_mb 16777216", MemoryLimit::Mib(1 << 24)),
        ] {
            assert_eq!(text(line).unwrap().max_memory, want, "{line}");
        }
        assert_eq!(
            text("tracker.max_peers_per_ip 0").unwrap().max_peers_per_ip,
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
            parse_args(["-l", "dump.txt", "-d", "/tmp", "-u", "nobody"].map(OsString::from))
                .unwrap()
        else {
            panic!("not a run command")
        };
        assert_eq!(cfg.statedump_load, Some(PathBuf::from("dump.txt")));
        assert_eq!(cfg.rootdir, Some(PathBuf::from("/tmp")));
        assert_eq!(cfg.user.as_deref(), Some("nobody"));
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
            (cfg.numwant_default, cfg.workers, cfg.interval),
            (0, 0, 604800)
        );
    }

    #[test]
    fn every_numeric_key_is_bounded_at_parse_and_validate() {
        for b in NUMBERS {
            // The ends are accepted, and fit the field (numwant and numwant_max are also
            // checked against each other: start from the widest pair).
            for n in [b.min, b.max] {
                let line = format!(
                    "tracker.numwant 0\ntracker.numwant_max {}\n{} {n}",
                    NUMWANT_MAX.max, b.key
                );
                let cfg = text(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
                assert_eq!(cfg.validate(), Ok(()), "{line}");
                // validate() checks the field this key set, under this key's name.
                if b != UDP_WORKERS {
                    let got = cfg.numbers().into_iter().find(|(k, _)| *k == b);
                    assert_eq!(got, Some((b, n)), "{}", b.key);
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
        let kept: Vec<Bounds> = Config::default().numbers().map(|(b, _)| b).to_vec();
        let all: Vec<Bounds> = NUMBERS.into_iter().filter(|b| *b != UDP_WORKERS).collect();
        assert_eq!(kept, all, "validate checks every kept numeric key");
    }

    #[test]
    fn validate_repeats_the_maximums() {
        let cfg = Config {
            http_idle_timeout: u32::MAX,
            ..Config::default()
        };
        let e = cfg.validate().unwrap_err();
        assert_eq!(e.key, "http.idle_timeout");
        assert_eq!(
            e.to_string(),
            "http.idle_timeout: must be at most 86400, not 4294967295"
        );
        let cfg = Config {
            max_memory: MemoryLimit::Mib(u64::MAX),
            ..Config::default()
        };
        assert_eq!(cfg.validate().unwrap_err().key, "tracker.max_memory_mb");
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
                    .http_keepalive,
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
        assert_eq!(cfg.interval, 20);
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
        assert_eq!(cfg.interval, 10);
    }

    #[test]
    fn usage_mentions_every_flag_and_key() {
        let u = usage();
        for flag in [
            "-i", "-p", "-P", "-r", "-f", "-v", "-h", "-d", "-u", "-l", "-A", "-w", "-b", "-s",
        ] {
            assert!(u.contains(flag), "{flag}");
        }
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
            "tracker.full_scrape",
            "access.stats",
            "access.stats_open",
            "access.stats_path",
            "access.whitelist",
            "access.blacklist",
            "access.proxy",
            "tracker.allow_ip_param",
            "livesync.cluster.listen",
            "livesync.cluster.node_ip",
            "livesync.cluster.peer",
            "livesync.cluster.key",
            "livesync.cluster.send_port",
            "livesync.flush_delay",
        ] {
            assert!(u.contains(key), "{key}");
        }
        assert!(u.starts_with("Usage: "));
    }

    #[test]
    fn error_is_a_std_error() {
        fn takes(_: &dyn std::error::Error) {}
        takes(&run_err("-x"));
    }
}
