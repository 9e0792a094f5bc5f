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
import { mergeSubscriptions } from '../merge.js'
import { SessionTakenOverError } from '../../packet/errors.js'
import { ReasonCode } from '../../packet/reason-codes.js'
import { parseSharedSubscription } from '../../packet/topic.js'
import type { Message, Session, StoredSubscription } from '../../session/session.js'
import { decodeMessage, encodeMessage, fromJson, toJson } from './codec.js'
import { KeyvSession, enqueueFor } from './keyv-session.js'
import type { KeyvSessionContext } from './keyv-session.js'
import { NodeKeys, SessionSuffix, TenantKeys, validateRootPrefix, validateTenant } from './keys.js'
import { LocalEntry, TenantState, deliverLive, drainQueue } from './local-state.js'
import { BackendUnavailableError, RedisLink } from './redis-link.js'
import type { LinkEvent, RedisClientLike } from './redis-link.js'
import { KickBook } from './kick-book.js'
import { expireSessions, reapDeadNodes } from './maintenance.js'
import { findRetained, storeRetainedMessage } from './retained.js'
import { ALL_SCRIPTS, REINDEX, SUBSCRIBE, TAKEOVER, TERMINATE, UNSUBSCRIBE } from './scripts.js'
import { StreamReader } from './stream-reader.js'
import type { StreamEntry } from './stream-reader.js'

/** Options of a `KeyvBackend`. Give `keyv` or `url`. */
export interface KeyvBackendOptions {
  /**
   * A Keyv whose store is a `@keyv/redis` 5 adapter (`createKeyv(url)`); its `store.client` becomes
   * the command connection. The backend never subscribes or blocks on it and never closes it.
   */
  keyv?: Keyv
  /** A Redis URL (`redis://127.0.0.1:6379`): the backend creates (and closes) its own Keyv. */
  url?: string
  /** This process's node id (default `hostname:pid:random`); unique per process start. */
  nodeId?: string
  /** Root of every key (default `mq`). */
  prefix?: string
  /** Tenant of connections whose handle has none, and of broker-made messages (default `default`). */
  namespace?: string
  /** Most messages per offline queue (default 1000); the oldest QoS 0 message is evicted first. */
  maxQueuedMessages?: number
  /** Most retained messages per tenant (default 100,000). */
  maxRetainedMessages?: number
  /** Per-command timeout in ms (default 5000): a command without answer fails the operation. */
  commandTimeout?: number
  /**
   * How long the start-up may take to reach Redis (default 10,000 ms). After it `ready()` and every
   * method reject with `BackendUnavailableError`; the backend must be made again.
   */
  connectTimeout?: number
  /** Heartbeat period in ms (default 2000); a node silent for 3 periods counts as dead. */
  heartbeatInterval?: number
  /** How long `setup` waits for a remote node to close a taken-over connection (default 3000 ms). */
  takeoverTimeout?: number
  /** Approximate bound of the broadcast stream (default 100,000 entries). */
  busMaxLength?: number
  /** Called for authentication; default: allow everyone. */
  authenticate?: Backend['authenticate']
  /** Where log lines go (default: warnings and errors to `console.error`). */
  log?: (level: 'info' | 'warn' | 'error', message: string) => void
}

/** Events of a `KeyvBackend`: Redis became unreachable (once per outage) or reachable again. */
export type KeyvBackendEvent = { type: 'unavailable'; error: unknown } | { type: 'available' }

