//! HTTP/1.x for a tracker: framing one request head, routing it as opentracker does, and writing
//! response heads (the bencoded bodies are [`crate::http_body`]'s).
//!
//! [`parse_request`] answers "incomplete", a borrowed [`Request`], or a small error, so the caller
//! owns the buffer and the socket. Only the head is interpreted: trackers take everything from the
//! query string, and a body (if announced by Content-Length) is skipped by the caller.

use crate::forwarded::{ClientHeader, ProxyHeader};
use crate::http_body;

/// Largest request head we buffer: opentracker's `G_INBUF_SIZE`.
pub const MAX_REQUEST_BYTES: usize = 8192;
/// Headers beyond this many make the request a [`HttpError::TooManyHeaders`].
pub const MAX_HEADERS: usize = 32;
/// Path of [`Route::Metrics`] (without '/'); fixed, unlike the stats page's.
pub const METRICS_PATH: &[u8] = b"metrics";
/// Paths of [`Route::Dashboard`] and [`Route::DashboardJson`] (without '/'); fixed, as
/// [`METRICS_PATH`].
pub const DASHBOARD_PATH: &[u8] = b"dashboard";
pub const DASHBOARD_JSON_PATH: &[u8] = b"dashboard.json";

/// Result of [`parse_request`] on the bytes received so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// The head is not complete yet; read more and call again with the whole buffer.
    Incomplete,
    Complete(Request<'a>),
}

/// One request head, borrowing from the receive buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// Raw path before '?', with all leading '/' stripped (`//announce` -> `announce`, `/` -> ``),
    /// as opentracker skips them. Not percent-decoded.
    pub path: &'a [u8],
    /// Raw bytes after the first '?', `None` if there is no '?'.
    pub query: Option<&'a [u8]>,
    /// Whether the client wants the connection kept open (HTTP/1.1 default unless
    /// `Connection: close`; HTTP/1.0 only with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// `Accept-Encoding` lists `gzip` (with a non-zero q).
    pub accepts_gzip: bool,
    /// An HTTP/1.0 request: a streamed reply can't be chunked.
    pub http10: bool,
    /// The lines of the header a proxy names its client in (the one [`parse_request`] was
    /// asked for), trimmed; the caller believes them only from a trusted proxy.
    pub client_header: ClientHeader<'a>,
    /// `Sec-WebSocket-Key` of a WebSocket upgrade request (RFC 6455 section 4.2.1:
    /// `Upgrade: websocket`, `Connection: Upgrade`, `Sec-WebSocket-Version: 13` and a key of 24
    /// base64 characters); `None` for any other request.
    pub websocket_key: Option<&'a [u8]>,
    /// Bytes of the head including the blank line.
    pub head_len: usize,
    /// `Content-Length` (0 if absent); the caller skips `head_len + body_len` bytes.
    pub body_len: usize,
}

/// Why a request head was refused. The connection should be closed after the error reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// Malformed request line or headers.
    BadRequest,
    /// A method other than GET; opentracker answers 400.
    NotGet,
    /// The request target does not start with '/'.
    BadTarget,
    /// No complete head within [`MAX_REQUEST_BYTES`], or a body larger than that.
    TooLarge,
    /// More than [`MAX_HEADERS`] headers.
    TooManyHeaders,
    /// Content-Length missing digits, overflowing, or given twice with different values.
    BadContentLength,
    /// `Transfer-Encoding` present: a GET has no body we could frame safely.
    TransferEncoding,
}

impl HttpError {
    /// The HTTP status opentracker answers: 400 for malformed requests, 500 for overflow.
    pub fn status(self) -> u16 {
        match self {
            HttpError::TooLarge => 500,
            _ => 400,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            HttpError::BadRequest => "malformed HTTP request",
            HttpError::NotGet => "only GET requests are supported",
            HttpError::BadTarget => "request target must start with '/'",
            HttpError::TooLarge => "request head or body larger than 8192 bytes",
            HttpError::TooManyHeaders => "too many request headers",
            HttpError::BadContentLength => "invalid Content-Length header",
            HttpError::TransferEncoding => "Transfer-Encoding is not supported",
        }
    }
}

