#!/usr/bin/env bash
# Builds the Debian package: target/debian/ferrotracker_VERSION-REVISION_ARCH.deb, with the
# binary, /etc/ferrotracker/ferrotracker.conf (a conffile), the systemd unit, the man pages
# ferrotracker(8) and ferrotracker.conf(5), copyright and changelog (docs/operations.md).
# Installs cargo-deb when missing. The conffile and ferrotracker.conf(5) are generated from the
# built binary (scripts/package-assets.sh), so they list every key with its default.
#
# usage: bash scripts/package.sh [--no-build] [--deb-revision N] [--output DIR]
#   --no-build      package the release binary already in target/release
#   --deb-revision  the Debian revision (default 1); a higher one is an upgrade
#   --output        where the .deb goes (default target/debian)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build=1
deb_args=()
while [ $# -gt 0 ]; do
    case $1 in
        --no-build) build=0 ;;
        --deb-revision) deb_args+=(--deb-revision "$2"); shift ;;
        --output) deb_args+=(--output "$2"); shift ;;
        *) echo "package.sh: unknown argument $1" >&2; exit 1 ;;
    esac
    shift
done

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! cargo deb --version >/dev/null 2>&1; then
    echo "package.sh: installing cargo-deb" >&2
    cargo install --locked cargo-deb
fi
target=$(cargo metadata --format-version 1 --no-deps | sed 's/.*"target_directory":"\([^"]*\)".*/\1/')
if [ "$build" = 1 ]; then
    cargo build --release -p ferrotracker --bin ferrotracker
fi
bash scripts/package-assets.sh "$target/release/ferrotracker" "$target/package-assets"
cargo deb -p ferrotracker --no-build --strip ${deb_args[@]+"${deb_args[@]}"}
