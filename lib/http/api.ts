import type { IncomingMessage, ServerResponse } from 'node:http'
import { NotInspectableError } from '../backend/inspection.js'
import type { Broker } from '../broker/broker.js'
import { MqttError } from '../packet/errors.js'
import { ReasonCode } from '../packet/reason-codes.js'
import { checkTopicFilter, checkTopicName } from '../packet/topic.js'
import type { QoS } from '../packet/types.js'
import type { Message, StoredSubscription } from '../session/session.js'
import { CLIENT_ROUTES } from './api-clients.js'
import type { Inspectable, Query, Route } from './api-common.js'
import { intParam, need, resolve, subscriptionJson, tenantOf } from './api-common.js'
import { HttpError, badRequest, notFound, readJson, sendJson } from './respond.js'

/** A message as JSON: the payload as UTF-8 text when it is valid UTF-8, and always as base64. */
function messageJson(m: Message): Record<string, unknown> {
  const text = m.payload.toString('utf8')
  const isText = Buffer.from(text, 'utf8').equals(m.payload)
  const out: Record<string, unknown> = {
    topic: m.topic,
    qos: m.qos,
    payload: isText ? text : null,
    payload_base64: m.payload.toString('base64'),
    size: m.payload.length
  }
  if (m.receivedAt !== undefined) out.received_at = new Date(m.receivedAt).toISOString()
  const p = m.properties
  if (p !== undefined) {
    const props: Record<string, unknown> = {}
    if (p.payloadFormatIndicator !== undefined) props.payload_format_indicator = p.payloadFormatIndicator
    if (p.messageExpiryInterval !== undefined) props.message_expiry_interval = p.messageExpiryInterval
    if (p.contentType !== undefined) props.content_type = p.contentType
    if (p.responseTopic !== undefined) props.response_topic = p.responseTopic
    if (p.correlationData !== undefined) props.correlation_data = p.correlationData.toString('base64')
    if (p.userProperties !== undefined) props.user_properties = p.userProperties.map(([k, v]) => [k, v])
    out.properties = props
  }
  return out
}

function qosOf(value: unknown, name = 'qos'): QoS {
  if (value === undefined) return 0
  if (value !== 0 && value !== 1 && value !== 2) throw badRequest(`${name} must be 0, 1 or 2`)
  return value
}

function bool(value: unknown, name: string): boolean {
  if (value === undefined) return false
  if (typeof value !== 'boolean') throw badRequest(`${name} must be a boolean`)
  return value
}

function str(value: unknown, name: string, required = false): string | undefined {
  if (value === undefined || value === null) {
    if (required) throw badRequest(`${name} is required`)
    return undefined
  }
  if (typeof value !== 'string') throw badRequest(`${name} must be a string`)
  return value
}

/** The topic in the rest of a path (`/api/v1/retained/a/b` → `a/b`), checked. */
function topicParam(raw: string): string {
  let topic: string
  try {
    topic = decodeURIComponent(raw)
  } catch {
    throw badRequest('the topic in the path is not valid percent-encoding')
  }
  const invalid = checkTopicName(topic)
  if (invalid !== undefined) throw badRequest(`invalid topic: ${invalid.message}`)
  return topic
}

