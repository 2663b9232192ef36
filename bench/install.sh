#!/usr/bin/env bash
# Installs everything the ferrotracker benchmarks compare against, idempotently:
#   - aquatic_udp, aquatic_http, aquatic_ws 0.9.0 and their load testers (cargo install from crates.io)
#   - opentracker (Debian package: IPv4-only, whitelist-only build), wrk, and nginx (TLS in front
#     of opentracker for https.sh) and openssl (its certificates), all Debian packages
# Cargo binaries go to $FT_BENCH_TOOLS (default ~/.cache/ferrotracker-bench), outside the repo.
# Re-running only installs what is missing. Compiles run under `nice -n 19`.
#
# usage: bench/install.sh [--no-apt] [--no-cargo]
set -euo pipefail

TOOLS="${FT_BENCH_TOOLS:-$HOME/.cache/ferrotracker-bench}"
AQUATIC_VERSION=0.9.0
DO_APT=1
DO_CARGO=1
for a in "$@"; do
    case "$a" in
        --no-apt) DO_APT=0 ;;
        --no-cargo) DO_CARGO=0 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "unknown argument: $a" >&2; exit 2 ;;
    esac
done
mkdir -p "$TOOLS/bin"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if [ "$DO_APT" = 1 ]; then
    missing=()
    command -v wrk >/dev/null || missing+=(wrk)
    [ -x /usr/bin/opentracker ] || missing+=(opentracker)
    [ -x /usr/sbin/nginx ] || missing+=(nginx)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v taskset >/dev/null || missing+=(util-linux)
    command -v python3 >/dev/null || missing+=(python3)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "== apt-get install ${missing[*]}"
        $SUDO apt-get update -qq
        # The opentracker package may try to start a service: not wanted here (and no init in a container).
        DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 nice -n 19 $SUDO apt-get install -y -qq "${missing[@]}"
        # If a packaged service did start, stop it: benchmarks start their own opentracker and nginx.
        for svc in opentracker nginx; do
            if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
                $SUDO systemctl stop "$svc" || true
                $SUDO systemctl disable "$svc" || true
            fi
        done
    fi
fi

if [ "$DO_CARGO" = 1 ]; then
    # One target dir for the four crates: they share most dependencies.
    export CARGO_TARGET_DIR="$TOOLS/target"
    install_crate() { # crate [cargo install args...]
        local crate="$1"; shift
        if [ -x "$TOOLS/bin/$crate" ]; then
            return
        fi
        echo "== cargo install $crate $AQUATIC_VERSION $*"
        nice -n 19 cargo install --locked --version "$AQUATIC_VERSION" --root "$TOOLS" "$@" "$crate"
    }
    # The `metrics` feature (on by default) pulls a metrics crate that no longer compiles with
    # current rustc, so the trackers are built with mimalloc only.
    install_crate aquatic_udp --no-default-features --features mimalloc
    install_crate aquatic_http --no-default-features --features mimalloc
    install_crate aquatic_udp_load_test
    install_crate aquatic_http_load_test
    install_crate aquatic_ws --no-default-features --features mimalloc
    install_crate aquatic_ws_load_test
fi

echo
echo "installed comparators:"
for b in aquatic_udp aquatic_http aquatic_ws aquatic_udp_load_test aquatic_http_load_test aquatic_ws_load_test; do
    if [ -x "$TOOLS/bin/$b" ]; then echo "  $b: $TOOLS/bin/$b"; else echo "  $b: MISSING"; fi
done
for b in opentracker nginx wrk openssl taskset; do
    p="$(command -v "$b" || true)"
    echo "  $b: ${p:-MISSING}"
done
