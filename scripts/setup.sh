#!/usr/bin/env bash
# Machine set-up for the tests and CI checks, on a fresh Debian/Ubuntu machine with rustup.
# Installs only what is missing, so a second run does nothing:
#   - apt-get (via sudo when not root): python3-libtorrent for /usr/bin/python3 (the end-to-end
#     test; Debian's package imports only there), a C linker, iproute2 (the live-sync tests'
#     network namespaces), openssl (the TLS tests' RSA keys), curl and aria2 (HTTP(S) clients
#     for the tests that run other clients against the tracker), prometheus for promtool (the
#     monitoring test checks contrib/prometheus/alerts.yml with it);
#   - rustup: the rustfmt and clippy components, and the toolchain of the workspace's
#     rust-version (the MSRV check in .ci/run), minimal profile;
#   - cargo install: cargo-fuzz (scripts/fuzz-smoke.sh);
#   - the WebTorrent test clients: nodejs, npm and chromium from apt, then the pinned npm
#     packages (tests/webtorrent/install.sh).
#
# usage: bash scripts/setup.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

have_libtorrent() {
    [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import libtorrent' >/dev/null 2>&1
}

missing=()
have_libtorrent || missing+=(python3-libtorrent)
command -v cc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v aria2c >/dev/null 2>&1 || missing+=(aria2)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# The Debian package's tests (crates/server/tests/package.rs): systemd-analyze, and man for
# `systemd-analyze verify`'s Documentation= check.
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v man >/dev/null 2>&1 || missing+=(man-db)

if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup: apt-get not found; install ${missing[*]} by hand" >&2
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
        echo "setup: /usr/bin/python3 still cannot import libtorrent" >&2
        exit 1
    fi
fi

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust with rustup (https://rustup.rs)" >&2
    exit 1
fi

if command -v rustup >/dev/null 2>&1; then
    cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
    cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
    msrv=$(bash scripts/msrv.sh)
    # Where rustup's server can't be reached the MSRV build is skipped (.ci/run says so) and
    # clippy's incompatible_msrv lint, which reads the same rust-version, still checks the APIs.
    rustup run "$msrv" rustc --version >/dev/null 2>&1 ||
        rustup toolchain install "$msrv" --profile minimal ||
        echo "setup: could not install Rust $msrv (the MSRV build will be skipped)" >&2
else
    echo "setup: no rustup; rustfmt, clippy and a Rust $(bash scripts/msrv.sh) toolchain are up to you" >&2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "setup: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

if ! command -v cargo-deb >/dev/null 2>&1; then
    echo "setup: installing cargo-deb" >&2
    cargo install --locked cargo-deb
fi

bash tests/webtorrent/install.sh
