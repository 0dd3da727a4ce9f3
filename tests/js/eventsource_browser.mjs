// Server-sent events in a real browser: Chromium's own `EventSource` (playwright-core) on a
// folder and on a document, from a page of another origin (CORS). Writes (text and a file)
// arrive as events whose `lastEventId` is the change's cursor. Then the connection is cut by a
// TCP proxy between the browser and Plait while more writes happen, and Plait itself is
// restarted on the same data directory in the middle of them (the Rust driver does that when
// this script prints RESTART, and answers with the new server's URL on stdin). The browser must
// reconnect by itself, send `Last-Event-ID` with the last cursor it saw, and receive exactly
// the changes it missed: no gap, no duplicate, in commit order.
//
// usage: node eventsource_browser.mjs http(s)://HOST:PORT [log.json] [h2]
//   stdin: the server's URL after the restart. With log.json, what the browser received and
//   the requests the proxy saw are written there. With `h2` (an HTTPS server, self-signed
//   certificate accepted; Node's fetch then needs NODE_TLS_REJECT_UNAUTHORIZED=0), the page is
//   the folder's own HTML page loaded through the proxy over HTTP/2, so the event streams share
//   that h2 connection; the proxy then sees only TLS, and the resume is checked by the cursor
//   the server's `ready` event names.

import { writeFileSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import readline from 'node:readline'
import { chromium } from 'playwright-core'
import { baseUrlFromArgv, hardTimeout, waitFor, assert, assertEq, runSteps } from './lib.mjs'

let base = baseUrlFromArgv()
const logFile = process.argv[3] || undefined
const wantH2 = process.argv[4] === 'h2'
hardTimeout(30000, 'eventsource_browser')

const stdin = readline.createInterface({ input: process.stdin })
const nextLine = () => new Promise((resolve) => stdin.once('line', resolve))

/**
 * A TCP proxy that can cut every connection and hold new ones (paused, unconnected) until it
 * is released, possibly towards another upstream. It records each HTTP request head the
 * browser sent, to see the reconnection's `Last-Event-ID`.
 */
function startProxy(upstream) {
  const state = { upstream, held: false, live: new Set(), queue: [], all: [] }
  const connectUp = (conn) => {
    // Plait listens on 127.0.0.1 (`localhost` may resolve to ::1 first).
    const up = net.connect(Number(state.upstream.port), '127.0.0.1')
    conn.upstream = up
    for (const d of conn.pending) up.write(d)
    conn.pending = []
    up.on('data', (d) => conn.client.write(d))
    up.on('error', () => conn.client.destroy())
    up.on('close', () => conn.client.destroy())
  }
  const server = net.createServer((client) => {
    const conn = { client, upstream: null, pending: [], sent: '' }
    state.live.add(conn)
    state.all.push(conn)
    client.on('data', (d) => {
      conn.sent += d.toString('latin1')
      if (conn.upstream) conn.upstream.write(d)
      else conn.pending.push(d)
    })
    client.on('error', () => {})
    client.on('close', () => {
      conn.upstream?.destroy()
      state.live.delete(conn)
    })
    if (state.held) state.queue.push(conn)
    else connectUp(conn)
  })
  return {
    server,
    /** Every request head sent through the proxy so far: {method, path, headers}. */
    requests() {
      const out = []
      for (const conn of state.all) {
        for (const m of conn.sent.matchAll(/([A-Z]+) (\S+) HTTP\/1\.1\r\n([\s\S]*?)\r\n\r\n/g)) {
          const headers = {}
          for (const line of m[3].split('\r\n')) {
            const i = line.indexOf(':')
            headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
          }
          out.push({ method: m[1], path: m[2], headers })
        }
      }
      return out
    },
    /** Drop every live connection (both sides) and hold the next ones. */
    cut() {
      state.held = true
      for (const conn of state.live) {
        conn.client.destroy()
        conn.upstream?.destroy()
      }
    },
    /** Let held and new connections through, to `upstream` from now on. */
    release(upstream) {
      state.upstream = upstream
      state.held = false
      for (const conn of state.queue.splice(0)) if (!conn.client.destroyed) connectUp(conn)
    },
  }
}

// The page over HTTP/1.1: another origin than the proxy's, so every event stream is a CORS
// request. Either page then gets `watch`, which records what an `EventSource` receives.
const PAGE = '<!doctype html><meta charset=utf-8><title>events</title>'
const WATCH = `
window.logs = {}; window.opens = {}; window.errors = {}
window.watch = (name, url) => {
  const log = logs[name] = []; opens[name] = 0; errors[name] = 0
  const es = new EventSource(url)
  const record = (e) => log.push({ type: e.type, id: e.lastEventId, data: e.data })
  for (const t of ['listing', 'ready', 'reset', 'message']) es.addEventListener(t, record)
  es.onopen = () => opens[name]++
  es.onerror = () => errors[name]++
}`

const listen = (server) => new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)))

