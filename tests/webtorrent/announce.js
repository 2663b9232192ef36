#!/usr/bin/env node
// One bittorrent-tracker client (with WebRTC from @roamhq/wrtc) announces INFOHASH to a WebSocket
// tracker as a seeder (--left 0, the default) or a leecher (--left N), prints "announced" once
// the tracker has answered, and stays connected for --hold SECS (default 30) or until SIGTERM,
// when it announces `stopped` and exits 0. Exit 1 with a reason on a tracker error or when no
// answer comes within 10 s.
//
// usage: node announce.js [--left BYTES] [--hold SECS] TRACKER_URL INFOHASH_HEX
'use strict'

const crypto = require('crypto')
const wrtc = require('@roamhq/wrtc')
const Client = require('bittorrent-tracker')

let left = 0
let hold = 30
const rest = []
const args = process.argv.slice(2)
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--left') left = Number(args[++i])
  else if (args[i] === '--hold') hold = Number(args[++i])
  else rest.push(args[i])
}
const [url, hash] = rest
if (!url || !/^[0-9a-fA-F]{40}$/.test(hash || '') || !(left >= 0) || !(hold > 0) || rest.length !== 2) {
  console.error('usage: node announce.js [--left BYTES] [--hold SECS] TRACKER_URL INFOHASH_HEX')
  process.exit(2)
}

const client = new Client({
  infoHash: hash.toLowerCase(),
  peerId: crypto.randomBytes(20),
  announce: [url],
  port: 6881,
  wrtc,
  // Loopback only: no STUN server to wait for while the offers gather their candidates.
  rtcConfig: { iceServers: [] },
  getAnnounceOpts: () => ({ uploaded: 0, downloaded: 0, left })
})
const fail = msg => { console.error(`announce.js: ${msg}`); process.exit(1) }
const noAnswer = setTimeout(() => fail(`no announce reply from ${url} within 10 s`), 10000)
client.on('error', err => fail(err.message || err))
client.on('warning', err => fail(err.message || err))
client.once('update', () => {
  clearTimeout(noAnswer)
  console.log('announced')
  setTimeout(stop, hold * 1000)
})
function stop () {
  client.stop()
  setTimeout(() => { client.destroy(); process.exit(0) }, 500)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
client.start({ left })
