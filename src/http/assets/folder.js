// The folder page's script (served by plait at /.plait/client/folder.js; the page is built by
// src/http/folder_page.rs). It uploads dropped or chosen files with tus-js-client (vendored,
// /.plait/client/tus.min.js, the global `tus`) through /.plait/uploads/, shows each upload's
// bytes and rate with pause, resume and cancel buttons, offers to continue the uploads a
// reloaded page left unfinished (tus-js-client keeps their URLs in localStorage), keeps the
// listing live (a long poll of the folder's changes; a change fetches the page again and swaps
// its #listing), and, on a server that needs a token, takes one from the sign-in form or the
// URL's `#token=` and sends it as `Authorization` on every request it makes.
// With direct uploads on (`data-direct="on"`), files go straight to the object store in parts
// instead (direct.js); empty files (no part to send) still go by tus.

import { DirectUpload } from './direct.js'

const main = document.getElementById('folder')
const folder = main.dataset.folder
const direct = main.dataset.direct === 'on'
const endpoint = new URL('/.plait/uploads/', location.href).href
const TOKEN = 'plait-token'
/** Uploads running at once; the rest wait (a browser has 6 connections per server). */
const PARALLEL = 3
/** Retries after a dropped connection: every few seconds for about ten minutes. */
const RETRY_DELAYS = [0, 1000, 2000, 4000, 8000, ...Array(40).fill(15000)]

const $ = (id) => document.getElementById(id)

// ---- Token -------------------------------------------------------------------------------

// A `#token=` in the address goes to this tab's storage and out of the address bar.
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token')
if (fromHash) {
  sessionStorage.setItem(TOKEN, fromHash)
  history.replaceState(null, '', location.pathname + location.search)
}
const token = () => sessionStorage.getItem(TOKEN)
const auth = () => (token() ? { Authorization: `Bearer ${token()}` } : {})

/** The `{error, message}` of a refusal, as one line. */
async function why(res) {
  try {
    const body = await res.json()
    return `${body.message} (${body.error})`
  } catch {
    return `HTTP ${res.status}`
  }
}

function askForToken(message) {
  main.dataset.auth = 'required'
  $('signin').hidden = false
  if (items.size === 0) $('upload').hidden = true // uploads in progress stay in view
  $('signin-error').textContent = message || ''
  $('token').focus()
}

$('signin-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  sessionStorage.setItem(TOKEN, $('token').value.trim())
  $('token').value = ''
  if (await refresh()) start()
})

// ---- The live listing ----------------------------------------------------------------------

let cursor = main.dataset.cursor || null

/** Fetches the page again and swaps its listing in; false when refused (then asks for a token). */
async function refresh() {
  let res
  try {
    res = await fetch(location.pathname + location.search, {
      headers: { Accept: 'text/html', ...auth() },
      cache: 'no-store',
    })
  } catch {
    return false
  }
  if (res.status === 401 || res.status === 403) {
    if (token()) sessionStorage.removeItem(TOKEN)
    askForToken(await why(res))
    return false
  }
  if (!res.ok) return false
  const page = new DOMParser().parseFromString(await res.text(), 'text/html')
  const listing = page.getElementById('listing')
  if (!listing) return false
  $('listing').replaceWith(document.adoptNode(listing))
  cursor = page.getElementById('folder').dataset.cursor || cursor
  main.dataset.cursor = cursor
  main.dataset.auth = 'ok'
  $('signin').hidden = true
  $('upload').hidden = false
  return true
}

const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Long-polls the folder's changes from `cursor`; any change (or a reset) refreshes the listing. */
async function watch() {
  for (;;) {
    try {
      const res = await fetch(`${location.pathname}?since=${encodeURIComponent(cursor)}&wait=50`, {
        headers: { Accept: 'application/json', ...auth() },
        cache: 'no-store',
      })
      if (res.status === 401 || res.status === 403) {
        started = false // `start` runs again after a sign-in
        askForToken(await why(res))
        return
      }
      if (!res.ok) {
        await pause(5000)
        continue
      }
      const body = await res.json()
      cursor = body.cursor
      if (body.reset || body.changes.length > 0) await refresh()
    } catch {
      await pause(1000) // the network dropped: try again shortly
    }
  }
}

