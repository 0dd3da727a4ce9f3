// One upload with tus-js-client 4.3.1 from Node, unmodified, as the upload tests
// (tests/it/tus_clients.rs) drive it against Plait and against the reference @tus/server. The
// client resumes after a cut connection by itself, through its own retries (`retryDelays`):
// a HEAD for the offset, then a PATCH from there.
//
//   node tus_upload.mjs '<json>'        or        node tus_upload.mjs <endpoint> <file> [protocol]
//
// The JSON object: endpoint (the creation URL), file (a path), protocol (`tus-v1`, default;
// `ietf-draft-03`; `ietf-draft-05`), chunkSize (bytes; default Infinity, the whole file in one
// streaming PATCH), parallelUploads (default 1; more uses the concatenation extension),
// metadata (object of strings), headers (object), retryDelays (ms, default [0, 200, 500, 1000,
// 2000]), uploadUrl (resume this upload instead of creating one), timeoutMs (default 120000).
//
// It prints one JSON line on stdout: {ok, url, bytes, elapsedMs, retries, resumeOffsets,
// ackedOffsets, requests, error?} where resumeOffsets are the `Upload-Offset`s of the HEAD
// answers (where the client resumed from), ackedOffsets those of PATCH answers (what the
// server acknowledged), requests a log of the first 200 answers in order, as `METHOD status`
// and ` @offset` when the answer has an `Upload-Offset`. Exits 0 only on success.
import fs from 'node:fs'
import * as tus from 'tus-js-client'

function parseArgs(argv) {
  if (argv.length === 1 && argv[0].trim().startsWith('{')) return JSON.parse(argv[0])
  const [endpoint, file, protocol] = argv
  if (!endpoint || !file) {
    console.error('usage: node tus_upload.mjs <json> | <endpoint> <file> [protocol]')
    process.exit(2)
  }
  return { endpoint, file, protocol }
}

const opts = parseArgs(process.argv.slice(2))
const size = fs.statSync(opts.file).size
const started = performance.now()
const report = { ok: false, url: null, bytes: size, elapsedMs: 0, retries: 0, resumeOffsets: [], ackedOffsets: [], requests: [] }

function finish(error) {
  report.elapsedMs = Math.round(performance.now() - started)
  report.url = upload.url ?? null
  if (error) report.error = String(error && error.message ? error.message : error).slice(0, 2000)
  process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(report.ok ? 0 : 1))
}

const timer = setTimeout(() => finish(new Error(`timed out after ${opts.timeoutMs ?? 120000} ms`)), opts.timeoutMs ?? 120000)

// The default retry rule of tus-js-client (5xx, 409, 423 and network errors), counted.
function shouldRetry(err) {
  const status = err.originalResponse ? err.originalResponse.getStatus() : 0
  const retry = !(status >= 400 && status < 500) || status === 409 || status === 423
  if (retry) report.retries += 1
  if (report.retries <= 10) console.error(`tus_upload: ${retry ? 'retrying' : 'giving up'} after ${err.message.split('\n')[0]}`)
  return retry
}

const upload = new tus.Upload(fs.createReadStream(opts.file), {
  endpoint: opts.endpoint,
  uploadUrl: opts.uploadUrl ?? null,
  protocol: opts.protocol ?? 'tus-v1',
  chunkSize: opts.chunkSize ?? Infinity,
  parallelUploads: opts.parallelUploads ?? 1,
  metadata: opts.metadata ?? {},
  headers: opts.headers ?? {},
  retryDelays: opts.retryDelays ?? [0, 200, 500, 1000, 2000],
  onShouldRetry: shouldRetry,
  // A fresh upload each run: nothing is looked up in or kept in a URL store.
  storeFingerprintForResuming: false,
  removeFingerprintOnSuccess: false,
  onAfterResponse(req, res) {
    const method = req.getMethod()
    const status = res.getStatus()
    const offset = res.getHeader('Upload-Offset')
    // The log keeps the first 200 requests (a client retrying against a refusal makes many).
    if (report.requests.length < 200) report.requests.push(`${method} ${status}${offset != null ? ` @${offset}` : ''}`)
    if (offset != null && status < 300) {
      if (method === 'HEAD') report.resumeOffsets.push(Number(offset))
      if (method === 'PATCH' || method === 'POST') report.ackedOffsets.push(Number(offset))
    }
  },
  onError(err) {
    clearTimeout(timer)
    finish(err)
  },
  onSuccess() {
    clearTimeout(timer)
    report.ok = true
    finish()
  },
})
upload.start()
