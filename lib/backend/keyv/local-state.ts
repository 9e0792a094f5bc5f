import type { ClientHandle, DeliveryResult } from '../backend.js'
import { mergeSubscriptions } from '../merge.js'
import { TopicTree } from '../topic-tree.js'
import type { Message, StoredSubscription } from '../../session/session.js'
import type { KeyvSession } from './keyv-session.js'
import type { TenantKeys } from './keys.js'
import type { RedisLink } from './redis-link.js'
import { LOAD_FILTERS } from './routing-scripts.js'
import { parseSharedSubscription } from '../../packet/topic.js'

/**
 * What one node keeps about a connection it serves: the handle, the session it owns and the
 * drain state of the session's offline queue. Internal to `KeyvBackend`.
 *
 * States: connecting (`live` false, between `setup` and `queueOffline`), live (`live` true), gone
 * (removed from the backend's map by `terminate` or a takeover).
 */
export class LocalEntry {
  readonly client: ClientHandle
  readonly session: KeyvSession
  readonly tenant: TenantState
  /** Whether the session outlives the connection (then QoS 1/2 deliveries use the queue). */
  readonly persistent: boolean
  live = false
  /** Filters this entry has in its tenant's local tree. */
  readonly filters = new Set<string>()
  /** The running drain of the offline queue, if any. */
  draining: Promise<void> | undefined = undefined
  /** Set when more was queued while draining: drain again. */
  again = false
  /**
   * A delayed will of the session's previous connection was scheduled at setup: once this
   * connection is accepted (`queueOffline`), 'cancel' it [MQTT-3.1.3-9], or 'publish' it now (its
   * Clean Start ended that session). Undefined: none, or settled.
   */
  delayedWill: 'cancel' | 'publish' | undefined = undefined

  constructor(client: ClientHandle, session: KeyvSession, tenant: TenantState, persistent: boolean) {
    this.client = client
    this.session = session
    this.tenant = tenant
    this.persistent = persistent
  }
}

/** The value of a local route: one live client's subscription. */
export interface LocalRoute {
  readonly entry: LocalEntry
  readonly subscription: StoredSubscription
}

/**
 * The members of one shared subscription (`$share/{group}/{filter}`) that this node serves live,
 * with a round-robin cursor. Internal to `KeyvBackend`.
 */
export class LocalShareGroup {
  /** The whole filter, `$share/{group}/{filter}`. */
  readonly filter: string
  /** The Redis stream of the group. */
  readonly stream: string
  readonly members: LocalRoute[] = []
  #next = 0

  constructor(filter: string, stream: string) {
    this.filter = filter
    this.stream = stream
  }

  /** Adds a member, or replaces its subscription. */
  add(entry: LocalEntry, subscription: StoredSubscription): void {
    const at = this.members.findIndex((m) => m.entry === entry)
    if (at >= 0) this.members[at] = { entry, subscription }
    else this.members.push({ entry, subscription })
  }

