// Interop: the real `braid-http` client (braid_fetch) against a live Plait server.
//
//   node tests/js/braid_fetch_interop.mjs http://127.0.0.1:PORT
//
// Checks PUT/GET, subscriptions (snapshot, single and multi-patch updates),
// resume from older Parents with the simpleton merge type, code-point ranges
// with emoji, non-ASCII version ids, and 309 for unknown versions. Event ids
// follow spec/WIRE.md §4.3: one event per inserted/deleted code point, the
// Version names the last one ("hello" from the root as alice-0..alice-4).

import { fetch as braid_fetch } from 'braid-http'
import { applyPatches, parseTextRange } from '../../clients/js/text.js'
import {
  baseUrlFromArgv, hardTimeout, randomId, within, assert, assertEq, parseIds, runSteps,
} from './lib.mjs'

const base = baseUrlFromArgv()
hardTimeout(60000, 'braid_fetch_interop')
const WAIT = 10000 // max ms for any single expected event

const url = `${base}/interop/bf-${randomId()}`
const emojiUrl = `${base}/interop/bf-emoji-${randomId()}`
const aborters = []

/** Subscribe with braid_fetch and expose the updates as an awaitable queue. */
async function subscribe(target, opts = {}) {
  const ac = new AbortController()
  aborters.push(ac)
  const res = await within(braid_fetch(target, {
    subscribe: true,
    signal: ac.signal,
    ...opts,
    headers: { 'Merge-Type': 'simpleton', ...opts.headers },
  }), WAIT, `subscribe ${target}`)
  assertEq(res.status, 209, 'subscription status')
  const items = []
  let error = null
  let wake = () => {}
  res.subscribe(
    (u) => { items.push(u); wake() },
    (e) => { error = e; wake() },
  )
  return {
    res,
    /** Next update, or throw on error/timeout. */
    async next(what) {
      if (!items.length && !error)
        await within(new Promise((r) => (wake = r)), WAIT, `update: ${what}`)
      if (items.length) return items.shift()
      throw new Error(`subscription error while waiting for ${what}: ${error}`)
    },
    close: () => ac.abort(),
  }
}

/** Apply a braid_fetch update (snapshot or text patches) to `text`. */
function applyUpdate(text, u) {
  if (u.patches) {
    for (const p of u.patches) assertEq(p.unit, 'text', 'patch unit')
    return applyPatches(text, u.patches.map((p) => {
      const [start, end] = parseTextRange(p.range, [...text].length)
      return { start, end, content: p.content_text }
    }))
  }
  return u.body_text ?? ''
}

async function put(target, opts, what) {
  const res = await within(braid_fetch(target, { method: 'PUT', ...opts }), WAIT, `PUT ${what}`)
  await res.arrayBuffer().catch(() => {})
  return res
}

async function putOk(target, opts, what) {
  const res = await put(target, opts, what)
  assert(res.ok, `PUT ${what}: status ${res.status}`)
  return res
}

async function get(target, opts = {}) {
  const res = await within(braid_fetch(target, opts), WAIT, `GET ${target}`)
  const text = await res.text()
  return { res, status: res.status, text, version: parseIds(res.headers.get('version')) }
}

let sub1 // the first subscriber (steps b-e)
let subText = ''

