#!/usr/bin/env bash
# Soak: mixed UDP and HTTP load against a release build on loopback for a long run, sampling the
# tracker's RSS every 10 s. Passes (exit 0) when RSS after warm-up stays flat and nothing failed.
#
# usage: bench/soak.sh [--minutes N] [--tolerance PCT]
#   --minutes 10 (total run; the first fifth, at least 1 minute, is warm-up)
#   --tolerance 5 (% RSS growth allowed from the end of warm-up to the end, plus 4 MiB)
# Load: aquatic_udp_load_test (if installed by bench/install.sh) and wrk with bench/announce.lua
# (keep-alive announces of random peers on 10,000 torrents); without them, bench/loadgen.
# The tracker runs with tracker.peer_timeout 60 and tracker.torrent_timeout 60 so that the store
# reaches a steady state: every peer the load invents expires a minute later, and so does a
# torrent left with only a download count (kept a day by default, which would make the store, not
# a leak, grow for the whole run); RSS must then stop growing.
# Fails on: RSS growth beyond the tolerance, the tracker dying or logging an ERROR, HTTP errors
# (non-2xx, connect/write/timeout errors) or a load tester failing.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

MINUTES=10
TOLERANCE=5
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) MINUTES="$2"; shift 2 ;;
        --tolerance) TOLERANCE="$2"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
        *) die "unknown argument $1" ;;
    esac
done
SECS=$((MINUTES * 60))
WARMUP=$((SECS / 5 < 60 ? 60 : SECS / 5))
[ "$WARMUP" -lt "$SECS" ] || die "--minutes too short for a warm-up"

build_ferrotracker
[ -x "$FT_BIN" ] || die "no $FT_BIN"

dir="$RUN_DIR/soak"
mkdir -p "$dir"
chmod 755 "$dir"
cat > "$dir/ferrotracker.conf" <<EOF
tracker.peer_timeout 60
tracker.torrent_timeout 60
tracker.workers 2
tracker.max_peers_per_ip 0
EOF
"$FT_BIN" -f "$dir/ferrotracker.conf" -i 127.0.0.1 -p 0 -P 0 2> "$dir/stderr" &
FT_PID=$!
BENCH_PIDS+=("$FT_PID")
for _ in $(seq 100); do
    grep -q "listening on tcp" "$dir/stderr" 2>/dev/null && grep -q "listening on udp" "$dir/stderr" && break
    sleep 0.1
done
UDP_ADDR="$(listening_addr udp "$dir/stderr")"
HTTP_ADDR="$(listening_addr tcp "$dir/stderr")"
[ -n "$UDP_ADDR" ] && [ -n "$HTTP_ADDR" ] || { cat "$dir/stderr" >&2; die "ferrotracker did not start"; }
wait_udp "$UDP_ADDR" 30 || die "no UDP answer from $UDP_ADDR"
log "ferrotracker $FT_PID on udp $UDP_ADDR, http $HTTP_ADDR; ${MINUTES} min, warm-up ${WARMUP}s"

LOAD_PIDS=()
if [ -x "$AQUATIC_UDP_LOAD_TEST" ]; then
    cat > "$dir/udp_load.toml" <<EOF
server_address = "$UDP_ADDR"
log_level = "error"
workers = 1
duration = $SECS
summarize_last = 0
extra_statistics = false
EOF
    "$AQUATIC_UDP_LOAD_TEST" -c "$dir/udp_load.toml" > "$dir/udp_load.out" 2>&1 &
    UDP_LOAD=aquatic_udp_load_test
else
    [ -x "$LOADGEN" ] || die "no aquatic_udp_load_test and no $LOADGEN"
    "$LOADGEN" --help > /dev/null 2>&1 || true
    timeout "$SECS" "$LOADGEN" udp "$UDP_ADDR" > "$dir/udp_load.out" 2>&1 &
    UDP_LOAD=loadgen
fi
LOAD_PIDS+=($!)
BENCH_PIDS+=($!)
if command -v wrk > /dev/null; then
    HASHES="$(whitelist_file loadgen 10000 7)"
    # Half the requests on fresh connections (Connection: close), half kept alive.
    wrk -t1 -c32 -d"${SECS}s" --timeout 5s -s "$BENCH_DIR/announce.lua" \
        "http://$HTTP_ADDR/announce" -- "$HASHES" > "$dir/wrk_keepalive.out" 2>&1 &
    LOAD_PIDS+=($!)
    BENCH_PIDS+=($!)
    wrk -t1 -c8 -d"${SECS}s" --timeout 5s -H "Connection: close" -s "$BENCH_DIR/announce.lua" \
        "http://$HTTP_ADDR/announce" -- "$HASHES" > "$dir/wrk_close.out" 2>&1 &
    LOAD_PIDS+=($!)
    BENCH_PIDS+=($!)
    HTTP_LOAD=wrk
