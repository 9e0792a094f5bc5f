/**
 * Stream listeners: `tcp`, `tls` and `unix`, each one `net.Server`. A `tls` listener hands the
 * accepted sockets to a `tls.Server` that never binds itself, so that a PROXY protocol header (sent
 * in clear before the handshake) can be read first; its certificates change with
 * `setSecureContext`, which leaves established connections alone.
 */
import { createServer, connect } from 'node:net'
import type { Server, Socket } from 'node:net'
import { chmod, lstat, unlink } from 'node:fs/promises'
import { Server as TlsServer } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import type { Connection } from './connection.js'
import type { BoundListener, ListenerTarget, ResolvedListener, RunningServer } from './listener-config.js'
import { listenerName } from './listener-config.js'
import { readProxyHeader } from './proxy-protocol.js'
import { TlsFiles, certificateUsername, peerCertificateOf } from './tls-files.js'
import { formatAddress } from './trusted-proxies.js'
import { SocketTracker, listenError } from './socket-tracker.js'

/** Bind a `tcp`, `tls` or `unix` listener. Rejects with an error naming the listener. */
export async function startStreamListener(listener: ResolvedListener, target: ListenerTarget): Promise<RunningServer> {
  const { config, kind } = listener
  const label = listener.name ?? (kind === 'unix' ? `unix:${config.socketPath!}` : `${kind}:${listener.port}`)
  const files = config.tls === undefined ? undefined : new TlsFiles(label, config.tls)
  await files?.load()
  const tracker = new SocketTracker()
  let name = label
  const log = target.log

  const handOver = (connection: Connection, raw: Socket): void => {
    tracker.handed(raw)
    target.handle(connection)
    // The engine listens for the socket's errors now: the placeholder goes, so that the socket
    // keeps one `error` listener, not an array of two (64 B per connection).
    if (connection.stream === raw && raw.listenerCount('error') > 1) raw.off('error', ignoreError)
  }

  // tls: the clear-text socket goes to the TLS server; its real address waits here for the handshake.
  const waiting = new Map<string, { raw: Socket; remoteAddress: string | undefined }>()
  let tlsServer: TlsServer | undefined
  if (files !== undefined) {
    tlsServer = new TlsServer(files.serverOptions(), (secure: TLSSocket) => {
      const key = endpoint(secure)
      const entry = waiting.get(key)
      waiting.delete(key)
      if (entry === undefined) {
        secure.destroy()
        return
      }
      const peerCertificate = config.tls?.clientCertificates === 'none' || config.tls?.clientCertificates === undefined ? undefined : peerCertificateOf(secure)
      const connection: Connection = { stream: secure, transport: 'tls', remoteAddress: entry.remoteAddress, listener: name }
      if (peerCertificate !== undefined) {
        const username = certificateUsername(peerCertificate, config.tls?.usernameFrom)
        handOver({ ...connection, peerCertificate, ...(username === undefined ? {} : { certificateUsername: username }) }, entry.raw)
      } else {
        handOver(connection, entry.raw)
      }
    })
    tlsServer.on('tlsClientError', (error: Error, socket: TLSSocket) => {
      log?.debug('TLS handshake failed', { listener: name, remoteAddress: formatAddress(socket.remoteAddress, socket.remotePort), error })
      // With a listener, Node leaves the socket open (a handshake timeout would keep it forever).
      socket.destroy()
    })
  }

  const proceed = (raw: Socket, remoteAddress: string | undefined): void => {
    if (raw.destroyed) return
    if (tlsServer !== undefined) {
      const key = endpoint(raw)
      waiting.set(key, { raw, remoteAddress })
      raw.once('close', () => waiting.delete(key))
      tlsServer.emit('connection', raw)
      return
    }
    handOver({ stream: raw, transport: kind === 'unix' ? 'unix' : 'tcp', remoteAddress, listener: name }, raw)
    // After a PROXY header the socket was paused (its next bytes put back): the engine reads now.
    if (raw.isPaused()) raw.resume()
  }

  const server: Server = createServer({ noDelay: true }, (raw: Socket) => {
    tracker.add(raw)
    // Errors before the engine owns the socket (a reset during a handshake) end it, nothing more.
    raw.on('error', ignoreError)
    const own = kind === 'unix' ? undefined : formatAddress(raw.remoteAddress, raw.remotePort)
    if (config.proxyProtocol !== true) {
      proceed(raw, own)
      return
    }
    if (!listener.trusted.trusts(raw.remoteAddress)) {
      log?.warn('connection refused: not a trusted proxy', { listener: name, remoteAddress: own })
      raw.destroy()
      return
    }
    readProxyHeader(raw, config.proxyTimeout ?? 5000).then(
      (header) => proceed(raw, header.source === undefined ? own : formatAddress(header.source.address, header.source.port)),
      (error: Error) => {
        log?.warn('connection refused: bad PROXY protocol header', { listener: name, remoteAddress: own, error })
        raw.destroy()
      }
    )
  })
  // Errors after binding (EMFILE on accept) must not crash the process.
  const onLateError = (error: Error): void => log?.warn('listener error', { listener: name, error })

  if (kind === 'unix') await removeStaleSocket(label, config.socketPath!)
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(listenError(label, where(listener), error)))
    if (kind === 'unix') server.listen(config.socketPath!, () => resolve())
    else server.listen(listener.port, listener.host, () => resolve())
  })
  server.removeAllListeners('error')
  server.on('error', onLateError)

  let bound: BoundListener
  if (kind === 'unix') {
    if (config.socketMode !== undefined) {
      try {
        await chmod(config.socketPath!, config.socketMode)
      } catch (error) {
        await new Promise<void>((done) => server.close(() => done()))
        throw listenError(label, where(listener), error as NodeJS.ErrnoException)
      }
    }
    bound = { name, kind, host: config.socketPath!, port: 0, socketPath: config.socketPath! }
  } else {
    const address = server.address()
    const port = typeof address === 'object' && address !== null ? address.port : listener.port
    const host = typeof address === 'object' && address !== null ? address.address : listener.host
    name = listenerName(listener, port)
    bound = { name, kind, host, port }
  }
  if (files !== undefined) files.listener = name

  if (files !== undefined && config.tls?.watch !== false) {
    files.watch(() => {
      reload().catch((error: Error) => log?.warn('TLS files not reloaded', { listener: name, error }))
    })
  }
  const reload = async (): Promise<void> => {
    if (files === undefined || tlsServer === undefined) return
    if (await files.load()) {
      tlsServer.setSecureContext(files.secureContextOptions())
      log?.info('TLS certificates reloaded', { listener: name })
    }
  }

  return {
    bound: [bound],
    reloadCertificates: reload,
    close: () => {
      files?.close()
      const closed = new Promise<void>((done) => server.close(() => done()))
      tracker.dropPending()
      return closed
    },
    destroy: () => tracker.destroyAll()
  }
}

/** The `error` listener of a socket before the engine owns it (shared by all: no closure per socket). */
function ignoreError(): void {}

function endpoint(socket: Socket): string {
  return `${socket.remoteAddress ?? ''}|${socket.remotePort ?? 0}`
}

function where(listener: ResolvedListener): string {
  return listener.kind === 'unix' ? listener.config.socketPath! : `${listener.host}:${listener.port}`
}

/**
 * A socket file left by a process that died is removed; a file that is not a socket, or a socket
 * something still answers on, is an error (never delete what is not ours to delete).
 */
async function removeStaleSocket(label: string, path: string): Promise<void> {
  let stats
  try {
    stats = await lstat(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
    throw listenError(label, path, error as NodeJS.ErrnoException)
  }
  if (!stats.isSocket()) {
    throw Object.assign(new Error(`listener "${label}": ${path} exists and is not a socket`), { code: 'EEXIST' })
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path)
    probe.once('connect', () => {
      probe.destroy()
      resolve(true)
    })
    probe.once('error', () => resolve(false))
  })
  if (live) {
    throw Object.assign(new Error(`listener "${label}": ${path} is in use by another process`), { code: 'EADDRINUSE' })
  }
  await unlink(path)
}
