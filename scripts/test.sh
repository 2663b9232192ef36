#!/usr/bin/env bash
# The one test command: sets the machine up (scripts/setup.sh: python3-libtorrent, a C linker,
# iproute2, cargo-fuzz, ...; only what is missing), runs a bounded fuzz smoke run of every parser
# (scripts/fuzz-smoke.sh), then every test of the workspace (unit tests, black-box tests of the
# binary over 127.0.0.1, 127.0.0.2 and [::1], live sync in network namespaces, and the libtorrent
# end-to-end transfers over HTTP and UDP).
#
# usage: bash scripts/test.sh [--no-setup] [extra cargo test arguments, e.g. -- --nocapture]
#   --no-setup   skip scripts/setup.sh (nothing is installed; the machine is already set up)
#
# Runs in release mode: the load-ish tests and the end-to-end transfer run fast, and the binary
# tested is built as the one that ships. Plain `cargo test` runs the tests alone.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "${1:-}" = "--no-setup" ]; then
    shift
else
    bash scripts/setup.sh
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

# A bounded fuzz smoke run first (every cargo-fuzz target a few seconds from its seeds): any crash
# fails the run. Long runs: fuzz/README.md.
FUZZ_SMOKE_SECONDS="${FUZZ_SMOKE_SECONDS:-5}" bash scripts/fuzz-smoke.sh

exec cargo test --workspace --release "$@"
