/**
 * Aedes 1.2 as a benchmark target: in-memory defaults, `net.createServer(aedes.handle)`.
 *
 *   node --import tsx benchmarks/broker/servers/aedes.ts --port N [--transport tcp|ws]
 *
 * Listens on 127.0.0.1 (WebSocket: path /mqtt) and prints `listening <port>` once ready. Exits on
 * SIGTERM / SIGINT.
 */
import net from 'node:net'
import http from 'node:http'
import { WebSocketServer, createWebSocketStream } from 'ws'
import { Aedes } from 'aedes'
import { serverArgs } from './server-args.js'

const { port, transport } = serverArgs(process.argv.slice(2))
const aedes = await Aedes.createBroker()
let server: net.Server
if (transport === 'ws') {
  const httpServer = http.createServer()
  const wss = new WebSocketServer({ server: httpServer, path: '/mqtt' })
  wss.on('connection', (socket, req) => { aedes.handle(createWebSocketStream(socket), req) })
  server = httpServer
} else {
  server = net.createServer(aedes.handle)
}
server.listen(port, '127.0.0.1', () => { process.stdout.write(`listening ${port}\n`) })
const stop = (): void => { server.close(); aedes.close(); process.exit(0) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
