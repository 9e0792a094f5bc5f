import type Keyv from 'keyv'
import type { Observable } from 'rxjs'
import type {
  AuthenticationResult,
  Backend,
  BackendCapabilities,
  ClientHandle,
  Credentials,
  FlappingRule,
  FlappingVerdict,
  SetupResult,
  SubscribeResult
} from '../backend.js'
import { parseSharedSubscription } from '../../packet/topic.js'
import type { Message, StoredSubscription, StoredWill } from '../../session/session.js'
import type { KeyvSessionContext } from './keyv-session.js'
import { checkDurability } from './durability.js'
import { Availability } from './availability.js'
import { LocalRouting } from './local-routing.js'
import { Membership } from './membership.js'
import { NodeContext } from './node-context.js'
import type { KeyvBackendEvent, KeyvBackendOptions, KeyvBackendStats } from './options.js'
import { PublishRouter } from './publish-router.js'
import { RedisLink } from './redis-link.js'
import { findRetained, storeRetainedMessage } from './retained.js'
import { ALL_SCRIPTS } from './scripts.js'
import { SessionEnd } from './session-end.js'
import { SharedSubscriptions } from './shared-subscriptions.js'
import { connectRedis } from './start-up.js'
import { StreamDispatch } from './stream-dispatch.js'
import { Subscriptions } from './subscriptions.js'
import { Takeover } from './takeover.js'
import { Wills } from './wills.js'
import { countFlapping } from './flapping.js'
import { inspectKeyvSession, keyvCounts, listKeyvSessions } from './inspect.js'
import type { BackendCounts, Page, SessionDetails, SessionQuery, SessionSummary } from '../inspection.js'
import type { ClientQuery, ClusterClient } from '../client-listing.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import { SessionTakenOverError } from '../../packet/errors.js'
import { AdminRequests } from './admin-requests.js'
import { ADMIN_SCRIPTS } from './admin-scripts.js'
import { ClientRegistry } from './client-registry.js'
import { KeyvTenantListing } from './tenant-listing.js'

const ALLOW: AuthenticationResult = { result: 'allow' }

/**
 * The Redis backend, entered through Keyv (`@keyv/redis` 5 on node-redis): any number of broker
 * processes ("nodes") share one Redis; any client may connect to any node and find its session,
 * subscriptions, retained messages and offline queue there.
 *
 * - Sessions are `KeyvSession`s; `setup` takes a session over with a Lua script that increments its
 *   ownership epoch, records this node and sends a `kick` to the previous node's inbox stream; that
 *   node closes its connection with 0x8E and acknowledges. Writes of a stale owner are refused.
 * - Live messages are routed: the publish script XADDs a message to the stream of each other node
 *   with a live subscription to a matching filter (the route table, `NodeRoutes`); each node reads
 *   its stream with XREAD BLOCK on its own connection and delivers to its own clients.
 * - Persistent sessions get their QoS 1/2 messages through their Redis queue, whether online or
 *   not (the publisher enqueues, the owner node is woken through its inbox), and everything else
 *   live: a message reaches each subscription once, never through both paths.
 * - Subscriptions are indexed per tenant in Redis; each node mirrors the tenant's wildcard filters
 *   in a topic tree fed by a route log stream.
 * - Retained messages: a hash plus a sorted index, wildcard lookups by ZRANGEBYLEX on the filter's
 *   literal prefix.
 * - Redis unreachable: operations reject with `BackendUnavailableError` (0x88) at once, one
 *   `unavailable` event and log line per outage, automatic reconnect, then `available`.
 *
 * Methods wait for the start-up (`ready()`) first. See docs/redis-backend.md.
 *
 * The class is a facade over parts with one concern each, sharing one `NodeContext` (settings,
 * counters, the link, the tenants), in dependency order (a part imports only parts before it):
 * `SharedSubscriptions`, `LocalRouting` (this node's connections, local routes, live delivery,
 * queue drains), `Takeover` (setup, kicks between nodes), `Subscriptions`, `SessionEnd`, `Wills`
 * (delayed wills and those of dead nodes), `Membership` (heartbeat, reaping, expiry),
 * `Availability` (outages) and `StreamDispatch` (the streams this node reads); the publish path is
 * `PublishRouter`, the first connection `connectRedis`. See docs/redis-backend.md ("Code map").
 */
