// The client's plumbing against a scripted in-memory fetch: request shapes,
// applying/dropping updates, offline coalescing, retries, reconnects, 550.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { simpleton } from '../simpleton.js'

const enc = new TextEncoder()

// Wait for a condition (not a fixed sleep): re-check every few ms, bounded.
async function until(cond, what, ms = 2000) {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 2))
  }
}

function fakeServer({ heartbeats } = {}) {
  const s = {
    requests: [],
    subs: [],
    offline: false,
    put: () => 200, // status for each PUT (may return a promise)
    get puts() { return s.requests.filter((r) => r.method === 'PUT') },
    get gets() { return s.requests.filter((r) => r.method === 'GET') },
    get sub() { return s.subs.at(-1) },
    // Abort everything in flight, as if the network went away.
    cut() { for (const c of s.subs) c.kill() },
    async fetch(url, opts) {
      if (s.offline) throw new TypeError('fetch failed (offline)')
      const headers = Object.fromEntries(Object.entries(opts.headers).map(([k, v]) => [k.toLowerCase(), v]))
      const req = { method: opts.method, headers, body: opts.body }
      s.requests.push(req)
      if (opts.method === 'PUT') {
        const status = await s.put(req)
        return new Response(null, { status })
      }
      let ctl
      const stream = new ReadableStream({ start(c) { ctl = c } })
      const sub = {
        req,
        push: (text) => ctl.enqueue(enc.encode(text)),
        end: () => ctl.close(),
        kill: () => { try { ctl.error(new TypeError('network lost')) } catch {} },
      }
      opts.signal?.addEventListener('abort', () => sub.kill())
      s.subs.push(sub)
      return new Response(stream, { status: 209, headers: heartbeats ? { heartbeats } : {} })
    },
  }
  return s
}

const update = ({ version, parents, body, range, content, digest }) =>
  'HTTP 200 OK\r\n' +
  `Version: ${version.map((v) => JSON.stringify(v)).join(', ')}\r\n` +
  `Parents: ${parents.map((v) => JSON.stringify(v)).join(', ')}\r\n` +
  (digest ? `repr-digest: sha-256=:${digest}:\r\n` : '') +
  (body !== undefined
    ? `Content-Length: ${enc.encode(body).length}\r\n\r\n${body}`
    : `Content-Length: ${enc.encode(content).length}\r\nContent-Range: text ${range}\r\n\r\n${content}`) +
  '\r\n\r\n'

function client(srv, extra = {}) {
  const log = { texts: [], statuses: [], errors: [] }
  const c = simpleton('http://x/doc', {
    peer: 'p',
    fetch: srv.fetch,
    retryDelay: () => 5,
    onText: (t) => log.texts.push(t),
    onStatus: (st) => log.statuses.push(st),
    onError: (e) => log.errors.push(e),
    ...extra,
  })
  return { c, log }
}

test('subscribe, apply snapshot, PUT shape, drop stale update, apply rebase', async () => {
  const srv = fakeServer()
  const { c, log } = client(srv)
  try {
    await until(() => srv.sub, 'subscription')
    assert.deepEqual(srv.sub.req.headers, { subscribe: 'true', 'merge-type': 'simpleton', peer: 'p', heartbeats: '20' })
    srv.sub.push(update({ version: ['alice-4'], parents: [], body: 'hello' }))
    await until(() => c.text() === 'hello', 'snapshot')
    assert.deepEqual(c.version(), ['alice-4'])
    assert.equal(c.status(), 'connected')

    c.changed('hello world')
    await until(() => srv.puts.length === 1 && c.status() === 'connected', 'PUT')
    const put = srv.puts[0]
    assert.equal(put.headers.version, '"p-5"') // -1 + 6 inserted code points
    assert.equal(put.headers.parents, '"alice-4"')
    assert.equal(put.headers.peer, 'p')
    assert.equal(put.headers['merge-type'], 'simpleton')
    assert.equal(put.headers['content-range'], 'text [5:5]')
    assert.equal(put.body, ' world')
    assert.deepEqual(c.version(), ['p-5'])

    // Another client's edit on top of alice-4: not our version, dropped.
    srv.sub.push(update({ version: ['bob-0'], parents: ['alice-4'], range: '[0:0]', content: 'X' }))
    // The server's rebase of our PUT: Parents = our PUT version.
    srv.sub.push(update({ version: ['p-5', 'bob-0'], parents: ['p-5'], range: '[0:0]', content: 'X' }))
    await until(() => c.text() === 'Xhello world', 'rebase')
    assert.deepEqual(log.texts, ['hello', 'Xhello world'])
    assert.deepEqual(c.version(), ['bob-0', 'p-5']) // sorted

    c.changed('X😀hello world')
    await until(() => srv.puts.length === 2, 'emoji PUT')
    assert.equal(srv.puts[1].headers.version, '"p-6"')
    assert.equal(srv.puts[1].headers.parents, '"bob-0", "p-5"')
    assert.equal(srv.puts[1].headers['content-range'], 'text [1:1]')
    c.changed('Xhello world') // delete the emoji: one code point
    await until(() => srv.puts.length === 3, 'delete PUT')
    assert.equal(srv.puts[2].headers.version, '"p-7"')
    assert.equal(srv.puts[2].headers['content-range'], 'text [1:2]')
    assert.equal(srv.puts[2].body, '')
    assert.deepEqual(log.errors, [])
  } finally { c.close() }
})

