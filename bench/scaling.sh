#!/usr/bin/env bash
# Multi-core UDP (BEP 15) scaling: aquatic_udp_load_test against ferrotracker and aquatic_udp with
# W = 1, 2, 4, 8 workers (and opentracker, which has one event thread, at W = 1), in interleaved
# rounds. The tracker with W workers is pinned to the first W CPUs of the tracker CPU list, the
# load tester to the tester CPU list, with one load-tester worker per tester CPU so that the load
# tester is not the first limit.
#
# Per run: a fresh tracker, loaded for DURATION seconds; the load tester prints a rate every 5 s,
# the first interval is warm-up and left out. At each report the script reads the tracker's CPU
# time (utime+stime of all its threads, /proc/PID/stat) and each thread's, so responses and CPU
# cover the same seconds. Reported per run: responses/s, requests/s, tracker CPU (cores), CPU per
# worker, responses per tracker CPU-second and the busiest threads' CPU; per tracker and W the
# medians over rounds and the speedup against W = 1. For ferrotracker also the per-worker split of
# the datagrams (its `worker N: ... UDP datagrams in ... receive batches` shutdown log lines),
# which shows SO_REUSEPORT spreading the load tester's sockets over the workers.
#
# If the tracker's CPU stays under W cores, the tracker is not saturated: the load tester (or the
# machine) is the limit for that row and its responses/s is not the tracker's capacity.
#
# usage: bench/scaling.sh [--workers LIST] [--rounds N] [--duration SECS] [--trackers LIST]
#                         [--tracker-cpus LIST] [--tester-cpus LIST] [--tester-workers N]
#                         [--tester-sockets N]
#   --workers 1,2,4,8; --rounds 2; --duration 15 (a multiple of 5, >= 10);
#   --trackers: those installed of ferrotracker,aquatic_udp,opentracker (opentracker: W = 1 only);
#   --tracker-cpus / --tester-cpus: comma lists (taskset syntax with ranges is accepted). Default:
#     the physical cores are split in two halves; the tracker gets the first half, listed first
#     thread of every core, then second threads (so W up to the core count uses one thread per
#     core), the load tester every thread of the second half. No core is shared between them.
#     On 16 cores without SMT: tracker 0-7, tester 8-15.
#   --tester-workers: load-tester worker threads (default: one per tester CPU);
#   --tester-sockets: sockets per load-tester worker (default 128). udp.sh uses aquatic's default,
#     4. SO_REUSEPORT hashes each (source address, port) flow to one worker, and 8 x 4 = 32 flows
#     spread over 8 workers unevenly (the busiest worker gets about twice the mean; the load
#     tester then waits for it), which would measure the hash's luck rather than the tracker;
#     8 x 128 = 1024 flows spread within about 10-20%. Every other load-tester setting is udp.sh's
#     (1,000,000 torrents, 2,000,000 peers, connect:announce:scrape 50:50:1).
# Environment: FT_NO_BUILD=1, FT_BIN, FT_BENCH_TOOLS, FT_OPENTRACKER as for the other scripts (lib.sh).
# Needs python3 only to generate opentracker's whitelist (cached in $FT_BENCH_TOOLS/whitelists);
# without python3 the port and readiness checks fall back to bash's /dev/udp and /dev/tcp.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

WORKER_LIST=1,2,4,8
ROUNDS=2
DURATION=15
TRACKERS=""
TRACKER_CPUS=""
TESTER_CPUS=""
TESTER_WORKERS=""
TESTER_SOCKETS=128
while [ $# -gt 0 ]; do
    case "$1" in
        --workers) WORKER_LIST="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --trackers) TRACKERS="$2"; shift 2 ;;
        --tracker-cpus) TRACKER_CPUS="$2"; shift 2 ;;
        --tester-cpus) TESTER_CPUS="$2"; shift 2 ;;
        --tester-workers) TESTER_WORKERS="$2"; shift 2 ;;
        --tester-sockets) TESTER_SOCKETS="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;p}' "$0"; exit 0 ;;
        *) die "unknown argument $1" ;;
    esac