export class KeyvBackend implements Backend {
  readonly nodeId: string
  readonly stats: KeyvBackendStats
  /** Every call is routed to the key namespace of its tenant: tenants are kept apart. */
  readonly capabilities: BackendCapabilities = { tenants: true }
  /** Redis availability events (hot; completes on `close`). */
  readonly events$: Observable<KeyvBackendEvent>
  readonly keyv: Keyv

  readonly #node: NodeContext
  readonly #shares: SharedSubscriptions
  readonly #routing: LocalRouting
  readonly #takeover: Takeover
  readonly #subscriptions: Subscriptions
  readonly #ends: SessionEnd
  readonly #wills: Wills
  readonly #membership: Membership
  readonly #availability: Availability
  readonly #dispatch: StreamDispatch
  /** The cluster's client list: this node's part. */
  readonly #registry: ClientRegistry
  /** Operators' requests on sessions, wherever they are connected. */
  readonly #admin: AdminRequests
  /** The publish path. */
  readonly #router: PublishRouter
  /** Tenants (key prefixes) whose session index this process saw complete. */
  readonly #indexed = new Set<string>()
  /** The tenants of the cluster (the tenant directory). */
  readonly #tenantListing: KeyvTenantListing
  readonly #authenticate: Backend['authenticate'] | undefined
  readonly #authenticationMethods: readonly string[]
  #abortStart: (() => void) | undefined = undefined

