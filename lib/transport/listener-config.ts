/**
 * What a listener is made of: its configuration (as code writes it and as the configuration file
 * maps onto it), its checks, and the small interfaces the listener implementations share.
 */
import type { ConnectionHandler } from './connection.js'
import type { TlsListenerConfig } from './tls-files.js'
import { TrustedProxies } from './trusted-proxies.js'

/** The kinds of listener. */
export type ListenerKind = 'tcp' | 'tls' | 'ws' | 'wss' | 'unix'

/**
 * One listener. Only `kind` is required; everything else has a safe default (loopback, the
 * kind's usual port).
 *
 * | kind   | needs            | may have                                             |
 * | ------ | ---------------- | ---------------------------------------------------- |
 * | `tcp`  |                  | `proxyProtocol` + `trustedProxies`                    |
 * | `tls`  | `tls`            | `proxyProtocol` + `trustedProxies`                    |
 * | `ws`   |                  | `path`, `trustedProxies` (for `X-Forwarded-For`)      |
 * | `wss`  | `tls`            | `path`, `trustedProxies` (for `X-Forwarded-For`)      |
 * | `unix` | `socketPath`     | `socketMode`                                         |
 */
export interface ListenerConfig {
  /**
   * Shown in logs and events and given to authentication and tenant resolvers. Unique. Default
   * `<kind>:<port>` (the bound port), `unix:<socketPath>` for Unix sockets.
   */
  name?: string
  kind: ListenerKind
  /** Interface to bind (default `127.0.0.1`: loopback only). */
  host?: string
  /** Port (defaults: tcp 1883, tls 8883, ws 8080, wss 8443; 0 picks a free one). */
  port?: number
  /**
   * `ws`/`wss`: the HTTP path served (default `/mqtt`). WebSocket listeners with the same host and
   * port share one HTTP(S) server, one path each (and `wss` ones must then have the same `tls`).
   */
  path?: string
  /** `unix`: the socket file. A stale file left by a dead process is removed; a live one is an error. */
  socketPath?: string
  /** `unix`: the socket file's permissions (e.g. `0o660`); default: as the process umask makes it. */
  socketMode?: number
  /** `tls`/`wss`: certificate, key, CA and client certificate policy. */
  tls?: TlsListenerConfig
  /**
   * `tcp`/`tls`: every connection starts with a PROXY protocol header (v1 or v2, HAProxy), which
   * gives the client's real address. Only peers in `trustedProxies` may connect; any other is
   * closed at once, as is a trusted peer whose header is missing or malformed.
   */
  proxyProtocol?: boolean
  /**
   * Addresses and CIDR ranges (`10.0.0.0/8`, `::1`) whose word on the client address is believed:
   * the PROXY header on `tcp`/`tls` (required with `proxyProtocol`), `X-Forwarded-For` on
   * `ws`/`wss` (the header of any other peer is ignored). Default: none.
   */
  trustedProxies?: string[]
  /** `tcp`/`tls` with `proxyProtocol`: milliseconds to wait for the header (default 5,000). */
  proxyTimeout?: number
}

/** Where a started listener is bound. */
export interface BoundListener {
  readonly name: string
  readonly kind: ListenerKind
  /** The bound interface (`unix`: the socket path). */
  readonly host: string
  /** The bound port (0 for `unix`). */
  readonly port: number
  /** `ws`/`wss`: the HTTP path. */
  readonly path?: string
  /** `unix`: the socket file. */
  readonly socketPath?: string
}

/** Where log lines of the listeners go (the broker's `Logger` fits). */
export interface TransportLog {
  info(message: string, fields?: Record<string, unknown>): void
  warn(message: string, fields?: Record<string, unknown>): void
  debug(message: string, fields?: Record<string, unknown>): void
}

/**
 * What listeners hand connections to. A `Broker` is one: `broker.handle(connection)`, and its
 * `options.maximumPacketSize` bounds WebSocket frames.
 */
export interface ListenerTarget {
  handle: ConnectionHandler
  readonly options: { readonly maximumPacketSize: number }
  readonly log?: TransportLog
}

