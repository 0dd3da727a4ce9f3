// Interop: braid-http's `braid_fetch` subscribing to a Plait *file* resource, as braidfs does
// for blobs (Merge-Type: aww, wallclockish versions, one full-body update per version, a 404
// update on delete).
//
//   node tests/js/braid_fetch_file.mjs http://127.0.0.1:PORT
//
// Every byte value 0..255 is in the bodies, so any text decoding on the way would show.

import { fetch as braid_fetch } from 'braid-http'
import { baseUrlFromArgv, hardTimeout, randomId, within, assert, assertEq, parseIds, runSteps } from './lib.mjs'

const base = baseUrlFromArgv()
hardTimeout(60000, 'braid_fetch_file')
const WAIT = 10000

const url = `${base}/interop/blob-${randomId()}.bin`
const bytes = (seed, n) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) % 256)
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i])

let sub
const items = []
let wake = () => {}
let failure = null

async function next(what) {
  if (!items.length && !failure) await within(new Promise((r) => (wake = r)), WAIT, `update: ${what}`)
  if (items.length) return items.shift()
  throw new Error(`subscription failed while waiting for ${what}: ${failure}`)
}

async function put(body, headers, what) {
  const res = await within(braid_fetch(url, { method: 'PUT', body, headers }), WAIT, `PUT ${what}`)
  await res.arrayBuffer().catch(() => {})
  assert(res.ok, `PUT ${what}: status ${res.status}`)
  return res
}

const first = bytes(1, 70000)
const second = bytes(2, 300)

await runSteps('braid_fetch_file', [
  ['(a) PUT a blob as braidfs does (wallclockish Version, no Content-Type, no Parents)', async () => {
    await put(first, { Version: '"1768467700.125"', 'Version-Type': 'wallclockish', Peer: 'writer' }, 'first')
    const head = await within(braid_fetch(url, { method: 'HEAD', headers: { 'Merge-Type': 'dt' } }), WAIT, 'HEAD')
    assertEq(head.headers.get('merge-type'), 'aww', 'HEAD says blob')
    assertEq(parseIds(head.headers.get('version')), ['1768467700.125'], 'HEAD Version')
  }],

  ['(b) subscribe: the current version, whole, with its exact bytes', async () => {
    const ac = new AbortController()
    sub = ac
    const res = await within(braid_fetch(url, { subscribe: true, signal: ac.signal, peer: 'reader', headers: { Heartbeats: '120s' } }), WAIT, 'subscribe')
    assertEq(res.status, 209, 'subscription status')
    assertEq(res.headers.get('merge-type'), 'aww', 'subscription Merge-Type')
    res.subscribe((u) => { items.push(u); wake() }, (e) => { failure = e; wake() })
    const u = await next('initial')
    assertEq(u.version, ['1768467700.125'], 'initial Version')
    assert(same(u.body, first), `initial body: ${u.body?.length} bytes`)
    assertEq(u.extra_headers?.['merge-type'], 'aww', 'update Merge-Type')
    assertEq(u.extra_headers?.['version-type'], 'wallclockish', 'update Version-Type')
  }],

  ['(c) another writer\'s version arrives whole; the subscriber\'s own is not echoed', async () => {
    await put(Uint8Array.of(0, 1, 2), { Version: '"1768467700.200"', 'Version-Type': 'wallclockish', Peer: 'reader' }, 'own')
    await put(second, { Version: '"1768467700.300"', 'Version-Type': 'wallclockish', Peer: 'writer', 'Content-Type': 'image/png' }, 'second')
    const u = await next('second')
    assertEq(u.version, ['1768467700.300'], 'Version')
    assertEq(u.parents, ['1768467700.200'], 'Parents')
    assert(same(u.body, second), 'second body')
    assertEq(u.extra_headers?.['content-type'], 'image/png', 'Content-Type')
  }],

  ['(d) a delete is a 404 update', async () => {
    const res = await within(braid_fetch(url, { method: 'DELETE' }), WAIT, 'DELETE')
    assert(res.ok, `DELETE: ${res.status}`)
    const u = await next('delete')
    assertEq(String(u.status), '404', 'update status')
    sub.abort()
  }],
])
