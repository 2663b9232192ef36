#!/usr/bin/env bash
# HTTPS announce cost per core and memory per idle TLS connection: ferrotracker (native TLS,
# when the build has it), Debian's nginx terminating TLS in front of Debian's opentracker, and
# aquatic_http 0.9.0 (native rustls TLS), all with the same ECDSA P-256 certificate.
#
# Modes (bench/loadgen's ferrotracker-https-load, TLS 1.3, no session resumption):
#   keepalive  CONNECTIONS kept-alive connections, one announce in flight on each
#   close      a new TLS 1.3 connection (full handshake) per announce, CONNECTIONS at a time
#   idle       RSS of every serving process with IDLE kept-alive connections open (each served
#              one announce, then quiet) minus their RSS before: memory per idle connection
# Every announce is a random port on a random torrent of TORRENTS (10,000 unless --torrents says;
# bench/hashes.py loadgen TORRENTS 7, also opentracker's whitelist), as http.sh's. With --fill,
# each rate run first announces once into every one of the TORRENTS (the load generator's fill
# mode, uncapped, not measured), so that the measured announces meet a store of that size
# rather than grow one. The serving processes (the tracker; nginx's
# master and worker and opentracker) are pinned to one CPU and, in the rate modes, share a
# cgroup CPU quota of --cap percent of a core, so that they, not the load generator, are the
# bottleneck; their CPU time is summed over every process that serves a request. The load
# generator runs on another CPU and reports its own CPU, which must stay below a core. Before
# each run one announce over TLS is checked to be a real peer list.
#
# usage: bench/https.sh [--rounds N] [--duration SECS] [--connections N] [--cap PCT]
#                       [--modes keepalive,close,idle] [--trackers LIST] [--idle N]
#                       [--tracker-cpus LIST] [--tester-cpus LIST] [--torrents N] [--fill]
#   defaults: 1 round of 10 s, 64 connections, cap 50 (0 = none), every mode, 10,000 idle
#   connections, 10,000 torrents, trackers ferrotracker,nginx+opentracker,aquatic_http (those
#   installed; ferrotracker only when it accepts listen.tls), tracker on CPU 0, load generator
#   on CPU 1.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=1
DURATION=10
CONNS=64
CAP=50
MODES="keepalive,close,idle"
TRACKERS=""
IDLE=10000
TORRENTS=10000
FILL=0
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
        --idle) IDLE="$2"; shift 2 ;;
        --torrents) TORRENTS="$2"; shift 2 ;;
        --fill) FILL=1; shift ;;
        --tracker-cpus) TRACKER_CPUS="$2"; shift 2 ;;
        --tester-cpus) TESTER_CPUS="$2"; shift 2 ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) die "unknown argument $1" ;;
    esac
done
HTTPS_LOAD="${FT_HTTPS_LOAD:-$TARGET/release/ferrotracker-https-load}"
NGINX="${FT_NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
command -v openssl >/dev/null || die "no openssl: run bench/install.sh"
command -v ss >/dev/null || die "no ss (iproute2)"

build_ferrotracker
[ -x "$HTTPS_LOAD" ] || die "no $HTTPS_LOAD (cargo build --release -p ferrotracker-loadgen)"