/** The routes of `/api/v1`. Paths are matched against the part after `/api/v1`. */
const ROUTES: Route[] = [
  [
    'GET',
    /^\/overview$/,
    async ({ broker, backend, response }) => {
      const s = broker.stats
      const counts = backend.counts === undefined || backend.available === false ? undefined : await resolve(backend.counts(undefined)).catch(() => undefined)
      sendJson(response, 200, {
        time: new Date().toISOString(),
        connections: broker.connectedClients.length,
        sockets: s.connectionsOpen,
        connections_total: s.connectionsAccepted,
        messages_received: s.publishesReceived,
        messages_sent: s.publishesSent,
        deliveries_dropped: s.deliveriesDropped,
        backend_up: backend.available !== false,
        tenants: await tenantCounts(broker, backend),
        totals: counts ?? null
      })
    }
  ],
  ...CLIENT_ROUTES,
  [
    'GET',
    /^\/sessions$/,
    async ({ backend, response, query }) => {
      const tenant = tenantOf(query)
      const offset = intParam(query, 'offset', 0, 0, Number.MAX_SAFE_INTEGER)
      const limit = intParam(query, 'limit', 100, 1, 1000)
      const page = await resolve(need(backend, 'listSessions')(tenant, { offset, limit, search: query.get('search') ?? '' }))
      sendJson(response, 200, {
        items: page.items.map((s) => ({
          client_id: s.clientId,
          tenant: s.tenant ?? null,
          connected: s.connected,
          expiry_interval: s.expiryInterval,
          expires_at: s.expiresAt === undefined ? null : new Date(s.expiresAt).toISOString(),
          subscriptions: s.subscriptions,
          queued: s.queued,
          inflight: s.inflight
        })),
        total: page.total,
        offset,
        limit
      })
    }
  ],
  [
    'GET',
    /^\/sessions\/([^/]+)$/,
    async ({ backend, response, query, params }) => {
      const tenant = tenantOf(query)
      const s = await resolve(need(backend, 'inspectSession')(tenant, params[0] as string))
      if (s === undefined) throw notFound(`no session ${JSON.stringify(params[0])}`)
      sendJson(response, 200, {
        client_id: s.clientId,
        tenant: s.tenant ?? null,
        connected: s.connected,
        expiry_interval: s.expiryInterval,
        expires_at: s.expiresAt === undefined ? null : new Date(s.expiresAt).toISOString(),
        queued: s.queued,
        inflight: s.inflight,
        subscriptions: s.subscriptionList.map(subscriptionJson)
      })
    }
  ],
  [
    'DELETE',
    /^\/sessions\/([^/]+)$/,
    async ({ backend, response, query, params }) => {
      const tenant = tenantOf(query)
      const deleted = await resolve(need(backend, 'deleteSession')(tenant, params[0] as string))
      if (!deleted) throw notFound(`no session ${JSON.stringify(params[0])}`)
      sendJson(response, 200, { client_id: params[0], tenant: tenant ?? null, deleted: true })
    }
  ],
  [
    'GET',
    /^\/sessions\/([^/]+)\/subscriptions$/,
    async ({ backend, response, query, params }) => {
      const s = await resolve(need(backend, 'inspectSession')(tenantOf(query), params[0] as string))
      if (s === undefined) throw notFound(`no session ${JSON.stringify(params[0])}`)
      sendJson(response, 200, { items: s.subscriptionList.map(subscriptionJson), total: s.subscriptionList.length })
    }
  ],
  [
    'POST',
    /^\/sessions\/([^/]+)\/subscriptions$/,
    async ({ backend, request, response, query, params, maxBodySize }) => {
      const tenant = tenantOf(query)
      const body = await readJson(request, maxBodySize)
      const filter = str(body.topic_filter, 'topic_filter', true) as string
      const invalid = checkTopicFilter(filter)
      if (invalid !== undefined) throw badRequest(`invalid topic_filter: ${invalid.message}`)
      const subscription: StoredSubscription = { topicFilter: filter, qos: qosOf(body.qos) }
      if (bool(body.no_local, 'no_local')) subscription.noLocal = true
      if (bool(body.retain_as_published, 'retain_as_published')) subscription.retainAsPublished = true
      if (body.retain_handling !== undefined) {
        if (body.retain_handling !== 0 && body.retain_handling !== 1 && body.retain_handling !== 2) throw badRequest('retain_handling must be 0, 1 or 2')
        subscription.retainHandling = body.retain_handling
      }
      const added = await resolve(need(backend, 'addSessionSubscription')(tenant, params[0] as string, subscription))
      if (!added) throw notFound(`no session ${JSON.stringify(params[0])}`)
      sendJson(response, 201, subscriptionJson(subscription))
    }
  ],
  [
    'DELETE',
    /^\/sessions\/([^/]+)\/subscriptions$/,
    async ({ backend, response, query, params }) => {
      const tenant = tenantOf(query)
      const filter = query.get('topic_filter')
      if (filter === null || filter === '') throw badRequest('the topic_filter query parameter is required')
      const removed = await resolve(need(backend, 'removeSessionSubscription')(tenant, params[0] as string, filter))
      if (removed === undefined) throw notFound(`no session ${JSON.stringify(params[0])}`)
      if (!removed) throw notFound(`session ${JSON.stringify(params[0])} has no subscription ${JSON.stringify(filter)}`)
      sendJson(response, 200, { client_id: params[0], topic_filter: filter, removed: true })
    }
  ],
  [
    'GET',
    /^\/retained$/,
    async ({ backend, response, query }) => {
      const tenant = tenantOf(query)
      const filter = query.get('filter') ?? '#'
      const invalid = checkTopicFilter(filter, { shared: false })
      if (invalid !== undefined) throw badRequest(`invalid filter: ${invalid.message}`)
      const limit = intParam(query, 'limit', 100, 1, 1000)
      const items = await resolve(need(backend, 'listRetained')(tenant, filter, limit))
      sendJson(response, 200, { items: items.map(messageJson), filter, limit })
    }
  ],
  [
    'GET',
    /^\/retained\/(.+)$/s,
    async ({ backend, response, query, params }) => {
      const topic = topicParam(params[0] as string)
      const [found] = await resolve(need(backend, 'listRetained')(tenantOf(query), topic, 1))
      if (found === undefined) throw notFound(`no retained message on ${JSON.stringify(topic)}`)
      sendJson(response, 200, messageJson(found))
    }
  ],
  [
    'DELETE',
    /^\/retained\/(.+)$/s,
    async ({ broker, backend, response, query, params }) => {
      const tenant = tenantOf(query)
      const topic = topicParam(params[0] as string)
      if (backend.listRetained !== undefined) {
        const [found] = await resolve(backend.listRetained(tenant, topic, 1))
        if (found === undefined) throw notFound(`no retained message on ${JSON.stringify(topic)}`)
      }
      // An empty retained message deletes the stored one [MQTT-3.3.1-10]; it works on any backend.
      const message: Message = { topic, payload: Buffer.alloc(0), qos: 0, retain: true }
      if (tenant !== undefined) message.tenant = tenant
      await resolve(broker.backend.storeRetained(undefined, message))
      sendJson(response, 200, { topic, tenant: tenant ?? null, deleted: true })
    }
  ],
  [
    'POST',
    /^\/publish$/,
    async ({ broker, request, response, query, maxBodySize }) => {
      const body = await readJson(request, maxBodySize)
      const tenant = body.tenant === undefined ? tenantOf(query) : tenantOf(new URLSearchParams({ tenant: str(body.tenant, 'tenant') ?? '' }))
      const topic = str(body.topic, 'topic', true) as string
      const encoding = str(body.payload_encoding, 'payload_encoding') ?? 'utf8'
      if (encoding !== 'utf8' && encoding !== 'base64') throw badRequest('payload_encoding must be "utf8" or "base64"')
      const text = str(body.payload, 'payload') ?? ''
      if (encoding === 'base64' && !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) throw badRequest('payload is not valid base64')
      const properties = body.properties === undefined ? undefined : propertiesOf(body.properties)
      let matched: number | undefined
      try {
        matched = await broker.publish({
          topic,
          payload: Buffer.from(text, encoding),
          qos: qosOf(body.qos),
          retain: bool(body.retain, 'retain'),
          ...(properties === undefined ? {} : { properties }),
          ...(tenant === undefined ? {} : { tenant })
        })
      } catch (error) {
        if (error instanceof TypeError) throw badRequest(error.message.replace(/^publish: /, ''))
        throw error
      }
      sendJson(response, 200, { topic, tenant: tenant ?? null, matched: matched ?? null })
    }
  ],
  [
    'GET',
    /^\/tenants$/,
    async ({ broker, backend, response }) => {
      sendJson(response, 200, { items: await tenantCounts(broker, backend) })
    }
  ]
]