let browser, page, proxy, pageServer, proxyUrl
/** What the writers did, in commit order: {path, what}. */
const written = []
const seqOf = (cursor) => Number(cursor.split('-')[1])

async function write(method, path, body, headers = {}) {
  const res = await fetch(base + path, { method, body, headers })
  assert(res.status >= 200 && res.status < 300, `${method} ${path}: ${res.status} ${await res.text()}`)
  return res
}
const put = async (path, body, what, headers) => {
  await write('PUT', path, body, headers)
  written.push({ path, what })
}
const del = async (path) => {
  await write('DELETE', path)
  written.push({ path, what: 'delete' })
}
const PNG = (n) => Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, n])

const logOf = (name) => page.evaluate((n) => window.logs[n], name)
const countOf = (what, name) => page.evaluate(([w, n]) => window[w][n], [what, name])
const messages = async (name) => (await logOf(name)).filter((e) => e.type === 'message')

/** The folder's change events match `expected` exactly, ids being the changes' cursors. */
async function sawExactly(name, expected, what) {
  const got = await waitFor(async () => {
    const m = await messages(name)
    return m.length >= expected.length ? m : null
  }, what, { ms: 10000, every: 25 })
  const changes = got.map((e) => JSON.parse(e.data))
  assertEq(changes.map((c) => ({ path: c.path, what: c.what })), expected, `${name}: the changes received`)
  for (const [i, e] of got.entries()) assertEq(e.id, changes[i].cursor, `${name}: lastEventId of event ${i}`)
  const seqs = got.map((e) => seqOf(e.id))
  assert(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `${name}: cursors strictly increase: ${seqs}`)
  return got
}

let lastBeforeCut = {}

