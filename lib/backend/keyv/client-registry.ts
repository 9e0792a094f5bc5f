import type { ClientQuery, ClusterClient } from '../client-listing.js'
import { compareClients, matchesClientQuery } from '../client-listing.js'
import type { Page } from '../inspection.js'
import { sessionId } from './keys.js'
import type { LocalEntry } from './local-state.js'
import type { NodeContext } from './node-context.js'
import type { RedisLink } from './redis-link.js'

/** Fields per HSET when the whole hash is written again. */
const RESYNC_CHUNK = 1000

/**
 * What a connection handle may tell besides `ClientHandle` (the engine's connections do, and the
 * access-control decorator passes them on); inline subscriptions have no transport and are not
 * listed.
 */
interface Described {
  readonly listener?: string | undefined
  readonly transport?: string | undefined
  readonly remoteAddress?: string | undefined
  readonly createdAt?: number | undefined
}

/** The compact JSON of one registry field. */
interface Stored {
  c: string
  t?: string
  u?: string
  l?: string
  x?: string
  a?: string
  p: number
  at?: number
}

/**
 * The cluster's list of connected clients, as one node keeps its part of it: a Redis hash per node
 * (`NodeKeys.clients`, `sessionId` → description) written when a connection gets or loses its
 * session on this node (one HSET or HDEL, pipelined with a PEXPIRE, never awaited: nothing on the
 * message path), renewed with a TTL of two dead-node delays at each heartbeat, deleted when the
 * node closes. A node that dies takes its hash with it (TTL), and listings read only the hashes of
 * nodes that beat recently. Writes lost while Redis was away are repaired at the next heartbeat by
 * writing the hash again from this node's entries. Internal to `KeyvBackend`.
 */
export class ClientRegistry {
  readonly #node: NodeContext
  readonly #entries: () => LocalEntry[]
  readonly #key: string
  #timer: ReturnType<typeof setInterval> | undefined = undefined
  /** A write failed (Redis away): the hash is written again at the next heartbeat. */
  #dirty = false

  constructor(node: NodeContext, entries: () => LocalEntry[]) {
    this.#node = node
    this.#entries = entries
    this.#key = node.nodeKeys.clients(node.nodeId)
  }

  /** The TTL of a node's hash (ms): renewed every heartbeat, so it outlives only a dead node. */
  get #ttl(): string {
    return String(2 * this.#node.deadAfterMs)
  }

  /** Starts renewing the hash with each heartbeat (the timer does not hold the process). */
  start(): void {
    this.#timer = setInterval(() => void this.refresh(), this.#node.heartbeatMs)
    this.#timer.unref()
  }

