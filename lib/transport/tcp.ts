import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import type { ConnectionHandler, Listener, ListenAddress } from './connection.js'
import { formatAddress } from './trusted-proxies.js'

/** Options of `listenTcp`. */
export interface TcpListenOptions {
  /** Interface to bind (default 127.0.0.1: loopback only unless configured). */
  host?: string
  /** Port (default 1883; 0 picks a free port). */
  port?: number
}

/**
 * Listen for MQTT over TCP. Accepted sockets get TCP_NODELAY (the engine batches its output, so
 * Nagle would only add latency). Resolves once bound; rejects with the listen error (EADDRINUSE,
 * EACCES, ...).
 */
export function listenTcp(options: TcpListenOptions, onConnection: ConnectionHandler): Promise<Listener> {
  const server: Server = createServer({ noDelay: true }, (socket: Socket) => {
    onConnection({ stream: socket, transport: 'tcp', remoteAddress: formatAddress(socket.remoteAddress, socket.remotePort) })
  })
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error)
    server.once('error', onError)
    server.listen(options.port ?? 1883, options.host ?? '127.0.0.1', () => {
      server.off('error', onError)
      // Errors after binding (rare: EMFILE on accept) must not crash the process.
      server.on('error', () => undefined)
      const bound = server.address()
      const port = typeof bound === 'object' && bound !== null ? bound.port : (options.port ?? 1883)
      const host = typeof bound === 'object' && bound !== null ? bound.address : (options.host ?? '127.0.0.1')
      const listenAddress: ListenAddress = { transport: 'tcp', host, port }
      resolve({
        address: listenAddress,
        close: () => new Promise<void>((done) => server.close(() => done()))
      })
    })
  })
}
