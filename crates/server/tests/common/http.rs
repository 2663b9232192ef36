//! A minimal raw HTTP/1.1 client that can reuse a connection and read pipelined replies: over
//! `TcpStream` by default, or over any stream (`tls::Https`: a rustls stream).

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ferrotracker_proto::bencode::{self, Value};

use super::{announce_target, lossy, parse_scrape, AnnounceReply, ScrapeEntry, IO_TIMEOUT};

#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status_line: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// True if the reply says the connection closes after it.
    pub fn says_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    /// The body as a bencoded `failure reason`, if it is one.
    pub fn failure_reason(&self) -> Option<String> {
        let v = bencode::decode(&self.body).ok()?;
        v.get(b"failure reason")
            .and_then(Value::as_bytes)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    pub fn announce(&self) -> AnnounceReply {
        assert_eq!(
            self.status,
            200,
            "announce failed: {self:?} body {:?}",
            self.body_str()
        );
        AnnounceReply::parse(&self.body)
    }

    pub fn scrape(&self) -> Vec<([u8; 20], ScrapeEntry)> {
        assert_eq!(
            self.status,
            200,
            "scrape failed: {self:?} body {:?}",
            self.body_str()
        );
        parse_scrape(&self.body)
    }
}

/// One connection to the tracker, over TCP or (`tls::Https`) over TLS; replies are read from a
/// buffer so pipelined replies that arrive in one segment are split correctly.
pub struct Http<S = TcpStream> {
    pub stream: S,
    buf: Vec<u8>,
}

impl Http {
    pub fn connect(addr: SocketAddr) -> Http {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_nodelay(true).expect("nodelay");
        Http::bounded(stream)
    }

    /// Connects from a specific local address (e.g. 127.0.0.2).
    pub fn connect_from(local: IpAddr, addr: SocketAddr) -> Http {
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )
        .expect("socket");
        sock.bind(&SocketAddr::new(local, 0).into())
            .expect("bind local");
        sock.connect_timeout(&addr.into(), IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr} from {local}: {e}"));
        Http::bounded(sock.into())
    }

    /// A client on `stream`, whose reads and writes each give up after [`IO_TIMEOUT`].
    fn bounded(stream: TcpStream) -> Http {
        stream
            .set_read_timeout(Some(IO_TIMEOUT))
            .expect("set timeout");
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("set timeout");
        Http {
            stream,
            buf: Vec::new(),
        }
    }
}

impl<S: Read + Write> Http<S> {
    /// A client over a connected `stream` (TLS: with its handshake done).
    pub fn over(stream: S) -> Http<S> {
        Http {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).expect("write request");
    }

    /// Sends a keep-alive HTTP/1.1 GET and reads the reply.
    pub fn get(&mut self, target: &str) -> HttpResponse {
        self.send(format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").as_bytes());
        self.read_response()
    }

    /// Reads one whole response (head and Content-Length body).
    pub fn read_response(&mut self) -> HttpResponse {
        self.try_read_response()
            .unwrap_or_else(|e| panic!("reading HTTP response: {e}"))
    }

    pub fn try_read_response(&mut self) -> Result<HttpResponse, String> {
        let head_end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p + 4;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end - 4]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_string();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let chunked = headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
        });
        if chunked {
            self.buf.drain(..head_end);
            let body = self.read_chunks()?;
            return Ok(HttpResponse {
                status_line,
                status,
                headers,
                body,
            });
        }
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .ok_or_else(|| format!("no Content-Length in {head:?}"))?
            .1
            .parse()
            .map_err(|_| format!("bad Content-Length in {head:?}"))?;
        while self.buf.len() < head_end + len {
            self.fill()?;
        }
        let body = self.buf[head_end..head_end + len].to_vec();
        self.buf.drain(..head_end + len);
        Ok(HttpResponse {
            status_line,
            status,
            headers,
            body,
        })
    }

    /// A chunked body (no trailers), its chunks joined.
    fn read_chunks(&mut self) -> Result<Vec<u8>, String> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(p) = find(&self.buf, b"\r\n") {
                    break p;
                }
                self.fill()?;
            };
            let size = std::str::from_utf8(&self.buf[..line_end])
                .ok()
                .and_then(|l| usize::from_str_radix(l.split(';').next()?.trim(), 16).ok())
                .ok_or_else(|| format!("bad chunk size line {:?}", lossy(&self.buf[..line_end])))?;
            let start = line_end + 2;
            while self.buf.len() < start + size + 2 {
                self.fill()?;
            }
            if &self.buf[start + size..start + size + 2] != b"\r\n" {
                return Err("chunk not followed by CRLF".into());
            }
            body.extend_from_slice(&self.buf[start..start + size]);
            self.buf.drain(..start + size + 2);
            if size == 0 {
                return Ok(body);
            }
        }
    }

    fn fill(&mut self) -> Result<(), String> {
        let mut tmp = [0u8; 16384];
        loop {
            // A signal to the test process (another test's child exiting) interrupts a read:
            // retried, as the other readers here do.
            return match self.stream.read(&mut tmp) {
                Ok(0) => Err(format!(
                    "connection closed with {} unparsed bytes: {:?}",
                    self.buf.len(),
                    lossy(&self.buf)
                )),
                Ok(n) => {
                    self.buf.extend_from_slice(&tmp[..n]);
                    Ok(())
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => Err(format!("read: {e}")),
            };
        }
    }
}

impl Http {
    /// Sends each write at once (TCP_NODELAY), so that small writes arrive as separate segments.
    pub fn nodelay(&self) {
        self.stream.set_nodelay(true).expect("TCP_NODELAY");
    }

    /// Waits up to `within` for the server to close the connection. True if it did (EOF or
    /// reset) with no further bytes; false if the connection was still open at the deadline.
    /// Panics if unexpected bytes arrive.
    pub fn closed_within(&mut self, within: Duration) -> bool {
        assert!(self.buf.is_empty(), "unread bytes: {:?}", lossy(&self.buf));
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.stream.set_read_timeout(Some(left)).expect("timeout");
            let mut tmp = [0u8; 512];
            let r = self.stream.read(&mut tmp);
            self.stream
                .set_read_timeout(Some(IO_TIMEOUT))
                .expect("timeout");
            match r {
                Ok(0) => return true,
                Ok(n) => panic!(
                    "unexpected bytes while waiting for close: {:?}",
                    lossy(&tmp[..n])
                ),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return false
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return true,
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection with `Connection: close`.
pub fn http_get(addr: SocketAddr, target: &str) -> HttpResponse {
    let mut c = Http::connect(addr);
    c.send(format!("GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes());
    c.read_response()
}

/// Sends raw bytes on a fresh connection and reads one reply.
pub fn http_raw(addr: SocketAddr, raw: &[u8]) -> HttpResponse {
    let mut c = Http::connect(addr);
    c.send(raw);
    c.read_response()
}

/// Announces over a fresh connection and decodes the reply.
pub fn http_announce(
    addr: SocketAddr,
    h: &[u8; 20],
    port: u16,
    left: u64,
    extra: &str,
) -> AnnounceReply {
    http_get(addr, &announce_target(h, port, left, extra)).announce()
}
