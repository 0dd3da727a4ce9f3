// The folder page uploading straight to the object store, in a real browser (Debian's
// Chromium, playwright-core), on a server with --blob-store (a SeaweedFS the Rust test started)
// and --direct-uploads, and access control on (a token for /up/, pasted into the page's sign-in
// form: the page asks Plait for the grant with it). The page is opened through a TCP proxy in front of Plait only
// (cut_proxy.mjs, never armed here: it counts the bytes the browser sends to Plait), while the
// parts go from the browser to the bucket on the URLs Plait signs. One 40 MiB file, dropped on
// the page, meets on its way:
//   - a tampered part URL: the first part PUT has its signature altered by a Playwright route;
//     the bucket refuses it (403) and the page signs the part again and sends it;
//   - Pause (the parts in flight stop) and Resume, which asks the bucket which parts it holds;
//   - the browser going offline mid-upload (context.setOffline; the PUTs held at that moment
//     die as in an outage) and back online: the page retries with backoff and goes on;
//   - a reload mid-upload: the page offers to continue; the same file chosen again sends only
//     the parts the bucket does not hold (checked against the bucket's own list, read before
//     the reload, and the PUTs the browser made after it).
// "Mid-upload" is made exact by the route too: it lets a given number of part PUTs through and
// holds the next ones until the test moves on. The Rust test (tests/it/uploads_browser_s3.rs)
// made the file and checks the committed bytes and Repr-Digest.
//
// usage: node upload_page_s3.mjs http://HOST:PORT TOKEN FILE SCREENSHOT.png
//   Prints `RESULT {json}` last.

import { statSync } from 'node:fs'
import { basename } from 'node:path'
import { chromium } from 'playwright-core'
import { startCutProxy } from './cut_proxy.mjs'
import { baseUrlFromArgv, hardTimeout, waitFor, assert, assertEq, runSteps } from './lib.mjs'

const base = baseUrlFromArgv()
const [, , , token, path, shot] = process.argv
hardTimeout(240000, 'upload_page_s3')
const F = { name: basename(path), path, size: statSync(path).size }
const PART = 5 << 20
const PARTS = Math.ceil(F.size / PART)
const result = {}

let browser, context, page, proxy
const data = async (key) =>
  page.evaluate(([n, k]) => document.querySelector(`#uploads li[data-name="${n}"]`)?.dataset[k], [F.name, key])
