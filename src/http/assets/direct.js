// The folder page's uploads straight to the object store (served by plait at
// /.plait/client/direct.js; folder.js uses it when the page says `data-direct="on"`, that is
// when the server runs with --blob-store s3://… and --direct-uploads). The file's bytes go from
// the browser to the bucket in parts, on URLs the server signs one at a time; the server only
// sees small JSON calls, and at the end reads the object into chunks and commits one version
// (docs/UPLOADS.md, "Straight to S3").
//
// The calls, all under a grant's endpoint (the Companion routes that @uppy/aws-s3 calls too):
//   POST /.plait/direct {folder}                    → {endpoint}      (with the page's token)
//   POST {endpoint}/s3/multipart {filename, type}   → {key, uploadId}
//   GET  {endpoint}/s3/multipart/<id>/<n>?key=      → {url}           (one part, signed now)
//   GET  {endpoint}/s3/multipart/<id>?key=          → [{PartNumber, ETag, Size}]
//   POST {endpoint}/s3/multipart/<id>/complete?key= {parts}           → {location}
//   DELETE {endpoint}/s3/multipart/<id>?key=                          (cancel)
//
// Why a part URL is signed just before its PUT, and signed again for every retry: a URL lives
// an hour (--direct-part-url-secs), so a list signed up front expires under a slow upload, and
// a URL the store refused (403: expired, or altered on the way) is worth nothing the second
// time. A part whose PUT fails for a passing reason (the network, 403, 408, 429, 5xx) is tried
// again after a backoff, at once when the browser comes back online; the parts already in the
// bucket stay there. Each upload is kept in localStorage ({endpoint, key, uploadId, name, size,
// lastModified}) until it completes, so a reloaded page asks the bucket which parts it holds
// and sends only the others once the user picks the same file again.

const MIB = 1 << 20
/** S3's smallest part (every part but the last). */
const MIN_PART = 5 * MIB
/** S3's most parts in one upload. */
const MAX_PARTS = 10000
/** Parts of one file in flight at once (a browser opens at most 6 connections per origin). */
const PARALLEL_PARTS = 3
/** Waits before each retry of a part or a call that failed for a passing reason: about ten minutes. */
const RETRY_DELAYS = [500, 1000, 2000, 4000, 8000, ...Array(40).fill(15000)]
/** localStorage keys of the uploads in progress start with this. */
const STORE = 'plait-direct:'

/** A failure worth trying again (the network, or a refusal that a new attempt can fix). */
class Passing extends Error {}
/** A failure that another attempt would repeat: the upload stops (`status`: the answer's). */
class Fatal extends Error {
  constructor(message, status) {
    super(message)
    this.status = status
  }
}
/** The run stopped: the user paused or cancelled, or another part failed for good. */
class Stopped extends Error {}

/** Retries waiting for a backoff delay; woken at once when the browser comes back online. */
const sleepers = new Set()
window.addEventListener('online', () => {
  for (const wake of sleepers) wake()
})

/** The `{error, message}` of a refusal, as one line. */
async function why(res) {
  try {
    const body = await res.json()
    return `${body.message} (${body.error})`
  } catch {
    return `HTTP ${res.status}`
  }
}

/** `fetch` with the failures sorted: the network and 408/429/5xx are passing, other 4xx fatal. */
async function call(method, url, body, headers = {}, signal = undefined) {
  const init = { method, headers: { Accept: 'application/json', ...headers }, cache: 'no-store', signal }
  if (body !== undefined) {
    init.body = JSON.stringify(body)
    init.headers['Content-Type'] = 'application/json'
  }
  let res
  try {
    res = await fetch(url, init)
  } catch (e) {
    throw new Passing(navigator.onLine === false ? 'offline' : `network error (${e.message})`)
  }
  if (res.ok) return res.json()
  const message = await why(res)
  if (res.status === 408 || res.status === 429 || res.status >= 500) throw new Passing(message)
  throw new Fatal(message, res.status)
}

/** The storage key of `file`'s upload into `folder` on this server. */
const storageKey = (folder, name, size, lastModified) =>
  STORE + JSON.stringify([location.origin, folder, name, size, lastModified])

