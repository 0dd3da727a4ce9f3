// Stock Uppy (the `uppy` 6.0.1 bundle from npm: Core + Tus, unmodified) in a real browser
// (Debian's Chromium, playwright-core), uploading to Plait's tus endpoint with a token, through
// a TCP proxy that cuts every connection at half way (cut_proxy.mjs). The page comes from a
// server of this script (another origin than Plait's: every tus request is a CORS request,
// preflights included); Uppy must resume by itself and finish. The Rust test
// (tests/it/uploads_browser.rs) made the file and checks the committed bytes.
//
// usage: node uppy_tus.mjs http://HOST:PORT TOKEN FILE FOLDER
//   Prints `RESULT {json}` last.

import http from 'node:http'
import { readFileSync, statSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { startCutProxy } from './cut_proxy.mjs'
import { baseUrlFromArgv, hardTimeout, within, assert, assertEq, runSteps } from './lib.mjs'

const base = baseUrlFromArgv()
const [, , , token, path, folder] = process.argv
hardTimeout(180000, 'uppy_tus')
const size = statSync(path).size
const dist = join(dirname(fileURLToPath(import.meta.url)), 'node_modules/uppy/dist')

const PAGE = `<!doctype html><meta charset=utf-8><title>Uppy on Plait</title>
<input type=file id=pick aria-label="file">
<script type=module>
  import { Uppy, Tus } from './uppy.min.mjs'
  window.setup = (endpoint, token, folder) => {
    const uppy = new Uppy({ autoProceed: false })
    window.offsets = []
    uppy.use(Tus, {
      endpoint,
      headers: { Authorization: 'Bearer ' + token },
      retryDelays: [0, 1000, 2000, 4000],
      onBeforeRequest: (req) => { if (req.getMethod() === 'PATCH') window.offsets.push(Number(req.getHeader('Upload-Offset'))) },
    })
    uppy.setMeta({ folder })
    window.progress = []
    uppy.on('upload-progress', (file, p) => window.progress.push(p.bytesUploaded))
    document.getElementById('pick').onchange = (e) => {
      for (const f of e.target.files) uppy.addFile({ name: f.name, type: f.type, data: f })
      window.added = uppy.getFiles().length
    }
    window.uppy = uppy
  }
</script>`
const files = { '/': [PAGE, 'text/html'], '/uppy.min.mjs': [null, 'text/javascript'] }

let browser, page, proxy, pages
const result = {}

await runSteps('uppy_tus', [
  ['proxy, page server and Chromium; Uppy with Core + Tus', async () => {
    proxy = await startCutProxy(new URL(base))
    pages = http.createServer((req, res) => {
      const found = files[req.url]
      if (!found) return res.writeHead(404).end()
      res.writeHead(200, { 'content-type': found[1] }).end(found[0] ?? readFileSync(join(dist, 'uppy.min.mjs')))
    })
    await new Promise((resolve) => pages.listen(0, '127.0.0.1', resolve))
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] })
    page = await (await browser.newContext()).newPage()
    page.on('pageerror', (e) => console.error('page error:', e))
    await page.goto(`http://127.0.0.1:${pages.address().port}/`)
    await page.waitForFunction(() => typeof window.setup === 'function', null, { timeout: 20000 })
    await page.evaluate(([e, t, f]) => window.setup(e, t, f), [`${proxy.url}/.plait/uploads/`, token, folder])
    await page.locator('#pick').setInputFiles(path)
    assertEq(await page.evaluate(() => window.added), 1, 'Uppy holds the file')
  }],
  ['the upload is cut at half way and Uppy resumes by itself', async () => {
    const t0 = Date.now()
    const before = proxy.forwarded()
    const cut = proxy.cutAfter(Math.floor(size / 2))
    const done = page.evaluate(async () => {
      const r = await window.uppy.upload()
      return { successful: r.successful.length, failed: r.failed.length, errors: r.failed.map((f) => String(f.error)) }
    })
    await within(cut, 60000, 'the cut at half way')
    const cutAt = Date.now() - t0
    const outcome = await within(done, 120000, 'Uppy to finish')
    assertEq([outcome.successful, outcome.failed], [1, 0], `one file uploaded, none failed: ${outcome.errors}`)
    assertEq(proxy.cuts(), 1, 'the proxy cut once')
    const progress = await page.evaluate(() => window.progress)
    let resent = 0
    for (let i = 1; i < progress.length; i++) if (progress[i] < progress[i - 1]) resent += progress[i - 1] - progress[i]
    const offsets = await page.evaluate(() => window.offsets)
    const resumedAt = offsets.at(-1)
    assert(offsets.length >= 2 && offsets[0] === 0, `appends began at ${offsets}: one before the cut, more after`)
    // The proxy had forwarded half the file; what the server kept of it, less whatever was
    // still in socket buffers (a few MiB on loopback), is where the upload must go on.
    assert(resumedAt >= size / 8, `went on from byte ${resumedAt}: the upload must go on from what the server kept`)
    const uploadUrl = await page.evaluate(() => window.uppy.getFiles()[0].tus?.uploadUrl ?? null)
    assert(uploadUrl?.includes('/.plait/uploads/'), `Uppy knows its upload URL: ${uploadUrl}`)
    Object.assign(result, {
      file: basename(path), ms: Date.now() - t0, cut_at_ms: cutAt, forwarded_at_cut: Math.floor(size / 2),
      append_offsets: offsets, resent_by_uppy: resent,
      proxy_bytes_beyond_the_file: proxy.forwarded() - before - size,
    })
  }],
  ['close', async () => {
    await browser.close()
    proxy.close()
    pages.close()
    console.log('RESULT ' + JSON.stringify(result))
  }],
])