/** MQTT 5 publish properties from snake_case JSON. */
function propertiesOf(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badRequest('properties must be an object')
  const names: Record<string, string> = {
    payload_format_indicator: 'payloadFormatIndicator',
    message_expiry_interval: 'messageExpiryInterval',
    content_type: 'contentType',
    response_topic: 'responseTopic',
    correlation_data: 'correlationData',
    user_properties: 'userProperties'
  }
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value)) {
    const name = names[key]
    if (name === undefined) throw badRequest(`unknown property ${JSON.stringify(key)} (expected one of ${Object.keys(names).join(', ')})`)
    out[name] = v
  }
  return out
}

/** Per tenant: live connections here, and the backend's totals when it can tell. */
async function tenantCounts(broker: Broker, backend: Inspectable): Promise<Record<string, unknown>[]> {
  const connected = broker.connectedPerTenant()
  const tenants = new Set<string | undefined>([undefined, ...connected.keys(), ...broker.tenantTraffic().keys()])
  if (backend.listTenants !== undefined && backend.available !== false) {
    const listed = await resolve(backend.listTenants()).catch(() => [])
    for (const t of listed) tenants.add(t)
  }
  const out: Record<string, unknown>[] = []
  for (const tenant of [...tenants].sort((a, b) => (a ?? '').localeCompare(b ?? ''))) {
    const row: Record<string, unknown> = { tenant: tenant ?? null, connections: connected.get(tenant) ?? 0 }
    const traffic = broker.tenantTraffic().get(tenant)
    if (traffic !== undefined) Object.assign(row, { messages_received: traffic.received, messages_sent: traffic.sent })
    if (backend.counts !== undefined && backend.available !== false) {
      const c = await resolve(backend.counts(tenant)).catch(() => undefined)
      if (c !== undefined) Object.assign(row, c)
    }
    out.push(row)
  }
  return out
}

