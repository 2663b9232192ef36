//! Configuration: one typed tree ([`Config`]) of per-component sections, filled from
//! opentracker's config file format and command-line flags plus ferrotracker's own keys.
//!
//! Each section goes whole to the component that uses it: [`StoreConfig`] to the swarm store,
//! [`RateConfig`] to the rate limiter, [`TrackerConfig`], [`StatsConfig`], [`DashboardConfig`]
//! and [`AccessConfig`] to the request handlers ([`crate::Tracker::new`]), [`HttpConfig`] and [`ProcessConfig`] to
//! the server, [`StatedumpConfig`] and [`LiveSyncConfig`] to their threads. Every default is
//! written once, in the sections' `Default`; every key once, in the table in [`keys`], which
//! also holds each numeric key's bounds and its help text, and which `-h` and
//! `--print-config` print from.
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
//! This module only parses: it opens no sockets and binds nothing.

mod error;
mod flags;
mod keys;
mod livesync;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_keys;
mod values;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

pub use error::{ConfigError, ConfigErrorKind};
pub use ferrotracker_swarm::{MemoryLimit, StoreConfig};
pub use flags::{parse_args, usage, Command};
pub use keys::{numbers, parse_file, parse_str, print};
pub use livesync::{LiveSyncConfig, LIVESYNC_PORT};
pub use values::Bounds;

pub use ferrotracker_proto::forwarded::ProxyHeader;

use crate::access::Mode;
use crate::client_ip;
use crate::nets::{Net, Nets};
pub use crate::ratelimit::RateConfig;

/// Transport of a listening socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    /// HTTP announces and scrapes.
    Tcp,
    /// BEP 15 announces and scrapes.
    Udp,
    /// HTTP announces and scrapes over TLS (`listen.tls`, with the [`TlsConfig`] pair).
    Tls,
}

/// One socket to bind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    pub proto: Proto,
    /// An IPv6 unspecified address (`::`) means dual stack: the server binds it with
    /// `IPV6_V6ONLY` off, as opentracker (libowfat) does.
    pub addr: SocketAddr,
}

/// Everything the server needs to start: one section per component.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Config {
    /// Sockets to bind, in the order given (`listen.*`, `-p`, `-P`). [`parse_args`] fills in
    /// the default (TCP and UDP on port 6969 at the last `-i` address) when flags and files
    /// bound nothing; [`Config::default`] leaves it empty.
    pub listen: Vec<Listen>,
    pub process: ProcessConfig,
    pub tracker: TrackerConfig,
    pub store: StoreConfig,
    pub http: HttpConfig,
    pub ratelimit: RateConfig,
    pub access: AccessConfig,
    pub stats: StatsConfig,
    pub dashboard: DashboardConfig,
    pub statedump: StatedumpConfig,
    pub livesync: LiveSyncConfig,
    pub webtorrent: WebTorrentConfig,
    pub tls: TlsConfig,
    pub log: LogConfig,
}

/// What the server writes to stderr. `RUST_LOG`, when set, overrides `level` (the server reads
/// it; this module reads no environment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: LogLevel,
}

/// How each log line is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, message and the event's fields.
    Json,
}

/// The least severe events that are logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    Error,
    Warn,
    /// Start, stop, reloads and once-a-minute summaries; nothing per request.
    #[default]
    Info,
    Debug,
    Trace,
}

impl LogFormat {
    const ALL: [LogFormat; 2] = [LogFormat::Text, LogFormat::Json];

    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }

    pub fn from_name(name: &str) -> Option<LogFormat> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl LogLevel {
    const ALL: [LogLevel; 5] = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];

    /// As `RUST_LOG` and `tracing` spell it.
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    pub fn from_name(name: &str) -> Option<LogLevel> {
        Self::ALL.into_iter().find(|l| l.name() == name)
    }
}

/// The certificate and key the `listen.tls` sockets present. Both files are read before the
/// privilege drop (so a key only root may read works) and again, by the same path, from
/// inside `process.rootdir` when they are reloaded (SIGHUP, or a change on disk).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// PEM certificate chain, end-entity certificate first.
    pub certificate: Option<PathBuf>,
    /// PEM private key of the end-entity certificate.
    pub private_key: Option<PathBuf>,
}