else
    HTTP_LOAD=none
    log "no wrk: HTTP load skipped (run bench/install.sh)"
fi

metric() { # series -> value from /metrics
    curl -s --max-time 5 "http://$HTTP_ADDR/metrics" | awk -v s="$1" '$1 == s { print $2 }'
}

echo "# soak: ${MINUTES} min of $UDP_LOAD (UDP) + $HTTP_LOAD (HTTP) against ferrotracker (2 workers, peer and torrent timeouts 60 s), $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs"
echo "| t (s) | RSS (MiB) | peers | torrents | UDP announces | HTTP announces |"
echo "|---|---|---|---|---|---|"
RSS=()
start=$(date +%s)
errors=0
for ((t = 10; t <= SECS; t += 10)); do
    sleep $((start + t - $(date +%s) > 0 ? start + t - $(date +%s) : 0))
    if ! kill -0 "$FT_PID" 2> /dev/null; then
        echo "ferrotracker died at ${t}s" >&2
        errors=$((errors + 1))
        break
    fi
    kb="$(status_kb "$FT_PID" VmRSS)"
    RSS+=("$kb")
    echo "| $t | $(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }') | $(metric 'ferrotracker_peers{family="ipv4"}') | $(metric ferrotracker_torrents) | $(metric 'ferrotracker_requests_total{proto="udp",kind="announce"}') | $(metric 'ferrotracker_requests_total{proto="http",kind="announce"}') |"
done
for p in "${LOAD_PIDS[@]}"; do wait "$p" || { echo "a load tester failed (pid $p)" >&2; errors=$((errors + 1)); }; done

echo
echo "## errors"
http500="$(metric 'ferrotracker_errors_total{proto="http",code="500"}')"
http400="$(metric 'ferrotracker_errors_total{proto="http",code="400"}')"
udpbad="$(metric 'ferrotracker_errors_total{proto="udp",reason="bad_packet"}')"
echo "tracker /metrics: http 400: ${http400:-?}, http 500: ${http500:-?}, udp bad packets: ${udpbad:-?}"
[ "${http500:-0}" = 0 ] && [ "${http400:-0}" = 0 ] || errors=$((errors + 1))
if grep -q " ERROR " "$dir/stderr"; then
    grep " ERROR " "$dir/stderr" | head -5
    errors=$((errors + 1))
fi
if [ "$UDP_LOAD" = aquatic_udp_load_test ]; then
    grep -iE "responses|error" "$dir/udp_load.out" | tail -6 || true
fi
if [ "$HTTP_LOAD" = wrk ]; then
    for f in "$dir"/wrk_*.out; do
        line="$(grep '^FTBENCH' "$f" || true)"
        echo "$(basename "$f" .out): $(grep 'Requests/sec' "$f" || true) $line"
        [ -n "$line" ] || { cat "$f" >&2; errors=$((errors + 1)); continue; }
        # "read" errors are the server closing a connection wrk hoped to reuse (Connection:
        # close); anything else is a failure.
        for k in connect write status timeout; do
            v="$(sed -n "s/.* $k=\([0-9]*\).*/\1/p" <<< "$line")"
            [ "${v:-0}" = 0 ] || { echo "wrk $k errors: $v" >&2; errors=$((errors + 1)); }
        done
    done
fi

# RSS after warm-up: mean of the first three samples after it against the last three.
first=$((WARMUP / 10))
n=${#RSS[@]}
[ "$n" -ge $((first + 6)) ] || die "too few samples ($n) after warm-up"
a=$(( (RSS[first] + RSS[first + 1] + RSS[first + 2]) / 3 ))
b=$(( (RSS[n - 3] + RSS[n - 2] + RSS[n - 1]) / 3 ))
max=0
for ((i = first; i < n; i++)); do [ "${RSS[i]}" -gt "$max" ] && max=${RSS[i]}; done
allowed=$(( a + a * TOLERANCE / 100 + 4096 ))
echo
echo "RSS after warm-up: $((a / 1024)) MiB; at the end: $((b / 1024)) MiB; highest: $((max / 1024)) MiB; allowed: $((allowed / 1024)) MiB"
status=0
if [ "$b" -gt "$allowed" ]; then echo "FAIL: RSS grew after warm-up"; status=1; fi
if [ "$errors" -gt 0 ]; then echo "FAIL: $errors error(s)"; status=1; fi
[ "$status" = 0 ] && echo "PASS"
exit "$status"
