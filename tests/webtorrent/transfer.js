#!/usr/bin/env node
// Two real WebTorrent clients (webtorrent@1 over WebRTC from @roamhq/wrtc) in one process move a
// random file through one WebSocket tracker: one seeds, the other adds the magnet link, which
// names only that tracker (no DHT, no LSD, no web seeds, no other trackers), downloads the file
// and compares it byte for byte. Peers can only meet through the tracker's offer/answer relay.
//
// usage: node transfer.js [--timeout SECS] [--size BYTES] TRACKER_URL
//        node transfer.js --expect-fail SECS TRACKER_URL
//   TRACKER_URL: ws://HOST:PORT/announce or wss://... (for a test CA: NODE_EXTRA_CA_CERTS=ca.pem)
//   exit 0: downloaded and verified (with --expect-fail: no peer and no byte within SECS)
//   exit 1: the reason on stderr (timeout, mismatch, client error, or a download that should
//           not have happened); exit 2: bad usage.
'use strict'

const crypto = require('crypto')
const fs = require('fs')
const os = require('os')
const path = require('path')
const wrtc = require('@roamhq/wrtc')
const WebTorrent = require('webtorrent')

function usage (msg) {
  if (msg) console.error(`transfer.js: ${msg}`)
  console.error('usage: node transfer.js [--timeout SECS] [--size BYTES] [--expect-fail SECS] TRACKER_URL')
  process.exit(2)
}

let timeoutSecs = 60
let size = 300 * 1024
let expectFail = 0
let url = null
const args = process.argv.slice(2)
for (let i = 0; i < args.length; i++) {
  const a = args[i]
  const num = () => {
    const v = Number(args[++i])
    if (!Number.isFinite(v) || v <= 0) usage(`${a} needs a positive number`)
    return v
  }
  if (a === '--timeout') timeoutSecs = num()
  else if (a === '--size') size = Math.floor(num())
  else if (a === '--expect-fail') expectFail = num()
  else if (a.startsWith('-')) usage(`unknown option ${a}`)
  else if (url === null) url = a
  else usage('one tracker URL only')
}
if (!url) usage('no tracker URL')
if (!/^wss?:\/\//.test(url)) usage(`not a ws:// or wss:// URL: ${url}`)

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-webtorrent-'))
const data = crypto.randomBytes(size)
const name = `random-${size}.bin`
const warnings = []
const clientOpts = { dht: false, lsd: false, utp: false, webSeeds: false, tracker: { wrtc } }
const seeder = new WebTorrent(clientOpts)
const leecher = new WebTorrent(clientOpts)
let finished = false

function finish (code, msg) {
  if (finished) return
  finished = true
  ;(code === 0 ? console.log : console.error)(`transfer.js: ${msg}`)
  // Destroying the clients sends `stopped` to the tracker; don't let a slow tracker hold the exit.
  const exit = () => {
    fs.rmSync(dir, { recursive: true, force: true })
    process.exit(code)
  }
  setTimeout(exit, 2000).unref()
  let n = 2
  const done = () => { if (--n === 0) exit() }
  seeder.destroy(done)
  leecher.destroy(done)
}

for (const [role, client] of [['seeder', seeder], ['leecher', leecher]]) {
  client.on('error', err => finish(1, `${role} client error: ${err.message || err}`))
}

function watchTracker (role, torrent) {
  torrent.on('warning', err => {
    const w = `${role}: ${err.message || err}`
    if (warnings.length < 20 && !warnings.includes(w)) warnings.push(w)
  })
  torrent.on('error', err => finish(1, `${role} torrent error: ${err.message || err}`))
}

function state (t) {
  if (!t) return 'leecher has no torrent'
  const types = t.wires.map(w => w.type).join(',') || 'none'
  return `leecher: ${t.downloaded}/${size} bytes, ${t.numPeers} peer(s) (wires: ${types})` +
    (warnings.length ? `; tracker warnings: ${warnings.join(' | ')}` : '')
}

fs.writeFileSync(path.join(dir, name), data)
seeder.seed(path.join(dir, name), { announceList: [[url]], name }, seeded => {
  watchTracker('seeder', seeded)
  const magnet = `magnet:?xt=urn:btih:${seeded.infoHash}&dn=${name}&tr=${encodeURIComponent(url)}`
  const leeched = leecher.add(magnet, { path: path.join(dir, 'leecher') })
  watchTracker('leecher', leeched)

  const limit = expectFail || timeoutSecs
  const timer = setTimeout(() => {
    if (expectFail) {
      if (leeched.numPeers === 0 && leeched.downloaded === 0) {
        finish(0, `as expected, nothing found within ${expectFail} s (${state(leeched)})`)
      } else {
        finish(1, `expected to find nothing, but ${state(leeched)}`)
      }
    } else {
      finish(1, `timeout after ${timeoutSecs} s: ${state(leeched)}`)
    }
  }, limit * 1000)

  leeched.on('wire', wire => {
    if (expectFail) {
      clearTimeout(timer)
      finish(1, `expected to find nothing, but connected to a peer (${wire.type})`)
    }
  })
  leeched.on('done', () => {
    clearTimeout(timer)
    if (expectFail) return finish(1, `expected to find nothing, but downloaded ${state(leeched)}`)
    const file = leeched.files[0]
    file.getBuffer((err, got) => {
      if (err) return finish(1, `reading the downloaded file: ${err.message}`)
      if (!got.equals(data)) return finish(1, `downloaded ${got.length} bytes differ from the ${size} seeded`)
      const types = leeched.wires.map(w => w.type)
      if (types.some(t => t !== 'webrtc')) return finish(1, `a non-WebRTC wire was used: ${types.join(',')}`)
      finish(0, `ok: ${size} bytes of ${seeded.infoHash} downloaded over WebRTC through ${url} and verified`)
    })
  })
})
