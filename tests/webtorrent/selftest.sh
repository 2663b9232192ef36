#!/usr/bin/env bash
# Proves the WebTorrent test clients against the reference tracker (npm bittorrent-tracker,
# reference-tracker.js) on 127.0.0.1, so that a failure against ferrotracker is ferrotracker's:
#   ws://   transfer.js (Node, WebRTC), announce.js + scrape.js counts, browser.js (chromium tabs)
#   down    transfer.js --expect-fail against a closed port; transfer.js without it must fail
#   wss://  a test CA made here with openssl; transfer.js trusts it through NODE_EXTRA_CA_CERTS
#           (and must fail without it); browser.js --insecure
# Every process started here is stopped by its PID on exit. browser.js steps are skipped, with a
# line saying so, when chromium is missing and FT_REQUIRE_BROWSER is unset.
#
# usage: bash tests/webtorrent/selftest.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"
bash ./install.sh

DIR="$(mktemp -d /tmp/ft-wt-selftest.XXXXXX)"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$DIR"
}
trap cleanup EXIT
fail() { echo "selftest: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

# start_reference LOG [ARGS...]: starts reference-tracker.js, sets URL from its first line.
start_reference() {
    local log="$1"; shift
    node reference-tracker.js "$@" > "$log" 2>&1 &
    PIDS+=("$!")
    for _ in $(seq 100); do grep -q '^listening on ' "$log" && break; sleep 0.1; done
    URL="$(sed -n 's/^listening on //p' "$log")"
    [ -n "$URL" ] || { cat "$log" >&2; fail "reference tracker did not start"; }
}

have_browser=1
if ! command -v chromium >/dev/null 2>&1 && [ -z "${CHROMIUM:-}" ]; then
    [ -n "${FT_REQUIRE_BROWSER:-}" ] && fail "no chromium (apt-get install chromium)"
    have_browser=0
fi

start_reference "$DIR/ws.log"
WS="$URL"
step "transfer.js $WS"
node transfer.js "$WS" || fail "Node transfer over ws://"

step "announce.js (seeder, leecher) + scrape.js $WS"
HASH="$(node -e "console.log(require('crypto').randomBytes(20).toString('hex'))")"
node announce.js --hold 30 "$WS" "$HASH" > "$DIR/a1" & PIDS+=("$!")
node announce.js --left 1000 --hold 30 "$WS" "$HASH" > "$DIR/a2" & PIDS+=("$!")
for _ in $(seq 200); do [ -s "$DIR/a1" ] && [ -s "$DIR/a2" ] && break; sleep 0.1; done
grep -q announced "$DIR/a1" && grep -q announced "$DIR/a2" || fail "announce.js got no reply"
counts="$(node scrape.js "$WS" "$HASH")" || fail "scrape.js"
echo "$counts"
node -e 'const c = JSON.parse(process.argv[1]); process.exit(c.complete === 1 && c.incomplete === 1 ? 0 : 1)' "$counts" ||
    fail "scrape counts: want complete 1, incomplete 1"

if [ "$have_browser" = 1 ]; then
    step "browser.js $WS"
    node browser.js "$WS" || fail "chromium transfer over ws://"
else
    echo "== browser.js skipped: no chromium (FT_REQUIRE_BROWSER=1 makes this a failure)"
fi

step "tracker down: transfer.js --expect-fail 5 ws://127.0.0.1:1/announce"
node transfer.js --expect-fail 5 ws://127.0.0.1:1/announce || fail "--expect-fail against a closed port"
if node transfer.js --timeout 5 ws://127.0.0.1:1/announce 2> "$DIR/down.err"; then
    fail "transfer.js succeeded with no tracker"
fi
echo "(fails as it should: $(cat "$DIR/down.err"))"

step "wss://: test CA and a certificate for 127.0.0.1"
command -v openssl >/dev/null 2>&1 || fail "no openssl"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ferrotracker test CA" \
    -keyout "$DIR/ca.key" -out "$DIR/ca.pem" 2> /dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$DIR/server.key" -out "$DIR/server.csr" 2> /dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' > "$DIR/ext"
openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days 2 -extfile "$DIR/ext" -out "$DIR/server.pem" 2> /dev/null
start_reference "$DIR/wss.log" --cert "$DIR/server.pem" --key "$DIR/server.key"
WSS="$URL"
step "transfer.js $WSS (NODE_EXTRA_CA_CERTS)"
NODE_EXTRA_CA_CERTS="$DIR/ca.pem" node transfer.js "$WSS" || fail "Node transfer over wss://"
if node transfer.js --timeout 5 "$WSS" 2> "$DIR/untrusted.err"; then
    fail "transfer.js trusted the test CA without NODE_EXTRA_CA_CERTS"
fi
echo "(without the CA it fails as it should: $(cat "$DIR/untrusted.err"))"
step "scrape.js $WSS (NODE_EXTRA_CA_CERTS)"
NODE_EXTRA_CA_CERTS="$DIR/ca.pem" node scrape.js "$WSS" "$HASH" || fail "scrape over wss://"
if [ "$have_browser" = 1 ]; then
    step "browser.js --insecure $WSS"
    node browser.js --insecure "$WSS" || fail "chromium transfer over wss://"
fi
echo "selftest: all passed"
