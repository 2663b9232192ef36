#!/usr/bin/env bash
# One address against the swarm: every port it has, announced into several torrents, then a
# little less into many torrents, while an honest client on another loopback address
# (127.0.0.2) announces into the same torrents and times each reply.
#
# Prints, per phase: what the tracker stored / refused / left unanswered, the honest client's
# reply latency before and during the attack, RSS before and after, and the peers the tracker
# reports holding. Run it against two binaries to compare (the tracker runs with its defaults,
# so an older build takes the same config):
#   FT_BIN=/path/to/old/ferrotracker bench/attack_peers.sh
#   bench/attack_peers.sh
#
# usage: bench/attack_peers.sh [--few N] [--many N] [--many-ports N] [--workers N]
#   --few N         torrents that get all 65,535 ports (default 16)
#   --many N        torrents in the second phase (default 5000)
#   --many-ports N  ports into each of those (default 1000)
#   --workers N     tracker.workers (default 0: one per core)
# Environment: FT_BIN, FT_LOADGEN (its directory holds ferrotracker-attack), FT_NO_BUILD=1,
#              FT_BENCH_KEEP=1 (as the other scripts).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

FEW=16
MANY=5000
MANY_PORTS=1000
WORKERS=0
while [ $# -gt 0 ]; do
    case "$1" in
        --few) FEW="$2"; shift 2 ;;
        --many) MANY="$2"; shift 2 ;;
        --many-ports) MANY_PORTS="$2"; shift 2 ;;
        --workers) WORKERS="$2"; shift 2 ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) die "unknown argument $1" ;;
    esac
done

build_ferrotracker
ATTACK="$(dirname "$LOADGEN")/ferrotracker-attack"
[ -x "$ATTACK" ] || die "no attack tool at $ATTACK (cargo build --release -p ferrotracker-loadgen)"
[ -x "$FT_BIN" ] || die "no tracker at $FT_BIN"

# The tracker with its own defaults (limits included), as an operator would run it.
dir="$(mktemp -d "$RUN_DIR/attack.XXXX")"
{
    [ "$WORKERS" != 0 ] && echo "tracker.workers $WORKERS"
    echo "tracker.peer_timeout 3600"
} > "$dir/ferrotracker.conf"
"$FT_BIN" -f "$dir/ferrotracker.conf" -i 127.0.0.1 -p 0 -P 0 2> "$dir/stderr" &
TRACKER_PID=$!
BENCH_PIDS+=("$TRACKER_PID")
wait_listening "$dir/stderr" ferrotracker
TRACKER_HTTP="$(listening_addr tcp "$dir/stderr")"
wait_udp "$TRACKER_UDP" 30 || die "tracker does not answer on $TRACKER_UDP"
wait_rss_stable "$TRACKER_PID"

peers_held() { # from /metrics: IPv4 peers, estimated swarm bytes (if the build exports it)
    python3 - "$TRACKER_HTTP" <<'PYEOF'
import sys, urllib.request
m = urllib.request.urlopen("http://%s/metrics" % sys.argv[1], timeout=10).read().decode()
v = {l.rsplit(" ", 1)[0]: l.rsplit(" ", 1)[1] for l in m.splitlines() if l and not l.startswith("#")}
print(v.get('ferrotracker_peers{family="ipv4"}', "?"), v.get("ferrotracker_memory_limit_bytes", "-"))
PYEOF
}

echo "# attack_peers: $(machine_line)"
echo "# tracker: $FT_BIN ($(sed 's/\x1b\[[0-9;]*m//g' "$dir/stderr" | grep -o 'swarm memory ceiling: [^;]*' || echo 'no memory ceiling line'))"
rss0="$(status_kb "$TRACKER_PID" VmRSS)"
for phase in "few $FEW 65535 1" "many $MANY $MANY_PORTS 2"; do
    read -r name torrents ports seed <<< "$phase"
    log "phase $name: $torrents torrents x $ports ports from 127.0.0.1"
    before="$(status_kb "$TRACKER_PID" VmRSS)"
    out="$("$ATTACK" "$TRACKER_UDP" "$torrents" "$ports" "$seed")" || die "attack tool failed: $out"
    sleep 1
    after="$(status_kb "$TRACKER_PID" VmRSS)"
    read -r held limit <<< "$(peers_held)"
    echo "## $name: $torrents torrents x $ports ports"
    echo "$out"
    echo "RSS before $((before / 1024)) MiB, after $((after / 1024)) MiB (+$(((after - before) / 1024)) MiB); IPv4 peers held $held; memory ceiling bytes $limit"
done
echo "RSS at start $((rss0 / 1024)) MiB, at end $(( $(status_kb "$TRACKER_PID" VmRSS) / 1024 )) MiB, peak $(( $(status_kb "$TRACKER_PID" VmHWM) / 1024 )) MiB"
stop_tracker "$TRACKER_PID"
