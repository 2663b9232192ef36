# Shared helpers for the ferrotracker benchmarks (sourced by memory.sh, udp.sh, http.sh, https.sh, ...).
# Everything runs on loopback; every process started here is stopped by its PID on exit.

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH_DIR")"
TOOLS="${FT_BENCH_TOOLS:-$HOME/.cache/ferrotracker-bench}"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
FT_BIN="${FT_BIN:-$TARGET/release/ferrotracker}"
LOADGEN="${FT_LOADGEN:-$TARGET/release/ferrotracker-loadgen}"
NULL_UDP="${FT_NULL_UDP:-$TARGET/release/ferrotracker-null-udp}"
OPENTRACKER="${FT_OPENTRACKER:-$(command -v opentracker || echo /usr/bin/opentracker)}"
AQUATIC_UDP="$TOOLS/bin/aquatic_udp"
AQUATIC_HTTP="$TOOLS/bin/aquatic_http"
AQUATIC_UDP_LOAD_TEST="$TOOLS/bin/aquatic_udp_load_test"
CLK_TCK="$(getconf CLK_TCK)"

RUN_DIR="$(mktemp -d /tmp/ft-bench.XXXXXX)"
chmod 755 "$RUN_DIR" # opentracker drops to `nobody` and must read its whitelist here
BENCH_PIDS=()

bench_cleanup() {
    local p
    for p in "${BENCH_PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM "$p" 2>/dev/null || true
        fi
    done
    for p in "${BENCH_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
    done
    if [ -z "${FT_BENCH_KEEP:-}" ]; then rm -rf "$RUN_DIR"; else echo "kept $RUN_DIR" >&2; fi
}
trap 'bench_cleanup; cap_cleanup' EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

# Builds ferrotracker and the loadgen in release mode (nice'd; the machine is shared).
build_ferrotracker() {
    if [ -n "${FT_NO_BUILD:-}" ]; then return; fi
    log "building ferrotracker and ferrotracker-loadgen (release)"
    (cd "$REPO" && nice -n 19 cargo build --quiet --release -p ferrotracker -p ferrotracker-loadgen) \
        || die "cargo build failed"
}

have_tracker() { # name
    case "$1" in
        ferrotracker) [ -x "$FT_BIN" ] ;;
        null) [ -x "$NULL_UDP" ] ;;
        opentracker) [ -x "$OPENTRACKER" ] ;;
        aquatic_udp) [ -x "$AQUATIC_UDP" ] ;;
        aquatic_http) [ -x "$AQUATIC_HTTP" ] ;;
        *) return 1 ;;
    esac
}

free_port() { # prints a port free for both TCP and UDP on loopback
    python3 - <<'EOF'
import socket
for _ in range(100):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    try:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", port))
        u.close()
        v = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        v.bind(("::1", port))
        v.close()
    except OSError:
        t.close()
        continue
    t.close()
    print(port)
    break
EOF
}

# Waits until a BEP 15 connect to ADDR (ip:port or [v6]:port) is answered.
wait_udp() { # addr [seconds]
    python3 - "$1" "${2:-30}" <<'EOF'
import socket, struct, sys, time
addr, limit = sys.argv[1], float(sys.argv[2])
host, port = addr.rsplit(":", 1)
host = host.strip("[]")
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(0.2)
end = time.time() + limit
while time.time() < end:
    try:
        s.sendto(struct.pack(">QII", 0x41727101980, 0, 0x1234), (host, int(port)))
        d = s.recv(64)
        if len(d) >= 16 and struct.unpack(">II", d[:8]) == (0, 0x1234):
            sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
}

wait_tcp() { # host port [seconds]
    python3 - "$1" "$2" "${3:-30}" <<'EOF'
import socket, sys, time
host, port, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.time() + limit
while time.time() < end:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
}

