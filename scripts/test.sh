#!/usr/bin/env bash
# The one test command: installs what the tests need on a fresh Debian/Ubuntu machine, then runs
# every test of the workspace (unit tests, black-box tests of the binary over 127.0.0.1 and
# [::1], and the libtorrent end-to-end transfer).
#
# usage: bash scripts/test.sh [extra cargo test arguments, e.g. -- --nocapture]
#
# Needs: a Rust toolchain (cargo) and, for the end-to-end test, Debian's python3-libtorrent for
# /usr/bin/python3, which this script installs with apt-get when it is missing (via sudo when
# not root). Release mode: the load-ish tests and the end-to-end transfer run fast, and the
# binary tested is the one that ships.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

have_libtorrent() {
    [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import libtorrent' >/dev/null 2>&1
}

if ! have_libtorrent; then
    echo "scripts/test.sh: installing python3-libtorrent (for the end-to-end test)" >&2
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "scripts/test.sh: apt-get not found; install python3-libtorrent for /usr/bin/python3 by hand" >&2
        exit 1
    fi
    SUDO=()
    if [ "$(id -u)" -ne 0 ]; then
        SUDO=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq python3-libtorrent
    if ! have_libtorrent; then
        echo "scripts/test.sh: /usr/bin/python3 still cannot import libtorrent" >&2
        exit 1
    fi
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

exec cargo test --workspace --release "$@"
