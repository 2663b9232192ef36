//! Request to response, with no sockets: the HTTP and UDP handlers.
//!
//! The server hands in the bytes of one request (an HTTP request head already framed by
//! `proto::http::parse_request`, or one UDP datagram), the client's address and the time, and
//! gets the whole reply written into a buffer it reuses. Nothing here allocates per request once
//! the worker's buffers have grown to their working size.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use ferrotracker_proto::forwarded::ClientHeader;
use ferrotracker_proto::http::{self, HttpError, Request, Route};
use ferrotracker_proto::http_body::{self, Family, Peers};
use ferrotracker_proto::query::{self, QueryError};
use ferrotracker_proto::{udp, Event};
use ferrotracker_swarm::{Announce, Counts, PeerAddr, Rng, Store, Want};

use crate::access::Access;
use crate::client_ip::{self, StatsReader};
use crate::config::{Config, StatsConfig, StatsReaders, TrackerConfig};
use crate::connid::ConnectionIds;
use crate::counters::{Counters, LiveCounters};
use crate::fullscrape::{self, FullScrape, Progress, StreamLimit};
use crate::livesync::{self, Handoff};
use crate::ratelimit::Intervals;
use crate::stats::{self, Snapshot};

/// opentracker's reply when an announce has no info_hash.
pub const MISSING_INFO_HASH: &str =
    "Your client forgot to send your torrent's info_hash. Please upgrade your client.";
/// opentracker's reply to an announce for a hash the access list refuses.
pub const NOT_AUTHORIZED: &str = "Requested download is not authorized for use with this tracker.";
/// The 503 when `http.max_streams` streamed replies are in progress.
pub const STREAMS_BUSY: &str =
    "tracker busy: too many full scrapes and stats streams in progress, try again later";
/// The 429 to a second full scrape within `tracker.full_scrape_interval`.
pub const FULL_SCRAPE_TOO_SOON: &str =
    "one full scrape per address per interval (tracker.full_scrape_interval): try again later";
/// UDP peers per reply, by family, so that a reply fits one ~1200-byte packet (opentracker).
pub const UDP_MAX_PEERS_V4: usize = 200;
pub const UDP_MAX_PEERS_V6: usize = 66;

