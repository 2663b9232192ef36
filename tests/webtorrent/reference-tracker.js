#!/usr/bin/env node
// The reference WebTorrent tracker: the npm `bittorrent-tracker` server (WebSocket only, no
// HTTP or UDP), on an HTTP server, or on an HTTPS server in the same process for wss://
// (bittorrent-tracker has no TLS option of its own). Prints one line,
// "listening on ws[s]://HOST:PORT/announce", then serves until SIGTERM or SIGINT.
//
// usage: node reference-tracker.js [--host 127.0.0.1] [--port 0] [--cert PEM --key PEM]
'use strict'

const fs = require('fs')
const http = require('http')
const https = require('https')
const Server = require('bittorrent-tracker').Server

let host = '127.0.0.1'
let port = 0
let cert = null
let key = null
const args = process.argv.slice(2)
for (let i = 0; i < args.length; i++) {
  const v = args[i + 1]
  if (v === undefined) { console.error(`reference-tracker.js: ${args[i]} needs a value`); process.exit(2) }
  switch (args[i]) {
    case '--host': host = v; break
    case '--port': port = Number(v); break
    case '--cert': cert = fs.readFileSync(v); break
    case '--key': key = fs.readFileSync(v); break
    default: console.error(`reference-tracker.js: unknown argument ${args[i]}`); process.exit(2)
  }
  i++
}
if (!cert !== !key) { console.error('reference-tracker.js: --cert and --key go together'); process.exit(2) }

const tracker = new Server({ http: false, udp: false, stats: false, ws: { noServer: true } })
tracker.on('error', err => console.error(`tracker error: ${err.message}`))
tracker.on('warning', () => {}) // bad requests from clients: answered, not fatal

const web = cert ? https.createServer({ cert, key }) : http.createServer()
web.on('request', (req, res) => { res.statusCode = 404; res.end() })
web.on('upgrade', (req, socket, head) => {
  tracker.ws.handleUpgrade(req, socket, head, ws => {
    ws.upgradeReq = req // what bittorrent-tracker reads the peer's address from
    tracker.onWebSocketConnection(ws)
  })
})
web.listen(port, host, () => {
  const a = web.address()
  const h = a.family === 'IPv6' || a.family === 6 ? `[${a.address}]` : a.address
  console.log(`listening on ${cert ? 'wss' : 'ws'}://${h}:${a.port}/announce`)
})
const stop = () => { web.close(); tracker.close(() => process.exit(0)); setTimeout(() => process.exit(0), 1000).unref() }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
