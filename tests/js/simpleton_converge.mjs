// Convergence: K simpleton clients (clients/js) edit one document concurrently
// against a live Plait server and must all end with the server's text.
//
//   node tests/js/simpleton_converge.mjs http://127.0.0.1:PORT [seed]
//
// The seed (also PLAIT_SEED) only replays the random workload; timing still varies.
//
// Each client makes M random edits (insert/delete/replace, with é, emoji and
// multi-char inserts) with random think times: that randomness is the
// workload only. Synchronisation is always by waiting for a condition with a
// deadline. Client 0 also goes offline mid-run (its fetch fails and its open
// requests are cut), keeps editing, and comes back.
//
// "No lost edits" is checked with markers: every client inserts its own marker
// code point MARKS times and no edit removes a marker from the text the client
// sees, so the final text must contain each marker at least MARKS times.
// Not *exactly*: edits a client makes while a PUT is in flight (or offline) are
// folded into one prefix/suffix diff, which deletes and re-inserts whatever lies
// between them, markers included. When two clients do that to the same region
// concurrently, the CRDT removes the original once and keeps both re-insertions,
// so a marker can legitimately appear more often (braid-text behaves the same).

import { simpleton } from '../../clients/js/simpleton.js'
import { baseUrlFromArgv, hardTimeout, randomId, waitFor, within, assert, assertEq, parseIds, runSteps } from './lib.mjs'

const base = baseUrlFromArgv()
hardTimeout(60000, 'simpleton_converge')

const K = 4
const M = 40
const MARK_AT = [5, 20, 35] // edit indexes at which a client inserts its marker
const OFFLINE_FROM = 10 // client 0 goes offline before this edit...
const OFFLINE_TO = 25 // ...and comes back before this one
const seed = Number(process.argv[3] ?? process.env.PLAIT_SEED ?? Math.floor(Math.random() * 2 ** 31))
const url = `${base}/interop/converge-${randomId()}`
console.log(`seed ${seed}, url ${url}`)

