#!/usr/bin/env bash
# WebTorrent tracker cost per core and memory per connected peer: ferrotracker (when the build
# serves WebTorrent), aquatic_ws 0.9.0 and the npm bittorrent-tracker server, one run each.
#
#  1. Throughput: aquatic_ws_load_test 0.9.0 (wss:// only: it speaks TLS and accepts any
#     certificate; its default load: 16 connections, announces with 10 offers each over 10,000
#     torrents, so responses include the relayed offers and answers) on CPU 1 against the tracker
#     pinned to CPU 0 and capped at --cap percent of a core (lib.sh's cgroup). Tracker CPU is read
#     from /proc/PID/stat (all threads) at each of the tester's 5-second reports; the first report
#     is warm-up. bittorrent-tracker has no TLS of its own: tests/webtorrent/reference-tracker.js
#     serves it from Node's https module in the same process, so its CPU includes TLS, as
#     aquatic_ws's (rustls) and ferrotracker's do.
#  2. Memory: RSS of the idle tracker, then ferrotracker-ws-idle opens --idle N plain ws://
#     connections, one announce each (no offers), and holds them; RSS per connected peer is
#     (RSS with them - RSS idle) / N.
#
# usage: bench/webtorrent.sh [--duration SECS] [--cap PCT] [--torrents N] [--runs R] [--idle N]
#                            [--sources K] [--trackers LIST]
#   defaults: 20 s, cap 50, 10,000 torrents (the tester's default), 1 run, 10000 idle
#   connections from 1 source address (K > 1 spreads them over 127.0.0.1..K for more than
#   ~28,000; --idle 0 skips the memory part), trackers ferrotracker,aquatic_ws,bittorrent-tracker.
#   With R runs the trackers take turns (run 1 of each, then run 2, ...) and a median row per
#   tracker follows. Idle connections need file descriptors: N + a few in the tool and in the
#   tracker (ulimit -n).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DURATION=20
CAP=50
TORRENTS=10000
RUNS=1
IDLE=10000
SOURCES=1
TRACKERS="ferrotracker,aquatic_ws,bittorrent-tracker"
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --cap) CAP="$2"; shift 2 ;;
        --torrents) TORRENTS="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --idle) IDLE="$2"; shift 2 ;;
        --sources) SOURCES="$2"; shift 2 ;;
        --trackers) TRACKERS="$2"; shift 2 ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) die "unknown argument $1" ;;
    esac
done
AQUATIC_WS="$TOOLS/bin/aquatic_ws"
AQUATIC_WS_LOAD_TEST="$TOOLS/bin/aquatic_ws_load_test"
WS_IDLE="${FT_WS_IDLE:-$TARGET/release/ferrotracker-ws-idle}"
WT_DIR="$REPO/tests/webtorrent"
[ -x "$AQUATIC_WS_LOAD_TEST" ] || die "no aquatic_ws_load_test: run bench/install.sh"
if [ -z "${FT_NO_BUILD:-}" ]; then
    build_ferrotracker
    (cd "$REPO" && nice -n 19 cargo build --quiet --release -p ferrotracker-loadgen --bin ferrotracker-ws-idle) || die "cargo build failed"
fi
[ "$(ulimit -n)" -gt $((IDLE + 100)) ] || ulimit -n $((IDLE + 100)) 2>/dev/null ||
    die "ulimit -n $(ulimit -n) is too low for --idle $IDLE (hard limit $(ulimit -Hn))"

# A self-signed certificate for 127.0.0.1 (the load tester checks nothing; aquatic_ws wants PEM).
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$RUN_DIR/key.pem" -out "$RUN_DIR/cert.pem" 2>/dev/null \
    || die "openssl failed"

# The WebTorrent lines of a ferrotracker config: a TLS listener and the WebSocket tracker on it.
ft_ws_config() { # port tls(0|1)
    echo "tracker.peer_timeout 604800"
    echo "tracker.max_peers_per_ip 0"
    echo "tracker.workers 1"
    echo "webtorrent on"
    # As aquatic_ws's config below: connections held an hour. The load tester gives each
    # connection one peer_id that announces into many of its 10,000 torrents: room for them.
    echo "webtorrent.idle_timeout 3600"
    echo "webtorrent.max_peers_per_connection 4096"
    # Every connection comes from 127.0.0.1 (or a few loopback addresses).
    echo "http.max_connections_per_ip 0"
    if [ "$2" = 1 ]; then
        echo "listen.tls 127.0.0.1:$1"
        echo "tls.certificate $RUN_DIR/cert.pem"
        echo "tls.private_key $RUN_DIR/key.pem"
    else
        echo "listen.tcp 127.0.0.1:$1"
    fi
}