/** The size of S3 parts for a file of `size` bytes: 5 MiB, or more (whole MiB) past 10,000 parts. */
function partSizeFor(size) {
  const least = Math.ceil(size / MAX_PARTS)
  return Math.max(MIN_PART, Math.ceil(least / MIB) * MIB)
}

/** One file uploaded to the bucket in parts. */
export class DirectUpload {
  /**
   * `options`: `folder`, `headers()` (the page's Authorization, for the grant), and callbacks
   * `onProgress(sent)`, `onSuccess({location})`, `onError(message)`, `onRetry(message, delay)`,
   * `onPart(number)` (a part the bucket took), `onHeld(numbers)` (the parts the bucket already
   * held when the upload went on), `onRefused(number, status)` (a part PUT the bucket refused).
   */
  constructor(file, options) {
    this.file = file
    this.options = options
    this.storageKey = storageKey(options.folder, file.name, file.size, file.lastModified)
    const kept = localStorage.getItem(this.storageKey)
    this.record = kept ? JSON.parse(kept) : null
    this.partSize = this.record?.partSize ?? partSizeFor(file.size)
    const count = Math.max(1, Math.ceil(file.size / this.partSize))
    this.parts = Array.from({ length: count }, (_, i) => ({
      number: i + 1,
      start: i * this.partSize,
      end: Math.min((i + 1) * this.partSize, file.size),
      etag: null,
      loaded: 0,
      busy: false,
    }))
    this.run = null
  }