/// The process: threads, root directory, user.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ProcessConfig {
    /// Event loops (each serves every socket); 0 = one per CPU core.
    pub workers: usize,
    /// chroot directory when started as root, else the directory to change to. Files named
    /// in the config (access lists, statedumps) are opened after it, relative to it, as
    /// opentracker opens them.
    pub rootdir: Option<PathBuf>,
    /// User to switch to when started as root (`None`: `nobody`).
    pub user: Option<String>,
}

/// Announce and scrape replies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Base announce interval in seconds; replies jitter it by ±10% as opentracker does.
    pub interval: u32,
    /// Peers returned when the client does not ask for a number.
    pub numwant_default: u32,
    /// Most peers returned whatever the client asks.
    pub numwant_max: u32,
    /// Where `GET /` redirects to.
    pub redirect_url: Option<String>,
    /// Answer full scrapes (`GET /scrape` without a query).
    pub full_scrape: bool,
    /// Seconds an address (IPv6: a /64) waits between full scrapes, 0 = no limit; sooner, a
    /// 429 (opentracker's `WANT_MODEST_FULLSCRAPES` waits 300 s).
    pub full_scrape_interval: u32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            interval: 1800,
            numwant_default: 50,
            numwant_max: 200,
            redirect_url: None,
            full_scrape: true,
            full_scrape_interval: 10,
        }
    }
}

/// HTTP connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    /// Serve more than one request per connection.
    pub keepalive: bool,
    /// Seconds a connection may sit idle (opentracker's `OT_CLIENT_TIMEOUT`).
    pub idle_timeout: u32,
    /// Seconds from the first byte of a request head to its end (and from accept to the first
    /// request): slow, byte-at-a-time clients are closed by it.
    pub request_timeout: u32,
    /// Open connections in the whole process; beyond, new ones get a 503 and are closed.
    pub max_connections: u32,
    /// Open connections per client address (IPv6: per /64), 0 = no limit.
    pub max_connections_per_ip: u32,
    /// Streamed replies (full scrapes, `tpbs`, `statedump`) in progress at once in the whole
    /// process; beyond, a 503. Each holds a bounded amount (about 0.5 MiB with gzip), so this
    /// bounds their memory and the workers' time they take.
    pub max_streams: u32,
    /// Connections from trusted proxies (`access.proxy`, `-A`) begin with a PROXY protocol
    /// header (HAProxy's, version 1 or 2) that names the client; other connections may not.
    pub proxy_protocol: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            keepalive: true,
            idle_timeout: 30,
            request_timeout: 10,
            max_connections: 100_000,
            max_connections_per_ip: 128,
            max_streams: 64,
            proxy_protocol: false,
        }
    }
}

/// Who may announce and whose word on client addresses is taken.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AccessConfig {
    /// The access list (`-w`/`-b`; one mode at a time, as opentracker is built with one or
    /// the other). Opened after `rootdir`.
    pub list: Option<AccessFile>,
    /// Dynamic access lists: FIFOs whose lines add hashes to / delete hashes from the list in
    /// force (they need an access list). Created if missing, opened after `rootdir`.
    pub fifo_add: Option<PathBuf>,
    pub fifo_delete: Option<PathBuf>,
    /// Proxies whose client-address header (`proxy_header`) is believed; `blessed` nets are trusted too
    /// ([`Config::client_ip`]).
    pub proxies: Nets,
    /// The request header that carries the client address from trusted proxies.
    pub proxy_header: ProxyHeader,
    /// Record announces under the `ip=` query parameter (off: any client could otherwise
    /// announce someone else's address).
    pub allow_ip_param: bool,
    /// Nets blessed with every permission, as opentracker's `-A`: they may read stats, are
    /// trusted proxies, and are live-sync nodes.
    pub blessed: Nets,
}

/// An access-list file and what it means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessFile {
    pub mode: Mode,
    pub path: PathBuf,
}

/// The `/stats` and `/metrics` pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsConfig {
    /// Stats page path without the leading '/'.
    pub path: String,
    /// Nets that may read the pages (with `blessed`: [`Config::stats_readers`]).
    pub readers: Nets,
    /// Let everyone read them.
    pub open: bool,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            path: "stats".to_string(),
            readers: Nets::default(),
            open: false,
        }
    }
}

/// The live dashboard (`/dashboard`, read as `/stats` is): a ring of `samples` samples of the
/// counters, one every `interval` seconds ([`crate::stats::dashboard`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DashboardConfig {
    /// Serve `/dashboard` and `/dashboard.json` and keep the ring.
    pub enabled: bool,
    /// Seconds between samples.
    pub interval: u32,
    /// Samples the charts show: `samples * interval` seconds of history, in memory allocated
    /// once at start.
    pub samples: u32,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            enabled: true,
            interval: 5,
            samples: 720,
        }
    }
}

