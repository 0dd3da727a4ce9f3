import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cpLength, cpToUtf16, utf16ToCp, diff, applyPatches, parseTextRange } from '../text.js'

test('code point counting and index conversion with emoji and surrogate pairs', () => {
  const s = 'a😀éb👍🏽z' // 👍🏽 is two code points (thumbs up + skin tone)
  assert.equal(s.length, 10)
  assert.equal(cpLength(s), 7)
  assert.equal(cpLength(''), 0)
  const cps = [0, 1, 3, 4, 5, 7, 9, 10] // UTF-16 index of each code point boundary
  cps.forEach((u, cp) => {
    assert.equal(cpToUtf16(s, cp), u)
    assert.equal(utf16ToCp(s, u), cp)
  })
  assert.throws(() => cpToUtf16(s, 8), RangeError)
  assert.equal(cpLength('\ud83d'), 1) // lone surrogates count once
  assert.equal(cpLength('\ude00\ud83d'), 2)
})

test('parseTextRange', () => {
  assert.deepEqual(parseTextRange('[5:5]', 10), [5, 5])
  assert.deepEqual(parseTextRange(' [ 1 : 3 ] ', 10), [1, 3])
  assert.deepEqual(parseTextRange('[-2:-0]', 10), [8, 10])
  assert.throws(() => parseTextRange('5-6', 10))
  assert.throws(() => parseTextRange('[a:b]', 10))
})

test('applyPatches: code point ranges, running offset, unsorted input', () => {
  assert.equal(applyPatches('hello', [{ start: 5, end: 5, content: ' yo' }]), 'hello yo')
  assert.equal(applyPatches('hello yo', [{ start: 3, end: 5, content: '' }, { start: 0, end: 0, content: 'A' }]), 'Ahel yo')
  assert.equal(applyPatches('a😀b', [{ start: 2, end: 2, content: 'é' }]), 'a😀éb')
  assert.equal(applyPatches('a😀éb', [{ start: 1, end: 2, content: '' }, { start: 3, end: 4, content: '👍🏽' }]), 'aé👍🏽')
  assert.equal(applyPatches('', [{ start: 0, end: 0, content: 'x' }]), 'x')
  assert.equal(applyPatches('abc', []), 'abc')
  // Two inserts at the same point keep their given order.
  assert.equal(applyPatches('ab', [{ start: 1, end: 1, content: 'X' }, { start: 1, end: 1, content: 'Y' }]), 'aXYb')
})

test('applyPatches rejects overlaps and out-of-range patches', () => {
  assert.throws(() => applyPatches('abc', [{ start: 0, end: 2, content: '' }, { start: 1, end: 3, content: '' }]), RangeError)
  assert.throws(() => applyPatches('a😀', [{ start: 0, end: 3, content: '' }]), RangeError)
  assert.throws(() => applyPatches('abc', [{ start: 2, end: 1, content: '' }]), RangeError)
})

test('diff: simple cases', () => {
  assert.equal(diff('same', 'same'), null)
  assert.deepEqual(diff('', 'abc'), { start: 0, end: 0, content: 'abc', deleted: 0, inserted: 3 })
  assert.deepEqual(diff('hello', 'hello world'), { start: 5, end: 5, content: ' world', deleted: 0, inserted: 6 })
  assert.deepEqual(diff('hello', 'jello'), { start: 0, end: 1, content: 'j', deleted: 1, inserted: 1 })
  assert.deepEqual(diff('abc', ''), { start: 0, end: 3, content: '', deleted: 3, inserted: 0 })
  assert.deepEqual(diff('aaa', 'aaaa'), { start: 3, end: 3, content: 'a', deleted: 0, inserted: 1 })
})

test('diff never splits a surrogate pair', () => {
  // 😀 = D83D DE00 and 😁 = D83D DE01 share their high surrogate.
  assert.deepEqual(diff('a😀b', 'a😁b'), { start: 1, end: 2, content: '😁', deleted: 1, inserted: 1 })
  // 😂 = D83D DE02, 🙂 = D83D DE42: only the high surrogate is shared.
  assert.deepEqual(diff('x😂', 'x🙂'), { start: 1, end: 2, content: '🙂', deleted: 1, inserted: 1 })
  // Shared low surrogate at the suffix: U+10402 = D801 DC02, U+1F402 = D83D DC02.
  assert.deepEqual(diff('\ud801\udc02z', '\ud83d\udc02z'), { start: 0, end: 1, content: '\ud83d\udc02', deleted: 1, inserted: 1 })
  assert.deepEqual(diff('a😀😀', 'a😀'), { start: 2, end: 3, content: '', deleted: 1, inserted: 0 })
  assert.deepEqual(diff('é😀', '😀'), { start: 0, end: 1, content: '', deleted: 1, inserted: 0 })
})

test('diff + applyPatches round-trip on random strings with emoji', () => {
  let seed = 12345
  const rnd = (n) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n)
  const alphabet = ['a', 'b', 'é', '😀', '😁', '🙂', '👍🏽', '\n', 'z']
  const gen = () => Array.from({ length: rnd(8) }, () => alphabet[rnd(alphabet.length)]).join('')
  for (let i = 0; i < 5000; i++) {
    const a = gen()
    const cps = Array.from(a) // slice at code point boundaries
    const i = rnd(cps.length + 1)
    const j = i + rnd(cps.length + 1 - i)
    const b = rnd(4) ? cps.slice(0, i).join('') + gen() + cps.slice(j).join('') : gen()
    const d = diff(a, b)
    if (a === b) { assert.equal(d, null); continue }
    assert.equal(applyPatches(a, [d]), b, `${JSON.stringify(a)} -> ${JSON.stringify(b)}`)
    assert.equal(d.end - d.start, d.deleted)
    assert.equal(cpLength(d.content), d.inserted)
  }
})
