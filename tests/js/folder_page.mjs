// A folder as a page in a real browser (Debian's Chromium, playwright-core): the HTML listing a
// browser gets for `GET /notes/` shows each document, file and sub-folder with its kind and
// size; a document's link opens the live editor on it, a file's link serves the file, a
// sub-folder's link its own listing, and "parent folder" goes back up.
//
// usage: node folder_page.mjs http://HOST:PORT SCREENSHOT.png

import { chromium } from 'playwright-core'
import { baseUrlFromArgv, hardTimeout, waitFor, assert, assertEq, eventuallyEq, randomId, runSteps } from './lib.mjs'

const base = baseUrlFromArgv()
const shot = process.argv[3]
hardTimeout(60000, 'folder_page')
const folder = `/pages-${randomId()}/`
const put = async (path, body, headers = {}) => {
  const r = await fetch(base + path, { method: 'PUT', body, headers })
  assert(r.ok, `PUT ${path}: ${r.status}`)
}

let browser, page

await runSteps('folder_page', [
  ['write a document, a file and a document in a sub-folder', async () => {
    await put(folder + 'notes.txt', 'hello from the folder page')
    await put(folder + 'pixel.png', new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]), { 'Content-Type': 'image/png' })
    await put(folder + 'sub/deeper', 'below')
  }],
  ['the folder is a page listing all three', async () => {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] })
    page = await (await browser.newContext()).newPage()
    page.on('pageerror', (e) => console.error('page error:', e))
    const res = await page.goto(base + folder)
    assertEq(res.status(), 200, 'the folder page')
    assert(res.headers()['content-type'].startsWith('text/html'), 'an HTML page')
    const rows = await page.locator('tbody tr').allInnerTexts()
    assertEq(rows.length, 3, `rows: ${JSON.stringify(rows)}`)
    assert(rows[0].startsWith('notes.txt') && rows[0].includes('text') && rows[0].includes('26 chars'), rows[0])
    assert(rows[1].startsWith('pixel.png') && rows[1].includes('image/png') && rows[1].includes('11 B'), rows[1])
    assert(rows[2].startsWith('sub/') && rows[2].includes('folder'), rows[2])
    if (shot) await page.screenshot({ path: shot, fullPage: true })
  }],
  ['a sub-folder link opens its listing, and the parent link comes back', async () => {
    await page.click('a[href="sub/"]')
    await waitFor(async () => page.url() === base + folder + 'sub/', 'the sub-folder page')
    const rows = await page.locator('tbody tr').allInnerTexts()
    assertEq(rows.length, 1, `rows: ${JSON.stringify(rows)}`)
    assert(rows[0].startsWith('deeper'), rows[0])
    await page.click('text=parent folder')
    await waitFor(async () => page.url() === base + folder, 'back to the folder page')
  }],
  ['a file link serves the file', async () => {
    const [res] = await Promise.all([page.waitForResponse((r) => r.url() === base + folder + 'pixel.png'), page.click('a[href="pixel.png"]')])
    assertEq(res.status(), 200, 'the file')
    assertEq(res.headers()['content-type'], 'image/png', 'its type')
    await page.goBack()
  }],
  ['a document link opens the live editor on it', async () => {
    await page.click('a[href="notes.txt"]')
    await waitFor(async () => page.url() === base + folder + 'notes.txt', 'the editor page')
    await waitFor(async () => (await page.locator('#status').getAttribute('data-status')) === 'connected', 'the editor to connect')
    await eventuallyEq(() => page.locator('#text').inputValue(), 'hello from the folder page', 'the editor shows the document')
  }],
  ['close', async () => {
    await browser.close()
  }],
])
