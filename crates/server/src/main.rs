//! ferrotracker: the binary. Parses flags and config, binds every socket, starts one worker
//! per core plus the sweeper, and stops cleanly on SIGINT or SIGTERM.

mod accessfifo;
mod accessfile;
mod bind;
mod check;
mod livesync;
mod logging;
mod notify;
mod persist;
mod privs;
mod worker;

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferrotracker_core::config::{self, Command, Config, MemoryLimit, Proto};
use ferrotracker_core::memory;
use ferrotracker_core::ratelimit::{AddressCounts, RateLimiter};
use ferrotracker_core::Tracker;
use mio::{Poll, Waker};

use ferrotracker::tls::{self, CertFiles, CertResolver};

use crate::worker::{Listener, Shared, WAKER};

fn main() -> ExitCode {
    let cfg = match config::parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Run(cfg)) => cfg,
        Ok(Command::PrintConfig(cfg)) => {
            print!("{}", config::print(&cfg));
            return ExitCode::SUCCESS;
        }
        Ok(Command::CheckConfig(cfg)) => return check::run(&cfg),
        Ok(Command::Help) => {
            print!("{}", config::usage());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("ferrotracker {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("ferrotracker: {e}");
            eprintln!("Try `ferrotracker -h` for help.");
            return ExitCode::from(1);
        }
    };
    logging::init(&cfg.log);
    match run(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            // opentracker exits 111 when it cannot bind or drop privileges.
            ExitCode::from(111)
        }
    }
}