# Both ends hold IDLE connections (and the trackers one socket more each for the proxy hop).
ulimit -n $((IDLE * 2 + 4096)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" -gt $((IDLE + 1024)) ] || die "open-file limit $(ulimit -n) is below --idle $IDLE"

# One self-signed ECDSA P-256 certificate (PKCS#8 key) for every tracker: the load generator
# does not verify it.
CERT="$RUN_DIR/cert.pem"
KEY="$RUN_DIR/key.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$KEY" -out "$CERT" \
    -days 7 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2> "$RUN_DIR/openssl.log" \
    || { cat "$RUN_DIR/openssl.log" >&2; die "openssl could not make the certificate"; }
chmod 644 "$CERT" "$KEY"

# ferrotracker's TLS lines; the binary has TLS when `--check-config` accepts them (it parses and
# validates the configuration and looks at the files it names, binding nothing).
ft_tls_conf() { # dir -> writes dir/tls.conf
    cat > "$1/tls.conf" <<EOF
listen.tls 127.0.0.1:0
tls.certificate $CERT
tls.private_key $KEY
EOF
}
ft_has_tls() {
    local d
    d="$(mktemp -d "$RUN_DIR/ftcheck.XXXX")"
    ft_tls_conf "$d"
    "$FT_BIN" --check-config -f "$d/tls.conf" > "$d/out" 2>&1
}

if [ -z "$TRACKERS" ]; then
    TRACKERS=""
    if have_tracker ferrotracker && ft_has_tls; then
        TRACKERS="ferrotracker"
    else
        echo "ferrotracker: no TLS support in this build"
    fi
    have_tracker opentracker && [ -x "$NGINX" ] && TRACKERS="$TRACKERS,nginx+opentracker"
    have_tracker aquatic_http && TRACKERS="$TRACKERS,aquatic_http"
    TRACKERS="${TRACKERS#,}"
fi
read -r -a TLIST <<< "${TRACKERS//,/ }"
read -r -a MLIST <<< "${MODES//,/ }"
for t in "${TLIST[@]}"; do
    case "$t" in
        ferrotracker)
            have_tracker ferrotracker || die "no $FT_BIN"
            ft_has_tls || die "ferrotracker: no TLS support in this build"
            ;;
        nginx+opentracker)
            have_tracker opentracker || die "opentracker is not installed (bench/install.sh)"
            [ -x "$NGINX" ] || die "nginx is not installed (bench/install.sh)"
            ;;
        aquatic_http) have_tracker aquatic_http || die "aquatic_http is not installed (bench/install.sh)" ;;
        *) die "https.sh measures ferrotracker, nginx+opentracker and aquatic_http" ;;
    esac
done
for m in "${MLIST[@]}"; do
    case "$m" in keepalive|close|idle) ;; *) die "unknown mode $m" ;; esac
done
[ "${#TLIST[@]}" -gt 0 ] || die "no tracker to measure"
[ "$TORRENTS" -ge 1 ] 2>/dev/null || die "--torrents takes a count of at least 1"
HASHES="$(whitelist_file loadgen "$TORRENTS" 7)"

cap_setup "$CAP"

# start_https NAME: starts the serving processes pinned to TRACKER_CPUS. Sets SERVE_PIDS (every
# process that serves a request: their CPU and RSS are summed) and TLS_ADDR (host:port).
start_https() {
    local dir port
    dir="$(mktemp -d "$RUN_DIR/$1.XXXX")"
    chmod 755 "$dir"
    case "$1" in
        ferrotracker)
            ft_tls_conf "$dir"
            {
                echo "tracker.peer_timeout 604800"
                echo "tracker.max_peers_per_ip 0"
                echo "tracker.workers 1"
                # The load comes from one loopback address, and idle connections are held for
                # the whole idle run.
                echo "http.max_connections_per_ip 0"
                echo "http.idle_timeout 3600"
                cat "$dir/tls.conf"
            } > "$dir/ferrotracker.conf"
            taskset -c "$TRACKER_CPUS" "$FT_BIN" -f "$dir/ferrotracker.conf" -i 127.0.0.1 -P 0 \
                2> "$dir/stderr" &
            TRACKER_PID=$!
            BENCH_PIDS+=("$TRACKER_PID")
            SERVE_PIDS=("$TRACKER_PID")
            TLS_ADDR=""
            for _ in $(seq 100); do
                TLS_ADDR="$(sed 's/\x1b\[[0-9;]*m//g' "$dir/stderr" \
                    | sed -n -E 's/.*listening on (tls|https) ([^ ]+).*/\2/p' | head -1)"
                [ -n "$TLS_ADDR" ] && break
                kill -0 "$TRACKER_PID" 2>/dev/null || break
                sleep 0.1
            done
            [ -n "$TLS_ADDR" ] || { cat "$dir/stderr" >&2; die "ferrotracker logged no TLS listener"; }
            ;;
        nginx+opentracker)
            start_tracker opentracker 4 "$TRACKER_CPUS" 0 "$HASHES"
            port="$(free_port)"
            TLS_ADDR="127.0.0.1:$port"
            # A TLS reverse proxy as nginx's documentation and Mozilla's "intermediate" server
            # configuration set one up; keep-alive raised from the defaults (75 s, 1000
            # requests) so that kept-alive connections stay up for a whole run, as the other
            # trackers keep theirs. opentracker closes every connection, so nginx opens one
            # upstream connection per request (HTTP/1.0 upstream, nginx's default).
            mkdir -p "$dir/tmp"
            cat > "$dir/nginx.conf" <<EOF
