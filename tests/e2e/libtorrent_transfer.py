#!/usr/bin/python3
"""End-to-end: two real libtorrent sessions find each other only through the tracker.

Usage: /usr/bin/python3 tests/e2e/libtorrent_transfer.py ANNOUNCE_URL [--timeout SECS] [--scrape]

ANNOUNCE_URL is http://, https:// or udp://127.0.0.1:PORT/announce, or the same on [::1]. For
https, libtorrent checks the tracker's certificate against OpenSSL's default trust store: point
SSL_CERT_FILE at the CA that issued it.
A random 2-4 MiB file is made into a private torrent announcing only to that URL. A seeder
session (with the data) and a leecher session (empty) listen on the URL's loopback address
(127.0.0.1 or [::1]) with DHT, LSD, UPnP, NAT-PMP and PEX off (private torrent, no default
plugins), so the only way for the leecher to learn the seeder's address is the tracker's peer
list. The script exits 0 when the leecher has every piece, the bytes equal the original, and
both sessions got a tracker reply with at least one peer; otherwise it prints what it saw and
exits 1. With --scrape, the seeder then scrapes the tracker (the scrape URL libtorrent derives
from the announce URL) and prints `scrape complete=C incomplete=I`; no scrape reply is a
failure.

Run with Debian's /usr/bin/python3: python3-libtorrent installs only for it.
"""

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import time

try:
    import libtorrent as lt
except ImportError as e:  # pragma: no cover - reported by the Rust wrapper
    print(f"FAIL: cannot import libtorrent ({e}); run `bash scripts/test.sh`", file=sys.stderr)
    sys.exit(2)


def log(msg):
    print(f"[{time.monotonic() - START:6.2f}s] {msg}", flush=True)


START = time.monotonic()


def make_session(name, interface):
    settings = {
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "listen_interfaces": f"{interface}:0",
        "outgoing_interfaces": "",
        "allow_multiple_connections_per_ip": True,
        "ssrf_mitigation": False,
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "stop_tracker_timeout": 1,
        "tracker_completion_timeout": 10,
        "tracker_receive_timeout": 5,
        "alert_mask": int(lt.alert.category_t.all_categories),
        "user_agent": f"ferrotracker-e2e-{name}",
        "peer_fingerprint": "-FE0001-",
        "dht_bootstrap_nodes": "",
        "connection_speed": 50,
    }
    # flags=0: neither the default plugins (ut_pex, ut_metadata, smart_ban) nor the default
    # features (DHT, LSD, UPnP, NAT-PMP) are started.
    ses = lt.session(settings, 0)
    return ses


def listen_port(ses, deadline):
    while time.monotonic() < deadline:
        port = ses.listen_port()
        if port:
            return port
        ses.wait_for_alert(100)
        ses.pop_alerts()
    raise RuntimeError("session did not start listening")


class Watcher:
    """Collects alerts of one session and remembers the tracker replies."""

    def __init__(self, name, ses):
        self.name = name
        self.ses = ses
        self.replies = []  # num_peers of each tracker_reply_alert
        self.errors = []
        self.lines = []

    def drain(self):
        for a in self.ses.pop_alerts():
            text = f"{self.name}: {type(a).__name__}: {a.message()}"
            self.lines.append(text)
            if isinstance(a, lt.tracker_reply_alert):
                self.replies.append(a.num_peers)
                log(text)
            elif isinstance(a, (lt.tracker_error_alert, lt.tracker_warning_alert,
                                lt.scrape_failed_alert)):
                self.errors.append(text)
                log(text)
            elif isinstance(a, (lt.tracker_announce_alert, lt.peer_connect_alert,
                                lt.incoming_connection_alert, lt.torrent_finished_alert,
                                lt.listen_succeeded_alert, lt.listen_failed_alert,
                                lt.peer_disconnected_alert, lt.torrent_error_alert)):
                log(text)


