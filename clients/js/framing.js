// Braid-HTTP wire helpers: Version/Parents header values and an incremental
// parser for the body of a 209 subscription (spec/WIRE.md §2.1).
//
// The parser accepts what braid-http's own parser accepts: any run of CR/LF
// between updates (heartbeats, separators), an optional inner status line
// (`HTTP 200 OK`, `HTTP/1.1 200 OK`, `200 OK`), headers ending at `\n\n` or
// `\n\r\n`, and a body framed by Content-Length (snapshot, or one inline patch
// when Content-Range is present) or by `Patches: N` /
// `Content-Type: application/http-patches; count=N` blocks. Content-Length
// wins over Patches, as in braid-http.

/** Serialize version ids the way braid-http does: JSON strings, every
 *  non-printable-ASCII UTF-16 unit as \uXXXX, joined by ", ". */
export function formatVersion(ids) {
  return ids
    .map((id) => JSON.stringify(id).replace(/[^\x20-\x7e]/g,
      (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')))
    .join(', ')
}

/** Parse a Version/Parents header value; an empty value is the empty set. */
export function parseVersion(value) {
  const ids = JSON.parse(`[${value}]`)
  if (!ids.every((x) => typeof x === 'string')) throw new SyntaxError(`bad version ${value}`)
  return ids
}

export class ParseError extends Error {}

const CR = 13
const LF = 10
const latin1 = (bytes) => {
  let s = ''
  for (let i = 0; i < bytes.length; i += 4096)
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 4096))
  return s
}
const utf8 = new TextDecoder('utf-8')

/** Index just past the blank line ending a header block, or -1 if not yet here. */
function headerEnd(buf, from) {
  for (let i = from; i < buf.length; i++) {
    if (buf[i] !== LF) continue
    if (buf[i + 1] === LF) return i + 2
    if (buf[i + 1] === CR && buf[i + 2] === LF) return i + 3
    if (i + 2 >= buf.length) return -1 // need more bytes to decide
  }
  return -1
}

/** Parse a header block; `allowStatus` accepts an inner status line first.
 *  Header bytes are Latin-1 (braid keeps them ASCII). Names are lowercased; a
 *  repeated name overwrites, as in braid-http. */
function parseHeaderBlock(bytes, allowStatus) {
  const lines = latin1(bytes).split(/\r?\n/).filter((l) => l !== '')
  const headers = {}
  let status
  lines.forEach((line, i) => {
    const st = allowStatus && i === 0 && /^(?:HTTP(?:\/\d(?:\.\d)?)? )?(\d{3})(?: .*)?$/.exec(line)
    if (st) return void (status = Number(st[1]))
    const m = /^([A-Za-z0-9_-]+):[ \t]*(.*?)[ \t]*$/.exec(line)
    if (!m) throw new ParseError(`bad header line ${JSON.stringify(line)}`)
    headers[m[1].toLowerCase()] = m[2]
  })
  return { status, headers }
}

function parseLength(v, what) {
  if (!/^\d+$/.test(v)) throw new ParseError(`bad ${what} ${JSON.stringify(v)}`)
  return Number(v)
}

function parseContentRange(v) {
  const m = /^(\S+)\s*(.*)$/.exec(v)
  if (!m) throw new ParseError(`bad content-range ${JSON.stringify(v)}`)
  return { unit: m[1], range: m[2] }
}

/**
 * Try to parse one update starting at `pos` (after any CR/LF filler).
 * Returns {update, end} or null when more bytes are needed; throws ParseError.
 * It re-reads the update from its start on each call: simple, and updates are
 * small compared with the cost of the network round trips that deliver them.
 */
function parseUpdate(buf, pos) {
  const hEnd = headerEnd(buf, pos)
  if (hEnd < 0) return null
  const { status, headers } = parseHeaderBlock(buf.subarray(pos, hEnd), true)
  const update = { status, headers }
  if ('version' in headers) update.version = parseVersion(headers.version)
  if ('parents' in headers) update.parents = parseVersion(headers.parents)
  let p = hEnd

  if ('content-length' in headers) {
    const n = parseLength(headers['content-length'], 'content-length')
    if (buf.length < p + n) return null
    const content = utf8.decode(buf.subarray(p, p + n))
    if ('content-range' in headers) update.patches = [{ ...parseContentRange(headers['content-range']), content }]
    else update.body = content
    return { update, end: p + n }
  }

  let count = headers.patches
  if (count === undefined) count = /application\/http-patches\s*;\s*count\s*=\s*(\S+)/i.exec(headers['content-type'] ?? '')?.[1]
  if (count === undefined) throw new ParseError('update has neither Content-Length nor Patches')
  count = parseLength(count, 'patch count')
  update.patches = []
  while (update.patches.length < count) {
    while (p < buf.length && (buf[p] === CR || buf[p] === LF)) p++
    const e = headerEnd(buf, p)
    if (e < 0) return null
    const ph = parseHeaderBlock(buf.subarray(p, e), false).headers
    if (!('content-length' in ph)) throw new ParseError('patch without content-length')
    if (!('content-range' in ph)) throw new ParseError('patch without content-range')
    const n = parseLength(ph['content-length'], 'patch content-length')
    if (buf.length < e + n) return null
    update.patches.push({ ...parseContentRange(ph['content-range']), content: utf8.decode(buf.subarray(e, e + n)) })
    p = e + n
  }
  return { update, end: p }
}

/**
 * Incremental subscription parser. Feed it byte chunks in arrival order; it
 * calls `onUpdate(update)` for each complete update, where update is
 * {status?, version?, parents?, headers, body?: string, patches?: [{unit, range, content}]}.
 * A ParseError is thrown from feed(); after that the parser is unusable.
 */
export class SubscriptionParser {
  constructor(onUpdate) {
    this.onUpdate = onUpdate
    this.buf = new Uint8Array(0)
  }

  feed(chunk) {
    if (chunk.length) {
      const b = new Uint8Array(this.buf.length + chunk.length)
      b.set(this.buf)
      b.set(chunk, this.buf.length)
      this.buf = b
    }
    for (;;) {
      // Drop filler right away so heartbeats never accumulate in the buffer.
      let p = 0
      while (p < this.buf.length && (this.buf[p] === CR || this.buf[p] === LF)) p++
      this.buf = this.buf.subarray(p)
      if (!this.buf.length) return
      const r = parseUpdate(this.buf, 0)
      if (!r) return
      this.buf = this.buf.subarray(r.end)
      this.onUpdate(r.update)
    }
  }
}
