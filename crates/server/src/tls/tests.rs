//! Loading, matching and reloading certificate pairs, and the server configuration.

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

#[test]
fn first_read_at_one_path_then_reloads_at_another() {
    // The same files under two names, as a chroot's root directory is seen from outside
    // (`now`) and from inside (`files`).
    let dir = Dir::new();
    let ca = Ca::new();
    let now = pair(&dir, &ca);
    let link = dir.0.join("inside");
    std::os::unix::fs::symlink(&dir.0, &link).expect("symlink");
    let files = CertFiles {
        certificate: link.join("cert.pem"),
        private_key: link.join("key.pem"),
    };
    let resolver = CertResolver::first_read_at(files.clone(), &now).expect("resolver");
    assert_eq!(resolver.files(), &files, "reloads read the inside paths");
    assert!(
        resolver.reload_if_changed().is_none(),
        "the same files: no reload at the first poll"
    );
    let key2 = p256_pem();
    dir.replace("cert.pem", ca.leaf(&key2));
    dir.replace("key.pem", &key2);
    resolver.reload().expect("reloads through the inside paths");
    assert_eq!(
        fingerprint(&resolver.current().cert[0]),
        fingerprint(&leaf_der(&now))
    );
    // A pair missing at the first path fails naming that path.
    let missing = CertFiles {
        certificate: dir.0.join("nowhere.pem"),
        private_key: now.private_key.clone(),
    };
    match CertResolver::first_read_at(files, &missing) {
        Err(TlsError::Read { path, .. }) => assert_eq!(path, missing.certificate),
        other => panic!("{other:?}"),
    }
}