await runSteps('eventsource_browser', [
  ['proxy, page server and Chromium', async () => {
    proxy = startProxy(new URL(base))
    const port = await listen(proxy.server)
    proxyUrl = wantH2 ? `https://localhost:${port}` : `http://127.0.0.1:${port}`
    pageServer = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE))
    const pageUrl = wantH2 ? `${proxyUrl}/notes/` : `http://127.0.0.1:${await listen(pageServer)}/`
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] })
    page = await (await browser.newContext({ ignoreHTTPSErrors: true })).newPage()
    page.on('pageerror', (e) => console.error('page error:', e))
    await page.goto(pageUrl)
    await page.evaluate(WATCH)
    if (wantH2) {
      const proto = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol)
      assertEq(proto, 'h2', 'the protocol the page (and so its event streams) uses')
    }
  }],
  ['EventSource on a folder starts with its listing, on a document with ready', async () => {
    await page.evaluate((u) => { window.watch('folder', u + '/notes/'); window.watch('doc', u + '/notes/a') }, proxyUrl)
    const [listing] = await waitFor(async () => {
      const l = await logOf('folder')
      return l.length ? l : null
    }, 'the folder listing event')
    assertEq(listing.type, 'listing', 'the first folder event')
    const body = JSON.parse(listing.data)
    assertEq([body.folder, body.entries, body.reset], ['/notes/', [], false], 'the listing of an empty folder')
    assertEq(listing.id, body.cursor, 'the listing event id is its cursor')
    const [ready] = await waitFor(async () => {
      const l = await logOf('doc')
      return l.length ? l : null
    }, 'the document ready event')
    assertEq(ready.type, 'ready', 'the first document event')
    assertEq(JSON.parse(ready.data), { cursor: ready.id, reset: false }, 'the ready event')
  }],
  ['two documents and a file arrive as events', async () => {
    await put('/notes/a', 'alpha', 'create')
    await put('/notes/b', 'beta', 'create')
    await put('/notes/photo.png', PNG(1), 'create', { 'content-type': 'image/png' })
    const got = await sawExactly('folder', written, 'the three changes')
    assertEq(JSON.parse(got[2].data).kind, 'file', 'the kind of the PNG change')
    await sawExactly('doc', written.filter((w) => w.path === '/notes/a'), 'the document change')
  }],
  ['the proxy cuts both streams; the browser notices', async () => {
    for (const name of ['folder', 'doc']) lastBeforeCut[name] = (await logOf(name)).at(-1).id
    proxy.cut()
    await waitFor(async () => (await countOf('errors', 'folder')) >= 1 && (await countOf('errors', 'doc')) >= 1,
      'the error events of the cut streams')
  }],
  ['writes while cut, a server restart in the middle, more writes', async () => {
    await put('/notes/a', 'alpha two', 'version')
    await put('/notes/c', 'gamma', 'create')
    await del('/notes/b')
    console.log('RESTART')
    base = (await nextLine()).trim().replace(/\/+$/, '')
    assert(/^https?:\/\//.test(base), `the new server URL on stdin: ${base}`)
    await put('/notes/d', 'delta', 'create')
    await put('/notes/photo.png', PNG(2), 'version', { 'content-type': 'image/png' })
  }],
  ['the browser reconnects by itself with Last-Event-ID and gets exactly what it missed', async () => {
    const opensBefore = { folder: await countOf('opens', 'folder'), doc: await countOf('opens', 'doc') }
    const starts = async (name) => (await logOf(name)).filter((e) => e.type !== 'message')
    const startsBefore = { folder: (await starts('folder')).length, doc: (await starts('doc')).length }
    proxy.release(new URL(base))
    for (const [name, path] of [['folder', '/notes/'], ['doc', '/notes/a']]) {
      await waitFor(async () => (await countOf('opens', name)) > opensBefore[name], `${name} to open again`)
      // The server's side of the resume: a `ready` naming the cursor it resumed after (a
      // stream that ignored Last-Event-ID would start with a listing or a reset instead).
      const first = (await waitFor(async () => {
        const l = await starts(name)
        return l.length > startsBefore[name] ? l : null
      }, `${name}: the first event of the resumed stream`))[startsBefore[name]]
      assertEq({ type: first.type, data: JSON.parse(first.data) },
        { type: 'ready', data: { cursor: lastBeforeCut[name], reset: false } }, `${name}: the resumed stream's first event`)
      if (wantH2) continue // the proxy sees TLS: the ready event's cursor below is the check
      const resume = await waitFor(() => proxy.requests().find((r) => r.method === 'GET' && r.path === path &&
        r.headers['last-event-id'] !== undefined), `a GET ${path} with Last-Event-ID`)
      assertEq(resume.headers['last-event-id'], lastBeforeCut[name], `${name}: the Last-Event-ID sent`)
      assertEq(resume.headers.accept, 'text/event-stream', `${name}: the Accept of the reconnection`)
    }
    await sawExactly('folder', written, 'every change, once')
    await sawExactly('doc', written.filter((w) => w.path === '/notes/a'), 'the document changes, once')
    for (const name of ['folder', 'doc']) {
      const types = (await logOf(name)).map((e) => e.type)
      assertEq(types.filter((t) => t === 'ready').length, name === 'folder' ? 1 : 2, `${name}: ready events`)
      assertEq(types.filter((t) => t === 'listing' || t === 'reset').length, name === 'folder' ? 1 : 0,
        `${name}: no listing or reset on resume`)
    }
  }],
  ['the resumed streams stay live', async () => {
    await put('/notes/e', 'epsilon', 'create')
    await put('/notes/a', 'alpha three', 'version')
    await sawExactly('folder', written, 'the live changes after the resume')
    await sawExactly('doc', written.filter((w) => w.path === '/notes/a'), 'the live document change')
    const preflights = proxy.requests().filter((r) => r.method === 'OPTIONS').length
    if (!wantH2) console.log(`requests through the proxy: ${proxy.requests().length} (preflights: ${preflights})`)
  }],
  ['close', async () => {
    if (logFile) {
      const events = await page.evaluate(() => window.logs)
      writeFileSync(logFile, JSON.stringify({ events, requests: proxy.requests(), written }, null, 2))
    }
    await browser.close()
    proxy.server.close()
    pageServer.close()
    stdin.close()
  }],
])
