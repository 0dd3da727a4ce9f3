import { test } from 'node:test'
import assert from 'node:assert/strict'
import { SubscriptionParser, ParseError, formatVersion, parseVersion } from '../framing.js'

// The de-chunked subscription body of spec/WIRE.md §2.2 (its three updates), then two
// heartbeat CR LFs, byte for byte.
const SECTION_2_2 = [
  'HTTP 200 OK\r\n',
  'Version: "alice-4"\r\n',
  'Parents: \r\n',
  'repr-digest: sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:\r\n',
  'Content-Type: text/plain; charset=utf-8\r\n',
  'Content-Length: 5\r\n',
  '\r\n',
  'hello\r\n',
  '\r\n',
  'HTTP 200 OK\r\n',
  'Version: "bob-2"\r\n',
  'Parents: "alice-4"\r\n',
  'Content-Type: text/plain; charset=utf-8\r\n',
  'Content-Length: 3\r\n',
  'Content-Range: text [5:5]\r\n',
  '\r\n',
  ' yo\r\n',
  '\r\n',
  'HTTP 200 OK\r\n',
  'Version: "carol-0", "dave-1"\r\n',
  'Parents: "bob-2"\r\n',
  'Content-Type: application/http-patches; count=2\r\n',
  'Patches: 2\r\n',
  '\r\n',
  'Content-Length: 1\r\n',
  'Content-Range: text [0:0]\r\n',
  '\r\n',
  'A\r\n',
  '\r\n',
  'Content-Length: 0\r\n',
  'Content-Range: text [3:5]\r\n',
  '\r\n',
  '\r\n',
  '\r\n',
  '\r\n',
  '\r\n',
].join('')

const bytes = (s) => new TextEncoder().encode(s)

function parseAll(chunks) {
  const out = []
  const p = new SubscriptionParser((u) => out.push(u))
  for (const c of chunks) p.feed(c)
  return { out, leftover: p.buf.length }
}

function checkSection22(out) {
  assert.equal(out.length, 3)
  const [a, b, c] = out
  assert.equal(a.status, 200)
  assert.deepEqual(a.version, ['alice-4'])
  assert.deepEqual(a.parents, [])
  assert.equal(a.body, 'hello')
  assert.equal(a.patches, undefined)
  assert.equal(a.headers['repr-digest'], 'sha-256=:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=:')
  assert.deepEqual(b.version, ['bob-2'])
  assert.deepEqual(b.parents, ['alice-4'])
  assert.deepEqual(b.patches, [{ unit: 'text', range: '[5:5]', content: ' yo' }])
  assert.deepEqual(c.version, ['carol-0', 'dave-1'])
  assert.deepEqual(c.parents, ['bob-2'])
  assert.deepEqual(c.patches, [
    { unit: 'text', range: '[0:0]', content: 'A' },
    { unit: 'text', range: '[3:5]', content: '' },
  ])
}

test('§2.2 bytes in one chunk', () => {
  const { out, leftover } = parseAll([bytes(SECTION_2_2)])
  checkSection22(out)
  assert.equal(leftover, 0)
})

test('§2.2 bytes split at every position', () => {
  const all = bytes(SECTION_2_2)
  for (let i = 0; i <= all.length; i++) {
    const { out } = parseAll([all.subarray(0, i), all.subarray(i)])
    checkSection22(out)
  }
})

test('§2.2 bytes split at every pair of positions (three chunks)', () => {
  const all = bytes(SECTION_2_2)
  for (let i = 0; i <= all.length; i += 7)
    for (let j = i; j <= all.length; j++)
      checkSection22(parseAll([all.subarray(0, i), all.subarray(i, j), all.subarray(j)]).out)
})

test('§2.2 bytes one byte at a time, with heartbeats between updates', () => {
  const all = bytes('\r\n\r\n' + SECTION_2_2.replaceAll('HTTP 200 OK', '\r\n\nHTTP 200 OK') + '\r\n\r\n')
  checkSection22(parseAll([...all].map((b) => Uint8Array.of(b))).out)
})

test('updates are delivered as soon as complete, not when the next one starts', () => {
  const out = []
  const p = new SubscriptionParser((u) => out.push(u))
  p.feed(bytes('HTTP 200 OK\r\nVersion: "a-0"\r\nParents: \r\nContent-Length: 1\r\n\r\n'))
  assert.equal(out.length, 0)
  p.feed(bytes('x'))
  assert.equal(out.length, 1)
  assert.equal(out[0].body, 'x')
})

