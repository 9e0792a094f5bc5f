/**
 * The client routes of `/api/v1`: list (paged, filtered), details and kick — of the whole cluster
 * when the backend can tell (`BackendInspection.listClients`, `findClient`, `disconnectClient`:
 * the Redis backend), else of this process.
 */
import type { ClientQuery, ClusterClient } from '../backend/client-listing.js'
import { NotInspectableError } from '../backend/inspection.js'
import type { Broker } from '../broker/broker.js'
import type { BrokerClient } from '../broker/events.js'
import { MqttError } from '../packet/errors.js'
import { ReasonCode } from '../packet/reason-codes.js'
import type { Inspectable, Query, Route } from './api-common.js'
import { intParam, resolve, subscriptionJson, tenantOf } from './api-common.js'
import { notFound, sendJson } from './respond.js'

const KICKED = 'disconnected by an administrator'

/** A client of this process as JSON (`node`: this process's node id with a shared backend). */
function clientJson(client: BrokerClient, node: string | null, details = false): Record<string, unknown> {
  const out: Record<string, unknown> = {
    client_id: client.clientId,
    tenant: client.tenant ?? null,
    username: client.username ?? null,
    listener: client.listener ?? null,
    transport: client.transport,
    remote_address: client.remoteAddress ?? null,
    protocol_level: client.protocolLevel,
    connected_at: new Date(client.createdAt).toISOString(),
    node
  }
  if (details) out.keepalive = client.keepalive
  return out
}

/** A client anywhere in the cluster as JSON (the same fields as `clientJson`). */
function clusterClientJson(client: ClusterClient): Record<string, unknown> {
  return {
    client_id: client.clientId,
    tenant: client.tenant ?? null,
    username: client.username ?? null,
    listener: client.listener ?? null,
    transport: client.transport ?? null,
    remote_address: client.remoteAddress ?? null,
    protocol_level: client.protocolLevel,
    connected_at: client.connectedAt === undefined ? null : new Date(client.connectedAt).toISOString(),
    node: client.node
  }
}

function localClient(broker: Broker, clientId: string, tenant: string | undefined): BrokerClient | undefined {
  for (const client of broker.connectedClients) if (client.clientId === clientId && client.tenant === tenant) return client
  return undefined
}

function noClient(clientId: string, tenant: string | undefined): Error {
  return notFound(`no connected client ${JSON.stringify(clientId)}${tenant === undefined ? '' : ` in tenant ${tenant}`}`)
}

/** The node id of a shared backend (the Redis one), else null. */
function nodeOf(backend: Inspectable): string | null {
  const id = (backend as { nodeId?: unknown }).nodeId
  return typeof id === 'string' ? id : null
}

/**
 * Redis is away, or the backend cannot tell the cluster's clients after all (a `TenantBackend` over
 * `MemoryBackend`s): this process still can.
 */
function isUnavailable(error: unknown): boolean {
  return (error instanceof MqttError && error.reasonCode === ReasonCode.ServerUnavailable) || error instanceof NotInspectableError
}

/** `findClient` of the backend, undefined when it has none or cannot tell. */
async function findRemote(backend: Inspectable, tenant: string | undefined, clientId: string): Promise<ClusterClient | undefined> {
  if (backend.findClient === undefined) return undefined
  try {
    return await resolve(backend.findClient(tenant, clientId))
  } catch (error) {
    if (error instanceof NotInspectableError) return undefined
    throw error
  }
}

/** `disconnectClient` of the backend, false when it has none or cannot. */
async function kickRemote(backend: Inspectable, tenant: string | undefined, clientId: string): Promise<boolean> {
  if (backend.disconnectClient === undefined) return false
  try {
    return await resolve(backend.disconnectClient(tenant, clientId, ReasonCode.AdministrativeAction, KICKED))
  } catch (error) {
    if (error instanceof NotInspectableError) return false
    throw error
  }
}

function clientQuery(query: Query): ClientQuery {
  const out: ClientQuery = {
    offset: intParam(query, 'offset', 0, 0, Number.MAX_SAFE_INTEGER),
    limit: intParam(query, 'limit', 100, 1, 1000),
    search: query.get('search') ?? ''
  }
  if (query.has('tenant')) {
    out.filterTenant = true
    out.tenant = tenantOf(query)
  }
  const user = query.get('user') ?? query.get('username')
  if (user !== null) out.username = user
  const listener = query.get('listener')
  if (listener !== null) out.listener = listener
  return out
}

/** This process's clients that pass `q`, sorted by client id, paged. */
function localPage(broker: Broker, q: ClientQuery, node: string | null): { items: Record<string, unknown>[]; total: number } {
  const search = q.search ?? ''
  const matching = broker.connectedClients.filter(
    (c) =>
      (q.filterTenant !== true || c.tenant === q.tenant) &&
      (q.username === undefined || c.username === q.username) &&
      (q.listener === undefined || c.listener === q.listener) &&
      (search === '' || c.clientId.includes(search) || (c.username ?? '').includes(search))
  )
  matching.sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0))
  const offset = q.offset ?? 0
  return { items: matching.slice(offset, offset + (q.limit ?? 100)).map((c) => clientJson(c, node)), total: matching.length }
}

export const CLIENT_ROUTES: Route[] = [
  [
    'GET',
    /^\/clients$/,
    async ({ broker, backend, response, query }) => {
      const q = clientQuery(query)
      const offset = q.offset ?? 0
      const limit = q.limit ?? 100
      if (backend.listClients !== undefined && backend.available !== false) {
        try {
          const page = await resolve(backend.listClients(q))
          sendJson(response, 200, { items: page.items.map(clusterClientJson), total: page.total, offset, limit, scope: 'cluster' })
          return
        } catch (error) {
          if (!isUnavailable(error)) throw error
        }
      }
      // No shared backend, Redis away, or tenant backends that cannot tell: this process's clients.
      const page = localPage(broker, q, nodeOf(backend))
      sendJson(response, 200, { ...page, offset, limit, scope: 'node' })
    }
  ],
  [
    'GET',
    /^\/clients\/([^/]+)$/,
    async ({ broker, backend, response, query, params }) => {
      const tenant = tenantOf(query)
      const clientId = params[0] as string
      const local = localClient(broker, clientId, tenant)
      let out: Record<string, unknown>
      if (local !== undefined) out = clientJson(local, nodeOf(backend), true)
      else {
        const remote = await findRemote(backend, tenant, clientId)
        if (remote === undefined) throw noClient(clientId, tenant)
        out = { ...clusterClientJson(remote), keepalive: null }
      }
      if (backend.inspectSession !== undefined) {
        const session = await resolve(backend.inspectSession(tenant, clientId)).catch(() => undefined)
        if (session !== undefined) {
          out.session = { expiry_interval: session.expiryInterval, queued: session.queued, inflight: session.inflight }
          out.subscriptions = session.subscriptionList.map(subscriptionJson)
        }
      }
      sendJson(response, 200, out)
    }
  ],
  [
    'DELETE',
    /^\/clients\/([^/]+)$/,
    async ({ broker, backend, response, query, params }) => {
      const tenant = tenantOf(query)
      const clientId = params[0] as string
      const here = localClient(broker, clientId, tenant) !== undefined && broker.disconnect({ clientId, tenant }, ReasonCode.AdministrativeAction, KICKED)
      // Connected to another process of the cluster: that process closes it.
      const kicked = here || (await kickRemote(backend, tenant, clientId))
      if (!kicked) throw noClient(clientId, tenant)
      sendJson(response, 200, { client_id: clientId, tenant: tenant ?? null, disconnected: true })
    }
  ]
]
