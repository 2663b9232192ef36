#!/usr/bin/env bash
# Prints the workspace's minimum supported Rust version (`rust-version` in Cargo.toml), the one
# place it is written.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
sed -n 's/^rust-version = "\([0-9.]*\)"$/\1/p' Cargo.toml
