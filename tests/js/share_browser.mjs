// Share links in a real browser (Debian's Chromium, playwright-core), on a server that
// requires tokens: somebody with no account and no headers opens a write link and edits,
// somebody else watches through a subscribe link, and the document's own URL stays closed
// to both. Then the write link is revoked (by the Rust test, told through stdin) and the
// page that used it can no longer write.
//
// usage: node share_browser.mjs http://HOST:PORT WRITE_HREF WATCH_HREF DOC_PATH
// The script prints "READY-TO-REVOKE" and waits for a line on stdin before the last step.

import { chromium } from 'playwright-core'
import { createInterface } from 'node:readline'
import { baseUrlFromArgv, hardTimeout, waitFor, assert, assertEq, eventuallyEq, runSteps } from './lib.mjs'

const base = baseUrlFromArgv()
const [writeUrl, watchUrl, docUrl] = process.argv.slice(3, 6).map((p) => base + p)
hardTimeout(120000, 'share_browser')

const plain = { headers: { Accept: 'text/plain' } }
const linkText = async () => (await fetch(writeUrl, plain)).text()
const textOf = (page) => page.locator('#text').inputValue()
const statusOf = (page) => page.locator('#status').getAttribute('data-status')
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()

let browser, writer, watcher

async function open(url) {
  const ctx = await browser.newContext()
  const page = await ctx.newPage()
  page.on('pageerror', (e) => console.error('page error:', e))
  await page.goto(url)
  await waitFor(async () => (await statusOf(page)) === 'connected', `the editor on ${url} to connect`)
  return page
}

await runSteps('share_browser', [
  ['launch Chromium', async () => {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] })
  }],
  ['the document itself needs a token; its links do not', async () => {
    assertEq((await fetch(docUrl, plain)).status, 401, 'GET of the document without a token')
    assertEq((await fetch(watchUrl, plain)).status, 200, 'GET through the watch link')
    assertEq(await linkText(), 'shared', 'text through the write link')
  }],
  ['a browser opens each link and gets the live editor', async () => {
    writer = await open(writeUrl)
    watcher = await open(watchUrl)
    await eventuallyEq(() => textOf(writer), 'shared', 'text on the write-link page')
    await eventuallyEq(() => textOf(watcher), 'shared', 'text on the watch-link page')
    // The server says which links may write (`Editable`), and the editor follows it.
    assertEq((await fetch(watchUrl, plain)).headers.get('editable'), 'false', 'Editable through the watch link')
    assertEq((await fetch(writeUrl, plain)).headers.get('editable'), 'true', 'Editable through the write link')
    const readOnly = (page) => page.locator('#text').evaluate((t) => t.readOnly)
    assertEq(await readOnly(watcher), true, 'the watch-link page is read-only')
    assertEq(await readOnly(writer), false, 'the write-link page is editable')
  }],
  ['typing through the write link saves, and the watcher sees it live', async () => {
    await writer.locator('#text').focus()
    await writer.keyboard.press('End')
    await writer.keyboard.type(' and edited', { delay: 15 })
    await waitFor(async () => (await linkText()) === 'shared and edited', 'the edit to reach the server', { ms: 20000, every: 50 })
    await waitFor(async () => (await textOf(watcher)) === 'shared and edited', 'the watcher page to show it', { ms: 20000, every: 50 })
  }],
  ['the watch link cannot write', async () => {
    const put = await fetch(watchUrl, { method: 'PUT', body: 'vandalised' })
    assertEq(put.status, 403, 'PUT through the watch link')
    assertEq(await linkText(), 'shared and edited', 'text after the refused PUT')
  }],
  ['after revocation the write link is dead, even for the open page', async () => {
    console.log('READY-TO-REVOKE')
    const { done } = await lines.next()
    assert(!done, 'the test closed stdin instead of revoking')
    assertEq((await fetch(writeUrl, plain)).status, 403, 'GET through the revoked link')
    await writer.locator('#text').focus()
    await writer.keyboard.type('!', { delay: 15 })
    // The page's subscription ended and its PUTs are refused: the text never changes.
    await waitFor(async () => (await statusOf(writer)) !== 'connected', 'the revoked page to lose its connection', { ms: 5000, every: 50 })
    assertEq(await (await fetch(watchUrl, plain)).text(), 'shared and edited', 'text after the revoked page typed')
    await browser.close()
  }],
])