impl core::fmt::Display for HttpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for HttpError {}

/// Frames one request head at the start of `buf`.
///
/// Only the first [`MAX_REQUEST_BYTES`] are looked at: if no complete head is there, the answer
/// is [`Parsed::Incomplete`] while `buf` is shorter than that and [`HttpError::TooLarge`] after.
/// As opentracker, the request must start with exactly `GET /`. Of the headers proxies name
/// their client in, only `client_header`'s lines are kept ([`Request::client_header`]).
pub fn parse_request(buf: &[u8], client_header: ProxyHeader) -> Result<Parsed<'_>, HttpError> {
    // Reject early on the first bytes so a slow non-GET client is not buffered to 8 KiB.
    if !b"GET ".iter().zip(buf).all(|(want, got)| want == got) {
        return Err(HttpError::NotGet);
    }
    if buf.get(4).is_some_and(|&b| b != b'/') {
        return Err(HttpError::BadTarget);
    }

    let window = buf.get(..MAX_REQUEST_BYTES).unwrap_or(buf);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if window.len() < MAX_REQUEST_BYTES => {
            return Ok(Parsed::Incomplete)
        }
        Ok(httparse::Status::Partial) => return Err(HttpError::TooLarge),
        // A full window of short headers is first of all too large (opentracker's 500).
        Err(httparse::Error::TooManyHeaders) if window.len() >= MAX_REQUEST_BYTES => {
            return Err(HttpError::TooLarge)
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooManyHeaders),
        Err(_) => return Err(HttpError::BadRequest),
    };
    if req.method != Some("GET") {
        return Err(HttpError::NotGet);
    }
    let target = req.path.unwrap_or("").as_bytes();
    if target.first() != Some(&b'/') {
        return Err(HttpError::BadTarget);
    }
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => {
            let (path, rest) = target.split_at(q);
            (path, rest.get(1..))
        }
        None => (target, None),
    };
    let slashes = path.iter().take_while(|&&b| b == b'/').count();
    let path = path.get(slashes..).unwrap_or_default();

    let http11 = req.version == Some(1);
    let mut keep_alive = http11;
    let mut accepts_gzip = false;
    let client_name = client_header.name().as_bytes();
    let mut client_lines = ClientHeader::empty(client_header);
    let mut body_len: Option<usize> = None;
    let (mut upgrade, mut connection_upgrade, mut version_13) = (false, false, false);
    let mut websocket_key = None;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let value = trim(h.value);
        if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                    keep_alive = true;
                } else if token.eq_ignore_ascii_case(b"upgrade") {
                    connection_upgrade = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"upgrade") {
            upgrade |= value
                .split(|&b| b == b',')
                .map(trim)
                .any(|t| t.eq_ignore_ascii_case(b"websocket"));
        } else if name.eq_ignore_ascii_case(b"sec-websocket-version") {
            version_13 = value == b"13";
        } else if name.eq_ignore_ascii_case(b"sec-websocket-key") {
            websocket_key = Some(value);
        } else if name.eq_ignore_ascii_case(b"accept-encoding") {
            accepts_gzip |= lists_gzip(value);
        } else if name.eq_ignore_ascii_case(client_name) {
            client_lines.push(value);
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_content_length(value)?;
            if body_len.is_some_and(|prev| prev != n) {
                return Err(HttpError::BadContentLength);
            }
            body_len = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(HttpError::TransferEncoding);
        }
    }

    Ok(Parsed::Complete(Request {
        path,
        query,
        keep_alive,
        accepts_gzip,
        http10: !http11,
        client_header: client_lines,
        websocket_key: websocket_key
            .filter(|k| upgrade && connection_upgrade && version_13 && http11 && is_ws_key(k)),
        head_len,
        body_len: body_len.unwrap_or(0),
    }))
}