done
[ $((DURATION % 5)) = 0 ] && [ "$DURATION" -ge 10 ] || die "--duration must be a multiple of 5, at least 10"
[ "$TESTER_SOCKETS" -ge 1 ] && [ "$TESTER_SOCKETS" -le 255 ] || die "--tester-sockets must be 1-255"
command -v taskset > /dev/null || die "taskset (util-linux) is needed"
[ -x "$AQUATIC_UDP_LOAD_TEST" ] || die "no aquatic_udp_load_test at $AQUATIC_UDP_LOAD_TEST: run bench/install.sh"
"$AQUATIC_UDP_LOAD_TEST" -p > /dev/null 2>&1 || die "$AQUATIC_UDP_LOAD_TEST does not run here"

# Without python3 (lib.sh uses it for ports and readiness), the same checks in bash.
# FT_NO_PYTHON=1 forces these (to test them).
if [ -n "${FT_NO_PYTHON:-}" ] || ! command -v python3 > /dev/null 2>&1; then
    HAVE_PYTHON=""
    free_port() { # a port no socket on this machine uses (TCP or UDP, v4 or v6)
        local p hex
        for _ in $(seq 200); do
            p=$((20000 + RANDOM % 40000))
            hex="$(printf '%04X' "$p")"
            if ! cat /proc/net/tcp /proc/net/udp /proc/net/tcp6 /proc/net/udp6 2>/dev/null \
                | awk '{ print $2 }' | grep -qi ":$hex\$"; then
                echo "$p"
                return 0
            fi
        done
        return 1
    }
    wait_udp() { # addr [seconds]: a BEP 15 connect is answered
        local host="${1%:*}" port="${1##*:}" end=$((SECONDS + ${2:-30}))
        host="${host#[}"; host="${host%]}"
        while [ "$SECONDS" -lt "$end" ]; do
            # one 16-byte connect datagram; the reply starts with action 0, transaction 0x1234
            if timeout 1 bash -c 'exec 3<>"/dev/udp/$0/$1" || exit 1
                printf "\x00\x00\x04\x17\x27\x10\x19\x80\x00\x00\x00\x00\x00\x00\x12\x34" >&3
                head -c 8 <&3 | od -An -tx1 | tr -d " \n"' "$host" "$port" 2>/dev/null \
                | grep -q '^0000000000001234$'; then
                return 0
            fi
            sleep 0.2
        done
        return 1
    }
    wait_tcp() { # host port [seconds]
        local end=$((SECONDS + ${3:-30}))
        while [ "$SECONDS" -lt "$end" ]; do
            timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null && return 0
            sleep 0.1
        done
        return 1
    }
else
    HAVE_PYTHON=1
fi

expand_cpus() { # "0-3,8,10-11" -> "0 1 2 3 8 10 11"
    local part out=()
    IFS=, read -r -a parts <<< "$1"
    for part in "${parts[@]}"; do
        if [[ "$part" == *-* ]]; then out+=($(seq "${part%-*}" "${part#*-}")); else out+=("$part"); fi
    done
    echo "${out[*]}"
}

# Default CPU split: physical cores (package, core id) in the order of their first CPU; the tracker
# gets the first half of the cores, the load tester the rest.
default_cpu_split() {
    local allowed c key
    allowed="$(expand_cpus "$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status)")"
    local -a order=() # core keys in order
    local -A threads=()
    for c in $allowed; do
        local t=/sys/devices/system/cpu/cpu$c/topology
        if [ -r "$t/core_id" ]; then
            key="$(cat "$t/physical_package_id" 2>/dev/null || echo 0):$(cat "$t/core_id")"
        else
            key="cpu$c"
        fi
        [ -n "${threads[$key]+x}" ] || order+=("$key")
        threads[$key]="${threads[$key]:-} $c"
    done
    if [ "${#order[@]}" -lt 2 ]; then # no usable topology: every CPU its own core
        order=(); threads=()
        for c in $allowed; do order+=("cpu$c"); threads[cpu$c]="$c"; done
    fi
    local n=${#order[@]} half tr=() te=() i k
    half=$(( n / 2 ))
    [ "$half" -ge 1 ] || die "need at least 2 cores"
    for k in 0 1 2 3; do # thread k of each tracker core (at most 4 threads a core)
        for ((i = 0; i < half; i++)); do
            read -r -a ts <<< "${threads[${order[$i]}]}"
            [ "${#ts[@]}" -gt "$k" ] && tr+=("${ts[$k]}")
        done
    done
    for ((i = half; i < n; i++)); do te+=(${threads[${order[$i]}]}); done
    TRACKER_CPUS="$(IFS=,; echo "${tr[*]}")"
    [ -n "$TESTER_CPUS" ] || TESTER_CPUS="$(IFS=,; echo "${te[*]}")"
    TOPOLOGY="$n physical cores (package:core) among CPUs $(echo $allowed | tr ' ' ,)"
}

