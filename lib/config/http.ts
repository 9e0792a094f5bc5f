/**
 * Starts the `http:` section of a configuration (health, metrics, REST API, dashboard of lib/http):
 * on a port of its own (`listenHttp`), or mounted on the HTTP(S) server of a `ws`/`wss` listener
 * (`http.listener`), under `http.base_path` (default: every path that is not a WebSocket path).
 */
import type { Server as TlsServer } from 'node:tls'
import type { Broker } from '../broker/broker.js'
import { createHttpHandler, httpOptionsFromConfig, listenHttp } from '../http/index.js'
import type { HttpHandler } from '../http/index.js'
import type { Listeners } from '../transport/listeners.js'
import { TlsFiles } from '../transport/tls-files.js'
import type { BrokerConfig } from './schema.js'

/** The HTTP endpoints, started. */
export interface StartedHttp {
  /** `http://127.0.0.1:8081`, or `ws listener "web" (http://127.0.0.1:8080/admin)`. */
  readonly description: string
  readonly handler: HttpHandler
  /**
   * Re-read the HTTPS key and certificate files of its own port (SIGHUP; also done by itself when
   * they change on disk, unless `tls.watch: false`): new connections get the new certificate, open
   * ones stay. Rejects, keeping the previous files in use, when the new ones cannot be used. A
   * mounted handler has nothing of its own to reload (its listener's certificates are the MQTT
   * listeners'); neither has plain HTTP.
   */
  reloadCertificates(): Promise<void>
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
    const { tls, ...plain } = rest
    // The PEM files are read through TlsFiles, as the MQTT listeners' are, so that they can be re-read.
    const files = tls === undefined ? undefined : new TlsFiles('http', {
      key: tls.key,
      cert: tls.cert,
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.passphrase === undefined ? {} : { passphrase: tls.passphrase }),
      minVersion: tls.min_version ?? 'TLSv1.2'
    })
    await files?.load()
    const options = httpOptionsFromConfig(plain)
    if (files !== undefined) options.tls = files.secureContextOptions()
    const http = await listenHttp(broker, options)
    const reloadCertificates = async (): Promise<void> => {
      if (files === undefined || !(await files.load())) return
      ;(http.server as unknown as TlsServer).setSecureContext(files.secureContextOptions())
      broker.log.info('TLS certificates reloaded', { listener: 'http' })
    }
    if (files !== undefined && tls?.watch !== false) {
      files.watch(() => {
        reloadCertificates().catch((error: unknown) => broker.log.warn('TLS files not reloaded, the previous ones stay in use', { listener: 'http', error }))
      })
    }
    return {
      description: http.url,
      handler: http.handler,
      reloadCertificates,
      close: () => {
        files?.close()
        return http.close()
      }
    }
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
    reloadCertificates: () => Promise.resolve(),
    close: () => Promise.resolve()
  }
}
