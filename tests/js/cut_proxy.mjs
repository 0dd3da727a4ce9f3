// A TCP proxy that drops the network under a browser on cue, for the upload tests: armed with
// `cutAfter(n)`, it resets every open connection, both sides (each gets a reset; bytes still in
// flight in socket buffers are lost, as in an outage), as soon as `n` more request bytes
// (browser to server, all connections together) have come through, once; later connections
// pass. It counts the request bytes it forwarded, so a test can tell how many bytes an upload
// cost beyond the file itself (bytes forwarded but lost or not kept, plus request heads).
// Minimal on purpose: it lives beside the browser scripts that drive it.

import net from 'node:net'

/** Starts the proxy on 127.0.0.1 in front of `upstream` (a URL); resolves once listening. */
export async function startCutProxy(upstream) {
  const conns = new Set()
  const state = { forwarded: 0, cutAt: null, cuts: 0, onCut: null, pace: null }

  function cutAll() {
    state.cuts++
    for (const { client, up } of conns) {
      client.resetAndDestroy()
      up.resetAndDestroy()
    }
    conns.clear()
    state.onCut?.()
  }

  const server = net.createServer((client) => {
    const up = net.connect(Number(upstream.port), upstream.hostname)
    const conn = { client, up }
    conns.add(conn)
    const forget = () => conns.delete(conn)
    up.on('error', () => client.destroy())
    client.on('error', () => up.destroy())
    up.on('close', () => { forget(); client.destroy() })
    client.on('close', () => { forget(); up.destroy() })
    up.pipe(client)
    client.on('data', (chunk) => {
      if (state.cutAt != null && state.forwarded + chunk.length >= state.cutAt) {
        const pass = state.cutAt - state.forwarded
        state.forwarded += pass
        state.cutAt = null
        up.write(chunk.subarray(0, pass), cutAll)
        client.pause()
        return
      }
      state.forwarded += chunk.length
      if (state.pace) {
        // A slow link: this connection reads its next bytes once these had time to pass.
        client.pause()
        setTimeout(() => client.resume(), (chunk.length * 1000) / state.pace)
        up.write(chunk)
      } else if (!up.write(chunk)) {
        client.pause()
        up.once('drain', () => client.resume())
      }
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))

  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Request bytes forwarded so far, all connections together. */
    forwarded: () => state.forwarded,
    cuts: () => state.cuts,
    /** Cuts every connection once `bytes` more request bytes have passed; resolves at the cut. */
    cutAfter(bytes) {
      state.cutAt = state.forwarded + bytes
      return new Promise((resolve) => { state.onCut = resolve })
    },
    /** Forwards each connection's request bytes at most this fast (bytes/s; null: no limit). */
    pace: (bytesPerSecond) => { state.pace = bytesPerSecond },
    /** Cuts every connection now. */
    cutNow: () => cutAll(),
    close() {
      for (const { client, up } of conns) {
        client.destroy()
        up.destroy()
      }
      server.close()
    },
  }
}
