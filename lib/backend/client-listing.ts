/**
 * The connected clients of a whole cluster, as a shared backend (the Redis one) can tell them: the
 * types of the optional `BackendInspection.listClients`, `findClient` and `disconnectClient`.
 */

/** One connected client, on whichever broker process ("node") serves it. */
export interface ClusterClient {
  clientId: string
  /** Undefined: the default tenant. */
  tenant: string | undefined
  username: string | undefined
  /** The name of the listener that accepted the connection, if known. */
  listener: string | undefined
  /** `tcp`, `tls`, `ws`, `wss`, `unix`, ... when known. */
  transport: string | undefined
  remoteAddress: string | undefined
  /** 3, 4 or 5. */
  protocolLevel: number
  /** When the connection was accepted (ms since the epoch), when known. */
  connectedAt: number | undefined
  /** The id of the node that serves the connection. */
  node: string
}

/** What a client listing asks for. Every filter is optional. */
export interface ClientQuery {
  /** Only this tenant (undefined with `filterTenant`: the default tenant). */
  tenant?: string | undefined
  /** Whether `tenant` filters (else every tenant is listed). */
  filterTenant?: boolean
  /** Only clients with this user name. */
  username?: string
  /** Only clients of this listener (by name). */
  listener?: string
  /** Only client ids or user names containing this text. */
  search?: string
  /** Items to skip (default 0). */
  offset?: number
  /** Most items (default 100). */
  limit?: number
}

/** Whether `client` passes the filters of `query` (paging aside). */
export function matchesClientQuery(client: ClusterClient, query: ClientQuery): boolean {
  if (query.filterTenant === true && client.tenant !== query.tenant) return false
  if (query.username !== undefined && client.username !== query.username) return false
  if (query.listener !== undefined && client.listener !== query.listener) return false
  const search = query.search ?? ''
  return search === '' || client.clientId.includes(search) || (client.username ?? '').includes(search)
}

/** Orders clients by client id, then tenant (the listing's stable order). */
export function compareClients(a: ClusterClient, b: ClusterClient): number {
  if (a.clientId !== b.clientId) return a.clientId < b.clientId ? -1 : 1
  const ta = a.tenant ?? ''
  const tb = b.tenant ?? ''
  return ta < tb ? -1 : ta > tb ? 1 : 0
}
