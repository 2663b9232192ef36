#!/usr/bin/env bash
# RSS per stored peer, ferrotracker against opentracker and aquatic_udp, in one run.
#
# For each shape and tracker: start the tracker on loopback, read VmRSS once it is idle
# (RSS_empty), fill it with bench/loadgen (TORRENTS x PEERS distinct peers over BEP 15, then
# checked by scrape: every peer must be seen, or the row says MISMATCH), read VmRSS and VmHWM,
# stop the tracker by PID. Prints (RSS_after - RSS_empty) / peers and RSS_after / peers.
#
# usage: bench/memory.sh [--shapes LIST] [--trackers LIST] [--big]
#   --shapes   comma list of: 1m-10k 1m-1k 1m-100k v6-1m 10m-1m
#              (default: 1m-10k,1m-1k,1m-100k,v6-1m; --big adds 10m-1m, which takes minutes)
#   --trackers comma list of: ferrotracker opentracker aquatic_udp (default: those installed)
# Environment: FT_BENCH_TOOLS (comparators, see install.sh), FT_NO_BUILD=1 (skip cargo build),
#              FT_BIN / FT_LOADGEN (binaries), FT_BENCH_KEEP=1 (keep logs in /tmp).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SHAPES="1m-10k,1m-1k,1m-100k,v6-1m"
TRACKERS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --shapes) SHAPES="$2"; shift 2 ;;
        --trackers) TRACKERS="$2"; shift 2 ;;
        --big) SHAPES="$SHAPES,10m-1m"; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) die "unknown argument $1" ;;
    esac
done

build_ferrotracker
[ -x "$LOADGEN" ] || die "no loadgen at $LOADGEN"
if [ -z "$TRACKERS" ]; then
    TRACKERS="ferrotracker"
    have_tracker opentracker && TRACKERS="$TRACKERS,opentracker"
    have_tracker aquatic_udp && TRACKERS="$TRACKERS,aquatic_udp"
fi

shape_params() { # name -> "family torrents peers_per_torrent"
    case "$1" in
        1m-10k) echo "4 10000 100" ;;
        1m-1k) echo "4 1000 1000" ;;
        1m-100k) echo "4 100000 10" ;;
        v6-1m) echo "6 10000 100" ;;
        10m-1m) echo "4 1000000 10" ;;
        *) die "unknown shape $1" ;;
    esac
}

# aquatic_udp answers num_want=0 with 30 peers; 256 such replies in flight overflow loadgen's
# default socket receive buffer and every lost reply stalls the fill for ~0.5 s. Memory does not
# depend on reply size, so aquatic answers without peers here.
export AQUATIC_RESPONSE_PEERS=0
ROWS=()
SEED=1
echo "# memory: $(machine_line)"
for shape in ${SHAPES//,/ }; do
    read -r fam torrents per <<< "$(shape_params "$shape")"
    peers=$((torrents * per))
    for tr in ${TRACKERS//,/ }; do
        have_tracker "$tr" || { log "$tr not installed (bench/install.sh): skipped"; continue; }
        if [ "$tr" = opentracker ] && [ "$fam" = 6 ]; then
            ROWS+=("| $shape | $tr | $peers | $torrents | - | - | - | - | - | n/a: Debian build is IPv4-only |")
            continue
        fi
        wl=()
        [ "$tr" = opentracker ] && wl=("$(whitelist_file loadgen "$torrents" "$SEED")")
        log "$shape: $tr"
        start_tracker "$tr" "$fam" "" 0 "${wl[@]}"
        empty="$(status_kb "$TRACKER_PID" VmRSS)"
        note="ok"
        limit=$((120 + peers / 20000))
        if ! out="$(timeout "$limit" "$LOADGEN" "$TRACKER_UDP" "$torrents" "$per" "$SEED" 2>&1)"; then
            note="FAILED: $(echo "$out" | tail -1)"
        fi
        log "  $(echo "$out" | tail -1)"
        sleep 1
        after="$(status_kb "$TRACKER_PID" VmRSS)"
        hwm="$(status_kb "$TRACKER_PID" VmHWM)"
        stop_tracker "$TRACKER_PID"
        fill="$(echo "$out" | sed -n 's/.* in \([0-9.]*s\);.*/\1/p' | head -1)"
        row="$(awk -v s="$shape" -v t="$tr" -v p="$peers" -v n="$torrents" -v e="$empty" -v a="$after" \
            -v h="$hwm" -v f="${fill:--}" -v note="$note" 'BEGIN {
            printf "| %s | %s | %d | %d | %.1f | %.1f | %.1f | %.2f | %.2f | fill %s, %s |",
                s, t, p, n, e / 1024, a / 1024, h / 1024, (a - e) * 1024 / p, a * 1024 / p, f, note }')"
        ROWS+=("$row")
        echo "$row"
    done
done

echo
echo "| shape | tracker | peers | torrents | RSS empty MiB | RSS after MiB | VmHWM MiB | (after-empty)/peer B | after/peer B | notes |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
