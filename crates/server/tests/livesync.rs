//! Live sync between real ferrotracker processes.
//!
//! One scenario, run twice: three nodes in network namespaces of their own (joined by veth
//! pairs to a bridge in a fourth, hub namespace) syncing by multicast as opentracker does, and
//! three nodes on 127.0.0.11-13 in unicast mode, so that a machine without namespaces still
//! covers it. Both use a shared key (the authenticated extension); a third test checks that a
//! plain cluster accepts packets exactly as opentracker writes them.
//!
//! The scenario: a peer announced on one node is returned by the others within the flush delay;
//! `stopped` removes it everywhere; a packet from an address that is not a node, one without a
//! MAC, one with the wrong key, one over 1480 bytes and a second copy of a keyed packet are
//! refused and counted; a node killed (SIGKILL, by PID) and restarted catches up from new
//! announces. In multicast mode a packet sent to one of a node's own addresses instead of the
//! group is not taken.
//!
//! The namespace test needs root (or CAP_SYS_ADMIN) and `ip`; where it has neither it says so
//! and skips, unless `CI` is set, where it fails.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// The flush delay the nodes run with, and how long the tests wait beyond it.
const FLUSH: u64 = 1;
const SYNC_DEADLINE: Duration = Duration::from_secs(FLUSH + 6);
const KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

// ------------------------------------------------------------------------------ the scenario

/// How the scenario reaches the nodes of one cluster.
trait Cluster {
    /// Runs `f` where node `i`'s addresses can be reached (its namespace, if any).
    fn at<T: Send + 'static>(&self, i: usize, f: impl FnOnce() -> T + Send + 'static) -> T;
    fn http(&self, i: usize) -> SocketAddr;
    /// Kills node `i` with SIGKILL (by PID) and starts it again with the same configuration.
    fn restart(&mut self, i: usize);
    /// Sends `packet` to node `i`'s sync socket from an address that is not a node.
    fn send_from_stranger(&self, i: usize, packet: Vec<u8>);
    /// Sends `packet` to node `i`'s sync socket from node `from`'s address.
    fn send_from_node(&self, from: usize, to: usize, packet: Vec<u8>);
}

fn announce<C: Cluster>(
    c: &C,
    i: usize,
    h: [u8; 20],
    port: u16,
    extra: &'static str,
) -> AnnounceReply {
    let addr = c.http(i);
    c.at(i, move || http_announce(addr, &h, port, 1, extra))
}

/// Peers of `h` at node `i` (seeders + leechers), by scrape (which adds no peer).
fn peers_at<C: Cluster>(c: &C, i: usize, h: [u8; 20]) -> i64 {
    let addr = c.http(i);
    c.at(i, move || {
        http_get(addr, &scrape_target(&[h]))
            .scrape()
            .first()
            .map_or(0, |(_, e)| e.complete + e.incomplete)
    })
}