/// WebTorrent trackers: browsers announcing over a WebSocket (`ws://HOST:PORT/announce`, and
/// `wss://` on TLS listens), whose WebRTC offers and answers the tracker relays
/// ([`crate::webtorrent`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebTorrentConfig {
    /// Accept WebSocket upgrades on the HTTP listens.
    pub enabled: bool,
    /// Announce interval sent to WebSocket clients, in seconds (jittered by ±10% as HTTP's).
    /// Shorter than `tracker.interval`: a browser meets new peers only through the offers of
    /// announces, its own and others' (the reference server sends a fifth of its HTTP interval,
    /// 2 minutes).
    pub interval: u32,
    /// Seconds without a message from the client after which the server closes a WebSocket
    /// connection (control frames do not count). A live client announces every `interval`,
    /// so it must be longer than the longest jittered interval ([`Config::validate`]).
    pub idle_timeout: u32,
    /// Offers of one announce relayed to other peers; later ones are ignored.
    pub max_offers: usize,
    /// Largest message accepted, in bytes; a larger one is refused with an error.
    pub max_message: usize,
    /// Peers (a torrent and a peer_id) one connection may hold: the reference client shares one
    /// connection per tracker among all its torrents, and among the clients of one process;
    /// one more is refused. Bounds each connection's state and what it can hold in the store.
    pub max_peers_per_connection: usize,
    /// Bytes a connection may have waiting to be sent; past it, every message for it (reply or
    /// relay) is dropped and counted, until its client has read some. A client that reads
    /// slowly gets the older messages rather than making the server queue without bound.
    pub max_backlog: usize,
    /// Seconds without any frame from the client after which the server sends a ping (which
    /// keeps NAT and proxy state alive and shows whether the client is still there).
    pub ping_after: u32,
    /// Offers relayed to one connection that it may answer, at most: the most recent ones
    /// within the answer window (see [`crate::webtorrent`]); 16 bytes each, only as many as
    /// the connection needs.
    pub offers_remembered: usize,
}

impl Default for WebTorrentConfig {
    fn default() -> Self {
        WebTorrentConfig {
            enabled: true,
            interval: 120,
            idle_timeout: 300,
            max_offers: 10,
            max_message: 64 * 1024,
            max_peers_per_connection: 64,
            max_backlog: 256 * 1024,
            ping_after: 60,
            offers_remembered: 1024,
        }
    }
}

impl WebTorrentConfig {
    /// The longest interval a reply may carry (the base plus its 10% jitter).
    pub fn longest_interval(&self) -> u32 {
        self.interval.saturating_add(self.interval / 10)
    }
}

/// Who may read the stats pages, as the request handlers check it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsReaders {
    /// Empty = everyone.
    pub nets: Nets,
    /// The nets were configured (`access.stats`, `-A`), not the loopback default.
    pub explicit: bool,
}

/// The statedump: opentracker's `-l` and the periodic dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatedumpConfig {
    /// Loaded at start, after the access list (so nothing it refuses comes back).
    pub load: Option<PathBuf>,
    /// Written periodically and at shutdown.
    pub file: Option<PathBuf>,
    /// Seconds between dumps to `file`, 0 = only at shutdown.
    pub interval: u32,
    /// Also dump and load the peers (`FILE.peers`).
    pub peers: bool,
}

impl Default for StatedumpConfig {
    fn default() -> Self {
        StatedumpConfig {
            load: None,
            file: None,
            interval: 600,
            peers: false,
        }
    }
}

impl Config {
    /// Who may read `/stats` and `/metrics`: everyone with `access.stats_open on` (an empty
    /// list), else the `access.stats` and `-A` nets, else (none configured) loopback only.
    pub fn stats_readers(&self) -> StatsReaders {
        let explicit = !self.stats.readers.is_empty() || !self.access.blessed.is_empty();
        let nets = if self.stats.open {
            Nets::default()
        } else if explicit {
            join(&self.stats.readers, &self.access.blessed)
        } else {
            Nets::loopback()
        };
        StatsReaders { nets, explicit }
    }

