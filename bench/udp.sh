#!/usr/bin/env bash
# UDP (BEP 15) throughput per core: aquatic_udp_load_test against ferrotracker, aquatic_udp and
# opentracker, in interleaved rounds (the order rotates every round), with the same load-tester
# settings for each. The tracker is pinned to one CPU, the load tester to another.
#
# Per round and tracker, a fresh tracker is started and loaded for DURATION seconds; the load
# tester reports responses/s every 5 s. The first 5 s (warm-up) are left out; over the rest the
# script reads the tracker's own CPU time (utime+stime of all its threads, /proc/PID/stat) and
# reports responses/s, tracker CPU use, and responses per tracker CPU-second (the cost measure;
# but see Saturation below). Medians over rounds and paired (same-round) ratios close the report.
#
# Saturation: with --cap PCT the tracker runs in a cgroup allowed PCT percent of one core, so
# that every tracker, not only the slowest, is the bottleneck (the tracker socket's drops/s
# column shows it: the kernel dropped requests because the tracker's queue was full). Uncapped,
# the load tester (one core) cannot keep a batching tracker's queue filled: ferrotracker then
# finds 3-4 datagrams per recvmmsg and pays its per-call costs on each few, so its cost per
# response there measures the load tester's pace as much as the tracker. Capped, each tracker
# is measured at its cost per response when it is the limit, which is what capacity means.
#
# usage: bench/udp.sh [--rounds N] [--duration SECS] [--trackers LIST] [--workers N] [--cap PCT]
#                     [--tracker-cpus LIST] [--tester-cpus LIST] [--ipv6]
#   --rounds 5, --duration 15 (a multiple of 5, >= 10), --trackers: those installed of
#   ferrotracker,aquatic_udp,opentracker (`null` adds ferrotracker-null-udp, a do-nothing responder
#   on ferrotracker's batched sockets: the kernel's floor); --workers 1 (tracker.workers / socket_workers;
#   opentracker always has one event thread); --cap 0 (no cap; 50 = half a core);
#   --tracker-cpus 0, --tester-cpus 1 (taskset lists).
#   --ipv6 loads [::1] (opentracker is skipped: Debian's build is IPv4-only).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=5
DURATION=15
TRACKERS=""
WORKERS=1
CAP=0
TRACKER_CPUS=0
TESTER_CPUS=1
FAM=4
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --trackers) TRACKERS="$2"; shift 2 ;;
        --workers) WORKERS="$2"; shift 2 ;;
        --cap) CAP="$2"; shift 2 ;;
        --tracker-cpus) TRACKER_CPUS="$2"; shift 2 ;;
        --tester-cpus) TESTER_CPUS="$2"; shift 2 ;;
        --ipv6) FAM=6; shift ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) die "unknown argument $1" ;;
    esac
done
[ $((DURATION % 5)) = 0 ] && [ "$DURATION" -ge 10 ] || die "--duration must be a multiple of 5, at least 10"
[ -x "$AQUATIC_UDP_LOAD_TEST" ] || die "no aquatic_udp_load_test at $AQUATIC_UDP_LOAD_TEST: run bench/install.sh"

build_ferrotracker
if [ -z "$TRACKERS" ]; then
    TRACKERS="ferrotracker"
    have_tracker aquatic_udp && TRACKERS="$TRACKERS,aquatic_udp"
    have_tracker opentracker && [ "$FAM" = 4 ] && TRACKERS="$TRACKERS,opentracker"
fi
read -r -a TLIST <<< "${TRACKERS//,/ }"
for t in "${TLIST[@]}"; do have_tracker "$t" || die "$t is not installed (bench/install.sh)"; done
cap_setup "$CAP"

# The load tester's torrents (number_of_torrents below); opentracker gets them as its whitelist.
NUM_TORRENTS=1000000
WL=""
if [[ " ${TLIST[*]} " == *" opentracker "* ]]; then
    WL="$(whitelist_file aquatic-udp "$NUM_TORRENTS")"
fi