read -r -a TLIST <<< "${TRACKERS//,/ }"
RUN_LIST=()
for t in "${TLIST[@]}"; do
    case "$t" in
        ferrotracker)
            ft_ws_config 1 1 > "$RUN_DIR/check.conf"
            if [ -x "$FT_BIN" ] && "$FT_BIN" --check-config -f "$RUN_DIR/check.conf" >/dev/null 2>&1; then
                RUN_LIST+=(ferrotracker)
            else
                echo "# ferrotracker: no WebTorrent support in this build ($FT_BIN --check-config refuses 'webtorrent on' with listen.tls)"
            fi
            ;;
        aquatic_ws) [ -x "$AQUATIC_WS" ] && RUN_LIST+=(aquatic_ws) || echo "# aquatic_ws: not installed (bench/install.sh)" ;;
        bittorrent-tracker)
            bash "$WT_DIR/install.sh" || die "tests/webtorrent/install.sh failed"
            RUN_LIST+=(bittorrent-tracker) ;;
        *) die "unknown tracker $t" ;;
    esac
done

# start_ws NAME TLS(0|1): starts the tracker pinned to CPU 0; sets TRACKER_PID, WS_ADDR (ip:port), WS_URL.
start_ws() {
    local name="$1" tls="$2" dir port
    dir="$(mktemp -d "$RUN_DIR/$name.XXXX")"
    port="$(free_port)"
    WS_ADDR="127.0.0.1:$port"
    WS_URL="$([ "$tls" = 1 ] && echo wss || echo ws)://$WS_ADDR/announce"
    case "$name" in
        ferrotracker)
            ft_ws_config "$port" "$tls" > "$dir/ferrotracker.conf"
            taskset -c 0 "$FT_BIN" -f "$dir/ferrotracker.conf" 2> "$dir/stderr" &
            ;;
        aquatic_ws)
            cat > "$dir/aquatic_ws.toml" <<EOT
socket_workers = 1
swarm_workers = 1
log_level = "error"
[network]
address = "$WS_ADDR"
enable_tls = $([ "$tls" = 1 ] && echo true || echo false)
tls_certificate_path = "$RUN_DIR/cert.pem"
tls_private_key_path = "$RUN_DIR/key.pem"
[cleaning]
max_peer_age = 3600
max_connection_idle = 3600
EOT
            taskset -c 0 "$AQUATIC_WS" -c "$dir/aquatic_ws.toml" > "$dir/stdout" 2> "$dir/stderr" &
            ;;
        bittorrent-tracker)
            local tlsargs=()
            [ "$tls" = 1 ] && tlsargs=(--cert "$RUN_DIR/cert.pem" --key "$RUN_DIR/key.pem")
            taskset -c 0 node "$WT_DIR/reference-tracker.js" --port "$port" "${tlsargs[@]}" > "$dir/stdout" 2> "$dir/stderr" &
            ;;
    esac
    TRACKER_PID=$!
    BENCH_PIDS+=("$TRACKER_PID")
    wait_tcp 127.0.0.1 "$port" 30 || { cat "$dir/stderr" >&2; die "$name does not accept on $WS_ADDR"; }
    wait_rss_stable "$TRACKER_PID"
}

# Throughput run: sets R_OUT="responses_per_s cpu_cores responses_per_cpu_s errors_per_s
# announce_per_s offer_per_s answer_per_s connections load1", each a mean over the reports after
# the first (connections: the last report's; load1: the 1-minute load average at the end).
run_load() { # name
    local name="$1" line n=0 t_prev c_prev t c resp=0 cpu=0 wall=0 errs=0 ann=0 off=0 ans=0 conns=0 rate
    start_ws "$name" 1
    cap_add "$TRACKER_PID"
    # Measured from the start (the first report is skipped below as warm-up), not from when all
    # connections are open: the tester does not always open them all (see RESULTS.md).
    {
        printf 'server_address = "%s"\nlog_level = "error"\nduration = %s\n' "$WS_ADDR" "$DURATION"
        echo "measure_after_max_connections_reached = false"
        printf '[torrents]\nnumber_of_torrents = %s\n' "$TORRENTS"
    } > "$RUN_DIR/lt.toml"
    : > "$RUN_DIR/$name.load_test.out"
    t_prev="$(date +%s.%N)"; c_prev="$(cpu_ticks "$TRACKER_PID")"
    while IFS= read -r line; do
        echo "$line" >> "$RUN_DIR/$name.load_test.out"
        case "$line" in
            "Responses in: "*)
                n=$((n + 1))
                t="$(date +%s.%N)"; c="$(cpu_ticks "$TRACKER_PID")"
                rate="$(echo "$line" | sed 's/Responses in: \([0-9.]*\).*/\1/')"
                if [ "$n" -gt 1 ]; then
                    read -r resp cpu wall <<< "$(awk -v r="$resp" -v u="$cpu" -v w="$wall" -v rate="$rate" \
                        -v t0="$t_prev" -v t1="$t" -v c0="$c_prev" -v c1="$c" -v hz="$CLK_TCK" \
                        'BEGIN { printf "%f %f %f\n", r + rate * (t1 - t0), u + (c1 - c0) / hz, w + (t1 - t0) }')"
                fi
                t_prev="$t"; c_prev="$c"
                ;;
            "  - Announce responses:"*) [ "$n" -gt 1 ] && ann="$(awk -v s="$ann" -v r="${line##* }" 'BEGIN { print s + r }')" ;;
            "  - Offer responses:"*) [ "$n" -gt 1 ] && off="$(awk -v s="$off" -v r="${line##* }" 'BEGIN { print s + r }')" ;;
            "  - Answer responses:"*) [ "$n" -gt 1 ] && ans="$(awk -v s="$ans" -v r="${line##* }" 'BEGIN { print s + r }')" ;;
            "  - Error responses:"*) [ "$n" -gt 1 ] && errs="$(awk -v s="$errs" -v r="${line##* }" 'BEGIN { print s + r }')" ;;
            "Active connections: "*) conns="${line##* }" ;;
        esac
    done < <(timeout $((DURATION + 60)) taskset -c 1 "$AQUATIC_WS_LOAD_TEST" -c "$RUN_DIR/lt.toml" 2>&1)
    stop_tracker "$TRACKER_PID"
    [ "$n" -gt 1 ] || { tail -20 "$RUN_DIR/$name.load_test.out" >&2; die "no load test reports against $name"; }
    R_OUT="$(awk -v r="$resp" -v u="$cpu" -v w="$wall" -v e="$errs" -v n="$n" -v a="$ann" -v o="$off" -v s="$ans" \
        -v k="$conns" -v l="$(cut -d' ' -f1 /proc/loadavg)" \
        'BEGIN { m = n - 1; printf "%.0f %.3f %.0f %.0f %.0f %.0f %.0f %s %s\n", r / w, u / w, (u > 0 ? r / u : 0), e / m, a / m, o / m, s / m, k, l }')"
}