/**
 * Serves one `/api/v1` request (`path` is the part after `/api/v1`). Every failure becomes a JSON
 * error: 400/404/405/413/415 for the request, 501 when the backend lacks an optional method, 503
 * while the backend is unreachable.
 */
export async function serveApi(broker: Broker, path: string, query: Query, request: IncomingMessage, response: ServerResponse, maxBodySize: number): Promise<void> {
  const method = request.method ?? 'GET'
  let allowed: string[] = []
  for (const [m, pattern, handler] of ROUTES) {
    const match = pattern.exec(path)
    if (match === null) continue
    if (m !== method) {
      allowed.push(m)
      continue
    }
    // Retained topics (flag s) are decoded and checked by their route; other parameters here.
    const params = match.slice(1).map((p) => (pattern.flags.includes('s') ? p : safeDecode(p)))
    try {
      await handler({ broker, backend: broker.backend as Inspectable, request, response, query, params, maxBodySize })
    } catch (error) {
      throw translate(error)
    }
    return
  }
  allowed = [...new Set(allowed)]
  if (allowed.length > 0) throw Object.assign(new HttpError(405, 'method_not_allowed', `${method} is not allowed here (allowed: ${allowed.join(', ')})`), { allow: allowed.join(', ') })
  throw notFound(`no such endpoint: ${path}`)
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    throw badRequest('the path is not valid percent-encoding')
  }
}

function translate(error: unknown): unknown {
  if (error instanceof HttpError) return error
  if (error instanceof NotInspectableError) return new HttpError(501, 'not_implemented', `${error.message}: this backend cannot answer this request`)
  if (error instanceof MqttError && error.reasonCode === ReasonCode.ServerUnavailable) return new HttpError(503, 'backend_unavailable', error.message)
  if (error instanceof TypeError || error instanceof RangeError) return badRequest(error.message)
  return error
}
