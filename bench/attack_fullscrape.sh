#!/usr/bin/env bash
# Replays the full-scrape memory attack: torrents whose info_hashes share their first 12 bits
# (so one shard of the store holds them all), then gzip full scrapes that are never read.
#
# Starts the tracker (FT_BIN, release build) on loopback, fills it with TORRENTS such torrents
# over BEP 15 (bench/loadgen with a SHARD argument, one peer each), then for each count in
# STREAMS opens that many `GET /scrape` with `Accept-Encoding: gzip` from 127.0.0.1 that read
# the reply head and nothing more (a 4 KiB receive buffer), holds them, and prints the replies'
# statuses, VmRSS before and while they are held (and VmHWM), and the latency of honest HTTP
# announces (one keep-alive connection from 127.0.0.2) before and during the attack.
#
# For the attack to come from one address, the tracker's config lifts the per-address limits:
# `http.max_connections_per_ip 0`, and `tracker.full_scrape_interval 0` where the binary knows
# the key (older builds don't). `http.max_streams` stays at its default, so a build that has it
# refuses the streams beyond it (the "refused" column). Streams are held for less than
# http.idle_timeout (30 s), which closes unread connections.
#
# usage: bench/attack_fullscrape.sh [--torrents N] [--streams LIST] [--announces N]
#   --torrents  torrents in the crowded shard (default 1000000; 100000 is quicker)
#   --streams   comma list of unread streams to open, one round each (default 64,1000)
#   --announces honest announces timed per measurement (default 300)
# Environment: FT_BIN (tracker binary to attack, e.g. main's build to compare), FT_LOADGEN,
#              FT_NO_BUILD=1 (skip cargo build), FT_BENCH_KEEP=1 (keep logs in /tmp).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

TORRENTS=1000000
STREAMS="64,1000"
ANNOUNCES=300
while [ $# -gt 0 ]; do
    case "$1" in
        --torrents) TORRENTS="$2"; shift 2 ;;
        --streams) STREAMS="$2"; shift 2 ;;
        --announces) ANNOUNCES="$2"; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) die "unknown argument $1" ;;
    esac
done

build_ferrotracker
[ -x "$FT_BIN" ] || die "no tracker at $FT_BIN"
[ -x "$LOADGEN" ] || die "no loadgen at $LOADGEN"
# 1000 streams and the tracker's side of them.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"

dir="$(mktemp -d "$RUN_DIR/attack.XXXX")"
{
    echo "tracker.peer_timeout 864000"
    echo "http.max_connections_per_ip 0"
    if "$FT_BIN" -h 2>&1 | grep -q full_scrape_interval; then
        echo "tracker.full_scrape_interval 0"
    fi
} > "$dir/ferrotracker.conf"
"$FT_BIN" -f "$dir/ferrotracker.conf" -i 127.0.0.1 -p 0 -P 0 2> "$dir/stderr" &
TRACKER_PID=$!
BENCH_PIDS+=("$TRACKER_PID")
wait_listening "$dir/stderr" ferrotracker
TRACKER_HTTP="$(listening_addr tcp "$dir/stderr")"
wait_rss_stable "$TRACKER_PID"
rss_empty="$(status_kb "$TRACKER_PID" VmRSS)"

log "filling $TORRENTS torrents in shard abc over $TRACKER_UDP"
"$LOADGEN" "$TRACKER_UDP" "$TORRENTS" 1 1 abc >&2 || die "loadgen failed"
wait_rss_stable "$TRACKER_PID"

# Times N announces on one keep-alive connection from 127.0.0.2; prints "median_ms p99_ms".
announce_latency() {
    python3 - "$TRACKER_HTTP" "$ANNOUNCES" <<'EOF'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
n = int(sys.argv[2])
s = socket.create_connection((host, int(port)), timeout=10, source_address=("127.0.0.2", 0))
times = []
for i in range(n):
    h = (b"honest%014d" % i)
    q = "".join("%%%02x" % b for b in h)
    req = ("GET /announce?info_hash=%s&peer_id=-FT0001-%012d&port=6881&left=1&compact=1 HTTP/1.1\r\n"
           "Host: t\r\n\r\n" % (q, i)).encode()
    t0 = time.perf_counter()
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, _, body = buf.partition(b"\r\n\r\n")
    length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
    while len(body) < length:
        body += s.recv(65536)
    times.append((time.perf_counter() - t0) * 1000)
times.sort()
print("%.2f %.2f" % (times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]))
EOF
}

# Opens N unread gzip full scrapes, writes "200:a 503:b 429:c other:d" to $2 once all heads are
# read, then holds them until killed.
hold_streams() { # n statusfile
    # exec: the PID the caller holds is python's, so stopping it closes the connections.
    exec python3 - "$TRACKER_HTTP" "$1" "$2" 2>/dev/null <<'EOF'
import socket, sys, time, collections
host, port = sys.argv[1].rsplit(":", 1)
n, out = int(sys.argv[2]), sys.argv[3]
held, count = [], collections.Counter()
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect((host, int(port)))
    s.sendall(b"GET /scrape HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n")
    head = b""
    try:
        while b"\r\n\r\n" not in head:
            b = s.recv(1)
            if not b:
                break
            head += b
        code = head[9:12].decode() or "closed"
    except OSError:
        code = "error"
    count[code if code in ("200", "503", "429") else "other"] += 1
    held.append(s)
with open(out + ".tmp", "w") as f:
    f.write(" ".join("%s:%d" % (k, count[k]) for k in ("200", "503", "429", "other")))
import os
os.rename(out + ".tmp", out)
time.sleep(600)
EOF
}

read -r base_med base_p99 <<< "$(announce_latency)"
rss_full="$(status_kb "$TRACKER_PID" VmRSS)"
echo "# attack_fullscrape: $(machine_line)"
echo "# binary: $FT_BIN"
echo "# $TORRENTS torrents in one shard; RSS empty $((rss_empty / 1024)) MiB, filled $((rss_full / 1024)) MiB;" \
    "honest announce latency before the attack: median ${base_med} ms, p99 ${base_p99} ms"
printf '%-8s %-32s %12s %12s %12s %14s %14s\n' streams replies rss_before_MiB rss_during_MiB per_stream_KiB announce_med_ms announce_p99_ms
for n in ${STREAMS//,/ }; do
    before="$(status_kb "$TRACKER_PID" VmRSS)"
    rm -f "$dir/status"
    hold_streams "$n" "$dir/status" &
    holder=$!
    BENCH_PIDS+=("$holder")
    for _ in $(seq 600); do
        [ -e "$dir/status" ] && break
        kill -0 "$TRACKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if ! kill -0 "$TRACKER_PID" 2>/dev/null; then
        kill -TERM "$holder" 2>/dev/null || true
        printf '%-8s the tracker exited while the streams were opened (out of memory?): %s\n' \
            "$n" "$(tail -1 "$dir/stderr")"
        exit 0
    fi
    [ -e "$dir/status" ] || die "the streams were not opened within 60 s"
    sleep 2 # let the workers go as far as the unread connections allow
    read -r med p99 <<< "$(announce_latency)"
    during="$(status_kb "$TRACKER_PID" VmRSS)"
    printf '%-8s %-32s %12d %12d %12d %14s %14s\n' "$n" "$(cat "$dir/status")" \
        $((before / 1024)) $((during / 1024)) $(((during - before) / n)) "$med" "$p99"
    kill -TERM "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
    sleep 2 # the tracker notices the closes and drops the streams
done
echo "# VmHWM $(($(status_kb "$TRACKER_PID" VmHWM) / 1024)) MiB"
stop_tracker "$TRACKER_PID"
