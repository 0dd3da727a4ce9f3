// The live editor in a real browser: Debian's Chromium driven by playwright-core.
// Two pages edit one document at the same time and converge to the text GET returns;
// one goes offline, types, comes back and merges; a reload shows the merged text; the
// caret stays in place when a remote edit lands before it. A screenshot is saved.
//
// usage: node editor_browser.mjs http(s)://HOST:PORT /path/to/screenshot.png [h2]
// With `h2`, the pages must have been loaded over HTTP/2 (an HTTPS server with a
// self-signed certificate is accepted; Node's own fetch then needs
// NODE_TLS_REJECT_UNAUTHORIZED=0, which the Rust test sets for this script only).

import { chromium } from 'playwright-core'
import { baseUrlFromArgv, hardTimeout, randomId, waitFor, assert, assertEq, eventuallyEq, runSteps } from './lib.mjs'

const base = baseUrlFromArgv()
const shot = process.argv[3]
const wantH2 = process.argv[4] === 'h2'
hardTimeout(120000, 'editor_browser')

const url = `${base}/editor/${randomId()}`
const serverText = async () => (await fetch(url, { headers: { Accept: 'text/plain' } })).text()
const textOf = (page) => page.locator('#text').inputValue()
const statusOf = (page) => page.locator('#status').getAttribute('data-status')

let browser, ctxA, ctxB, a, b

async function open(ctx) {
  const page = await ctx.newPage()
  page.on('pageerror', (e) => console.error('page error:', e))
  await page.goto(url)
  await waitFor(async () => (await statusOf(page)) === 'connected', 'the editor to connect')
  return page
}

/** Both pages show the same text, all sent, and it is what the server has. */
async function converged(what) {
  return waitFor(async () => {
    const [ta, tb, sa, sb, st] = await Promise.all([textOf(a), textOf(b), statusOf(a), statusOf(b), serverText()])
    return ta === tb && tb === st && sa === 'connected' && sb === 'connected' ? ta : null
  }, what, { ms: 20000, every: 50 })
}

async function typeAt(page, key, text) {
  await page.locator('#text').focus()
  await page.keyboard.press(key) // Home / End (one line of text)
  await page.keyboard.type(text, { delay: 15 })
}

await runSteps('editor_browser', [
  ['launch Chromium', async () => {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox'] })
    ctxA = await browser.newContext({ ignoreHTTPSErrors: true })
    ctxB = await browser.newContext({ ignoreHTTPSErrors: true })
  }],
  ['API clients still get the text, browsers the editor', async () => {
    const put = await fetch(url, { method: 'PUT', body: 'middle' })
    assertEq(put.status, 200, 'PUT status')
    assertEq(await serverText(), 'middle', 'GET with Accept: text/plain')
    const html = await (await fetch(url, { headers: { Accept: 'text/html,*/*;q=0.8' } })).text()
    assert(html.includes('/.plait/client/editor.js'), 'the editor page for Accept: text/html')
  }],
  ['two pages open the document', async () => {
    a = await open(ctxA)
    b = await open(ctxB)
    // "connected" comes with the 209's head; the first update (the text) may land just after.
    await eventuallyEq(() => textOf(a), 'middle', 'page A text')
    await eventuallyEq(() => textOf(b), 'middle', 'page B text')
    if (wantH2) {
      const proto = await a.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol)
      assertEq(proto, 'h2', 'the protocol the page was loaded with')
    }
  }],
  ['both type at the same time and converge', async () => {
    await Promise.all([typeAt(a, 'Home', 'alpha '), typeAt(b, 'End', ' beta')])
    assertEq(await converged('convergence after concurrent typing'), 'alpha middle beta', 'merged text')
  }],
  ['the caret stays put when a remote edit lands before it', async () => {
    await a.locator('#text').focus()
    await a.evaluate(() => document.getElementById('text').setSelectionRange(6, 12)) // "middle"
    await typeAt(b, 'Home', '>> ')
    await converged('convergence after the remote insert')
    const sel = await a.evaluate(() => {
      const t = document.getElementById('text')
      return t.value.slice(t.selectionStart, t.selectionEnd)
    })
    assertEq(sel, 'middle', 'the selection on page A after B inserted before it')
  }],
  ['one page goes offline, types, comes back and merges', async () => {
    await ctxB.setOffline(true)
    await typeAt(b, 'End', ' (offline)')
    await typeAt(a, 'Home', 'online ')
    await waitFor(async () => (await serverText()).startsWith('online '), 'page A to save while B is offline')
    assert(!(await serverText()).includes('(offline)'), 'the offline edit cannot have reached the server yet')
    await ctxB.setOffline(false)
    assertEq(await converged('convergence after coming back online'), 'online >> alpha middle beta (offline)', 'merged text')
  }],
  ['a reload shows the merged text', async () => {
    await b.reload()
    await waitFor(async () => (await statusOf(b)) === 'connected', 'the reloaded editor to connect')
    await eventuallyEq(() => textOf(b), serverText, 'text after reload')
  }],
  ['screenshot', async () => {
    if (shot) await a.screenshot({ path: shot })
    await browser.close()
  }],
])