  /** Removes a member; true if it was one. */
  remove(entry: LocalEntry): boolean {
    const at = this.members.findIndex((m) => m.entry === entry)
    if (at < 0) return false
    this.members.splice(at, 1)
    if (this.#next > at) this.#next--
    return true
  }

  /**
   * Offers `message` to the live members in round-robin order until one takes it (its `deliver`
   * does not answer 'dropped'). Returns the member that took it, or undefined.
   */
  offer(message: Message, count: (result: DeliveryResult) => void): LocalRoute | undefined {
    const n = this.members.length
    for (let k = 0; k < n; k++) {
      const i = (this.#next + k) % n
      const member = this.members[i]
      if (member === undefined) continue
      const { entry, subscription } = member
      if (!entry.live || !entry.client.connected) continue
      const result = entry.client.deliver(message, subscription)
      count(result)
      if (result !== 'dropped') {
        this.#next = (i + 1) % Math.max(1, this.members.length)
        return member
      }
    }
    return undefined
  }
}

/** A route log entry waiting for the tenant's filter snapshot. */
export interface PendingRouteChange {
  id: string
  filter: string
  present: boolean
  version: number
}

/** What one node keeps per tenant. Internal to `KeyvBackend`. */
export class TenantState {
  readonly keys: TenantKeys
  /** Subscriptions of the connections this node serves, key = client id. */
  readonly local = new TopicTree<LocalRoute>()
  /** Every wildcard filter with at least one subscriber in the tenant (any node), from the route log. */
  readonly wildcards = new TopicTree<true>()
  /** Shared subscriptions of the tenant (any node), key = `$share/{group}/{filter}`, under the inner filter. */
  readonly shared = new TopicTree<true>()
  /** The route log id of the snapshot the wildcard tree was built from (undefined: not loaded). */
  loadedAt: string | undefined = undefined
  /** The snapshot being loaded. */
  loading: Promise<void> | undefined = undefined
  /** Route log entries received while loading. */
  pending: PendingRouteChange[] = []
  /** The tenant's filter version (`wv`: new wildcard and shared filters) the trees are at (see PUBLISH_BATCH). */
  wildcardVersion = 0
  /** Callers waiting for the tree to reach a version (`reached`). */
  #waiters: { version: number; resolve: () => void }[] = []

  constructor(keys: TenantKeys) {
    this.keys = keys
  }

  /** Applies a route log entry: a wildcard filter gained its first or lost its last subscriber. */
  applyRouteChange(id: string, filter: string, present: boolean, version = 0): void {
    if (this.loadedAt === undefined) {
      if (this.loading !== undefined) this.pending.push({ id, filter, present, version })
      return
    }
    if (compareStreamIds(id, this.loadedAt) <= 0) return
    this.#apply(filter, present)
    if (version > this.wildcardVersion) this.#advance(version)
  }

  #advance(version: number): void {
    this.wildcardVersion = version
    if (this.#waiters.length === 0) return
    const due = this.#waiters.filter((w) => w.version <= version)
    this.#waiters = this.#waiters.filter((w) => w.version > version)
    for (const w of due) w.resolve()
  }

  /**
   * Resolves once the wildcard tree includes every wildcard filter up to `version` (the route log
   * reader got there), or after `timeoutMs` (resolves false then).
   */
  async reached(version: number, timeoutMs: number): Promise<boolean> {
    if (this.wildcardVersion >= version) return true
    return await new Promise<boolean>((resolve) => {
      const waiter = {
        version,
        resolve: () => {
          clearTimeout(timer)
          resolve(true)
        }
      }
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter)
        resolve(false)
      }, timeoutMs)
      this.#waiters.push(waiter)
    })
  }

  #apply(filter: string, present: boolean): void {
    const share = parseSharedSubscription(filter)
    const tree = share === undefined ? this.wildcards : this.shared
    const at = share === undefined ? filter : share.filter
    const key = share === undefined ? '' : filter
    if (present) tree.add(at, key, true)
    else tree.remove(at, key)
  }

  /**
   * Loads the tenant's wildcard filters and the route log position in one script, then applies
   * the log entries that arrived meanwhile (those after the position). Sets `loadedAt`.
   */
  async load(link: RedisLink, routeLog: string): Promise<void> {
    try {
      const reply = await link.script<Buffer[]>(LOAD_FILTERS, [this.keys.filterCounts, routeLog, this.keys.wildcardVersion], [])
      const [id, version, ...flat] = reply.map((b) => b.toString())
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const filter = flat[i] as string
        if (Number(flat[i + 1]) <= 0) continue
        if (filter.startsWith('$share/') || filter.includes('+') || filter.includes('#')) this.#apply(filter, true)
      }
      this.loadedAt = id ?? '0-0'
      this.#advance(Number(version ?? '0'))
      for (const change of this.pending) this.applyRouteChange(change.id, change.filter, change.present, change.version)
      this.pending = []
    } finally {
      this.loading = undefined
    }
  }

  /** Forgets the wildcard snapshot (after Redis came back: it may have lost data). */
  unload(): void {
    this.loadedAt = undefined
    this.loading = undefined
    this.pending = []
    this.wildcardVersion = 0
    this.wildcards.clear()
    this.shared.clear()
  }
}

/** Compares two stream ids `ms-seq` numerically. */
export function compareStreamIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-')
  const [bm = '0', bs = '0'] = b.split('-')
  const d = Number(am) - Number(bm)
  if (d !== 0) return d < 0 ? -1 : 1
  const e = Number(as) - Number(bs)
  return e === 0 ? 0 : e < 0 ? -1 : 1
}

/**
 * Delivers `message` to the live local clients of `tenant` whose subscriptions match, once per
 * client with its matching subscriptions merged; skips No Local subscriptions of the publisher
 * [MQTT-3.8.3-3], and QoS 1/2 deliveries to persistent sessions (those go through their queue).
 * Returns the number of local subscriptions that matched (before merging).
 */
export function deliverLive(tenant: TenantState, message: Message, count: (result: DeliveryResult) => void): number {
  if (tenant.local.size === 0) return 0
  const merged = new Map<LocalEntry, StoredSubscription>()
  let matched = 0
  tenant.local.match(message.topic, (route: LocalRoute) => {
    matched++
    const { entry, subscription } = route
    if (subscription.noLocal === true && message.origin === entry.client.clientId) return
    const previous = merged.get(entry)
    merged.set(entry, previous === undefined ? subscription : mergeSubscriptions(previous, subscription))
  })
  for (const [entry, subscription] of merged) {
    if (!entry.live || !entry.client.connected) continue
    if (entry.persistent && (message.qos < subscription.qos ? message.qos : subscription.qos) > 0) continue
    count(entry.client.deliver(message, subscription))
  }
  return matched
}

/**
 * Delivers the queue of `entry`'s session to its live client, in order, `batch` entries at a time,
 * until it is empty; one drain per session at a time (a call during a drain makes it go round once
 * more). Entries taken but not delivered because the connection closed are put back.
 */
export async function drainQueue(entry: LocalEntry, batch: number, count: (result: DeliveryResult) => void): Promise<void> {
  if (entry.draining !== undefined) {
    entry.again = true
    return await entry.draining
  }
  const run = async (): Promise<void> => {
    do {
      entry.again = false
      for (;;) {
        if (!entry.live || !entry.client.connected) return
        const items = await entry.session.take(batch)
        // Entries that need no outgoing record are settled here; the others by their record.
        const settled: typeof items = []
        for (let i = 0; i < items.length; i++) {
          if (!entry.client.connected) {
            await entry.session.done(settled)
            await entry.session.requeue(items.slice(i))
            return
          }
          const item = items[i] as (typeof items)[number]
          const result = entry.client.deliver(item.message, item.subscription)
          count(result)
          if (result === 'dropped' || item.message.qos === 0 || item.subscription.qos === 0) settled.push(item)
        }
        await entry.session.done(settled)
        if (items.length < batch) break
      }
    } while (entry.again)
  }
  entry.draining = run().finally(() => {
    entry.draining = undefined
  })
  await entry.draining
}
