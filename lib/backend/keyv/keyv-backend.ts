import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import { createKeyv } from '@keyv/redis'
import type Keyv from 'keyv'
import { Subject } from 'rxjs'
import type { Observable } from 'rxjs'
import type {
  AuthenticationResult,
  Backend,
  ClientHandle,
  Credentials,
  DeliveryResult,
  SetupResult,
  SubscribeResult
} from '../backend.js'
import { SessionTakenOverError } from '../../packet/errors.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import { parseSharedSubscription } from '../../packet/topic.js'
import type { Message, Session, StoredSubscription, StoredWill } from '../../session/session.js'
import { decodeMessage, decodeWill, encodeMessage, encodeWill, toJson } from './codec.js'
import { KeyvSession } from './keyv-session.js'
import type { KeyvSessionContext } from './keyv-session.js'
import { NodeKeys, SessionSuffix, TenantKeys, validateRootPrefix, validateTenant } from './keys.js'
import { LocalEntry, LocalShareGroup, TenantState, deliverLive, drainQueue } from './local-state.js'
import { BackendUnavailableError, RedisLink } from './redis-link.js'
import type { LinkEvent, RedisClientLike } from './redis-link.js'
import { KickBook } from './kick-book.js'
import { newStats } from './options.js'
import type { KeyvBackendEvent, KeyvBackendOptions, KeyvBackendStats } from './options.js'
import { NodeRoutes } from './node-routes.js'
import { PublishRouter } from './publish-router.js'
import { checkDurability } from './durability.js'
import { expireSessions, reapDeadNodes, takeDueWills } from './maintenance.js'
import { findRetained, storeRetainedMessage } from './retained.js'
import { ALL_SCRIPTS, DELAY_WILL, REINDEX, SCHEDULE_WILL, SUBSCRIBE, TAKEOVER, TERMINATE, UNSUBSCRIBE } from './scripts.js'
import { StreamReader } from './stream-reader.js'
import { SHARE_TICKET, ShareConsumer } from './share-consumer.js'
import type { ShareTicket } from './share-consumer.js'
import type { StreamEntry } from './stream-reader.js'
import { escapeControlCharacters } from '../../util/control-characters.js'

const ALLOW: AuthenticationResult = { result: 'allow' }
const NEVER_EXPIRES = 0xffff_ffff
const DRAIN_BATCH = 100

function isWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#')
}

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
 */
export class KeyvBackend implements Backend {
  readonly nodeId: string
  readonly stats: KeyvBackendStats = newStats()
  /** Redis availability events (hot; completes on `close`). */
  readonly events$: Observable<KeyvBackendEvent>

  readonly keyv: Keyv
  readonly #ownsKeyv: boolean
  readonly #root: string
  readonly #nodeKeys: NodeKeys
  readonly #defaultTenant: string
  readonly #maxQueued: number
  readonly #maxRetained: number
  readonly #heartbeatMs: number
  readonly #takeoverTimeout: number
  readonly #busMax: string
  /** The stream of the live messages routed to this node. */
  readonly #ownBus: string
  /** The publish path. */
  readonly #router: PublishRouter
  readonly #commandTimeout: number
  readonly #connectTimeout: number
  readonly #authenticate: Backend['authenticate'] | undefined
  readonly #authenticationMethods: readonly string[]
  readonly #awaitQos0: boolean
  readonly #log: (level: 'info' | 'warn' | 'error', message: string) => void
  readonly #events = new Subject<KeyvBackendEvent>()
  readonly #tenants = new Map<string, TenantState>()
  readonly #entries = new Map<string, LocalEntry>()
  readonly #kicks = new KickBook()
  /** This node's fields in the route table (which filters have live subscriptions here). */
  readonly #routes: NodeRoutes
  /** Sessions whose connection ended while Redis was away: ended in Redis once it is back. */
  readonly #unfinished = new Set<LocalEntry>()
  readonly #ready: Promise<void>
  #link: RedisLink | undefined = undefined
  #ctx: KeyvSessionContext | undefined = undefined
  #reader: StreamReader | undefined = undefined
  #shares: ShareConsumer | undefined = undefined
  /** Shared subscriptions with a member on this node, by stream key. */
  readonly #shareGroups = new Map<string, LocalShareGroup>()
  #timer: ReturnType<typeof setInterval> | undefined = undefined
  #closed = false
  /** The first heartbeat registered this node. */
  #registered = false
  /** No reaping before (ms): set after each outage, when every node was silent for a while. */
  #reapAfter = 0
  #abortStart: (() => void) | undefined = undefined

