// Stock Uppy (the `uppy` 6.0.1 bundle from npm: Core + AwsS3 6.1.0, unmodified) in a real
// browser (Debian's Chromium, playwright-core), uploading straight to the object store through
// Plait's Companion-compatible routes: `companionEndpoint` is the absolute URL of a grant this
// script asks Plait for with a token that may write the folder (Uppy's own calls carry none: the
// grant's URL is the capability), `shouldUseMultipart: true`. Only while one upload attempt runs,
// a Playwright route alters part PUTs (the timings of the retries are the browser's own). The
// page comes from a server of this script (another origin than Plait's and the bucket's). Plait is reached through a TCP proxy that
// counts the bytes the browser sends it (cut_proxy.mjs, never armed); the parts go to the bucket.
//   - file A: the first part's URL is tampered by a Playwright route; the bucket refuses it
//     (403), AwsS3 does not retry a 4xx, the file fails; `uppy.retryAll()`, as a user pressing
//     retry, lists the parts the bucket holds, signs the missing ones again, and completes;
//   - file B: part 2's PUT is held back 3 s by the route, past its URL's lifetime (the server
//     runs with --direct-part-url-secs 2); the bucket refuses it (403); `retryAll()` goes on
//     from the parts the bucket holds (part 1 is not sent again) and completes.
// The Rust test (tests/it/uploads_browser_s3.rs) made the files and checks the committed bytes.
//
// usage: node uppy_s3.mjs http://HOST:PORT TOKEN FILE_A FILE_B FOLDER
//   Prints `RESULT {json}` last.

