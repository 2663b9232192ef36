#!/usr/bin/env bash
# Writes the seed inputs of every fuzz target into fuzz/seeds/<target>/: a few small, valid
# requests, packets and files, so each fuzzer starts inside the format instead of guessing it.
# The files are committed; rerun this after changing it. Only bash's printf is needed. Files
# named by a 40-digit hash are corpus entries kept from fuzzing runs (`cargo fuzz cmin` names
# them so): they are left alone, and only the named seeds are written again.
#
# usage: bash fuzz/seeds.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

mkdir -p seeds
for f in seeds/*/*; do
    [ -f "$f" ] || continue
    [[ ${f##*/} =~ ^[0-9a-f]{40}$ ]] || rm "$f"
done

# hex STRING: the bytes spelled by a string of hex digits (spaces ignored).
hex() {
    local h=${1// /}
    local i
    for ((i = 0; i < ${#h}; i += 2)); do
        printf "\\x${h:i:2}"
    done
}

# seed TARGET NAME: stdin becomes fuzz/seeds/TARGET/NAME.
seed() {
    mkdir -p "seeds/$1"
    cat >"seeds/$1/$2"
}

HASH1=0123456789abcdef0123456789abcdef01234567
HASH2=ffeeddccbbaa99887766554433221100ffeeddcc
HASH1_ESC=%01%23%45%67%89%ab%cd%ef%01%23%45%67%89%ab%cd%ef%01%23%45%67
HASH2_ESC=%ff%ee%dd%cc%bb%aa%99%88%77%66%55%44%33%22%11%00%ff%ee%dd%cc
ANNOUNCE_Q="info_hash=$HASH1_ESC&peer_id=-FT0001-abcdefghijkl&port=6881&uploaded=0&downloaded=0&left=1000&event=started&numwant=50&compact=1&key=abc"
SCRAPE_Q="info_hash=$HASH1_ESC&info_hash=$HASH2_ESC"

# ---------------------------------------------------------------- HTTP requests and queries
printf 'GET /announce?%s HTTP/1.1\r\nHost: tracker\r\nUser-Agent: fuzz\r\n\r\n' "$ANNOUNCE_Q" |
    seed http_request announce
printf 'GET /scrape?%s HTTP/1.0\r\nConnection: keep-alive\r\nAccept-Encoding: gzip, deflate\r\n\r\n' "$SCRAPE_Q" |
    seed http_request scrape
printf 'GET /scrape HTTP/1.1\r\nAccept-Encoding: gzip;q=0.5\r\nX-Forwarded-For: 10.0.0.1, 192.0.2.7\r\n\r\n' |
    seed http_request full_scrape
printf 'GET /announce?%s HTTP/1.1\r\nForwarded: for=192.0.2.60;proto=http, For="[2001:db8:cafe::17]:4711"\r\nX-Real-IP: 192.0.2.7\r\nCF-Connecting-IP: 2001:db8::1\r\nTrue-Client-IP: 192.0.2.8\r\n\r\n' "$ANNOUNCE_Q" |
    seed http_request client_headers
printf 'GET //stats?mode=tpbs&format=txt HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc' |
    seed http_request stats
printf 'GET / HTTP/1.1\n\nGET /announce.php?info_hash=x HTTP/1.1\r\n\r\n' |
    seed http_request pipelined

printf '%s' "$ANNOUNCE_Q" | seed announce_query started
printf 'info%%5Fhash=%s&port=1&left=0&event=completed&numwant=-1&compact=0&ip=%%3A%%3A1' "$HASH2_ESC" |
    seed announce_query completed_v6
printf 'info_hash=%s&peer_id=%s&port=65535&event=stopped&ip=192.0.2.1&numwant=99999999999' "$HASH1_ESC" "$HASH2_ESC" |
    seed announce_query stopped

printf '%s' "$SCRAPE_Q" | seed scrape_query two
printf 'info_hash=%s&x=y&info%%5fhash=%s' "$HASH2_ESC" "$HASH1_ESC" | seed scrape_query escaped_key

# ---------------------------------------------------------------- PROXY protocol
printf 'PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n\r\n' | seed proxy_protocol v1_tcp4
printf 'PROXY TCP6 2001:db8::1 ::1 6881 80\r\n' | seed proxy_protocol v1_tcp6
printf 'PROXY UNKNOWN ffff::1 ::1 1 2\r\n' | seed proxy_protocol v1_unknown
V2SIG="0d0a0d0a000d0a515549540a"
hex "$V2SIG 21 11 000c c0000201 c6336402 1ae1 01bb" | seed proxy_protocol v2_tcp4
hex "$V2SIG 21 21 0024 20010db8000000000000000000000007 00000000000000000000000000000001 1ae1 0050" |
    seed proxy_protocol v2_tcp6
hex "$V2SIG 21 11 001b c0000201 c6336402 1ae1 01bb 04 0000 02 0008 74726163 6b657273" |
    seed proxy_protocol v2_tlvs
hex "$V2SIG 20 00 0000" | seed proxy_protocol v2_local
hex "$V2SIG 21 12 000c c0000201 c6336402 1ae1 01bb" | seed proxy_protocol v2_udp

# ---------------------------------------------------------------- BEP 15 packets
CONNECT="0000041727101980 00000000 0badf00d"
CONN_ID=1122334455667788
# peer_id, downloaded, left, uploaded, event (started), ip, key, num_want (-1), port
ANNOUNCE_TAIL="2d465430303031 2d6162636465666768696a6b6c \
0000000000000000 00000000000003e8 0000000000000000 00000002 00000000 12345678 ffffffff 1ae1"
ANNOUNCE="$CONN_ID 00000001 0badf00d $HASH1 $ANNOUNCE_TAIL"
SCRAPE="$CONN_ID 00000002 0badf00d $HASH1 $HASH2"

hex "$CONNECT" | seed udp_request connect
hex "$ANNOUNCE" | seed udp_request announce
hex "$SCRAPE" | seed udp_request scrape
hex "$CONN_ID 00000001 0badf00d" | seed udp_request truncated_announce

hex "00000000 0badf00d $CONN_ID" | seed udp_response connect
hex "00000001 0badf00d 00000708 00000001 00000002 c0000201 1ae1 7f000001 1ae2" |
    seed udp_response announce_v4
hex "00000002 0badf00d 00000001 00000005 00000002 00000000 00000000 00000000" |
    seed udp_response scrape
printf '\x00\x00\x00\x03\x0b\xad\xf0\x0dConnection ID missmatch.\x00' | seed udp_response error

# ---------------------------------------------------------------- WebTorrent (JSON over WebSocket)
# As bittorrent-tracker's client writes them: binary ids with JSON escapes and raw U+0080..U+00FF.
WT_HASH='"\u0000\b\n\u001f\"\\/A'$'\x7f\xc2\x80\xc2\xa0\xc3\xa9\xc3\xbf''0123456"'
WT_PEER='"-WW0208-Zm9vYmFyYmF6"'
WT_OFFER='{"type":"offer","sdp":"v=0\r\no=- 4215 2 IN IP4 127.0.0.1\r\na=setup:actpass\r\n"}'
WT_ANSWER='{"type":"answer","sdp":"v=0\r\na=setup:active\r\n"}'
printf '{"numwant":2,"uploaded":0,"downloaded":0,"left":null,"event":"started","action":"announce","info_hash":%s,"peer_id":%s,"offers":[{"offer":%s,"offer_id":"aaaaaaaaaaaaaaaaaaaa"},{"offer":%s,"offer_id":%s}]}' \
    "$WT_HASH" "$WT_PEER" "$WT_OFFER" "$WT_OFFER" "$WT_HASH" | seed webtorrent announce
printf '{"action":"announce","info_hash":%s,"peer_id":%s,"to_peer_id":%s,"answer":%s,"offer_id":"aaaaaaaaaaaaaaaaaaaa"}' \
    "$WT_HASH" "$WT_PEER" "$WT_PEER" "$WT_ANSWER" | seed webtorrent answer
printf '{"action":"scrape","info_hash":[%s,%s]}' "$WT_HASH" "$WT_PEER" | seed webtorrent scrape
printf '{"action":"announce","info_hash":%s,"peer_id":%s,"offer_id":"aaaaaaaaaaaaaaaaaaaa","offer":%s}' \
    "$WT_HASH" "$WT_PEER" "$WT_OFFER" | seed webtorrent relayed_offer
printf '{"action":"scrape","files":{%s:{"complete":1,"incomplete":2,"downloaded":3}}}' "$WT_HASH" |
    seed webtorrent scrape_reply
printf '{"action":"announce","failure reason":"invalid \\"event\\"","info_hash":%s}' "$WT_HASH" |
    seed webtorrent failure

# ---------------------------------------------------------------- bencode
printf 'd8:completei1e10:downloadedi0e10:incompletei2e8:intervali1800e12:min intervali900e5:peers6:\xc0\x00\x02\x01\x1a\xe1e' |
    seed bencode_decode announce_reply
printf 'd5:filesd20:\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67d8:completei0e10:downloadedi-9223372036854775808e10:incompletei0eeee' |
    seed bencode_decode scrape_reply
printf 'l0:i0eli-1eeld1:ai1eeee' | seed bencode_decode nested

# ---------------------------------------------------------------- configuration
cat <<'EOF' | seed config_file opentracker.conf
# opentracker-style configuration
listen.tcp_udp 0.0.0.0:6969
listen.tcp [::1]:8080
listen.udp 127.0.0.1
listen.udp.workers 4
tracker.interval 900
tracker.numwant 25
tracker.numwant_max 100
tracker.redirect_url https://example.org/
access.stats 10.0.0.0/8
access.stats_path stats
access.stats_open off
tracker.full_scrape on
http.keepalive yes
http.idle_timeout 30
tracker.statedump /var/lib/ferrotracker/statedump
tracker.statedump_interval 600
tracker.statedump_peers on
EOF
printf -- '-i 127.0.0.1 -p 6969 -P6969 -i [::1] -p 8080 -A 192.0.2.0/24 -r http://example.org/ -l dump -d /tmp -u nobody\n' |
    seed config_file flags

# ---------------------------------------------------------------- statedump
{
    printf '%s:28333333:12\n' "${HASH1^^}"
    printf '%s:0:0\r\n' "$HASH2"
    printf 'FTPEERS1'
    hex "$HASH1 00000001 00000001 c0000201 1ae1 03 20010db8000000000000000000000001 1ae2 00"
} | seed statedump dump_and_peers
printf '%s:28333333:4294967296\n' "$HASH2" | seed statedump one_line

# ---------------------------------------------------------------- access lists, client addresses
{
    printf '# whitelist\n%s\n' "$HASH1"
    printf '%s  ubuntu.iso\r\n' "${HASH2^^}"
    printf '\n magnet:?xt=urn:btih:%s\n%s0\n%s' "$HASH1" "$HASH2" "$HASH1"
} | seed access_list list

printf '203.0.113.9, 10.0.0.2' | seed client_ip proxies
printf '[2001:db8::7]:443 , 198.51.100.1:8080,fd00::1\0::ffff:192.0.2.5' | seed client_ip ports_and_ip_param
printf '10.0.0.1,10.0.0.2\0[2001:db8::1]' | seed client_ip all_trusted
printf 'for=203.0.113.9;proto=https, for="[2001:db8::7]:443"\nFor=_hidden, for=10.0.0.2;by=unknown' |
    seed client_ip forwarded
printf '203.0.113.9\n203.0.113.9' | seed client_ip repeated

# ---------------------------------------------------------------- live sync
hex "04030201 00000000 $HASH1 0a000007 1ae8 80 00 $HASH2 c0000201 1ae1 60 07" | seed sync_packet v4
hex "00000000 00000001 $HASH1 20010db8000000000000000000000001 1ae1 20 00" | seed sync_packet v6

# ---------------------------------------------------------------- networks
printf '10.0.0.0/8' | seed nets v4
printf '[2001:db8::1]/48' | seed nets v6
printf '::ffff:192.0.2.1/120' | seed nets mapped
printf ' 127.0.0.1 ' | seed nets host

# ---------------------------------------------------------------- whole requests
# handler: flags u8 | address | port u16 | [clock step u8] | len u16 | payload (see
# fuzz_targets/handler.rs). op FLAGS ADDRESS_HEX STEP_HEX PAYLOAD_HEX
op() {
    local payload=${4// /}
    hex "$1 $2 1ae1 $3 $(printf '%04x' $((${#payload} / 2))) $payload"
}
ophttp() {
    local payload
    payload=$(printf '%s' "$4" | od -An -v -tx1 | tr -d ' \n')
    op "$1" "$2" "$3" "$payload"
}
{
    # UDP from 192.0.2.1: connect, then announce and scrape with a valid connection id.
    op 00 c0000201 "" "$CONNECT"
    op 08 c0000201 "" "$ANNOUNCE"
    op 08 c0000201 "" "$SCRAPE"
    # Same swarm over UDP from IPv6, 90 s later.
    op 1a 20010db8000000000000000000000001 5a "$ANNOUNCE"
    # Forged connection id from a v4-mapped address: an error no larger than the request.
    op 04 c0000202 "" "$ANNOUNCE"
} | seed handler udp
{
    ophttp 03 20010db8000000000000000000000002 "" "GET /announce?$ANNOUNCE_Q HTTP/1.1"$'\r\n\r\n'
    ophttp 01 c0000203 "" "GET /announce?info_hash=$HASH1_ESC&port=80&left=0&compact=0 HTTP/1.1"$'\r\n\r\n'"GET /scrape?$SCRAPE_Q HTTP/1.1"$'\r\n\r\n'
    ophttp 07 "" "" "GET /scrape HTTP/1.1"$'\r\nAccept-Encoding: gzip\r\n\r\n'
    ophttp 47 "" "" "GET /stats?mode=everything HTTP/1.0"$'\r\n\r\n'
    ophttp 27 "" 2e "GET /stats?mode=statedump HTTP/1.1"$'\r\n\r\n'"GET /metrics HTTP/1.1"$'\r\n\r\n'
    ophttp 81 c0000204 "" "GET / HTTP/1.1"$'\r\nContent-Length: 2\r\n\r\nxxPOST / HTTP/1.1\r\n\r\n'
} | seed handler http
{
    # Behind a trusted proxy (10.0.0.0/8), with ip=, and for the blacklisted hash.
    ophttp 01 0a000001 "" "GET /announce?$ANNOUNCE_Q HTTP/1.1"$'\r\nX-Forwarded-For: 198.51.100.7, 10.0.0.9\r\n\r\n'
    ophttp 01 c0000205 "" "GET /announce?info_hash=$HASH1_ESC&port=7&ip=%5B2001:db8::9%5D HTTP/1.1"$'\r\n\r\n'
    ophttp 01 c0000206 "" "GET /announce?info_hash=$HASH2_ESC&port=8 HTTP/1.1"$'\r\n\r\n'
    op 00 c0000206 "" "$CONNECT"
    op 08 c0000206 "" "$CONN_ID 00000001 0badf00d $HASH2 $ANNOUNCE_TAIL"
} | seed handler client_ip_and_access

# ---------------------------------------------------------------- memory ceiling's system files
printf 'MemTotal:       24683860 kB\nMemFree:        23000000 kB\n' | seed memory_files meminfo
printf '0::/system.slice/ferrotracker.service\n' | seed memory_files cgroup2
printf '12:memory:/docker/abc\n11:cpu,cpuacct:/docker/abc\n' | seed memory_files cgroup1
printf 'max\n' | seed memory_files max
printf '9223372036854771712\n' | seed memory_files v1nolimit

find seeds -type f | sort | while read -r f; do printf '%6d %s\n' "$(wc -c <"$f")" "$f"; done