    /// Where HTTP announces take the client address from: the `access.proxy` and `-A` nets'
    /// headers, and `ip=` when allowed.
    pub fn client_ip(&self) -> client_ip::Rules {
        client_ip::Rules {
            proxies: join(&self.access.proxies, &self.access.blessed),
            allow_ip_param: self.access.allow_ip_param,
            header: self.access.proxy_header,
        }
    }

    /// Whose live-sync packets are accepted: `livesync.cluster.node_ip` and `-A` nets
    /// (opentracker's -A grants every permission) and the unicast peers.
    pub fn livesync_nodes(&self) -> Nets {
        let mut n = join(&self.livesync.nodes, &self.access.blessed);
        for p in &self.livesync.peers {
            n.push(Net::new(p.ip(), if p.is_ipv4() { 32 } else { 128 }));
        }
        n
    }

    /// Checks what no single line can (`tracker.numwant <= tracker.numwant_max`, FIFOs need a
    /// list, live sync's keys need a listen), and repeats every numeric key's bounds for
    /// configs built in code. [`parse_args`] calls it last.
    pub fn validate(&self) -> Result<(), ConfigError> {
        keys::check_numbers(self)?;
        if self.tracker.numwant_default > self.tracker.numwant_max {
            let why = format!(
                "{} is more than tracker.numwant_max ({})",
                self.tracker.numwant_default, self.tracker.numwant_max
            );
            return Err(ConfigError::general("tracker.numwant", values::bad(why)));
        }
        let a = &self.access;
        for (key, fifo) in [
            ("access.fifo_add", &a.fifo_add),
            ("access.fifo_delete", &a.fifo_delete),
        ] {
            if fifo.is_some() && a.list.is_none() {
                return Err(ConfigError::general(
                    key,
                    values::bad(
                        "a dynamic access list edits the whitelist or blacklist: set \
                         access.whitelist or access.blacklist (-w/-b) too"
                            .into(),
                    ),
                ));
            }
        }
        if let (Some(add), Some(delete)) = (&a.fifo_add, &a.fifo_delete) {
            if add == delete {
                return Err(ConfigError::general(
                    "access.fifo_delete",
                    values::bad(format!(
                        "{} is access.fifo_add's FIFO too: each needs its own",
                        delete.display()
                    )),
                ));
            }
        }
        self.livesync.validate()?;
        self.validate_webtorrent()?;
        self.validate_tls()
    }

    /// The idle timeout must outlast the longest announce interval, or live clients are cut.
    fn validate_webtorrent(&self) -> Result<(), ConfigError> {
        let ws = &self.webtorrent;
        if ws.idle_timeout <= ws.longest_interval() {
            return Err(ConfigError::general(
                "webtorrent.idle_timeout",
                values::bad(format!(
                    "{} would close live clients: it must be more than webtorrent.interval \
                     ({}) and its 10% jitter, {} s",
                    ws.idle_timeout,
                    ws.interval,
                    ws.longest_interval()
                )),
            ));
        }
        Ok(())
    }

    /// `listen.tls` needs both files, and the files need a `listen.tls`.
    fn validate_tls(&self) -> Result<(), ConfigError> {
        let listens = self.listen.iter().any(|l| l.proto == Proto::Tls);
        let t = &self.tls;
        if listens {
            for (key, file) in [
                ("tls.certificate", &t.certificate),
                ("tls.private_key", &t.private_key),
            ] {
                if file.is_none() {
                    return Err(ConfigError::general(
                        key,
                        values::bad(
                            "listen.tls needs a certificate and its private key: set \
                             tls.certificate and tls.private_key"
                                .into(),
                        ),
                    ));
                }
            }
        } else if let Some(key) = [
            ("tls.certificate", &t.certificate),
            ("tls.private_key", &t.private_key),
        ]
        .iter()
        .find_map(|(key, file)| file.is_some().then_some(*key))
        {
            return Err(ConfigError::general(
                key,
                values::bad("no listen.tls to serve it on: add a listen.tls address".into()),
            ));
        }
        Ok(())
    }
}

/// Both lists in one.
fn join(a: &Nets, b: &Nets) -> Nets {
    let mut n = a.clone();
    for net in &b.0 {
        n.push(*net);
    }
    n
}

/// Port for listens without one, and for the default listens.
pub const DEFAULT_PORT: u16 = 6969;

/// Port for `listen.tls` addresses without one.
pub const DEFAULT_TLS_PORT: u16 = 443;

/// The `-i` address before any `-i`: all interfaces, IPv4 and IPv6.
pub const DEFAULT_IP: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
