// Text helpers for the simpleton client.
//
// Braid `text` ranges count Unicode code points, while JS strings are indexed
// in UTF-16 code units. Everything that crosses the wire goes through here so
// that an emoji (one code point, two code units) is never split or miscounted.

const isHigh = (u) => u >= 0xd800 && u <= 0xdbff
const isLow = (u) => u >= 0xdc00 && u <= 0xdfff

/** Number of code points in `s` (a lone surrogate counts as one). */
export function cpLength(s) {
  let n = 0
  for (let i = 0; i < s.length; i++) {
    if (isHigh(s.charCodeAt(i)) && i + 1 < s.length && isLow(s.charCodeAt(i + 1))) i++
    n++
  }
  return n
}

/** UTF-16 index of code point `cp` in `s`; throws if `cp` is past the end. */
export function cpToUtf16(s, cp) {
  let i = 0
  for (let n = 0; n < cp; n++) {
    if (i >= s.length) throw new RangeError(`code point ${cp} is beyond the text (${cpLength(s)})`)
    i += isHigh(s.charCodeAt(i)) && i + 1 < s.length && isLow(s.charCodeAt(i + 1)) ? 2 : 1
  }
  return i
}

/** Code point index of UTF-16 index `i` in `s`. */
export function utf16ToCp(s, i) {
  return cpLength(s.slice(0, i))
}

/**
 * Parse a `text` range such as "[5:7]" (whitespace allowed). Negative numbers
 * count from the end, as braid-text accepts ("-0" is the end), so `len` (the
 * parent text's length in code points) is needed to resolve them.
 */
export function parseTextRange(range, len) {
  const m = /^\s*\[\s*(-?\d+)\s*:\s*(-?\d+)\s*\]\s*$/.exec(range)
  if (!m) throw new SyntaxError(`bad text range ${JSON.stringify(range)}`)
  const at = (x) => (x.startsWith('-') ? len - Number(x.slice(1)) : Number(x))
  return [at(m[1]), at(m[2])]
}

/**
 * Apply absolute patches `[{start, end, content}]` (code points, all relative
 * to `text`, non-overlapping) and return the new text. Patches are sorted here
 * because the protocol says order carries no meaning; overlaps are rejected
 * rather than guessed at, since a wrong guess would silently fork the replicas.
 */
export function applyPatches(text, patches) {
  const ps = [...patches].sort((a, b) => a.start - b.start || a.end - b.end)
  const len = cpLength(text)
  let prevEnd = 0
  for (const p of ps) {
    if (!(Number.isInteger(p.start) && Number.isInteger(p.end)) || p.start < prevEnd ||
        p.end < p.start || p.end > len)
      throw new RangeError(`bad patch range [${p.start}:${p.end}] for text of ${len} code points`)
    prevEnd = p.end
  }
  // One left-to-right walk converts every boundary to UTF-16, instead of
  // rescanning the text from the start for each patch.
  let out = ''
  let cp = 0
  let u = 0 // UTF-16 position of code point `cp`
  let copiedTo = 0 // UTF-16 position up to which `text` is copied into `out`
  const advanceTo = (target) => {
    while (cp < target) {
      u += isHigh(text.charCodeAt(u)) && u + 1 < text.length && isLow(text.charCodeAt(u + 1)) ? 2 : 1
      cp++
    }
    return u
  }
  for (const p of ps) {
    const s = advanceTo(p.start)
    const e = advanceTo(p.end)
    out += text.slice(copiedTo, s) + p.content
    copiedTo = e
  }
  return out + text.slice(copiedTo)
}

/**
 * Single-patch diff by common prefix and suffix, in code points. Returns null
 * when the texts are equal, else {start, end, content, deleted, inserted}:
 * replace [start:end) of `a` with `content` to get `b`. The prefix/suffix are
 * shrunk so they never end or start between the halves of a surrogate pair.
 */
export function diff(a, b) {
  if (a === b) return null
  const max = Math.min(a.length, b.length)
  let p = 0
  while (p < max && a.charCodeAt(p) === b.charCodeAt(p)) p++
  if (p > 0 && isHigh(a.charCodeAt(p - 1))) p--
  let s = 0
  while (s < max - p && a.charCodeAt(a.length - 1 - s) === b.charCodeAt(b.length - 1 - s)) s++
  if (s > 0 && isLow(a.charCodeAt(a.length - s))) s--
  const removed = a.slice(p, a.length - s)
  const content = b.slice(p, b.length - s)
  const start = cpLength(a.slice(0, p))
  const deleted = cpLength(removed)
  return { start, end: start + deleted, content, deleted, inserted: cpLength(content) }
}
