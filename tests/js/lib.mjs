// Shared helpers for the interop scripts: argument handling, a hard overall
// timeout, bounded waits on conditions/events, and a pass/fail tally.

export function baseUrlFromArgv() {
  const base = process.argv[2]
  if (!base || !/^https?:\/\//.test(base)) {
    console.error(`usage: node ${process.argv[1].split('/').pop()} http://127.0.0.1:PORT`)
    process.exit(2)
  }
  return base.replace(/\/+$/, '')
}

/** Kill the process if the whole script takes longer than `ms`: it must never hang. */
export function hardTimeout(ms, name) {
  setTimeout(() => {
    console.error(`FAIL: ${name}: hard timeout after ${ms / 1000} s`)
    console.error('0 passed, 1 failed')
    process.exit(3)
  }, ms)
}

export const randomId = () => Math.random().toString(36).slice(2, 10)

/** Resolve when cond() is truthy; poll every `every` ms; throw after `ms`. */
export async function waitFor(cond, what, { ms = 10000, every = 10 } = {}) {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await cond()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, every))
  }
}

/** Reject if `promise` does not settle within `ms`. */
export function within(promise, ms, what) {
  let t
  return Promise.race([
    promise,
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms) }),
  ]).finally(() => clearTimeout(t))
}

export function assert(cond, message) {
  if (!cond) throw new Error(message)
}

export function assertEq(actual, expected, what) {
  const a = JSON.stringify(actual)
  const e = JSON.stringify(expected)
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`)
}

/**
 * Wait until `get()` returns `expected` (or what `expected()` returns, when it is a function),
 * then assert it, so a timeout names the last value seen. For state that settles
 * asynchronously, such as an editor's text arriving just after its status says 'connected'.
 */
export async function eventuallyEq(get, expected, what, opts) {
  const want = async () => (typeof expected === 'function' ? await expected() : expected)
  let last
  await waitFor(async () => { last = await get(); return JSON.stringify(last) === JSON.stringify(await want()) }, what, opts)
    .catch(() => {})
  assertEq(last, await want(), what)
}

/** Parse a Version/Parents header value (JSON strings joined by commas). */
export function parseIds(value) {
  if (value == null) return null
  return JSON.parse(`[${value}]`)
}

/**
 * Run named steps in order. Steps build on each other, so the first failure
 * stops the run. Prints "N passed, M failed" last and exits accordingly.
 */
export async function runSteps(name, steps) {
  let passed = 0
  let failed = 0
  for (const [label, fn] of steps) {
    const t0 = Date.now()
    try {
      await fn()
      passed++
      console.log(`ok   ${label} (${Date.now() - t0} ms)`)
    } catch (e) {
      failed++
      console.error(`FAIL ${label}: ${e?.stack ?? e}${e?.cause ? `\n  cause: ${e.cause}` : ''}`)
      break
    }
  }
  const skipped = steps.length - passed - failed
  console.log(`${name}: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} not run` : ''}`)
  process.exit(failed || skipped ? 1 : 0)
}