/** Counters of a `KeyvBackend` (this node only). They only grow. */
export interface KeyvBackendStats {
  published: number
  delivered: number
  deliveryDropped: number
  queued: number
  queueDropped: number
  queueExpired: number
  retainedRefused: number
  takeovers: number
  busReceived: number
  sessionsExpired: number
  /** Dead nodes whose sessions this node released. */
  nodesReaped: number
}

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
 * - Live messages are broadcast: one XADD per publish to a shared stream that every node reads with
 *   XREAD BLOCK on its own connection, delivering to its own clients.
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
  readonly stats: KeyvBackendStats = {
    published: 0,
    delivered: 0,
    deliveryDropped: 0,
    queued: 0,
    queueDropped: 0,
    queueExpired: 0,
    retainedRefused: 0,
    takeovers: 0,
    busReceived: 0,
    sessionsExpired: 0,
    nodesReaped: 0
  }
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
  readonly #commandTimeout: number
  readonly #connectTimeout: number
  readonly #authenticate: Backend['authenticate'] | undefined
  readonly #log: (level: 'info' | 'warn' | 'error', message: string) => void
  readonly #events = new Subject<KeyvBackendEvent>()
  readonly #tenants = new Map<string, TenantState>()
  readonly #entries = new Map<string, LocalEntry>()
  readonly #kicks = new KickBook()
  /** Sessions whose connection ended while Redis was away: ended in Redis once it is back. */
  readonly #unfinished = new Set<LocalEntry>()
  readonly #ready: Promise<void>
  #link: RedisLink | undefined = undefined
  #ctx: KeyvSessionContext | undefined = undefined
  #reader: StreamReader | undefined = undefined
  #timer: ReturnType<typeof setInterval> | undefined = undefined
  #closed = false
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
    this.#commandTimeout = options.commandTimeout ?? 5000
    this.#connectTimeout = options.connectTimeout ?? 10_000
    this.#authenticate = options.authenticate
    this.#log = options.log ?? ((level, message) => (level === 'info' ? undefined : console.error(`[KeyvBackend] ${message}`)))
    this.events$ = this.#events.asObservable()
    this.#ready = this.#start()
    // Callers see the failure through `ready()` and every method; never an unhandled rejection.
    this.#ready.catch(() => undefined)
  }

  /** Resolves once connected and registered as a node; rejects if the start-up failed. */
  async ready(): Promise<void> {
    await this.#ready
  }

  authenticate(client: ClientHandle, credentials: Credentials): AuthenticationResult | Promise<AuthenticationResult> {
    return this.#authenticate === undefined ? ALLOW : this.#authenticate(client, credentials)
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
    for (const subscription of await entry.session.listSubscriptions()) this.#addRoute(entry, subscription)
    entry.live = true
    await this.#drain(entry)
  }

  async subscribe(client: ClientHandle, _session: Session, subscriptions: StoredSubscription[]): Promise<SubscribeResult[]> {
    const link = await this.#use()
    const entry = this.#owned(client)
    const keys = entry.tenant.keys
    const results = await Promise.all(
      subscriptions.map(async (subscription): Promise<SubscribeResult> => {
        // Shared subscriptions across nodes are the next milestone [MQTT-4.8.2] (0x9E meanwhile).
        if (parseSharedSubscription(subscription.topicFilter) !== undefined) return ReasonCode.SharedSubscriptionsNotSupported
        await link.script(
          SUBSCRIBE,
          [entry.session.key],
          [this.nodeId, entry.session.epoch, subscription.topicFilter, toJson(subscription), keys.prefix, client.clientId, this.#nodeKeys.routeLog, keys.tenant]
        )
        this.#addRoute(entry, subscription)
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
        const n = await link.script<number>(
          UNSUBSCRIBE,
          [entry.session.key],
          [this.nodeId, entry.session.epoch, filter, keys.prefix, client.clientId, this.#nodeKeys.routeLog, keys.tenant]
        )
        if (entry.filters.delete(filter)) entry.tenant.local.remove(filter, client.clientId)
        return n === 1 ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted
      })
    )
  }

  async storeRetained(client: ClientHandle | undefined, message: Message): Promise<void> {
    const link = await this.#use()
    const keys = (await this.#tenant(client?.tenant)).keys
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

  async publish(client: ClientHandle | undefined, message: Message): Promise<number> {
    const link = await this.#use()
    const tenant = await this.#tenant(client?.tenant)
    const keys = tenant.keys
    this.stats.published++
    const filters = [message.topic]
    tenant.wildcards.match(message.topic, (_value, _key, filter) => filters.push(filter))
    const bus = link.send(['XADD', this.#nodeKeys.bus, 'MAXLEN', '~', this.#busMax, '*', 't', keys.tenant, 'n', this.nodeId, 'm', encodeMessage(message)])
    const counts = link.sendText<(string | null)[]>(['HMGET', keys.filterCounts, ...filters])
    // QoS 0 messages never take the durable path: no need to read the persistent subscribers.
    const persistent = message.qos === 0 ? [] : filters.map((f) => link.sendText<string[]>(['HGETALL', keys.persistentSubscribers(f)]))
    // Live deliveries on this node now; other nodes read the bus.
    this.#deliverLocal(tenant, message)
    const [countReply, , ...subscriberReplies] = await Promise.all([counts, bus, ...persistent])
    let count = 0
    for (const c of countReply) if (c !== null) count += Number(c)
    // Durable path: one queue entry per persistent session, its matching subscriptions merged.
    const merged = new Map<string, StoredSubscription>()
    for (const flat of subscriberReplies) {
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const clientId = flat[i] as string
        const subscription = fromJson<StoredSubscription>(flat[i + 1] as string)
        if (subscription.noLocal === true && message.origin === clientId) continue
        const previous = merged.get(clientId)
        merged.set(clientId, previous === undefined ? subscription : mergeSubscriptions(previous, subscription))
      }
    }
    const ctx = this.#ctx as KeyvSessionContext
    const enqueues: Promise<void>[] = []
    for (const [clientId, subscription] of merged) {
      if ((message.qos < subscription.qos ? message.qos : subscription.qos) === 0) continue
      enqueues.push(
        enqueueFor(ctx, keys, clientId, { message, subscription }).then(({ queued, owner }) => {
          if (queued && owner === this.nodeId) this.#wake(keys.tenant, clientId)
        })
      )
    }
    await Promise.all(enqueues)
    return count
  }

  async terminate(client: ClientHandle, _session: Session | undefined): Promise<void> {
    const tenant = this.#tenants.get(client.tenant ?? this.#defaultTenant)
    if (tenant === undefined) return
    const entryKey = `${tenant.keys.tenant}\u0000${client.clientId}`
    const entry = this.#entries.get(entryKey)
    // A connection that lost its session to a takeover has nothing left to end.
    if (entry === undefined || entry.client !== client) return
    this.#detach(entryKey, entry)
    try {
      await this.#endSession(entry)
    } catch (error) {
      // Redis is away: end the session in Redis once it is back (else it would stay "online" here).
      if (error instanceof BackendUnavailableError && !this.#closed) this.#unfinished.add(entry)
      throw error
    }
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
    const link = this.#link
    if (link !== undefined && link.available) {
      // Connections still open (the engine normally ends them first): their sessions end here,
      // since a node that left the registry is never reaped.
      const open = [...this.#entries.values()]
      for (const entry of open) entry.live = false
      await Promise.allSettled(open.map((entry) => this.#endSession(entry, true)))
      try {
        await Promise.all([
          link.send(['ZREM', this.#nodeKeys.nodes, this.nodeId]),
          link.send(['DEL', this.#nodeKeys.inbox(this.nodeId)]),
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
    this.#ctx = { link, nodeKeys: this.#nodeKeys, nodeId: this.nodeId, maxQueuedMessages: this.#maxQueued, stats: this.stats }
    const blocking = client.duplicate()
    blocking.on('error', () => undefined)
    await blocking.connect()
    const last = async (key: string): Promise<string> => {
      const reply = await link.sendText<[string, unknown][]>(['XREVRANGE', key, '+', '-', 'COUNT', '1'])
      return reply[0]?.[0] ?? '0-0'
    }
    const [busId, logId] = await Promise.all([last(this.#nodeKeys.bus), last(this.#nodeKeys.routeLog)])
    await this.#heartbeat()
    this.#reader = new StreamReader(
      blocking,
      [
        [this.#nodeKeys.bus, busId],
        [this.#nodeKeys.routeLog, logId],
        [this.#nodeKeys.inbox(this.nodeId), '0-0']
      ],
      (entry) => this.#onStreamEntry(entry),
      () => undefined
    )
    this.#reader.start()
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
    await link.send(['ZADD', this.#nodeKeys.nodes, String(now), this.nodeId])
    // Only after the link answered: @keyv/redis would silently reopen a client someone closed.
    await this.keyv.set(this.#nodeKeys.nodeRecord(this.nodeId), { nodeId: this.nodeId, pid: process.pid, seen: now }, this.#heartbeatMs * 5)
  }

  async #tick(): Promise<void> {
    const link = this.#link
    if (this.#closed || link === undefined || !link.available) return
    try {
      await this.#heartbeat()
      const now = Date.now()
      for (const { node, sessions } of await reapDeadNodes(link, this.#nodeKeys, this.#root, this.nodeId, 3 * this.#heartbeatMs, now)) {
        this.stats.nodesReaped++
        this.#log('warn', `node ${node} stopped heart-beating: ${sessions} session(s) released`)
      }
      const tenants = Array.from(this.#tenants.values(), (tenant) => tenant.keys)
      this.stats.sessionsExpired += await expireSessions(link, this.#nodeKeys, tenants, now)
    } catch {
      // Reported once through the availability events.
    }
  }

  #onLinkEvent(event: LinkEvent): void {
    if (this.#closed) return
    if (event.type === 'unavailable') {
      const reason = event.error instanceof Error ? event.error.message : String(event.error)
      this.#log('error', `Redis unavailable (node ${this.nodeId}): ${reason}; publishes and new sessions are refused until it is back`)
    } else {
      this.#log('info', `Redis available again (node ${this.nodeId})`)
      // Redis may have restarted without persistence: reload the filter snapshots.
      for (const tenant of this.#tenants.values()) tenant.unload()
      void this.#heartbeat().catch(() => undefined)
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
    if (entry.stream === this.#nodeKeys.bus) {
      if (text('n') === this.nodeId) return
      const tenant = this.#tenants.get(text('t'))
      if (tenant === undefined) return
      const bytes = f.get('m')
      if (bytes === undefined) return
      this.stats.busReceived++
      this.#deliverLocal(tenant, decodeMessage(bytes))
      return
    }
    if (entry.stream === this.#nodeKeys.routeLog) {
      this.#tenants.get(text('t'))?.applyRouteChange(entry.id, text('f'), text('c') === '1')
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

  #addRoute(entry: LocalEntry, subscription: StoredSubscription): void {
    if (parseSharedSubscription(subscription.topicFilter) !== undefined) return
    entry.tenant.local.add(subscription.topicFilter, entry.client.clientId, { entry, subscription })
    entry.filters.add(subscription.topicFilter)
    if (isWildcard(subscription.topicFilter)) entry.tenant.wildcards.add(subscription.topicFilter, '', true)
  }

  /** Removes `entry` from this node: no more deliveries, no local routes. */
  #detach(key: string, entry: LocalEntry): void {
    entry.live = false
    if (this.#entries.get(key) === entry) this.#entries.delete(key)
    const local = entry.tenant.local
    const clientId = entry.client.clientId
    for (const filter of entry.filters) {
      if (local.get(filter, clientId)?.entry === entry) local.remove(filter, clientId)
    }
    entry.filters.clear()
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
