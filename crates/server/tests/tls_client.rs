//! The TLS test harness (`common::tls`) against a tiny HTTPS server stood up here, on
//! 127.0.0.1 and [::1], with the server crate's own `tls` module (certificate loading, the
//! resolver, the `ServerConfig`): the client reports what was negotiated and which certificate
//! it got, rotation reaches new connections, and a certificate from another CA or a client
//! without `http/1.1` is refused.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use common::tls::{KeyType, ServerCert, TestPki};
use common::IO_TIMEOUT;
use ferrotracker::tls::{server_config, CertFiles, CertResolver};
use rustls::{ProtocolVersion, ServerConfig, ServerConnection, StreamOwned};

/// A threaded HTTPS server that answers every GET with its target as the body, keeping the
/// connection open unless the request says `Connection: close`. Stopped on drop.
struct TinyServer {
    addrs: Vec<SocketAddr>,
    resolver: Arc<CertResolver>,
    stop: Arc<AtomicBool>,
    acceptors: Vec<JoinHandle<()>>,
}

impl TinyServer {
    fn start(cert: &ServerCert) -> TinyServer {
        let resolver = Arc::new(
            CertResolver::new(CertFiles {
                certificate: cert.certificate.clone(),
                private_key: cert.private_key.clone(),
            })
            .expect("certificate loads"),
        );
        let config = server_config(Arc::clone(&resolver)).expect("server config");
        let stop = Arc::new(AtomicBool::new(false));
        let mut addrs = Vec::new();
        let mut acceptors = Vec::new();
        for bind in ["127.0.0.1:0", "[::1]:0"] {
            let listener = TcpListener::bind(bind).expect("bind");
            addrs.push(listener.local_addr().expect("addr"));
            let (config, stop) = (Arc::clone(&config), Arc::clone(&stop));
            acceptors.push(std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let config = Arc::clone(&config);
                        // Ends when the client closes or goes quiet for IO_TIMEOUT.
                        std::thread::spawn(move || serve(conn, config));
                    }
                }
            }));
        }
        TinyServer {
            addrs,
            resolver,
            stop,
            acceptors,
        }
    }
}

impl Drop for TinyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for a in &self.addrs {
            let _ = TcpStream::connect_timeout(a, IO_TIMEOUT);
        }
        for t in self.acceptors.drain(..) {
            let _ = t.join();
        }
    }
}

fn serve(tcp: TcpStream, config: Arc<ServerConfig>) {
    let _ = tcp.set_read_timeout(Some(IO_TIMEOUT));
    let _ = tcp.set_write_timeout(Some(IO_TIMEOUT));
    let Ok(conn) = ServerConnection::new(config) else {
        return;
    };
    let mut s = StreamOwned::new(conn, tcp);
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if buf.len() > 8192 {
                return;
            }
            let mut tmp = [0u8; 4096];
            match s.read(&mut tmp) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end);
        let target = head.split(' ').nth(1).unwrap_or("").to_string();
        let close = head.to_ascii_lowercase().contains("\r\nconnection: close");
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{}\r\n{target}",
            target.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        if s.write_all(reply.as_bytes())
            .and_then(|()| s.flush())
            .is_err()
        {
            return;
        }
        if close {
            s.conn.send_close_notify();
            let _ = s.flush();
            return;
        }
    }
}

#[test]
fn the_client_reports_version_alpn_and_certificate_for_each_key_type_over_v4_and_v6() {
    let pki = TestPki::new();
    for kind in [KeyType::EcdsaP256, KeyType::Rsa2048, KeyType::Ed25519] {
        let cert = pki.issue("server", kind);
        let server = TinyServer::start(&cert);
        for &addr in &server.addrs {
            for (versions, want) in [
                (rustls::DEFAULT_VERSIONS, ProtocolVersion::TLSv1_3),
                (&[&rustls::version::TLS12][..], ProtocolVersion::TLSv1_2),
            ] {
                let (reply, got) = pki.client().versions(versions).get(addr, "/announce?a=1");
                assert_eq!(reply.status, 200, "{kind:?} {addr} {want:?}");
                assert_eq!(reply.body_str(), "/announce?a=1");
                assert_eq!(got.version, want, "{kind:?} {addr}");
                assert_eq!(got.alpn.as_deref(), Some(&b"http/1.1"[..]));
                assert_eq!(
                    got.fingerprint, cert.fingerprint,
                    "{kind:?} {addr} {want:?}"
                );
                assert!(!got.resumed);
            }
            let (_, got) = pki.client().alpn(&[]).get(addr, "/");
            assert_eq!(got.alpn, None, "no ALPN offered, none chosen");
        }
    }
}

#[test]
fn one_connection_carries_several_requests() {
    let pki = TestPki::new();
    let server = TinyServer::start(&pki.issue("server", KeyType::EcdsaP256));
    let mut c = pki.client().connect(server.addrs[0]);
    for i in 0..3 {
        let target = format!("/scrape?n={i}");
        assert_eq!(c.get(&target).body_str(), target);
    }
    c.send(b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(c.read_response().body_str(), "/last");
}

#[test]
fn new_connections_see_a_rotated_certificate_and_resumed_sessions_keep_theirs() {
    let pki = TestPki::new();
    let first = pki.issue("server", KeyType::EcdsaP256);
    let server = TinyServer::start(&first);
    let addr = server.addrs[0];
    let resuming = pki.client().resuming();
    let mut before = resuming.connect(addr);
    assert_eq!(before.negotiated().fingerprint, first.fingerprint);
    assert!(!before.negotiated().resumed);
    assert_eq!(before.get("/a").status, 200);

    // Same file names, new pair: the server reloads it.
    let second = pki.issue("server", KeyType::EcdsaP256);
    assert_ne!(first.fingerprint, second.fingerprint);
    server.resolver.reload().expect("reload");

    let (_, got) = pki.client().get(addr, "/");
    assert_eq!(got.fingerprint, second.fingerprint, "a full handshake");
    let after = resuming.connect(addr);
    assert!(after.negotiated().resumed, "the ticket from before resumes");
    assert_eq!(after.negotiated().fingerprint, first.fingerprint);
    // The connection made before the rotation still serves.
    assert_eq!(before.get("/b").body_str(), "/b");
}

#[test]
fn a_certificate_from_another_ca_or_alpn_without_http_1_1_is_refused() {
    let pki = TestPki::new();
    let server = TinyServer::start(&pki.issue("server", KeyType::EcdsaP256));
    let stranger = TestPki::new();
    let e = stranger
        .client()
        .try_connect(server.addrs[0])
        .err()
        .expect("untrusted certificate accepted");
    assert!(e.contains("invalid peer certificate"), "{e}");
    let e = pki
        .client()
        .alpn(&[b"h2"])
        .try_connect(server.addrs[1])
        .err()
        .expect("h2-only client accepted");
    assert!(e.contains("NoApplicationProtocol"), "{e}");
}