/// A 16-byte key for one purpose (`label`) derived from the tracker's secret, so that each
/// keyed map gets its own key and none reveals the secret.
pub(crate) fn derive_key(secret: &[u8; 16], label: &[u8]) -> [u8; 16] {
    use std::hash::Hasher;
    let mut key = [0u8; 16];
    for (i, half) in key.chunks_mut(8).enumerate() {
        let mut h = siphasher::sip::SipHasher13::new_with_key(secret);
        h.write(label);
        h.write_u8(i as u8);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    key
}

/// State shared by every worker.
pub struct Tracker {
    pub store: Store,
    /// The `tracker.*` reply settings.
    pub cfg: TrackerConfig,
    stats: StatsConfig,
    stats_readers: StatsReaders,
    /// Where HTTP announces take the client address from (proxy headers, `ip=`).
    client_ip: client_ip::Rules,
    /// The access list checked on announces (not scrapes, not `stopped`); the server keeps a
    /// clone of the `Arc` to swap in reloaded lists.
    pub access: Arc<Access>,
    /// The tracker clock (`now`, Unix seconds) at start: stats' uptime counts from here.
    started: u32,
    /// Live sync is on: announces that opentracker would sync are queued in
    /// `Worker::sync_out` for the server to hand to its sync thread ([`Tracker::hand_off_sync`]).
    livesync: bool,
    conn_ids: ConnectionIds,
    /// Every counter slot handed out ([`Tracker::worker`], [`Tracker::counter_slot`]); the
    /// lock is taken to register a slot and to read them all, never to count.
    counter_slots: Mutex<Vec<Arc<LiveCounters>>>,
    /// `everything`'s `tracker_id`: derived from the secret key, which it does not reveal.
    tracker_id: u32,
    /// Live-sync entries on their way from the workers to the sync thread.
    pub sync_handoff: Handoff,
    /// Streams in progress, under `http.max_streams`.
    streams: StreamLimit,
    /// When each address last had a full scrape (`tracker.full_scrape_interval`).
    full_scrape_times: Option<Intervals>,
    /// The WebTorrent handlers' settings, message limits and offer-mark key.
    pub(crate) ws: crate::webtorrent::Settings,
    /// The live dashboard's samples, when `dashboard` is on.
    dashboard: Option<stats::Dashboard>,
}

/// What one worker owns: its random generator, reusable buffers and counters.
pub struct Worker {
    pub rng: Rng,
    /// This worker's counters; it is their only writer.
    pub counters: Arc<LiveCounters>,
    /// This worker's slot in the live-sync hand-off; the server sets it.
    pub index: usize,
    /// A streamed reply (full scrape, tpbs, statedump) that the last `handle_http` started when
    /// it returned [`After::Stream`]; the server takes it and drives it with
    /// [`Tracker::continue_stream`].
    pub stream: Option<Box<FullScrape>>,
    /// Live-sync entries of this worker's announces since the last hand-off.
    pub sync_out: Vec<ferrotracker_proto::sync::Entry>,
    out4: Vec<u8>,
    out6: Vec<u8>,
    body: Vec<u8>,
}

impl Worker {
    /// A worker whose counters no tracker reads; [`Tracker::worker`] makes one whose it does.
    pub fn new(seed: u64) -> Self {
        Worker {
            rng: Rng::new(seed),
            counters: Arc::default(),
            index: 0,
            stream: None,
            sync_out: Vec::new(),
            out4: Vec::with_capacity(200 * 6),
            out6: Vec::with_capacity(200 * 18),
            body: Vec::with_capacity(4096),
        }
    }
}

/// How the server should treat the connection after an HTTP reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    KeepOpen,
    Close,
    /// The head of a streamed reply is in `out` and its body generator in `Worker::stream`:
    /// send the body chunk by chunk with [`Tracker::continue_stream`], then keep the
    /// connection open if `keep_alive`.
    Stream {
        keep_alive: bool,
    },
}

impl After {
    /// What follows a reply that is sent whole: the connection stays open if the request
    /// asked for keep-alive.
    pub fn of(keep_alive: bool) -> After {
        if keep_alive {
            After::KeepOpen
        } else {
            After::Close
        }
    }
}

impl Tracker {
    /// The handlers of configuration `cfg`, with the access list `access` (the server loads
    /// it, and swaps reloads in through the same `Arc`), `started` the clock at start and
    /// `conn_id_key` secret and random (the server reads it from the OS).
    pub fn new(cfg: &Config, access: Arc<Access>, started: u32, conn_id_key: [u8; 16]) -> Self {
        let store = Store::new(cfg.store);
        let tracker_id = {
            use std::hash::Hasher;
            let mut h = siphasher::sip::SipHasher13::new_with_key(&conn_id_key);
            h.write(b"ferrotracker tracker id");
            h.finish() as u32
        };
        // Keys the full-scrape interval's map, so that no one can aim addresses at one shard.
        let limits_key = derive_key(&conn_id_key, b"ferrotracker full scrape interval");
        Tracker {
            store,
            streams: StreamLimit::new(cfg.http.max_streams as usize),
            full_scrape_times: (cfg.tracker.full_scrape_interval > 0).then(|| {
                Intervals::new(
                    cfg.tracker.full_scrape_interval,
                    cfg.ratelimit.max_addresses,
                    limits_key,
                )
            }),
            cfg: cfg.tracker.clone(),
            stats: cfg.stats.clone(),
            stats_readers: cfg.stats_readers(),
            client_ip: cfg.client_ip(),
            access,
            started,
            livesync: cfg.livesync.listen.is_some(),
            conn_ids: ConnectionIds::new(conn_id_key),
            counter_slots: Mutex::new(Vec::new()),
            tracker_id,
            sync_handoff: Handoff::default(),
            ws: crate::webtorrent::Settings::new(&cfg.webtorrent, &conn_id_key),
            dashboard: cfg
                .dashboard
                .enabled
                .then(|| stats::Dashboard::new(&cfg.dashboard)),
        }
    }

