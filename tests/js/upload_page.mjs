// The folder page's uploads in a real browser (Debian's Chromium, playwright-core), on a server
// that needs a token, through a TCP proxy that drops the connection on cue (cut_proxy.mjs):
// the page asks for a token (401 page) and then lists the folder; a file chosen with the picker
// survives a cut at half way by itself; pause and resume go on from where the server is; a
// reload in the middle offers to continue, and choosing the same file again continues it; the
// browser going offline in the middle and back online finishes the upload by itself; a file
// dropped on the page (a synthetic drop) is uploaded too; a file written by another client
// appears without a reload; the listing shows them all.
// The Rust test (tests/it/uploads_browser.rs) made the files and checks the committed bytes.
//
// usage: node upload_page.mjs http://HOST:PORT TOKEN DIR SCREENSHOT.png
//   DIR holds big-a.bin, big-b.bin, big-c.bin and big-d.bin. Prints `RESULT {json}` last.

import { statSync } from 'node:fs'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { startCutProxy } from './cut_proxy.mjs'
import { baseUrlFromArgv, hardTimeout, waitFor, within, assert, assertEq, runSteps } from './lib.mjs'

const base = baseUrlFromArgv()
const [, , , token, dir, shot] = process.argv
hardTimeout(240000, 'upload_page')
const file = (name) => ({ name, path: join(dir, name), size: statSync(join(dir, name)).size })
const [A, B, C, D] = ['big-a.bin', 'big-b.bin', 'big-c.bin', 'big-d.bin'].map(file)
const DROPPED = 'dropped note é.txt'
const result = { files: {} }

let browser, page, proxy
const item = (name) => page.locator(`#uploads li[data-name="${name}"]`)
const data = async (name, key) => page.evaluate(([n, k]) => document.querySelector(`#uploads li[data-name="${n}"]`)?.dataset[k], [name, key])
const stateOf = (name) => data(name, 'state')
const sentOf = async (name) => Number(await data(name, 'sent'))
/** Where each append (PATCH) of the upload began, as the page's tus-js-client sent them. */
const offsetsOf = async (name) => ((await data(name, 'offsets')) ?? '').split(',').filter(Boolean).map(Number)
const until = (name, state, ms) => waitFor(async () => {
  const s = await stateOf(name)
  if (s === 'failed') throw new Error(`${name} failed: ${await item(name).locator('.why').textContent()}`)
  return s === state
}, `${name} to be ${state}`, { ms, every: 50 })

