/**
 * Open the byte stream to a broker from a URL: `mqtt://` (`tcp://`), `mqtts://` (`ssl://`,
 * `tls://`), `ws://`, `wss://` and Unix sockets (`mqtt+unix:///path/to.sock` or `unix:///path`).
 * Default ports: 1883, 8883, 80 and 443; WebSocket path `/mqtt` when the URL has none.
 */
import { connect as netConnect } from 'node:net'
import type { OnReadOpts, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { connect as tlsConnect } from 'node:tls'
import type { ConnectionOptions } from 'node:tls'
import { WebSocket, createWebSocketStream } from 'ws'
import { InvalidRequestError } from './errors.js'

/** Opens a connected byte stream (custom transports, the in-memory pair in tests). */
export type Dialer = (signal: AbortSignal) => Promise<Duplex>

/** Transport options of a dial. */
export interface DialOptions {
  /** TLS options for `mqtts://` and `wss://` (ca, cert, key, servername, rejectUnauthorized, ALPNProtocols, ...). */
  tls?: ConnectionOptions
  /** Extra HTTP headers of the WebSocket handshake. */
  wsHeaders?: Record<string, string>
}

/** The parsed target of a URL. */
export interface DialTarget {
  kind: 'tcp' | 'tls' | 'ws' | 'wss' | 'unix'
  host: string
  port: number
  path: string
}

/** Parse a broker URL; throws `InvalidRequestError` for an unknown scheme. */
export function parseBrokerUrl(url: string): DialTarget {
  const parsed = new URL(url)
  const scheme = parsed.protocol.replace(/:$/, '')
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1'
  const port = (fallback: number): number => (parsed.port === '' ? fallback : Number(parsed.port))
  switch (scheme) {
    case 'mqtt':
    case 'tcp':
      return { kind: 'tcp', host, port: port(1883), path: '' }
    case 'mqtts':
    case 'ssl':
    case 'tls':
      return { kind: 'tls', host, port: port(8883), path: '' }
    case 'ws':
      return { kind: 'ws', host, port: port(80), path: parsed.pathname === '/' ? '/mqtt' : parsed.pathname }
    case 'wss':
      return { kind: 'wss', host, port: port(443), path: parsed.pathname === '/' ? '/mqtt' : parsed.pathname }
    case 'unix':
    case 'mqtt+unix':
      return { kind: 'unix', host: '', port: 0, path: decodeURIComponent(parsed.pathname) }
    default:
      throw new InvalidRequestError(`unsupported URL scheme "${scheme}" (mqtt, mqtts, ws, wss, unix)`)
  }
}

/** Build a `Dialer` for `url`. */
export function urlDialer(url: string, options: DialOptions = {}): Dialer {
  const target = parseBrokerUrl(url)
  return (signal) => dial(target, options, signal)
}

function dial(target: DialTarget, options: DialOptions, signal: AbortSignal): Promise<Duplex> {
  if (target.kind === 'ws' || target.kind === 'wss') return dialWebSocket(target, options, signal)
  return new Promise<Duplex>((resolve, reject) => {
    let socket: Socket
    const onAbort = (): void => {
      socket.destroy()
      reject(signal.reason)
    }
    const done = (): void => {
      signal.removeEventListener('abort', onAbort)
      socket.off('error', onError)
      resolve(socket)
    }
    const onError = (error: Error): void => {
      signal.removeEventListener('abort', onAbort)
      socket.destroy()
      reject(error)
    }
    if (target.kind === 'unix') socket = netConnect({ path: target.path, onread: reader(() => socket) }, done)
    else if (target.kind === 'tcp') socket = netConnect({ host: target.host, port: target.port, noDelay: true, onread: reader(() => socket) }, done)
    else {
      socket = tlsConnect({ servername: isIp(target.host) ? undefined : target.host, ...options.tls, host: target.host, port: target.port }, done)
      socket.setNoDelay(true)
    }
    socket.once('error', onError)
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
}

function dialWebSocket(target: DialTarget, options: DialOptions, signal: AbortSignal): Promise<Duplex> {
  return new Promise<Duplex>((resolve, reject) => {
    const scheme = target.kind === 'wss' ? 'wss' : 'ws'
    const host = target.host.includes(':') ? `[${target.host}]` : target.host
    const ws = new WebSocket(`${scheme}://${host}:${target.port}${target.path}`, ['mqtt'], {
      ...(target.kind === 'wss' ? options.tls : {}),
      headers: options.wsHeaders,
      perMessageDeflate: false
    })
    const onAbort = (): void => {
      ws.terminate()
      reject(signal.reason)
    }
    ws.once('open', () => {
      signal.removeEventListener('abort', onAbort)
      ws.off('error', onError)
      const stream = createWebSocketStream(ws)
      // Errors after the handshake surface as the stream's close; never as an uncaught error.
      stream.on('error', () => undefined)
      resolve(stream)
    })
    const onError = (error: Error): void => {
      signal.removeEventListener('abort', onAbort)
      reject(error)
    }
    ws.once('error', onError)
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** The read buffer of one TCP or Unix socket (what Node's stream path allocates per read). */
const READ_BUFFER_SIZE = 64 * 1024

/**
 * Reads of a TCP or Unix socket into one buffer kept by the socket, each chunk copied out into a
 * Buffer of its own size and emitted as 'data'. Node's stream path allocates a 64 KiB
 * ArrayBuffer per read, shrinks it (a reallocation) to the bytes read, wraps it and pushes it
 * through the Readable machinery (a \`process.nextTick\` per read): a cost per read, paid often by a
 * client facing a broker that writes one packet per \`write()\` (Mosquitto), where a read holds a
 * few packets. Here a small chunk is a slice of Node's Buffer pool and one copy. Each chunk is
 * still a fresh Buffer that the decoder's views (payloads) may keep; 'end', 'close', 'error',
 * \`pause\`/\`resume\` behave as before (Node's \`onread\` option).
 */
function reader(socket: () => Socket): OnReadOpts {
  const buffer = Buffer.allocUnsafeSlow(READ_BUFFER_SIZE)
  return {
    buffer,
    callback: (size: number): boolean => {
      const chunk = Buffer.allocUnsafe(size)
      buffer.copy(chunk, 0, 0, size)
      const target = socket()
      // Nobody listens yet (a broker never speaks first; kept anyway): the Readable buffers it.
      if (target.listenerCount('data') === 0) return target.push(chunk)
      target.emit('data', chunk)
      return true
    }
  }
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':')
}
