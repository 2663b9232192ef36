//! The log on stderr: `log.format` (text or JSON lines) and `log.level`, with `RUST_LOG`
//! overriding the level when set, and text fitted to where stderr goes: colours only on a
//! terminal, and no timestamp when stderr is systemd's journal, which stamps each line itself.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use ferrotracker_core::config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Call once, before anything logs.
///
/// The filter is `RUST_LOG` when it is set and not empty (so `RUST_LOG=debug` works as it
/// always has, and per-module directives such as `ferrotracker::livesync=trace` are
/// possible), else `log.level`. A `RUST_LOG` that does not parse is logged and `log.level`
/// is used.
pub fn init(cfg: &LogConfig) {
    let env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    let (filter, bad_env) = match env.as_deref().map(EnvFilter::try_new) {
        Some(Ok(f)) => (f, None),
        Some(Err(e)) => (EnvFilter::new(cfg.level.name()), Some(e)),
        None => (EnvFilter::new(cfg.level.name()), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match cfg.format {
        // Message and fields at the top level, beside timestamp, level and target, where log
        // shippers look for them.
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text if stderr_is_journal() => builder.with_ansi(false).without_time().init(),
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    if let Some(e) = bad_env {
        tracing::warn!(
            "RUST_LOG ignored ({e}); log.level {} applies",
            cfg.level.name()
        );
    }
}

/// Whether stderr is the stream systemd connected to the journal: `JOURNAL_STREAM` holds its
/// `device:inode`, and is inherited by children whose stderr may go elsewhere, so it is
/// compared with stderr itself (as systemd.exec(5) advises).
fn stderr_is_journal() -> bool {
    let Some(var) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    match std::fs::File::from(fd).metadata() {
        Ok(m) => names(&var, m.dev(), m.ino()),
        Err(_) => false,
    }
}

/// Whether a `JOURNAL_STREAM` value (`DEVICE:INODE`, decimal) names this device and inode.
fn names(journal_stream: &OsStr, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = journal_stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    d.parse() == Ok(dev) && i.parse() == Ok(ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_stream_names_one_device_and_inode() {
        let n = |s: &str| names(OsStr::new(s), 8, 123_456);
        assert!(n("8:123456"));
        assert!(!n("8:123457"));
        assert!(!n("9:123456"));
        assert!(!n("8"));
        assert!(!n(""));
        assert!(!n("8:123456:1"));
        assert!(!n(" 8:123456"));
    }
}