  constructor(options: KeyvBackendOptions) {
    if (options.keyv === undefined && options.url === undefined) throw new TypeError('KeyvBackend needs `keyv` or `url`')
    this.nodeId = options.nodeId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
    if (this.nodeId.length === 0 || /[\s{}]/.test(this.nodeId)) throw new TypeError(`invalid node id ${JSON.stringify(this.nodeId)}`)
    this.#root = validateRootPrefix(options.prefix ?? 'mq')
    this.#nodeKeys = new NodeKeys(this.#root)
    this.#defaultTenant = validateTenant(options.namespace ?? 'default')
    this.#ownsKeyv = options.keyv === undefined
    this.keyv = options.keyv ?? (createKeyv(options.url as string, { throwOnErrors: true }) as unknown as Keyv)
    // Keyv re-emits adapter errors (twice each); availability is reported once by this backend instead.
    if (this.#ownsKeyv) this.keyv.on('error', () => undefined)
    this.#maxQueued = options.maxQueuedMessages ?? 1000
    this.#maxRetained = options.maxRetainedMessages ?? 100_000
    this.#heartbeatMs = options.heartbeatInterval ?? 2000
    this.#takeoverTimeout = options.takeoverTimeout ?? 3000
    this.#busMax = String(options.busMaxLength ?? 100_000)
    this.#ownBus = this.#nodeKeys.bus(this.nodeId)
    this.#routes = new NodeRoutes(this.nodeId, this.#nodeKeys.routes(this.nodeId))
    this.#commandTimeout = options.commandTimeout ?? 5000
    this.#connectTimeout = options.connectTimeout ?? 10_000
    this.#authenticate = options.authenticate
    this.#authenticationMethods = options.authenticationMethods ?? options.authenticate?.authenticationMethods ?? []
    this.#awaitQos0 = options.awaitQos0 ?? false
    // Messages may quote client ids: control characters are escaped, whoever writes the line.
    const log = options.log ?? ((level, message) => (level === 'info' ? undefined : console.error(`[KeyvBackend] ${message}`)))
    this.#log = (level, message) => log(level, escapeControlCharacters(message))
    this.events$ = this.#events.asObservable()
    this.#router = new PublishRouter(
      {
        nodeId: this.nodeId,
        stats: this.stats,
        busMax: this.#busMax,
        commandTimeout: this.#commandTimeout,
        log: this.#log,
        entry: (tenant, clientId) => this.#entries.get(`${tenant}\u0000${clientId}`),
        count: this.#count,
        sessionContext: () => this.#ctx as KeyvSessionContext,
        wake: (tenant, clientId) => this.#wake(tenant, clientId)
      },
      this.#nodeKeys
    )
    this.#ready = this.#start()
    // Callers see the failure through `ready()` and every method; never an unhandled rejection.
    this.#ready.catch(() => undefined)
  }

  /** Resolves once connected and registered as a node; rejects if the start-up failed. */
  async ready(): Promise<void> {
    await this.#ready
  }

