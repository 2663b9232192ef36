//! Command-line flags: opentracker's, applied left to right, plus `--print-config` and
//! `--check-config`.

use std::ffi::{OsStr, OsString};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use super::keys::{livesync_flag_ip, parse_file, port_error, set_access_list, usage_keys};
use super::values::{bad, parse_net, parse_path, parse_port, parse_url, parse_user};
use super::{Config, ConfigError, ConfigErrorKind, Listen, Proto, DEFAULT_IP, DEFAULT_PORT};
use crate::access::Mode;

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // made once per process; boxing buys nothing
pub enum Command {
    Run(Config),
    /// `--print-config`: print the configuration in force as a config file ([`super::print`])
    /// and exit 0.
    PrintConfig(Config),
    /// `--check-config`: check the configuration and the files it names, bind nothing, and
    /// exit 0 if it would start (as `nginx -t`).
    CheckConfig(Config),
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
    let mut mode: fn(Config) -> Command = Command::Run;
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
            "--print-config" => {
                mode = Command::PrintConfig;
                continue;
            }
            "--check-config" => {
                mode = Command::CheckConfig;
                continue;
            }
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
                    parse_file(Path::new(&value), &mut cfg)?;
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
        for proto in [Proto::Tcp, Proto::Udp] {
            cfg.listen.push(Listen { proto, addr });
        }
    }
    cfg.validate()?;
    Ok(mode(cfg))
}

/// One flag other than `-f` with its argument; `ip` is the `-i` state.
fn apply_flag(
    flag: char,
    value: &OsStr,
    cfg: &mut Config,
    ip: &mut IpAddr,
) -> Result<(), ConfigErrorKind> {
    let Some(value) = value.to_str() else {
        return Err(bad("not valid UTF-8".to_string()));
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
            let port = parse_port(value).map_err(|why| port_error(value, why))?;
            let proto = if flag == 'p' { Proto::Tcp } else { Proto::Udp };
            cfg.listen.push(Listen {
                proto,
                addr: SocketAddr::new(*ip, port),
            });
        }
        'r' => cfg.tracker.redirect_url = Some(parse_url(value)?),
        'A' => cfg.access.blessed.push(parse_net(value)?),
        'l' => cfg.statedump.load = Some(parse_path(value)?),
        'd' => cfg.process.rootdir = Some(parse_path(value)?),
        'u' => cfg.process.user = Some(parse_user(value)?),
        'w' => set_access_list(cfg, Mode::White, value)?,
        'b' => set_access_list(cfg, Mode::Black, value)?,
        's' => {
            let port = parse_port(value).map_err(|_| bad(format!("bad port `{value}`")))?;
            let addr = SocketAddr::new(livesync_flag_ip(*ip), port);
            cfg.livesync.set_listen(addr)?;
        }
        _ => unreachable!("parse_args only passes flags that take a value"),
    }
    Ok(())
}

/// Usage and help text, opentracker-like, covering every flag and config key (with the
/// defaults of [`Config::default`]).
pub fn usage() -> String {
    format!("{FLAGS}{}{EXAMPLE}", usage_keys())
}

const FLAGS: &str = "\
Usage: ferrotracker [-i ip] [-p port] [-P port] [-r redirect] [-A ip[/bits]] [-f config]
                    [-w whitelist | -b blacklist] [-s livesyncport] [-v] [-h]
                    [--print-config] [--check-config]

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
\t--print-config  print the configuration in force, every key, as a config file; exit
\t--check-config  check the configuration and the files it names without binding
\t          anything; exit 0 if it would start, else 1 with the reason
If nothing is bound, ferrotracker listens on TCP and UDP port 6969 at the last -i address.

Config file (-f): one `key value` per line; lines starting with # are comments. There are no
inline comments: a # after a value is part of the value. Every bad line is an error, and so
is a number outside its key's bounds (docs/configuration.md lists them).
";

const EXAMPLE: &str = "
Example: ferrotracker -i 127.0.0.1 -p 6969 -P 6969 -f ./opentracker.conf -i 10.1.1.23 -p 2710 -p 80
";