import http from 'node:http'
import { readFileSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { startCutProxy } from './cut_proxy.mjs'
import { baseUrlFromArgv, hardTimeout, within, assert, assertEq, runSteps } from './lib.mjs'

const base = baseUrlFromArgv()
const [, , , token, fileA, fileB, folder] = process.argv
hardTimeout(200000, 'uppy_s3')
const dist = join(dirname(fileURLToPath(import.meta.url)), 'node_modules/uppy/dist')
const PART = 5 << 20
const HOLD_MS = 3000

const PAGE = `<!doctype html><meta charset=utf-8><title>Uppy straight to S3 through Plait</title>
<input type=file id=pick aria-label="file">
<script type=module>
  import { Uppy, AwsS3 } from './uppy.min.mjs'
  window.setup = (companionEndpoint) => {
    const uppy = new Uppy({ autoProceed: false })
    uppy.use(AwsS3, { companionEndpoint, shouldUseMultipart: true })
    window.errors = []
    window.parts = []
    uppy.on('upload-error', (file, error) => window.errors.push(file.name + ': ' + String(error?.message ?? error)))
    uppy.on('s3-multipart:part-uploaded', (file, part) => window.parts.push([file.name, part.PartNumber]))
    document.getElementById('pick').onchange = (e) => {
      for (const f of e.target.files) uppy.addFile({ name: f.name, type: f.type, data: f })
    }
    window.uppy = uppy
  }
  window.outcome = (r) => ({
    successful: (r?.successful ?? []).map((f) => [f.name, f.response?.body?.location]),
    failed: (r?.failed ?? []).map((f) => [f.name, String(f.error)]),
  })
</script>`
const files = { '/': [PAGE, 'text/html'], '/uppy.min.mjs': [null, 'text/javascript'] }

let browser, context, page, proxy, pages
const result = {}
/** Every part PUT answered: {file (the upload's key), part, status, at}. */
const answers = []
/** What the route does with part PUTs: null (pass), `tamper-first`, `hold-part-2`. */
let mode = null
let tampered = null

const partOf = (url) => Number(new URL(url).searchParams.get('partNumber'))

async function onPut(route) {
  const req = route.request()
  if (req.method() !== 'PUT' || mode === null) return route.continue()
  const url = new URL(req.url())
  if (mode === 'tamper-first') {
    mode = null
    tampered = partOf(url.href)
    const sig = url.searchParams.get('X-Amz-Signature')
    url.searchParams.set('X-Amz-Signature', (sig[0] === '0' ? '1' : '0') + sig.slice(1))
    return route.continue({ url: url.href })
  }
  if (mode === 'hold-part-2' && partOf(url.href) === 2) {
    mode = null
    // Past the URL's lifetime (2 s): the bucket must refuse it when it arrives.
    await new Promise((resolve) => setTimeout(resolve, HOLD_MS))
    return route.continue()
  }
  return route.continue()
}

/** The route's match: URLs signed for the bucket (part PUTs). */
const signedPut = (url) => url.searchParams.has('X-Amz-Signature')

/**
 * Adds `path` to Uppy (alone) and uploads it with the route altering its part PUTs as `how`
 * says; resolves to the outcome of `uppy.upload()`. The route is there only for this attempt.
 */
async function upload(path, how) {
  await page.evaluate(() => window.uppy.clear())
  await page.locator('#pick').setInputFiles(path)
  mode = how
  await context.route(signedPut, onPut)
  try {
    return await within(page.evaluate(async () => window.outcome(await window.uppy.upload())), 90000, `Uppy to upload ${basename(path)}`)
  } finally {
    await context.unroute(signedPut, onPut)
  }
}

const retryAll = () => within(page.evaluate(async () => window.outcome(await window.uppy.retryAll())), 90000, 'uppy.retryAll()')

await runSteps('uppy_s3', [
  ['proxy, page server, a grant from Plait, Chromium; Uppy with Core + AwsS3 (companionEndpoint)', async () => {
    proxy = await startCutProxy(new URL(base))
    pages = http.createServer((req, res) => {
      const found = files[req.url]
      if (!found) return res.writeHead(404).end()
      res.writeHead(200, { 'content-type': found[1] }).end(found[0] ?? readFileSync(join(dist, 'uppy.min.mjs')))
    })
    await new Promise((resolve) => pages.listen(0, '127.0.0.1', resolve))
    const ask = (f, headers = {}) => fetch(`${proxy.url}/.plait/direct`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ folder: f }),
    })
    const bearer = { Authorization: `Bearer ${token}` }
    assertEq((await ask(folder)).status, 401, 'a grant without a token')
    assertEq((await ask('/elsewhere/', bearer)).status, 403, 'a grant for a folder the token may not write')
    const granted = await ask(folder, bearer)
    assertEq(granted.status, 201, 'a grant')
    const { endpoint } = await granted.json()
    result.grant_endpoint = endpoint.replace(/[0-9a-f]{32}/, '<grant>')
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] })
    context = await browser.newContext()
    page = await context.newPage()
    page.on('pageerror', (e) => console.error('page error:', e))
    // How long each completion took (the server reads the object into chunks before answering).
    page.on('requestfinished', (req) => {
      if (req.method() === 'POST' && req.url().includes('/complete?')) (result.complete_ms ??= []).push(Math.round(req.timing().responseEnd))
    })
    page.on('response', (res) => {
      const req = res.request()
      if (req.method() === 'PUT' && req.url().includes('X-Amz-Signature')) {
        answers.push({ key: new URL(req.url()).pathname.split('/').pop(), part: partOf(req.url()), status: res.status(), at: Date.now() })
      }
    })
    await page.goto(`http://127.0.0.1:${pages.address().port}/`)
    await page.waitForFunction(() => typeof window.setup === 'function', null, { timeout: 20000 })
    await page.evaluate((ep) => window.setup(ep), proxy.url + endpoint)
  }],
  [`${basename(fileA)}: the first part URL, tampered, is refused by the bucket (403); retryAll() completes it`, async () => {
    const size = statSync(fileA).size
    const first = await upload(fileA, 'tamper-first')
    assertEq(first.successful.length, 0, 'nothing uploaded with a refused part')
    assertEq(first.failed.map((f) => f[0]), [basename(fileA)], `the file failed: ${JSON.stringify(first)}`)
    const refused = answers.filter((a) => a.status === 403)
    assertEq(refused.map((a) => a.part), [tampered], `the bucket refused the tampered URL: ${JSON.stringify(answers)}`)
    const key = refused[0].key
    const t0 = Date.now()
    const again = await retryAll()
    const ms = Date.now() - t0
    assertEq(again.failed, [], 'nothing failed on retry')
    assertEq(again.successful, [[basename(fileA), `${folder}${basename(fileA)}`]], 'retryAll() completed it, at its path in the folder')
    const sent = answers.filter((a) => a.key === key && a.status === 200).map((a) => a.part).sort((a, b) => a - b)
    assertEq(sent, Array.from({ length: Math.ceil(size / PART) }, (_, i) => i + 1), 'every part, once')
    result.a = { file: basename(fileA), size, tampered_part: tampered, refused: refused.map((a) => a.status), retry_ms: ms, errors: await page.evaluate(() => window.errors) }
  }],
  [`${basename(fileB)}: part 2 held ${HOLD_MS} ms, past its URL's 2 s, is refused (403); retryAll() goes on from the parts the bucket holds`, async () => {
    const size = statSync(fileB).size
    const before = answers.length
    const first = await upload(fileB, 'hold-part-2')
    assertEq(first.failed.map((f) => f[0]), [basename(fileB)], `the file failed: ${JSON.stringify(first)}`)
    const mine = () => answers.slice(before)
    const refused = mine().filter((a) => a.status === 403)
    assertEq(refused.map((a) => a.part), [2], `the bucket refused the expired URL of part 2: ${JSON.stringify(mine())}`)
    assertEq(mine().filter((a) => a.status === 200).map((a) => a.part), [1], 'part 1 went in before')
    const at = answers.length
    const t0 = Date.now()
    const again = await retryAll()
    const ms = Date.now() - t0
    assertEq(again.successful.map((f) => f[0]), [basename(fileB)], `retryAll() completed it: ${JSON.stringify(again)}`)
    const resent = answers.slice(at).filter((a) => a.status === 200).map((a) => a.part).sort((a, b) => a - b)
    const parts = Math.ceil(size / PART)
    assertEq(resent, Array.from({ length: parts - 1 }, (_, i) => i + 2), 'only the parts the bucket lacked were sent again')
    result.b = { file: basename(fileB), size, refused: refused.map((a) => a.status), retry_ms: ms, parts_sent_after_retry: resent.length }
  }],
  ['the bytes went to the bucket, not through Plait', async () => {
    const total = statSync(fileA).size + statSync(fileB).size
    result.bytes_to_plait = proxy.forwarded()
    result.file_bytes = total
    assert(proxy.forwarded() < total / 20, `the browser sent ${proxy.forwarded()} bytes to Plait for ${total} bytes of files`)
  }],
  ['close', async () => {
    await browser.close()
    proxy.close()
    pages.close()
    console.log('RESULT ' + JSON.stringify(result))
  }],
])
