#!/usr/bin/env bash
# HTTP announce cost per core: wrk against ferrotracker and opentracker, with keep-alive and
# with a new connection per request ('Connection: close'), in interleaved rounds.
#
# Every request announces a random port on a random torrent of 10,000 (bench/announce.lua; the
# hashes are bench/hashes.py's loadgen hashes, seed 7, which are also opentracker's whitelist).
# The tracker is pinned to one CPU and wrk to another. wrk saturates its own core before a
# tracker does on a 2-core machine, so by default the tracker is also capped at --cap percent
# of a core (a cgroup CPU quota): announces per tracker CPU-second is then the cost measure,
# and announces/s shows the capped capacity. Before each run one announce is checked to be a
# real peer list (not a failure reason).
#
# usage: bench/http.sh [--rounds N] [--duration SECS] [--connections N] [--cap PCT]
#                      [--modes keepalive,close] [--trackers LIST] [--workers N]
#                      [--tracker-cpus LIST] [--tester-cpus LIST]
#   defaults: 3 rounds of 10 s, 64 connections, cap 30 (0 = no cap), both modes,
#   ferrotracker,opentracker (those installed), 1 worker, tracker on CPU 0, wrk on CPU 1.
# opentracker (Debian) has no keep-alive: it closes every connection in both modes.
# aquatic_http is not measured: pinned to one core it measures the scheduling delay between its
# two busy-polling threads, not capacity (see bench/README.md).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=3
DURATION=10
CONNS=64
CAP=30
MODES="keepalive,close"
TRACKERS=""
WORKERS=1
TRACKER_CPUS=0
TESTER_CPUS=1
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --connections) CONNS="$2"; shift 2 ;;
        --cap) CAP="$2"; shift 2 ;;
        --modes) MODES="$2"; shift 2 ;;
        --trackers) TRACKERS="$2"; shift 2 ;;
        --workers) WORKERS="$2"; shift 2 ;;
        --tracker-cpus) TRACKER_CPUS="$2"; shift 2 ;;
        --tester-cpus) TESTER_CPUS="$2"; shift 2 ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) die "unknown argument $1" ;;
    esac
done
command -v wrk >/dev/null || die "no wrk: run bench/install.sh"

build_ferrotracker
if [ -z "$TRACKERS" ]; then
    TRACKERS="ferrotracker"
    have_tracker opentracker && TRACKERS="$TRACKERS,opentracker"
fi
read -r -a TLIST <<< "${TRACKERS//,/ }"
read -r -a MLIST <<< "${MODES//,/ }"
for t in "${TLIST[@]}"; do
    case "$t" in ferrotracker|opentracker) ;; *) die "http.sh measures ferrotracker and opentracker only" ;; esac
    have_tracker "$t" || die "$t is not installed (bench/install.sh)"
done
HASHES="$(whitelist_file loadgen 10000 7)"

cap_setup "$CAP"

check_announce() { # host:port
    python3 - "$1" "$(head -1 "$HASHES")" <<'EOF' || return 1
import sys, urllib.request
hp, h = sys.argv[1], sys.argv[2]
q = "".join("%" + h[i:i + 2] for i in range(0, 40, 2))
url = f"http://{hp}/announce?info_hash={q}&peer_id=-CHECK0-000000000000&port=1&uploaded=0&downloaded=0&left=0&compact=1"
body = urllib.request.urlopen(url, timeout=5).read()
if b"failure" in body or b"8:interval" not in body:
    sys.exit(f"not an announce reply: {body[:200]!r}")
EOF
}

