//! What a bad flag, config line or configuration is reported as.

use std::fmt;
use std::path::PathBuf;

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
    pub(super) fn flag(flag: &str, kind: ConfigErrorKind) -> Self {
        ConfigError {
            file: None,
            line: 0,
            key: flag.to_string(),
            kind,
        }
    }

    /// A fault of the whole configuration, or of a key checked after parsing.
    pub fn general(key: &str, kind: ConfigErrorKind) -> Self {
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