TOPOLOGY=""
if [ -z "$TRACKER_CPUS" ]; then default_cpu_split; fi
[ -n "$TESTER_CPUS" ] || die "--tracker-cpus given without --tester-cpus"
read -r -a TRACKER_CPU_ARR <<< "$(expand_cpus "$TRACKER_CPUS")"
read -r -a TESTER_CPU_ARR <<< "$(expand_cpus "$TESTER_CPUS")"
TESTER_CPUS="$(IFS=,; echo "${TESTER_CPU_ARR[*]}")"
[ -n "$TESTER_WORKERS" ] || TESTER_WORKERS=${#TESTER_CPU_ARR[@]}
read -r -a WLIST <<< "${WORKER_LIST//,/ }"

build_ferrotracker
if [ -z "$TRACKERS" ]; then
    TRACKERS="ferrotracker"
    have_tracker aquatic_udp && TRACKERS="$TRACKERS,aquatic_udp"
    have_tracker opentracker && TRACKERS="$TRACKERS,opentracker"
fi
NOTES=()
TLIST=()
for t in ${TRACKERS//,/ }; do
    if ! have_tracker "$t"; then NOTES+=("$t skipped: not installed"); continue; fi
    case "$t" in # does the binary run here (shared libraries, glibc)?
        ferrotracker) probe=("$FT_BIN" -h) ;;
        aquatic_udp) probe=("$AQUATIC_UDP" -p) ;;
        opentracker) probe=("$OPENTRACKER" -h) ;;
        *) die "unknown tracker $t" ;;
    esac
    if ! "${probe[@]}" > /dev/null 2> "$RUN_DIR/probe.err"; then
        NOTES+=("$t skipped: the binary does not run here: $(head -c 200 "$RUN_DIR/probe.err" | head -1)")
        continue
    fi
    TLIST+=("$t")
done

# The load tester's torrents; opentracker (Debian: whitelist-only) gets them as its whitelist.
NUM_TORRENTS=1000000
WL=""
if [[ " ${TLIST[*]} " == *" opentracker "* ]]; then
    wf="$TOOLS/whitelists/aquatic-udp-$NUM_TORRENTS-1.txt"
    if [ -s "$wf" ] || [ -n "$HAVE_PYTHON" ]; then
        WL="$(whitelist_file aquatic-udp "$NUM_TORRENTS")"
    else
        NOTES+=("opentracker skipped: no whitelist at $wf and no python3 to generate it (bench/hashes.py)")
        rest=()
        for t in "${TLIST[@]}"; do [ "$t" = opentracker ] || rest+=("$t"); done
        TLIST=("${rest[@]}")
    fi
fi
[ "${#TLIST[@]}" -gt 0 ] || die "no tracker to run"

# The runs of one round, W-major so trackers interleave: ft/1 aq/1 ot/1 ft/2 aq/2 ...
CONFIGS=()
for w in "${WLIST[@]}"; do
    if [ "$w" -gt "${#TRACKER_CPU_ARR[@]}" ]; then
        NOTES+=("W=$w skipped: only ${#TRACKER_CPU_ARR[@]} tracker CPUs")
        continue
    fi
    for t in "${TLIST[@]}"; do
        [ "$t" = opentracker ] && [ "$w" != 1 ] && continue
        CONFIGS+=("$t:$w")
    done
done