test('first PUT from an empty document has an empty Parents header', async () => {
  const srv = fakeServer()
  const { c } = client(srv)
  try {
    await until(() => srv.sub, 'subscription')
    srv.sub.push(update({ version: [], parents: [], body: '' }))
    c.changed('hé😀')
    await until(() => srv.puts.length === 1, 'PUT')
    assert.equal(srv.puts[0].headers.parents, '')
    assert.equal(srv.puts[0].headers.version, '"p-2"')
    assert.equal(srv.puts[0].headers['content-range'], 'text [0:0]')
  } finally { c.close() }
})

test('reconnect resumes with Parents; updates while edits are unsent are dropped', async () => {
  const srv = fakeServer()
  let release
  const { c, log } = client(srv)
  try {
    await until(() => srv.sub, 'subscription')
    srv.sub.push(update({ version: ['a-1'], parents: [], body: 'ab' }))
    await until(() => c.text() === 'ab', 'snapshot')
    srv.sub.end() // server closes the stream
    await until(() => srv.gets.length === 2, 'resubscribe')
    assert.equal(srv.sub.req.headers.parents, '"a-1"')
    assert.ok(log.statuses.includes('offline'))
    await until(() => c.status() === 'connected', 'connected again')

    // Hold the PUT so an edit stays in flight and another one stays unsent.
    srv.put = () => new Promise((r) => (release = r))
    c.changed('abc')
    await until(() => srv.puts.length === 1, 'PUT 1')
    assert.equal(srv.puts[0].headers.version, '"p-0"')
    assert.equal(srv.puts[0].headers.parents, '"a-1"')
    assert.equal(c.status(), 'syncing')
    c.changed('abcd') // unsent: a PUT is already in flight
    // The rebase of p-0 matches our version, but applying it would clobber 'd'.
    srv.sub.push(update({ version: ['p-0', 'z-0'], parents: ['p-0'], range: '[0:0]', content: 'Z' }))
    await until(() => srv.sub && c.text() === 'abcd', 'still local text')
    assert.deepEqual(c.version(), ['p-0'])
    release(200)
    await until(() => srv.puts.length === 2, 'PUT 2')
    assert.equal(srv.puts[1].headers.version, '"p-1"')
    assert.equal(srv.puts[1].headers.parents, '"p-0"')
    assert.equal(srv.puts[1].headers['content-range'], 'text [3:3]')
    release(200)
    await until(() => c.status() === 'connected', 'synced')
    // Now a rebase onto p-1 applies.
    srv.sub.push(update({ version: ['p-1', 'z-0'], parents: ['p-1'], range: '[0:0]', content: 'Z' }))
    await until(() => c.text() === 'Zabcd', 'rebase applied')
    assert.deepEqual(log.errors, [])
  } finally { release?.(200); c.close() }
})

test('an in-flight PUT does not block its own rebase (it may beat the PUT response)', async () => {
  const srv = fakeServer()
  let release
  const { c } = client(srv)
  try {
    await until(() => srv.sub, 'subscription')
    srv.sub.push(update({ version: ['a-1'], parents: [], body: 'ab' }))
    await until(() => c.text() === 'ab', 'snapshot')
    srv.put = () => new Promise((r) => (release = r))
    c.changed('abc')
    await until(() => srv.puts.length === 1, 'PUT')
    srv.sub.push(update({ version: ['p-0', 'z-0'], parents: ['p-0'], range: '[0:0]', content: 'Z' }))
    await until(() => c.text() === 'Zabc', 'rebase applied before the ack')
    release(200)
    await until(() => c.status() === 'connected', 'acked')
  } finally { release?.(200); c.close() }
})