worker_processes 1;
worker_rlimit_nofile $((IDLE * 2 + 4096));
error_log $dir/error.log error;
pid $dir/nginx.pid;
events {
    worker_connections $((IDLE + 1024));
}
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    keepalive_timeout 3600s;
    keepalive_requests 100000000;
    upstream opentracker {
        server $TRACKER_HTTP;
    }
    server {
        listen $TLS_ADDR ssl;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ecdh_curve X25519:prime256v1:secp384r1;
        ssl_prefer_server_ciphers off;
        ssl_session_timeout 1d;
        ssl_session_cache shared:MozSSL:10m;
        ssl_session_tickets off;
        location / {
            proxy_pass http://opentracker;
            proxy_set_header Host \$host;
            proxy_set_header X-Real-IP \$remote_addr;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
            taskset -c "$TRACKER_CPUS" "$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" \
                -g 'daemon off;' 2> "$dir/stderr" &
            local master=$!
            BENCH_PIDS+=("$master")
            local workers=""
            for _ in $(seq 100); do
                workers="$(pgrep -P "$master" || true)"
                [ -n "$workers" ] && break
                kill -0 "$master" 2>/dev/null || break
                sleep 0.1
            done
            [ -n "$workers" ] || { cat "$dir/stderr" "$dir/error.log" >&2 2>/dev/null; die "nginx did not start"; }
            # shellcheck disable=SC2206
            SERVE_PIDS=("$TRACKER_PID" "$master" $workers)
            TRACKER_PID="$master"
            ;;
        aquatic_http)
            port="$(free_port)"
            TLS_ADDR="127.0.0.1:$port"
            # Its TLS per its documented config (`aquatic_http -p`): PEM certificate chain,
            # PKCS#8 PEM key; one socket and one swarm worker; connections held an hour.
            cat > "$dir/aquatic_http.toml" <<EOF
socket_workers = 1
swarm_workers = 1
log_level = "error"
[network]
address = "$TLS_ADDR"
enable_tls = true
tls_certificate_path = "$CERT"
tls_private_key_path = "$KEY"
keep_alive = true
[cleaning]
max_peer_age = 604800
max_connection_idle = 3600
EOF
            taskset -c "$TRACKER_CPUS" "$AQUATIC_HTTP" -c "$dir/aquatic_http.toml" > "$dir/stdout" \
                2> "$dir/stderr" &
            TRACKER_PID=$!
            BENCH_PIDS+=("$TRACKER_PID")
            SERVE_PIDS=("$TRACKER_PID")
            ;;
    esac
    wait_tcp 127.0.0.1 "${TLS_ADDR##*:}" 30 || { cat "$dir"/std* >&2 2>/dev/null; die "$1 does not accept on $TLS_ADDR"; }
    local p
    for p in "${SERVE_PIDS[@]}"; do wait_rss_stable "$p"; done
    SERVE_DIR="$dir"
}

stop_https() {
    local p
    for p in "${SERVE_PIDS[@]}"; do stop_tracker "$p"; done
}

serve_ticks() { # CPU ticks summed over SERVE_PIDS
    local p s=0
    for p in "${SERVE_PIDS[@]}"; do s=$((s + $(cpu_ticks "$p"))); done
    echo "$s"
}
serve_rss_kb() { # VmRSS summed over SERVE_PIDS
    local p s=0
    for p in "${SERVE_PIDS[@]}"; do s=$((s + $(status_kb "$p" VmRSS))); done
    echo "$s"
}
# Waits until the summed RSS stops changing (three equal readings 0.3 s apart, at most 30 s).
wait_serve_rss_stable() {
    local prev=-1 cur n=0
    for _ in $(seq 100); do
        sleep 0.3
        cur="$(serve_rss_kb)"
        if [ "$cur" = "$prev" ]; then
            n=$((n + 1))
            [ "$n" -ge 3 ] && return 0
        else
            n=0
        fi
        prev="$cur"
    done
}