fn run(mut cfg: Config) -> anyhow::Result<()> {
    let workers = match cfg.process.workers {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        n => n,
    };
    // Signals first, so that a SIGTERM during start-up is not the default (killing) action.
    let signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])?;
    raise_open_files_limit(cfg.http.max_connections);
    // systemd notifications: connected now, before a chroot hides the socket's path.
    let notifier = notify::Notifier::from_env();
    // Before the chroot: the path is as the command line gave it.
    warn_if_key_readable(cfg.livesync.key_file.as_deref());
    // Read before a chroot hides /proc and /sys.
    let (max_memory, memory_from) = memory_ceiling(cfg.store.max_memory);
    cfg.store.max_memory = max_memory;
    tracing::info!("swarm memory ceiling: {memory_from}");
    // Before the privilege drop, so that a key only root may read works; a pair that does not
    // load stops the start, naming the file.
    let certs = load_certificates(&cfg)?;
    let bound = bind::bind_all(&cfg.listen, workers)?;
    let sync_sockets = livesync::bind(&cfg)?;
    // Bind first (ports below 1024 too), then give up root, then open the files the config
    // names, relative to the new root, as opentracker does.
    if let Some(d) =
        privs::drop_privileges(cfg.process.rootdir.as_deref(), cfg.process.user.as_deref())?
    {
        tracing::info!(
            "running as uid {} gid {}{}",
            d.uid,
            d.gid,
            d.root
                .map(|r| format!(", chrooted to {}", r.display()))
                .unwrap_or_default()
        );
    }

    let mut key = [0u8; 16];
    getrandom::getrandom(&mut key).context("reading random bytes for the connection-id key")?;
    // Keys the per-address maps, so that no one can aim many addresses at one shard.
    let mut limits_key = [0u8; 16];
    getrandom::getrandom(&mut limits_key).context("reading random bytes")?;
    let start_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    // Files named in the config are opened now, after the privilege drop, as opentracker.
    let (access, access_stamp) = match &cfg.access.list {
        Some(file) => accessfile::load_initial(file),
        None => Default::default(),
    };
    let access = Arc::new(access);
    let fifos = accessfifo::Fifos::spawn(
        cfg.access.fifo_add.as_deref(),
        cfg.access.fifo_delete.as_deref(),
        &access,
    )?;
    // Each worker's epoll instance, and its waker (shutdown, relays from other workers).
    let mut polls = Vec::with_capacity(workers);
    let mut inboxes = Vec::with_capacity(workers);
    for _ in 0..workers {
        let poll = Poll::new().context("creating epoll instance")?;
        inboxes.push(worker::Inbox::new(Waker::new(poll.registry(), WAKER)?));
        polls.push(poll);
    }
    let shared = Arc::new(Shared {
        tracker: Tracker::new(&cfg, Arc::clone(&access), start_unix, key),
        start: Instant::now(),
        start_unix,
        shutdown: AtomicBool::new(false),
        http: cfg.http.clone(),
        http_open: AtomicUsize::new(0),
        per_ip: AddressCounts::new(cfg.http.max_connections_per_ip, limits_key),
        ratelimit: (cfg.ratelimit.per_second > 0)
            .then(|| RateLimiter::new(cfg.ratelimit, limits_key)),
        tls: match &certs {
            Some(r) => Some(tls::server_config(Arc::clone(r)).context("setting up TLS")?),
            None => None,
        },
        inboxes,
        liveness: notify::Liveness::new(workers),
    });

    if let Some(path) = &cfg.statedump.load {
        // Restored after the access list is in place, so nothing it refuses comes back.
        if let Err(e) = persist::load(
            &shared.tracker,
            path,
            cfg.statedump.peers,
            shared.now(),
            |h| access.allows(h),
        ) {
            tracing::warn!("{e:#}; starting with an empty tracker");
        }
    }

    // Hand each worker its copy of every socket.
    let mut per_worker: Vec<(Vec<Listener>, Vec<mio::net::UdpSocket>)> =
        (0..workers).map(|_| (Vec::new(), Vec::new())).collect();
    for b in bound {
        for (i, s) in b.sockets.into_iter().enumerate() {
            match b.proto {
                Proto::Tcp | Proto::Tls => per_worker[i].0.push(Listener {
                    socket: mio::net::TcpListener::from_std(s.into()),
                    tls: b.proto == Proto::Tls,
                }),
                Proto::Udp => per_worker[i]
                    .1
                    .push(mio::net::UdpSocket::from_std(s.into())),
            }
        }
    }

    let mut handles = Vec::with_capacity(workers);
    for (i, ((tcp, udp), poll)) in per_worker.into_iter().zip(polls).enumerate() {
        let mut seed = [0u8; 8];
        getrandom::getrandom(&mut seed)?;
        let shared = Arc::clone(&shared);
        handles.push(
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || worker::run(i, shared, poll, tcp, udp, u64::from_le_bytes(seed)))?,
        );
    }
    tracing::info!(
        "ferrotracker {} serving with {workers} workers",
        env!("CARGO_PKG_VERSION")
    );

    let syncer = match sync_sockets {
        Some(s) => Some(livesync::Syncer::spawn(Arc::clone(&shared), s, &cfg)?),
        None => None,
    };

    let sweeper = {
        let (shared, certs) = (Arc::clone(&shared), certs.clone());
        std::thread::Builder::new()
            .name("sweeper".into())
            .spawn(move || sweep_loop(&shared, certs.as_deref()))?
    };

    let dumper = match (&cfg.statedump.file, cfg.statedump.interval) {
        (Some(path), secs) if secs > 0 => {
            let (shared, path, peers) = (Arc::clone(&shared), path.clone(), cfg.statedump.peers);
            let every = Duration::from_secs(u64::from(secs));
            Some(
                std::thread::Builder::new()
                    .name("statedump".into())
                    .spawn(move || dump_loop(&shared, &path, peers, every))?,
            )
        }
        _ => None,
    };

    let reloader = match &cfg.access.list {
        Some(file) => Some(
            accessfile::Reloader::spawn(file.clone(), Arc::clone(&access), access_stamp)
                .context("starting the access-list reload thread")?,
        ),
        None => None,
    };
    let watchdog = notifier.spawn_watchdog(Arc::clone(&shared))?;
    notifier.ready(&format!("serving with {workers} workers"));
    wait_for_signal(signals, || {
        notifier.reloading();
        match &reloader {
            Some(r) => r.reload(),
            None => tracing::info!("SIGHUP: no access list to reload"),
        }
        if let Some(c) = &certs {
            report_reload(c, c.reload(), "SIGHUP");
        }
        notifier.ready(&format!("serving with {workers} workers"));
    })?;
    notifier.stopping();
    if let Some(r) = reloader {
        r.stop();
    }
    fifos.stop();
    shared.shutdown.store(true, Ordering::SeqCst);
    for inbox in &shared.inboxes {
        inbox.wake();
    }
    for h in handles {
        match h.join() {
            Ok(Err(e)) => tracing::error!("worker failed: {e}"),
            Err(_) => tracing::error!("worker panicked"),
            Ok(Ok(())) => {}
        }
    }
    if let Some(s) = syncer {
        s.stop();
    }
    let _ = sweeper.join();
    if let Some(w) = watchdog {
        let _ = w.join();
    }
    if let Some(d) = dumper {
        let _ = d.join();
    }
    if let Some(path) = &cfg.statedump.file {
        dump(&shared, path, cfg.statedump.peers);
    }
    let total = shared.tracker.total_counters();
    let t = shared.tracker.store.totals();
    tracing::info!(
        "stopped: {} torrents, {} peers; served {} HTTP announces, {} UDP announces",
        t.torrents,
        t.peers4 + t.peers6,
        total.http_announces,
        total.udp_announces
    );
    Ok(())
}