status_kb() { # pid field  (VmRSS, VmHWM) -> kB
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

cpu_ticks() { # pid -> utime+stime of the whole process (all threads), in clock ticks
    # The command name (field 2) may contain spaces: cut everything up to the last ')'.
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# Waits until the process's RSS stops changing (start-up allocations, whitelist load).
wait_rss_stable() { # pid
    local prev=-1 cur n=0
    for _ in $(seq 100); do
        sleep 0.3
        cur="$(status_kb "$1" VmRSS)"
        if [ "$cur" = "$prev" ]; then
            n=$((n + 1))
            [ "$n" -ge 3 ] && return 0
        else
            n=0
        fi
        prev="$cur"
    done
}

# Hex whitelist for Debian's whitelist-only opentracker, cached under $TOOLS/whitelists.
whitelist_file() { # kind count [seed]  (kind: loadgen | aquatic-udp)
    local f="$TOOLS/whitelists/$1-$2-${3:-1}.txt"
    if [ ! -s "$f" ]; then
        mkdir -p "$TOOLS/whitelists"
        log "generating whitelist $f"
        python3 "$BENCH_DIR/hashes.py" "$@" > "$f.tmp" && mv "$f.tmp" "$f"
    fi
    echo "$f"
}

# The address of the first "listening on PROTO ADDR" line of a log (colour codes stripped), or "".
listening_addr() { # proto logfile
    sed 's/\x1b\[[0-9;]*m//g' "$2" | sed -n "s/.*listening on $1 \\([^ ]*\\).*/\\1/p" | head -1
}

# Waits up to 10 s for $TRACKER_PID to log its UDP address and sets TRACKER_UDP to it; dies
# with the log if the process exits or never says. (Sets rather than prints, so `die` ends the
# script, not a subshell.)
wait_listening() { # logfile name
    local a=""
    for _ in $(seq 100); do
        a="$(listening_addr udp "$1")"
        [ -n "$a" ] && break
        kill -0 "$TRACKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$a" ] || { cat "$1" >&2; die "$2 did not start"; }
    TRACKER_UDP="$a"
}

# start_tracker NAME FAMILY [CPULIST] [WORKERS] [WHITELIST_FILES...]
#   NAME: ferrotracker | opentracker | aquatic_udp | null (the do-nothing UDP responder, a floor)
#   FAMILY: 4 (127.0.0.1) or 6 ([::1]); CPULIST: taskset list, "" for none;
#   WORKERS: ferrotracker tracker.workers / aquatic socket_workers (0 = default).
#   WHITELIST_FILES (opentracker): concatenated into its whitelist.
# Sets TRACKER_PID, TRACKER_UDP (udp addr), TRACKER_HTTP (host:port or empty).
start_tracker() {
    local name="$1" fam="$2" cpus="${3:-}" workers="${4:-0}"
    shift 4 || shift $#
    local ip host dir pin=()
    if [ "$fam" = 6 ]; then ip="::1"; host="[::1]"; else ip="127.0.0.1"; host="127.0.0.1"; fi
    [ -n "$cpus" ] && pin=(taskset -c "$cpus")
    dir="$(mktemp -d "$RUN_DIR/$name.XXXX")"
    chmod 755 "$dir"
    TRACKER_HTTP=""
    case "$name" in
        ferrotracker)
            {
                echo "tracker.peer_timeout 604800" # the most it takes: no peer expires in a run
                # The load comes from one loopback address standing for many clients.
                echo "tracker.max_peers_per_ip 0"
                [ "$workers" != 0 ] && echo "tracker.workers $workers"
            } > "$dir/ferrotracker.conf"
            "${pin[@]}" "$FT_BIN" -f "$dir/ferrotracker.conf" -i "$ip" -p 0 -P 0 2> "$dir/stderr" &
            TRACKER_PID=$!
            BENCH_PIDS+=("$TRACKER_PID")
            wait_listening "$dir/stderr" ferrotracker
            TRACKER_HTTP="$(listening_addr tcp "$dir/stderr")"
            ;;
        null)
            "${pin[@]}" "$NULL_UDP" "$host:0" 2> "$dir/stderr" &
            TRACKER_PID=$!
            BENCH_PIDS+=("$TRACKER_PID")
            wait_listening "$dir/stderr" ferrotracker-null-udp
            ;;
        opentracker)
            [ "$fam" = 6 ] && die "Debian's opentracker is IPv4-only"
            local port
            port="$(free_port)"
            if [ "$#" -gt 0 ]; then cat "$@" > "$dir/whitelist.txt"; else : > "$dir/whitelist.txt"; fi
            chmod 644 "$dir/whitelist.txt"
            # Run as root, opentracker chroots to -d and becomes `nobody`: the whitelist path is
            # relative to that directory.
            (cd "$dir" && exec "${pin[@]}" "$OPENTRACKER" -i 127.0.0.1 -p "$port" -P "$port" \
                -d "$dir" -w whitelist.txt > "$dir/stdout" 2> "$dir/stderr") &
            TRACKER_PID=$!
            BENCH_PIDS+=("$TRACKER_PID")
            TRACKER_UDP="127.0.0.1:$port"
            TRACKER_HTTP="127.0.0.1:$port"
            ;;
        aquatic_udp)
            local port
            port="$(free_port)"
            TRACKER_UDP="$host:$port"
            cat > "$dir/aquatic_udp.toml" <<EOF
socket_workers = $([ "$workers" = 0 ] && echo 0 || echo "$workers")
log_level = "error"
[network]
address = "$TRACKER_UDP"
[protocol]
# bench/loadgen scrapes 74 hashes a request (BEP 15's most); the default, 70, gets no answer
max_scrape_torrents = 74
max_response_peers = ${AQUATIC_RESPONSE_PEERS:-30}
[cleaning]
torrent_cleaning_interval = 86400
max_peer_age = 604800
[statistics]
print_to_stdout = false
EOF
            "${pin[@]}" "$AQUATIC_UDP" -c "$dir/aquatic_udp.toml" > "$dir/stdout" 2> "$dir/stderr" &
            TRACKER_PID=$!
            BENCH_PIDS+=("$TRACKER_PID")
            ;;
        *) die "unknown tracker $name" ;;
    esac
    if ! wait_udp "$TRACKER_UDP" 30; then
        cat "$dir/stderr" >&2
        die "$name does not answer on udp $TRACKER_UDP"
    fi
    if [ -n "$TRACKER_HTTP" ]; then
        local th="${TRACKER_HTTP%:*}"
        th="${th#[}"
        wait_tcp "${th%]}" "${TRACKER_HTTP##*:}" 30 || die "$name does not accept on tcp $TRACKER_HTTP"
    fi
    wait_rss_stable "$TRACKER_PID"
}