# Memory run: sets R_OUT="rss_idle_kib rss_with_kib bytes_per_peer".
run_idle() { # name
    local name="$1" before after
    start_ws "$name" 0
    before="$(status_kb "$TRACKER_PID" VmRSS)"
    "$WS_IDLE" "$WS_URL" "$IDLE" 1000 "$SOURCES" 3600 > "$RUN_DIR/idle.out" 2> "$RUN_DIR/idle.err" &
    local idle_pid=$!
    BENCH_PIDS+=("$idle_pid")
    for _ in $(seq 6000); do
        grep -q '^connected' "$RUN_DIR/idle.out" && break
        kill -0 "$idle_pid" 2>/dev/null || { cat "$RUN_DIR/idle.err" >&2; die "ferrotracker-ws-idle failed against $name"; }
        sleep 0.1
    done
    grep -q '^connected' "$RUN_DIR/idle.out" || die "ferrotracker-ws-idle did not connect to $name in 10 minutes"
    wait_rss_stable "$TRACKER_PID"
    after="$(status_kb "$TRACKER_PID" VmRSS)"
    stop_tracker "$idle_pid"
    stop_tracker "$TRACKER_PID"
    R_OUT="$before $after $(awk -v a="$after" -v b="$before" -v n="$IDLE" 'BEGIN { printf "%.0f", (a - b) * 1024 / n }')"
}

cap_setup "$CAP"
echo "# webtorrent: $(machine_line)"
echo "# aquatic_ws_load_test 0.9.0 (16 connections, 10 offers per announce, $TORRENTS torrents) over wss:// for ${DURATION} s on CPU 1; tracker on CPU 0, cap ${CAP}% of a core (0 = none)"
echo
echo "| tracker | run | responses/s | tracker CPU (cores) | responses per tracker CPU-s | announce / offer / answer / error replies per s | tester connections | load avg (1 min) |"
echo "|---|---|---|---|---|---|---|---|"
declare -A PER_CPU=()
for r in $(seq "$RUNS"); do
    for t in "${RUN_LIST[@]}"; do
        log "throughput: $t, run $r"
        run_load "$t"
        read -r rate cores percpu errs ann off ans conns load <<< "$R_OUT"
        echo "| $t | $r | $rate | $cores | $percpu | $ann / $off / $ans / $errs | $conns | $load |"
        PER_CPU[$t]="${PER_CPU[$t]:-} $percpu"
    done
done
if [ "$RUNS" -gt 1 ]; then
    echo
    echo "| tracker | median responses per tracker CPU-s ($RUNS runs) |"
    echo "|---|---|"
    for t in "${RUN_LIST[@]}"; do
        echo "| $t | $(echo "${PER_CPU[$t]}" | tr ' ' '\n' | grep . | median) |"
    done
fi
cap_cleanup; CGROUP=""
[ "$IDLE" -gt 0 ] || exit 0
echo
echo "# $IDLE idle ws:// connections, one announce each (no offers), over 1000 torrents; no cap"
echo
echo "| tracker | RSS idle (KiB) | RSS with $IDLE peers (KiB) | bytes per connected peer | load avg (1 min) |"
echo "|---|---|---|---|---|"
for t in "${RUN_LIST[@]}"; do
    log "idle connections: $t"
    run_idle "$t"
    read -r before after per <<< "$R_OUT"
    echo "| $t | $before | $after | $per | $(cut -d' ' -f1 /proc/loadavg) |"
done
