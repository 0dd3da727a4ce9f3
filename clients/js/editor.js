// Plait's live editor: a plain <textarea> kept in sync through the simpleton
// client, with the caret and selection kept in place when remote edits arrive
// and a connection indicator. Served by plait at /.plait/client/editor.js and
// used by the page a browser gets when it navigates to a resource.

import { simpleton } from './simpleton.js'

/**
 * Connects `textarea` to the document at `url`; `indicator` shows the status
 * (its text and its `data-status` attribute: connecting | connected | syncing | offline).
 * Returns the simpleton handle (also exposed as `window.plait` for debugging).
 */
export function mountEditor(textarea, indicator, url, options = {}) {
  const setStatus = (s) => {
    indicator.textContent = s
    indicator.dataset.status = s
  }
  const doc = simpleton(url, {
    ...options,
    onText: (text) => replaceKeepingSelection(textarea, text),
    onStatus: setStatus,
    // A read-only credential (say, a "subscribe" share link): watch, do not type.
    onEditable: (editable) => { textarea.readOnly = !editable },
    onError: (e) => console.warn('plait:', e),
  })
  textarea.addEventListener('input', () => doc.changed(textarea.value))
  globalThis.plait = doc
  return doc
}

/**
 * Replaces the textarea's text, moving the selection with the change: offsets
 * before the changed region stay, offsets after it shift by the length change,
 * and offsets inside it move to the end of the new text there. Offsets are
 * UTF-16 units, as in the DOM; the diff never splits a surrogate pair.
 */
export function replaceKeepingSelection(textarea, text) {
  const old = textarea.value
  if (old === text) return
  const { selectionStart: s, selectionEnd: e, selectionDirection: dir } = textarea
  const { start, oldEnd, newEnd } = changedRegion(old, text)
  const map = (i) => (i <= start ? i : i >= oldEnd ? i + (newEnd - oldEnd) : newEnd)
  textarea.value = text
  textarea.setSelectionRange(map(s), map(e), dir)
}

/** The region where `a` and `b` differ: common prefix and suffix removed. */
export function changedRegion(a, b) {
  const max = Math.min(a.length, b.length)
  let start = 0
  while (start < max && a.charCodeAt(start) === b.charCodeAt(start)) start++
  if (start > 0 && isHigh(a.charCodeAt(start - 1))) start-- // keep pairs whole
  let tail = 0
  while (tail < max - start && a.charCodeAt(a.length - 1 - tail) === b.charCodeAt(b.length - 1 - tail)) tail++
  if (tail > 0 && isLow(a.charCodeAt(a.length - tail))) tail--
  return { start, oldEnd: a.length - tail, newEnd: b.length - tail }
}

const isHigh = (c) => c >= 0xd800 && c <= 0xdbff
const isLow = (c) => c >= 0xdc00 && c <= 0xdfff
