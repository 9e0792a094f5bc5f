import type {
  AuthenticationResult,
  Backend,
  ClientHandle,
  Credentials,
  DeliveryResult,
  SetupResult,
  SubscribeResult
} from './backend.js'
import { SessionEntry, sharedGroupKey, subscriber } from './memory-routes.js'
import { SharedGroup } from './shared-groups.js'
import type { MemberRouter } from './shared-groups.js'
import { TopicTree } from './topic-tree.js'
import { PublishWalker } from './publish-walker.js'
import type { Route } from './publish-walker.js'
import { ExpiryWheel } from './expiry-wheel.js'
import { DEFAULT_MAX_RETAINED_BYTES, DEFAULT_MAX_RETAINED_MESSAGES, RetainedStore } from './retained-store.js'
import { SessionTakenOverError } from '../packet/errors.js'
import { ReasonCode } from '../packet/reason-codes.js'
import { parseSharedSubscription } from '../packet/topic.js'
import { DEFAULT_MAX_QUEUED_BYTES, DEFAULT_MAX_QUEUED_MESSAGES, MemorySession } from '../session/memory-session.js'
import type { MemorySessionOptions } from '../session/memory-session.js'
import type { Message, QueuedMessage, StoredSubscription } from '../session/session.js'
import type { BackendCounts, BackendInspection, Page, SessionDetails, SessionQuery, SessionSummary } from './inspection.js'
import { countSessionEntries, listSessionEntries, sessionDetails, sharedLeftovers } from './memory-inspection.js'
import type { MemoryBackendOptions, MemoryBackendStats } from './memory-backend-options.js'

export { DEFAULT_MAX_RETAINED_BYTES, DEFAULT_MAX_RETAINED_MESSAGES } from './retained-store.js'
export type { MemoryBackendOptions, MemoryBackendStats } from './memory-backend-options.js'

/** 0xFFFFFFFF: a session that never expires. */
const NEVER_EXPIRES = 0xffff_ffff

const ALLOW: AuthenticationResult = { result: 'allow' }

/**
 * The embedded backend: sessions, subscriptions, retained messages and offline queues in this
 * process's memory; every method answers synchronously.
 *
 * - Sessions by client identifier (`MemorySession`); `setup` closes a previous live connection with
 *   0x8E Session taken over [MQTT-3.1.4-3]; away sessions expire after their Session Expiry Interval.
 * - One `TopicTree` holds every subscription under key = client identifier, and shared groups
 *   (`$share/{group}/{filter}`) under their inner filter, one entry per group.
 * - `publish` walks the tree once per message and calls `deliver` at most once per client, with the
 *   subscriptions of that client merged (`mergeSubscriptions`); on the QoS 0 path to live clients it
 *   creates no promise, closure or per-subscriber object.
 * - Retained messages in a `RetainedTree`, bounded.
 *
 * Everything lives on the instance, so several backends (one per tenant) can coexist.
 */
export class MemoryBackend implements Backend, BackendInspection {
  /** Counters (see `MemoryBackendStats`). */
  readonly stats: MemoryBackendStats = {
    queued: 0,
    queueDropped: 0,
    queueExpired: 0,
    published: 0,
    delivered: 0,
    deliveryDropped: 0,
    retainedRefused: 0,
    retainedExpired: 0,
    takeovers: 0,
    sessionsExpired: 0,
    sharedRedelivered: 0
  }

  /** See `Backend.responseInformation` (present when the option was given). */
  readonly responseInformation?: (client: ClientHandle) => string | undefined
  /** See `Backend.authorizePublish` (present when the option was given). */
  readonly authorizePublish?: MemoryBackendOptions['authorizePublish']
  /** See `Backend.authorizeSubscribe` (present when the option was given). */
  readonly authorizeSubscribe?: MemoryBackendOptions['authorizeSubscribe']