/// Blocks until SIGINT or SIGTERM; SIGHUP calls `on_hup` (reload the access list, as
/// opentracker) and never kills the process.
fn wait_for_signal(
    mut signals: signal_hook::iterator::Signals,
    on_hup: impl Fn(),
) -> anyhow::Result<()> {
    use signal_hook::consts::SIGHUP;
    for sig in signals.forever() {
        match sig {
            SIGHUP => on_hup(),
            _ => {
                tracing::info!("signal {sig}: shutting down");
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Warns when the config file holding `livesync.cluster.key` may be read by users other than
/// its owner: anyone holding the key can add and remove peers on every node.
fn warn_if_key_readable(file: Option<&std::path::Path>) {
    use std::os::unix::fs::PermissionsExt;
    let Some(file) = file else { return };
    match std::fs::metadata(file) {
        Ok(m) if m.permissions().mode() & 0o044 != 0 => tracing::warn!(
            "{} holds livesync.cluster.key and is readable by group or others (mode {:o}): \
             anyone who can read the key can add and remove peers on every node (chmod 600 it)",
            file.display(),
            m.permissions().mode() & 0o7777
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(
            "{} holds livesync.cluster.key but its mode can't be read ({e})",
            file.display()
        ),
    }
}

/// Raises the soft open-files limit to the hard one (each HTTP connection is a descriptor), and
/// warns when even that is below `http.max_connections`: `accept` would then fail with EMFILE
/// before the configured limit answers 503.
fn raise_open_files_limit(max_connections: u32) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return;
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    // Listening sockets, epoll, files: a few hundred descriptors besides connections.
    let need = u64::from(max_connections) + 256;
    if lim.rlim_cur < need {
        tracing::warn!(
            "open-files limit {} is below http.max_connections {max_connections} plus overhead: connections beyond it fail to be accepted (raise `ulimit -n` or lower http.max_connections)",
            lim.rlim_cur
        );
    }
}

/// The swarm's memory ceiling, `auto` resolved, and where it came from, for the start-up log:
/// `tracker.max_memory_mb`, or by default a share of the smaller of physical memory and this
/// process's cgroup limit ([`memory::default_ceiling`] says why that share).
fn memory_ceiling(limit: MemoryLimit) -> (MemoryLimit, String) {
    const MIB: u64 = 1 << 20;
    match limit {
        MemoryLimit::Unlimited => (limit, "none (tracker.max_memory_mb 0)".into()),
        MemoryLimit::Bytes(n) => (limit, format!("{} MiB (tracker.max_memory_mb)", n / MIB)),
        MemoryLimit::Auto => {
            let physical = std::fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|t| memory::meminfo_total(&t))
                .or_else(physical_pages);
            let cgroup = cgroup_memory_limit();
            let share = format!("{}/{}", memory::SHARE.0, memory::SHARE.1);
            match memory::default_ceiling(physical, cgroup.as_ref().map(|c| c.0)) {
                Some((bytes, memory::Source::Cgroup)) => {
                    let (limit, file) = cgroup.unwrap_or_default();
                    (
                        MemoryLimit::Bytes(bytes),
                        format!(
                            "{} MiB, {share} of the cgroup memory limit {} MiB ({}); set tracker.max_memory_mb to change",
                            bytes / MIB,
                            limit / MIB,
                            file.display()
                        ),
                    )
                }
                Some((bytes, memory::Source::Physical)) => (
                    MemoryLimit::Bytes(bytes),
                    format!(
                        "{} MiB, {share} of physical memory {} MiB; set tracker.max_memory_mb to change",
                        bytes / MIB,
                        physical.unwrap_or(0) / MIB
                    ),
                ),
                None => (
                    MemoryLimit::Unlimited,
                    "none: physical memory unknown; set tracker.max_memory_mb".into(),
                ),
            }
        }
    }
}

/// Physical memory from the system's page count, where /proc/meminfo can't be read.
fn physical_pages() -> Option<u64> {
    // SAFETY: sysconf only reads system parameters.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    u64::try_from(pages)
        .ok()?
        .checked_mul(u64::try_from(size).ok()?)
}

/// The smallest memory limit on this process's cgroup and its ancestors (v2, or v1's memory
/// controller), and the file it was read from.
fn cgroup_memory_limit() -> Option<(u64, std::path::PathBuf)> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let (v2, v1) = memory::cgroup_paths(&text);
    let mut best: Option<(u64, std::path::PathBuf)> = None;
    for (mount, path, file) in [
        ("/sys/fs/cgroup", v2, "memory.max"),
        ("/sys/fs/cgroup/memory", v1, "memory.limit_in_bytes"),
    ] {
        let Some(path) = path else { continue };
        for dir in memory::cgroup_ancestors(path) {
            let f = std::path::Path::new(mount)
                .join(dir.trim_start_matches('/'))
                .join(file);
            let Some(n) = std::fs::read_to_string(&f)
                .ok()
                .and_then(|t| memory::cgroup_limit(&t))
            else {
                continue;
            };
            if !matches!(&best, Some((b, _)) if *b <= n) {
                best = Some((n, f));
            }
        }
    }
    best
}

/// Reads `tls.certificate` and `tls.private_key` when a `listen.tls` needs them.
fn load_certificates(cfg: &Config) -> anyhow::Result<Option<Arc<CertResolver>>> {
    let (Some(certificate), Some(private_key)) = (&cfg.tls.certificate, &cfg.tls.private_key)
    else {
        return Ok(None);
    };
    let files = CertFiles {
        certificate: certificate.clone(),
        private_key: private_key.clone(),
    };
    // Read now, as root if started so, but at the place every reload reads it after the drop
    // (inside tracker.rootdir), so that one pair of files serves both.
    let (rootdir, root) = (
        cfg.process.rootdir.as_deref(),
        nix::unistd::Uid::effective().is_root(),
    );
    let now = CertFiles {
        certificate: privs::after_drop(certificate, rootdir, root),
        private_key: privs::after_drop(private_key, rootdir, root),
    };
    let resolver =
        CertResolver::first_read_at(files, &now).context("loading the TLS certificate")?;
    tracing::info!(
        "TLS certificate {} (SHA-256 {}){}",
        now.certificate.display(),
        fingerprint(&resolver),
        if now.certificate == resolver.files().certificate {
            String::new()
        } else {
            format!(", reloaded as {}", resolver.files().certificate.display())
        }
    );
    Ok(Some(Arc::new(resolver)))
}

/// The file and fingerprint of the certificate in force, for log lines.
fn describe(r: &CertResolver) -> String {
    format!(
        "{} (SHA-256 {})",
        r.files().certificate.display(),
        fingerprint(r)
    )
}

fn fingerprint(r: &CertResolver) -> String {
    r.current()
        .end_entity_cert()
        .map(tls::fingerprint)
        .unwrap_or_default()
}

/// Logs what a certificate reload (`why`: SIGHUP, or a file that changed) did.
fn report_reload(r: &CertResolver, result: Result<(), tls::TlsError>, why: &str) {
    match result {
        Ok(()) => tracing::info!("{why}: TLS certificate reloaded: {}", describe(r)),
        Err(e) => tracing::warn!(
            "{why}: TLS certificate not reloaded, keeping {}: {e}",
            describe(r)
        ),
    }
}

/// How often the sweeper looks whether the TLS certificate or key file changed (two `stat`s).
const CERT_POLL: Duration = Duration::from_secs(1);

/// Expires peers and torrents, one shard at a time, every `sweep_interval_secs`; picks up a
/// changed TLS certificate or key file; samples the counters for the dashboard every
/// `dashboard.interval` (the first at once, so that rates start from the start).
fn sweep_loop(shared: &Shared, certs: Option<&CertResolver>) {
    let store = &shared.tracker.store;
    let every = Duration::from_secs(u64::from(store.sweep_interval_secs()));
    let mut last = Instant::now();
    let mut last_cert_poll = Instant::now();
    let mut limits = LimitWatch::default();
    let sample_every = shared
        .tracker
        .dashboard_interval()
        .map(|s| Duration::from_secs(u64::from(s)));
    let mut next_sample = Instant::now();
    while !shared.shutdown.load(Ordering::Relaxed) {
        let now = Instant::now();
        if let Some(period) = sample_every {
            if now >= next_sample {
                let at_ms = now.saturating_duration_since(shared.start).as_millis() as u64;
                shared.tracker.sample_dashboard(at_ms);
                // On the beat (the loop wakes at least every 100 ms), unless a long sweep
                // made it miss one.
                next_sample += period;
                if next_sample <= now {
                    next_sample = now + period;
                }
            }
        }
        limits.check(shared, now);
        if let Some(c) = certs {
            if now.duration_since(last_cert_poll) >= CERT_POLL {
                last_cert_poll = now;
                if let Some(result) = c.reload_if_changed() {
                    report_reload(c, result, "changed on disk");
                }
            }
        }
        if !wait_turn(&mut last, now, every) {
            continue;
        }
        let swept = store.sweep_all(shared.now());
        // Give the pages of freed peer lists back to the OS: grown and shrunk swarms leave free
        // chunks all over the heap, which glibc keeps resident until asked.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only walks glibc's own free lists; it has no preconditions.
        unsafe {
            libc::malloc_trim(0);
        }
        if swept.peers > 0 || swept.torrents > 0 {
            tracing::debug!(
                "sweep: {} peers and {} torrents expired",
                swept.peers,
                swept.torrents
            );
        }
    }
}

/// Says, at most once per `LIMIT_LOG_EVERY`, that a store limit held announces back, so an
/// operator sees it without a flood of log lines during an attack.
#[derive(Default)]
struct LimitWatch {
    last: Option<Instant>,
    refused: u64,
    not_stored: u64,
    refused_address: u64,
    /// Connection limits, HTTP rate limit, UDP rate limit, stream limit, full-scrape
    /// interval: as last seen.
    turned_away: [u64; 5],
}

const LIMIT_LOG_EVERY: Duration = Duration::from_secs(60);

impl LimitWatch {
    fn check(&mut self, shared: &Shared, now: Instant) {
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < LIMIT_LOG_EVERY)
        {
            return;
        }
        let c = shared.tracker.total_counters();
        let (refused, not_stored, by_address) = (
            c.refused_full.saturating_sub(self.refused),
            c.peers_not_stored.saturating_sub(self.not_stored),
            c.refused_address.saturating_sub(self.refused_address),
        );
        if self.last.is_some() && (refused > 0 || not_stored > 0) {
            let store = &shared.tracker.store;
            tracing::warn!(
                "store limit reached: {refused} announces refused and {not_stored} peers not stored in the last {}s (estimated swarm memory {} MiB; see tracker.max_torrents, tracker.max_peers_per_torrent, tracker.max_memory_mb)",
                LIMIT_LOG_EVERY.as_secs(),
                store.estimated_bytes() >> 20
            );
        }
        if self.last.is_some() && by_address > 0 {
            tracing::warn!(
                "per-address limit: {by_address} announces refused in the last {}s because their address (IPv6: /64) had {} peers in the torrent (tracker.max_peers_per_ip)",
                LIMIT_LOG_EVERY.as_secs(),
                shared.tracker.store.config().max_peers_per_address
            );
        }
        let turned_away = [
            c.conn_limited + c.conn_limited_ip,
            c.http_rate_limited,
            c.udp_rate_limited,
            c.streams_refused,
            c.full_scrapes_too_soon,
        ];
        let d: Vec<u64> = turned_away
            .iter()
            .zip(self.turned_away)
            .map(|(now, before)| now.saturating_sub(before))
            .collect();
        if self.last.is_some() && d[..3].iter().any(|&n| n > 0) {
            tracing::warn!(
                "limits turned clients away in the last {}s: {} HTTP connections answered 503 (http.max_connections {}, http.max_connections_per_ip), {} HTTP requests answered 429 and {} UDP datagrams dropped (ratelimit.*)",
                LIMIT_LOG_EVERY.as_secs(),
                d[0],
                shared.http.max_connections,
                d[1],
                d[2]
            );
        }
        if self.last.is_some() && d[3..].iter().any(|&n| n > 0) {
            tracing::warn!(
                "streams refused in the last {}s: {} full scrapes, tpbs and statedumps answered 503 ({} in progress, http.max_streams {}), {} full scrapes answered 429 (tracker.full_scrape_interval)",
                LIMIT_LOG_EVERY.as_secs(),
                d[3],
                shared.tracker.open_streams(),
                shared.http.max_streams,
                d[4]
            );
        }
        self.turned_away = turned_away;
        self.refused = c.refused_full;
        self.not_stored = c.peers_not_stored;
        self.refused_address = c.refused_address;
        self.last = Some(now);
    }
}

/// Writes the statedump every `every` until shutdown (the final dump is written after the
/// workers have stopped).
fn dump_loop(shared: &Shared, path: &std::path::Path, peers: bool, every: Duration) {
    let mut last = Instant::now();
    while !shared.shutdown.load(Ordering::Relaxed) {
        if wait_turn(&mut last, Instant::now(), every) {
            dump(shared, path, peers);
        }
    }
}

/// For a loop that acts every `every` and checks for shutdown at least every 100 ms: true
/// (and `last` becomes `now`) when `every` has passed since `last`, else sleeps towards it.
/// Compares elapsed times rather than adding `every` to an `Instant`, so that no configured
/// interval can overflow the clock.
fn wait_turn(last: &mut Instant, now: Instant, every: Duration) -> bool {
    let since = now.saturating_duration_since(*last);
    if since >= every {
        *last = now;
        return true;
    }
    std::thread::sleep((every - since).min(Duration::from_millis(100)));
    false
}

fn dump(shared: &Shared, path: &std::path::Path, peers: bool) {
    let started = Instant::now();
    match persist::write(&shared.tracker, path, peers) {
        Ok((t, p)) => tracing::info!(
            "statedump {}: {t} torrents{} in {:.1?}",
            path.display(),
            if peers {
                format!(", {p} peers")
            } else {
                String::new()
            },
            started.elapsed()
        ),
        Err(e) => tracing::error!(
            "statedump {}: {e:#} (the previous dump is kept)",
            path.display()
        ),
    }
}