check_announce_tls() { # host:port
    python3 - "$1" "$(head -1 "$HASHES")" <<'EOF' || return 1
import ssl, sys, urllib.request
hp, h = sys.argv[1], sys.argv[2]
q = "".join("%" + h[i:i + 2] for i in range(0, 40, 2))
url = f"https://{hp}/announce?info_hash={q}&peer_id=-CHECK0-000000000000&port=1&uploaded=0&downloaded=0&left=0&compact=1"
body = urllib.request.urlopen(url, timeout=5, context=ssl._create_unverified_context()).read()
if b"failure" in body or b"8:interval" not in body:
    sys.exit(f"not an announce reply: {body[:200]!r}")
EOF
}

field() { # key line -> value of key=value in line
    echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# One rate run; sets R_OUT="announces_per_s serve_cores announces_per_cpu_s loadgen_cores bad
# errors server_closed version".
run_rate() { # tracker mode
    start_https "$1"
    check_announce_tls "$TLS_ADDR" || die "$1 does not answer announces over TLS"
    local p
    if [ "$FILL" = 1 ]; then
        local f0 fout filled
        f0="$(date +%s.%N)"
        fout="$(taskset -c "$TESTER_CPUS" "$HTTPS_LOAD" "$TLS_ADDR" "$HASHES" fill \
            --connections "$CONNS" --duration 3600 2>&1)" \
            || { echo "$fout" >&2; die "the fill failed against $1"; }
        filled="$(field requests "$(echo "$fout" | grep '^FTBENCH' | tail -1)")"
        [ "$filled" = "$TORRENTS" ] || { echo "$fout" >&2; die "$1: $filled of $TORRENTS fill announces answered"; }
        log "$1: filled with $TORRENTS torrents in $(awk -v a="$f0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
        for p in "${SERVE_PIDS[@]}"; do wait_rss_stable "$p"; done
    fi
    for p in "${SERVE_PIDS[@]}"; do cap_add "$p"; done
    local t0 c0 t1 c1 out line
    t0="$(date +%s.%N)"; c0="$(serve_ticks)"
    out="$(timeout $((DURATION + 60)) taskset -c "$TESTER_CPUS" "$HTTPS_LOAD" "$TLS_ADDR" "$HASHES" "$2" \
        --connections "$CONNS" --duration "$DURATION" 2>&1)" \
        || { echo "$out" >&2; die "the load generator failed against $1"; }
    t1="$(date +%s.%N)"; c1="$(serve_ticks)"
    stop_https
    line="$(echo "$out" | grep '^FTBENCH' | tail -1)"
    [ -n "$line" ] || { echo "$out" >&2; die "no summary from the load generator"; }
    local req dur lt
    req="$(field requests "$line")"; dur="$(field duration_us "$line")"; lt="$(field cpu_ticks "$line")"
    R_OUT="$(awk -v r="$req" -v d="$dur" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v lt="$lt" -v hz="$CLK_TCK" 'BEGIN {
        cpu = (c1 - c0) / hz
        printf "%.0f %.3f %.0f %.3f", r / (d / 1e6), cpu / (t1 - t0), (cpu > 0 ? r / cpu : 0), lt / hz / (d / 1e6) }')"
    R_OUT="$R_OUT $(field bad "$line") $(($(field errors "$line") + $(field timeouts "$line"))) $(field server_closed "$line") $(field version "$line")"
}

