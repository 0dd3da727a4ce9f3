// Plait simpleton client: keeps one plain-text document in sync with a
// Braid-HTTP server using the `simpleton` merge type (spec/WIRE.md §4.2).
//
// Simpleton clients keep no history. The client only ever applies a server
// update whose Parents equal its own current version; everything else is
// dropped, and the server is responsible for sending a rebased update
// (Parents = the client's last PUT version) whenever it merged that PUT with
// concurrent edits. Dependency-free; runs in browsers and Node 18+.

import { SubscriptionParser, ParseError, formatVersion } from './framing.js'
import { diff, applyPatches, parseTextRange, cpLength } from './text.js'

export { diff, applyPatches, cpLength } from './text.js'

const PUT_TIMEOUT_MS = 20000 // like braid-text's reliable_update_channel
const TRANSIENT = new Set([309, 408, 425, 429, 432, 502, 503, 504]) // retried without complaint

const sameIds = (a, b) => a.length === b.length && a.every((x, i) => x === b[i])
const defaultDelay = (attempt) => Math.min(attempt, 3) * 1000 * (1 + 0.3 * Math.random())

/**
 * @param {string} url  the document URL
 * @param {object} opts
 *   peer        id for this client session (default: random); it names our
 *               versions ("<peer>-<n>") and lets the server recognise our PUTs
 *   onText      (text) => void, after each remote change has been applied
 *   onStatus    (status) => void: 'connecting' | 'connected' | 'syncing' | 'offline'
 *   onEditable  (editable) => void, on each subscription: false when the server says
 *               (`Editable: false`) that this client may read but not write (a
 *               read-only token or share link)
 *   onError     (error) => void, for server/protocol problems (the client keeps
 *               going unless error.fatal is true)
 *   heartbeats  seconds between server heartbeats (0 = don't ask)
 *   fetch       fetch implementation (default: globalThis.fetch)
 *   headers     extra request headers for every request (e.g. Authorization)
 *   retryDelay  (attempt: 1, 2, ...) => ms before reconnecting / retrying a PUT
 */