# One round of one tracker; sets
# R_OUT="responses_per_s cpu_fraction responses_per_cpu_s errors_per_s tester_cpu drops_per_s".
# (Runs in the main shell, so the EXIT trap stops the tracker whatever happens.)
run_one() { # tracker
    local tr="$1" wl=() lt="$RUN_DIR/load_test.toml" out="$RUN_DIR/load_test.out"
    [ "$tr" = opentracker ] && wl=("$WL")
    start_tracker "$tr" "$FAM" "$TRACKER_CPUS" "$WORKERS" "${wl[@]}"
    local server="$TRACKER_UDP"
    cap_add "$TRACKER_PID"
    cat > "$lt" <<EOF
server_address = "$server"
log_level = "error"
workers = 1
duration = $DURATION
summarize_last = 0
extra_statistics = false
[requests]
number_of_torrents = $NUM_TORRENTS
EOF
    # Every 5 s the load tester prints "Responses in: X/second" for the last interval: sample
    # the tracker's CPU ticks at each such line so CPU and responses cover the same intervals.
    local t0="" c0="" t1 c1 l0="" l1="" lnow="" lt1="" lpid="" d0="" d1="" port="${server##*:}"
    sample() {
        t1="$(date +%s.%N)"
        c1="$(cpu_ticks "$TRACKER_PID")"
        d1="$(udp_drops "$port")"
        [ -z "$lpid" ] && lpid="$(cat "$RUN_DIR/load_test.pid" 2>/dev/null || true)"
        # The load tester may have exited after its last line: keep its last reading.
        lnow="$(cpu_ticks "$lpid" 2>/dev/null || true)"
        [ -n "$lnow" ] && { l1="$lnow"; lt1="$t1"; }
        [ "$LT_N" = 1 ] && { t0="$t1"; c0="$c1"; l0="$l1"; d0="$d1"; }
        return 0
    }
    run_udp_load_test "$lt" "$out" "$TESTER_CPUS" "$DURATION" sample
    stop_tracker "$TRACKER_PID"
    [ "$LT_N" -ge 2 ] || { tail -20 "$out" >&2; die "load tester printed no intervals against $tr"; }
    R_OUT="$(awk -v n="$((LT_N - 1))" -v s="$LT_RESPONSES" -v e="$LT_ERRORS" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" \
        -v l0="$l0" -v l1="$l1" -v lt1="$lt1" -v d0="$d0" -v d1="$d1" -v hz="$CLK_TCK" 'BEGIN {
        rate = s / n; cpu = (c1 - c0) / hz / (t1 - t0); lcpu = (lt1 > t0 ? (l1 - l0) / hz / (lt1 - t0) : 0)
        printf "%.0f %.3f %.0f %.0f %.3f %.0f\n", rate, cpu, (cpu > 0 ? rate / cpu : 0), e / n, lcpu, (d1 - d0) / (t1 - t0) }')"
}

echo "# udp: $(machine_line)"
echo "# aquatic_udp_load_test defaults (1 worker, 4 sockets, $NUM_TORRENTS torrents), ${DURATION}s a run, first 5s left out;"
echo "# tracker on CPU $TRACKER_CPUS with $WORKERS worker(s), cap ${CAP}% of a core (0 = none), load tester on CPU $TESTER_CPUS, IPv$FAM"
echo
echo "| round | tracker | responses/s | tracker CPU (cores) | responses per CPU-s | errors/s | load tester CPU (cores) | tracker socket drops/s |"
echo "|---|---|---|---|---|---|---|---|"
declare -A RATE CPUS PERCPU
for r in $(seq "$ROUNDS"); do
    # rotate the order so no tracker always goes first
    k=$(( (r - 1) % ${#TLIST[@]} ))
    order=("${TLIST[@]:$k}" "${TLIST[@]:0:$k}")
    for tr in "${order[@]}"; do
        log "round $r: $tr"
        run_one "$tr"
        read -r rate cpu percpu errs lcpu drops <<< "$R_OUT"
        RATE[$tr,$r]="$rate"; CPUS[$tr,$r]="$cpu"; PERCPU[$tr,$r]="$percpu"
        echo "| $r | $tr | $rate | $cpu | $percpu | $errs | $lcpu | $drops |"
    done
done

echo
echo "| tracker | median responses/s | median CPU (cores) | median responses per CPU-s |"
echo "|---|---|---|---|"
for tr in "${TLIST[@]}"; do
    m1="$(for r in $(seq "$ROUNDS"); do echo "${RATE[$tr,$r]}"; done | median)"
    m2="$(for r in $(seq "$ROUNDS"); do echo "${CPUS[$tr,$r]}"; done | median)"
    m3="$(for r in $(seq "$ROUNDS"); do echo "${PERCPU[$tr,$r]}"; done | median)"
    printf '| %s | %.0f | %.3f | %.0f |\n' "$tr" "$m1" "$m2" "$m3"
done
if [[ " ${TLIST[*]} " == *" ferrotracker "* ]] && [ "${#TLIST[@]}" -gt 1 ]; then
    echo
    echo "| paired ratio (median over rounds, min-max) | responses/s | responses per CPU-s |"
    echo "|---|---|---|"
    for tr in "${TLIST[@]}"; do
        [ "$tr" = ferrotracker ] && continue
        a="$(for r in $(seq "$ROUNDS"); do awk -v x="${RATE[ferrotracker,$r]}" -v y="${RATE[$tr,$r]}" 'BEGIN { printf "%.3f\n", (y > 0 ? x / y : 0) }'; done)"
        b="$(for r in $(seq "$ROUNDS"); do awk -v x="${PERCPU[ferrotracker,$r]}" -v y="${PERCPU[$tr,$r]}" 'BEGIN { printf "%.3f\n", (y > 0 ? x / y : 0) }'; done)"
        printf '| ferrotracker / %s | %.2f (%s-%s) | %.2f (%s-%s) |\n' "$tr" \
            "$(echo "$a" | median)" "$(echo "$a" | sort -g | head -1)" "$(echo "$a" | sort -g | tail -1)" \
            "$(echo "$b" | median)" "$(echo "$b" | sort -g | head -1)" "$(echo "$b" | sort -g | tail -1)"
    done
fi