# One idle run; sets I_OUT="held rss_before_kb rss_after_kb bytes_per_connection".
run_idle() { # tracker
    start_https "$1"
    check_announce_tls "$TLS_ADDR" || die "$1 does not answer announces over TLS"
    wait_serve_rss_stable
    local before after held lg out="$SERVE_DIR/idle-load.out"
    before="$(serve_rss_kb)"
    taskset -c "$TESTER_CPUS" "$HTTPS_LOAD" "$TLS_ADDR" "$HASHES" idle --idle "$IDLE" \
        --connections "$CONNS" --hold 600 > "$out" 2>&1 &
    lg=$!
    BENCH_PIDS+=("$lg")
    for _ in $(seq 3000); do
        grep -q '^READY' "$out" && break
        kill -0 "$lg" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '^READY' "$out" || { cat "$out" >&2; die "$1: $IDLE connections were not all served"; }
    wait_serve_rss_stable
    after="$(serve_rss_kb)"
    held="$(ss -Htn state established "( sport = :${TLS_ADDR##*:} )" | wc -l)"
    stop_tracker "$lg"
    stop_https
    I_OUT="$(awk -v h="$held" -v b="$before" -v a="$after" -v n="$IDLE" 'BEGIN {
        printf "%d %d %d %.0f", h, b, a, (a - b) * 1024 / n }')"
}

echo "# https: $(machine_line)"
echo "# ferrotracker-https-load (TLS 1.3, no resumption, ECDSA P-256 certificate), $CONNS connections, ${DURATION}s, a random torrent of $TORRENTS per announce$([ "$FILL" = 1 ] && echo ", every torrent announced once before each run");"
echo "# serving processes on CPU $TRACKER_CPUS, capped together at ${CAP}% of a core in the rate modes (0 = none); load generator on CPU $TESTER_CPUS"
declare -A RATE PERCPU
RATE_MODES=()
for m in "${MLIST[@]}"; do [ "$m" != idle ] && RATE_MODES+=("$m"); done
if [ "${#RATE_MODES[@]}" -gt 0 ]; then
    echo
    echo "| round | mode | tracker | announces/s | serving CPU (cores) | announces per CPU-s | load generator CPU (cores) | bad replies | errors | closed by server | TLS |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    for r in $(seq "$ROUNDS"); do
        k=$(( (r - 1) % ${#TLIST[@]} ))
        order=("${TLIST[@]:$k}" "${TLIST[@]:0:$k}")
        for mode in "${RATE_MODES[@]}"; do
            for tr in "${order[@]}"; do
                log "round $r: $mode $tr"
                run_rate "$tr" "$mode"
                read -r rate cpu percpu lcpu bad errs closed ver <<< "$R_OUT"
                RATE[$tr,$mode,$r]="$rate"; PERCPU[$tr,$mode,$r]="$percpu"
                echo "| $r | $mode | $tr | $rate | $cpu | $percpu | $lcpu | $bad | $errs | $closed | $ver |"
            done
        done
    done
    if [ "$ROUNDS" -gt 1 ]; then
        echo
        echo "| mode | tracker | median announces/s | median announces per CPU-s |"
        echo "|---|---|---|---|"
        for mode in "${RATE_MODES[@]}"; do
            for tr in "${TLIST[@]}"; do
                m1="$(for r in $(seq "$ROUNDS"); do echo "${RATE[$tr,$mode,$r]}"; done | median)"
                m2="$(for r in $(seq "$ROUNDS"); do echo "${PERCPU[$tr,$mode,$r]}"; done | median)"
                printf '| %s | %s | %.0f | %.0f |\n' "$mode" "$tr" "$m1" "$m2"
            done
        done
    fi
fi
if [[ " ${MLIST[*]} " == *" idle "* ]]; then
    echo
    echo "| idle | tracker | connections held (ss) | RSS before (MiB) | RSS with $IDLE (MiB) | bytes per idle connection |"
    echo "|---|---|---|---|---|---|"
    for tr in "${TLIST[@]}"; do
        log "idle: $tr"
        run_idle "$tr"
        read -r held before after per <<< "$I_OUT"
        printf '| idle | %s | %d | %.1f | %.1f | %s |\n' "$tr" "$held" "$(awk -v k="$before" 'BEGIN { print k / 1024 }')" \
            "$(awk -v k="$after" 'BEGIN { print k / 1024 }')" "$per"
    done
fi
