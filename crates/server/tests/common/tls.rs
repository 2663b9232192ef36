//! TLS for the black-box tests: a test CA that issues server certificates for 127.0.0.1 and
//! [::1] into a temp dir, and a minimal HTTPS client over rustls that reports what the
//! handshake negotiated.
//!
//! * [`TestPki`] makes the CA (ECDSA P-256) and issues [`ServerCert`]s with a fresh key of any
//!   [`KeyType`]: ECDSA P-256 and Ed25519 keys from rcgen, RSA keys from the `openssl`
//!   command-line tool (*ring*, under rcgen, can't generate RSA keys).
//! * [`TlsClient`] trusts only the test CA and verifies the server's certificate for the IP it
//!   connects to. [`TlsClient::connect`] returns an [`Https`]: the harness's [`Http`] client
//!   (keep-alive, pipelining, the same reply parser) over a TLS stream whose handshake is done,
//!   and [`Https::negotiated`] tells the protocol version, ALPN, the peer certificate's SHA-256
//!   fingerprint (so a rotation test can tell which certificate it got) and whether the session
//!   was resumed.
//!
//! Every blocking call is bounded by the harness's socket timeouts.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::client::Resumption;
use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, HandshakeKind, ProtocolVersion, RootCertStore, StreamOwned,
    SupportedProtocolVersion,
};

use super::{Http, HttpResponse, TempDir, IO_TIMEOUT};

/// The key a server certificate is issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    EcdsaP256,
    Rsa2048,
    Ed25519,
}

/// A certificate and key as `tls.certificate` and `tls.private_key` take them.
#[derive(Debug, Clone)]
pub struct ServerCert {
    /// PEM: the server certificate (the CA is the root, so the chain is the leaf alone).
    pub certificate: PathBuf,
    /// PEM, PKCS#8.
    pub private_key: PathBuf,
    /// SHA-256 of the certificate's DER, upper-case hex (as [`Negotiated::fingerprint`]).
    pub fingerprint: String,
}

/// A test certificate authority and the directory its files are written to (removed on drop).
pub struct TestPki {
    dir: TempDir,
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub ca_certificate: PathBuf,
    ca_der: CertificateDer<'static>,
}

impl TestPki {
    /// A fresh CA (ECDSA P-256) in a fresh temp dir.
    pub fn new() -> TestPki {
        let dir = TempDir::new("tls");
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, "ferrotracker test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("CA certificate");
        let ca_certificate = dir.path().join("ca.pem");
        std::fs::write(&ca_certificate, cert.pem()).expect("write CA certificate");
        TestPki {
            dir,
            issuer: Issuer::new(params, key),
            ca_certificate,
            ca_der: cert.der().clone(),
        }
    }

    /// The directory the files are in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Issues a certificate for 127.0.0.1, ::1 and `localhost` over a fresh key of `kind`,
    /// written as `NAME.pem` and `NAME.key` (overwriting an earlier pair of that name).
    pub fn issue(&self, name: &str, kind: KeyType) -> ServerCert {
        let key_pem = match kind {
            KeyType::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .expect("P-256 key")
                .serialize_pem(),
            KeyType::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519)
                .expect("Ed25519 key")
                .serialize_pem(),
            KeyType::Rsa2048 => openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ]),
        };
        self.issue_for_key(name, &key_pem)
    }

    /// Issues a certificate as [`issue`](TestPki::issue) does, over the key in `key_pem`
    /// (PKCS#8 PEM), which is written as `NAME.key`.
    pub fn issue_for_key(&self, name: &str, key_pem: &str) -> ServerCert {
        let key = KeyPair::from_pem(key_pem).expect("key PEM");
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, format!("ferrotracker test {name}"));
        params.subject_alt_names.extend([
            SanType::IpAddress("127.0.0.1".parse().expect("ip")),
            SanType::IpAddress("::1".parse().expect("ip")),
        ]);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).expect("certificate");
        let certificate = self.dir().join(format!("{name}.pem"));
        let private_key = self.dir().join(format!("{name}.key"));
        std::fs::write(&certificate, cert.pem()).expect("write certificate");
        std::fs::write(&private_key, key_pem).expect("write key");
        ServerCert {
            certificate,
            private_key,
            fingerprint: fingerprint(cert.der()),
        }
    }

    /// A client that trusts this CA alone.
    pub fn client(&self) -> TlsClient {
        TlsClient::new(self)
    }
}

/// SHA-256 of a certificate's DER, upper-case hex.
pub fn fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// The `openssl` command-line tool's standard output (scripts/setup.sh installs it).
pub fn openssl(args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("running openssl (scripts/setup.sh installs it): {e}"));
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("openssl output")
}

/// A TLS client configuration: by default TLS 1.3 and 1.2, ALPN `http/1.1`, no session
/// resumption (each connection makes a full handshake and sees the server's certificate).
#[derive(Clone)]
pub struct TlsClient {
    roots: Arc<RootCertStore>,
    versions: Vec<&'static SupportedProtocolVersion>,
    alpn: Vec<Vec<u8>>,
    resumption: Option<Resumption>,
    config: Arc<ClientConfig>,
}