stop_tracker() { # pid
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$1" 2>/dev/null && kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

median() { # numbers on stdin -> median
    sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "nan"; exit } if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

machine_line() {
    echo "$(date -u +%Y-%m-%d) on $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# CPU cap: a cgroup (v1 cpu controller, or v2 cpu.max) that holds the tracker process, with a
# quota of PCT percent of one core (100 ms period). A tracker that the load tester cannot
# saturate is measured at its cost per request only when it is the bottleneck.
CGROUP=""
cap_setup() { # pct  (0: no cap)
    [ "${1:-0}" = 0 ] && return
    local quota=$(($1 * 1000))
    if [ -w /sys/fs/cgroup/cpu ] && [ -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
        CGROUP="/sys/fs/cgroup/cpu/ft-bench-$$"
        mkdir -p "$CGROUP"
        echo 100000 > "$CGROUP/cpu.cfs_period_us"
        echo "$quota" > "$CGROUP/cpu.cfs_quota_us"
    elif [ -e /sys/fs/cgroup/cgroup.controllers ] && grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control; then
        CGROUP="/sys/fs/cgroup/ft-bench-$$"
        mkdir -p "$CGROUP"
        echo "$quota 100000" > "$CGROUP/cpu.max"
    else
        die "no writable cgroup cpu controller for --cap $1 (use --cap 0)"
    fi
}
cap_add() { # pid: moves the process (all its threads) into the cap, if there is one
    [ -n "$CGROUP" ] && echo "$1" > "$CGROUP/cgroup.procs"
    return 0
}
cap_cleanup() {
    [ -n "$CGROUP" ] && [ -d "$CGROUP" ] && rmdir "$CGROUP" 2>/dev/null || true
}

# Datagrams the kernel dropped at the UDP socket bound to PORT (its receive queue was full):
# the "drops" column of /proc/net/udp and udp6, summed. Nonzero growth means the load offered
# was more than the process behind the socket could take, i.e. it was saturated.
udp_drops() { # port
    local hex
    hex="$(printf '%04X' "$1")"
    cat /proc/net/udp /proc/net/udp6 2>/dev/null | awk -v p=":$hex" '$2 ~ p"$" { d += $NF } END { print d + 0 }'
}

# Runs aquatic_udp_load_test with CONFIG, pinned to CPUS, for at most SECONDS + 60 s, copying its
# output to OUT. Every 5 s it prints "Requests out: X/second", then "Responses in: X/second" and
# "  - Error responses: X" for the last interval. At each "Responses in" line this sets LT_N (the
# interval, from 1) and calls ON_INTERVAL (a function that samples the tracker for the same
# interval; the tester's PID is in "$RUN_DIR/load_test.pid"). Interval 1 is warm-up; the sums over
# intervals 2..LT_N are in LT_RESPONSES, LT_REQUESTS and LT_ERRORS (per-second rates, summed).
# Runs in the calling shell so that ON_INTERVAL can set the caller's variables.
run_udp_load_test() { # config out cpus seconds on_interval
    local line
    LT_N=0 LT_RESPONSES=0 LT_REQUESTS=0 LT_ERRORS=0
    : > "$2"
    rm -f "$RUN_DIR/load_test.pid"
    while IFS= read -r line; do
        echo "$line" >> "$2"
        case "$line" in
            "Requests out: "*)
                # A "Requests out" line precedes its "Responses in" line.
                [ "$LT_N" -ge 1 ] && LT_REQUESTS="$(awk -v s="$LT_REQUESTS" -v r="$(echo "$line" | sed 's/Requests out: \([0-9.]*\).*/\1/')" 'BEGIN { print s + r }')"
                ;;
            "Responses in: "*)
                LT_N=$((LT_N + 1))
                "$5"
                if [ "$LT_N" = 1 ]; then
                    LT_REQUESTS=0
                else
                    LT_RESPONSES="$(awk -v s="$LT_RESPONSES" -v r="$(echo "$line" | sed 's/Responses in: \([0-9.]*\).*/\1/')" 'BEGIN { print s + r }')"
                fi
                ;;
            "  - Error responses:"*)
                [ "$LT_N" -gt 1 ] && LT_ERRORS="$(awk -v s="$LT_ERRORS" -v r="${line##* }" 'BEGIN { print s + r }')"
                ;;
        esac
    done < <(timeout $(($4 + 60)) bash -c 'echo $$ > "$1"; shift; exec "$@"' _ "$RUN_DIR/load_test.pid" \
        taskset -c "$3" "$AQUATIC_UDP_LOAD_TEST" -c "$1" 2>&1)
    return 0
}
