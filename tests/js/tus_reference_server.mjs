// The reference tus server of the upload tests (tests/it/tus_clients.rs): @tus/server 2.4.5 with
// its file store (@tus/file-store 2.1.1), unmodified, on 127.0.0.1 at a free port, storing uploads
// under the directory given as the first argument. It prints one line, `LISTENING <port>`, once
// it accepts connections, answers at `/files/`, and stops when its stdin closes (so a test that
// dies takes it along) or on SIGTERM.
//
//   node tus_reference_server.mjs <upload-dir>
import http from 'node:http'
import { Server } from '@tus/server'
import { FileStore } from '@tus/file-store'

const dir = process.argv[2]
if (!dir) {
  console.error('usage: node tus_reference_server.mjs <upload-dir>')
  process.exit(2)
}

const tus = new Server({ path: '/files', datastore: new FileStore({ directory: dir }) })
const server = http.createServer((req, res) => tus.handle(req, res))
server.listen(0, '127.0.0.1', () => {
  console.log(`LISTENING ${server.address().port}`)
})

const stop = () => {
  server.close()
  server.closeAllConnections()
  process.exit(0)
}
process.stdin.on('end', stop)
process.stdin.on('close', stop)
process.stdin.resume()
process.on('SIGTERM', stop)