test('multi-byte UTF-8 content split across chunks; Content-Length counts bytes', () => {
  const all = bytes('HTTP 200 OK\r\nVersion: "v-0"\r\nParents: "u-2"\r\nContent-Length: 6\r\nContent-Range: text [2:2]\r\n\r\n😀é\r\n\r\n')
  for (let i = 0; i <= all.length; i++) {
    const { out } = parseAll([all.subarray(0, i), all.subarray(i)])
    assert.deepEqual(out[0].patches, [{ unit: 'text', range: '[2:2]', content: '😀é' }])
  }
})

test('variants: LF-only, no status, bare status, HTTP/1.1 status, count= content type, Patches: 0', () => {
  const src = [
    'Version: "a-1"\nParents: \nContent-Length: 2\n\nhi',
    '200 OK\r\nVersion: "a-2"\r\nParents: "a-1"\r\nContent-Length: 1\r\nContent-Range: text [2:2]\r\n\r\n!',
    'HTTP/1.1 200 OK\r\nVersion: "b-0"\r\nParents: "a-2"\r\nContent-Type: application/http-patches; count=1\r\n\r\ncontent-length: 1\r\ncontent-range: text [0:0]\r\n\r\nX',
    'HTTP 200 OK\r\nVersion: "dave-0"\r\nParents: "carol-5", "zed-3"\r\nContent-Type: application/http-patches; count=0\r\nPatches: 0\r\n\r\n\r\n\r\n',
  ].join('\r\n\r\n')
  const { out } = parseAll([bytes(src)])
  assert.equal(out.length, 4)
  assert.equal(out[0].status, undefined)
  assert.equal(out[0].body, 'hi')
  assert.equal(out[1].status, 200)
  assert.equal(out[1].patches[0].content, '!')
  assert.deepEqual(out[2].patches, [{ unit: 'text', range: '[0:0]', content: 'X' }])
  assert.deepEqual(out[3].patches, [])
  assert.deepEqual(out[3].parents, ['carol-5', 'zed-3'])
})

test('Content-Length wins over Patches (braid-http parse_body precedence)', () => {
  const { out } = parseAll([bytes('HTTP 200 OK\r\nVersion: "a-0"\r\nParents: \r\nPatches: 2\r\nContent-Length: 2\r\n\r\nab')])
  assert.equal(out[0].body, 'ab')
})

test('errors: no length, bad header line, bad version, patch without range', () => {
  const bad = [
    'HTTP 200 OK\r\nVersion: "a-0"\r\nParents: \r\n\r\n',
    'HTTP 200 OK\r\nthis is not a header\r\nContent-Length: 0\r\n\r\n',
    'HTTP 200 OK\r\nVersion: a-0\r\nContent-Length: 0\r\n\r\n',
    'HTTP 200 OK\r\nVersion: "a-0"\r\nPatches: 1\r\n\r\nContent-Length: 1\r\n\r\nx',
    'HTTP 200 OK\r\nVersion: "a-0"\r\nContent-Length: 1x\r\n\r\nx',
  ]
  for (const s of bad)
    assert.throws(() => new SubscriptionParser(() => {}).feed(bytes(s)), (e) => e instanceof ParseError || e instanceof SyntaxError, s)
})

test('formatVersion: JSON strings, ASCII-only with UTF-16 escapes, ", " separator', () => {
  assert.equal(formatVersion([]), '')
  assert.equal(formatVersion(['alice-4']), '"alice-4"')
  assert.equal(formatVersion(['carol-0', 'dave-1']), '"carol-0", "dave-1"')
  assert.equal(formatVersion(['y😀-0']), '"y\\ud83d\\ude00-0"')
  assert.equal(formatVersion(['é"\\-1']), '"\\u00e9\\"\\\\-1"')
  for (const ids of [[], ['a-1'], ['y😀-0', 'é-3', 'q"x-9']]) assert.deepEqual(parseVersion(formatVersion(ids)), ids)
  assert.deepEqual(parseVersion(''), [])
  assert.throws(() => parseVersion('alice-4'))
  assert.throws(() => parseVersion('1, 2'))
})
