/**
 * `ws` and `wss` listeners: one HTTP(S) server per host and port, serving MQTT over WebSocket on
 * one path per listener, and plain HTTP requests on the paths mounted by whoever wants them (health,
 * metrics, a REST API).
 */
import { createServer as createHttpServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { isIP } from 'node:net'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { WebSocketServer, createWebSocketStream } from 'ws'
import type { WebSocket } from 'ws'
import type { Connection } from './connection.js'
import type { BoundListener, ListenerTarget, ResolvedListener, RunningServer } from './listener-config.js'
import { listenerName } from './listener-config.js'
import { SocketTracker, listenError } from './socket-tracker.js'
import { TlsFiles, certificateUsername, peerCertificateOf } from './tls-files.js'
import type { TrustedProxies } from './trusted-proxies.js'
import { formatAddress, unmapped } from './trusted-proxies.js'

/** Subprotocols accepted, in order of preference ("mqtt"; "mqttv3.1" is what MQTT 3.1 clients ask). */
export const SUBPROTOCOLS = ['mqtt', 'mqttv3.1']

/** A plain HTTP request handler mounted on a shared server. */
export type HttpHandler = (request: IncomingMessage, response: ServerResponse) => void

/**
 * One HTTP(S) server of the started listeners: the WebSocket listeners on it, and the paths other
 * HTTP endpoints mount on it.
 */
export interface HttpEndpoint {
  readonly secure: boolean
  readonly host: string
  readonly port: number
  /** The names of the WebSocket listeners it serves. */
  readonly listeners: readonly string[]
  /**
   * Serve plain (non-upgrade) HTTP requests for `path` (exact), or for every path under it when it
   * ends with `/`. Throws when the path is taken (by another mount or a WebSocket listener).
   * Unmatched requests get 404.
   */
  mount(path: string, handler: HttpHandler): void
}

interface Route {
  readonly listener: ResolvedListener
  name: string
}

/**
 * Bind one HTTP(S) server for `group` (WebSocket listeners with one host and port, all `ws` or all
 * `wss` with the same TLS settings). Rejects with an error naming the first listener.
 */
export async function startHttpListener(
  group: readonly ResolvedListener[],
  target: ListenerTarget
): Promise<RunningServer & { endpoint: HttpEndpoint }> {
  const first = group[0]!
  const secure = first.kind === 'wss'
  let label = first.name ?? `${first.kind}:${first.port}`
  const files = secure ? new TlsFiles(label, first.config.tls!) : undefined
  await files?.load()
  const log = target.log
  const tracker = new SocketTracker()
  const routes = new Map<string, Route>()
  for (const listener of group) routes.set(listener.path, { listener, name: listener.name ?? label })
  const mounts = new Map<string, HttpHandler>()

  const onRequest = (request: IncomingMessage, response: ServerResponse): void => {
    const path = pathOf(request)
    let handler = mounts.get(path)
    if (handler === undefined) {
      for (const [prefix, h] of mounts) if (prefix.endsWith('/') && path.startsWith(prefix)) handler = h
    }
    if (handler !== undefined) {
      handler(request, response)
      return
    }
    response.writeHead(routes.has(path) ? 426 : 404, { 'content-type': 'text/plain' })
    response.end(routes.has(path) ? 'WebSocket upgrade required\n' : 'not found\n')
  }
  const server: Server = secure ? createHttpsServer(files!.serverOptions(), onRequest) : createHttpServer(onRequest)
  server.on('connection', (raw: Socket) => {
    raw.setNoDelay(true)
    tracker.add(raw)
  })
  server.on('tlsClientError', (error: Error, socket: TLSSocket) => {
    log?.debug('TLS handshake failed', { listener: label, error })
    // With a listener, Node leaves the socket open (a handshake timeout would keep it forever).
    socket.destroy()
  })
  server.on('clientError', (_error: Error, socket: Socket) => socket.destroy())

  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    // A frame larger than the largest packet the broker accepts cannot be valid (ws defaults to 100 MiB).
    maxPayload: target.options.maximumPacketSize,
    handleProtocols: (protocols) => {
      for (const p of SUBPROTOCOLS) if (protocols.has(p)) return p
      return false
    }
  })
  server.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    const route = routes.get(pathOf(request))
    if (route === undefined) {
      socket.on('error', () => undefined)
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
      return
    }
    wss.handleUpgrade(request, socket, head, (ws: WebSocket) => {
      const connection: Connection = {
        stream: createWebSocketStream(ws),
        transport: secure ? 'wss' : 'ws',
        remoteAddress: clientAddress(request, route.listener.trusted),
        listener: route.name
      }
      const tls = route.listener.config.tls
      const peerCertificate =
        secure && tls?.clientCertificates !== undefined && tls.clientCertificates !== 'none'
          ? peerCertificateOf(request.socket as TLSSocket)
          : undefined
      if (peerCertificate === undefined) {
        target.handle(connection)
        return
      }
      const username = certificateUsername(peerCertificate, tls?.usernameFrom)
      target.handle({ ...connection, peerCertificate, ...(username === undefined ? {} : { certificateUsername: username }) })
    })
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(listenError(label, `${first.host}:${first.port}`, error)))
    server.listen(first.port, first.host, () => resolve())
  })
  server.removeAllListeners('error')
  server.on('error', (error: Error) => log?.warn('listener error', { listener: label, error }))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : first.port
  const host = typeof address === 'object' && address !== null ? address.address : first.host
  const bound: BoundListener[] = []
  for (const route of routes.values()) {
    route.name = listenerName(route.listener, port)
    bound.push({ name: route.name, kind: route.listener.kind, host, port, path: route.listener.path })
  }

  // Messages name the first listener once its port is known.
  label = bound[0]!.name
  if (files !== undefined) files.listener = label
  const reload = async (): Promise<void> => {
    if (files === undefined) return
    if (await files.load()) {
      ;(server as unknown as { setSecureContext(options: object): void }).setSecureContext(files.secureContextOptions())
      log?.info('TLS certificates reloaded', { listener: label })
    }
  }
  if (files !== undefined && first.config.tls?.watch !== false) {
    files.watch(() => {
      reload().catch((error: Error) => log?.warn('TLS files not reloaded', { listener: label, error }))
    })
  }

  const endpoint: HttpEndpoint = {
    secure,
    host,
    port,
    listeners: bound.map((b) => b.name),
    mount(path, handler) {
      if (!path.startsWith('/')) throw new TypeError(`HTTP path "${path}" must start with "/"`)
      if (routes.has(path) || mounts.has(path)) throw new Error(`HTTP path "${path}" is already served on ${host}:${port}`)
      mounts.set(path, handler)
    }
  }

  return {
    bound,
    endpoint,
    reloadCertificates: reload,
    close: () => {
      files?.close()
      const closed = new Promise<void>((done) => server.close(() => done()))
      server.closeIdleConnections()
      return closed
    },
    destroy: () => {
      server.closeAllConnections()
      tracker.destroyAll()
    }
  }
}

function pathOf(request: IncomingMessage): string {
  const url = request.url ?? '/'
  const query = url.indexOf('?')
  return query < 0 ? url : url.slice(0, query)
}

/**
 * The client's address: the peer's own, or, when the peer is a trusted proxy, the last address of
 * `X-Forwarded-For` that is not itself a trusted proxy (each proxy appends the address it saw, so
 * the addresses on the left are whatever the client claimed). A header with anything but IP
 * addresses is ignored.
 */
function clientAddress(request: IncomingMessage, trusted: TrustedProxies): string | undefined {
  const socket = request.socket
  const own = formatAddress(socket.remoteAddress, socket.remotePort)
  if (!trusted.trusts(socket.remoteAddress)) return own
  const header = request.headers['x-forwarded-for']
  if (header === undefined) return own
  const hops = (Array.isArray(header) ? header.join(',') : header).split(',').map((hop) => hop.trim())
  if (hops.some((hop) => isIP(hop) === 0)) return own
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = unmapped(hops[i]!)
    if (i === 0 || !trusted.trusts(hop)) return formatAddress(hop, undefined)
  }
  return own
}
