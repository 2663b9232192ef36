#!/usr/bin/env node
// Scrapes a WebSocket tracker with the bittorrent-tracker client and prints one JSON object per
// info hash on stdout: {"infoHash": HEX, "complete": N, "incomplete": N, "downloaded": N}.
//
// usage: node scrape.js [--timeout SECS] TRACKER_URL INFOHASH_HEX...
//   exit 0: every hash answered; 1: tracker error, warning or timeout (reason on stderr); 2: usage
'use strict'

const wrtc = require('@roamhq/wrtc')
const Client = require('bittorrent-tracker')

let timeoutSecs = 10
const rest = []
const args = process.argv.slice(2)
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--timeout') timeoutSecs = Number(args[++i])
  else rest.push(args[i])
}
const [url, ...hashes] = rest
if (!url || hashes.length === 0 || !(timeoutSecs > 0) || !hashes.every(h => /^[0-9a-fA-F]{40}$/.test(h))) {
  console.error('usage: node scrape.js [--timeout SECS] TRACKER_URL INFOHASH_HEX...')
  process.exit(2)
}

const timer = setTimeout(() => {
  console.error(`scrape.js: no scrape reply from ${url} within ${timeoutSecs} s`)
  process.exit(1)
}, timeoutSecs * 1000)

const client = Client.scrape({ announce: url, infoHash: hashes.map(h => h.toLowerCase()), wrtc, rtcConfig: { iceServers: [] } }, (err, data) => {
  clearTimeout(timer)
  if (err) {
    console.error(`scrape.js: ${err.message || err}`)
    process.exit(1)
  }
  const byHash = hashes.length === 1 ? { [data.infoHash]: data } : data
  for (const h of hashes) {
    const d = byHash[h.toLowerCase()]
    if (!d) {
      console.error(`scrape.js: no entry for ${h} in the reply`)
      process.exit(1)
    }
    console.log(JSON.stringify({ infoHash: d.infoHash, complete: d.complete, incomplete: d.incomplete, downloaded: d.downloaded }))
  }
  client.destroy()
  process.exit(0)
})