  readonly #sessions = new Map<string, SessionEntry>()
  readonly #tree = new TopicTree<Route>()
  readonly #walker: PublishWalker
  readonly #retained: RetainedStore
  readonly #sessionOptions: MemorySessionOptions
  readonly #queueQoS0: boolean
  readonly #authenticate: Backend['authenticate'] | undefined
  readonly #authenticationMethods: readonly string[]
  readonly #expiryCheckInterval: number
  readonly #now: () => number
  #expiryTimer: ReturnType<typeof setInterval> | undefined = undefined
  /** Away sessions by expiry time; swept by the one expiry timer. */
  readonly #expiring: ExpiryWheel<SessionEntry>

  /** How shared groups reach their members; bound once too. */
  readonly #router: MemberRouter = {
    deliverLive: (entry, message, subscription) => this.#deliverLive(entry, message, subscription),
    enqueue: (entry, message, subscription) => this.#enqueue(entry, message, subscription)
  }

  constructor(options: MemoryBackendOptions = {}) {
    this.#now = options.now ?? Date.now
    this.#sessionOptions = {
      maxQueuedMessages: options.maxQueuedMessages ?? DEFAULT_MAX_QUEUED_MESSAGES,
      maxQueuedBytes: options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES,
      stats: this.stats,
      now: this.#now
    }
    this.#retained = new RetainedStore(
      options.maxRetainedMessages ?? DEFAULT_MAX_RETAINED_MESSAGES,
      this.stats,
      this.#now,
      options.maxRetainedBytes ?? DEFAULT_MAX_RETAINED_BYTES
    )
    this.#queueQoS0 = options.queueQoS0 ?? false
    this.#authenticate = options.authenticate
    this.#authenticationMethods = options.authenticationMethods ?? options.authenticate?.authenticationMethods ?? []
    this.#expiryCheckInterval = options.expiryCheckInterval ?? 10_000
    this.#expiring = new ExpiryWheel(this.#expiryCheckInterval)
    this.#walker = new PublishWalker(this.#tree, (entry, message, subscription) => this.#routeTo(entry, message, subscription), this.#router, options.sharedSubscriptionPolicy === 'random')
    // Optional hooks exist only when configured: the engine skips what a backend does not have.
    if (options.responseInformation !== undefined) this.responseInformation = options.responseInformation
    if (options.authorizePublish !== undefined) this.authorizePublish = options.authorizePublish
    if (options.authorizeSubscribe !== undefined) this.authorizeSubscribe = options.authorizeSubscribe
  }

  /** Number of sessions held (connected or away). */
  get sessionCount(): number {
    return this.#sessions.size
  }

  /** Number of retained messages held. */
  get retainedCount(): number {
    return this.#retained.size
  }

  /** Number of topic tree entries (ordinary subscriptions plus shared groups). */
  get routeCount(): number {
    return this.#tree.size
  }

  /** The session of `clientId`, if one is held (for inspection and tests). */
  getSession(clientId: string): MemorySession | undefined {
    return this.#sessions.get(clientId)?.session
  }

  // ---- BackendInspection (the management API; this backend holds one tenant: `tenant` is ignored) ----

  listSessions(tenant: string | undefined, query: SessionQuery): Page<SessionSummary> {
    return listSessionEntries(this.#sessions, tenant, query)
  }

  inspectSession(tenant: string | undefined, clientId: string): SessionDetails | undefined {
    return sessionDetails(this.#sessions, tenant, clientId)
  }

  deleteSession(_tenant: string | undefined, clientId: string): boolean {
    const entry = this.#sessions.get(clientId)
    if (entry === undefined) return false
    const client = entry.client
    // Detach first: the connection's teardown then finds no session of its own to end.
    entry.client = undefined
    entry.live = false
    if (client !== undefined && client.connected) client.close(ReasonCode.AdministrativeAction, 'session deleted by an administrator')
    this.#endSession(entry)
    return true
  }

  addSessionSubscription(_tenant: string | undefined, clientId: string, subscription: StoredSubscription): boolean {
    const entry = this.#sessions.get(clientId)
    if (entry === undefined) return false
    if (entry.session.listSubscriptions().some((s) => s.topicFilter === subscription.topicFilter)) this.#unroute(entry, subscription.topicFilter)
    entry.session.saveSubscription(subscription)
    this.#route(entry, subscription)
    return true
  }

  removeSessionSubscription(_tenant: string | undefined, clientId: string, topicFilter: string): boolean | undefined {
    const entry = this.#sessions.get(clientId)
    if (entry === undefined) return undefined
    const existed = entry.session.deleteSubscription(topicFilter)
    if (existed) this.#unroute(entry, topicFilter)
    return existed
  }

  listRetained(_tenant: string | undefined, filter: string, limit: number): Message[] {
    const found = this.#retained.match(filter)
    found.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0))
    return found.slice(0, limit)
  }

  counts(_tenant: string | undefined): BackendCounts {
    return countSessionEntries(this.#sessions, this.#retained.size)
  }

  listTenants(): (string | undefined)[] {
    return [undefined]
  }

  authenticate(client: ClientHandle, credentials: Credentials): AuthenticationResult | Promise<AuthenticationResult> {
    return this.#authenticate === undefined ? ALLOW : this.#authenticate(client, credentials)
  }

  authenticationMethods(_client: ClientHandle): readonly string[] {
    return this.#authenticationMethods
  }

  setup(client: ClientHandle, clean: boolean, expiryInterval: number): SetupResult {
    const clientId = client.clientId
    let entry = this.#sessions.get(clientId)
    if (entry !== undefined && entry.client === undefined && entry.expiresAt < this.#now()) {
      this.#endSession(entry)
      this.stats.sessionsExpired++
      entry = undefined
    }
    let present = false
    if (entry === undefined) {
      entry = new SessionEntry(new MemorySession(clientId, expiryInterval, this.#sessionOptions))
      this.#sessions.set(clientId, entry)
    } else {
      const previous = entry.client
      // A session with expiry 0 ends with its connection, which this setup takes over: it must not
      // be resumed (3.1.1 [MQTT-3.1.2-6] [MQTT-3.2.2-2]; 5.0 3.1.2.11.2 [MQTT-3.2.2-3]).
      const ending = previous !== undefined && previous !== client && entry.session.expiryInterval === 0
      if (previous !== undefined && previous !== client) {
        // Detach first: the old connection no longer owns the session, whatever its close does.
        entry.client = undefined
        entry.live = false
        if (previous.connected) {
          this.stats.takeovers++
          previous.close(ReasonCode.SessionTakenOver, 'another connection took the session over')
        }
      }
      if (clean || ending) {
        // A fresh session object: the old connection, if it writes late, writes to an orphan.
        const leftovers = sharedLeftovers(entry)
        this.#unrouteAll(entry)
        entry.session = new MemorySession(clientId, expiryInterval, this.#sessionOptions)
        this.#redeliverShared(leftovers)
      } else {
        present = true
      }
    }
    entry.client = client
    entry.live = false
    entry.expiresAt = Number.POSITIVE_INFINITY
    entry.session.expiryInterval = expiryInterval
    return { session: entry.session, present }
  }

  queueOffline(client: ClientHandle): void {
    const entry = this.#owned(client)
    // Deliveries may publish (a closing client's will) and queue more for this client: drain until empty.
    for (let items = entry.session.drainQueue(); items.length > 0; items = entry.session.drainQueue()) {
      for (const item of items) this.#count(client.deliver(item.message, item.subscription))
    }
    if (entry.client === client) entry.live = true
  }

  subscribe(client: ClientHandle, subscriptions: StoredSubscription[]): SubscribeResult[] {
    const entry = this.#owned(client)
    const results: SubscribeResult[] = []
    for (const subscription of subscriptions) {
      entry.session.saveSubscription(subscription)
      this.#route(entry, subscription)
      results.push(subscription.qos)
    }
    return results
  }

  unsubscribe(client: ClientHandle, topicFilters: string[]): number[] {
    const entry = this.#owned(client)
    const results: number[] = []
    for (const filter of topicFilters) {
      const existed = entry.session.deleteSubscription(filter)
      if (existed) this.#unroute(entry, filter)
      results.push(existed ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted)
    }
    return results
  }

  storeRetained(_client: ClientHandle | undefined, message: Message): void | boolean {
    return this.#retained.store(message)
  }

  queueRetained(client: ClientHandle, subscription: StoredSubscription): void {
    // Retained messages go to new non-shared subscriptions only (MQTT 5.0 section 3.3.1.3).
    if (parseSharedSubscription(subscription.topicFilter) !== undefined) return
    for (const message of this.#retained.match(subscription.topicFilter)) {
      this.#count(client.deliver(message, subscription, true))
    }
  }

  publish(_client: ClientHandle | undefined, message: Message): number {
    this.stats.published++
    return this.#walker.publish(message)
  }

  terminate(client: ClientHandle): void {
    const entry = this.#sessions.get(client.clientId)
    // A connection that lost its session to a takeover has nothing left to end.
    if (entry === undefined || entry.client !== client) return
    entry.client = undefined
    entry.live = false
    const expiry = entry.session.expiryInterval
    if (expiry === 0) {
      this.#endSession(entry)
      return
    }
    if (expiry >= NEVER_EXPIRES) return
    entry.expiresAt = this.#now() + expiry * 1000
    this.#expiring.add(entry, entry.expiresAt)
    this.#startExpiryTimer()
  }

  close(): void {
    if (this.#expiryTimer !== undefined) clearInterval(this.#expiryTimer)
    this.#expiryTimer = undefined
    this.#sessions.clear()
    this.#expiring.clear()
    this.#tree.clear()
    this.#retained.clear()
  }

  /**
   * Removes the away sessions whose Session Expiry Interval has run out (at `now`), with their
   * subscriptions and queues. Runs by itself every `expiryCheckInterval` ms while such sessions
   * exist (one timer for all of them, over a wheel of expiry times: a sweep only visits what can be
   * due); `setup` also checks the session it resumes. Returns the number removed.
   */
  expireSessions(now: number = this.#now()): number {
    let removed = 0
    this.#expiring.sweep(now, (entry, at) => {
      // Stale: the session was resumed (and maybe left again with another deadline) or removed.
      if (entry.client !== undefined || entry.expiresAt !== at || this.#sessions.get(entry.session.clientId) !== entry) {
        return 'drop'
      }
      if (at >= now) return 'keep'
      this.#endSession(entry)
      removed++
      return 'drop'
    })
    this.stats.sessionsExpired += removed
    if (this.#expiring.size === 0 && this.#expiryTimer !== undefined) {
      clearInterval(this.#expiryTimer)
      this.#expiryTimer = undefined
    }
    return removed
  }

  /** Delivers to the entry's live connection; undefined when it has none. */
  #deliverLive(entry: SessionEntry, message: Message, subscription: StoredSubscription): DeliveryResult | undefined {
    const client = entry.client
    if (client === undefined || !entry.live || !client.connected) return undefined
    const result = client.deliver(message, subscription)
    this.#count(result)
    return result
  }

  /**
   * Queues for an entry without a live connection. A connecting client's queue takes every message
   * (it is drained in a moment); an away session's only those delivered at QoS 1/2 unless
   * `queueQoS0`. Expired away sessions take nothing. Returns false when not queued.
   */
  #enqueue(entry: SessionEntry, message: Message, subscription: StoredSubscription): boolean {
    const client = entry.client
    if (client !== undefined && entry.live && client.connected) return false
    const connecting = client !== undefined && !entry.live && client.connected
    if (!connecting) {
      // Away (or closed and not yet terminated): only persistent, unexpired sessions keep messages.
      if (entry.session.expiryInterval === 0) return false
      const qos = message.qos < subscription.qos ? message.qos : subscription.qos
      if (qos === 0 && !this.#queueQoS0) return false
      if (entry.expiresAt !== Number.POSITIVE_INFINITY && entry.expiresAt < this.#now()) return false
    }
    return entry.session.enqueue({ message, subscription })
  }

  #routeTo(entry: SessionEntry, message: Message, subscription: StoredSubscription): void {
    const client = entry.client
    if (client !== undefined && entry.live && client.connected) {
      this.#count(client.deliver(message, subscription))
      return
    }
    this.#enqueue(entry, message, subscription)
  }

  #count(result: DeliveryResult): void {
    if (result === 'dropped') this.stats.deliveryDropped++
    else this.stats.delivered++
  }

  /** The entry `client` owns, or SessionTakenOverError when another connection took it (fencing). */
  #owned(client: ClientHandle): SessionEntry {
    const entry = this.#sessions.get(client.clientId)
    if (entry === undefined || entry.client !== client) {
      throw new SessionTakenOverError(`the session of ${client.clientId} belongs to another connection`)
    }
    return entry
  }

  #route(entry: SessionEntry, subscription: StoredSubscription): void {
    const shared = parseSharedSubscription(subscription.topicFilter)
    if (shared === undefined) {
      this.#tree.add(subscription.topicFilter, entry.session.clientId, subscriber(entry, subscription))
      return
    }
    const key = sharedGroupKey(shared.group)
    let group = this.#tree.get(shared.filter, key) as SharedGroup | undefined
    if (group === undefined) {
      group = new SharedGroup(shared.group, shared.filter)
      this.#tree.add(shared.filter, key, group)
    }
    group.add(entry, subscription)
  }

  #unroute(entry: SessionEntry, topicFilter: string): void {
    const shared = parseSharedSubscription(topicFilter)
    if (shared === undefined) {
      this.#tree.remove(topicFilter, entry.session.clientId)
      return
    }
    const key = sharedGroupKey(shared.group)
    const group = this.#tree.get(shared.filter, key) as SharedGroup | undefined
    if (group === undefined) return
    group.remove(entry)
    if (group.size === 0) this.#tree.remove(shared.filter, key)
  }

  #unrouteAll(entry: SessionEntry): void {
    for (const subscription of entry.session.listSubscriptions()) this.#unroute(entry, subscription.topicFilter)
  }

  /**
   * A session ends (expiry 0 at terminate, or expired while away): its shared-subscription
   * messages go to another member of their group (MQTT 5.0 4.8.2), then it is dropped.
   */
  #endSession(entry: SessionEntry): void {
    const leftovers = sharedLeftovers(entry)
    this.#dropEntry(entry)
    this.#redeliverShared(leftovers)
  }

  /** Offer each leftover to its group (the session that left is no member any more). */
  #redeliverShared(items: QueuedMessage[] | undefined): void {
    if (items === undefined) return
    for (const item of items) {
      const shared = parseSharedSubscription(item.subscription.topicFilter)
      if (shared === undefined) continue
      const group = this.#tree.get(shared.filter, sharedGroupKey(shared.group)) as SharedGroup | undefined
      if (group !== undefined && group.route(item.message, this.#router)) this.stats.sharedRedelivered++
    }
  }

  #dropEntry(entry: SessionEntry): void {
    this.#unrouteAll(entry)
    if (this.#sessions.get(entry.session.clientId) === entry) this.#sessions.delete(entry.session.clientId)
  }

  #startExpiryTimer(): void {
    if (this.#expiryTimer !== undefined) return
    this.#expiryTimer = setInterval(() => this.expireSessions(), this.#expiryCheckInterval)
    // Never keep the process alive just to expire sessions.
    this.#expiryTimer.unref()
  }
}
