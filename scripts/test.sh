#!/usr/bin/env bash
# The one test command: installs what the tests need on a fresh Debian/Ubuntu machine, runs a
# bounded fuzz smoke run of every parser (scripts/fuzz-smoke.sh), then every test of the
# workspace (unit tests, black-box tests of the binary over 127.0.0.1, 127.0.0.2 and [::1], live
# sync in network namespaces, and the libtorrent end-to-end transfers over HTTP and UDP).
#
# usage: bash scripts/test.sh [extra cargo test arguments, e.g. -- --nocapture]
#
# Needs a Rust toolchain (rustup, Rust >= 1.80). Installs with apt-get, only when missing (via
# sudo when not root): python3-libtorrent for /usr/bin/python3 (the end-to-end test; Debian's
# package imports only there) and a C linker. Runs in release mode: the load-ish tests and the
# end-to-end transfer run fast, and the binary tested is built as the one that ships.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

have_libtorrent() {
    [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import libtorrent' >/dev/null 2>&1
}

missing=()
have_libtorrent || missing+=(python3-libtorrent)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v ip >/dev/null 2>&1 || missing+=(iproute2) # live-sync tests' network namespaces

if [ "${#missing[@]}" -gt 0 ]; then
    echo "scripts/test.sh: installing ${missing[*]}" >&2
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "scripts/test.sh: apt-get not found; install ${missing[*]} by hand" >&2
        exit 1
    fi
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    ${sudo[@]+"${sudo[@]}"} apt-get update -qq
    ${sudo[@]+"${sudo[@]}"} apt-get install -y -qq "${missing[@]}"
    if ! have_libtorrent; then
        echo "scripts/test.sh: /usr/bin/python3 still cannot import libtorrent" >&2
        exit 1
    fi
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "scripts/test.sh: cargo not found; install Rust with rustup (https://rustup.rs)" >&2
    exit 1
fi

# A bounded fuzz smoke run first (every cargo-fuzz target a few seconds from its seeds; installs
# cargo-fuzz when missing): any crash fails the run. Long runs: fuzz/README.md.
FUZZ_SMOKE_SECONDS="${FUZZ_SMOKE_SECONDS:-5}" bash scripts/fuzz-smoke.sh

exec cargo test --workspace --release "$@"
