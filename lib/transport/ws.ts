import { WebSocketServer, createWebSocketStream } from 'ws'
import type { ConnectionHandler, Listener, ListenAddress } from './connection.js'
import { SUBPROTOCOLS } from './http-listener.js'
import { formatAddress } from './trusted-proxies.js'

/** Options of `listenWebSocket`. */
export interface WebSocketListenOptions {
  /** Interface to bind (default 127.0.0.1). */
  host?: string
  /** Port (default 8080; 0 picks a free port). */
  port?: number
  /** HTTP path served (default `/mqtt`); other paths are refused with 400. */
  path?: string
}

/**
 * Listen for MQTT over WebSocket (binary frames, subprotocol `mqtt` [MQTT-6.0.0-3]). A client that
 * offers subprotocols but not `mqtt`/`mqttv3.1` is refused at the handshake. Each connection is
 * handed to the engine as a byte stream (`createWebSocketStream`); MQTT packets may span frames
 * [MQTT-6.0.0-2]. Resolves once bound; rejects with the listen error.
 */
export function listenWebSocket(
  options: WebSocketListenOptions,
  onConnection: ConnectionHandler
): Promise<Listener> {
  const path = options.path ?? '/mqtt'
  return new Promise((resolve, reject) => {
    const server = new WebSocketServer({
      host: options.host ?? '127.0.0.1',
      port: options.port ?? 8080,
      path,
      perMessageDeflate: false,
      handleProtocols: (protocols) => {
        for (const p of SUBPROTOCOLS) if (protocols.has(p)) return p
        return false
      }
    })
    const onError = (error: Error): void => {
      reject(error)
    }
    server.once('error', onError)
    server.on('connection', (socket, request) => {
      const stream = createWebSocketStream(socket)
      onConnection({ stream, transport: 'ws', remoteAddress: formatAddress(request.socket.remoteAddress, request.socket.remotePort) })
    })
    server.once('listening', () => {
      server.off('error', onError)
      server.on('error', () => undefined)
      const bound = server.address()
      const host = typeof bound === 'object' && bound !== null ? bound.address : (options.host ?? '127.0.0.1')
      const port = typeof bound === 'object' && bound !== null ? bound.port : (options.port ?? 8080)
      const address: ListenAddress = { transport: 'ws', host, port, path }
      resolve({
        address,
        close: () => new Promise<void>((done) => server.close(() => done()))
      })
    })
  })
}