  /** Stops renewing (the backend deletes the hash when it closes). */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** The key of this node's hash (deleted by the backend's close). */
  get key(): string {
    return this.#key
  }

  /** `entry` got its session on this node. */
  added(entry: LocalEntry): void {
    const stored = describe(entry)
    const link = this.#node.link
    if (stored === undefined || link === undefined || this.#node.closed) return
    this.#write(link, ['HSET', this.#key, entryId(entry), JSON.stringify(stored)])
    this.#write(link, ['PEXPIRE', this.#key, this.#ttl])
  }

  /** `entry` lost its session on this node (ended, taken over, deleted). */
  removed(entry: LocalEntry): void {
    const link = this.#node.link
    if (link === undefined || this.#node.closed || describe(entry) === undefined) return
    this.#write(link, ['HDEL', this.#key, entryId(entry)])
  }

  /** Renews the TTL; writes the hash again when it vanished or a write was lost. */
  async refresh(): Promise<void> {
    const node = this.#node
    const link = node.link
    if (node.closed || link === undefined || !link.available) return
    try {
      const renewed = await link.send<number>(['PEXPIRE', this.#key, this.#ttl])
      if (this.#dirty || (renewed === 0 && this.#entries().length > 0)) this.#resync(link)
    } catch {
      this.#dirty = true
    }
  }

  /** Every client connected anywhere in the cluster that passes `query`, paged. */
  async list(query: ClientQuery): Promise<Page<ClusterClient>> {
    const all = await this.#all()
    const matching = all.filter((c) => matchesClientQuery(c, query))
    matching.sort(compareClients)
    const offset = query.offset ?? 0
    const limit = query.limit ?? 100
    return { items: matching.slice(offset, offset + limit), total: matching.length }
  }

  /** The client `clientId` of `tenant` connected to node `owner`, or undefined (also when that node is dead). */
  async find(tenant: string | undefined, clientId: string, owner: string): Promise<ClusterClient | undefined> {
    const node = this.#node
    const link = await node.use()
    const [seen, raw] = await Promise.all([
      link.sendText<string | null>(['ZSCORE', node.nodeKeys.nodes, owner]),
      link.sendText<string | null>(['HGET', node.nodeKeys.clients(owner), sessionId(node.tenantId(tenant), clientId)])
    ])
    if (seen === null || Number(seen) < Date.now() - node.deadAfterMs) return undefined
    return raw === null ? undefined : parse(raw, owner)
  }

  /**
   * How many clients of `tenant` are connected anywhere in the cluster: this node's from memory, the
   * others' by the field names of their hashes (`HKEYS`, live nodes only; a client listed by two
   * nodes during a takeover counts once). O(connections of the cluster): for `$SYS`, not per message.
   */
  async connectedCount(tenant: string | undefined): Promise<number> {
    const node = this.#node
    const link = await node.use()
    const since = Date.now() - node.deadAfterMs
    const nodes = (await link.sendText<string[]>(['ZRANGEBYSCORE', node.nodeKeys.nodes, String(since), '+inf'])).filter((n) => n !== node.nodeId)
    const fields = await Promise.all(nodes.map((n) => link.sendText<string[]>(['HKEYS', node.nodeKeys.clients(n)])))
    const prefix = sessionId(node.tenantId(tenant), '')
    const ids = new Set<string>()
    for (const list of fields) for (const field of list) if (field.startsWith(prefix)) ids.add(field)
    for (const entry of this.#entries()) {
      if (entry.client.connected && describe(entry) !== undefined && entryId(entry).startsWith(prefix)) ids.add(entryId(entry))
    }
    return ids.size
  }

  /** This node's clients from memory, the others' from their hashes (live nodes only). */
  async #all(): Promise<ClusterClient[]> {
    const node = this.#node
    const link = await node.use()
    const since = Date.now() - node.deadAfterMs
    const nodes = (await link.sendText<string[]>(['ZRANGEBYSCORE', node.nodeKeys.nodes, String(since), '+inf'])).filter((n) => n !== node.nodeId)
    const hashes = await Promise.all(nodes.map((n) => link.sendText<string[]>(['HVALS', node.nodeKeys.clients(n)])))
    // During a takeover both nodes may list the client for a moment: the newer connection wins.
    const byId = new Map<string, ClusterClient>()
    const put = (client: ClusterClient | undefined): void => {
      if (client === undefined) return
      const id = sessionId(node.tenantId(client.tenant), client.clientId)
      const prior = byId.get(id)
      if (prior === undefined || (client.connectedAt ?? 0) >= (prior.connectedAt ?? 0)) byId.set(id, client)
    }
    nodes.forEach((n, i) => {
      for (const raw of hashes[i] ?? []) put(parse(raw, n))
    })
    for (const entry of this.#entries()) {
      const stored = describe(entry)
      if (stored !== undefined && entry.client.connected) put(toClient(stored, node.nodeId))
    }
    return [...byId.values()]
  }

  /** Writes the whole hash again from this node's entries (in one go: later writes follow it). */
  #resync(link: RedisLink): void {
    this.#dirty = false
    const fields: string[] = []
    for (const entry of this.#entries()) {
      const stored = describe(entry)
      if (stored !== undefined) fields.push(entryId(entry), JSON.stringify(stored))
    }
    this.#write(link, ['DEL', this.#key])
    for (let i = 0; i < fields.length; i += 2 * RESYNC_CHUNK) this.#write(link, ['HSET', this.#key, ...fields.slice(i, i + 2 * RESYNC_CHUNK)])
    if (fields.length > 0) this.#write(link, ['PEXPIRE', this.#key, this.#ttl])
  }

  #write(link: RedisLink, command: string[]): void {
    link.send(command).catch(() => {
      this.#dirty = true
    })
  }
}

/** The registry field of an entry: its `sessionId`. */
function entryId(entry: LocalEntry): string {
  return sessionId(entry.tenant.keys.tenant, entry.client.clientId)
}

/** The description of a connection, or undefined for one without a transport (inline). */
function describe(entry: LocalEntry): Stored | undefined {
  const client = entry.client
  const more = client as typeof client & Described
  if (typeof more.transport !== 'string') return undefined
  const out: Stored = { c: client.clientId, p: client.protocolLevel, x: more.transport }
  if (client.tenant !== undefined) out.t = client.tenant
  if (client.username !== undefined) out.u = client.username
  if (typeof more.listener === 'string') out.l = more.listener
  if (typeof more.remoteAddress === 'string') out.a = more.remoteAddress
  if (typeof more.createdAt === 'number') out.at = more.createdAt
  return out
}

function toClient(s: Stored, node: string): ClusterClient {
  return {
    clientId: s.c,
    tenant: s.t,
    username: s.u,
    listener: s.l,
    transport: s.x,
    remoteAddress: s.a,
    protocolLevel: s.p,
    connectedAt: s.at,
    node
  }
}

/** A registry field of node `node`; undefined when it is not one (written by something else). */
function parse(raw: string, node: string): ClusterClient | undefined {
  try {
    const s = JSON.parse(raw) as Stored
    if (typeof s !== 'object' || s === null || typeof s.c !== 'string' || typeof s.p !== 'number') return undefined
    return toClient(s, node)
  } catch {
    return undefined
  }
}