# One run; sets R_OUT="announces_per_s cpu_cores announces_per_cpu_s read_errors other_errors".
# wrk counts a "read error" whenever the server closes a connection it hoped to reuse:
# opentracker closes after every reply, so there it is one per announce and harmless.
run_one() { # tracker mode
    local tr="$1" mode="$2" wl=() hdr=()
    [ "$tr" = opentracker ] && wl=("$HASHES")
    [ "$mode" = close ] && hdr=(-H "Connection: close")
    start_tracker "$tr" 4 "$TRACKER_CPUS" "$WORKERS" "${wl[@]}"
    check_announce "$TRACKER_HTTP" || die "$tr does not answer announces with peers"
    cap_add "$TRACKER_PID"
    local t0 c0 t1 c1 out
    t0="$(date +%s.%N)"; c0="$(cpu_ticks "$TRACKER_PID")"
    out="$(timeout $((DURATION + 30)) taskset -c "$TESTER_CPUS" wrk -t1 -c"$CONNS" -d"${DURATION}s" \
        --timeout 5s "${hdr[@]}" -s "$BENCH_DIR/announce.lua" "http://$TRACKER_HTTP/announce" -- "$HASHES" 2>&1)" \
        || { echo "$out" >&2; die "wrk failed against $tr"; }
    t1="$(date +%s.%N)"; c1="$(cpu_ticks "$TRACKER_PID")"
    stop_tracker "$TRACKER_PID"
    local line
    line="$(echo "$out" | grep '^FTBENCH' | tail -1)"
    [ -n "$line" ] || { echo "$out" >&2; die "no summary from wrk"; }
    R_OUT="$(echo "$line" | tr ' =' '\n\n' | awk -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v hz="$CLK_TCK" '
        NR % 2 == 0 { k = $1; next } { v[k] = $1 }
        END {
            secs = v["duration_us"] / 1e6; rate = v["requests"] / secs
            cpu = (c1 - c0) / hz
            errs = v["connect"] + v["write"] + v["status"] + v["timeout"]
            printf "%.0f %.3f %.0f %d %d\n", rate, cpu / (t1 - t0), (cpu > 0 ? v["requests"] / cpu : 0), v["read"], errs }')"
}

echo "# http: $(machine_line)"
echo "# wrk -t1 -c$CONNS -d${DURATION}s, tracker on CPU $TRACKER_CPUS ($WORKERS worker(s), cap ${CAP}% of a core; 0 = none), wrk on CPU $TESTER_CPUS"
echo
echo "| round | mode | tracker | announces/s | tracker CPU (cores) | announces per CPU-s | wrk read errors (server closed) | other wrk errors |"
echo "|---|---|---|---|---|---|---|---|"
declare -A RATE PERCPU
for r in $(seq "$ROUNDS"); do
    k=$(( (r - 1) % ${#TLIST[@]} ))
    order=("${TLIST[@]:$k}" "${TLIST[@]:0:$k}")
    for mode in "${MLIST[@]}"; do
        for tr in "${order[@]}"; do
            log "round $r: $mode $tr"
            run_one "$tr" "$mode"
            read -r rate cpu percpu rerrs errs <<< "$R_OUT"
            RATE[$tr,$mode,$r]="$rate"; PERCPU[$tr,$mode,$r]="$percpu"
            echo "| $r | $mode | $tr | $rate | $cpu | $percpu | $rerrs | $errs |"
        done
    done
done

echo
echo "| mode | tracker | median announces/s | median announces per CPU-s |"
echo "|---|---|---|---|"
for mode in "${MLIST[@]}"; do
    for tr in "${TLIST[@]}"; do
        m1="$(for r in $(seq "$ROUNDS"); do echo "${RATE[$tr,$mode,$r]}"; done | median)"
        m2="$(for r in $(seq "$ROUNDS"); do echo "${PERCPU[$tr,$mode,$r]}"; done | median)"
        printf '| %s | %s | %.0f | %.0f |\n' "$mode" "$tr" "$m1" "$m2"
    done
done
if [[ " ${TLIST[*]} " == *" ferrotracker "* ]] && [[ " ${TLIST[*]} " == *" opentracker "* ]]; then
    echo
    echo "| mode | paired ratio ferrotracker / opentracker, announces per CPU-s: median (min-max) |"
    echo "|---|---|"
    for mode in "${MLIST[@]}"; do
        a="$(for r in $(seq "$ROUNDS"); do awk -v x="${PERCPU[ferrotracker,$mode,$r]}" -v y="${PERCPU[opentracker,$mode,$r]}" 'BEGIN { printf "%.3f\n", (y > 0 ? x / y : 0) }'; done)"
        printf '| %s | %.2f (%s-%s) |\n' "$mode" "$(echo "$a" | median)" "$(echo "$a" | sort -g | head -1)" "$(echo "$a" | sort -g | tail -1)"
    done
fi