/// A `Sec-WebSocket-Key`: 16 bytes in base64, 24 characters ending in `==`.
fn is_ws_key(k: &[u8]) -> bool {
    k.len() == 24
        && k.ends_with(b"==")
        && k.iter()
            .take(22)
            .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// The head of the 101 reply that accepts a WebSocket upgrade, `accept` being the
/// `Sec-WebSocket-Accept` value derived from the request's key (RFC 6455 section 4.2.2).
pub fn write_switching_protocols(out: &mut Vec<u8>, accept: &[u8]) {
    out.extend_from_slice(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Accept: ",
    );
    out.extend_from_slice(accept);
    out.extend_from_slice(b"\r\n\r\n");
}

/// Where a request goes, by opentracker's prefix rules ([`ot_http.c`](https://erdgeist.org/gitweb/opentracker/tree/ot_http.c)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Announce,
    Scrape,
    FullScrape,
    Stats,
    /// [`METRICS_PATH`]: the Prometheus exposition of the stats counters.
    Metrics,
    /// [`DASHBOARD_PATH`]: the live dashboard's page...
    Dashboard,
    /// ...and [`DASHBOARD_JSON_PATH`], the samples it draws.
    DashboardJson,
    /// `GET /` or `GET /?…`: opentracker redirects (if configured) or answers 404.
    Root,
    NotFound,
}

/// Routes as opentracker: any path starting with `a` announces, exactly `scrape` without a query
/// is a full scrape, any other path starting with `sc` scrapes, and `stats_path` (without '/')
/// must match exactly. [`METRICS_PATH`] and the dashboard's paths come after `stats_path`, so a
/// stats page configured at `metrics` is the stats page. The path is compared raw, not
/// percent-decoded.
pub fn route(req: &Request<'_>, stats_path: &[u8]) -> Route {
    let path = req.path;
    if path.is_empty() {
        Route::Root
    } else if path.first() == Some(&b'a') {
        Route::Announce
    } else if path == b"scrape" && req.query.is_none() {
        Route::FullScrape
    } else if path.starts_with(b"sc") {
        Route::Scrape
    } else if path == stats_path {
        Route::Stats
    } else if path == METRICS_PATH {
        Route::Metrics
    } else if path == DASHBOARD_PATH {
        Route::Dashboard
    } else if path == DASHBOARD_JSON_PATH {
        Route::DashboardJson
    } else {
        Route::NotFound
    }
}

/// Status line text, using opentracker's wording where it has one.
pub fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Invalid Request",
        402 => "Payment Required",
        403 => "Access Denied",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Appends a response head: status line, Content-Type, Content-Length, `Connection: close` when
/// the connection will be closed, and the blank line.
pub fn write_response_head(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    content_length: usize,
    keep_alive: bool,
) {
    write_response_head_with(out, status, content_type, &[], content_length, keep_alive);
}