    /// The request header that names the client behind a trusted proxy: the server frames
    /// requests keeping it ([`ferrotracker_proto::http::parse_request`]).
    pub fn client_header(&self) -> ferrotracker_proto::forwarded::ProxyHeader {
        self.client_ip.header
    }

    /// The stats page's path, without the leading '/' (`access.stats_path`).
    pub fn stats_path(&self) -> &str {
        &self.stats.path
    }

    /// Whether `ip` (canonical) is a trusted proxy (`access.proxy`, `-A`): its word on the
    /// client's address is taken, in a request header or a PROXY protocol header.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.client_ip.proxies.contains(ip)
    }

    /// This node's id: `everything`'s `tracker_id` and the live-sync packets' sender id.
    pub fn tracker_id(&self) -> u32 {
        self.tracker_id
    }

    /// Hands the worker's queued live-sync entries to the sync thread (the server calls this
    /// once per event-loop turn); entries that find no room are dropped and counted.
    pub fn hand_off_sync(&self, w: &mut Worker) {
        if !w.sync_out.is_empty() {
            let dropped = self.sync_handoff.give(w.index, &mut w.sync_out);
            w.counters.sync.dropped_queue_full.add(dropped as u64);
        }
    }

    /// A worker whose counters stats read.
    pub fn worker(&self, seed: u64) -> Worker {
        let mut w = Worker::new(seed);
        w.counters = self.counter_slot();
        w
    }

    /// A new counter slot that stats read, for one writer (a worker, the sync thread).
    pub fn counter_slot(&self) -> Arc<LiveCounters> {
        let slot = Arc::new(LiveCounters::default());
        self.counter_slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::clone(&slot));
        slot
    }

    /// Every slot's counters added up, as they are now.
    pub fn total_counters(&self) -> Counters {
        let mut total = Counters::default();
        for c in self
            .counter_slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            total.add(&c.read());
        }
        total
    }

    /// Counters and store totals as stats show them.
    pub fn snapshot(&self, now: u32) -> Snapshot {
        let counters = self.total_counters();
        Snapshot {
            counters,
            totals: self.store.totals(),
            uptime: u64::from(now.saturating_sub(self.started)),
            tracker_id: self.tracker_id,
            memory: stats::Memory {
                limit: self.store.config().max_memory.bytes(),
                estimated: self.store.estimated_bytes(),
            },
            access: self.access.mode().map(|_| {
                let (added, deleted) = self.access.edits();
                stats::AccessSizes {
                    file: self.access.len() as u64,
                    added: added as u64,
                    deleted: deleted as u64,
                }
            }),
        }
    }

    /// Seconds between the dashboard's samples, when it is on: the server calls
    /// [`Tracker::sample_dashboard`] that often.
    pub fn dashboard_interval(&self) -> Option<u32> {
        self.dashboard.as_ref().map(stats::Dashboard::interval_secs)
    }

    /// Adds a sample of the counters and the store's totals to the dashboard's ring, `at_ms`
    /// the server's monotonic clock in milliseconds. One thread calls this.
    pub fn sample_dashboard(&self, at_ms: u64) {
        if let Some(d) = &self.dashboard {
            d.record(
                at_ms,
                &self.total_counters(),
                &self.store.totals(),
                &self.store,
            );
        }
    }

    /// Streams in progress now (`http.max_streams` bounds them).
    pub fn open_streams(&self) -> usize {
        self.streams.open()
    }

    /// Starts a streamed reply (full scrape, `tpbs`, `statedump`) to `req`: writes the head,
    /// leaves the stream in the worker, and says whether the connection stays open after it.
    /// Gzip when asked; unchunked, and so closed at the end, for an HTTP/1.0 client.
    ///
    /// Refused with a 503 when `http.max_streams` are in progress, and, for a full scrape
    /// (`full_scrape_from` is the socket's address), with a 429 when that address had one less
    /// than `tracker.full_scrape_interval` ago (opentracker's `WANT_MODEST_FULLSCRAPES`
    /// answers 402 there).
    fn start_stream(
        &self,
        w: &mut Worker,
        format: fullscrape::Format,
        req: &Request<'_>,
        full_scrape_from: Option<IpAddr>,
        now: u32,
        out: &mut Vec<u8>,
    ) -> After {
        let after = After::of(req.keep_alive);
        // The process-wide place first: a refused client has not used up its interval.
        let Some(permit) = self.streams.try_start() else {
            w.counters.streams_refused.inc();
            http::write_error(out, 503, STREAMS_BUSY, req.keep_alive);
            return after;
        };
        if let Some(ip) = full_scrape_from {
            if let Some(times) = &self.full_scrape_times {
                if !times.allow(ip, now) {
                    w.counters.full_scrapes_too_soon.inc();
                    http::write_error(out, 429, FULL_SCRAPE_TOO_SOON, req.keep_alive);
                    return after;
                }
            }
            w.counters.full_scrapes.inc();
        }
        let mut s = FullScrape::new(format, req.accepts_gzip).with_permit(permit);
        if req.http10 {
            s = s.unchunked();
        }
        s.write_head(out, req.keep_alive);
        let keep_alive = s.keeps_alive(req.keep_alive);
        w.stream = Some(Box::new(s));
        After::Stream { keep_alive }
    }

    /// Appends the next chunk of the streamed reply `s` to `out` (see [`After::Stream`]).
    pub fn continue_stream(
        &self,
        w: &mut Worker,
        s: &mut FullScrape,
        out: &mut Vec<u8>,
    ) -> Progress {
        let before = s.bytes();
        let p = s.next_chunk(&self.store, out);
        w.counters.full_scrape_bytes.add(s.bytes() - before);
        p
    }

    fn interval(&self, rng: &mut Rng) -> u32 {
        jittered(self.cfg.interval, rng)
    }

    // ---------------------------------------------------------------- HTTP

    /// Answers one framed HTTP request, appending the whole reply to `out` (pipelined replies
    /// queue up behind each other).
    pub fn handle_http(
        &self,
        w: &mut Worker,
        req: &Request<'_>,
        client: IpAddr,
        now: u32,
        out: &mut Vec<u8>,
    ) -> After {
        let keep_alive = req.keep_alive;
        match http::route(req, self.stats.path.as_bytes()) {
            Route::FullScrape if self.cfg.full_scrape => {
                return self.start_stream(
                    w,
                    fullscrape::Format::Bencode,
                    req,
                    Some(client),
                    now,
                    out,
                );
            }
            // `client` is the socket's address; stats access follows the client header of a
            // trusted proxy ([`client_ip::Rules::stats_reader`]).
            Route::Stats => return self.http_stats(w, req, client, now, out),
            Route::Metrics => return self.http_metrics(w, req, client, now, out),
            Route::Dashboard => return self.http_dashboard(w, req, client, now, false, out),
            Route::DashboardJson => return self.http_dashboard(w, req, client, now, true, out),
            Route::Announce => self.http_announce(w, req, client, now, out),
            Route::Scrape => self.http_scrape(w, req, out),
            Route::Root => match &self.cfg.redirect_url {
                Some(url) => {
                    w.counters.http_redirects.inc();
                    http::write_redirect(out, url, keep_alive);
                }
                None => {
                    w.counters.http_404.inc();
                    http::write_error(
                        out,
                        404,
                        "not found: this is a BitTorrent tracker, announce at /announce",
                        keep_alive,
                    );
                }
            },
            Route::FullScrape => {
                w.counters.http_403.inc();
                fullscrape::write_disabled(out, keep_alive);
            }
            Route::NotFound => {
                w.counters.http_404.inc();
                http::write_error(out, 404, "not found", keep_alive);
            }
        }
        After::of(keep_alive)
    }

    /// Appends the answer to a request that could not be framed; the connection must then be
    /// closed.
    pub fn http_framing_error(&self, w: &mut Worker, e: HttpError, out: &mut Vec<u8>) {
        match e.status() {
            500 => w.counters.http_500.inc(),
            _ => {
                w.counters.http_400_parse.inc();
            }
        }
        http::write_error(out, e.status(), e.reason(), false);
    }

    fn query_error(&self, w: &mut Worker, e: QueryError, keep_alive: bool, out: &mut Vec<u8>) {
        w.counters.http_400_param.inc();
        http::write_error(out, e.status(), e.reason(), keep_alive);
    }

    fn http_announce(
        &self,
        w: &mut Worker,
        req: &Request<'_>,
        client: IpAddr,
        now: u32,
        out: &mut Vec<u8>,
    ) {
        w.counters.http_announces.inc();
        let q = match query::parse_announce(req.query.unwrap_or(b"")) {
            Ok(q) => q,
            Err(e) => return self.query_error(w, e, req.keep_alive, out),
        };
        let body = &mut w.body;
        body.clear();
        let Some(info_hash) = q.info_hash else {
            http_body::write_failure(body, MISSING_INFO_HASH);
            return finish_ok(body, req.keep_alive, out);
        };
        let ip_param = q.ip.as_ref().and_then(|(b, n)| b.get(..*n));
        let client = match self.client_ip.choose(client, &req.client_header, ip_param) {
            Ok(ip) => ip,
            Err(client_ip::BadIpParam) => {
                return self.query_error(w, QueryError::BadIp, req.keep_alive, out)
            }
        };
        // As opentracker, `stopped` is not checked: a peer can always leave.
        if q.event != Event::Stopped && !self.access.allows(&info_hash) {
            let body = &mut w.body;
            http_body::write_failure(body, NOT_AUTHORIZED);
            return finish_ok(body, req.keep_alive, out);
        }
        let addr = PeerAddr::from(client);
        let numwant = q
            .numwant
            .unwrap_or(self.cfg.numwant_default)
            .min(self.cfg.numwant_max) as usize;
        w.counters
            .numwant(q.numwant.map_or(numwant, |n| n as usize));
        let a = Announce {
            info_hash,
            addr,
            port: q.port,
            seeding: q.left == Some(0),
            event: q.event,
        };
        let c = match self.record(w, &a, client, Want::Both(numwant), now) {
            Ok(c) => c,
            // Out of room: a condition of the server, 503. The per-address limit refuses this
            // client's request: a failure reason, as BEP 3 refuses.
            Err(refused) if refused.is_full() => {
                http::write_error(out, 503, refused.reason(), req.keep_alive);
                return;
            }
            Err(refused) => {
                let body = &mut w.body;
                http_body::write_failure(body, refused.reason());
                return finish_ok(body, req.keep_alive, out);
            }
        };
        let body = &mut w.body;
        let interval = self.interval(&mut w.rng);
        // opentracker's `min interval` is half the interval.
        let min_interval = interval / 2;
        if a.event == Event::Stopped {
            let family = match addr {
                PeerAddr::V4(_) => Family::V4,
                PeerAddr::V6(_) => Family::V6,
            };
            http_body::write_stopped(body, c.into(), interval, min_interval, family);
            return finish_ok(body, req.keep_alive, out);
        }
        let (v4, v6) = (w.out4.as_slice(), w.out6.as_slice());
        let peers = if q.compact {
            Peers::Compact { v4, v6 }
        } else if numwant > 0 {
            Peers::Dicts { v4, v6 }
        } else {
            Peers::Omitted
        };
        http_body::write_announce(body, c.into(), interval, min_interval, peers);
        finish_ok(body, req.keep_alive, out);
    }

    fn http_scrape(&self, w: &mut Worker, req: &Request<'_>, out: &mut Vec<u8>) {
        w.counters.http_scrapes.inc();
        let q = match query::parse_scrape(req.query.unwrap_or(b"")) {
            Ok(q) => q,
            Err(e) => return self.query_error(w, e, req.keep_alive, out),
        };
        let body = &mut w.body;
        body.clear();
        http_body::write_scrape_start(body);
        for h in q.hashes() {
            // opentracker omits unknown torrents and answers in request order.
            if let Some(c) = self.store.scrape(h) {
                http_body::write_scrape_file(body, h, c.into());
            }
        }
        http_body::write_scrape_end(body);
        finish_ok(body, req.keep_alive, out);
    }

    // ---------------------------------------------------------------- stats

    /// Whether a request from `socket` with the client header `header` may read `/stats` and
    /// `/metrics`: decided on the client a trusted proxy names, else on `socket`; a trusted
    /// proxy's own request only where `access.stats` or `-A` grant its address explicitly.
    pub fn may_read_stats(&self, socket: IpAddr, header: &ClientHeader<'_>) -> bool {
        let nets = &self.stats_readers.nets;
        if nets.is_empty() {
            return true;
        }
        match self.client_ip.stats_reader(socket, header) {
            StatsReader::Direct(ip) | StatsReader::Forwarded(ip) => nets.contains(ip),
            StatsReader::Proxy(ip) => self.stats_readers.explicit && nets.contains(ip),
            StatsReader::Nobody => false,
        }
    }

    /// Answers 403 to a client that may not read `/stats` (nor the dashboard); returns whether
    /// it did.
    fn refuse_stats_reader(
        &self,
        w: &mut Worker,
        req: &Request<'_>,
        client: IpAddr,
        out: &mut Vec<u8>,
    ) -> bool {
        let refused = !self.may_read_stats(client, &req.client_header);
        if refused {
            w.counters.http_403.inc();
            http::write_error(out, 403, "access denied", req.keep_alive);
        }
        refused
    }

    fn http_stats(
        &self,
        w: &mut Worker,
        req: &Request<'_>,
        client: IpAddr,
        now: u32,
        out: &mut Vec<u8>,
    ) -> After {
        let keep_alive = req.keep_alive;
        let after = After::of(keep_alive);
        if self.refuse_stats_reader(w, req, client, out) {
            return after;
        }
        let mode = match stats::parse_query(req.query.unwrap_or(b"")) {
            Ok(m) => m,
            Err(e) => {
                w.counters.http_400_param.inc();
                http::write_error(out, 400, e.reason(), keep_alive);
                return after;
            }
        };
        if let stats::Mode::Stream(format) = mode {
            w.counters.http_stats.inc();
            // opentracker gzips tpbs and statedump only when asked, as full scrapes.
            return self.start_stream(w, format, req, None, now, out);
        }
        let mut snap = self.snapshot(now);
        // The page counts itself; the live count follows only if the page is served, so no
        // counter is ever taken back.
        snap.counters.http_stats += 1;
        let mut body = String::new();
        match stats::render(mode, &snap, &self.store, &mut body) {
            Ok(()) => {
                w.counters.http_stats.inc();
                http::write_response_head(
                    out,
                    200,
                    stats::content_type(mode),
                    body.len(),
                    keep_alive,
                );
                out.extend_from_slice(body.as_bytes());
            }
            Err(e) => {
                w.counters.http_400_param.inc();
                http::write_error(out, 400, e.reason(), keep_alive);
            }
        }
        after
    }

    fn http_metrics(
        &self,
        w: &mut Worker,
        req: &Request<'_>,
        client: IpAddr,
        now: u32,
        out: &mut Vec<u8>,
    ) -> After {
        let keep_alive = req.keep_alive;
        if !self.may_read_stats(client, &req.client_header) {
            w.counters.http_403.inc();
            http::write_error(out, 403, "access denied", keep_alive);
        } else {
            w.counters.http_stats.inc();
            let snap = self.snapshot(now);
            let mut body = String::new();
            stats::render_metrics(&snap, &mut body);
            http::write_response_head(
                out,
                200,
                "text/plain; version=0.0.4",
                body.len(),
                keep_alive,
            );
            out.extend_from_slice(body.as_bytes());
        }
        After::of(keep_alive)
    }

    /// `/dashboard` (the page) or, with `json`, `/dashboard.json` (its samples): to those who
    /// may read `/stats`, as `/stats` is; not found when `dashboard` is off.
    fn http_dashboard(
        &self,
        w: &mut Worker,
        req: &Request<'_>,
        client: IpAddr,
        now: u32,
        json: bool,
        out: &mut Vec<u8>,
    ) -> After {
        let keep_alive = req.keep_alive;
        let after = After::of(keep_alive);
        let Some(d) = &self.dashboard else {
            w.counters.http_404.inc();
            http::write_error(out, 404, "not found (dashboard off)", keep_alive);
            return after;
        };
        if self.refuse_stats_reader(w, req, client, out) {
            return after;
        }
        w.counters.http_stats.inc();
        if json {
            let mut body = String::new();
            d.render_json(u64::from(now.saturating_sub(self.started)), &mut body);
            http::write_response_head_with(
                out,
                200,
                "application/json",
                &[("Cache-Control", "no-store")],
                body.len(),
                keep_alive,
            );
            out.extend_from_slice(body.as_bytes());
        } else {
            let page = stats::dashboard::PAGE;
            http::write_response_head_with(
                out,
                200,
                "text/html; charset=utf-8",
                &[
                    ("Cache-Control", "no-cache"),
                    ("Content-Security-Policy", stats::dashboard::PAGE_POLICY),
                    ("X-Content-Type-Options", "nosniff"),
                ],
                page.len(),
                keep_alive,
            );
            out.extend_from_slice(page.as_bytes());
        }
        after
    }

    // ---------------------------------------------------------------- UDP

    /// Answers one UDP datagram into `out` (cleared first); an empty `out` means no reply.
    /// No reply is ever larger than needed: error packets are cut to the request's size so the
    /// tracker can't amplify traffic towards a forged source address.
    pub fn handle_udp(
        &self,
        w: &mut Worker,
        packet: &[u8],
        client: SocketAddr,
        now: u32,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        w.counters.udp_packets.inc();
        let ip = client.ip().to_canonical();
        let req = match udp::parse_request(packet) {
            Ok(r) => r,
            Err(e) => {
                w.counters.udp_bad_packets.inc();
                if let Some(tid) = e.transaction_id() {
                    udp::write_error(out, tid, e.reason().as_bytes());
                    out.truncate(packet.len());
                }
                return;
            }
        };
        match req {
            udp::Request::Connect { transaction_id } => {
                w.counters.udp_connects.inc();
                udp::write_connect(out, transaction_id, self.conn_ids.make(ip, now));
            }
            udp::Request::Announce(r) => {
                if !self.conn_ids.check(r.connection_id, ip, now) {
                    return self.bad_connection_id(w, r.transaction_id, packet.len(), out);
                }
                w.counters.udp_announces.inc();
                if r.event != Event::Stopped && !self.access.allows(&r.info_hash) {
                    // opentracker's refusal: the first 8 bytes of an announce reply.
                    out.extend_from_slice(&1u32.to_be_bytes());
                    out.extend_from_slice(&r.transaction_id.to_be_bytes());
                    return;
                }
                let addr = PeerAddr::from(ip);
                let family_cap = match addr {
                    PeerAddr::V4(_) => UDP_MAX_PEERS_V4,
                    PeerAddr::V6(_) => UDP_MAX_PEERS_V6,
                };
                let cap = family_cap.min(self.cfg.numwant_max as usize);
                // BEP 15: -1 (or any negative) asks for the default.
                let want = if r.num_want < 0 {
                    self.cfg.numwant_default as usize
                } else {
                    r.num_want as usize
                };
                w.counters.numwant(want);
                let a = Announce {
                    info_hash: r.info_hash,
                    addr,
                    port: r.port,
                    seeding: r.left == 0,
                    event: r.event,
                };
                let c = match self.record(w, &a, ip, Want::SameFamily(want.min(cap)), now) {
                    Ok(c) => c,
                    Err(refused) => {
                        udp::write_error(out, r.transaction_id, refused.reason().as_bytes());
                        out.truncate(packet.len());
                        return;
                    }
                };
                let interval = self.interval(&mut w.rng);
                udp::write_announce_header(out, r.transaction_id, interval, c.leechers, c.seeders);
                out.extend_from_slice(&w.out4);
                out.extend_from_slice(&w.out6);
            }
            udp::Request::Scrape(s) => {
                if !self.conn_ids.check(s.connection_id, ip, now) {
                    return self.bad_connection_id(w, s.transaction_id, packet.len(), out);
                }
                w.counters.udp_scrapes.inc();
                udp::write_scrape_header(out, s.transaction_id);
                for h in s.info_hashes() {
                    let c = self.store.scrape(&h).unwrap_or_default();
                    udp::write_scrape_entry(out, c.seeders, c.downloaded, c.leechers);
                }
            }
        }
    }

    /// Records one announce for either protocol: counts a first completion, leaves the reply's peers
    /// in the worker's `out4`/`out6`, queues the live-sync entry, and counts what the store's
    /// limits held back.
    fn record(
        &self,
        w: &mut Worker,
        a: &Announce,
        client: IpAddr,
        want: Want,
        now: u32,
    ) -> Result<Counts, ferrotracker_swarm::Refused> {
        w.out4.clear();
        w.out6.clear();
        match self
            .store
            .announce(a, want, now, &mut w.rng, &mut w.out4, &mut w.out6)
        {
            Ok(done) => {
                // As opentracker: a completion counts when the torrent's downloads go up.
                if done.completed {
                    w.counters.completed.inc();
                }
                w.counters
                    .peers_not_stored
                    .add(u64::from(!done.stored && a.event != Event::Stopped));
                if let Some(age) = done.renewed_after {
                    w.counters.renew(age);
                }
                if done.sync && self.livesync {
                    w.sync_out.push(livesync::entry_for(
                        a.info_hash,
                        client,
                        a.port,
                        a.seeding,
                        a.event,
                    ));
                }
                Ok(done.counts)
            }
            Err(refused) => {
                if refused.is_full() {
                    w.counters.refused_full.inc();
                } else {
                    w.counters.refused_address.inc();
                }
                Err(refused)
            }
        }
    }

    fn bad_connection_id(&self, w: &mut Worker, tid: u32, request_len: usize, out: &mut Vec<u8>) {
        w.counters.udp_bad_connection_id.inc();
        udp::write_error(out, tid, udp::CONNECTION_ID_MISMATCH);
        out.truncate(request_len);
    }
}

/// An announce interval of `base` seconds jittered by ±10%, as opentracker's, so that clients
/// that started together drift apart.
pub(crate) fn jittered(base: u32, rng: &mut Rng) -> u32 {
    let base = base.max(1);
    let spread = (base / 5).max(1);
    (base - base / 10).saturating_add(rng.below(u64::from(spread)) as u32)
}

/// A store's counts as reply bodies name them.
fn finish_ok(body: &[u8], keep_alive: bool, out: &mut Vec<u8>) {
    http::write_response_head(out, 200, "text/plain", body.len(), keep_alive);
    out.extend_from_slice(body);
}