/** A listener checked and completed with its defaults. */
export interface ResolvedListener {
  readonly config: ListenerConfig
  readonly kind: ListenerKind
  readonly host: string
  readonly port: number
  readonly path: string
  /** The name given, or undefined: then made from the bound port. */
  readonly name: string | undefined
  readonly trusted: TrustedProxies
}

/** One bound server of a started set (the implementations: stream and HTTP listeners). */
export interface RunningServer {
  readonly bound: readonly BoundListener[]
  /** Stop accepting, drop connections not yet handed over; resolves when all its connections ended. */
  close(): Promise<void>
  /** Destroy every connection left. */
  destroy(): void
  /** Re-read TLS files (no-op without TLS). Rejects naming the listener and file. */
  reloadCertificates(): Promise<void>
}

const DEFAULT_PORT: Record<ListenerKind, number> = { tcp: 1883, tls: 8883, ws: 8080, wss: 8443, unix: 0 }

/** A configuration error naming the listener (`listeners[2] "edge"` or its kind and port). */
export class ListenerConfigError extends Error {
  override readonly name = 'ListenerConfigError'
}

/** Check `configs` and fill in defaults. Throws `ListenerConfigError` for the first problem. */
export function resolveListeners(configs: readonly ListenerConfig[]): ResolvedListener[] {
  const out: ResolvedListener[] = []
  const names = new Set<string>()
  configs.forEach((config, index) => {
    const label = `listeners[${index}]${config.name === undefined ? '' : ` "${config.name}"`}`
    const fail = (message: string): never => {
      throw new ListenerConfigError(`${label}: ${message}`)
    }
    const kind = config.kind
    if (!(kind in DEFAULT_PORT)) fail(`unknown kind "${String(kind)}" (tcp, tls, ws, wss or unix)`)
    const port = config.port ?? DEFAULT_PORT[kind]
    if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`port ${port} is not in 0..65535`)
    if (config.name !== undefined) {
      if (config.name === '') fail('the name is empty')
      if (names.has(config.name)) fail(`another listener is already named "${config.name}"`)
      names.add(config.name)
    }
    const secure = kind === 'tls' || kind === 'wss'
    if (secure && config.tls === undefined) fail(`a ${kind} listener needs tls (key and cert)`)
    if (!secure && config.tls !== undefined) fail(`tls is only for tls and wss listeners`)
    const clientCerts = config.tls?.clientCertificates ?? 'none'
    if (clientCerts !== 'none' && config.tls?.ca === undefined) fail(`clientCertificates "${clientCerts}" needs tls.ca`)
    if (config.tls?.usernameFrom !== undefined && clientCerts === 'none') fail('tls.usernameFrom needs clientCertificates')
    if (kind === 'unix') {
      if (config.socketPath === undefined || config.socketPath === '') fail('a unix listener needs socketPath')
    } else if (config.socketPath !== undefined || config.socketMode !== undefined) {
      fail('socketPath and socketMode are only for unix listeners')
    }
    const mode = config.socketMode
    if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o777)) fail(`socketMode ${mode} is not in 0..0o777`)
    const ws = kind === 'ws' || kind === 'wss'
    if (!ws && config.path !== undefined) fail('path is only for ws and wss listeners')
    const path = config.path ?? '/mqtt'
    if (!path.startsWith('/')) fail(`path "${path}" must start with "/"`)
    if (config.proxyProtocol === true && kind !== 'tcp' && kind !== 'tls') {
      fail(`proxyProtocol is only for tcp and tls listeners (${kind} listeners trust X-Forwarded-For)`)
    }
    let trusted: TrustedProxies
    try {
      trusted = new TrustedProxies(config.trustedProxies ?? [])
    } catch (error) {
      return fail((error as Error).message)
    }
    if (config.proxyProtocol === true && trusted.empty) fail('proxyProtocol needs trustedProxies')
    if (kind === 'unix' && !trusted.empty) fail('trustedProxies does not apply to unix listeners')
    out.push({ config, kind, host: config.host ?? '127.0.0.1', port, path, name: config.name, trusted })
  })
  return out
}

/** The default name of a listener once bound. */
export function listenerName(listener: ResolvedListener, port: number): string {
  if (listener.name !== undefined) return listener.name
  return listener.kind === 'unix' ? `unix:${listener.config.socketPath!}` : `${listener.kind}:${port}`
}