const list = async (key) => ((await data(key)) ?? '').split(',').filter(Boolean)
const stateOf = () => data('state')
const until = (state, ms) => waitFor(async () => {
  const s = await stateOf()
  if (s === 'failed') throw new Error(`${F.name} failed: ${await page.locator(`#uploads li[data-name="${F.name}"] .why`).textContent()}`)
  return s === state
}, `${F.name} to be ${state}`, { ms, every: 50 })

// The route over part PUTs (URLs signed for the bucket): what it does with the next one.
//   tamper: the very first gets its signature altered;
//   budget: that many more pass, then `hold` (kept until the test acts);
//   offline: refused as by a dead network.
const net = { tampered: null, budget: Infinity, passed: 0, held: [], offline: false, phase: 'drop' }
/** Every part PUT answered, as the browser saw it: {part, status, phase}. */
const answers = []
const failed = []
/** The route's match: URLs signed for the bucket (part PUTs). */
const signedPut = (url) => url.searchParams.has('X-Amz-Signature')
const partOf = (url) => Number(new URL(url).searchParams.get('partNumber'))

async function onPut(route) {
  const req = route.request()
  if (req.method() !== 'PUT') return route.continue()
  const url = new URL(req.url())
  if (net.tampered === null) {
    net.tampered = partOf(url.href)
    const sig = url.searchParams.get('X-Amz-Signature')
    url.searchParams.set('X-Amz-Signature', (sig[0] === '0' ? '1' : '0') + sig.slice(1))
    return route.continue({ url: url.href })
  }
  if (net.offline) return route.abort('internetdisconnected')
  if (net.budget <= 0) {
    net.held.push(route)
    return
  }
  net.budget--
  net.passed++
  return route.continue()
}

/** Lets `n` more part PUTs through, holding the ones after. */
const allow = (n) => { net.budget = n }
/** The PUTs held so far die as in an outage (or, after a reload, are simply dropped). */
async function dropHeld(how = 'internetdisconnected') {
  const held = net.held.splice(0)
  await Promise.all(held.map((r) => r.abort(how).catch(() => {})))
  return held.length
}

await runSteps('upload_page_s3', [
  ['the folder page says it uploads straight to the bucket, and may connect there', async () => {
    proxy = await startCutProxy(new URL(base))
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] })
    context = await browser.newContext()
    page = await context.newPage()
    page.on('pageerror', (e) => console.error('page error:', e))
    page.on('response', (res) => {
      const req = res.request()
      if (req.method() === 'PUT' && req.url().includes('X-Amz-Signature')) answers.push({ part: partOf(req.url()), status: res.status(), phase: net.phase })
    })
    // How long each completion took (the server reads the object into chunks before answering).
    page.on('requestfinished', (req) => {
      if (req.method() === 'POST' && req.url().includes('/complete?')) (result.complete_ms ??= []).push(Math.round(req.timing().responseEnd))
    })
    page.on('requestfailed', (req) => {
      if (req.method() === 'PUT' && req.url().includes('X-Amz-Signature')) failed.push({ part: partOf(req.url()), why: req.failure()?.errorText, phase: net.phase })
    })
    const res = await page.goto(proxy.url + '/up/')
    assertEq(res.status(), 401, 'the folder page without a token')
    assertEq(await page.locator('#folder').getAttribute('data-direct'), 'on', 'data-direct')
    const csp = res.headers()['content-security-policy']
    assert(/connect-src 'self' http:\/\/127\.0\.0\.1:\d+;/.test(csp), `the page may connect to the bucket: ${csp}`)
    await page.getByLabel('Access token').fill(token)
    await page.getByRole('button', { name: 'Use this token' }).click()
    await waitFor(async () => (await page.locator('#folder').getAttribute('data-auth')) === 'ok', 'the listing after signing in')
    await context.route(signedPut, onPut)
  }],
  [`${F.name} (${PARTS} parts) is dropped; its first part URL, tampered, is refused by the bucket (403), signed again and sent`, async () => {
    allow(3)
    await page.evaluate(() => {
      const input = Object.assign(document.createElement('input'), { type: 'file', id: 'drop-source', hidden: true })
      document.body.append(input)
    })
    await page.locator('#drop-source').setInputFiles(F.path)
    await page.evaluate(() => {
      const transfer = new DataTransfer()
      transfer.items.add(document.getElementById('drop-source').files[0])
      document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }))
    })
    await waitFor(async () => (await list('parts')).length === 3 && net.held.length > 0, 'three parts in the bucket, the next held', { ms: 60000, every: 20 })
    const refusal = answers.find((a) => a.part === net.tampered && a.status === 403)
    assert(refusal, `the bucket refused the tampered URL of part ${net.tampered}: ${JSON.stringify(answers)}`)
    assert((await list('refused')).includes(`${net.tampered}:403`), 'the page saw the 403')
    assertEq(await stateOf(), 'uploading', 'the upload goes on')
    result.tampered_part = net.tampered
  }],
  ['Pause stops the parts in flight; Resume goes on from the parts the bucket holds', async () => {
    net.phase = 'pause'
    const done = (await list('parts')).map(Number).sort((x, y) => x - y)
    await page.getByRole('button', { name: `Pause (${F.name})` }).click()
    await until('paused', 5000)
    await dropHeld('aborted') // the page gave them up
    await page.getByRole('button', { name: `Resume (${F.name})` }).click()
    await waitFor(async () => (await stateOf()) === 'uploading' && (await data('held')) !== undefined && net.held.length > 0,
      'the resumed upload, its next parts held', { ms: 20000, every: 20 })
    assertEq((await list('held')).map(Number).sort((x, y) => x - y), done, 'Resume asked the bucket, which holds the parts sent')
  }],
  ['mid-upload the browser goes offline: the page retries with backoff; back online it goes on', async () => {
    net.phase = 'offline'
    const retriesBefore = Number((await data('retries')) ?? 0)
    await context.setOffline(true)
    net.offline = true
    const dropped = await dropHeld()
    await waitFor(async () => (await data('retrying'))?.includes('offline') && Number(await data('retries')) > retriesBefore,
      'the page to wait for the network', { ms: 20000, every: 50 })
    assertEq(await stateOf(), 'uploading', 'offline is a pause of the network, not a failure of the upload')
    const sentOffline = Number(await data('sent'))
    net.phase = 'online'
    allow(2)
    net.offline = false
    await context.setOffline(false)
    await waitFor(async () => (await list('parts')).length === 5 && net.held.length > 0, 'two more parts after coming back', { ms: 60000, every: 20 })
    result.offline = { puts_cut: dropped, retries: Number(await data('retries')) - retriesBefore, sent_when_offline: sentOffline }
  }],
  ['a reload mid-upload offers to continue; the same file sends only the parts the bucket lacks', async () => {
    const record = await page.evaluate(() => {
      for (let i = 0; i < localStorage.length; i++) {
        const k = localStorage.key(i)
        if (k.startsWith('plait-direct:')) return JSON.parse(localStorage.getItem(k))
      }
      return null
    })
    assert(record?.uploadId && record.key && record.endpoint, `the page keeps its upload: ${JSON.stringify(record)}`)
    assertEq([record.name, record.size], [F.name, F.size], 'the record names the file')
    // What the bucket holds, asked by this script (straight to Plait, not through the proxy).
    const ep = new URL(new URL(record.endpoint).pathname, base).href
    const listed = await (await fetch(`${ep}/s3/multipart/${encodeURIComponent(record.uploadId)}?key=${record.key}`)).json()
    const heldBefore = listed.map((p) => p.PartNumber).sort((a, b) => a - b)
    assertEq(heldBefore.length, 5, `the bucket holds the five parts sent: ${JSON.stringify(listed)}`)
    net.phase = 'reload'
    const reloading = page.reload()
    await dropHeld('aborted')
    await reloading
    await waitFor(async () => (await page.locator('#folder').getAttribute('data-auth')) === 'ok', 'signed in again from this tab')
    // From here on nothing is held or altered: the route goes (the figures are the browser's own).
    await context.unroute(signedPut, onPut)
    await until('unfinished', 10000)
    await waitFor(async () => Number(await data('sent')) === 5 * PART, 'the bytes the bucket holds, offered', { ms: 10000 })
    assert(await page.getByRole('button', { name: `Choose the file again (${F.name})` }).isVisible(), 'a button to choose it')
    net.phase = 'after reload'
    const t0 = Date.now()
    await page.locator('#pick').setInputFiles(F.path)
    await until('done', 120000)
    const ms = Date.now() - t0
    assertEq((await list('held')).map(Number).sort((a, b) => a - b), heldBefore, 'the page went on from the parts the bucket held')
    const after = answers.filter((a) => a.phase === 'after reload' && a.status === 200).map((a) => a.part).sort((a, b) => a - b)
    const missing = Array.from({ length: PARTS }, (_, i) => i + 1).filter((n) => !heldBefore.includes(n))
    assertEq(after, missing, 'after the reload, exactly the missing parts were sent')
    assertEq(await page.locator('#uploads li').count(), 1, 'the offer became the upload')
    result.reload = { held_by_the_bucket: heldBefore, sent_after: after, ms_after_reload: ms }
  }],
  ['the listing shows the file; the bytes went to the bucket, not through Plait', async () => {
    await waitFor(async () => (await page.locator('#listing tbody tr').allInnerTexts()).some((r) => r.startsWith(F.name) && r.includes('40.0 MiB')),
      'the file in the listing', { ms: 10000 })
    const ok = answers.filter((a) => a.status === 200)
    assert(ok.some((a) => a.part === result.tampered_part), `part ${result.tampered_part}, refused once, was sent again`)
    result.part_puts = { ok: ok.length, refused: answers.filter((a) => a.status !== 200), failed: failed.length }
    result.bytes_to_plait = proxy.forwarded()
    result.file_bytes = F.size
    assert(proxy.forwarded() < F.size / 20, `the browser sent ${proxy.forwarded()} bytes to Plait for a ${F.size}-byte file`)
    if (shot) await page.screenshot({ path: shot, fullPage: true })
  }],
  ['close', async () => {
    await browser.close()
    proxy.close()
    console.log('RESULT ' + JSON.stringify(result))
  }],
])