// ---- Uploads -------------------------------------------------------------------------------

const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
function bytes(n) {
  let unit = 0
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024
    unit++
  }
  return unit === 0 ? `${n} B` : `${n.toFixed(1)} ${units[unit]}`
}

/** One line of the upload list: its element, its tus upload once there is a file, its state. */
class Item {
  constructor(name, size) {
    this.name = name
    this.size = size
    this.upload = null
    this.samples = []
    const li = (this.li = document.createElement('li'))
    li.dataset.name = name
    li.innerHTML =
      '<strong class=name></strong> <span class=state></span><br>' +
      '<progress max=1 value=0></progress><br><span class=numbers></span> ' +
      '<button type=button data-act=pause>Pause</button> <button type=button data-act=resume>Resume</button> ' +
      '<button type=button data-act=choose>Choose the file again</button> ' +
      '<button type=button data-act=cancel>Cancel</button> <span class=why role=alert></span>'
    li.querySelector('.name').textContent = name
    li.querySelector('progress').setAttribute('aria-label', `Upload of ${name}`)
    for (const button of li.querySelectorAll('button')) {
      button.setAttribute('aria-label', `${button.textContent} (${name})`)
      button.addEventListener('click', () => this[button.dataset.act]())
    }
    $('uploads').append(li)
    this.progress(0)
  }

  /** `uploading`, `waiting`, `paused`, `unfinished` (after a reload: needs its file), `done`, `failed`. */
  set(state, message = '') {
    this.state = state
    this.li.dataset.state = state
    const shown = { unfinished: 'unfinished: choose or drop the same file to continue' }
    this.li.querySelector('.state').textContent = shown[state] || state
    this.li.querySelector('.why').textContent = message
    const show = { pause: ['uploading'], resume: ['paused', 'failed'], choose: ['unfinished'], cancel: ['uploading', 'waiting', 'paused', 'failed', 'unfinished'] }
    for (const button of this.li.querySelectorAll('button')) button.hidden = !show[button.dataset.act].includes(state)
  }

  /**
   * Shows `sent` bytes of the file as sent. A value below the last one means the connection
   * dropped and the upload went on from what the server kept: the difference was sent again,
   * counted in `data-resent` (`data-offsets` lists where each append began).
   */
  progress(sent) {
    if (sent < this.last) this.li.dataset.resent = String(Number(this.li.dataset.resent || 0) + this.last - sent)
    this.last = sent
    const now = performance.now()
    this.samples.push([now, sent])
    while (this.samples.length > 2 && now - this.samples[0][0] > 3000) this.samples.shift()
    const [t0, b0] = this.samples[0]
    const rate = now > t0 ? ((sent - b0) * 1000) / (now - t0) : 0
    const bar = this.li.querySelector('progress')
    bar.max = Math.max(this.size, 1)
    bar.value = sent
    this.li.dataset.sent = String(sent)
    const speed = this.state === 'uploading' && rate > 0 ? ` · ${bytes(Math.round(rate))}/s` : ''
    const again = this.li.dataset.resent ? ` (${bytes(Number(this.li.dataset.resent))} sent again)` : ''
    this.li.querySelector('.numbers').textContent = `${bytes(sent)} of ${bytes(this.size)}${speed}${again}`
  }

  pause() {
    this.upload?.abort(false)
    this.set('paused')
    this.samples = []
    next()
  }

  resume() {
    this.set('waiting')
    next()
  }

  choose() {
    $('pick').click()
  }