/// As [`write_response_head`], with `headers` (name, value) after Content-Type. Their text
/// comes from the code, never from a request.
pub fn write_response_head_with(
    out: &mut Vec<u8>,
    status: u16,
    content_type: &str,
    headers: &[(&str, &str)],
    content_length: usize,
    keep_alive: bool,
) {
    write_status_line(out, status);
    out.extend_from_slice(b"Content-Type: ");
    out.extend_from_slice(content_type.as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
    }
    out.extend_from_slice(b"\r\nContent-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(content_length).as_bytes());
    out.extend_from_slice(b"\r\n");
    finish_head(out, keep_alive);
}

/// Appends a whole `302 Found` response to `location` (CR and LF are dropped from it so a bad
/// config cannot inject headers).
pub fn write_redirect(out: &mut Vec<u8>, location: &str, keep_alive: bool) {
    write_status_line(out, 302);
    out.extend_from_slice(b"Location: ");
    out.extend(location.bytes().filter(|&b| b != b'\r' && b != b'\n'));
    out.extend_from_slice(b"\r\nContent-Length: 0\r\n");
    finish_head(out, keep_alive);
}

/// Appends a whole error response whose body is a bencoded `failure reason`, so BitTorrent
/// clients can show why (opentracker sends an HTML title; clients display neither well).
pub fn write_error(out: &mut Vec<u8>, status: u16, reason: &str, keep_alive: bool) {
    write_response_head(
        out,
        status,
        "text/plain",
        http_body::failure_len(reason),
        keep_alive,
    );
    http_body::write_failure(out, reason);
}

fn write_status_line(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(status_text(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn finish_head(out: &mut Vec<u8>, keep_alive: bool) {
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    b.get(start..end).unwrap_or_default()
}

/// True if a comma list of codings names gzip with a q other than 0.
fn lists_gzip(value: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|item| {
        let mut parts = item.split(|&b| b == b';');
        let coding = trim(parts.next().unwrap_or_default());
        if !coding.eq_ignore_ascii_case(b"gzip") {
            return false;
        }
        !parts.map(trim).any(|p| {
            let p = p.strip_prefix(b"q=").or_else(|| p.strip_prefix(b"Q="));
            p.is_some_and(|q| !q.is_empty() && q.iter().all(|&c| c == b'0' || c == b'.'))
        })
    })
}

fn parse_content_length(value: &[u8]) -> Result<usize, HttpError> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(HttpError::BadContentLength);
    }
    let mut n: usize = 0;
    for &b in value {
        n = n.saturating_mul(10).saturating_add(usize::from(b - b'0'));
    }
    if n > MAX_REQUEST_BYTES {
        return Err(HttpError::TooLarge);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{mutate, random_bytes, xorshift};

    const ANNOUNCE: &[u8] = b"GET /announce?info_hash=%01%23%45%67%89%ab%cd%ef%01%23%45%67%89%ab%cd%ef%01%23%45%67&peer_id=ABCDEFGHIJKLMNOPQRST&port=6881&left=0 HTTP/1.1\r\nHost: t\r\n\r\n";

    /// Parsed as the server does by default, keeping `X-Forwarded-For`.
    fn parse(buf: &[u8]) -> Result<Parsed<'_>, HttpError> {
        parse_request(buf, ProxyHeader::XForwardedFor)
    }

    fn complete(buf: &[u8]) -> Request<'_> {
        match parse(buf) {
            Ok(Parsed::Complete(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn spec_announce_vector() {
        let r = complete(ANNOUNCE);
        assert_eq!(r.path, b"announce");
        assert_eq!(
            r.query,
            Some(&b"info_hash=%01%23%45%67%89%ab%cd%ef%01%23%45%67%89%ab%cd%ef%01%23%45%67&peer_id=ABCDEFGHIJKLMNOPQRST&port=6881&left=0"[..])
        );
        assert!(r.keep_alive);
        assert!(!r.accepts_gzip);
        assert_eq!(r.head_len, ANNOUNCE.len());
        assert_eq!(r.body_len, 0);
        assert_eq!(route(&r, b"stats"), Route::Announce);
    }

    #[test]
    fn pipelined_requests_frame_one_at_a_time() {
        let second = b"GET /scrape?info_hash=x HTTP/1.1\r\n\r\n";
        let third = b"GET //stats HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc";
        let buf = [ANNOUNCE, &second[..], &third[..]].concat();
        let r1 = complete(&buf);
        assert_eq!(r1.head_len, ANNOUNCE.len());
        let rest = &buf[r1.head_len + r1.body_len..];
        let r2 = complete(rest);
        assert_eq!(
            (r2.path, r2.query),
            (&b"scrape"[..], Some(&b"info_hash=x"[..]))
        );
        assert_eq!(r2.head_len, second.len());
        let rest = &rest[r2.head_len + r2.body_len..];
        let r3 = complete(rest);
        assert_eq!(r3.path, b"stats");
        assert_eq!(r3.head_len + r3.body_len, third.len());
        assert_eq!(route(&r3, b"stats"), Route::Stats);
    }

    #[test]
    fn incomplete_and_too_large() {
        for n in 0..ANNOUNCE.len() {
            assert_eq!(parse(&ANNOUNCE[..n]), Ok(Parsed::Incomplete), "prefix {n}");
        }
        let mut big = b"GET /announce?".to_vec();
        big.resize(MAX_REQUEST_BYTES - 1, b'a');
        assert_eq!(parse(&big), Ok(Parsed::Incomplete));
        big.push(b'a');
        assert_eq!(parse(&big), Err(HttpError::TooLarge));
        big.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        assert_eq!(parse(&big), Err(HttpError::TooLarge));
        // A complete head that fits is fine even with more bytes after it.
        let mut ok = ANNOUNCE.to_vec();
        ok.resize(3 * MAX_REQUEST_BYTES, b'G');
        assert_eq!(complete(&ok).head_len, ANNOUNCE.len());
        let body = b"GET / HTTP/1.1\r\nContent-Length: 8193\r\n\r\n";
        assert_eq!(parse(body), Err(HttpError::TooLarge));
    }

    #[test]
    fn keep_alive_rules() {
        let cases: &[(&[u8], bool)] = &[
            (b"GET / HTTP/1.1\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nconnection: CLOSE\r\n\r\n", false),
            (
                b"GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\r\n",
                true,
            ),
            (b"GET / HTTP/1.0\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
            (b"GET / HTTP/1.0\r\nConnection: close\r\n\r\n", false),
        ];
        for (req, ka) in cases {
            let r = complete(req);
            assert_eq!(r.keep_alive, *ka, "{}", String::from_utf8_lossy(req));
            assert_eq!(r.http10, req.starts_with(b"GET / HTTP/1.0"));
        }
    }

    #[test]
    fn headers() {
        let r = complete(
            b"GET /a HTTP/1.1\r\nAccept-Encoding: deflate, GZIP;q=0.5\r\nX-Forwarded-For:  9.9.9.9, 8.8.8.8 \r\n\r\n",
        );
        assert!(r.accepts_gzip);
        assert_eq!(r.client_header.lines(), &[&b"9.9.9.9, 8.8.8.8"[..]]);
        let r = complete(
            b"GET /a HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: x\r\nx-forwarded-for: 2.2.2.2, 3.3.3.3\r\n\r\n",
        );
        assert_eq!(
            r.client_header.lines(),
            [&b"1.1.1.1"[..], b"2.2.2.2, 3.3.3.3"]
        );
        let many = b"GET / HTTP/1.1\r\nX-Forwarded-For: 1\r\nX-Forwarded-For: 2\r\nX-Forwarded-For: 3\r\nX-Forwarded-For: 4\r\nX-Forwarded-For: 5\r\n\r\n";
        let r = complete(many);
        assert_eq!(
            r.client_header.lines(),
            [&b"2"[..], b"3", b"4", b"5"],
            "the last lines kept"
        );
        assert_eq!(r.client_header.line_count(), 5);
        assert!(!complete(b"GET / HTTP/1.1\r\nAccept-Encoding: gzip;q=0\r\n\r\n").accepts_gzip);
        assert!(!complete(b"GET / HTTP/1.1\r\nAccept-Encoding: xgzip\r\n\r\n").accepts_gzip);
        // Bare LF line endings, as opentracker accepts.
        assert_eq!(complete(b"GET /scrape HTTP/1.0\n\n").path, b"scrape");
    }

    #[test]
    fn keeps_the_configured_client_header_only() {
        let req = b"GET / HTTP/1.1\r\nx-real-ip: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2\r\nCF-CONNECTING-IP:3.3.3.3\r\nTrue-Client-IP: 4.4.4.4 \r\nFORWARDED: for=5.5.5.5\r\nX-Real-IP: 6.6.6.6\r\nForwarded-For: 7.7.7.7\r\nX-Real-IP-2: 8.8.8.8\r\n\r\n";
        let want: [(ProxyHeader, &[&[u8]]); 5] = [
            (ProxyHeader::XForwardedFor, &[b"2.2.2.2"]),
            (ProxyHeader::XRealIp, &[b"1.1.1.1", b"6.6.6.6"]),
            (ProxyHeader::CfConnectingIp, &[b"3.3.3.3"]),
            (ProxyHeader::TrueClientIp, &[b"4.4.4.4"]),
            (ProxyHeader::Forwarded, &[b"for=5.5.5.5"]),
        ];
        for (header, lines) in want {
            let Ok(Parsed::Complete(r)) = parse_request(req, header) else {
                panic!("complete")
            };
            assert_eq!(r.client_header.header(), header);
            assert_eq!(r.client_header.lines(), lines, "{header}");
            assert_eq!(r.client_header.line_count(), lines.len());
        }
        let r = complete(b"GET / HTTP/1.1\r\nX-Real-IP: 1.1.1.1\r\n\r\n");
        assert!(r.client_header.is_empty());
    }

    #[test]
    fn errors() {
        let cases: &[(&[u8], HttpError)] = &[
            (b"POST /announce HTTP/1.1\r\n\r\n", HttpError::NotGet),
            (b"HEAD / HTTP/1.1\r\n\r\n", HttpError::NotGet),
            (b"get / HTTP/1.1\r\n\r\n", HttpError::NotGet),
            (b"P", HttpError::NotGet),
            (b"GET announce HTTP/1.1\r\n\r\n", HttpError::BadTarget),
            (
                b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                HttpError::BadContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                HttpError::BadContentLength,
            ),
            (
                b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                HttpError::TransferEncoding,
            ),
            (b"GET / HTTP/2.0\r\n\r\n", HttpError::BadRequest),
            (
                b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
                HttpError::BadRequest,
            ),
        ];
        for (req, err) in cases {
            assert_eq!(parse(req), Err(*err), "{}", String::from_utf8_lossy(req));
            assert!(matches!(err.status(), 400 | 500));
            assert!(!err.reason().is_empty());
        }
        let many = [
            &b"GET / HTTP/1.1\r\n"[..],
            &b"A: b\r\n".repeat(MAX_HEADERS + 1),
            b"\r\n",
        ]
        .concat();
        assert_eq!(parse(&many), Err(HttpError::TooManyHeaders));
        assert_eq!(HttpError::TooLarge.status(), 500);
        let huge = [&b"GET / HTTP/1.1\r\n"[..], &b"A: b\r\n".repeat(2000)].concat();
        assert_eq!(parse(&huge), Err(HttpError::TooLarge));
    }

    #[test]
    fn routing() {
        let cases: &[(&[u8], Route)] = &[
            (b"GET / HTTP/1.1\r\n\r\n", Route::Root),
            (b"GET /?info_hash=x HTTP/1.1\r\n\r\n", Route::Root),
            (b"GET //announce HTTP/1.1\r\n\r\n", Route::Announce),
            (b"GET /abc HTTP/1.1\r\n\r\n", Route::Announce),
            (b"GET /announce.php?x HTTP/1.1\r\n\r\n", Route::Announce),
            (b"GET /scrape HTTP/1.1\r\n\r\n", Route::FullScrape),
            (b"GET /scrape? HTTP/1.1\r\n\r\n", Route::Scrape),
            (b"GET /scrape.php HTTP/1.1\r\n\r\n", Route::Scrape),
            (b"GET /sc HTTP/1.1\r\n\r\n", Route::Scrape),
            (b"GET /stats?mode=tpbs HTTP/1.1\r\n\r\n", Route::Stats),
            (b"GET /statsx HTTP/1.1\r\n\r\n", Route::NotFound),
            (b"GET /metrics HTTP/1.1\r\n\r\n", Route::Metrics),
            (b"GET //metrics?x=1 HTTP/1.1\r\n\r\n", Route::Metrics),
            (b"GET /metricsx HTTP/1.1\r\n\r\n", Route::NotFound),
            (b"GET /metric HTTP/1.1\r\n\r\n", Route::NotFound),
            (b"GET /dashboard HTTP/1.1\r\n\r\n", Route::Dashboard),
            (
                b"GET /dashboard.json?x HTTP/1.1\r\n\r\n",
                Route::DashboardJson,
            ),
            (b"GET /dashboard/ HTTP/1.1\r\n\r\n", Route::NotFound),
            (b"GET /robots.txt HTTP/1.1\r\n\r\n", Route::NotFound),
        ];
        for (req, want) in cases {
            assert_eq!(
                route(&complete(req), b"stats"),
                *want,
                "{}",
                String::from_utf8_lossy(req)
            );
        }
        // A stats page configured at `metrics` takes the path; any other leaves it to metrics.
        let metrics = complete(b"GET /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(route(&metrics, b"metrics"), Route::Stats);
        assert_eq!(route(&metrics, b"my_stats"), Route::Metrics);
        let stats = complete(b"GET /stats HTTP/1.1\r\n\r\n");
        assert_eq!(route(&stats, b"metrics"), Route::NotFound);
        let dashboard = complete(b"GET /dashboard HTTP/1.1\r\n\r\n");
        assert_eq!(route(&dashboard, b"dashboard"), Route::Stats);
    }

    #[test]
    fn response_writers() {
        let mut out = Vec::new();
        write_response_head(&mut out, 200, "text/plain", 98, true);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 98\r\n\r\n"
        );
        out.clear();
        write_response_head_with(
            &mut out,
            200,
            "application/json",
            &[("Cache-Control", "no-store")],
            2,
            false,
        );
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
        );
        out.clear();
        write_redirect(&mut out, "http://x/\r\nEvil: 1", false);
        assert_eq!(
            out,
            b"HTTP/1.1 302 Found\r\nLocation: http://x/Evil: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        out.clear();
        write_error(&mut out, 400, "bad", false);
        let text = b"HTTP/1.1 400 Invalid Request\r\nContent-Type: text/plain\r\nContent-Length: 24\r\nConnection: close\r\n\r\nd14:failure reason3:bade";
        assert_eq!(out, text);
        for s in [200, 302, 400, 403, 404, 405, 429, 500, 503] {
            assert_ne!(status_text(s), "Unknown");
        }
    }

    #[test]
    fn never_panics() {
        let valid: &[&[u8]] = &[
            ANNOUNCE,
            b"GET /scrape HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 0\r\nAccept-Encoding: gzip\r\n\r\n",
        ];
        for v in valid {
            for n in 0..=v.len() {
                let _ = parse(&v[..n]);
            }
        }
        let mut rng = 0x1234_5678_9abc_def1u64;
        let alphabet = b"GET /?&=%:\r\n, ;qgzipHTP1.0ac\x00\xff";
        for _ in 0..20_000 {
            let base = valid[(xorshift(&mut rng) % 2) as usize];
            let m = mutate(&mut rng, base, alphabet);
            let n = (xorshift(&mut rng) % 200) as usize;
            let r = [&b"GET /"[..], &random_bytes(&mut rng, alphabet, n)].concat();
            for input in [&m, &r] {
                if let Ok(Parsed::Complete(req)) = parse(input) {
                    assert!(req.head_len <= input.len());
                    let _ = route(&req, b"stats");
                }
            }
        }
    }

    #[test]
    fn websocket_upgrades_are_recognised_and_nothing_else() {
        let up = |extra: &str| {
            let raw = format!("GET /announce HTTP/1.1\r\nHost: t\r\n{extra}\r\n");
            match parse_request(raw.as_bytes(), ProxyHeader::XForwardedFor) {
                Ok(Parsed::Complete(r)) => r.websocket_key.map(<[u8]>::to_vec),
                other => panic!("{other:?}"),
            }
        };
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let all = format!(
            "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
        );
        assert_eq!(up(&all), Some(key.as_bytes().to_vec()));
        assert_eq!(
            up(&all.replace("websocket", "WebSocket")),
            Some(key.as_bytes().to_vec())
        );
        for missing in [
            "Upgrade: websocket\r\n",
            "keep-alive, Upgrade",
            "Version: 13",
        ] {
            let without = all.replace(
                missing,
                if missing.contains("Version") {
                    "Version: 8"
                } else if missing.contains(',') {
                    "keep-alive"
                } else {
                    ""
                },
            );
            assert_eq!(up(&without), None, "{without}");
        }
        assert_eq!(up(&all.replace(key, "short==")), None);
        assert_eq!(up(""), None);
        let mut out = Vec::new();
        write_switching_protocols(&mut out, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert!(out.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(out.ends_with(b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"));
    }
}
