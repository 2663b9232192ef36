//! TLS termination's certificate side: loading a PEM certificate chain and private key
//! (`tls.certificate`, `tls.private_key`), checking that they belong together, the
//! [`rustls::ServerConfig`] every TLS listener shares, and swapping the pair while the server
//! runs.
//!
//! * [`load`] reads and checks one pair; each failure is a [`TlsError`] that names the file.
//! * [`CertResolver`] hands rustls the pair in force at each handshake. [`CertResolver::reload`]
//!   replaces it for the full handshakes that follow (connections already up keep theirs) or, when
//!   the new pair does not load or does not match, leaves the old one in force and says why.
//!   [`CertResolver::reload_if_changed`] is the cheap poll for a periodic tick: two `stat`s, and
//!   a reload only when either file's [`FileStamp`] moved since the last attempt.
//! * [`server_config`] builds the `ServerConfig`: TLS 1.2 and 1.3 with the *ring* provider, ALPN
//!   `http/1.1`, stateless session tickets (keys rotated every 6 hours) and a bounded session-id
//!   cache for TLS 1.2 clients without tickets.
//!
//! Keys: RSA (PKCS#1 or PKCS#8), ECDSA P-256 or P-384 (SEC1 or PKCS#8) and Ed25519 (PKCS#8), as
//! *ring* signs them. Encrypted keys are not read.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock, TryLockError};

use rustls::crypto::ring as provider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

/// Where the certificate chain and its private key are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// PEM: the end-entity certificate first, then the intermediates.
    pub certificate: PathBuf,
    /// PEM: one private key (`PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`).
    pub private_key: PathBuf,
}

/// Why a certificate/key pair was not loaded. Every variant names the file at fault.
#[derive(Debug)]
pub enum TlsError {
    /// The file could not be opened or read.
    Read { path: PathBuf, error: io::Error },
    /// The file is larger than [`MAX_PEM_FILE`]: not a certificate chain or a key.
    TooLarge { path: PathBuf },
    /// A PEM section is malformed (bad base64, a missing END line, ...).
    Pem { path: PathBuf, error: pem::Error },
    /// No `CERTIFICATE` section in the certificate file.
    NoCertificate { path: PathBuf },
    /// No unencrypted private key section in the key file.
    NoPrivateKey { path: PathBuf },
    /// The key is not one the provider can sign with (or its DER is malformed).
    BadPrivateKey { path: PathBuf, error: rustls::Error },
    /// The first (end-entity) certificate does not parse.
    BadCertificate { path: PathBuf, error: rustls::Error },
    /// The private key is not the key of the end-entity certificate.
    KeyMismatch {
        certificate: PathBuf,
        private_key: PathBuf,
    },
    /// The server configuration could not be built (no randomness for the ticket keys).
    Setup(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { path, error } => write!(f, "{}: {error}", path.display()),
            TlsError::TooLarge { path } => write!(
                f,
                "{}: larger than {} bytes, not a PEM certificate chain or key",
                path.display(),
                MAX_PEM_FILE
            ),
            TlsError::Pem { path, error } => write!(f, "{}: bad PEM: {error}", path.display()),
            TlsError::NoCertificate { path } => {
                write!(f, "{}: no CERTIFICATE section", path.display())
            }
            TlsError::NoPrivateKey { path } => write!(
                f,
                "{}: no unencrypted private key (a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY \
                 section)",
                path.display()
            ),
            TlsError::BadPrivateKey { path, error } => write!(
                f,
                "{}: unusable private key (RSA, ECDSA P-256/P-384 and Ed25519 keys are \
                 supported): {error}",
                path.display()
            ),
            TlsError::BadCertificate { path, error } => write!(
                f,
                "{}: the first certificate does not parse: {error}",
                path.display()
            ),
            TlsError::KeyMismatch {
                certificate,
                private_key,
            } => write!(
                f,
                "{}: not the private key of the first certificate in {}",
                private_key.display(),
                certificate.display()
            ),
            TlsError::Setup(error) => write!(f, "TLS set-up: {error}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Read { error, .. } => Some(error),
            TlsError::Pem { error, .. } => Some(error),
            TlsError::BadPrivateKey { error, .. }
            | TlsError::BadCertificate { error, .. }
            | TlsError::Setup(error) => Some(error),
            _ => None,
        }
    }
}

/// Reads `files` and checks that the private key is the first certificate's.
pub fn load(files: &CertFiles) -> Result<CertifiedKey, TlsError> {
    let chain_pem = read_bounded(&files.certificate)?;
    let chain = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Pem {
            path: files.certificate.clone(),
            error,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.certificate.clone(),
        });
    }
    let key_pem = read_bounded(&files.private_key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: files.private_key.clone(),
        },
        error => TlsError::Pem {
            path: files.private_key.clone(),
            error,
        },
    })?;
    let key = provider::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|error| TlsError::BadPrivateKey {
            path: files.private_key.clone(),
            error,
        })?;
    let certified = CertifiedKey::new(chain, key);
    match certified.keys_match() {
        // *ring*'s keys all know their public key, so `Unknown` does not happen with this
        // provider; were it to, the handshake's own signature check would still catch a
        // mismatch (every handshake would fail), as it does in rustls' `CertifiedKey::from_der`.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                certificate: files.certificate.clone(),
                private_key: files.private_key.clone(),
            })
        }
        Err(error) => Err(TlsError::BadCertificate {
            path: files.certificate.clone(),
            error,
        }),
    }
}