  /** Stops the upload and has the server drop it (tus termination, or an abort in the bucket), and forgets it here. */
  async cancel() {
    try {
      if (this.upload instanceof DirectUpload) {
        await this.upload.abort(true)
      } else if (this.direct) {
        await DirectUpload.discard(this.direct)
      } else if (this.upload?.url) {
        await this.upload.abort(true) // DELETE, then out of localStorage
      } else {
        await this.upload?.abort(false)
        if (this.stored) {
          const headers = { 'Tus-Resumable': '1.0.0', ...auth() }
          await fetch(this.stored.uploadUrl, { method: 'DELETE', headers })
          await tus.defaultOptions.urlStorage.removeUpload(this.stored.urlStorageKey)
        }
      }
    } catch {
      // Offline or already gone: the server expires abandoned uploads by itself.
    }
    this.li.remove()
    items.delete(this)
    next()
  }
}

const items = new Set()

/** The same file again: the name, size, type and modification time, in this folder. */
const fingerprint = (file, options) =>
  Promise.resolve(['plait', folder, file.name, file.type, file.size, file.lastModified, options.endpoint].join('/'))

function add(file) {
  let item = [...items].find((i) => i.state === 'unfinished' && i.name === file.name && i.size === file.size)
  if (!item) {
    item = new Item(file.name, file.size)
    items.add(item)
  }
  if (direct && file.size > 0) {
    addDirect(item, file)
    return
  }
  const metadata = { folder, filename: file.name }
  if (file.type) metadata.filetype = file.type
  item.upload = new tus.Upload(file, {
    endpoint,
    metadata,
    headers: auth(),
    fingerprint,
    retryDelays: RETRY_DELAYS,
    removeFingerprintOnSuccess: true,
    onProgress: (sent) => item.progress(sent),
    // Where each append starts: the upload's own record of where it went on after a cut.
    onBeforeRequest: (req) => {
      if (req.getMethod() !== 'PATCH') return
      const offsets = item.li.dataset.offsets
      item.li.dataset.offsets = (offsets ? offsets + ',' : '') + req.getHeader('Upload-Offset')
    },
    onSuccess: () => {
      item.set('done')
      item.progress(item.size)
      refresh()
      next()
    },
    onError: async (error) => {
      const res = error.originalResponse
      let message = error.message
      if (res) {
        try {
          const body = JSON.parse(res.getBody())
          message = `${body.message} (${body.error})`
        } catch {
          message = `HTTP ${res.getStatus()}`
        }
      }
      item.set('failed', message)
      next()
    },
  })
  item.set('waiting')
  next()
}

/**
 * `file` straight to the bucket (direct.js). The item's data attributes record what the page
 * saw, for people and for the browser tests: `parts` (the part numbers the bucket took from
 * this page, in order), `held` (those it already held when the upload went on after a reload),
 * `refused` (`part:status` of each part PUT the bucket refused), `retries` (passing failures
 * tried again), `retrying` (the last one's reason, while waiting).
 */
function addDirect(item, file) {
  const li = item.li
  li.dataset.mode = 'direct'
  const append = (name, value) => (li.dataset[name] = li.dataset[name] ? `${li.dataset[name]},${value}` : String(value))
  item.upload = new DirectUpload(file, {
    folder,
    headers: auth,
    onProgress: (sent) => item.progress(sent),
    onPart: (number) => append('parts', number),
    onHeld: (numbers) => (li.dataset.held = numbers.join(',')),
    onRefused: (number, status) => append('refused', `${number}:${status}`),
    onRetry: (message, delay) => {
      li.dataset.retries = String(Number(li.dataset.retries || 0) + 1)
      li.dataset.retrying = message
      li.querySelector('.why').textContent = `${message}; trying again in ${Math.round(delay / 1000)} s`
    },
    onSuccess: () => {
      delete li.dataset.retrying
      item.set('done')
      item.progress(item.size)
      refresh()
      next()
    },
    onError: (message) => {
      item.set('failed', message)
      next()
    },
  })
  item.set('waiting')
  next()
}