/// An HTTP client over TLS: [`Http`] over a rustls stream.
pub type Https = Http<StreamOwned<ClientConnection, TcpStream>>;

/// What a handshake negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub version: ProtocolVersion,
    /// The ALPN protocol the server chose, if any.
    pub alpn: Option<Vec<u8>>,
    /// SHA-256 of the server's certificate (the one the session was made with, when resumed).
    pub fingerprint: String,
    pub resumed: bool,
}

impl TlsClient {
    pub fn new(pki: &TestPki) -> TlsClient {
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca_der.clone()).expect("CA root");
        TlsClient::with_roots(roots)
    }

    /// A client that trusts the CA certificates in the PEM file `ca`.
    pub fn trusting(ca: &Path) -> TlsClient {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(ca).expect("CA file") {
            roots.add(c.expect("CA PEM")).expect("CA root");
        }
        TlsClient::with_roots(roots)
    }

    fn with_roots(roots: RootCertStore) -> TlsClient {
        let roots = Arc::new(roots);
        let versions = rustls::DEFAULT_VERSIONS.to_vec();
        let alpn = vec![b"http/1.1".to_vec()];
        let config = build(&roots, &versions, &alpn, None);
        TlsClient {
            roots,
            versions,
            alpn,
            resumption: None,
            config,
        }
    }

    /// Speaks only these versions (`&rustls::version::TLS12`, `&rustls::version::TLS13`).
    pub fn versions(mut self, versions: &[&'static SupportedProtocolVersion]) -> TlsClient {
        self.versions = versions.to_vec();
        self.build();
        self
    }

    /// Offers these ALPN protocols (none: no ALPN extension).
    pub fn alpn(mut self, protocols: &[&[u8]]) -> TlsClient {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self.build();
        self
    }

    /// Keeps sessions (tickets, ids) in memory and resumes them: connections made from this
    /// client and its clones after the first are resumed when the server agrees.
    pub fn resuming(mut self) -> TlsClient {
        self.resumption = Some(Resumption::in_memory_sessions(32));
        self.build();
        self
    }

    fn build(&mut self) {
        self.config = build(
            &self.roots,
            &self.versions,
            &self.alpn,
            self.resumption.clone(),
        );
    }

    /// Connects to `addr`, checks the server's certificate for `addr`'s IP and completes the
    /// handshake; panics saying why if any of that fails.
    pub fn connect(&self, addr: SocketAddr) -> Https {
        self.try_connect(addr)
            .unwrap_or_else(|e| panic!("TLS connect to {addr}: {e}"))
    }

    /// As [`connect`](TlsClient::connect), with the failure (refused, reset, a TLS alert, a
    /// certificate the client does not trust) as an error.
    pub fn try_connect(&self, addr: SocketAddr) -> Result<Https, String> {
        let tcp =
            TcpStream::connect_timeout(&addr, IO_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
        for t in [
            tcp.set_read_timeout(Some(IO_TIMEOUT)),
            tcp.set_write_timeout(Some(IO_TIMEOUT)),
        ] {
            t.map_err(|e| format!("timeout: {e}"))?;
        }
        tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        self.handshake(tcp, addr)
    }

    /// Completes a TLS handshake on `tcp`, connected to `addr` (whose bytes before the
    /// handshake, a PROXY header, have been sent already).
    pub fn handshake(&self, tcp: TcpStream, addr: SocketAddr) -> Result<Https, String> {
        let conn = ClientConnection::new(Arc::clone(&self.config), ServerName::from(addr.ip()))
            .map_err(|e| format!("client: {e}"))?;
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            match stream.conn.complete_io(&mut stream.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("handshake: {e}")),
            }
        }
        // The client's last flight (Finished) goes out now rather than with the request.
        stream.flush().map_err(|e| format!("handshake: {e}"))?;
        Ok(Http::over(stream))
    }

    /// One GET on a fresh connection; the reply and what the handshake negotiated.
    pub fn get(&self, addr: SocketAddr, target: &str) -> (HttpResponse, Negotiated) {
        let mut c = self.connect(addr);
        let negotiated = c.negotiated();
        (c.get(target), negotiated)
    }
}

fn build(
    roots: &Arc<RootCertStore>,
    versions: &[&'static SupportedProtocolVersion],
    alpn: &[Vec<u8>],
    resumption: Option<Resumption>,
) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider::default_provider()))
        .with_protocol_versions(versions)
        .expect("protocol versions")
        .with_root_certificates(Arc::clone(roots))
        .with_no_client_auth();
    config.alpn_protocols = alpn.to_vec();
    config.resumption = resumption.unwrap_or_else(Resumption::disabled);
    Arc::new(config)
}

impl Https {
    /// What the handshake negotiated.
    pub fn negotiated(&self) -> Negotiated {
        let conn = &self.stream.conn;
        Negotiated {
            version: conn.protocol_version().expect("handshake done"),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            fingerprint: fingerprint(
                conn.peer_certificates()
                    .and_then(<[_]>::first)
                    .expect("a server certificate"),
            ),
            resumed: conn.handshake_kind() == Some(HandshakeKind::Resumed),
        }
    }
}