  constructor(options: KeyvBackendOptions) {
    const node = new NodeContext(options)
    this.#node = node
    this.nodeId = node.nodeId
    this.stats = node.stats
    this.keyv = node.keyv
    this.#authenticate = options.authenticate
    this.#authenticationMethods = options.authenticationMethods ?? options.authenticate?.authenticationMethods ?? []
    this.#shares = new SharedSubscriptions(node)
    this.#routing = new LocalRouting(node, this.#shares)
    // A setup refused because this node was released: beat now, not at the next interval.
    this.#takeover = new Takeover(node, this.#routing, () => this.#membership.beatSoon())
    this.#subscriptions = new Subscriptions(node, this.#routing)
    this.#ends = new SessionEnd(node, this.#routing, this.#shares)
    this.#wills = new Wills(node, this.#routing, {
      storeRetained: async (message) => {
        await this.storeRetained(undefined, message)
      },
      publish: (message) => this.#publish(undefined, message)
    })
    this.#membership = new Membership(node, this.#routing, this.#shares, this.#wills)
    this.#availability = new Availability(node, this.#membership, this.#routing, this.#ends)
    this.#registry = new ClientRegistry(node, () => this.#routing.all())
    this.#routing.observer = this.#registry
    this.#admin = new AdminRequests(node, this.#routing, this.#subscriptions)
    this.#dispatch = new StreamDispatch(node, this.#routing, this.#takeover, (fields) => this.#admin.onEntry(fields))
    this.events$ = this.#availability.events$
    this.#tenantListing = new KeyvTenantListing(node, this.#indexed)
    this.#router = new PublishRouter(
      {
        nodeId: node.nodeId,
        stats: node.stats,
        busMax: node.busMax,
        commandTimeout: node.commandTimeout,
        log: node.log,
        entry: (tenant, clientId) => this.#routing.find(tenant, clientId),
        count: node.count,
        sessionContext: () => node.sessionContext as KeyvSessionContext,
        wake: (tenant, clientId) => this.#routing.wake(tenant, clientId)
      },
      node.nodeKeys
    )
    node.ready = this.#start()
    // Callers see the failure through `ready()` and every method; never an unhandled rejection.
    node.ready.catch(() => undefined)
  }

  /**
   * True while Redis is reachable (started, connected, not in an outage); readiness probes read it.
   * `events$` tells when it changes.
   */
  get available(): boolean {
    const link = this.#node.link
    return !this.#node.closed && link !== undefined && link.available
  }

  /** Resolves once connected and registered as a node; rejects if the start-up failed. */
  async ready(): Promise<void> {
    await this.#node.ready
  }

  /**
   * Checks the Redis server's persistence (`CONFIG GET appendonly`, `appendfsync`, `save`) and
   * answers a warning for the operator when acknowledged messages would not survive a Redis crash
   * or restart, or undefined when AOF is on (`everysec` or `always`). Meant to be logged at start.
   * Rejects with `BackendUnavailableError` while Redis is unreachable.
   */
  async checkDurability(): Promise<string | undefined> {
    return await checkDurability(await this.#node.use())
  }

  authenticate(client: ClientHandle, credentials: Credentials): AuthenticationResult | Promise<AuthenticationResult> {
    return this.#authenticate === undefined ? ALLOW : this.#authenticate(client, credentials)
  }

  authenticationMethods(_client: ClientHandle): readonly string[] {
    return this.#authenticationMethods
  }

  async setup(client: ClientHandle, clean: boolean, expiryInterval: number): Promise<SetupResult> {
    return await this.#tenantListing.setup(client.tenant, this.#takeover.setup(client, clean, expiryInterval))
  }

  async queueOffline(client: ClientHandle): Promise<void> {
    try {
      // Called once the connection is accepted: the previous connection's delayed will is settled now.
      await this.#wills.settle(client)
      await this.#subscriptions.restore(client)
    } catch (error) {
      // Taken over by another node whose kick is not read yet: closed with 0x8E now, the step done.
      if (error instanceof SessionTakenOverError && (await this.#takeover.lost(client))) return
      throw error
    }
  }

  async subscribe(client: ClientHandle, subscriptions: StoredSubscription[]): Promise<SubscribeResult[]> {
    return await this.#subscriptions.subscribe(client, subscriptions)
  }

  async unsubscribe(client: ClientHandle, topicFilters: string[]): Promise<number[]> {
    return await this.#subscriptions.unsubscribe(client, topicFilters)
  }

  async storeRetained(client: ClientHandle | undefined, message: Message): Promise<boolean> {
    const node = this.#node
    const link = await node.use()
    // Broker-made messages (client undefined) carry their tenant.
    const keys = (await node.tenant(client !== undefined ? client.tenant : message.tenant)).keys
    const stored = await storeRetainedMessage(link, keys, message, node.maxRetained, node.maxRetainedBytes)
    if (!stored) node.stats.retainedRefused++
    return stored
  }

  /**
   * `BackendInspection.listRetained`: the retained messages of `tenant` matching `filter`, sorted by
   * topic, at most `limit` — cluster-wide, since they live in Redis.
   */
  async listRetained(tenant: string | undefined, filter: string, limit: number): Promise<Message[]> {
    const link = await this.#node.use()
    const keys = (await this.#node.tenant(tenant)).keys
    const found = await findRetained(link, keys, filter, Date.now())
    found.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0))
    return found.slice(0, limit)
  }

  /** `BackendInspection.listSessions`: every stored session of `tenant` in the cluster (from the tenant's session index). */
  async listSessions(tenant: string | undefined, query: SessionQuery): Promise<Page<SessionSummary>> {
    return await listKeyvSessions(await this.#node.use(), (await this.#node.tenant(tenant)).keys, tenant, query, this.#indexed)
  }

  /** `BackendInspection.listTenants`: the default tenant, then every tenant with a stored session anywhere in the cluster. */
  async listTenants(): Promise<(string | undefined)[]> {
    return await this.#tenantListing.list()
  }

  /** `BackendInspection.counts`: sessions, retained messages and subscriptions of `tenant` in the cluster. */
  async counts(tenant: string | undefined): Promise<BackendCounts> {
    return await keyvCounts(await this.#node.use(), (await this.#node.tenant(tenant)).keys, this.#indexed)
  }

  /** `BackendInspection.inspectSession`: one session with its subscriptions, wherever its client is connected. */
  async inspectSession(tenant: string | undefined, clientId: string): Promise<SessionDetails | undefined> {
    return await inspectKeyvSession(await this.#node.use(), (await this.#node.tenant(tenant)).keys, tenant, clientId)
  }

  /**
   * `BackendInspection.deleteSession`, cluster-wide: the session goes with its subscriptions and
   * queue; a connection that owns it, on any node, is closed first (0x98).
   */
  async deleteSession(tenant: string | undefined, clientId: string): Promise<boolean> {
    return (await this.#admin.run(tenant, clientId, { op: 'delete' })) === true
  }

  /**
   * `BackendInspection.addSessionSubscription`, cluster-wide: stored and indexed; routed at once to
   * the node of a connected client (no retained messages are sent).
   */
  async addSessionSubscription(tenant: string | undefined, clientId: string, subscription: StoredSubscription): Promise<boolean> {
    return (await this.#admin.run(tenant, clientId, { op: 'subscribe', subscription })) === true
  }

  /** `BackendInspection.removeSessionSubscription`, cluster-wide (the connected client's node stops routing it at once). */
  async removeSessionSubscription(tenant: string | undefined, clientId: string, topicFilter: string): Promise<boolean | undefined> {
    const outcome = await this.#admin.run(tenant, clientId, { op: 'unsubscribe', filter: topicFilter })
    return outcome === 'none' ? undefined : outcome
  }

  /**
   * `BackendInspection.listClients`: the clients connected to every live node (this node's from
   * memory, the others' from their registry hashes in Redis).
   */
  async listClients(query: ClientQuery): Promise<Page<ClusterClient>> {
    return await this.#registry.list(query)
  }

  /** `BackendInspection.connectedCount`: the clients of `tenant` connected to every live node. */
  async connectedCount(tenant: string | undefined): Promise<number> {
    return await this.#registry.connectedCount(tenant)
  }

  /** `BackendInspection.findClient`: one connected client, on whichever node serves it. */
  async findClient(tenant: string | undefined, clientId: string): Promise<ClusterClient | undefined> {
    const node = this.#node
    const link = await node.use()
    const keys = (await node.tenant(tenant)).keys
    const [owner, online] = await link.sendText<(string | null)[]>(['HMGET', keys.session(clientId), 'node', 'online'])
    if (online !== '1' || owner === null || owner === undefined || owner === '') return undefined
    return await this.#registry.find(tenant, clientId, owner)
  }

  /** `BackendInspection.disconnectClient`: closes a client's connection on whichever node serves it. */
  async disconnectClient(tenant: string | undefined, clientId: string, reasonCode: number = ReasonCode.AdministrativeAction, reasonString?: string): Promise<boolean> {
    const op = reasonString === undefined ? { op: 'kick' as const, reasonCode } : { op: 'kick' as const, reasonCode, reasonString }
    return (await this.#admin.run(tenant, clientId, op)) === true
  }

  async queueRetained(client: ClientHandle, subscription: StoredSubscription): Promise<void> {
    // Retained messages are not sent for shared subscriptions [MQTT-3.8.4-4].
    if (parseSharedSubscription(subscription.topicFilter) !== undefined) return
    const node = this.#node
    const link = await node.use()
    const keys = (await node.tenant(client.tenant)).keys
    for (const message of await findRetained(link, keys, subscription.topicFilter, Date.now())) {
      if (!client.connected) return
      node.count(client.deliver(message, subscription, true))
    }
  }

  publish(client: ClientHandle | undefined, message: Message): Promise<number | undefined> | undefined {
    const node = this.#node
    const link = node.link
    const tenant = node.tenants.get(node.tenantId(client !== undefined ? client.tenant : message.tenant))
    // Started, Redis reachable, tenant loaded: route at once (no extra await on the hot path).
    if (!node.closed && link !== undefined && link.available && tenant !== undefined && tenant.loadedAt !== undefined) {
      const routed = this.#router.route(link, tenant, client, message)
      if (message.qos > 0 || node.awaitQos0) return routed
      // QoS 0, fire and forget: nothing to acknowledge; failures are counted (and reported once per outage).
      const counted = routed.catch(() => {
        node.stats.publishFailed++
        return undefined
      })
      // Redis is behind: the publisher waits for this message's batch (the engine stops reading
      // it meanwhile), so that a QoS 0 flood cannot pile up more than the link lets wait.
      if (link.congested) {
        node.stats.publishWaited++
        return counted
      }
      return undefined
    }
    return this.#publish(client, message)
  }

  async #publish(client: ClientHandle | undefined, message: Message): Promise<number> {
    const node = this.#node
    const link = await node.use()
    const tenant = await node.tenant(client !== undefined ? client.tenant : message.tenant)
    return await this.#router.route(link, tenant, client, message)
  }

  async terminate(client: ClientHandle): Promise<void> {
    await this.#ends.terminate(client)
  }

  /**
   * Keeps the delayed will (MQTT 5 Will Delay Interval) of `client`'s connection, which is ending,
   * in Redis and publishes it once cluster-wide at `dueAt` (ms; the engine passes the earlier of
   * the delay and the session's expiry) — on whichever node sweeps first, even if this node is gone
   * by then — unless the session is resumed meanwhile, on any node [MQTT-3.1.3-9]. Call it before
   * `terminate`, instead of keeping a timer in the engine (whose cancellation only sees
   * reconnections to the same process). A connection that already lost its session schedules
   * nothing (SessionTakenOverError is swallowed: the new connection cancelled the will).
   */
  async delayWill(client: ClientHandle, will: StoredWill, dueAt: number): Promise<boolean> {
    return await this.#wills.delay(client, will, dueAt)
  }

  /**
   * Flapping detection shared by every node: the connections of a client id are counted, and its
   * ban kept (with a TTL), in Redis, so a client spread over several processes is banned on all.
   */
  async countFlapping(client: ClientHandle, rule: FlappingRule): Promise<FlappingVerdict> {
    return await countFlapping(this.#node, client, rule)
  }

  async close(): Promise<void> {
    const node = this.#node
    if (node.closed) return
    node.closed = true
    this.#membership.stop()
    this.#registry.stop()
    this.#admin.clear()
    // Still connecting: give up (a client this backend made is destroyed, `ready()` rejects).
    this.#abortStart?.()
    try {
      await node.ready
    } catch {
      // nothing was started
    }
    await this.#dispatch.stop()
    // Pending shared entries of this node are claimed by the others once it left the registry.
    await this.#shares.stop()
    const link = node.link
    if (link !== undefined && link.available) {
      await this.#ends.endAll()
      try {
        await this.#routing.routes.clear(link)
        await Promise.all([
          link.send(['ZREM', node.nodeKeys.nodes, node.nodeId]),
          // Old wills: the engine published the wills of this node's connections as it closed them.
          link.send(['DEL', node.nodeKeys.inbox(node.nodeId), node.nodeKeys.bus(node.nodeId), node.nodeKeys.oldWills(node.nodeId), this.#registry.key]),
          node.keyv.delete(node.nodeKeys.nodeRecord(node.nodeId))
        ])
      } catch {
        // Redis went away: the heartbeat entry ages out by itself.
      }
    }
    link?.detach()
    this.#takeover.clear()
    this.#routing.clear()
    node.tenants.clear()
    if (node.ownsKeyv) {
      try {
        await node.keyv.disconnect()
      } catch {
        // already closed
      }
    }
    this.#availability.complete()
  }

  /** Connects, loads the scripts, reads the streams, registers this node and starts its duties. */
  async #start(): Promise<void> {
    const node = this.#node
    const client = await connectRedis(node, (abort) => {
      this.#abortStart = abort
    })
    const link = new RedisLink(client, node.commandTimeout, (event) => this.#availability.onLinkEvent(event), [...ALL_SCRIPTS, ...ADMIN_SCRIPTS])
    node.link = link
    await link.loadScripts()
    node.sessionContext = {
      link,
      nodeKeys: node.nodeKeys,
      nodeId: node.nodeId,
      maxQueuedMessages: node.maxQueued,
      maxQueuedBytes: node.maxQueuedBytes,
      stats: node.stats,
      ackShare: (ticket) => this.#shares.ack(ticket),
      fenced: (session) => this.#takeover.fenced(session)
    }
    const blocking = client.duplicate()
    blocking.on('error', () => undefined)
    await blocking.connect()
    const from = await this.#dispatch.positions(link)
    // No routes yet: fields left by an earlier process with this node id go.
    await this.#routing.routes.resync(link)
    await this.#membership.heartbeat()
    this.#dispatch.start(blocking, from)
    await this.#shares.start(link, client.duplicate())
    this.#membership.start()
    this.#registry.start()
    if (node.closed) await this.#dispatch.stop()
  }
}
