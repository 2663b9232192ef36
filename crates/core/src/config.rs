//! Configuration: opentracker's config file format and command-line flags, plus ferrotracker's own keys.
//!
//! Flags and config-file lines are applied strictly in order, as opentracker does (spec §1):
//! `-i` sets the address that the *following* `-p`/`-P` bind to, and `-f` reads its file at the
//! point where it appears, so the file's listens land between the flags around it. If nothing
//! was bound at the end, ferrotracker listens on TCP and UDP port 6969 at the last `-i` address.
//!
//! Where opentracker merely warns and carries on (unknown key, unparsable line, unreadable file)
//! ferrotracker stops with an error naming the file, line and key: a tracker that silently runs
//! with half its configuration is worse than one that does not start. Features that a later
//! release delivers (access lists, privilege drop, statedumps, live sync, …) are recognised and
//! refused with [`ConfigErrorKind::NotSupportedYet`] rather than ignored.
//!
//! This module only parses: it opens no sockets and binds nothing; the server does that with
//! [`Config::listen`] afterwards.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

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
        }
    }
}

impl Config {
    /// Checks what no single line can: `tracker.numwant <= tracker.numwant_max`, and repeats the
    /// per-key minimums for configs built in code. [`parse_args`] calls it last.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let at_least_one = [
            ("tracker.interval", self.interval),
            ("tracker.peer_timeout", self.peer_timeout),
            ("tracker.torrent_timeout", self.torrent_timeout),
            ("tracker.numwant_max", self.numwant_max),
            ("http.idle_timeout", self.http_idle_timeout),
        ];
        for (key, value) in at_least_one {
            if value < 1 {
                return Err(ConfigError::general(
                    key,
                    ConfigErrorKind::BadValue(too_small(value, 1)),
                ));
            }
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
        Ok(())
    }
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq)]
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
/// it: every `listen.*` line names its own address (spec §1.2), so an `-i` before `-f` does not
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
    /// An opentracker feature that a later ferrotracker release delivers; names the feature.
    NotSupportedYet(&'static str),
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
            ConfigErrorKind::NotSupportedYet(feature) => {
                write!(f, "not supported yet ({feature} arrive in a later release)")
            }
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
    if let Some(feature) = unsupported_flag(flag) {
        return Err(ConfigErrorKind::NotSupportedYet(feature));
    }
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
            parse_number::<usize>(&need(value)?, 0)?;
        }
        "tracker.redirect_url" => cfg.redirect_url = Some(parse_url(&need(value)?)?),
        "tracker.interval" => cfg.interval = parse_number(&need(value)?, 1)?,
        "tracker.peer_timeout" => cfg.peer_timeout = parse_number(&need(value)?, 1)?,
        "tracker.torrent_timeout" => cfg.torrent_timeout = parse_number(&need(value)?, 1)?,
        "tracker.numwant" => cfg.numwant_default = parse_number(&need(value)?, 0)?,
        "tracker.numwant_max" => cfg.numwant_max = parse_number(&need(value)?, 1)?,
        "tracker.workers" => cfg.workers = parse_number(&need(value)?, 0)?,
        "http.keepalive" => cfg.http_keepalive = parse_bool(&need(value)?)?,
        "http.idle_timeout" => cfg.http_idle_timeout = parse_number(&need(value)?, 1)?,
        "access.whitelist" | "access.blacklist" | "access.fifo_add" | "access.fifo_delete" => {
            return Err(ConfigErrorKind::NotSupportedYet(FEATURE_ACCESS_LISTS))
        }
        "access.stats" => return Err(ConfigErrorKind::NotSupportedYet(FEATURE_BLESSED)),
        "access.stats_path" => return Err(ConfigErrorKind::NotSupportedYet(FEATURE_STATS_PATH)),
        "access.proxy" => return Err(ConfigErrorKind::NotSupportedYet(FEATURE_PROXY)),
        "livesync.cluster.listen" | "livesync.cluster.node_ip" => {
            return Err(ConfigErrorKind::NotSupportedYet(FEATURE_LIVESYNC))
        }
        "tracker.rootdir" | "tracker.user" => {
            return Err(ConfigErrorKind::NotSupportedYet(FEATURE_PRIVDROP))
        }
        "batchsync.cluster.admin_ip" => return Err(ConfigErrorKind::NeverImplemented),
        _ => return Err(ConfigErrorKind::UnknownKey),
    }
    Ok(())
}

/// Flags recognised from opentracker but not delivered yet, with the feature they belong to.
fn unsupported_flag(flag: char) -> Option<&'static str> {
    match flag {
        'd' | 'u' => Some(FEATURE_PRIVDROP),
        'l' => Some(FEATURE_STATEDUMP),
        'A' => Some(FEATURE_BLESSED),
        'w' | 'b' => Some(FEATURE_ACCESS_LISTS),
        's' => Some(FEATURE_LIVESYNC),
        _ => None,
    }
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

/// A decimal number of at least `min`.
fn parse_number<T>(text: &str, min: T) -> Result<T, ConfigErrorKind>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!("bad number `{text}`")));
    }
    let n: T = text
        .parse()
        .map_err(|_| bad(format!("number `{text}` is too large")))?;
    if n < min {
        return Err(bad(too_small(n, min)));
    }
    Ok(n)
}

fn too_small<T: fmt::Display>(n: T, min: T) -> String {
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

fn bad(why: String) -> ConfigErrorKind {
    ConfigErrorKind::BadValue(why)
}

/// Port for listens without one, and for the default listens.
pub const DEFAULT_PORT: u16 = 6969;

/// The `-i` address before any `-i`: all interfaces, IPv4 and IPv6.
pub const DEFAULT_IP: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

const FEATURE_ACCESS_LISTS: &str = "access lists";
const FEATURE_BLESSED: &str = "blessed networks";
const FEATURE_STATS_PATH: &str = "custom stats paths";
const FEATURE_PROXY: &str = "trusted proxies";
const FEATURE_LIVESYNC: &str = "live-sync clusters";
const FEATURE_PRIVDROP: &str = "chroot and user switching";
const FEATURE_STATEDUMP: &str = "statedumps";

const USAGE: &str = "\
Usage: ferrotracker [-i ip] [-p port] [-P port] [-r redirect] [-f config] [-v] [-h]

Flags are applied in order: -i sets the address for the -p/-P after it, and -f reads its file
at that point, so its listens come between the flags around it.
\t-f config include and execute the config file
\t-i ip     address to bind the next -p/-P to (default: ::, all IPv4 and IPv6 interfaces)
\t-p port   listen for HTTP on this TCP port (may be repeated)
\t-P port   listen for UDP (BEP 15) on this port (may be repeated)
\t-r url    where GET / redirects to (default: none)
\t-v        print the version and exit
\t-h        print this help and exit (also --help; --version as -v)
\t-d dir, -u user, -l statefile, -A ip[/bits], -w whitelist, -b blacklist, -s port:
\t          opentracker flags that are recognised but not supported yet
If nothing is bound, ferrotracker listens on TCP and UDP port 6969 at the last -i address.

Config file (-f): one `key value` per line; lines starting with # are comments. There are no
inline comments: a # after a value is part of the value. Every bad line is an error.
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
\taccess.*, livesync.*, tracker.rootdir, tracker.user: not supported yet

Example: ferrotracker -i 127.0.0.1 -p 6969 -P 6969 -f ./opentracker.conf -i 10.1.1.23 -p 2710 -p 80
";