// Seeded PRNG (mulberry32) so a failing run can be replayed with its seed.
function rng(s) {
  return () => {
    s = (s + 0x6d2b79f5) | 0
    let t = Math.imul(s ^ (s >>> 15), 1 | s)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
const rand = rng(seed)
const int = (n) => Math.floor(rand() * n)
const pick = (xs) => xs[int(xs.length)]

const marker = (k) => String.fromCodePoint(0x1f170 + k) // 🅰 🅱 🅲 🅳: astral, not in ALPHABET
const isMarker = (c) => { const cp = c.codePointAt(0); return cp >= 0x1f170 && cp < 0x1f170 + K }
const ALPHABET = ['a', 'b', 'c', 'x', 'y', 'z', ' ', '\n', 'é', 'ü', '😀', '👍', 'ok', 'hello', 'çà', '😀😀', '🎉x']

/** A fetch whose network can be switched off: fails new requests and cuts open ones. */
function switchableFetch() {
  let offline = false
  let live = new Set()
  const calls = { whileOffline: [] }
  const f = async (input, opts = {}) => {
    if (offline) {
      calls.whileOffline.push(opts.method ?? 'GET')
      throw new TypeError('network is down (test)')
    }
    const ac = new AbortController()
    live.add(ac)
    opts.signal?.addEventListener('abort', () => ac.abort(opts.signal.reason))
    return fetch(input, { ...opts, signal: ac.signal })
  }
  f.down = () => { offline = true; for (const ac of live) ac.abort(new Error('network cut (test)')); live = new Set() }
  f.up = () => { offline = false }
  f.calls = calls
  return f
}

/** One random edit of `text` (in code points) that never deletes a marker. */
function randomEdit(text) {
  const cps = [...text]
  const insertAt = (at) => [...cps.slice(0, at), pick(ALPHABET), ...cps.slice(at)].join('')
  const op = cps.length < 3 ? 'insert' : pick(['insert', 'insert', 'insert', 'delete', 'replace'])
  if (op === 'insert') return insertAt(int(cps.length + 1))
  const start = int(cps.length)
  const end = start + 1 + int(Math.min(4, cps.length - start))
  if (cps.slice(start, end).some(isMarker)) return insertAt(start)
  return [...cps.slice(0, start), ...(op === 'replace' ? [pick(ALPHABET)] : []), ...cps.slice(end)].join('')
}

async function serverState() {
  const res = await fetch(url, { headers: { 'Cache-Control': 'no-cache' } })
  const text = await res.text()
  assert(res.status === 200, `GET ${url}: status ${res.status}` + (res.status === 404
    ? ' (simpleton clients subscribe before anything is PUT, so every path must be an empty document; spec/WIRE.md §3.2)' : ''))
  return { text, version: (parseIds(res.headers.get('version')) ?? []).sort() }
}

const errors = []
const clients = []
const netOf0 = switchableFetch()
for (let k = 0; k < K; k++) {
  const statuses = []
  const c = simpleton(url, {
    peer: `conv${k}-${randomId()}`,
    fetch: k === 0 ? netOf0 : fetch,
    onStatus: (s) => statuses.push(s),
    onError: (e) => errors.push(`client ${k}: ${e.message}`),
  })
  clients.push({ k, c, statuses })
}

async function workload({ k, c }) {
  for (let i = 0; i < M; i++) {
    if (k === 0 && i === OFFLINE_FROM) {
      netOf0.down()
      await waitFor(() => c.status() === 'offline', 'client 0 to notice it is offline', { ms: 5000 })
    }
    if (k === 0 && i === OFFLINE_TO) {
      assertEq(netOf0.calls.whileOffline.filter((m) => m === 'PUT').length, 0, 'PUTs attempted while offline')
      assert(c.text() !== '' && c.status() === 'offline', 'client 0 kept its offline edits')
      netOf0.up()
      // The reconnect backoff is at most ~4 s; the queued edits then go out as one PUT.
      await waitFor(() => c.status() === 'connected' || c.status() === 'syncing', 'client 0 to reconnect', { ms: 10000 })
    }
    await new Promise((r) => setTimeout(r, int(25))) // think time (workload, not synchronisation)
    const text = c.text()
    const next = MARK_AT.includes(i)
      ? (() => { const cps = [...text]; const at = int(cps.length + 1); return [...cps.slice(0, at), marker(k), ...cps.slice(at)].join('') })()
      : randomEdit(text)
    c.changed(next)
  }
}

let final
await runSteps('simpleton_converge', [
  ['server is reachable (plain GET of the fresh document)', async () => {
    const s = await within(serverState(), 10000, `GET ${url}`)
    assertEq(s.text, '', 'fresh document text')
  }],

  [`${K} clients connect and receive the (empty) initial state`, async () => {
    await waitFor(() => clients.every(({ c }) => c.status() === 'connected'), 'all clients connected')
  }],

  [`${K} clients x ${M} concurrent random edits (client 0 offline for edits ${OFFLINE_FROM}-${OFFLINE_TO - 1})`, async () => {
    await Promise.all(clients.map(workload))
  }],

  ['all clients converge to the server text and version (20 s max)', async () => {
    let last
    try {
      await waitFor(async () => {
        const s = await serverState()
        last = { server: s, clients: clients.map(({ c }) => ({ text: c.text(), version: [...c.version()].sort(), status: c.status() })) }
        return last.clients.every((x) => x.text === s.text && x.status === 'connected' &&
          JSON.stringify(x.version) === JSON.stringify(s.version))
      }, 'convergence', { ms: 20000, every: 50 })
    } catch (e) {
      const lines = [e.message, `server: ${JSON.stringify(last?.server)}`]
      last?.clients.forEach((x, k) => lines.push(`client ${k}: ${JSON.stringify(x)}`))
      throw new Error(lines.join('\n  '))
    }
    final = last.server
  }],

  ['final text is non-trivial and keeps every marker insertion', async () => {
    const cps = [...final.text]
    assert(cps.length >= 20, `final text too short (${cps.length} code points): ${JSON.stringify(final.text)}`)
    for (let k = 0; k < K; k++) {
      const n = cps.filter((c) => c === marker(k)).length
      assert(n >= MARK_AT.length, `markers of client ${k}: expected at least ${MARK_AT.length}, got ${n}`)
    }
    assert(clients[0].statuses.includes('offline'), 'client 0 reported offline')
    assertEq(errors, [], 'client errors')
    console.log(`final: ${cps.length} code points, version ${JSON.stringify(final.version)}`)
    for (const { c } of clients) c.close()
  }],
])