  /**
   * Checks the Redis server's persistence (`CONFIG GET appendonly`, `appendfsync`, `save`) and
   * answers a warning for the operator when acknowledged messages would not survive a Redis crash
   * or restart, or undefined when AOF is on (`everysec` or `always`). Meant to be logged at start.
   * Rejects with `BackendUnavailableError` while Redis is unreachable.
   */
  async checkDurability(): Promise<string | undefined> {
    return await checkDurability(await this.#use())
  }

  authenticate(client: ClientHandle, credentials: Credentials): AuthenticationResult | Promise<AuthenticationResult> {
    return this.#authenticate === undefined ? ALLOW : this.#authenticate(client, credentials)
  }

  authenticationMethods(_client: ClientHandle): readonly string[] {
    return this.#authenticationMethods
  }

  async setup(client: ClientHandle, clean: boolean, expiryInterval: number): Promise<SetupResult> {
    const link = await this.#use()
    const tenant = await this.#tenant(client.tenant)
    const keys = tenant.keys
    const clientId = client.clientId
    const sessionKey = keys.session(clientId)
    const persistent = expiryInterval > 0
    const [oldRaw, epoch, present, wasPersistRaw] = await link.script<[Buffer, number, number, Buffer]>(
      TAKEOVER,
      [sessionKey],
      [
        this.nodeId,
        clean ? '1' : '0',
        String(Date.now()),
        persistent ? '1' : '0',
        String(expiryInterval),
        keys.prefix,
        clientId,
        this.#nodeKeys.routeLog,
        keys.tenant,
        this.#nodeKeys.inboxPrefix,
        this.#nodeKeys.sessionsPrefix
      ]
    )
    const old = oldRaw.toString()
    const entryKey = `${keys.tenant}\u0000${clientId}`
    if (old !== '' && old !== this.nodeId) await this.#awaitKick(keys.tenant, clientId, epoch, old)
    const pids = await link.sendText<string[]>(['HKEYS', sessionKey + SessionSuffix.outgoing])
    const session = new KeyvSession(this.#ctx as KeyvSessionContext, keys, clientId, String(epoch), expiryInterval, pids.map(Number))
    if (present === 1 && (wasPersistRaw.toString() === '1') !== persistent) {
      await link.script(REINDEX, [sessionKey], [this.nodeId, String(epoch), keys.prefix, clientId, persistent ? '1' : '0'])
    }
    // Another connection of this node: the newer epoch wins, the other is closed [MQTT-3.1.4-3].
    const prior = this.#entries.get(entryKey)
    if (prior !== undefined && prior.client !== client) {
      if (Number(prior.session.epoch) > epoch) {
        client.close(ReasonCode.SessionTakenOver, 'another connection took the session over')
        throw new SessionTakenOverError()
      }
      this.#detach(entryKey, prior)
      this.#ackTickets(prior)
      if (prior.client.connected) {
        this.stats.takeovers++
        prior.client.close(ReasonCode.SessionTakenOver, 'another connection took the session over')
      }
    }
    const entry = new LocalEntry(client, session, tenant, persistent)
    this.#entries.set(entryKey, entry)
    // A kick for a newer epoch may have arrived while this setup was running.
    const kicked = this.#kicks.takeKick(entryKey)
    if (kicked !== undefined && kicked > epoch) {
      this.#detach(entryKey, entry)
      client.close(ReasonCode.SessionTakenOver, 'another connection took the session over')
      throw new SessionTakenOverError()
    }
    return { session, present: present === 1 }
  }

  async queueOffline(client: ClientHandle, _session: Session): Promise<void> {
    await this.#use()
    const entry = this.#owned(client)
    // Routed here before anything is delivered (restored subscriptions, MQTT-3.1.2-4 / 4.1).
    const routed: Promise<void>[] = []
    for (const subscription of await entry.session.listSubscriptions()) {
      const write = this.#addRoute(entry, subscription)
      if (write !== undefined) routed.push(write)
    }
    if (routed.length > 0) await Promise.all(routed)
    entry.live = true
    await this.#drain(entry)
  }

  async subscribe(client: ClientHandle, _session: Session, subscriptions: StoredSubscription[]): Promise<SubscribeResult[]> {
    const link = await this.#use()
    const entry = this.#owned(client)
    const keys = entry.tenant.keys
    const results = await Promise.all(
      subscriptions.map(async (subscription): Promise<SubscribeResult> => {
        await link.script(
          SUBSCRIBE,
          [entry.session.key],
          [this.nodeId, entry.session.epoch, subscription.topicFilter, toJson(subscription), keys.prefix, client.clientId, this.#nodeKeys.routeLog, keys.tenant]
        )
        // The SUBACK waits until messages published on any node are routed here.
        await this.#addRoute(entry, subscription)
        return subscription.qos
      })
    )
    return results
  }

  async unsubscribe(client: ClientHandle, _session: Session, topicFilters: string[]): Promise<number[]> {
    const link = await this.#use()
    const entry = this.#owned(client)
    const keys = entry.tenant.keys
    return await Promise.all(
      topicFilters.map(async (filter) => {
        // The local route goes first: no delivery after the UNSUBACK [MQTT-3.10.4-2].
        if (entry.filters.delete(filter)) this.#removeRoute(entry, filter)
        const n = await link.script<number>(
          UNSUBSCRIBE,
          [entry.session.key],
          [this.nodeId, entry.session.epoch, filter, keys.prefix, client.clientId, this.#nodeKeys.routeLog, keys.tenant]
        )
        return n === 1 ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted
      })
    )
  }

  async storeRetained(client: ClientHandle | undefined, message: Message): Promise<void> {
    const link = await this.#use()
    // Broker-made messages (client undefined) carry their tenant.
    const keys = (await this.#tenant(client !== undefined ? client.tenant : message.tenant)).keys
    if (!(await storeRetainedMessage(link, keys, message, this.#maxRetained))) this.stats.retainedRefused++
  }

  async queueRetained(client: ClientHandle, subscription: StoredSubscription): Promise<void> {
    // Retained messages are not sent for shared subscriptions [MQTT-3.8.4-4].
    if (parseSharedSubscription(subscription.topicFilter) !== undefined) return
    const link = await this.#use()
    const keys = (await this.#tenant(client.tenant)).keys
    for (const message of await findRetained(link, keys, subscription.topicFilter, Date.now())) {
      if (!client.connected) return
      this.#count(client.deliver(message, subscription, true))
    }
  }

  publish(client: ClientHandle | undefined, message: Message): Promise<number | undefined> | undefined {
    const link = this.#link
    const tenant = this.#tenants.get((client !== undefined ? client.tenant : message.tenant) ?? this.#defaultTenant)
    // Started, Redis reachable, tenant loaded: route at once (no extra await on the hot path).
    if (!this.#closed && link !== undefined && link.available && tenant !== undefined && tenant.loadedAt !== undefined) {
      const routed = this.#router.route(link, tenant, client, message)
      if (message.qos > 0 || this.#awaitQos0) return routed
      // QoS 0, fire and forget: nothing to acknowledge; failures are counted (and reported once per outage).
      routed.catch(() => {
        this.stats.publishFailed++
      })
      return undefined
    }
    return this.#publish(client, message)
  }

  async #publish(client: ClientHandle | undefined, message: Message): Promise<number> {
    const link = await this.#use()
    const tenant = await this.#tenant(client !== undefined ? client.tenant : message.tenant)
    return await this.#router.route(link, tenant, client, message)
  }

  async terminate(client: ClientHandle, _session: Session | undefined): Promise<void> {
    const tenant = this.#tenants.get(client.tenant ?? this.#defaultTenant)
    if (tenant === undefined) return
    const entryKey = `${tenant.keys.tenant}\u0000${client.clientId}`
    const entry = this.#entries.get(entryKey)
    // A connection that lost its session to a takeover has nothing left to end.
    if (entry === undefined || entry.client !== client) return
    const wasShared = [...entry.filters].some((f) => f.startsWith('$share/'))
    this.#detach(entryKey, entry)
    // The session ends: the shared-subscription messages it did not acknowledge go to another
    // member (MQTT 5.0 4.8.2). A persistent session keeps them (inflight records, offline queue).
    if (entry.session.expiryInterval === 0) {
      await this.#passSharedOn(entry, wasShared).catch((error: unknown) => {
        this.#log('warn', `passing the shared messages of ${client.clientId} on failed: ${error instanceof Error ? error.message : String(error)}`)
      })
    }
    this.#ackTickets(entry)
    try {
      await this.#endSession(entry)
    } catch (error) {
      // Redis is away: end the session in Redis once it is back (else it would stay "online" here).
      if (error instanceof BackendUnavailableError && !this.#closed) this.#unfinished.add(entry)
      throw error
    }
  }

  /**
   * Hands the shared-subscription messages of an ending session to the other members of their
   * groups: those the engine queued in it (never sent) and its QoS 1 deliveries never acknowledged
   * (outgoing records); QoS 2 deliveries that were started are not moved (MQTT 5.0 4.8.2).
   * Appended at the end of the group's stream; the session's own entries are then acknowledged.
   */
  async #passSharedOn(entry: LocalEntry, wasShared: boolean): Promise<void> {
    const session = entry.session
    const items = session.takeSharedLeftovers()
    if (!wasShared && items.length === 0) return
    const link = await this.#use()
    for (const record of await session.listOutgoing()) {
      if (record.kind !== 'publish' || record.message.qos !== 1) continue
      const subscription = record.subscription
      if (subscription !== undefined && subscription.topicFilter.startsWith('$share/')) items.push({ message: record.message, subscription })
    }
    const keys = entry.tenant.keys
    await Promise.all(
      items.map((item) =>
        link.send(['XADD', keys.shareStream(item.subscription.topicFilter), 'NOMKSTREAM', 'MAXLEN', '~', this.#busMax, '*', 'm', encodeMessage(item.message)])
      )
    )
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
    const link = await this.#use()
    const entry = this.#entries.get(`${client.tenant ?? this.#defaultTenant}\u0000${client.clientId}`)
    if (entry === undefined || entry.client !== client) return true
    const keys = entry.tenant.keys
    try {
      await link.script(SCHEDULE_WILL, [entry.session.key], [this.nodeId, entry.session.epoch, encodeWill(will), String(Math.round(dueAt)), keys.prefix, client.clientId])
    } catch (error) {
      if (!(error instanceof SessionTakenOverError)) throw error
    }
    return true
  }

  /** Marks the session of a gone connection away (or deletes it), fenced. */
  async #endSession(entry: LocalEntry, closing = false): Promise<void> {
    const link = closing ? (this.#link as RedisLink) : await this.#use()
    const session = entry.session
    const expiry = session.expiryInterval
    const expiresAt = expiry === 0 || expiry >= NEVER_EXPIRES ? '0' : String(Date.now() + expiry * 1000)
    const keys = entry.tenant.keys
    const client = entry.client
    try {
      await link.script(
        TERMINATE,
        [session.key],
        [
          this.nodeId,
          session.epoch,
          String(expiry),
          expiresAt,
          keys.prefix,
          client.clientId,
          this.#nodeKeys.routeLog,
          keys.tenant,
          this.#nodeKeys.sessionsPrefix
        ]
      )
    } catch (error) {
      if (!(error instanceof SessionTakenOverError)) throw error
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    // Still connecting: give up (a client this backend made is destroyed, `ready()` rejects).
    this.#abortStart?.()
    try {
      await this.#ready
    } catch {
      // nothing was started
    }
    await this.#reader?.stop()
    // Pending shared entries of this node are claimed by the others once it left the registry.
    await this.#shares?.stop()
    this.#shareGroups.clear()
    const link = this.#link
    if (link !== undefined && link.available) {
      // Connections still open (the engine normally ends them first): their sessions end here,
      // since a node that left the registry is never reaped.
      const open = [...this.#entries.values()]
      for (const entry of open) entry.live = false
      await Promise.allSettled(open.map((entry) => this.#endSession(entry, true)))
      try {
        await this.#routes.clear(link)
        await Promise.all([
          link.send(['ZREM', this.#nodeKeys.nodes, this.nodeId]),
          link.send(['DEL', this.#nodeKeys.inbox(this.nodeId), this.#nodeKeys.bus(this.nodeId)]),
          this.keyv.delete(this.#nodeKeys.nodeRecord(this.nodeId))
        ])
      } catch {
        // Redis went away: the heartbeat entry ages out by itself.
      }
    }
    link?.detach()
    this.#kicks.clear()
    this.#entries.clear()
    this.#tenants.clear()
    if (this.#ownsKeyv) {
      try {
        await this.keyv.disconnect()
      } catch {
        // already closed
      }
    }
    this.#events.complete()
  }

  // ----- start-up, heartbeat, streams

  async #start(): Promise<void> {
    const store = this.keyv.store as { getClient?: () => Promise<unknown>; client?: unknown }
    if (typeof store.getClient !== 'function') throw new TypeError('KeyvBackend needs a Keyv whose store is @keyv/redis (createKeyv)')
    const connecting = store.getClient()
    connecting.catch(() => undefined)
    let timer: ReturnType<typeof setTimeout> | undefined
    let fail: (error: Error) => void = () => undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      fail = reject
      timer = setTimeout(() => reject(new BackendUnavailableError(`could not connect to Redis within ${this.#connectTimeout} ms`)), this.#connectTimeout)
    })
    this.#abortStart = () => fail(new BackendUnavailableError('the backend was closed while connecting'))
    let client: RedisClientLike
    try {
      client = (await Promise.race([connecting, timeout])) as RedisClientLike
    } catch (error) {
      // node-redis keeps retrying a refused first connection: stop a client this backend made.
      this.#destroyOwnClient()
      this.#log('error', `Redis unavailable at start-up (node ${this.nodeId}): ${error instanceof Error ? error.message : String(error)}`)
      throw error
    } finally {
      clearTimeout(timer)
      this.#abortStart = undefined
    }
    if (typeof client.duplicate !== 'function' || typeof client.sendCommand !== 'function' || 'masters' in client) {
      throw new TypeError('KeyvBackend supports a standalone Redis client (Redis Cluster is not supported yet)')
    }
    const link = new RedisLink(client, this.#commandTimeout, (event) => this.#onLinkEvent(event), ALL_SCRIPTS)
    this.#link = link
    await link.loadScripts()
    this.#ctx = {
      link,
      nodeKeys: this.#nodeKeys,
      nodeId: this.nodeId,
      maxQueuedMessages: this.#maxQueued,
      stats: this.stats,
      ackShare: (ticket) => this.#shares?.ack(ticket)
    }
    const blocking = client.duplicate()
    blocking.on('error', () => undefined)
    await blocking.connect()
    const last = async (key: string): Promise<string> => {
      const reply = await link.sendText<[string, unknown][]>(['XREVRANGE', key, '+', '-', 'COUNT', '1'])
      return reply[0]?.[0] ?? '0-0'
    }
    const [busId, logId] = await Promise.all([last(this.#nodeKeys.bus(this.nodeId)), last(this.#nodeKeys.routeLog)])
    // No routes yet: fields left by an earlier process with this node id go.
    await this.#routes.resync(link)
    await this.#heartbeat()
    this.#reader = new StreamReader(
      blocking,
      [
        [this.#nodeKeys.bus(this.nodeId), busId],
        [this.#nodeKeys.routeLog, logId],
        [this.#nodeKeys.inbox(this.nodeId), '0-0']
      ],
      (entry) => this.#onStreamEntry(entry),
      () => undefined
    )
    this.#reader.start()
    this.#shares = new ShareConsumer(link, client.duplicate(), this.nodeId, (entry) => this.#onShareEntry(entry))
    await this.#shares.start()
    this.#timer = setInterval(() => void this.#tick(), this.#heartbeatMs)
    this.#timer.unref()
    if (this.#closed) await this.#reader.stop()
  }

  /** Stops a Redis client this backend made (for a Keyv passed in, its owner decides). */
  #destroyOwnClient(): void {
    if (!this.#ownsKeyv) return
    try {
      ;(this.keyv.store as { client: RedisClientLike }).client.destroy()
    } catch {
      // not open
    }
  }

  async #heartbeat(): Promise<void> {
    const link = this.#link as RedisLink
    const now = Date.now()
    const added = await link.send<number>(['ZADD', this.#nodeKeys.nodes, String(now), this.nodeId])
    // Registered before and no longer: released by the cluster (or Redis lost its data).
    if (added === 1 && this.#registered && !this.#closed) this.#released()
    this.#registered = true
    // Only after the link answered: @keyv/redis would silently reopen a client someone closed.
    await this.keyv.set(this.#nodeKeys.nodeRecord(this.nodeId), { nodeId: this.nodeId, pid: process.pid, seen: now }, this.#heartbeatMs * 5)
  }

  async #tick(): Promise<void> {
    const link = this.#link
    if (this.#closed || link === undefined || !link.available) return
    try {
      await this.#heartbeat()
      const now = Date.now()
      // After an outage every node was silent: reap only once the others had time to come back.
      const reaped = now >= this.#reapAfter ? await reapDeadNodes(link, this.#nodeKeys, this.#root, this.nodeId, 3 * this.#heartbeatMs, now) : []
      for (const { node, sessions, wills } of reaped) {
        this.stats.nodesReaped++
        this.#log('warn', `node ${node} stopped heart-beating: ${sessions} session(s) released, ${wills.length} will(s)`)
        for (const w of wills) await this.#releaseWill(w.tenant, w.clientId, w.will, w.expiry, now)
      }
      const tenants = Array.from(this.#tenants.values(), (tenant) => tenant.keys)
      this.stats.sessionsExpired += await expireSessions(link, this.#nodeKeys, tenants, now)
      for (const due of await takeDueWills(link, tenants, now)) await this.#publishWill(due.keys.tenant, due.clientId, decodeWill(due.will))
      if (this.#shares !== undefined && this.#shares.streams.size > 0) {
        const live = await link.sendText<string[]>(['ZRANGEBYSCORE', this.#nodeKeys.nodes, String(now - 3 * this.#heartbeatMs), '+inf'])
        this.stats.sharedClaimed += await this.#shares.claimDead(new Set(live))
      }
    } catch {
      // Reported once through the availability events.
    }
  }

  /**
   * This node was released while it was alive: it stayed silent for 3 heartbeats (a long pause, or
   * cut off from Redis) and another node's reaper released its sessions, routes and stream (or
   * Redis restarted without its data). Its connections have no session any more: they are closed
   * (0x80, with a reason string) so that their clients connect again and set a session up anew.
   */
  #released(): void {
    const entries = [...this.#entries]
    this.stats.nodeReleased++
    this.#log('warn', `node ${this.nodeId} was released by the cluster (silent for 3 heartbeats, or Redis lost its data): closing its ${entries.length} connection(s)`)
    for (const [key, entry] of entries) {
      this.#detach(key, entry)
      this.#ackTickets(entry)
      if (entry.client.connected) entry.client.close(ReasonCode.UnspecifiedError, 'the broker process lost its sessions; connect again')
    }
  }

  /**
   * A will the reaper took from a dead node's session (exactly once, by the ORPHAN script): published
   * now, or, with a Will Delay Interval, when the earlier of that delay and the session's expiry
   * has passed (unless the client connects again meanwhile) [MQTT-3.1.3-9].
   */
  async #releaseWill(tenantId: string, clientId: string, bytes: Buffer, expiry: number, now: number): Promise<void> {
    try {
      const will = decodeWill(bytes)
      const delay = Math.min(will.properties?.willDelayInterval ?? 0, expiry)
      const keys = (await this.#tenant(tenantId)).keys
      if (delay > 0) {
        const link = await this.#use()
        await link.script(DELAY_WILL, [keys.session(clientId)], [bytes, String(now + delay * 1000), keys.prefix, clientId])
        return
      }
      await this.#publishWill(tenantId, clientId, will)
    } catch (error) {
      this.#log('error', `the will of ${clientId} (released from a dead node) was not published: ${error instanceof Error ? error.message : String(error)}`)
    }
  }

  /** Publishes a will as the engine does: stored as retained first when its RETAIN flag is set. */
  async #publishWill(tenant: string, clientId: string, will: StoredWill): Promise<void> {
    const message: Message = { topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, origin: clientId, tenant }
    if (will.properties !== undefined) {
      const { willDelayInterval: _delay, ...properties } = will.properties
      if (Object.keys(properties).length > 0) message.properties = properties
      if (properties.messageExpiryInterval !== undefined) message.receivedAt = Date.now()
    }
    if (message.retain) await this.storeRetained(undefined, message)
    await this.#publish(undefined, message)
    this.stats.willsPublished++
  }

  #onLinkEvent(event: LinkEvent): void {
    if (this.#closed) return
    if (event.type === 'unavailable') {
      const reason = event.error instanceof Error ? event.error.message : String(event.error)
      this.#log('error', `Redis unavailable (node ${this.nodeId}): ${reason}; publishes and new sessions are refused until it is back`)
    } else {
      this.#log('info', `Redis available again (node ${this.nodeId})`)
      this.#reapAfter = Date.now() + 3 * this.#heartbeatMs
      // Redis may have restarted without persistence: reload the filter snapshots.
      for (const tenant of this.#tenants.values()) tenant.unload()
      void this.#heartbeat().catch(() => undefined)
      // Removals that failed while Redis was away; all of it if Redis restarted empty.
      void this.#routes.resync(this.#link as RedisLink).catch(() => undefined)
      const unfinished = [...this.#unfinished]
      this.#unfinished.clear()
      for (const entry of unfinished) {
        this.#endSession(entry).catch((error: unknown) => {
          if (error instanceof BackendUnavailableError) this.#unfinished.add(entry)
        })
      }
    }
    this.#events.next(event)
  }

  #onStreamEntry(entry: StreamEntry): void {
    const f = entry.fields
    const text = (name: string): string => f.get(name)?.toString() ?? ''
    if (entry.stream === this.#ownBus) {
      const tenant = this.#tenants.get(text('t'))
      if (tenant === undefined) return
      const bytes = f.get('m')
      if (bytes === undefined) return
      this.stats.busReceived++
      this.#deliverLocal(tenant, decodeMessage(bytes))
      return
    }
    if (entry.stream === this.#nodeKeys.routeLog) {
      this.#tenants.get(text('t'))?.applyRouteChange(entry.id, text('f'), text('c') === '1', Number(text('v') || '0'))
      return
    }
    const type = text('type')
    const key = `${text('t')}\u0000${text('c')}`
    if (type === 'wake') this.#wake(text('t'), text('c'))
    else if (type === 'kick') this.#onKick(key, Number(text('e')), text('t'), text('c'), text('n'))
    else if (type === 'kicked') this.#kicks.acknowledged(`${key}\u0000${text('e')}`)
  }

  #onKick(key: string, epoch: number, tenant: string, clientId: string, from: string): void {
    const entry = this.#entries.get(key)
    if (entry !== undefined && Number(entry.session.epoch) < epoch) {
      this.#detach(key, entry)
      this.#ackTickets(entry)
      if (entry.client.connected) {
        this.stats.takeovers++
        entry.client.close(ReasonCode.SessionTakenOver, 'another connection took the session over')
      }
    } else if (entry === undefined) {
      // A setup of this node may still be running for an older epoch: it checks this.
      this.#kicks.noteKick(key, epoch)
    }
    this.#link
      ?.send(['XADD', this.#nodeKeys.inbox(from), 'MAXLEN', '~', '10000', '*', 'type', 'kicked', 't', tenant, 'c', clientId, 'e', String(epoch)])
      .catch(() => undefined)
  }

  /** Waits (bounded) until `old` closed its connection of the session, unless `old` is dead. */
  async #awaitKick(tenant: string, clientId: string, epoch: number, old: string): Promise<void> {
    const link = this.#link as RedisLink
    await this.#kicks.wait(`${tenant}\u0000${clientId}\u0000${epoch}`, this.#takeoverTimeout, async () => {
      const seen = await link.sendText<string | null>(['ZSCORE', this.#nodeKeys.nodes, old])
      return seen !== null && Number(seen) >= Date.now() - 3 * this.#heartbeatMs
    })
  }

  // ----- local routing

  /** Delivers a message to this node's live clients that take it live (not through a queue). */
  #deliverLocal(tenant: TenantState, message: Message): void {
    deliverLive(tenant, message, this.#count)
  }

  #wake(tenant: string, clientId: string): void {
    const entry = this.#entries.get(`${tenant}\u0000${clientId}`)
    if (entry === undefined || !entry.live) return
    this.#drain(entry).catch((error: unknown) => {
      if (error instanceof SessionTakenOverError || error instanceof BackendUnavailableError) return
      this.#log('warn', `draining the queue of ${clientId} failed: ${error instanceof Error ? error.message : String(error)}`)
    })
  }

  /** Delivers the session's queue to its live client, in order; one drain per session at a time. */
  async #drain(entry: LocalEntry): Promise<void> {
    await drainQueue(entry, DRAIN_BATCH, this.#count)
  }

  /**
   * Adds a local route for `entry`'s subscription; a new one on a filter without local routes is
   * recorded in the route table: the promise resolves once it is.
   */
  #addRoute(entry: LocalEntry, subscription: StoredSubscription): Promise<void> | undefined {
    if (parseSharedSubscription(subscription.topicFilter) !== undefined) {
      const stream = entry.tenant.keys.shareStream(subscription.topicFilter)
      let group = this.#shareGroups.get(stream)
      if (group === undefined) {
        group = new LocalShareGroup(subscription.topicFilter, stream)
        this.#shareGroups.set(stream, group)
      }
      group.add(entry, subscription)
      entry.filters.add(subscription.topicFilter)
      this.#shares?.add(stream)
      return undefined
    }
    const filter = subscription.topicFilter
    const tenant = entry.tenant
    const added = tenant.local.add(filter, entry.client.clientId, { entry, subscription })
    entry.filters.add(filter)
    if (isWildcard(filter)) tenant.wildcards.add(filter, '', true)
    // A replaced subscription (same filter, same client id) keeps its route.
    return added ? this.#routes.add(this.#link as RedisLink, tenant.keys.nodeRoutes(filter)) : undefined
  }

  /** Removes `entry` from this node: no more deliveries, no local routes. */
  #detach(key: string, entry: LocalEntry): void {
    entry.live = false
    if (this.#entries.get(key) === entry) this.#entries.delete(key)
    for (const filter of entry.filters) this.#removeRoute(entry, filter)
    entry.filters.clear()
  }

  /**
   * The session was taken over: its unacknowledged shared-subscription deliveries stay in its
   * inflight records, which the new connection resends; their stream entries are done.
   */
  #ackTickets(entry: LocalEntry): void {
    entry.session.fence()
    for (const ticket of entry.session.takeShareTickets()) this.#shares?.ack(ticket)
  }

  /** Removes one local route of `entry` (a plain subscription, or a shared group membership). */
  #removeRoute(entry: LocalEntry, filter: string): void {
    if (parseSharedSubscription(filter) !== undefined) {
      const stream = entry.tenant.keys.shareStream(filter)
      const group = this.#shareGroups.get(stream)
      if (group !== undefined && group.remove(entry) && group.members.length === 0) {
        this.#shareGroups.delete(stream)
        this.#shares?.remove(stream)
      }
      return
    }
    const local = entry.tenant.local
    const clientId = entry.client.clientId
    if (local.get(filter, clientId)?.entry === entry && local.remove(filter, clientId)) {
      this.#routes.remove(this.#link, entry.tenant.keys.nodeRoutes(filter))
    }
  }

  /**
   * An entry of a shared-subscription stream reached this node: offered to the group's live local
   * members in turn. The member that took it keeps the entry pending until its client acknowledged
   * (PUBACK / PUBREC, through the session's ticket), or it is acknowledged at once (QoS 0). When
   * no local member takes it, it is put back at the end of the stream for another node.
   */
  #onShareEntry(entry: StreamEntry): void {
    const shares = this.#shares
    if (shares === undefined) return
    const ticket: ShareTicket = { stream: entry.stream, id: entry.id }
    const group = this.#shareGroups.get(entry.stream)
    const bytes = entry.fields.get('m')
    if (group !== undefined && bytes !== undefined) {
      const message = decodeMessage(bytes) as Message & { [SHARE_TICKET]?: ShareTicket }
      message[SHARE_TICKET] = ticket
      const taker = group.offer(message, this.#count)
      if (taker !== undefined) {
        this.stats.sharedDelivered++
        // QoS 0 is done once handed over; QoS 1/2 once the client acknowledged (or the entry is
        // held by the session until the engine sends it).
        if (Math.min(message.qos, taker.subscription.qos) === 0) shares.ack(ticket)
        else taker.entry.session.holdShareTicket(ticket)
        return
      }
    }
    this.stats.sharedPassed++
    shares.requeue(ticket, entry.fields).then(
      (kept) => {
        if (!kept) this.stats.sharedDropped++
      },
      () => undefined
    )
  }

  /** Counts what `deliver` answered (bound once: passed to the delivery helpers). */
  readonly #count = (result: DeliveryResult): void => {
    if (result === 'dropped') this.stats.deliveryDropped++
    else this.stats.delivered++
  }

  // ----- helpers

  /** The link once started; rejects with `BackendUnavailableError` while Redis is away. */
  async #use(): Promise<RedisLink> {
    if (this.#closed) throw new BackendUnavailableError('the backend is closed')
    try {
      await this.#ready
    } catch (error) {
      throw new BackendUnavailableError('the Redis backend failed to start', error)
    }
    const link = this.#link as RedisLink
    if (!link.available) throw new BackendUnavailableError()
    return link
  }

  /** The tenant state, its wildcard filter snapshot loaded. */
  async #tenant(id: string | undefined): Promise<TenantState> {
    const tenantId = id ?? this.#defaultTenant
    let tenant = this.#tenants.get(tenantId)
    if (tenant === undefined) {
      tenant = new TenantState(new TenantKeys(this.#root, validateTenant(tenantId)))
      this.#tenants.set(tenantId, tenant)
    }
    if (tenant.loadedAt !== undefined) return tenant
    tenant.loading ??= tenant.load(this.#link as RedisLink, this.#nodeKeys.routeLog)
    await tenant.loading
    return tenant
  }

  /** The local entry `client` owns, or SessionTakenOverError (fencing on this node). */
  #owned(client: ClientHandle): LocalEntry {
    const entry = this.#entries.get(`${client.tenant ?? this.#defaultTenant}\u0000${client.clientId}`)
    if (entry === undefined || entry.client !== client) {
      throw new SessionTakenOverError(`the session of ${client.clientId} belongs to another connection`)
    }
    return entry
  }
}