/** Starts waiting uploads while fewer than PARALLEL run. */
function next() {
  let running = [...items].filter((i) => i.state === 'uploading').length
  for (const item of items) {
    if (running >= PARALLEL) break
    if (item.state !== 'waiting' || !item.upload) continue
    running++
    item.set('uploading')
    item.samples = []
    if (item.upload instanceof DirectUpload) {
      item.upload.start()
      continue
    }
    item.upload
      .findPreviousUploads()
      .then((previous) => {
        const newest = previous.sort((a, b) => (a.creationTime < b.creationTime ? 1 : -1))[0]
        if (newest && !item.upload.url) item.upload.resumeFromPreviousUpload(newest)
        if (item.state === 'uploading') item.upload.start()
      })
      .catch((e) => item.set('failed', String(e)))
  }
}

/** The direct uploads a previous visit left unfinished in this folder, with the bytes the bucket holds. */
async function unfinishedDirect() {
  for (const stored of DirectUpload.unfinished(folder)) {
    if ([...items].some((i) => i.direct?.storageKey === stored.storageKey)) continue
    const item = new Item(stored.name ?? '?', stored.size)
    item.direct = stored
    item.li.dataset.mode = 'direct'
    items.add(item)
    item.set('unfinished')
    try {
      const held = await DirectUpload.held(stored)
      if (held === null) {
        // Expired or finished elsewhere: nothing left to continue.
        item.li.remove()
        items.delete(item)
      } else {
        item.progress(held)
      }
    } catch {
      // Offline: keep the offer; the file picks up wherever the bucket is.
    }
  }
}

/** The uploads a previous visit left unfinished in this folder, with the offset the server holds. */
async function unfinished() {
  if (direct) unfinishedDirect()
  const all = await tus.defaultOptions.urlStorage.findAllUploads()
  for (const stored of all) {
    if (stored.metadata?.folder !== folder || !stored.uploadUrl?.startsWith(new URL(endpoint).origin)) continue
    if ([...items].some((i) => i.stored?.urlStorageKey === stored.urlStorageKey)) continue
    const item = new Item(stored.metadata.filename ?? '?', stored.size)
    item.stored = stored
    items.add(item)
    item.set('unfinished')
    try {
      const res = await fetch(stored.uploadUrl, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0', ...auth() } })
      if (res.ok) item.progress(Number(res.headers.get('Upload-Offset')) || 0)
      else if (res.status === 404 || res.status === 410) {
        // Expired or finished elsewhere: nothing left to continue.
        await tus.defaultOptions.urlStorage.removeUpload(stored.urlStorageKey)
        item.li.remove()
        items.delete(item)
      }
    } catch {
      // Offline: keep the offer; the file picks up wherever the server is.
    }
  }
}

const pick = $('pick')
pick.addEventListener('change', () => {
  for (const file of pick.files) add(file)
  pick.value = ''
})
document.addEventListener('dragover', (event) => {
  event.preventDefault()
  $('drop').classList.add('over')
})
document.addEventListener('dragleave', () => $('drop').classList.remove('over'))
document.addEventListener('drop', (event) => {
  event.preventDefault()
  $('drop').classList.remove('over')
  for (const file of event.dataTransfer?.files ?? []) add(file)
})
// Back online after the retries ran out: try the failed uploads again.
window.addEventListener('online', () => {
  for (const item of items) if (item.state === 'failed' && item.upload) item.resume()
})

// ---- Start ---------------------------------------------------------------------------------

let started = false
/** Once the listing is readable: watch it and offer the unfinished uploads. */
function start() {
  if (started) return
  started = true
  unfinished()
  watch()
}

if (main.dataset.auth === 'required') {
  if (token()) {
    refresh().then((ok) => ok && start())
  } else {
    askForToken()
  }
} else {
  start()
}
