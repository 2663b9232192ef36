//! The live-sync thread: owns the cluster sockets, takes the workers' entries from the
//! tracker's hand-off, and drives `core::livesync` (packets, flush rules, receive checks).
//!
//! Multicast mode is opentracker's, but for the incoming socket's address: it is bound to
//! `224.0.23.5:PORT` (opentracker: `0.0.0.0:PORT`) and joins the group on the listen interface,
//! so the kernel hands it only datagrams sent to the group, never unicast ones sent to any of
//! the host's addresses, and (`IP_MULTICAST_ALL` off) only for groups it joined itself. The
//! outgoing socket is bound to `IP:PORT` with multicast TTL 1 and loopback off and sends to
//! `224.0.23.5:9696` (`livesync.cluster.send_port`; opentracker always sends to 9696 whatever
//! its port); what reaches that socket (unicast to `IP:PORT`) is never read. Unicast mode (`livesync.cluster.peer`) uses one socket bound to the listen
//! address, which config requires to be this node's own, for both directions and sends every
//! packet to each listed node.
//!
//! Datagrams are read into a buffer one byte larger than a packet can be, so a larger one
//! shows as such (the kernel cuts it to the buffer) and is refused before anything reads it.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use ferrotracker_core::config::Config;
use ferrotracker_core::livesync::{LiveSync, SyncRules};
use ferrotracker_proto::sync::{Key, GROUP, MAX_PACKET};
use socket2::{Domain, Protocol, Socket, Type};

use crate::worker::Shared;

/// How often the thread takes the workers' entries and checks the flush delay.
const TURN: Duration = Duration::from_millis(50);
/// With a key: how far a packet's time may be from ours. The time is written when the packet
/// is sent, so this covers clock skew and transit only; copies within it are refused by their
/// tag (`core::livesync::ReplayGuard`), so a wider window costs memory there, not safety.
const WINDOW_SECS: u32 = 120;

/// The bound sockets, made before privileges are dropped.
pub struct Sockets {
    recv: UdpSocket,
    send: UdpSocket,
    dests: Vec<SocketAddr>,
}

/// Binds the live-sync sockets if `livesync.cluster.listen` (or `-s`) is set.
pub fn bind(cfg: &Config) -> anyhow::Result<Option<Sockets>> {
    let l = &cfg.livesync;
    let Some(listen) = l.listen else {
        return Ok(None);
    };
    if l.key.is_none() {
        tracing::warn!(
            "live sync runs without livesync.cluster.key: packets are trusted by their source \
             address alone, so any host that can send datagrams with a node's address can add \
             or remove peers (set the same livesync.cluster.key on every node, or keep the \
             cluster network closed to others)"
        );
    }
    if !l.peers.is_empty() {
        let s = udp(listen, false)
            .with_context(|| format!("binding live sync (unicast) to {listen}"))?;
        let send = s.try_clone()?;
        let dests = l.peers.iter().copied().filter(|p| *p != listen).collect();
        tracing::info!("live sync (unicast) on {listen} to {:?}", l.peers);
        return Ok(Some(Sockets {
            recv: s,
            send,
            dests,
        }));
    }
    let IpAddr::V4(ip) = listen.ip() else {
        anyhow::bail!("multicast live sync is IPv4 only: {listen}");
    };
    let group = SocketAddr::new(IpAddr::V4(GROUP), listen.port());
    let recv = udp(group, true).with_context(|| format!("binding live sync to {group}"))?;
    let r = socket2::SockRef::from(&recv);
    r.join_multicast_v4(&GROUP, &ip)
        .with_context(|| format!("joining {GROUP} on {ip}"))?;
    #[cfg(target_os = "linux")]
    r.set_multicast_all_v4(false)
        .context("turning IP_MULTICAST_ALL off on the live-sync socket")?;
    let send = udp(listen, true).with_context(|| format!("binding live sync to {listen}"))?;
    let s = socket2::SockRef::from(&send);
    s.set_multicast_ttl_v4(1)?;
    s.set_multicast_loop_v4(false)?;
    if !ip.is_unspecified() {
        s.set_multicast_if_v4(&ip)?;
    }
    let dest = SocketAddr::new(IpAddr::V4(GROUP), l.send_port);
    tracing::info!("live sync (multicast) on {listen}, group {GROUP}, sending to {dest}");
    Ok(Some(Sockets {
        recv,
        send,
        dests: vec![dest],
    }))
}

fn udp(addr: SocketAddr, reuse: bool) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse {
        s.set_reuse_address(true)?;
    }
    s.bind(&addr.into())?;
    s.set_read_timeout(Some(TURN))?;
    Ok(s.into())
}

/// A running sync thread; [`Syncer::stop`] sends what is queued and joins it.
pub struct Syncer {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl Syncer {
    /// Starts the thread.
    pub fn spawn(shared: Arc<Shared>, sockets: Sockets, cfg: &Config) -> anyhow::Result<Syncer> {
        let rules = SyncRules {
            tracker_id: shared.tracker.tracker_id(),
            nodes: cfg.livesync_nodes(),
            key: cfg.livesync.key.as_deref().map(Key::new),
            flush_delay: cfg.livesync.flush_delay,
            window: WINDOW_SECS,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("livesync".into())
                .spawn(move || run(&shared, sockets, LiveSync::new(rules), &stop))?
        };
        Ok(Syncer { stop, handle })
    }

    /// Call after the workers have stopped: their last entries are sent too.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.handle.join();
    }
}

fn run(shared: &Shared, s: Sockets, mut ls: LiveSync, stop: &AtomicBool) {
    // One byte more than a packet: a datagram that fills it is too large (see the module docs).
    let mut buf = vec![0u8; MAX_PACKET + 1];
    let mut entries = Vec::new();
    let mut last = Instant::now();
    let (send, dests) = (&s.send, &s.dests);
    let mut send = |d: &[u8]| {
        let mut failed = 0;
        for dest in dests {
            if let Err(e) = send.send_to(d, dest) {
                tracing::debug!("live sync: sending to {dest}: {e}");
                failed += 1;
            }
        }
        failed
    };
    let counters = shared.tracker.counter_slot();
    loop {
        match s.recv.recv_from(&mut buf) {
            Ok((n, from)) => {
                let now = shared.now();
                if let Err(why) = ls.receive(
                    buf.get(..n).unwrap_or(&[]),
                    from.ip(),
                    &shared.tracker.store,
                    &shared.tracker.access,
                    now,
                ) {
                    // A cut datagram (n > MAX_PACKET) was larger still: say "over".
                    let over = if n > MAX_PACKET { "over " } else { "" };
                    tracing::debug!("live sync: refused {over}{n} bytes from {from}: {why:?}");
                }
                counters.sync.raise(&ls.counters);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!("live sync: receive: {e}");
                std::thread::sleep(TURN);
            }
        }
        if last.elapsed() < TURN {
            continue;
        }
        last = Instant::now();
        let done = stop.load(Ordering::Relaxed);
        let now = shared.now();
        shared.tracker.sync_handoff.take(&mut entries);
        for e in entries.drain(..) {
            ls.queue(&e, now, &mut send);
        }
        if done {
            ls.flush(now, &mut send);
        } else {
            ls.tick(now, &mut send);
        }
        counters.sync.raise(&ls.counters);
        if done {
            return;
        }
    }
}