  /** The uploads a previous visit left unfinished in `folder` (their stored records). */
  static unfinished(folder) {
    const found = []
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i)
      if (!key?.startsWith(STORE)) continue
      try {
        const [origin, f] = JSON.parse(key.slice(STORE.length))
        if (origin === location.origin && f === folder) found.push({ storageKey: key, ...JSON.parse(localStorage.getItem(key)) })
      } catch {
        localStorage.removeItem(key) // not ours, or damaged
      }
    }
    return found
  }

  /** The bytes the bucket holds of a stored upload; null when the upload is gone (expired, done). */
  static async held(record) {
    try {
      const parts = await call('GET', partsUrl(record))
      return parts.reduce((sum, p) => sum + (Number(p.Size) || 0), 0)
    } catch (e) {
      if (e instanceof Fatal && e.status === 404) {
        localStorage.removeItem(record.storageKey)
        return null
      }
      throw e
    }
  }

  /** Cancels a stored upload: aborted in the bucket, forgotten here. */
  static async discard(record) {
    try {
      await call('DELETE', partsUrl(record))
    } finally {
      localStorage.removeItem(record.storageKey)
    }
  }

  /** Bytes sent: the parts the bucket took, and what is on its way of the others. */
  sent() {
    return this.parts.reduce((sum, p) => sum + (p.etag ? p.end - p.start : p.loaded), 0)
  }

  /** Starts, or goes on after a pause or a failure (the parts the bucket holds are kept). */
  async start() {
    if (this.run) return
    // `paused`: by the user (no error to show); `halted`: the run is over, for any reason.
    const run = (this.run = { paused: false, halted: false, requests: new Set(), wakers: new Set(), calls: new AbortController() })
    try {
      await this.#prepare(run)
      await this.#sendParts(run)
      const done = await this.#complete(run)
      localStorage.removeItem(this.storageKey)
      // Done, even if a pause came with the answer: a run started since must not begin anew.
      if (this.run && this.run !== run) {
        this.run.paused = true
        this.#halt(this.run)
      }
      this.run = null
      this.options.onSuccess(done)
    } catch (e) {
      if (this.run === run) this.run = null
      this.#halt(run)
      if (!run.paused) this.options.onError(e.message)
    }
  }

  /** Pauses (`cancel` false: the parts stay in the bucket), or cancels (aborted in the bucket, forgotten). */
  async abort(cancel) {
    const run = this.run
    this.run = null
    if (run) {
      run.paused = true
      this.#halt(run)
    }
    for (const p of this.parts) p.loaded = 0
    if (cancel && this.record) await DirectUpload.discard({ storageKey: this.storageKey, ...this.record })
  }

  /** Ends `run`: every request stops, every retry wait ends. */
  #halt(run) {
    run.halted = true
    run.calls.abort()
    for (const xhr of run.requests) xhr.abort()
    for (const wake of run.wakers) wake()
  }

  /** `attempt()` again after each passing failure, with the backoff; fatal failures go through. */
  async #retrying(run, what, attempt) {
    for (let i = 0; ; i++) {
      if (run.halted) throw new Stopped('stopped')
      try {
        return await attempt(i)
      } catch (e) {
        if (!(e instanceof Passing) || run.halted) throw e
        if (i >= RETRY_DELAYS.length) throw new Fatal(`${what}: ${e.message}; gave up after ${i + 1} attempts`)
        const delay = RETRY_DELAYS[i]
        this.options.onRetry?.(`${what}: ${e.message}`, delay)
        await new Promise((resolve) => {
          const wake = () => {
            clearTimeout(timer)
            sleepers.delete(wake)
            run.wakers.delete(wake)
            resolve()
          }
          const timer = setTimeout(wake, delay)
          sleepers.add(wake)
          run.wakers.add(wake)
        })
      }
    }
  }

  /** A stored upload: the parts the bucket holds count as sent. None: a grant and a new upload. */
  async #prepare(run) {
    if (this.record) {
      try {
        const list = () => call('GET', partsUrl(this.record), undefined, {}, run.calls.signal)
        const held = await this.#retrying(run, 'listing the parts', list)
        for (const p of held) {
          const part = this.parts[Number(p.PartNumber) - 1]
          // A part of another size is sent again (and replaces the one in the bucket).
          if (part && Number(p.Size) === part.end - part.start) part.etag = p.ETag
        }
        this.options.onHeld?.(held.map((p) => Number(p.PartNumber)))
        this.options.onProgress(this.sent())
        return
      } catch (e) {
        if (!(e instanceof Fatal && e.status === 404)) throw e
        // Expired or finished elsewhere: start again.
        localStorage.removeItem(this.storageKey)
        this.record = null
        for (const p of this.parts) p.etag = null
      }
    }
    const { folder, headers } = this.options
    const signal = run.calls.signal
    const ask = () => call('POST', '/.plait/direct', { folder }, headers(), signal)
    const grant = await this.#retrying(run, 'asking for a grant', ask)
    const endpoint = new URL(grant.endpoint, location.href).href
    const file = { filename: this.file.name, type: this.file.type || '', metadata: {} }
    const create = () => call('POST', `${endpoint}/s3/multipart`, file, {}, signal)
    const made = await this.#retrying(run, 'starting the upload', create)
    this.record = {
      endpoint,
      key: made.key,
      uploadId: made.uploadId,
      name: this.file.name,
      size: this.file.size,
      lastModified: this.file.lastModified,
      partSize: this.partSize,
      created: Date.now(),
    }
    localStorage.setItem(this.storageKey, JSON.stringify(this.record))
  }

  /**
   * Sends the parts the bucket lacks, PARALLEL_PARTS at a time; the first fatal failure stops
   * all. A part is taken by one run (`busy`); a part still held by a run that was stopped (its
   * last call not yet back) may be taken by the next.
   */
  async #sendParts(run) {
    const worker = async () => {
      for (;;) {
        if (run.halted) throw new Stopped('stopped')
        const part = this.parts.find((p) => !p.etag && (!p.busy || p.busy.halted))
        if (!part) return
        part.busy = run
        try {
          const etag = await this.#retrying(run, `part ${part.number}`, () => this.#sendPart(run, part))
          if (!part.etag) this.options.onPart?.(part.number)
          part.etag = etag
        } finally {
          if (part.busy === run) {
            part.busy = null
            part.loaded = 0
          }
        }
        this.options.onProgress(this.sent())
      }
    }
    const workers = Array.from({ length: Math.min(PARALLEL_PARTS, this.parts.length) }, worker)
    try {
      await Promise.all(workers)
    } catch (e) {
      this.#halt(run) // the other parts stop too (those in the bucket stay there)
      await Promise.allSettled(workers)
      throw e
    }
    if (!this.parts.every((p) => p.etag)) throw new Stopped('stopped') // taken by a newer run
  }

  /** One attempt at a part: a URL signed now, then the PUT; resolves to the part's ETag. */
  async #sendPart(run, part) {
    const { key } = this.record
    const sign = `${uploadUrl(this.record)}/${part.number}?${new URLSearchParams({ key })}`
    const signed = await call('GET', sign, undefined, {}, run.calls.signal)
    if (run.halted) throw new Stopped('stopped')
    const body = this.file.slice(part.start, part.end)
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest()
      run.requests.add(xhr)
      const settle = (f, v) => {
        run.requests.delete(xhr)
        if (part.loaded && part.busy === run) {
          part.loaded = 0
          this.options.onProgress(this.sent())
        }
        f(v)
      }
      xhr.open('PUT', signed.url)
      xhr.upload.onprogress = (e) => {
        if (part.busy !== run) return
        part.loaded = e.loaded
        this.options.onProgress(this.sent())
      }
      xhr.onload = () => {
        const status = xhr.status
        if (status >= 200 && status < 300) {
          const etag = xhr.getResponseHeader('ETag')
          if (etag) return settle(resolve, etag)
          return settle(reject, new Fatal('the bucket did not show the part\'s ETag (its CORS rules must expose ETag)'))
        }
        this.options.onRefused?.(part.number, status)
        const said = `the bucket answered ${status}${status === 403 ? ' (an expired or altered URL: signing it again)' : ''}`
        if (status === 403 || status === 408 || status === 429 || status >= 500) return settle(reject, new Passing(said))
        settle(reject, new Fatal(`part ${part.number}: ${said}`, status))
      }
      xhr.onerror = () => settle(reject, new Passing(navigator.onLine === false ? 'offline' : 'network error'))
      xhr.ontimeout = () => settle(reject, new Passing('timed out'))
      xhr.onabort = () => settle(reject, new Stopped('stopped'))
      xhr.send(body)
    })
  }

  /**
   * Completes the upload from the parts' ETags. A retry that finds the upload gone means the
   * first attempt went through and only its answer was lost: the target then has the file's
   * size, and that is success.
   */
  async #complete(run) {
    const parts = this.parts.map((p) => ({ PartNumber: p.number, ETag: p.etag }))
    const { key } = this.record
    const url = `${uploadUrl(this.record)}/complete?${new URLSearchParams({ key })}`
    return this.#retrying(run, 'completing', async (attempt) => {
      try {
        return await call('POST', url, { parts }, {}, run.calls.signal)
      } catch (e) {
        if (!(attempt > 0 && e instanceof Fatal && e.status === 404)) throw e
        const target = this.options.folder + urlSegment(this.file.name)
        const res = await fetch(target, { method: 'HEAD', headers: this.options.headers(), cache: 'no-store' }).catch(() => null)
        if (res?.ok && Number(res.headers.get('Content-Length')) === this.file.size) return { location: target }
        throw e
      }
    })
  }
}

/**
 * A file name as the server makes it a path segment (a browser's path percent-encoding, plus
 * `%` and `\\`): where a completed upload lands in its folder.
 */
function urlSegment(name) {
  let out = ''
  for (const b of new TextEncoder().encode(name)) {
    const c = String.fromCharCode(b)
    out += b <= 0x20 || b >= 0x7f || '"#%<>?`{}\\'.includes(c) ? '%' + b.toString(16).toUpperCase().padStart(2, '0') : c
  }
  return out
}

/** `{endpoint}/s3/multipart/<uploadId>` of a record. */
const uploadUrl = (record) => `${record.endpoint}/s3/multipart/${encodeURIComponent(record.uploadId)}`
/** The list-parts (GET) and abort (DELETE) URL of a record. */
const partsUrl = (record) => `${uploadUrl(record)}?${new URLSearchParams({ key: record.key })}`