fn metric<C: Cluster>(c: &C, i: usize, line: &'static str) -> u64 {
    let addr = c.http(i);
    let body = c.at(i, move || http_get(addr, "/metrics").body_str());
    body.lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{line}` in /metrics:\n{body}"))
}

/// Waits until a live-sync counter reaches `min`. These are the sync thread's: it reads the
/// datagrams a test sends in its own time and raises its counters after each one it reads (and
/// at each 50 ms turn, for what it sent), so a test polls for them. Worker counters (requests,
/// refusals) are read live when the page is asked for and need no wait.
fn wait_metric<C: Cluster>(c: &C, i: usize, line: &'static str, min: u64) {
    let got = poll_until(SYNC_DEADLINE, Duration::from_millis(50), || {
        let n = metric(c, i, line);
        (n >= min).then_some(n)
    });
    assert!(
        got.is_some(),
        "node {i}: {line} stayed below {min}: {}",
        metric(c, i, line)
    );
}

fn wait_peers<C: Cluster>(c: &C, i: usize, h: [u8; 20], want: i64, what: &str) {
    let start = Instant::now();
    let got = poll_until(SYNC_DEADLINE, Duration::from_millis(100), || {
        let n = peers_at(c, i, h);
        (n == want).then_some(n)
    });
    assert_eq!(
        got,
        Some(want),
        "node {i}: {what}: {} peers after {:?}",
        peers_at(c, i, h),
        start.elapsed()
    );
}

/// A keyed packet with one entry, signed with `key` (or plain when `None`).
fn packet(h: [u8; 20], ip: [u8; 4], port: u16, key: Option<&str>) -> Vec<u8> {
    packet_with_flags(h, ip, port, key, 0)
}

fn packet_with_flags(h: [u8; 20], ip: [u8; 4], port: u16, key: Option<&str>, flags: u8) -> Vec<u8> {
    use ferrotracker_proto::sync::{Builder, Entry, Family, Key};
    let mut b = Builder::new(Family::V4, 0xdead_beef, key.is_some());
    b.push(&Entry {
        info_hash: ferrotracker_proto::InfoHash(h),
        ip: IpAddr::from(ip),
        port,
        flags,
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let key = key.map(|k| {
        let bytes: Vec<u8> = (0..k.len() / 2)
            .map(|i| u8::from_str_radix(&k[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        Key::new(&bytes)
    });
    b.finish(key.as_ref(), now).to_vec()
}

fn scenario<C: Cluster>(c: &mut C) {
    let h = hash(61);
    // A peer announced on node 0 reaches 1 and 2 within the flush delay.
    let r = announce(c, 0, h, 7001, "&event=started");
    assert_eq!(r.complete + r.incomplete, 1);
    wait_peers(c, 1, h, 1, "announced on node 0");
    wait_peers(c, 2, h, 1, "announced on node 0");
    // The synced peer is in node 1's replies (and node 1's own announcer with it).
    let r = announce(c, 1, h, 7002, "&numwant=50");
    let ports: Vec<u16> = r.peers4().iter().map(|p| p.port()).collect();
    assert!(ports.contains(&7001), "node 1 answered {ports:?}");
    wait_peers(c, 0, h, 2, "announced on node 1");
    wait_peers(c, 2, h, 2, "announced on node 1");

    // Stopped removes it everywhere.
    announce(c, 0, h, 7001, "&event=stopped");
    wait_peers(c, 1, h, 1, "stopped on node 0");
    wait_peers(c, 2, h, 1, "stopped on node 0");
    assert_eq!(peers_at(c, 0, h), 1);

    // Refusals: a stranger, a node without a MAC, a node with the wrong key.
    let forged = hash(62);
    let before = metric(
        c,
        1,
        "ferrotracker_livesync_refused_total{reason=\"source\"}",
    );
    c.send_from_stranger(1, packet(forged, [192, 0, 2, 1], 1, Some(KEY)));
    let before_mac = metric(c, 1, "ferrotracker_livesync_refused_total{reason=\"mac\"}");
    c.send_from_node(2, 1, packet(forged, [192, 0, 2, 2], 2, None));
    c.send_from_node(2, 1, packet(forged, [192, 0, 2, 3], 3, Some(&KEY[2..])));
    let counted = poll_until(SYNC_DEADLINE, Duration::from_millis(100), || {
        let s = metric(
            c,
            1,
            "ferrotracker_livesync_refused_total{reason=\"source\"}",
        );
        let m = metric(c, 1, "ferrotracker_livesync_refused_total{reason=\"mac\"}");
        (s > before && m >= before_mac + 2).then_some(())
    });
    assert!(
        counted.is_some(),
        "forged packets were not counted as refused"
    );
    assert_eq!(peers_at(c, 1, forged), 0, "a forged packet was applied");
    // While a correctly keyed one from a node is applied.
    c.send_from_node(2, 1, packet(forged, [192, 0, 2, 4], 4, Some(KEY)));
    wait_peers(c, 1, forged, 1, "a keyed packet from node 2");
    wait_metric(
        c,
        1,
        "ferrotracker_livesync_packets_total{direction=\"received\"}",
        3,
    );
    wait_metric(
        c,
        0,
        "ferrotracker_livesync_peers_total{direction=\"sent\"}",
        2,
    );

    // Over 1480 bytes: refused before the MAC is even computed.
    c.send_from_node(2, 1, vec![0x5a; 2000]);
    wait_metric(
        c,
        1,
        "ferrotracker_livesync_refused_total{reason=\"oversize\"}",
        1,
    );

    // A keyed packet sent again within the window: the first copy is applied, the second is
    // refused. Here the copy is of an add that a stop has undone since: it would bring back a
    // peer that has left.
    let replayed = hash(64);
    let add = packet(replayed, [192, 0, 2, 5], 5, Some(KEY));
    c.send_from_node(2, 1, add.clone());
    wait_peers(c, 1, replayed, 1, "a keyed add from node 2");
    let stop = packet_with_flags(
        replayed,
        [192, 0, 2, 5],
        5,
        Some(KEY),
        ferrotracker_proto::sync::FLAG_STOPPED,
    );
    c.send_from_node(2, 1, stop);
    wait_peers(c, 1, replayed, 0, "a keyed stop from node 2");
    c.send_from_node(2, 1, add);
    wait_metric(
        c,
        1,
        "ferrotracker_livesync_refused_total{reason=\"replay\"}",
        1,
    );
    assert_eq!(peers_at(c, 1, replayed), 0, "a replayed add was applied");

    // A node killed and restarted catches up from new announces.
    c.restart(1);
    assert_eq!(peers_at(c, 1, h), 0, "a restarted node starts empty");
    let fresh = hash(63);
    announce(c, 0, fresh, 7003, "&event=started");
    announce(c, 2, h, 7004, "&event=started");
    wait_peers(c, 1, fresh, 1, "announced on node 0 after the restart");
    wait_peers(c, 1, h, 1, "announced on node 2 after the restart");
    announce(c, 1, fresh, 7005, "&event=started");
    wait_peers(c, 0, fresh, 2, "announced on the restarted node");
    wait_peers(c, 2, fresh, 2, "announced on the restarted node");
}

// ------------------------------------------------------------------------------ unicast

/// Three nodes on 127.0.0.11-13, each sending to the others' sync ports.
struct Unicast {
    nodes: Vec<Option<Tracker>>,
    configs: Vec<String>,
    ips: Vec<IpAddr>,
    ports: Vec<u16>,
}

impl Unicast {
    fn start(key: Option<&str>) -> Unicast {
        let ips: Vec<IpAddr> = (11..=13).map(|n| IpAddr::from([127, 0, 0, n])).collect();
        let ports: Vec<u16> = ips.iter().map(|ip| free_udp_port(*ip)).collect();
        let mut peers = String::new();
        for (ip, port) in ips.iter().zip(&ports) {
            peers.push_str(&format!("livesync.cluster.peer {ip}:{port}\n"));
        }
        let configs: Vec<String> = ips
            .iter()
            .zip(&ports)
            .map(|(ip, port)| {
                format!(
                    "livesync.cluster.listen {ip}:{port}\n{peers}livesync.flush_delay {FLUSH}\n{}",
                    key.map(|k| format!("livesync.cluster.key {k}\n"))
                        .unwrap_or_default()
                )
            })
            .collect();
        let mut u = Unicast {
            nodes: Vec::new(),
            configs,
            ips,
            ports,
        };
        for i in 0..3 {
            let t = u.spawn(i);
            u.nodes.push(Some(t));
        }
        u
    }

    fn spawn(&self, i: usize) -> Tracker {
        let ip = self.ips[i].to_string();
        Tracker::start(&["-i", &ip, "-p", "0", "-P", "0"], Some(&self.configs[i]))
    }

    fn sync_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::new(self.ips[i], self.ports[i])
    }
}

impl Cluster for Unicast {
    fn at<T: Send + 'static>(&self, _: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
        f()
    }
    fn http(&self, i: usize) -> SocketAddr {
        self.nodes[i].as_ref().expect("node running").http4()
    }
    fn restart(&mut self, i: usize) {
        let mut t = self.nodes[i].take().expect("node running");
        let st = t.stop_with(libc::SIGKILL, IO_TIMEOUT);
        assert!(!st.success());
        self.nodes[i] = Some(self.spawn(i));
    }
    fn send_from_stranger(&self, i: usize, packet: Vec<u8>) {
        let s = UdpSocket::bind(("127.0.0.50", 0)).unwrap();
        s.send_to(&packet, self.sync_addr(i)).unwrap();
    }
    fn send_from_node(&self, from: usize, to: usize, packet: Vec<u8>) {
        let s = UdpSocket::bind((self.ips[from], 0)).unwrap();
        s.send_to(&packet, self.sync_addr(to)).unwrap();
    }
}

const NO_KEY_WARNING: &str = "live sync runs without livesync.cluster.key";

/// The tracker's log once it has started: the live-sync sockets are bound (and their warnings
/// logged) after the listening lines that `Tracker::start` waits for.
fn start_log(t: &Tracker) -> String {
    poll_until(START_DEADLINE, Duration::from_millis(20), || {
        let log = t.stderr();
        log.contains(" serving with ").then_some(log)
    })
    .unwrap_or_else(|| panic!("not started:\n{}", t.stderr()))
}

#[test]
fn unicast_cluster_on_loopback() {
    let mut c = Unicast::start(Some(KEY));
    let log = start_log(c.nodes[0].as_ref().expect("node running"));
    assert!(!log.contains(NO_KEY_WARNING), "{log}");
    scenario(&mut c);
}

/// Without a key the nodes speak opentracker's format: a packet built byte by byte as
/// opentracker (x86) sends it is accepted from a node, and refused from anyone else.
#[test]
fn plain_cluster_accepts_opentracker_packets() {
    let c = Unicast::start(None);
    for n in &c.nodes {
        let log = start_log(n.as_ref().expect("node running"));
        assert!(
            log.contains(NO_KEY_WARNING),
            "no warning without a key:\n{log}"
        );
    }
    let h = hash(71);
    let mut p = vec![0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0];
    p.extend_from_slice(&h);
    p.extend_from_slice(&[198, 51, 100, 7, 0x1b, 0x58, 0x80, 0]);
    c.send_from_stranger(0, p.clone());
    c.send_from_node(1, 0, p);
    wait_peers(&c, 0, h, 1, "an opentracker packet from node 1");
    let r = announce(&c, 0, h, 7010, "&numwant=50");
    assert_eq!(
        r.complete, 1,
        "the synced peer is a seeder (flag 0x80): {r:?}"
    );
    assert!(r.peers4().contains(&"198.51.100.7:7000".parse().unwrap()));
    // 71 entries in opentracker's format, 1996 bytes: well formed but larger than a packet can
    // be, so none of it is applied. A packet after it shows it has been read.
    let big = hash(72);
    let mut p = vec![0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0];
    for i in 0..71u8 {
        p.extend_from_slice(&big);
        p.extend_from_slice(&[198, 51, 100, i, 0x1b, 0x58, 0x80, 0]);
    }
    assert_eq!(p.len(), 1996);
    c.send_from_node(1, 0, p);
    let after = hash(73);
    let mut p = vec![0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0];
    p.extend_from_slice(&after);
    p.extend_from_slice(&[198, 51, 100, 8, 0x1b, 0x58, 0x80, 0]);
    c.send_from_node(1, 0, p);
    wait_peers(&c, 0, after, 1, "a packet after the oversized one");
    assert_eq!(peers_at(&c, 0, big), 0, "an oversized packet was applied");
    wait_metric(
        &c,
        0,
        "ferrotracker_livesync_refused_total{reason=\"oversize\"}",
        1,
    );
    // The stranger's datagram may still be on its way to the sync thread, which raises its
    // counters after each datagram it reads: poll.
    let refused = poll_until(SYNC_DEADLINE, Duration::from_millis(50), || {
        let n = metric(
            &c,
            0,
            "ferrotracker_livesync_refused_total{reason=\"source\"}",
        );
        (n > 0).then_some(n)
    });
    assert_eq!(refused, Some(1));
    // And what a node sends plainly is opentracker's format (no trailer) to the others.
    wait_peers(&c, 2, h, 1, "the announcer on node 0");
    // The sync thread applies a packet's entries before it raises its counters: poll.
    let stats = poll_until(SYNC_DEADLINE, Duration::from_millis(50), || {
        let s = http_get(c.http(2), "/stats?mode=syncs").body_str();
        s.starts_with("1\n0\n").then_some(s)
    });
    assert!(
        stats.is_some(),
        "syncs: {:?}",
        http_get(c.http(2), "/stats?mode=syncs").body_str()
    );
}

// ------------------------------------------------------------------------------ namespaces

/// Three namespaces `ftN-<pid>-{1,2,3}` with `eth0` at 10.77.0.{1,2,3}/24, veth'd to a bridge in
/// `ftN-<pid>-hub`, which also has 10.77.0.99 (the stranger). Removed on drop.
struct Namespaces {
    names: Vec<String>,
    hub: String,
}

impl Namespaces {
    fn create() -> Result<Namespaces, String> {
        let base = format!("ft-{}", std::process::id());
        let hub = format!("{base}-hub");
        let names: Vec<String> = (1..=3).map(|i| format!("{base}-{i}")).collect();
        let ns = Namespaces {
            names: names.clone(),
            hub: hub.clone(),
        };
        ip(&["netns", "add", &hub])?;
        let h = hub.as_str();
        ip(&[
            "-n",
            h,
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        ip(&["-n", h, "addr", "add", "10.77.0.99/24", "dev", "br0"])?;
        ip(&["-n", h, "link", "set", "br0", "up"])?;
        for (i, n) in names.iter().enumerate() {
            let v = format!("v{}", i + 1);
            let addr = format!("10.77.0.{}/24", i + 1);
            ip(&["netns", "add", n])?;
            ip(&[
                "-n", h, "link", "add", &v, "type", "veth", "peer", "name", "eth0", "netns", n,
            ])?;
            ip(&["-n", h, "link", "set", &v, "master", "br0"])?;
            ip(&["-n", h, "link", "set", &v, "up"])?;
            ip(&["-n", n, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", n, "link", "set", "eth0", "up"])?;
            ip(&["-n", n, "link", "set", "lo", "up"])?;
        }
        Ok(ns)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in self.names.iter().chain(std::iter::once(&self.hub)) {
            let _ = ip(&["netns", "del", n]);
        }
    }
}

/// Runs `ip ARGS`, at most 10 s.
fn ip(args: &[&str]) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    match wait_deadline(&mut child, Duration::from_secs(10)) {
        Some(st) if st.success() => Ok(()),
        Some(st) => {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            Err(format!("ip {}: {st}: {}", args.join(" "), err.trim()))
        }
        None => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!("ip {}: timed out", args.join(" ")))
        }
    }
}

/// Runs `f` on a thread that has entered network namespace `ns` (setns affects only the
/// calling thread).
fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: a plain syscall on a file descriptor we own; it only changes this thread.
        let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// A node run with `ip netns exec` (which execs the tracker: the child's PID is the tracker's).
struct NsNode {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl NsNode {
    fn start(ns: &str, ip: &str, config: &std::path::Path) -> NsNode {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                bin(),
                "-i",
                ip,
                "-p",
                "6969",
                "-P",
                "6969",
                "-f",
            ])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ip netns exec ferrotracker");
        let stderr = child.stderr.take().expect("piped");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.lock().unwrap().push_str(&format!("{line}\n"));
                    let _ = tx.send(line);
                }
            });
        }
        let end = Instant::now() + START_DEADLINE;
        loop {
            match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
                Ok(l) if l.contains("serving with") => break,
                Ok(_) => {}
                Err(_) => panic!("node in {ns} did not start:\n{}", log.lock().unwrap()),
            }
        }
        NsNode { child, log }
    }

    fn kill(&mut self) {
        // SAFETY: kill(2) takes no pointer. By PID: our own unreaped child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL);
        }
        let _ = wait_deadline(&mut self.child, IO_TIMEOUT);
    }
}

impl Drop for NsNode {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: kill(2) takes no pointer. By PID: our own child, not yet reaped.
            unsafe {
                libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
            }
            if wait_deadline(&mut self.child, IO_TIMEOUT).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!("node log:\n{}", self.log.lock().unwrap());
        }
    }
}

/// Multicast as opentracker: every node listens on 10.77.0.N:9696 and sends to 224.0.23.5:9696.
struct Multicast {
    // Field order: nodes stop before the namespaces go.
    nodes: Vec<Option<NsNode>>,
    _dir: TempDir,
    configs: Vec<std::path::PathBuf>,
    ns: Namespaces,
}

impl Multicast {
    fn ip(i: usize) -> String {
        format!("10.77.0.{}", i + 1)
    }
}

impl Cluster for Multicast {
    fn at<T: Send + 'static>(&self, i: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
        in_ns(&self.ns.names[i], f)
    }
    fn http(&self, i: usize) -> SocketAddr {
        format!("{}:6969", Self::ip(i)).parse().unwrap()
    }
    fn restart(&mut self, i: usize) {
        if let Some(mut n) = self.nodes[i].take() {
            n.kill();
        }
        self.nodes[i] = Some(NsNode::start(
            &self.ns.names[i],
            &Self::ip(i),
            &self.configs[i],
        ));
    }
    fn send_from_stranger(&self, _: usize, packet: Vec<u8>) {
        in_ns(&self.ns.hub, move || send_multicast("10.77.0.99", &packet));
    }
    fn send_from_node(&self, from: usize, _: usize, packet: Vec<u8>) {
        let src = Self::ip(from);
        in_ns(&self.ns.names[from], move || send_multicast(&src, &packet));
    }
}

fn send_multicast(src: &str, packet: &[u8]) {
    let src: std::net::Ipv4Addr = src.parse().unwrap();
    let s = UdpSocket::bind((src, 0)).unwrap();
    socket2::SockRef::from(&s)
        .set_multicast_if_v4(&src)
        .expect("IP_MULTICAST_IF");
    s.send_to(packet, "224.0.23.5:9696").unwrap();
}

#[test]
fn multicast_cluster_in_network_namespaces() {
    let need = "network namespaces (root and iproute2's `ip netns`)";
    let Some(ns) = require_or_skip(need, Namespaces::create()) else {
        return;
    };
    let dir = TempDir::new("livesync");
    let configs: Vec<_> = (0..3)
        .map(|i| {
            dir.write(
                &format!("node{i}.conf"),
                &format!(
                    "livesync.cluster.listen {}:9696\nlivesync.cluster.node_ip 10.77.0.0/29\n\
                     livesync.cluster.key {KEY}\nlivesync.flush_delay {FLUSH}\naccess.stats_open on\n",
                    Multicast::ip(i)
                ),
            )
        })
        .collect();
    let mut c = Multicast {
        nodes: Vec::new(),
        _dir: dir,
        configs,
        ns,
    };
    for i in 0..3 {
        let n = NsNode::start(&c.ns.names[i], &Multicast::ip(i), &c.configs[i]);
        c.nodes.push(Some(n));
    }
    scenario(&mut c);

    // A keyed packet from node 2 sent unicast to a second address of node 1, not to the group:
    // opentracker's socket on 0.0.0.0:9696 would take it; one bound to the group does not. A
    // packet to the group after it shows it would have been read by then.
    ip(&[
        "-n",
        &c.ns.names[1],
        "addr",
        "add",
        "10.77.0.12/24",
        "dev",
        "eth0",
    ])
    .unwrap();
    let (direct, after) = (hash(66), hash(67));
    let p = packet(direct, [192, 0, 2, 6], 6, Some(KEY));
    in_ns(&c.ns.names[2], move || {
        let s = UdpSocket::bind(("10.77.0.3", 0)).unwrap();
        s.send_to(&p, "10.77.0.12:9696").unwrap();
    });
    c.send_from_node(2, 1, packet(after, [192, 0, 2, 7], 7, Some(KEY)));
    wait_peers(&c, 1, after, 1, "a keyed packet to the group");
    assert_eq!(
        peers_at(&c, 1, direct),
        0,
        "a packet sent to a node's own address, not the group, was applied"
    );
}

/// Without a key a start says that source addresses are all the cluster trusts; with a key in
/// a file that others may read, it names the file.
#[test]
fn warnings_about_the_cluster_key() {
    use std::os::unix::fs::PermissionsExt;
    let ip: IpAddr = [127, 0, 0, 21].into();
    let port = free_udp_port(ip);
    let dir = TempDir::new("synckey");
    let base = format!("livesync.cluster.listen {ip}:{port}\nlivesync.cluster.peer 127.0.0.22\n");
    let keyed = dir.write("keyed.conf", &format!("{base}livesync.cluster.key {KEY}\n"));
    let plain = dir.write("plain.conf", &base);
    let start = |conf: &std::path::Path, mode: u32| {
        std::fs::set_permissions(conf, std::fs::Permissions::from_mode(mode)).unwrap();
        let t = Tracker::start(
            &["-i", "127.0.0.21", "-p", "0", "-f", conf.to_str().unwrap()],
            None,
        );
        start_log(&t)
    };
    let readable = format!(
        "{} holds livesync.cluster.key and is readable by group or others",
        keyed.display()
    );
    for mode in [0o644, 0o640, 0o604] {
        let log = start(&keyed, mode);
        assert!(log.contains(&readable), "mode {mode:o}:\n{log}");
        assert!(!log.contains(NO_KEY_WARNING), "{log}");
    }
    let log = start(&keyed, 0o600);
    assert!(
        !log.contains("livesync.cluster.key and is readable"),
        "{log}"
    );
    // No key: the other warning, and none about the (keyless, readable) file.
    let log = start(&plain, 0o644);
    assert!(log.contains(NO_KEY_WARNING), "{log}");
    assert!(
        !log.contains("livesync.cluster.key and is readable"),
        "{log}"
    );
}

/// A unicast node listens on its own address: the start stops for the unspecified address,
/// however it is written (a v4-mapped `[::ffff:0.0.0.0]` is every IPv4 address too).
#[test]
fn unicast_on_every_address_stops_the_start_however_written() {
    let dir = TempDir::new("syncany");
    for (i, any) in [
        "0.0.0.0:9696",
        "[::]:9696",
        "[::ffff:0.0.0.0]:9696",
        "::ffff:0.0.0.0",
    ]
    .iter()
    .enumerate()
    {
        let conf = dir.write(
            &format!("{i}.conf"),
            &format!("livesync.cluster.listen {any}\nlivesync.cluster.peer 127.0.0.22\n"),
        );
        let f = run_to_exit(
            &["-i", "127.0.0.1", "-p", "0", "-f", conf.to_str().unwrap()],
            START_DEADLINE,
        );
        assert!(!f.status.success(), "{any}: {}", f.stderr);
        assert!(
            f.stderr.contains("livesync.cluster.listen") && f.stderr.contains("own address"),
            "{any}: {}",
            f.stderr
        );
        assert!(!f.stderr.contains("listening on"), "{any}: {}", f.stderr);
    }
}