thread_ticks() { # pid -> "tid ticks" per thread (utime+stime)
    local f
    for f in /proc/"$1"/task/*/stat; do
        sed 's/^\([0-9]*\) (.*) /\1 /' "$f" 2>/dev/null || true
    done | awk '{ print $1, $13 + $14 }'
}

# One run; sets R_OUT="responses/s requests/s cpu_cores responses_per_cpu_s errors/s tester_cpu"
# and R_THREADS (busiest threads' CPU, cores), R_SPLIT (ferrotracker: per-worker datagrams).
run_one() { # tracker workers
    local tr="$1" w="$2" wl=() lt="$RUN_DIR/load_test.toml" out="$RUN_DIR/load_test.out" cpus
    cpus="$(IFS=,; echo "${TRACKER_CPU_ARR[*]:0:$w}")"
    [ "$tr" = opentracker ] && wl=("$WL")
    start_tracker "$tr" 4 "$cpus" "$w" "${wl[@]}"
    local tdir
    tdir="$(ls -td "$RUN_DIR/$tr".* | head -1)"
    cat > "$lt" <<EOF
server_address = "$TRACKER_UDP"
log_level = "error"
workers = $TESTER_WORKERS
duration = $DURATION
summarize_last = 0
extra_statistics = false
[network]
sockets_per_worker = $TESTER_SOCKETS
[requests]
number_of_torrents = $NUM_TORRENTS
EOF
    local n t0="" c0="" t1 c1 l0="" l1="" lpid=""
    sample() {
        t1="$(date +%s.%N)"
        c1="$(cpu_ticks "$TRACKER_PID")"
        thread_ticks "$TRACKER_PID" > "$RUN_DIR/threads.$LT_N"
        if [ -z "$lpid" ]; then
            lpid="$(cat "$RUN_DIR/load_test.pid" 2>/dev/null || true)"
            [ -n "$lpid" ] && BENCH_PIDS+=("$lpid") # stopped by PID if the script is stopped
        fi
        l1="$(cpu_ticks "$lpid" 2>/dev/null || true)" # empty if it has exited already
        [ "$LT_N" = 1 ] && { t0="$t1"; c0="$c1"; l0="$l1"; }
        return 0
    }
    run_udp_load_test "$lt" "$out" "$TESTER_CPUS" "$DURATION" sample
    n="$LT_N"
    stop_tracker "$TRACKER_PID"
    if [ "$n" -lt 2 ]; then
        tail -20 "$out" >&2
        R_OUT=""
        return 1
    fi
    R_OUT="$(awk -v n="$((n - 1))" -v s="$LT_RESPONSES" -v q="$LT_REQUESTS" -v e="$LT_ERRORS" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" \
        -v l0="$l0" -v l1="$l1" -v hz="$CLK_TCK" 'BEGIN {
        rate = s / n; cpu = (c1 - c0) / hz / (t1 - t0)
        lcpu = (l0 == "" || l1 == "") ? "n/a" : sprintf("%.2f", (l1 - l0) / hz / (t1 - t0))
        printf "%.0f %.0f %.3f %.0f %.0f %s\n", rate, q / n, cpu, (cpu > 0 ? rate / cpu : 0), e / n, lcpu }')"
    # Threads using at least 0.02 cores over the same window, busiest first.
    R_THREADS="$(awk -v dt="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" -v hz="$CLK_TCK" '
        NR == FNR { a[$1] = $2; next }
        ($1 in a) { c = ($2 - a[$1]) / hz / dt; if (c >= 0.02) printf "%.2f\n", c }' \
        "$RUN_DIR/threads.1" "$RUN_DIR/threads.$n" | sort -gr | paste -sd' ' -)"
    R_SPLIT=""
    if [ "$tr" = ferrotracker ]; then
        R_SPLIT="$(sed 's/\x1b\[[0-9;]*m//g' "$tdir/stderr" \
            | sed -n 's/.*worker \([0-9]*\): \([0-9]*\) UDP datagrams in \([0-9]*\) receive batches.*/\1 \2 \3/p' \
            | sort -n)"
    fi
    rm -f "$RUN_DIR"/threads.*
}

