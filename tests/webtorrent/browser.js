#!/usr/bin/env node
// Two WebTorrent clients in two tabs of headless chromium move a random file through one
// WebSocket tracker: one tab seeds, the other downloads by magnet link (that tracker only) and
// reports the SHA-256 of what it got, which must match. The pages and WebTorrent's browser build
// (webtorrent@1's webtorrent.min.js from node_modules, no CDN) are served by an HTTP server this
// script starts on 127.0.0.1; chromium is driven over the DevTools protocol by puppeteer-core.
//
// usage: node browser.js [--timeout SECS] [--size BYTES] [--insecure] TRACKER_URL
//   CHROMIUM=/path/to/chromium (default: chromium on PATH).
//   --insecure: accept any TLS certificate (a wss:// tracker with a test CA: chromium does not
//   read NODE_EXTRA_CA_CERTS).
//   exit 0: downloaded and verified; 1: the reason on stderr (timeout, mismatch, page errors); 2: usage
'use strict'

const crypto = require('crypto')
const fs = require('fs')
const http = require('http')
const os = require('os')
const path = require('path')
const puppeteer = require('puppeteer-core')

let timeoutSecs = 60
let size = 300 * 1024
let insecure = false
let url = null
const args = process.argv.slice(2)
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--timeout') timeoutSecs = Number(args[++i])
  else if (args[i] === '--size') size = Math.floor(Number(args[++i]))
  else if (args[i] === '--insecure') insecure = true
  else if (!args[i].startsWith('-') && url === null) url = args[i]
  else { url = null; break }
}
if (!url || !/^wss?:\/\//.test(url) || !(timeoutSecs > 0) || !(size > 0)) {
  console.error('usage: node browser.js [--timeout SECS] [--size BYTES] [--insecure] TRACKER_URL')
  process.exit(2)
}

const data = crypto.randomBytes(size)
const want = crypto.createHash('sha256').update(data).digest('hex')
const files = {
  '/page.html': [fs.readFileSync(path.join(__dirname, 'page.html')), 'text/html'],
  '/webtorrent.min.js': [fs.readFileSync(require.resolve('webtorrent/webtorrent.min.js')), 'application/javascript'],
  '/data.bin': [data, 'application/octet-stream']
}
const web = http.createServer((req, res) => {
  const f = files[new URL(req.url, 'http://x').pathname]
  if (!f) { res.statusCode = 404; return res.end() }
  res.setHeader('Content-Type', f[1])
  res.end(f[0])
})

// puppeteer wants a path, not a command name.
function findChromium () {
  if (process.env.CHROMIUM) return process.env.CHROMIUM
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    for (const dir of (process.env.PATH || '').split(':')) {
      const p = path.join(dir, name)
      try { fs.accessSync(p, fs.constants.X_OK); return p } catch (_) {}
    }
  }
  return null
}

let browser = null
let profile = null
async function finish (code, msg) {
  ;(code === 0 ? console.log : console.error)(`browser.js: ${msg}`)
  const exit = () => {
    if (profile) fs.rmSync(profile, { recursive: true, force: true })
    process.exit(code)
  }
  setTimeout(exit, 5000).unref()
  if (browser) await browser.close().catch(() => {})
  exit()
}

async function main () {
  await new Promise(resolve => web.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${web.address().port}/page.html?tracker=${encodeURIComponent(url)}`
  const chromium = findChromium()
  if (!chromium) return finish(1, 'no chromium on PATH (apt-get install chromium, or set CHROMIUM)')
  profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ft-chromium-'))
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    userDataDir: profile,
    acceptInsecureCerts: insecure,
    args: [
      '--no-sandbox', // runs as root in CI containers
      // Without these, a page's ICE host candidates are hidden behind mDNS names that two
      // pages on a machine without mDNS cannot resolve, and loopback is never offered.
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--allow-loopback-in-peer-connection',
      '--no-first-run',
      '--disable-gpu'
    ]
  })
  const deadline = Date.now() + timeoutSecs * 1000
  const left = () => Math.max(1, deadline - Date.now())
  const problems = async page => (await page.evaluate(() => window.problems).catch(() => [])).join(' | ')

  const seeder = await browser.newPage()
  seeder.on('pageerror', err => finish(1, `seeder page error: ${err.message}`))
  await seeder.goto(`${base}&role=seed`)
  const hash = await seeder.waitForFunction(() => window.infoHash, { timeout: left(), polling: 100 })
    .then(h => h.jsonValue())
    .catch(async () => finish(1, `seeder did not create the torrent: ${await problems(seeder)}`))
  if (!hash) return

  const leecher = await browser.newPage()
  leecher.on('pageerror', err => finish(1, `leecher page error: ${err.message}`))
  await leecher.goto(`${base}&role=leech&hash=${hash}`)
  const got = await leecher.waitForFunction(() => window.sha256, { timeout: left(), polling: 100 })
    .then(h => h.jsonValue())
    .catch(() => null)
  if (!got) {
    const progress = await leecher.evaluate(() => window.progress).catch(() => '?')
    return finish(1, `timeout after ${timeoutSecs} s: leecher ${progress}; ${await problems(seeder)} ${await problems(leecher)}`)
  }
  if (got !== want) return finish(1, `downloaded data differ (sha256 ${got}, seeded ${want})`)
  const wire = await leecher.evaluate(() => window.wireType)
  finish(0, `ok: ${size} bytes of ${hash} downloaded by a chromium tab (${wire}) through ${url} and verified`)
}

main().catch(err => finish(1, err.stack || String(err)))