/// The identity of a file's current contents, as far as `stat` tells: device, inode, size,
/// modification and status-change times. Replacing the file (a rename, a symlink moved to a new
/// target, as certbot does) changes the inode; rewriting it in place changes the times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    /// The stamp of the file `path` names (following symlinks), or `None` if it can't be
    /// `stat`ed (missing, or a directory on the way is not searchable).
    pub fn of(path: &Path) -> Option<FileStamp> {
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// The certificate/key pair in force, read by rustls at each handshake and replaced by
/// [`reload`](CertResolver::reload). Every client gets this one pair, whatever name it sends
/// (SNI).
#[derive(Debug)]
pub struct CertResolver {
    files: CertFiles,
    current: RwLock<Arc<CertifiedKey>>,
    /// The stamps of both files when they were last read, whether or not that load succeeded,
    /// so that a bad pair is reported once per change, not at every poll.
    attempted: Mutex<[Option<FileStamp>; 2]>,
}

impl CertResolver {
    /// Loads `files` (see [`load`]); the error names the file at fault.
    pub fn new(files: CertFiles) -> Result<CertResolver, TlsError> {
        let first = files.clone();
        CertResolver::first_read_at(files, &first)
    }

    /// As [`new`](CertResolver::new), for a process about to chroot: the pair is read now from
    /// `now`, the same two files as seen from outside the new root, and every reload reads
    /// `files`, their paths inside it.
    pub fn first_read_at(files: CertFiles, now: &CertFiles) -> Result<CertResolver, TlsError> {
        // The same files, so the same stamps from inside the new root: no spurious reload.
        let stamps = stamps(now);
        let key = load(now)?;
        Ok(CertResolver {
            files,
            current: RwLock::new(Arc::new(key)),
            attempted: Mutex::new(stamps),
        })
    }

    /// The files this resolver reads.
    pub fn files(&self) -> &CertFiles {
        &self.files
    }

    /// The pair new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        // A panic while the lock was held could only have been in `Arc::clone` or the plain
        // store in `reload`: the value inside is whole either way.
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reads both files again. On success the new pair serves every full handshake from now on
    /// (connections already up keep the one they started with, and a session resumed from a
    /// ticket or id presents no certificate); on failure the old pair stays in force and the
    /// error names the file at fault.
    pub fn reload(&self) -> Result<(), TlsError> {
        let mut attempted = self
            .attempted
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        self.reload_locked(&mut attempted)
    }

    /// For a periodic tick: `None` when neither file's [`FileStamp`] changed since they were
    /// last read (or another thread is reloading right now), else what [`reload`] returned.
    ///
    /// A pair replaced one file at a time may be caught in between and fail to match; it is
    /// read again when the second file lands, since that changes its stamp.
    ///
    /// [`reload`]: CertResolver::reload
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let mut attempted = match self.attempted.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::WouldBlock) => return None,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
        };
        if stamps(&self.files) == *attempted {
            return None;
        }
        Some(self.reload_locked(&mut attempted))
    }

    fn reload_locked(&self, attempted: &mut [Option<FileStamp>; 2]) -> Result<(), TlsError> {
        // Stamped before reading: a change that lands while the files are read shows up as a
        // changed stamp at the next poll, which reads them again.
        *attempted = stamps(&self.files);
        let key = Arc::new(load(&self.files)?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = key;
        Ok(())
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The configuration every TLS listener shares: TLS 1.3 and 1.2 with the *ring* provider's
/// cipher suites and key exchanges, certificates from `resolver`, ALPN `http/1.1` (a client
/// that offers ALPN without it is refused, as RFC 7301 asks), session resumption by tickets
/// (TLS 1.3 and 1.2) and by session id (TLS 1.2, at most [`SESSION_CACHE_ENTRIES`]), no
/// 0-RTT data (replayable) and no client certificates.
pub fn server_config(resolver: Arc<CertResolver>) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Setup)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
    config.ticketer = provider::Ticketer::new().map_err(TlsError::Setup)?;
    // A tracker client resumes at most once per announce interval, and each resumed handshake
    // brings a fresh ticket: one is enough, and each costs an encryption per handshake.
    config.send_tls13_tickets = 1;
    Ok(Arc::new(config))
}

/// The SHA-256 of a certificate's DER, as `openssl x509 -fingerprint -sha256` prints it (without
/// the colons): what a log line shows so an operator can tell which certificate is in force.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    ring::digest::digest(&ring::digest::SHA256, cert)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// The most a certificate or key file may hold. A chain of a few certificates is a few KiB;
/// the bound keeps a misnamed file (a log, a device) from being read whole.
pub const MAX_PEM_FILE: u64 = 1 << 20;

/// TLS 1.2 sessions remembered by id, for clients that don't take tickets; the oldest are
/// forgotten beyond this (a few hundred bytes each).
pub const SESSION_CACHE_ENTRIES: usize = 1024;

fn stamps(files: &CertFiles) -> [Option<FileStamp>; 2] {
    [
        FileStamp::of(&files.certificate),
        FileStamp::of(&files.private_key),
    ]
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, TlsError> {
    let read_err = |error| TlsError::Read {
        path: path.to_path_buf(),
        error,
    };
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| f.take(MAX_PEM_FILE + 1).read_to_end(&mut bytes))
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(TlsError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;
