import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'
import type { Broker } from '../broker/broker.js'
import { createBrokerMetrics } from '../metrics/broker-metrics.js'
import { serveApi } from './api.js'
import { HttpAuthenticator } from './auth.js'
import { Dashboard } from './dashboard.js'
import { readiness } from './health.js'
import type { HttpOptions } from './options.js'
import { HttpError, sendError, sendJson } from './respond.js'

/** A node:http request listener with the broker's HTTP endpoints, and its metrics registry. */
export interface HttpHandler extends RequestListener {
  /** The registry behind `/metrics` (undefined when metrics are off): add metrics of your own to it. */
  readonly registry: Registry | undefined
}

/**
 * The broker's HTTP endpoints as one request listener, to mount on a server of its own
 * (`listenHttp`) or on a shared HTTP(S) server (e.g. the one a WebSocket listener upgrades on):
 *
 * - `GET /healthz` (also `/livez`): 200 while the process serves;
 * - `GET /readyz`: 200 when listeners are bound and the backend is reachable, else 503;
 * - `GET /metrics`: Prometheus text format (prom-client);
 * - `/api/v1/...`: the REST management API (docs/openapi.yaml);
 * - `GET /`: the dashboard.
 *
 * Credentials (`auth`) protect everything but the probes (unless `publicHealth` is false) and the
 * dashboard's static files (which hold no data: the page asks for credentials when the API answers
 * 401). Without credentials configured, only loopback peers are served unless `allowAnonymous`.
 * Every failure is answered with a JSON error body; nothing a request does can throw out of it.
 */
export function createHttpHandler(broker: Broker, options: HttpOptions = {}): HttpHandler {
  const auth = new HttpAuthenticator(options.auth, options.allowAnonymous === true)
  const publicHealth = options.publicHealth !== false
  const publicMetrics = options.publicMetrics === true
  const minListeners = options.minListeners ?? 1
  const maxBodySize = options.maxBodySize ?? 1024 * 1024
  const base = options.basePath ?? ''
  const registry =
    options.metrics === false ? undefined : createBrokerMetrics(broker, { tenantLimit: options.metricsTenantLimit ?? 100, defaultMetrics: options.defaultMetrics !== false })
  const dashboard = options.dashboard === false ? undefined : new Dashboard()
  const api = options.api !== false
  const challenge = auth.configured ? { 'www-authenticate': 'Bearer realm="mqtt-broker"' } : {}

  const authorize = async (request: IncomingMessage): Promise<void> => {
    const outcome = await auth.check(request)
    if (outcome === 'ok') return
    if (outcome === 'remote') throw new HttpError(403, 'forbidden', 'no HTTP credentials are configured: only loopback clients are served (configure http.auth, or allow_anonymous)')
    throw new HttpError(401, 'unauthorized', outcome === 'missing' ? 'credentials required (Authorization: Bearer or Basic)' : 'invalid credentials')
  }

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://localhost')
    let path = url.pathname
    if (base !== '') {
      if (path !== base && !path.startsWith(`${base}/`)) throw new HttpError(404, 'not_found', `no such endpoint: ${path}`)
      path = path.slice(base.length) || '/'
    }
    const method = request.method ?? 'GET'
    const head = method === 'HEAD'
    if (path === '/healthz' || path === '/livez' || path === '/readyz') {
      if (method !== 'GET' && !head) throw new HttpError(405, 'method_not_allowed', 'use GET')
      if (!publicHealth) await authorize(request)
      if (path === '/readyz') {
        const ready = readiness(broker, minListeners)
        sendJson(response, ready.ready ? 200 : 503, { status: ready.ready ? 'ok' : 'unavailable', checks: ready.checks })
      } else {
        sendJson(response, broker.closed ? 503 : 200, { status: broker.closed ? 'closing' : 'ok' })
      }
      return
    }
    if (path === '/metrics' && registry !== undefined) {
      if (method !== 'GET' && !head) throw new HttpError(405, 'method_not_allowed', 'use GET')
      if (!publicMetrics) await authorize(request)
      const text = await registry.metrics()
      response.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' })
      response.end(head ? undefined : text)
      return
    }
    if (api && (path === '/api/v1' || path.startsWith('/api/v1/'))) {
      await authorize(request)
      // The raw path keeps percent-encoding: client ids and topics may contain '/'.
      const raw = (request.url ?? '/').split('?')[0] as string
      const rest = raw.slice(raw.indexOf('/api/v1') + '/api/v1'.length)
      await serveApi(broker, rest, url.searchParams, request, response, maxBodySize)
      return
    }
    if (dashboard !== undefined && (method === 'GET' || head)) {
      let served: boolean
      try {
        served = dashboard.serve(path, response, head)
      } catch (error) {
        broker.log.error('dashboard files unavailable', { error })
        throw new HttpError(500, 'dashboard_unavailable', 'the dashboard files could not be read (see the broker log)')
      }
      if (served) return
    }
    throw new HttpError(404, 'not_found', `no such endpoint: ${path}`)
  }

  const listener = (request: IncomingMessage, response: ServerResponse): void => {
    request.on('error', () => response.destroy())
    handle(request, response).catch((error: unknown) => {
      if (!(error instanceof HttpError)) broker.log.error('HTTP request failed', { method: request.method, url: request.url, error })
      const headers: Record<string, string> = {}
      if (error instanceof HttpError && error.status === 401) Object.assign(headers, challenge)
      const allow = (error as { allow?: unknown }).allow
      if (typeof allow === 'string') headers.allow = allow
      sendError(response, error, headers)
    })
  }
  return Object.assign(listener, { registry })
}
