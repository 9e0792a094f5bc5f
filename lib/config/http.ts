/**
 * Starts the `http:` section of a configuration (health, metrics, REST API, dashboard of lib/http):
 * on a port of its own (`listenHttp`), or mounted on the HTTP(S) server of a `ws`/`wss` listener
 * (`http.listener`), under `http.base_path` (default: every path that is not a WebSocket path).
 */
import type { Broker } from '../broker/broker.js'
import { createHttpHandler, httpOptionsFromConfig, listenHttp } from '../http/index.js'
import type { HttpHandler } from '../http/index.js'
import type { Listeners } from '../transport/listeners.js'
import type { BrokerConfig } from './schema.js'

/** The HTTP endpoints, started. */
export interface StartedHttp {
  /** `http://127.0.0.1:8081`, or `ws listener "web" (http://127.0.0.1:8080/admin)`. */
  readonly description: string
  readonly handler: HttpHandler
  /** Stops serving (a mounted handler is closed with its listener's server). */
  close(): Promise<void>
}

/**
 * Starts `config.http` (undefined when absent or `enabled: false`). Rejects when the port cannot be
 * bound, a TLS file cannot be read, or the listener to mount on is not running; nothing of it
 * stays open then.
 */
export async function startHttp(broker: Broker, config: BrokerConfig, listeners: Listeners): Promise<StartedHttp | undefined> {
  const section = config.http
  if (section === undefined || section.enabled === false) return undefined
  const { listener, ...rest } = section
  if (listener === undefined) {
    const http = await listenHttp(broker, httpOptionsFromConfig(rest))
    return { description: http.url, handler: http.handler, close: () => http.close() }
  }
  const endpoint = listeners.http.find((e) => e.listeners.includes(listener))
  if (endpoint === undefined) throw new Error(`http.listener: no running ws or wss listener is named "${listener}"`)
  const options = httpOptionsFromConfig({ ...rest, tls: undefined, host: undefined, port: undefined })
  const handler = createHttpHandler(broker, options)
  const base = options.basePath ?? ''
  if (base === '') {
    endpoint.mount('/', handler)
  } else {
    endpoint.mount(base, handler)
    endpoint.mount(`${base}/`, handler)
  }
  const host = endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host
  return {
    description: `${endpoint.secure ? 'https' : 'http'}://${host}:${endpoint.port}${base}/ (on ws listener "${listener}")`,
    handler,
    close: () => Promise.resolve()
  }
}
