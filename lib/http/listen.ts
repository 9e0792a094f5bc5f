import { createServer } from 'node:http'
import type { Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { Broker } from '../broker/broker.js'
import { createHttpHandler } from './handler.js'
import type { HttpHandler } from './handler.js'
import { isLoopback } from './auth.js'
import { DEFAULT_HTTP_PORT } from './options.js'
import type { HttpListenOptions } from './options.js'

/** A bound HTTP listener. */
export interface HttpListener {
  /** `http` or `https`. */
  readonly protocol: 'http' | 'https'
  readonly host: string
  readonly port: number
  /** `http(s)://host:port` */
  readonly url: string
  readonly handler: HttpHandler
  readonly server: Server
  /** Stops accepting and closes open connections (keep-alive included); resolves when closed. */
  close(): Promise<void>
}

/** True for hosts that only loopback peers can reach. */
function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || isLoopback(host)
}

/**
 * Serves the broker's HTTP endpoints (`createHttpHandler`) on a port of their own, HTTP or HTTPS
 * (`tls`), on loopback by default. Refuses (rejects with an Error saying how to allow it) to listen
 * on a non-loopback address without credentials unless `allowAnonymous` is true. Resolves once
 * bound; rejects with the listen error (e.g. EADDRINUSE).
 */
export async function listenHttp(broker: Broker, options: HttpListenOptions = {}): Promise<HttpListener> {
  const host = options.host ?? '127.0.0.1'
  const hasCredentials = (options.auth?.tokens?.length ?? 0) > 0 || (options.auth?.users?.length ?? 0) > 0
  if (!isLoopbackHost(host) && !hasCredentials && options.allowAnonymous !== true) {
    throw new Error(
      `refusing to serve the HTTP API on ${host} without credentials: configure http.auth (tokens or users), or set allow_anonymous: true to open it deliberately`
    )
  }
  const handler = createHttpHandler(broker, options)
  const server: Server = options.tls === undefined ? createServer(handler) : (createHttpsServer(options.tls, handler) as unknown as Server)
  server.headersTimeout = 10_000
  server.requestTimeout = 30_000
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? DEFAULT_HTTP_PORT, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  server.on('clientError', (_error, socket) => socket.destroy())
  const address = server.address() as AddressInfo
  const protocol = options.tls === undefined ? 'http' : 'https'
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address
  broker.log.info('HTTP listening', { url: `${protocol}://${shown}:${address.port}` })
  return {
    protocol,
    host: address.address,
    port: address.port,
    url: `${protocol}://${shown}:${address.port}`,
    handler,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
  }
}
