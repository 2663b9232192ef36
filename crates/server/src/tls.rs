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
        let stamps = stamps(&files);
        let key = load(&files)?;
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
mod tests {
    use super::*;

    use std::io::Write;
    use std::net::{IpAddr, Ipv4Addr};
    use std::process::Command;
    use std::sync::atomic::{AtomicU32, Ordering};

    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    use rustls::client::{Resumption, Tls12Resumption};
    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, HandshakeKind, RootCertStore, ServerConnection};

    /// A directory for one test's files, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new() -> Dir {
            static N: AtomicU32 = AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "ferrotracker-tls-unit-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }

        fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
            let p = self.0.join(name);
            std::fs::write(&p, contents).expect("write");
            p
        }

        /// Writes through a temporary name and renames, as a certificate renewal does.
        fn replace(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
            let tmp = self.write(&format!("{name}.new"), contents);
            let p = self.0.join(name);
            std::fs::rename(tmp, &p).expect("rename");
            p
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A test CA (ECDSA P-256) that signs leaf certificates for 127.0.0.1.
    struct Ca {
        issuer: Issuer<'static, KeyPair>,
        pem: String,
    }

    impl Ca {
        fn new() -> Ca {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("CA key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            let pem = params.self_signed(&key).expect("CA cert").pem();
            Ca {
                issuer: Issuer::new(params, key),
                pem,
            }
        }

        /// A certificate for 127.0.0.1 over the key in `key_pem` (PKCS#8).
        fn leaf(&self, key_pem: &str) -> String {
            let key = KeyPair::from_pem(key_pem).expect("leaf key");
            let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
            params.subject_alt_names = vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
            params.signed_by(&key, &self.issuer).expect("leaf").pem()
        }

        /// A client that trusts this CA, speaking `versions`.
        fn client(&self, versions: &[&'static rustls::SupportedProtocolVersion]) -> ClientConfig {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(self.pem.as_bytes()) {
                roots.add(c.expect("CA pem")).expect("CA root");
            }
            ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
                .with_protocol_versions(versions)
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth()
        }
    }

    fn p256_pem() -> String {
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .expect("key")
            .serialize_pem()
    }

    /// A key pair and its certificate, written as `cert.pem` and `key.pem` in `dir`.
    fn pair(dir: &Dir, ca: &Ca) -> CertFiles {
        let key = p256_pem();
        CertFiles {
            certificate: dir.write("cert.pem", ca.leaf(&key)),
            private_key: dir.write("key.pem", key),
        }
    }

    /// Runs the openssl command-line tool (RSA keys, which *ring* can't generate, and the
    /// PKCS#1 and SEC1 encodings) and returns its standard output.
    fn openssl(args: &[&str], stdin: &str) -> String {
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the openssl command-line tool (scripts/setup.sh installs it)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write to openssl");
        let out = child.wait_with_output().expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("openssl output")
    }

    fn leaf_der(files: &CertFiles) -> CertificateDer<'static> {
        CertificateDer::pem_file_iter(&files.certificate)
            .expect("cert file")
            .next()
            .expect("a certificate")
            .expect("pem")
    }

    /// Client and server handshake in memory; returns the client connection, or the first
    /// error either side saw.
    fn try_handshake(
        client: &Arc<ClientConfig>,
        server: &Arc<ServerConfig>,
    ) -> Result<ClientConnection, rustls::Error> {
        let name = ServerName::try_from("127.0.0.1").expect("name");
        let mut c = ClientConnection::new(Arc::clone(client), name)?;
        let mut s = ServerConnection::new(Arc::clone(server))?;
        for _ in 0..10 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).expect("client write");
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd).expect("server read");
            }
            let server_result = s.process_new_packets().map(|_| ());
            // The server's alert, if any, goes to the client too.
            buf.clear();
            while s.wants_write() {
                s.write_tls(&mut buf).expect("server write");
            }
            server_result?;
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).expect("client read");
            }
            c.process_new_packets()?;
            if !c.is_handshaking() && !s.is_handshaking() && !s.wants_write() {
                return Ok(c);
            }
        }
        panic!("handshake did not finish");
    }

    fn handshake(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> ClientConnection {
        try_handshake(client, server).expect("handshake")
    }

    fn peer_fingerprint(c: &ClientConnection) -> String {
        fingerprint(&c.peer_certificates().expect("peer certificates")[0])
    }

    #[test]
    fn loads_every_supported_key_type_and_encoding() {
        let dir = Dir::new();
        let ca = Ca::new();
        let p256 = p256_pem();
        let ed25519 = KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .expect("key")
            .serialize_pem();
        let p384 = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
            .expect("key")
            .serialize_pem();
        let rsa = openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ],
            "",
        );
        let cases = [
            ("ECDSA P-256, PKCS#8", &p256, p256.clone()),
            (
                "ECDSA P-256, SEC1",
                &p256,
                openssl(&["ec", "-outform", "PEM"], &p256),
            ),
            ("ECDSA P-384, PKCS#8", &p384, p384.clone()),
            ("Ed25519, PKCS#8", &ed25519, ed25519.clone()),
            ("RSA, PKCS#8", &rsa, rsa.clone()),
            ("RSA, PKCS#1", &rsa, openssl(&["rsa", "-traditional"], &rsa)),
        ];
        for (what, pkcs8, written) in cases {
            let files = CertFiles {
                certificate: dir.write("cert.pem", ca.leaf(pkcs8)),
                private_key: dir.write("key.pem", &written),
            };
            let key = load(&files).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(key.cert.len(), 1, "{what}");
        }
        // The encodings differ as intended (the openssl calls did convert).
        assert!(openssl(&["ec", "-outform", "PEM"], &p256).contains("BEGIN EC PRIVATE KEY"));
        assert!(openssl(&["rsa", "-traditional"], &rsa).contains("BEGIN RSA PRIVATE KEY"));
    }

    #[test]
    fn a_chain_keeps_its_order_and_a_combined_file_serves_as_both() {
        let dir = Dir::new();
        let ca = Ca::new();
        let key = p256_pem();
        let leaf = ca.leaf(&key);
        let both = dir.write("both.pem", format!("{key}{leaf}{}", ca.pem));
        let files = CertFiles {
            certificate: both.clone(),
            private_key: both,
        };
        let loaded = load(&files).expect("combined file");
        assert_eq!(loaded.cert.len(), 2);
        assert_eq!(
            loaded.cert[1],
            CertificateDer::from_pem_slice(ca.pem.as_bytes()).expect("CA")
        );
    }

    #[test]
    fn each_failure_names_the_file_at_fault() {
        let dir = Dir::new();
        let ca = Ca::new();
        let good = pair(&dir, &ca);
        let other_key = dir.write("other-key.pem", p256_pem());
        let empty = dir.write("empty.pem", "");
        let garbage = dir.write(
            "garbage.pem",
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        );
        let not_der = dir.write(
            "not-der.pem",
            "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n",
        );
        let big = dir.write("big.pem", vec![b'a'; MAX_PEM_FILE as usize + 1]);
        let missing = dir.0.join("missing.pem");
        let encrypted = dir.write(
            "encrypted.pem",
            openssl(
                &[
                    "pkcs8",
                    "-topk8",
                    "-v2",
                    "aes-128-cbc",
                    "-passout",
                    "pass:x",
                ],
                &p256_pem(),
            ),
        );
        let p521 = dir.write(
            "p521.pem",
            openssl(
                &[
                    "genpkey",
                    "-algorithm",
                    "EC",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-521",
                ],
                "",
            ),
        );
        let with = |certificate: &Path, private_key: &Path| CertFiles {
            certificate: certificate.to_path_buf(),
            private_key: private_key.to_path_buf(),
        };
        let cases: Vec<(CertFiles, &Path, &str)> = vec![
            (with(&missing, &good.private_key), &missing, "No such file"),
            (with(&good.certificate, &missing), &missing, "No such file"),
            (
                with(&empty, &good.private_key),
                &empty,
                "no CERTIFICATE section",
            ),
            (
                with(&good.private_key, &good.private_key),
                &good.private_key,
                "no CERTIFICATE",
            ),
            (
                with(&good.certificate, &good.certificate),
                &good.certificate,
                "no unencrypted private key",
            ),
            (
                with(&good.certificate, &encrypted),
                &encrypted,
                "no unencrypted private key",
            ),
            (with(&garbage, &good.private_key), &garbage, "bad PEM"),
            (with(&big, &good.private_key), &big, "larger than"),
            (with(&good.certificate, &big), &big, "larger than"),
            (
                with(&not_der, &good.private_key),
                &not_der,
                "does not parse",
            ),
            (
                with(&good.certificate, &p521),
                &p521,
                "unusable private key",
            ),
            (
                with(&good.certificate, &other_key),
                &other_key,
                "not the private key of the first certificate in",
            ),
        ];
        for (files, culprit, says) in cases {
            let e = load(&files)
                .err()
                .unwrap_or_else(|| panic!("{files:?} loaded"));
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("{}: ", culprit.display())),
                "{files:?}: {text}"
            );
            assert!(text.contains(says), "{files:?}: {text}");
        }
        let e = load(&with(&good.certificate, &other_key)).expect_err("mismatch");
        assert!(
            e.to_string()
                .ends_with(&good.certificate.display().to_string()),
            "a mismatch names both files: {e}"
        );
        load(&good).expect("the good pair loads");
    }

    #[test]
    fn reload_swaps_the_pair_for_new_handshakes_and_keeps_it_on_failure() {
        let dir = Dir::new();
        let ca = Ca::new();
        let files = pair(&dir, &ca);
        let first = fingerprint(&leaf_der(&files));
        let resolver = Arc::new(CertResolver::new(files.clone()).expect("resolver"));
        let server = server_config(Arc::clone(&resolver)).expect("config");
        // Without resumption: a resumed session keeps the certificate it was made with.
        let mut client = ca.client(rustls::DEFAULT_VERSIONS);
        client.resumption = Resumption::disabled();
        let client = Arc::new(client);
        assert_eq!(peer_fingerprint(&handshake(&client, &server)), first);

        // A certificate whose key is not (yet) in place: refused, the old pair serves on.
        let key2 = p256_pem();
        dir.replace("cert.pem", ca.leaf(&key2));
        let second = fingerprint(&leaf_der(&files));
        assert_ne!(first, second);
        let e = resolver.reload().expect_err("mismatched pair");
        assert!(matches!(e, TlsError::KeyMismatch { .. }), "{e}");
        assert_eq!(fingerprint(&resolver.current().cert[0]), first);
        assert_eq!(peer_fingerprint(&handshake(&client, &server)), first);

        // The key lands: the next handshake gets the new certificate.
        dir.replace("key.pem", &key2);
        resolver.reload().expect("new pair");
        assert_eq!(fingerprint(&resolver.current().cert[0]), second);
        assert_eq!(peer_fingerprint(&handshake(&client, &server)), second);

        // A file gone: refused, naming it.
        std::fs::remove_file(&files.private_key).expect("rm");
        let e = resolver.reload().expect_err("missing key");
        assert!(
            e.to_string()
                .starts_with(&files.private_key.display().to_string()),
            "{e}"
        );
        assert_eq!(peer_fingerprint(&handshake(&client, &server)), second);
    }

    #[test]
    fn reload_if_changed_reads_the_files_once_per_change() {
        let dir = Dir::new();
        let ca = Ca::new();
        let files = pair(&dir, &ca);
        let resolver = CertResolver::new(files.clone()).expect("resolver");
        assert!(resolver.reload_if_changed().is_none(), "nothing changed");

        // The certificate is renewed before its key: one failure, reported once.
        let key2 = p256_pem();
        dir.replace("cert.pem", ca.leaf(&key2));
        let e = resolver.reload_if_changed().expect("changed").err();
        assert!(matches!(e, Some(TlsError::KeyMismatch { .. })), "{e:?}");
        assert!(
            resolver.reload_if_changed().is_none(),
            "same files, same failure"
        );

        // The key follows: loaded.
        dir.replace("key.pem", &key2);
        resolver
            .reload_if_changed()
            .expect("changed")
            .expect("the new pair loads");
        assert_eq!(
            fingerprint(&resolver.current().cert[0]),
            fingerprint(&leaf_der(&files))
        );
        assert!(resolver.reload_if_changed().is_none());

        // Rewritten in place (same inode): seen too.
        let key3 = p256_pem();
        let cert3 = ca.leaf(&key3);
        std::fs::write(&files.private_key, &key3).expect("write");
        std::fs::write(&files.certificate, &cert3).expect("write");
        resolver
            .reload_if_changed()
            .expect("changed in place")
            .expect("loads");
        assert_eq!(
            fingerprint(&resolver.current().cert[0]),
            fingerprint(&leaf_der(&files))
        );

        // Gone, then back.
        std::fs::remove_file(&files.certificate).expect("rm");
        assert!(resolver.reload_if_changed().expect("gone").is_err());
        assert!(resolver.reload_if_changed().is_none());
        dir.write("cert.pem", &cert3);
        resolver.reload_if_changed().expect("back").expect("loads");
    }

    #[test]
    fn file_stamps_tell_replacement_rewrite_and_absence() {
        let dir = Dir::new();
        let p = dir.write("f", "one");
        let a = FileStamp::of(&p).expect("stamp");
        assert_eq!(FileStamp::of(&p), Some(a));
        dir.replace("f", "one");
        let b = FileStamp::of(&p).expect("stamp");
        assert_ne!(a, b, "a rename puts a new inode in place");
        std::fs::write(&p, "two!").expect("write");
        assert_ne!(
            FileStamp::of(&p),
            Some(b),
            "a rewrite changes size and times"
        );
        std::fs::remove_file(&p).expect("rm");
        assert_eq!(FileStamp::of(&p), None);
    }

    #[test]
    fn server_config_speaks_tls_1_3_and_1_2_with_http_1_1_and_resumes() {
        let dir = Dir::new();
        let ca = Ca::new();
        let resolver = Arc::new(CertResolver::new(pair(&dir, &ca)).expect("resolver"));
        let server = server_config(resolver).expect("config");
        for (version, v) in [
            (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
            (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        ] {
            let mut client = ca.client(&[version]);
            client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
            let client = Arc::new(client);
            let c = handshake(&client, &server);
            assert_eq!(c.protocol_version(), Some(v));
            assert_eq!(c.alpn_protocol(), Some(&b"http/1.1"[..]), "{v:?}");
            assert_eq!(c.handshake_kind(), Some(HandshakeKind::Full), "{v:?}");
            // What the first handshake left (a ticket) resumes the second.
            let c = handshake(&client, &server);
            assert_eq!(c.handshake_kind(), Some(HandshakeKind::Resumed), "{v:?}");
        }

        // TLS 1.2 by session id, for a client that takes no tickets: the bounded cache.
        let mut client = ca.client(&[&rustls::version::TLS12]);
        client.resumption = Resumption::default().tls12_resumption(Tls12Resumption::SessionIdOnly);
        let client = Arc::new(client);
        assert_eq!(
            handshake(&client, &server).handshake_kind(),
            Some(HandshakeKind::Full)
        );
        assert_eq!(
            handshake(&client, &server).handshake_kind(),
            Some(HandshakeKind::Resumed)
        );

        // No ALPN: served (HTTP/1.1 is implied); ALPN without http/1.1: refused (RFC 7301).
        let mut client = ca.client(rustls::DEFAULT_VERSIONS);
        client.resumption = Resumption::disabled();
        let plain = Arc::new(client.clone());
        assert_eq!(handshake(&plain, &server).alpn_protocol(), None);
        client.alpn_protocols = vec![b"h2".to_vec()];
        let e = try_handshake(&Arc::new(client), &server).expect_err("refused");
        assert!(
            matches!(
                e,
                rustls::Error::NoApplicationProtocol | rustls::Error::AlertReceived(_)
            ),
            "{e:?}"
        );
    }
}