def tracker_status(handle):
    out = []
    for tr in handle.trackers():
        out.append(str({k: tr.get(k) for k in ("url", "verified", "fails", "updating")}))
        for ep in tr.get("endpoints", []):
            out.append("  endpoint " + str(ep))
    return "\n".join(out)


def scrape_tracker(handle, watcher, deadline):
    """Asks the tracker for a scrape of the torrent; (complete, incomplete) from the first
    scrape_reply_alert, or None by the deadline. A failed scrape is asked again a second later
    (its alert is kept in the watcher's lines)."""
    handle.scrape_tracker()
    retry_at = None
    while time.monotonic() < deadline:
        watcher.ses.wait_for_alert(100)
        for a in watcher.ses.pop_alerts():
            text = f"{watcher.name}: {type(a).__name__}: {a.message()}"
            watcher.lines.append(text)
            if isinstance(a, lt.scrape_reply_alert):
                log(text)
                return (a.complete, a.incomplete)
            if isinstance(a, lt.scrape_failed_alert):
                log(text)
                retry_at = time.monotonic() + 1
        if retry_at is not None and time.monotonic() >= retry_at:
            handle.scrape_tracker()
            retry_at = None
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("announce_url")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--scrape", action="store_true",
                    help="after the transfer, scrape the tracker and print what it says")
    ap.add_argument("--no-tracker-wait", action="store_true",
                    help="add the leecher as soon as the seeder is seeding, without waiting "
                         "for the seeder's tracker reply (negative control with a dead tracker)")
    args = ap.parse_args()
    url = args.announce_url
    interface = None
    for host, iface in (("127.0.0.1", "127.0.0.1"), ("[::1]", "[::1]")):
        if url.startswith(tuple(f"{s}://{host}:" for s in ("http", "https", "udp"))):
            interface = iface
    if interface is None:
        print(f"FAIL: announce URL must be on 127.0.0.1 or [::1]: {url}", file=sys.stderr)
        return 2

    log(f"libtorrent {lt.__version__}, tracker {url}")
    root = tempfile.mkdtemp(prefix="ferrotracker-e2e-")
    try:
        return run(url, root, args.timeout, args.no_tracker_wait, interface, args.scrape)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(url, root, timeout, no_tracker_wait, interface, scrape):
    seed_dir = os.path.join(root, "seed")
    leech_dir = os.path.join(root, "leech")
    os.makedirs(seed_dir)
    os.makedirs(leech_dir)

    size = int.from_bytes(os.urandom(4), "big") % (2 << 20) + (2 << 20)  # 2-4 MiB
    data = os.urandom(size)
    name = "payload.bin"
    with open(os.path.join(seed_dir, name), "wb") as f:
        f.write(data)
    digest = hashlib.sha256(data).hexdigest()

    fs = lt.file_storage()
    lt.add_files(fs, os.path.join(seed_dir, name))
    piece = 64 * 1024
    ct = lt.create_torrent(fs, piece, flags=lt.create_torrent.v1_only)
    ct.add_tracker(url, 0)
    ct.set_priv(True)
    ct.set_creator("ferrotracker e2e")
    lt.set_piece_hashes(ct, seed_dir)
    ti = lt.torrent_info(lt.bencode(ct.generate()))
    assert ti.priv(), "torrent must be private"
    info_hash = str(ti.info_hash())
    log(f"torrent {info_hash}: {size} bytes, {ti.num_pieces()} pieces of {piece}")
    print(f"info_hash={info_hash}", flush=True)

    seeder = make_session("seeder", interface)
    leecher = make_session("leecher", interface)
    deadline = time.monotonic() + timeout
    sp = listen_port(seeder, deadline)
    lp = listen_port(leecher, deadline)
    log(f"seeder listens on {interface}:{sp}, leecher on {interface}:{lp}")
    if sp == lp:
        print("FAIL: both sessions got the same port", file=sys.stderr)
        return 1

    base_flags = lt.torrent_flags.disable_dht | lt.torrent_flags.disable_lsd | \
        lt.torrent_flags.disable_pex

    sparams = lt.add_torrent_params()
    sparams.ti = ti
    sparams.save_path = seed_dir
    sparams.flags = base_flags
    sh = seeder.add_torrent(sparams)

    lparams = lt.add_torrent_params()
    lparams.ti = lt.torrent_info(ti)
    lparams.save_path = leech_dir
    lparams.flags = base_flags
    lh = None

    sw = Watcher("seeder", seeder)
    lw = Watcher("leecher", leecher)

    # The leecher joins once the seeder has verified its data and had a tracker reply, so the
    # tracker already lists the seeder when the leecher announces.
    finished_at = None
    replies_at_finish = 0
    while time.monotonic() < deadline:
        seeder.wait_for_alert(100)
        sw.drain()
        if lh is not None:
            lw.drain()
        ss = sh.status()
        if lh is None and ss.is_seeding and (sw.replies or no_tracker_wait):
            log(f"seeder is seeding (tracker replies: {sw.replies}); adding the leecher")
            lh = leecher.add_torrent(lparams)
            continue
        if lh is None:
            continue
        ls = lh.status()
        if finished_at is None and ls.is_seeding:
            finished_at = time.monotonic()
            replies_at_finish = len(lw.replies)
            log(f"leecher finished: {ls.total_wanted_done} bytes, "
                f"{ls.num_peers} peers connected")
        # After finishing, wait a little for the leecher's `completed` announce to be answered
        # so that the tracker has counted the download.
        if finished_at is not None and (len(lw.replies) > replies_at_finish or
                                        time.monotonic() - finished_at > 10):
            break

    ok = True
    problems = []
    if lh is None or finished_at is None:
        ok = False
        problems.append(f"leecher did not finish within {timeout} s")
    if not sw.replies or max(sw.replies) < 1:
        ok = False
        problems.append(f"seeder got no tracker reply with peers: {sw.replies}")
    if not lw.replies or max(lw.replies) < 1:
        ok = False
        problems.append(f"leecher got no tracker reply with peers: {lw.replies}")
    if finished_at is not None:
        path = os.path.join(leech_dir, name)
        with open(path, "rb") as f:
            got = f.read()
        if hashlib.sha256(got).hexdigest() != digest or got != data:
            ok = False
            problems.append(f"downloaded bytes differ ({len(got)} vs {len(data)} bytes)")
        if len(lw.replies) <= replies_at_finish:
            log("note: no tracker reply to the leecher's completed announce within 10 s")

    if ok and scrape:
        scraped = scrape_tracker(sh, sw, time.monotonic() + 20)
        if scraped is None:
            ok = False
            problems.append("no scrape reply within 20 s")
        else:
            print(f"scrape complete={scraped[0]} incomplete={scraped[1]}", flush=True)

    if ok:
        log(f"tracker replies: seeder {sw.replies}, leecher {lw.replies}")
        print(f"OK: {size} bytes transferred through {url} in "
              f"{finished_at - START:.1f} s; sha256 {digest}", flush=True)
    else:
        print("FAIL: " + "; ".join(problems), flush=True)
        print("--- seeder trackers\n" + tracker_status(sh), flush=True)
        if lh is not None:
            print("--- leecher trackers\n" + tracker_status(lh), flush=True)
            ls = lh.status()
            print(f"--- leecher state {ls.state} progress {ls.progress:.3f} "
                  f"peers {ls.num_peers} list_peers {ls.list_peers}", flush=True)
        print("--- alerts", flush=True)
        for line in (sw.lines + lw.lines)[-200:]:
            print(line, flush=True)

    # Dropping the sessions sends `stopped` to the tracker (bounded by stop_tracker_timeout).
    del sh, lh
    del seeder, leecher
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
