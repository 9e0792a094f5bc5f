/**
 * Start a set of listeners for a broker, all or none: `startListeners(configs, broker)`.
 *
 * ```ts
 * const listeners = await startListeners(
 *   [
 *     { kind: 'tcp', port: 1883 },
 *     { kind: 'tls', port: 8883, tls: { key: 'server.key', cert: 'server.crt' } },
 *     { kind: 'ws', port: 8080, path: '/mqtt' },
 *     { kind: 'unix', socketPath: '/run/mqtt.sock', socketMode: 0o660 }
 *   ],
 *   broker
 * )
 * ```
 *
 * Usually through `broker.listenAll(configs)`, which also closes them on `broker.close()`.
 */
import type { HttpEndpoint } from './http-listener.js'
import { startHttpListener } from './http-listener.js'
import type { BoundListener, ListenerConfig, ListenerTarget, ResolvedListener, RunningServer } from './listener-config.js'
import { ListenerConfigError, resolveListeners } from './listener-config.js'
import { startStreamListener } from './socket-listener.js'

export { ListenerConfigError } from './listener-config.js'
export type { BoundListener, ListenerConfig, ListenerKind, ListenerTarget, TransportLog } from './listener-config.js'
export type { CertificateIdentity, ClientCertificateMode, TlsListenerConfig } from './tls-files.js'
export type { HttpEndpoint, HttpHandler } from './http-listener.js'

/** A started set of listeners. */
export interface Listeners {
  /** Where each listener is bound, in configuration order (port 0 resolved). */
  readonly addresses: readonly BoundListener[]
  /** The HTTP(S) servers of the WebSocket listeners, where other HTTP endpoints can mount. */
  readonly http: readonly HttpEndpoint[]
  /**
   * Re-read the TLS files of every `tls`/`wss` listener. New connections get the new certificates;
   * established ones keep theirs. A listener whose files cannot be read or used keeps its previous
   * ones; the promise then rejects with an error naming it (after trying every listener).
   */
  reloadCertificates(): Promise<void>
  /**
   * Stop accepting (connections in a TLS/PROXY/WebSocket handshake are dropped). Resolves when
   * every connection the listeners accepted has ended: close those first (the broker does).
   */
  close(): Promise<void>
  /** Destroy every connection the listeners accepted that is still open. */
  destroy(): void
}

/**
 * Bind every listener in `configs` and hand their connections to `target` (a `Broker`). All or
 * none: when one cannot start (bad configuration, unreadable certificate, port in use), those
 * already bound are closed and the promise rejects with an error naming the listener
 * (`ListenerConfigError` for a configuration mistake; else the system error, its `code` kept).
 */
export async function startListeners(configs: readonly ListenerConfig[], target: ListenerTarget): Promise<Listeners> {
  const resolved = resolveListeners(configs)
  const units = groupWebSockets(resolved)
  const started: RunningServer[] = []
  const http: HttpEndpoint[] = []
  const boundOf = new Map<ResolvedListener, BoundListener>()
  try {
    for (const unit of units) {
      if (Array.isArray(unit)) {
        const server = await startHttpListener(unit, target)
        started.push(server)
        http.push(server.endpoint)
        unit.forEach((listener, i) => boundOf.set(listener, server.bound[i]!))
      } else {
        const server = await startStreamListener(unit, target)
        started.push(server)
        boundOf.set(unit, server.bound[0]!)
      }
    }
  } catch (error) {
    for (const server of started) server.destroy()
    await Promise.all(started.map((server) => server.close()))
    throw error
  }
  const addresses = resolved.map((listener) => boundOf.get(listener)!)
  for (const address of addresses) target.log?.info('listening', { ...address })
  return {
    addresses,
    http,
    async reloadCertificates() {
      const results = await Promise.allSettled(started.map((server) => server.reloadCertificates()))
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')
      if (failed !== undefined) throw failed.reason
    },
    close: () => Promise.all(started.map((server) => server.close())).then(() => undefined),
    destroy: () => {
      for (const server of started) server.destroy()
    }
  }
}

/**
 * The units to start: stream listeners alone, WebSocket listeners grouped by host and port (one
 * HTTP server each; port 0 never shared). Throws `ListenerConfigError` for a group that cannot share.
 */
function groupWebSockets(listeners: ResolvedListener[]): (ResolvedListener | ResolvedListener[])[] {
  const units: (ResolvedListener | ResolvedListener[])[] = []
  const groups = new Map<string, ResolvedListener[]>()
  for (const listener of listeners) {
    if (listener.kind !== 'ws' && listener.kind !== 'wss') {
      units.push(listener)
      continue
    }
    if (listener.port === 0) {
      units.push([listener])
      continue
    }
    const key = `${listener.host}|${listener.port}`
    const group = groups.get(key)
    if (group === undefined) {
      const created = [listener]
      groups.set(key, created)
      units.push(created)
      continue
    }
    const first = group[0]!
    const where = `${listener.host}:${listener.port}`
    const label = listener.name ?? `${listener.kind} ${where}${listener.path}`
    if (first.kind !== listener.kind) {
      throw new ListenerConfigError(`listener "${label}": ${where} is already a ${first.kind} listener (one port cannot serve both ws and wss)`)
    }
    if (group.some((other) => other.path === listener.path)) {
      throw new ListenerConfigError(`listener "${label}": path ${listener.path} on ${where} is already served by another listener`)
    }
    if (JSON.stringify(first.config.tls) !== JSON.stringify(listener.config.tls)) {
      throw new ListenerConfigError(`listener "${label}": wss listeners sharing ${where} must have the same tls settings`)
    }
    group.push(listener)
  }
  return units
}