echo "# scaling: $(machine_line)"
echo "# $(uname -m); ${TOPOLOGY:-CPU lists given}; net.core.rmem_max $(cat /proc/sys/net/core/rmem_max 2>/dev/null || echo ?), rmem_default $(cat /proc/sys/net/core/rmem_default 2>/dev/null || echo ?)"
echo "# tracker CPUs (W workers: the first W): ${TRACKER_CPU_ARR[*]}; load tester CPUs: $TESTER_CPUS"
echo "# aquatic_udp_load_test: $TESTER_WORKERS workers x $TESTER_SOCKETS sockets, $NUM_TORRENTS torrents, ${DURATION}s a run, first 5s left out; IPv4"
echo "# $ROUNDS round(s) of: ${CONFIGS[*]} (tracker:W; even rounds in reverse order)"
for note in "${NOTES[@]+"${NOTES[@]}"}"; do echo "# note: $note"; done
echo
echo "| round | tracker | W | tracker CPUs | responses/s | requests/s | tracker CPU (cores) | CPU / W | responses per CPU-s | errors/s | load tester CPU | threads' CPU (busiest first) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
declare -A RATE CPUS PERCPU SPLITS
for r in $(seq "$ROUNDS"); do
    order=("${CONFIGS[@]}")
    if [ $((r % 2)) = 0 ]; then
        order=()
        for ((i = ${#CONFIGS[@]} - 1; i >= 0; i--)); do order+=("${CONFIGS[$i]}"); done
    fi
    for cfg in "${order[@]}"; do
        tr="${cfg%:*}"; w="${cfg#*:}"
        log "round $r: $tr with $w worker(s)"
        if ! run_one "$tr" "$w"; then
            echo "| $r | $tr | $w | | FAILED (load tester printed no intervals) | | | | | | | |"
            continue
        fi
        read -r rate reqs cpu percpu errs lcpu <<< "$R_OUT"
        RATE[$tr,$w,$r]="$rate"; CPUS[$tr,$w,$r]="$cpu"; PERCPU[$tr,$w,$r]="$percpu"
        [ -n "$R_SPLIT" ] && SPLITS[$w,$r]="$R_SPLIT"
        printf '| %s | %s | %s | %s | %s | %s | %s | %.2f | %s | %s | %s | %s |\n' "$r" "$tr" "$w" \
            "$(IFS=,; echo "${TRACKER_CPU_ARR[*]:0:$w}")" "$rate" "$reqs" "$cpu" \
            "$(awk -v c="$cpu" -v w="$w" 'BEGIN { print c / w }')" "$percpu" "$errs" "$lcpu" "$R_THREADS"
    done
done

echo
echo "| tracker | W | median responses/s | speedup vs W=1 | median tracker CPU (cores) | median responses per CPU-s | per CPU-s vs W=1 |"
echo "|---|---|---|---|---|---|---|"
declare -A MED_RATE MED_PERCPU
for tr in "${TLIST[@]}"; do
    for w in "${WLIST[@]}"; do
        [ "$tr" = opentracker ] && [ "$w" != 1 ] && continue
        vals="$(for r in $(seq "$ROUNDS"); do [ -n "${RATE[$tr,$w,$r]:-}" ] && echo "${RATE[$tr,$w,$r]}"; done || true)"
        [ -n "$vals" ] || continue
        m1="$(echo "$vals" | median)"
        m2="$(for r in $(seq "$ROUNDS"); do [ -n "${CPUS[$tr,$w,$r]:-}" ] && echo "${CPUS[$tr,$w,$r]}"; done | median)"
        m3="$(for r in $(seq "$ROUNDS"); do [ -n "${PERCPU[$tr,$w,$r]:-}" ] && echo "${PERCPU[$tr,$w,$r]}"; done | median)"
        MED_RATE[$tr,$w]="$m1"; MED_PERCPU[$tr,$w]="$m3"
        b1="${MED_RATE[$tr,1]:-}"; b3="${MED_PERCPU[$tr,1]:-}"
        printf '| %s | %s | %.0f | %s | %.3f | %.0f | %s |\n' "$tr" "$w" "$m1" \
            "$([ -n "$b1" ] && awk -v a="$m1" -v b="$b1" 'BEGIN { printf "%.2fx", a / b }' || echo -)" "$m2" "$m3" \
            "$([ -n "$b3" ] && awk -v a="$m3" -v b="$b3" 'BEGIN { printf "%.2f", a / b }' || echo -)"
    done
done

if [[ " ${TLIST[*]} " == *" ferrotracker "* ]]; then
    echo
    echo "ferrotracker per-worker split (shutdown log: UDP datagrams each worker received over the whole run, warm-up included):"
    echo
    echo "| round | W | datagrams per worker (share) | max / mean | datagrams per receive batch |"
    echo "|---|---|---|---|---|"
    for r in $(seq "$ROUNDS"); do
        for w in "${WLIST[@]}"; do
            s="${SPLITS[$w,$r]:-}"
            [ -n "$s" ] || continue
            echo "$s" | awk -v r="$r" -v w="$w" '
                { d[$1] = $2; b[$1] = $3; tot += $2; bt += $3; if ($2 > mx) mx = $2; k++ }
                END {
                    line = ""
                    for (i = 0; i < k; i++)
                        line = line sprintf("%sw%d %d (%.1f%%)", (i ? ", " : ""), i, d[i], (tot ? 100 * d[i] / tot : 0))
                    printf "| %s | %s | %s | %.2f | %.1f |\n", r, w, line, (tot ? mx / (tot / k) : 0), (bt ? tot / bt : 0)
                }'
        done
    done
fi
