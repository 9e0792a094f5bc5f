import type { ClientHandle } from '../backend.js'
import { SessionTakenOverError } from '../../packet/errors.js'
import { parseSharedSubscription } from '../../packet/topic.js'
import type { Message, StoredSubscription } from '../../session/session.js'
import { sessionId } from './keys.js'
import { deliverLive, drainQueue } from './local-state.js'
import type { LocalEntry, TenantState } from './local-state.js'
import type { NodeContext } from './node-context.js'
import { NodeRoutes } from './node-routes.js'
import { BackendUnavailableError } from './redis-link.js'
import type { RedisLink } from './redis-link.js'
import type { SharedSubscriptions } from './shared-subscriptions.js'

/** Queued messages a drain takes from Redis per round trip. */
const DRAIN_BATCH = 100

function isWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#')
}

/**
 * The connections one node serves and the routes to them: its entries (by `sessionId`), the local
 * topic trees of its tenants, its fields in the cluster's route table (`NodeRoutes`), delivery of
 * live messages to its clients and the drain of their offline queues. Internal to `KeyvBackend`.
 */
export class LocalRouting {
  readonly #node: NodeContext
  readonly #shares: SharedSubscriptions
  readonly #entries = new Map<string, LocalEntry>()
  /** This node's fields in the route table (which filters have live subscriptions here). */
  readonly routes: NodeRoutes
  /** Told when an entry is recorded and when it is removed (the cluster's client registry). */
  observer: { added(entry: LocalEntry): void; removed(entry: LocalEntry): void } | undefined = undefined

  constructor(node: NodeContext, shares: SharedSubscriptions) {
    this.#node = node
    this.#shares = shares
    this.routes = new NodeRoutes(node.nodeId, node.nodeKeys.routes(node.nodeId))
  }

  /** The entry this node serves for session `id` (a `sessionId`), if any. */
  get(id: string): LocalEntry | undefined {
    return this.#entries.get(id)
  }

  /** The entry this node serves for `clientId` in `tenant`, if any. */
  find(tenant: string, clientId: string): LocalEntry | undefined {
    return this.#entries.get(sessionId(tenant, clientId))
  }

  /** The entry of `client`'s connection, if it still owns its session on this node. */
  of(client: ClientHandle): LocalEntry | undefined {
    const entry = this.find(this.#node.tenantId(client.tenant), client.clientId)
    return entry !== undefined && entry.client === client ? entry : undefined
  }

  /** The local entry `client` owns, or SessionTakenOverError (fencing on this node). */
  owned(client: ClientHandle): LocalEntry {
    const entry = this.of(client)
    if (entry === undefined) throw new SessionTakenOverError(`the session of ${client.clientId} belongs to another connection`)
    return entry
  }

  /** Records `entry` as the connection of its session on this node. */
  set(entry: LocalEntry): void {
    this.#entries.set(entryId(entry), entry)
    this.observer?.added(entry)
  }

  /** Every entry, at the time of the call. */
  all(): LocalEntry[] {
    return [...this.#entries.values()]
  }

  /** Forgets every entry (the backend closes). */
  clear(): void {
    this.#entries.clear()
  }

  /** Removes `entry` from this node: no more deliveries, no local routes. */
  detach(entry: LocalEntry): void {
    entry.live = false
    const id = entryId(entry)
    if (this.#entries.get(id) === entry) {
      this.#entries.delete(id)
      this.observer?.removed(entry)
    }
    for (const filter of entry.filters) this.removeRoute(entry, filter)
    entry.filters.clear()
  }

  /** `entry` lost its session (taken over, or the node released): detached, its shared deliveries settled. */
  evict(entry: LocalEntry): void {
    this.detach(entry)
    this.#shares.settle(entry)
  }

  /**
   * Adds a local route for `entry`'s subscription; a new one on a filter without local routes is
   * recorded in the route table: the promise resolves once it is.
   */
  addRoute(entry: LocalEntry, subscription: StoredSubscription): Promise<void> | undefined {
    if (parseSharedSubscription(subscription.topicFilter) !== undefined) {
      this.#shares.join(entry, subscription)
      return undefined
    }
    const filter = subscription.topicFilter
    const tenant = entry.tenant
    const added = tenant.local.add(filter, entry.client.clientId, { entry, subscription })
    entry.filters.add(filter)
    if (isWildcard(filter)) tenant.wildcards.add(filter, '', true)
    // A replaced subscription (same filter, same client id) keeps its route.
    return added ? this.routes.add(this.#node.link as RedisLink, tenant.keys.nodeRoutes(filter)) : undefined
  }

  /** Removes one local route of `entry` (a plain subscription, or a shared group membership). */
  removeRoute(entry: LocalEntry, filter: string): void {
    if (parseSharedSubscription(filter) !== undefined) {
      this.#shares.leave(entry, filter)
      return
    }
    const local = entry.tenant.local
    const clientId = entry.client.clientId
    if (local.get(filter, clientId)?.entry === entry && local.remove(filter, clientId)) {
      this.routes.remove(this.#node.link, entry.tenant.keys.nodeRoutes(filter))
    }
  }

  /** Delivers a message to this node's live clients that take it live (not through a queue). */
  deliverLocal(tenant: TenantState, message: Message): void {
    deliverLive(tenant, message, this.#node.count)
  }

  /** A persistent session this node serves got queued messages: drain them (when live). */
  wake(tenant: string, clientId: string): void {
    const entry = this.find(tenant, clientId)
    if (entry === undefined || !entry.live) return
    this.drain(entry).catch((error: unknown) => {
      if (error instanceof SessionTakenOverError || error instanceof BackendUnavailableError) return
      this.#node.log('warn', `draining the queue of ${clientId} failed: ${error instanceof Error ? error.message : String(error)}`)
    })
  }

  /** Delivers the session's queue to its live client, in order; one drain per session at a time. */
  async drain(entry: LocalEntry): Promise<void> {
    await drainQueue(entry, DRAIN_BATCH, this.#node.count)
  }
}

/** The `sessionId` of an entry. */
function entryId(entry: LocalEntry): string {
  return sessionId(entry.tenant.keys.tenant, entry.client.clientId)
}