await runSteps('braid_fetch_interop', [
  ['(a) PUT a snapshot with version/parents, GET it back', async () => {
    await putOk(url, { version: ['alice-4'], parents: [], body: 'hello' }, 'snapshot')
    const g = await get(url)
    assertEq(g.status, 200, 'GET status')
    assertEq(g.text, 'hello', 'GET body')
    assertEq(g.version, ['alice-4'], 'GET Version')
  }],

  ['(a2) GET with Version returns the text at that version (one event per code point)', async () => {
    const g = await get(url, { version: ['alice-2'] })
    assertEq(g.status, 200, 'GET status')
    assertEq(g.text, 'hel', 'text at alice-2')
  }],

  ['(b) subscribe: initial snapshot with Version and empty Parents', async () => {
    sub1 = await subscribe(url, { peer: `sub1-${randomId()}` })
    const u = await sub1.next('initial snapshot')
    assertEq(u.version, ['alice-4'], 'snapshot Version')
    assertEq(u.parents, [], 'snapshot Parents (must be present and empty)')
    assertEq(u.body_text, 'hello', 'snapshot body')
    subText = applyUpdate('', u)
  }],

  ['(c) PUT one patch from another peer; subscriber gets it', async () => {
    await putOk(url, {
      peer: 'bob-peer', version: ['bob-5'], parents: ['alice-4'],
      patches: [{ unit: 'text', range: '[5:5]', content: ' world' }],
    }, 'one patch')
    const u = await sub1.next('patch update')
    assertEq(u.version, ['bob-5'], 'update Version')
    assertEq(u.parents, ['alice-4'], 'update Parents')
    assertEq(u.patches?.map((p) => [p.unit, p.range, p.content_text]), [['text', '[5:5]', ' world']], 'update patches')
    subText = applyUpdate(subText, u)
    assertEq(subText, 'hello world', 'subscriber text')
  }],

  ['(d) PUT two patches; subscriber converges', async () => {
    // [0:1]->"H" is 1 delete + 1 insert, [11:11]->"!" is 1 insert: bob-6..bob-8.
    await putOk(url, {
      peer: 'bob-peer', version: ['bob-8'], parents: ['bob-5'],
      patches: [
        { unit: 'text', range: '[0:1]', content: 'H' },
        { unit: 'text', range: '[11:11]', content: '!' },
      ],
    }, 'two patches')
    const u = await sub1.next('two-patch update')
    assertEq(u.version, ['bob-8'], 'update Version')
    assertEq(u.parents, ['bob-5'], 'update Parents')
    subText = applyUpdate(subText, u)
    assertEq(subText, 'Hello world!', 'subscriber text')
    const g = await get(url)
    assertEq([g.text, g.version], ['Hello world!', ['bob-8']], 'GET after two patches')
  }],

  ['(e) resume from older Parents: exactly one rebased update, then live updates', async () => {
    const resumed = await subscribe(url, { peer: `sub2-${randomId()}`, parents: ['alice-4'] })
    const u = await resumed.next('catch-up update')
    assertEq(u.version, ['bob-8'], 'catch-up Version')
    assertEq(u.parents, ['alice-4'], 'catch-up Parents')
    assertEq(applyUpdate('hello', u), 'Hello world!', 'catch-up applied to the text at alice-4')

    // Resuming from the current version sends nothing until the next change.
    const current = await subscribe(url, { peer: `sub3-${randomId()}`, parents: ['bob-8'] })

    // The next thing every subscriber sees must be this PUT: that proves the
    // catch-up was a single update and nothing stale was queued behind it.
    await putOk(url, {
      peer: 'bob-peer', version: ['bob-9'], parents: ['bob-8'],
      patches: [{ unit: 'text', range: '[12:12]', content: '?' }],
    }, 'after resume')
    for (const [name, s, before] of [['resumed', resumed, 'Hello world!'], ['current', current, 'Hello world!'], ['first', sub1, subText]]) {
      const v = await s.next(`${name}: live update`)
      assertEq([v.version, v.parents], [['bob-9'], ['bob-8']], `${name} subscriber: live update Version/Parents`)
      assertEq(applyUpdate(before, v), 'Hello world!?', `${name} subscriber text`)
    }
    resumed.close()
    current.close()
  }],

  ['(f) emoji content round-trips with code-point ranges', async () => {
    await putOk(emojiUrl, { version: ['u-2'], parents: [], body: 'a😀b' }, 'emoji snapshot')
    let g = await get(emojiUrl)
    assertEq([g.text, g.version], ['a😀b', ['u-2']], 'GET emoji snapshot')
    const s = await subscribe(emojiUrl, { peer: `sub4-${randomId()}` })
    let t = applyUpdate('', await s.next('emoji snapshot'))
    assertEq(t, 'a😀b', 'subscribed snapshot')

    // Insert after the emoji: code point 2, not UTF-16 index 3.
    await putOk(emojiUrl, { peer: 'v-peer', version: ['v-0'], parents: ['u-2'], patches: [{ unit: 'text', range: '[2:2]', content: 'é' }] }, 'insert after emoji')
    let u = await s.next('insert after emoji')
    assertEq([u.version, u.parents], [['v-0'], ['u-2']], 'update Version/Parents')
    t = applyUpdate(t, u)
    assertEq(t, 'a😀éb', 'text after insert')

    // Delete the emoji itself: one code point, one event.
    await putOk(emojiUrl, { peer: 'v-peer', version: ['v-1'], parents: ['v-0'], patches: [{ unit: 'text', range: '[1:2]', content: '' }] }, 'delete emoji')
    u = await s.next('delete emoji')
    t = applyUpdate(t, u)
    assertEq(t, 'aéb', 'text after deleting the emoji')

    // Insert several astral code points (3 events) by an agent whose name is not ASCII.
    await putOk(emojiUrl, { peer: 'y-peer', version: ['y😀-2'], parents: ['v-1'], patches: [{ unit: 'text', range: '[3:3]', content: '👍🏽!' }] }, 'non-ASCII agent')
    u = await s.next('non-ASCII agent update')
    assertEq([u.version, u.parents], [['y😀-2'], ['v-1']], 'non-ASCII version ids survive the round trip')
    t = applyUpdate(t, u)
    assertEq(t, 'aéb👍🏽!', 'text after astral insert')
    g = await get(emojiUrl)
    assertEq([g.text, g.version], ['aéb👍🏽!', ['y😀-2']], 'GET after emoji edits')
    g = await get(emojiUrl, { version: ['u-1'] })
    assertEq(g.text, 'a😀', 'text at u-1 (two code points)')
    s.close()
  }],

  ['(g) 309 for unknown versions (PUT parents, GET version)', async () => {
    const p = await put(url, {
      peer: 'ghost-peer', version: ['ghost-0'], parents: ['nobody-99'],
      patches: [{ unit: 'text', range: '[0:0]', content: 'x' }],
    }, 'unknown parents')
    assertEq(p.status, 309, 'PUT with unknown Parents')
    const g = await get(url, { version: ['nobody-99'] })
    assertEq(g.status, 309, 'GET with unknown Version')
    const after = await get(url)
    assertEq([after.text, after.version], ['Hello world!?', ['bob-9']], 'nothing applied from the rejected PUT')
    for (const a of aborters) a.abort()
  }],
])