test('offline edits are coalesced into one PUT sent after reconnecting', async () => {
  const srv = fakeServer()
  const { c, log } = client(srv, { retryDelay: () => 20 })
  try {
    await until(() => srv.sub, 'subscription')
    srv.sub.push(update({ version: ['a-1'], parents: [], body: 'ab' }))
    await until(() => c.text() === 'ab', 'snapshot')
    srv.offline = true
    srv.cut()
    await until(() => c.status() === 'offline', 'offline')
    c.changed('abX')
    c.changed('aXbX')
    c.changed('a😀XbX')
    assert.equal(c.status(), 'offline')
    assert.equal(srv.puts.length, 0)
    srv.offline = false
    await until(() => srv.puts.length === 1 && c.status() === 'connected', 'one PUT')
    assert.equal(srv.gets.at(-1).headers.parents, '"a-1"')
    const put = srv.puts[0]
    // diff("ab", "a😀XbX"): replace [1:2] ("b") with "😀XbX": 1 + 4 events.
    assert.equal(put.headers['content-range'], 'text [1:2]')
    assert.equal(put.body, '😀XbX')
    assert.equal(put.headers.version, '"p-4"')
    assert.deepEqual(log.errors, [])
  } finally { c.close() }
})

test('failed PUTs are retried with the same version; 550 is fatal', async () => {
  const srv = fakeServer()
  const statuses = [503, 500, 200, 550]
  srv.put = () => statuses.shift()
  const { c, log } = client(srv)
  try {
    await until(() => srv.sub, 'subscription')
    srv.sub.push(update({ version: ['a-1'], parents: [], body: 'ab' }))
    await until(() => c.text() === 'ab', 'snapshot')
    c.changed('abc')
    await until(() => srv.puts.length === 3 && c.status() === 'connected', 'retried PUT')
    assert.deepEqual(srv.puts.map((p) => p.headers.version), ['"p-0"', '"p-0"', '"p-0"'])
    assert.deepEqual(log.errors, []) // 5xx are transient
    c.changed('abcd')
    await until(() => log.errors.length === 1, '550 error')
    assert.equal(log.errors[0].fatal, true)
    assert.equal(c.status(), 'offline')
    const n = srv.requests.length
    c.changed('abcde')
    await new Promise((r) => setTimeout(r, 30))
    assert.equal(srv.requests.length, n, 'no requests after a fatal error')
  } finally { c.close() }
})

test('repr-digest is checked after applying', async () => {
  const srv = fakeServer()
  const { c, log } = client(srv)
  const b64 = (t) => createHash('sha256').update(t).digest('base64')
  try {
    await until(() => srv.sub, 'subscription')
    srv.sub.push(update({ version: ['a-1'], parents: [], body: 'h😀', digest: b64('h😀') }))
    srv.sub.push(update({ version: ['a-2'], parents: ['a-1'], range: '[2:2]', content: '!', digest: b64('wrong') }))
    await until(() => log.errors.length === 1, 'digest error')
    assert.equal(log.errors[0].kind, 'digest')
    assert.match(log.errors[0].message, /a-2/)
    assert.equal(c.text(), 'h😀!')
  } finally { c.close() }
})

test('a server bug (bad framing, bad range) is reported and the client resubscribes', async () => {
  const srv = fakeServer()
  const { c, log } = client(srv)
  try {
    await until(() => srv.sub, 'subscription')
    srv.sub.push(update({ version: ['a-1'], parents: [], body: 'ab' }))
    srv.sub.push(update({ version: ['a-9'], parents: ['a-1'], range: '[5:6]', content: '' }))
    await until(() => log.errors.length === 1 && srv.gets.length === 2, 'resubscribe')
    assert.equal(c.text(), 'ab')
    assert.equal(srv.sub.req.headers.parents, '"a-1"')
    srv.sub.push('HTTP 200 OK\r\nVersion: "a-2"\r\n\r\n')
    await until(() => log.errors.length === 2 && srv.gets.length === 3, 'resubscribe again')
  } finally { c.close() }
})

test('silence beyond 1.2*heartbeats+3 s counts as a dead connection', async () => {
  const srv = fakeServer({ heartbeats: '0.1' })
  const { c } = client(srv)
  try {
    await until(() => srv.sub, 'subscription')
    srv.sub.push(update({ version: ['a-1'], parents: [], body: 'ab' }))
    const t0 = Date.now()
    await until(() => srv.gets.length === 2, 'reconnect after heartbeat timeout', 6000)
    const waited = Date.now() - t0
    assert.ok(waited >= 3000 && waited < 5000, `reconnected after ${waited} ms`)
    assert.equal(srv.sub.req.headers.parents, '"a-1"')
  } finally { c.close() }
})