await runSteps('upload_page', [
  ['the folder page asks for a token, then lists the folder', async () => {
    proxy = await startCutProxy(new URL(base))
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] })
    page = await (await browser.newContext()).newPage()
    page.on('pageerror', (e) => console.error('page error:', e))
    const res = await page.goto(proxy.url + '/up/')
    assertEq(res.status(), 401, 'a folder page without a token')
    assert(await page.locator('#upload').isHidden(), 'no upload area before signing in')
    await page.getByLabel('Access token').fill(token)
    await page.getByRole('button', { name: 'Use this token' }).click()
    await waitFor(async () => (await page.locator('#folder').getAttribute('data-auth')) === 'ok', 'the listing after signing in')
    assert(await page.locator('#signin').isHidden(), 'the sign-in form goes away')
    assert(await page.locator('#listing table').isVisible(), 'the listing is shown')
    assert(await page.getByLabel('Drop files anywhere on this page, or choose them:').isVisible(), 'the labelled file picker')
  }],
  [`${A.name}: the connection is cut at half way, the upload resumes by itself`, async () => {
    const t0 = Date.now()
    const before = proxy.forwarded()
    const cut = proxy.cutAfter(Math.floor(A.size / 2))
    await page.locator('#pick').setInputFiles(A.path)
    await within(cut, 60000, 'the cut at half way')
    const cutAt = Date.now() - t0
    await until(A.name, 'done', 120000)
    const resent = Number((await data(A.name, 'resent')) ?? 0)
    const offsets = await offsetsOf(A.name)
    const resumedAt = offsets.at(-1)
    assertEq(proxy.cuts(), 1, 'the proxy cut once')
    assert(offsets.length >= 2 && offsets[0] === 0, `appends began at ${offsets}: one before the cut, more after`)
    // The proxy had forwarded half the file; what the server kept of it, less whatever was
    // still in socket buffers (a few MiB on loopback), is where the upload must go on.
    assert(resumedAt >= A.size / 8, `went on from byte ${resumedAt}: the upload must go on from what the server kept`)
    result.files[A.name] = {
      ms: Date.now() - t0, cut_at_ms: cutAt, forwarded_at_cut: Math.floor(A.size / 2), append_offsets: offsets,
      resent_by_the_page: resent, proxy_bytes_beyond_the_file: proxy.forwarded() - before - A.size,
    }
  }],
  [`${B.name}: pause, then resume from where the server is`, async () => {
    const before = proxy.forwarded()
    const t0 = Date.now()
    proxy.pace(8 << 20) // a slow link, so that the pause comes while the server is receiving
    await page.locator('#pick').setInputFiles(B.path)
    await waitFor(async () => proxy.forwarded() - before > B.size / 4, `${B.name} past a quarter`, { ms: 60000, every: 20 })
    await page.getByRole('button', { name: `Pause (${B.name})` }).click()
    await until(B.name, 'paused', 5000)
    proxy.pace(null)
    const atPause = await sentOf(B.name)
    assert(atPause < B.size, 'paused before the end')
    // What had reached the server by the time the resumed append began: an upper bound of
    // what it can hold (the proxy counts a byte when it forwards it).
    let reached = null
    const onAppend = (req) => { if (req.method() === 'PATCH' && reached === null) reached = proxy.forwarded() - before }
    page.on('request', onAppend)
    await page.getByRole('button', { name: `Resume (${B.name})` }).click()
    await until(B.name, 'done', 120000)
    page.off('request', onAppend)
    // The server keeps what reached it, and the resume goes on from there. That can be more
    // than the page had seen acknowledged at the pause (`atPause`, from progress events, which
    // lag): bytes already on their way are taken by the server (uploads: a superseded request
    // first takes the bytes still arriving), so the bound is what the proxy forwarded.
    const offsets = await offsetsOf(B.name)
    const from = offsets.at(-1)
    assert(offsets.length === 2 && from > B.size / 8 && reached !== null && from <= reached,
      `appends began at ${offsets}; ${atPause} sent at the pause, ${reached} bytes forwarded when the resume began`)
    result.files[B.name] = { ms: Date.now() - t0, sent_by_the_page_at_pause: atPause, forwarded_at_resume: reached, append_offsets: offsets }
  }],
  [`${C.name}: a reload in the middle offers to continue; choosing the same file continues it`, async () => {
    const t0 = Date.now()
    await page.locator('#pick').setInputFiles(C.path)
    await waitFor(async () => (await sentOf(C.name)) > C.size / 3, `${C.name} past a third`, { ms: 60000, every: 20 })
    await page.reload()
    await waitFor(async () => (await page.locator('#folder').getAttribute('data-auth')) === 'ok', 'signed in again from this tab')
    await until(C.name, 'unfinished', 10000)
    await waitFor(async () => (await sentOf(C.name)) > 0, 'the offset the server holds')
    const offered = await sentOf(C.name)
    assert(await page.getByRole('button', { name: `Choose the file again (${C.name})` }).isVisible(), 'a button to choose it')
    await page.locator('#pick').setInputFiles(C.path)
    await until(C.name, 'done', 120000)
    assertEq(await item(C.name).count(), 1, 'the offer became the upload')
    const from = (await offsetsOf(C.name)).at(-1)
    assertEq(from, offered, 'continued from the offset the server held')
    result.files[C.name] = { ms: Date.now() - t0, offered_after_reload: offered, continued_from: from }
  }],
  [`${D.name}: the browser goes offline in the middle, then online: the upload finishes`, async () => {
    const t0 = Date.now()
    await page.locator('#pick').setInputFiles(D.path)
    await waitFor(async () => (await sentOf(D.name)) > D.size / 3, `${D.name} past a third`, { ms: 60000, every: 20 })
    // The network goes away: open connections die (the proxy cuts them) and new ones fail.
    await page.context().setOffline(true)
    proxy.cutNow()
    await waitFor(async () => (await stateOf(D.name)) === 'failed', `${D.name} to stop while offline`, { ms: 20000, every: 50 })
    const failedAt = await sentOf(D.name)
    await page.context().setOffline(false)
    await until(D.name, 'done', 120000)
    result.files[D.name] = { ms: Date.now() - t0, sent_by_the_page_when_offline: failedAt, append_offsets: await offsetsOf(D.name) }
  }],
  ['a file dropped on the page is uploaded too', async () => {
    await page.evaluate((name) => {
      const transfer = new DataTransfer()
      transfer.items.add(new File(['dropped on the page\n'.repeat(1000)], name, { type: 'text/plain' }))
      document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }))
    }, DROPPED)
    await until(DROPPED, 'done', 30000)
  }],
  ['a file written elsewhere appears in the listing by itself (the page watches the folder)', async () => {
    const path = '/up/written-elsewhere.txt'
    const res = await fetch(base + path, { method: 'PUT', body: 'from curl, say', headers: { Authorization: `Bearer ${token}` } })
    assert(res.ok, `PUT ${path}: ${res.status}`)
    await waitFor(async () => (await page.locator('#listing tbody tr').allInnerTexts()).some((r) => r.startsWith('written-elsewhere.txt')),
      'the new row without a reload', { ms: 10000 })
  }],
  ['the listing shows every file, by the token that wrote it', async () => {
    const names = [A.name, B.name, C.name, D.name, DROPPED]
    await waitFor(async () => {
      const rows = await page.locator('#listing tbody tr').allInnerTexts()
      return names.every((n) => rows.some((r) => r.startsWith(n) && r.includes('page uploads')))
    }, 'all five files in the listing', { ms: 10000 })
    const rows = await page.locator('#listing tbody tr').allInnerTexts()
    assert(rows.some((r) => r.startsWith(A.name) && r.includes('40.0 MiB')), rows.join('\n'))
    const link = page.locator('#listing a', { hasText: DROPPED })
    assertEq(await link.getAttribute('href'), 'dropped%20note%20%C3%A9.txt', 'the link to the dropped file')
    if (shot) await page.screenshot({ path: shot, fullPage: true })
  }],
  ['close', async () => {
    await browser.close()
    proxy.close()
    console.log('RESULT ' + JSON.stringify(result))
  }],
])