export function simpleton(url, {
  peer = Math.random().toString(36).slice(2, 12),
  onText = () => {},
  onStatus = () => {},
  onEditable = () => {},
  onError = () => {},
  heartbeats = 20,
  fetch = globalThis.fetch,
  headers = {},
  retryDelay = defaultDelay,
} = {}) {
  // --- Document state -----------------------------------------------------
  // `synced` is the text at `clientVersion`, including our own PUTs (sent or
  // in flight: simpleton versions optimistically). `local` is the app's text;
  // when it differs from `synced` there are unsent edits, which are diffed and
  // sent as one PUT once the previous PUT is done and we are online. That one
  // mechanism covers both coalescing fast typing and edits made offline.
  let synced = ''
  let local = ''
  let clientVersion = []
  let charCounter = -1
  let inflight = null // {version, parents, start, end, content} being PUT

  // --- Connection state ---------------------------------------------------
  let closed = false
  let online = false // true once the current subscription got its 209
  let status = null
  let subAbort = null
  let putAbort = null
  let putBusy = false
  let putFailures = 0
  const timers = new Set()
  const later = (fn, ms) => {
    const t = setTimeout(() => { timers.delete(t); fn() }, ms)
    timers.add(t)
    return t
  }
  const cancel = (t) => { clearTimeout(t); timers.delete(t) }
  const report = (e) => { try { onError(e) } catch {} }

  function setStatus(s) {
    if (s === 'connected' && (inflight || local !== synced)) s = 'syncing'
    if (s === status) return
    status = s
    try { onStatus(s) } catch (e) { report(e) }
  }
  const refreshStatus = () => { if (online && !closed) setStatus('connected') }

  // --- Receiving ------------------------------------------------------------
  function onUpdate(u) {
    // braid-text's client crashes on a missing Parents; we call it a server bug.
    if (!u.parents || !u.version) throw new ParseError('update without Version or Parents header')
    if (u.status && (u.status < 200 || u.status > 299))
      throw new ParseError(`update with status ${u.status}`)
    // Unsent local edits mean the app's text is not the text at any version
    // the server knows; applying anything now would lose them. The server
    // will rebase us after we PUT them. (An in-flight PUT is fine: its version
    // is already our clientVersion, so only its own rebase can match.)
    if (local !== synced) return
    if (!sameIds([...u.parents].sort(), clientVersion)) return
    let patches
    if (u.patches) {
      const len = cpLength(synced)
      patches = u.patches.map((p) => {
        if (p.unit !== 'text') throw new ParseError(`unsupported patch unit ${p.unit}`)
        const [start, end] = parseTextRange(p.range, len)
        return { start, end, content: p.content }
      })
    } else {
      patches = [{ start: 0, end: 0, content: u.body ?? '' }] // snapshot = insert at [0:0]
    }
    local = synced = applyPatches(synced, patches)
    clientVersion = [...u.version].sort()
    if (u.headers['repr-digest']) checkDigest(synced, clientVersion, u.headers['repr-digest'])
    try { onText(synced) } catch (e) { report(e) }
  }

  // Runs after the update is applied (as braid-text does); a mismatch means
  // we and the server disagree about the text at `version`, which no retry fixes.
  async function checkDigest(text, version, header) {
    const want = /sha-256=:([^:]*):/i.exec(header)?.[1]
    if (!want || !globalThis.crypto?.subtle) return
    const hash = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text))
    let bin = ''
    for (const b of new Uint8Array(hash)) bin += String.fromCharCode(b)
    if (btoa(bin) !== want)
      report(Object.assign(new Error(`repr-digest mismatch at version ${JSON.stringify(version)}`), { kind: 'digest' }))
  }

  // --- Subscription loop --------------------------------------------------
  async function subscribeLoop() {
    let attempt = 0
    while (!closed) {
      setStatus('connecting')
      const ctrl = (subAbort = new AbortController())
      try {
        const h = { ...headers, Subscribe: 'true', 'Merge-Type': 'simpleton', Peer: peer }
        if (heartbeats) h.Heartbeats = String(heartbeats)
        if (clientVersion.length) h.Parents = formatVersion(clientVersion)
        // no-store: a browser's HTTP cache must never answer a subscription.
        const res = await fetch(url, { method: 'GET', headers: h, signal: ctrl.signal, cache: 'no-store' })
        if (res.status === 209) {
          attempt = 0
          await readSubscription(res, ctrl)
        } else {
          res.body?.cancel().catch(() => {})
          // 309 can mean the server never got our last PUT (clientVersion is
          // optimistic, so we asked to resume from it). Re-send that PUT now
          // instead of only after the subscription is back, or a server that
          // answers 309 here would livelock with us.
          if (res.status === 309 && inflight) pumpPuts(true)
          if (!TRANSIENT.has(res.status))
            report(Object.assign(new Error(`subscription: unexpected status ${res.status}`), { status: res.status }))
        }
      } catch (e) {
        // Network errors and aborts are what 'offline' already says; parse and
        // protocol errors mean a server bug, so tell the app, then reconnect.
        if (e instanceof ParseError || e instanceof RangeError || e instanceof SyntaxError) report(e)
      } finally {
        ctrl.abort()
      }
      online = false
      if (closed) break
      setStatus('offline')
      attempt++
      await new Promise((r) => later(r, retryDelay(attempt)))
    }
  }

  async function readSubscription(res, ctrl) {
    // Dead-connection detection, only if the server echoed `heartbeats` (it
    // then promises a byte at least every N s): any byte re-arms the timer.
    const hb = parseFloat(res.headers.get('heartbeats'))
    let timer = null
    const arm = () => {
      if (!isFinite(hb)) return
      if (timer) cancel(timer)
      timer = later(() => ctrl.abort(), (1.2 * hb + 3) * 1000)
    }
    try {
      arm()
      try { onEditable(res.headers.get('editable') !== 'false') } catch (e) { report(e) }
      online = true
      setStatus('connected')
      pumpPuts(true) // queued PUTs are (re)sent once we are back online
      const parser = new SubscriptionParser(onUpdate)
      const reader = res.body.getReader()
      for (;;) {
        const { done, value } = await reader.read()
        if (done || closed) return // server closed the stream: reconnect
        arm()
        parser.feed(value)
      }
    } finally {
      if (timer) cancel(timer)
    }
  }

  // --- Sending ------------------------------------------------------------
  let putRetryTimer = null
  async function pumpPuts(force = false) {
    if (force && putRetryTimer) { cancel(putRetryTimer); putRetryTimer = null }
    if (putBusy || closed || putRetryTimer) return
    putBusy = true
    try {
      while (!closed) {
        if (!inflight) {
          if (!online) break // offline edits accumulate in `local`
          const d = diff(synced, local)
          if (!d) break
          // One event per deleted or inserted code point; the version names the last one.
          charCounter += d.deleted + d.inserted
          inflight = { version: [`${peer}-${charCounter}`], parents: clientVersion, ...d }
          clientVersion = inflight.version
          synced = local
        }
        refreshStatus() // 'syncing' while a PUT is outstanding
        const r = await sendPut(inflight)
        if (r === 'ok') { inflight = null; putFailures = 0; continue }
        if (r === 'fatal') { shutdown(); break }
        putFailures++
        putRetryTimer = later(() => { putRetryTimer = null; if (online) pumpPuts() }, retryDelay(putFailures))
        break
      }
    } finally {
      putBusy = false
      refreshStatus()
    }
  }

  async function sendPut(p) {
    const ctrl = (putAbort = new AbortController())
    const t = later(() => ctrl.abort(), PUT_TIMEOUT_MS)
    try {
      const res = await fetch(url, {
        method: 'PUT',
        signal: ctrl.signal,
        headers: {
          ...headers,
          'Content-Type': 'text/plain; charset=utf-8',
          Version: formatVersion(p.version),
          Parents: formatVersion(p.parents), // empty = based on the empty document
          Peer: peer,
          'Merge-Type': 'simpleton',
          'Content-Range': `text [${p.start}:${p.end}]`,
        },
        body: p.content,
      })
      res.body?.cancel().catch(() => {})
      if (res.ok) return 'ok'
      if (res.status === 550) {
        report(Object.assign(new Error(`PUT ${p.version} rejected with 550 (repr-digest mismatch); stopping`), { fatal: true, status: 550 }))
        return 'fatal'
      }
      if (!TRANSIENT.has(res.status) && res.status < 500)
        report(Object.assign(new Error(`PUT ${p.version}: unexpected status ${res.status}; will retry`), { status: res.status }))
      return 'retry'
    } catch {
      return 'retry' // network error or timeout: retried after backoff / reconnect
    } finally {
      cancel(t)
      putAbort = null
    }
  }

  function shutdown() {
    closed = true
    online = false
    subAbort?.abort()
    putAbort?.abort()
    for (const t of timers) clearTimeout(t)
    timers.clear()
    setStatus('offline')
  }

  subscribeLoop()

  return {
    /** Tell the client the app's full new text after a local edit. */
    changed(newText) {
      if (closed || newText === local) return
      local = newText
      if (online) pumpPuts()
      refreshStatus()
    },
    text: () => local,
    version: () => [...clientVersion],
    status: () => status,
    close: shutdown,
  }
}
