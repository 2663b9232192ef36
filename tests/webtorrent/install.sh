#!/usr/bin/env bash
# Installs the pinned npm packages of the WebTorrent test clients (package-lock.json) into
# tests/webtorrent/node_modules with `npm ci`. Quick when already installed: does nothing while
# node_modules matches the lock file. Needs node >= 18 and npm (scripts/setup.sh installs them,
# and chromium for browser.js).
#
# usage: bash tests/webtorrent/install.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

command -v npm >/dev/null 2>&1 || { echo "tests/webtorrent: npm not found (apt-get install nodejs npm)" >&2; exit 1; }
# npm writes node_modules/.package-lock.json after a complete install; if it is newer than the
# lock file and every package loads, there is nothing to do.
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ] &&
    node -e "require('webtorrent'); require('bittorrent-tracker'); require('@roamhq/wrtc'); require('puppeteer-core')" 2>/dev/null; then
    exit 0
fi
echo "tests/webtorrent: npm ci" >&2
npm ci --no-audit --no-fund --loglevel=error
